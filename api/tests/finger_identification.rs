//! Fingerprint-first identification with face fallback, end to end: real LEADER and face
//! models, real SQLite catalog (finger templates stored as ISO/IEC 19794-2 and reloaded
//! at start), real FVC prints and ORL faces from ../shared/datasets.

use std::path::{Path, PathBuf};

use epatrol_api::service::{FingerProbe, IdentificationService, Probe};
use epatrol_store::catalog::{Flags, NewSubject};

fn datasets() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets");
    assert!(p.is_dir(), "{} missing: tests need ../shared beside the repo", p.display());
    p
}

fn print(finger: u32, impression: u32, position: u8) -> FingerProbe {
    let p = datasets().join(format!("fingerprints/fvc2002_db2_b/{finger}_{impression}.tif"));
    FingerProbe { label: p.display().to_string(), bytes: std::fs::read(&p).unwrap(), position }
}

fn face(rel: &str) -> Probe {
    let p = datasets().join("faces/orl").join(rel);
    Probe { label: rel.into(), bytes: std::fs::read(&p).unwrap() }
}

fn person(id: &str, flags: Flags) -> NewSubject {
    NewSubject {
        external_id: id.into(),
        surname: format!("Surname-{id}"),
        given_name: "Test".into(),
        patronymic: String::new(),
        date_of_birth: "1980-01-01".into(),
        address: String::new(),
        flags,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn print_decides_first_and_face_takes_over_when_the_print_cannot() {
    let dir = tempfile::tempdir().unwrap();
    {
        let svc = IdentificationService::open(dir.path(), None).await.unwrap();
        // F-101 and F-102: prints only (two impressions, right index = 2); F-103: a print
        // and face photos, wanted
        for (id, finger) in [("F-101", 101), ("F-102", 102)] {
            let prints = [print(finger, 1, 2), print(finger, 2, 2)];
            svc.enroll_with(&person(id, Flags::default()), &[], &prints, "test").await.unwrap();
        }
        let wanted = Flags { wanted: true, ..Flags::default() };
        let faces = [face("s1/1.pgm"), face("s1/2.pgm")];
        svc.enroll_with(&person("F-103", wanted), &faces, &[print(103, 1, 2)], "test").await.unwrap();
        assert_eq!(svc.fingers().len(), 5);
        svc.catalog().close().await;
    }
    // a restart rebuilds the finger gallery from the catalog's ISO templates
    let svc = IdentificationService::open(dir.path(), None).await.unwrap();
    assert_eq!(svc.fingers().len(), 5);

    // another impression of an enrolled finger: the print decides
    let r = svc.identify(None, Some(&print(101, 5, 2)), 3, "test", "tab-1").await.unwrap();
    assert_eq!((r.decision, r.modality), ("match", "finger"), "{:?}", r.candidates);
    assert_eq!(r.person.as_ref().unwrap().external_id, "F-101");
    assert!(!r.escort_to_station);

    // an unenrolled finger alone: no match, escort
    let r = svc.identify(None, Some(&print(110, 1, 2)), 3, "test", "tab-1").await.unwrap();
    assert_eq!((r.decision, r.modality), ("no_match", "finger"), "{:?}", r.candidates);
    assert!(r.escort_to_station);

    // unenrolled print + face of F-103: inconclusive print, the face decides (wanted)
    let r = svc.identify(Some(&face("s1/7.pgm")), Some(&print(110, 1, 2)), 3, "test", "tab-1").await.unwrap();
    assert_eq!((r.decision, r.modality), ("match", "face"));
    assert_eq!(r.person.as_ref().unwrap().external_id, "F-103");
    assert!(r.fallback.as_deref().unwrap().contains("inconclusive"), "{:?}", r.fallback);
    assert_eq!(r.escort_reason.as_deref(), Some("wanted"));

    // a blank sensor image is unusable: the face decides and says why
    let blank = {
        let img = image::GrayImage::from_pixel(300, 400, image::Luma([255]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        FingerProbe { label: "blank.png".into(), bytes: out.into_inner(), position: 2 }
    };
    let r = svc.identify(Some(&face("s1/7.pgm")), Some(&blank), 3, "test", "tab-1").await.unwrap();
    assert_eq!((r.decision, r.modality), ("match", "face"));
    assert!(r.fallback.as_deref().unwrap().contains("unusable"), "{:?}", r.fallback);

    // the print alone: rejected with the reason, escort
    let r = svc.identify(None, Some(&blank), 3, "test", "tab-1").await.unwrap();
    assert_eq!((r.decision, r.modality), ("rejected", "finger"));
    assert!(r.reason.is_some() && r.escort_to_station);

    // enrolment with an unusable print writes nothing
    let before = svc.catalog().counts().await.unwrap();
    let err = svc.enroll_with(&person("F-X", Flags::default()), &[], &[blank], "test").await.unwrap_err();
    assert!(err.to_string().contains("blank.png"), "{err}");
    assert_eq!(svc.catalog().counts().await.unwrap(), before);
    assert_eq!(svc.fingers().len(), 5);
}
