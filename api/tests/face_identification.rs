//! Face enrolment and 1:N identification end to end: real ONNX models, real SQLite
//! catalog under a temp data dir, real images from ../shared/datasets, and the real
//! `epatrol` binary for the CLI contract.

use std::path::{Path, PathBuf};
use std::process::Command;

use epatrol_api::ApiError;
use epatrol_api::service::{IdentificationService, Probe};
use epatrol_store::catalog::{Flags, NewSubject};

mod people;
use people::probe;

fn datasets() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets");
    assert!(p.is_dir(), "{} missing: tests need ../shared beside the repo", p.display());
    p
}

fn person(n: usize, flags: Flags) -> NewSubject {
    NewSubject {
        external_id: format!("T-{n}"),
        surname: format!("Surname{n}"),
        given_name: "Test".into(),
        patronymic: String::new(),
        date_of_birth: "1980-01-01".into(),
        address: String::new(),
        flags,
    }
}

fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn enrolled_people_are_identified_from_held_back_photos_and_bad_input_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let orl = datasets().join("faces/orl");
    let svc = IdentificationService::open(dir.path(), None).await.unwrap();

    // enrol 8 ORL people from two photos each (multi-template), one of them wanted
    for n in 1..=8 {
        let flags = Flags { wanted: n == 3, ..Flags::default() };
        let imgs: Vec<Probe> = (1..=2).map(|i| probe(&orl.join(format!("s{n}/{i}.pgm")))).collect();
        let r = svc.enroll(&person(n, flags), &imgs, "test").await.unwrap();
        assert_eq!(r.template_ids.len(), 2);
    }
    assert_eq!(svc.gallery_size(), (8, 16));

    // a held-back photo of each enrolled person is identified as that person
    for n in 1..=8 {
        let r = svc.identify_face(&probe(&orl.join(format!("s{n}/7.pgm"))), 3, "test", "tab-1").await.unwrap();
        assert_eq!(r.decision, "match", "s{n}: {:?}", r.candidates);
        assert_eq!(r.person.as_ref().unwrap().external_id, format!("T-{n}"));
        assert_eq!(r.escort_to_station, n == 3, "only the wanted person is escorted");
        assert!(r.candidates.len() <= 3);
    }
    // someone not enrolled: no match, escort (identity not established)
    let r = svc.identify_face(&probe(&orl.join("s20/1.pgm")), 3, "test", "tab-1").await.unwrap();
    assert_eq!(r.decision, "no_match", "{:?}", r.candidates);
    assert!(r.escort_to_station);

    // bad inputs: clear errors, nothing written
    let counts = svc.catalog().counts().await.unwrap();
    let mut truncated = std::fs::read(datasets().join("faces/deepface_tests/img1.jpg")).unwrap();
    truncated.truncate(truncated.len() / 3);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty"),
        ("text", b"name,identity\nnot an image\n".to_vec(), "not an image"),
        ("truncated jpeg", truncated, "truncated"),
        ("huge", png(20000, 20000, |_, _| 128), "exceed"),
        ("no face", png(320, 240, |x, y| ((x * 7 + y * 3) % 256) as u8), "no face"),
    ];
    for (i, (label, bytes, want)) in cases.into_iter().enumerate() {
        let p = Probe { label: label.into(), bytes };
        let err = svc.enroll(&person(100 + i, Flags::default()), std::slice::from_ref(&p), "test").await.unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(_)), "{label}: {err:?}");
        assert!(err.to_string().contains(want), "{label}: {err}");
    }
    // one bad photo among good ones: the whole enrolment is refused
    let mixed = vec![probe(&orl.join("s9/1.pgm")), Probe { label: "bad.jpg".into(), bytes: b"garbage".to_vec() }];
    let err = svc.enroll(&person(9, Flags::default()), &mixed, "test").await.unwrap_err();
    assert!(err.to_string().contains("bad.jpg"), "{err}");
    // an already-enrolled id is a conflict, not an overwrite
    let err = svc.enroll(&person(1, Flags::default()), &[probe(&orl.join("s9/1.pgm"))], "test").await.unwrap_err();
    assert!(matches!(err, ApiError::Conflict(_)), "{err:?}");
    assert_eq!(svc.catalog().counts().await.unwrap(), counts);
    assert_eq!(svc.gallery_size(), (8, 16));

    // a face-less probe is a "rejected" answer with a reason, and is audited
    let r = svc
        .identify_face(&Probe { label: "wall".into(), bytes: png(320, 240, |x, _| (x % 256) as u8) }, 3, "test", "")
        .await
        .unwrap();
    assert_eq!(r.decision, "rejected");
    assert!(r.reason.unwrap().contains("no face"));
    let audit = svc.catalog().audit_tail(1).await.unwrap();
    assert_eq!((audit[0].action.as_str(), audit[0].outcome.as_str()), ("identify", "rejected"));
    svc.catalog().close().await;

    // the gallery is rebuilt from the catalog at start
    let again = IdentificationService::open(dir.path(), None).await.unwrap();
    assert_eq!(again.gallery_size(), (8, 16));
}

#[tokio::test(flavor = "multi_thread")]
async fn several_faces_are_rejected_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let svc = IdentificationService::open(dir.path(), None).await.unwrap();
    let two = datasets().join("faces/face_recognition_examples/two_people.jpg");
    let r = svc.identify_face(&probe(&two), 3, "test", "").await.unwrap();
    assert_eq!(r.decision, "rejected");
    assert!(r.reason.unwrap().contains("several faces"));
}

#[test]
fn cli_enroll_then_identify_prints_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let orl = datasets().join("faces/orl");
    let bin = env!("CARGO_BIN_EXE_epatrol");
    let out = Command::new(bin)
        .args([
            "--data",
            dir.path().to_str().unwrap(),
            "enroll",
            "--id",
            "CLI-1",
            "--surname",
            "Cli",
            "--given-name",
            "Test",
        ])
        .args(["--flag", "missing", "--face"])
        .arg(orl.join("s4/1.pgm"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(bin)
        .args(["--data", dir.path().to_str().unwrap(), "identify", "--face"])
        .arg(orl.join("s4/8.pgm"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "match");
    assert_eq!(v["person"]["external_id"], "CLI-1");
    assert_eq!(v["escort_to_station"], true);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ESCORT TO STATION: reported missing"));
    // an unreadable probe: non-zero exit, clear message
    let out = Command::new(bin)
        .args(["--data", dir.path().to_str().unwrap(), "identify", "--face", "/nonexistent.jpg"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent.jpg"));
}
