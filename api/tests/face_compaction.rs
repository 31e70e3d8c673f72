//! Deleting people compacts the face index off the search path: a server-side gallery
//! with thousands of templates (synthetic distractors written by `epatrol bench gallery`
//! into a real SQLite catalog, plus a real person through the real models) loses enough
//! of them that a background thread builds a compacted index and swaps it in, and the
//! person is identified the same way before and after.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use epatrol_api::service::{IdentificationService, Probe};
use epatrol_store::catalog::{Flags, NewSubject};

fn orl() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/faces/orl");
    assert!(p.is_dir(), "{} missing: tests need ../shared beside the repo", p.display());
    p
}

fn probe(path: &Path) -> Probe {
    Probe { label: path.display().to_string(), bytes: std::fs::read(path).unwrap() }
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_many_people_compacts_the_face_index_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_epatrol"))
        .arg("--data")
        .arg(dir.path())
        .args(["bench", "gallery", "--faces", "3000", "--seed", "7"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svc = IdentificationService::open(dir.path(), None).await.unwrap();
    let person = NewSubject {
        external_id: "REAL-1".into(),
        surname: "Real".into(),
        given_name: "Person".into(),
        patronymic: String::new(),
        date_of_birth: "1980-01-01".into(),
        address: String::new(),
        flags: Flags::default(),
    };
    let photos: Vec<Probe> = (1..=2).map(|i| probe(&orl().join(format!("s5/{i}.pgm")))).collect();
    svc.enroll(&person, &photos, "test").await.unwrap();
    assert_eq!(svc.face_gallery_size(), (3002, 3002));
    let held_back = probe(&orl().join("s5/7.pgm"));
    let before = svc.identify_face(&held_back, 3, "test", "tab-1").await.unwrap();
    assert_eq!(before.person.as_ref().unwrap().external_id, "REAL-1");

    // 1100 of 3002 gone: past the compaction bar (1024 dead and a quarter) from the
    // 1025th on, below the inline bar (half), so only the background thread can shrink
    // the scan; deletions go on while it builds (stale copies are rebuilt)
    for i in 0..1100 {
        let r = svc.delete_subject(&format!("SYN-7-{i:07}")).await.unwrap();
        assert_eq!(r.face_templates, 1);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (live, slots) = svc.face_gallery_size();
        assert_eq!(live, 1902);
        if slots < 3002 {
            assert!(slots - live < 1025, "compacted copy kept {} dead rows", slots - live);
            break;
        }
        assert!(Instant::now() < deadline, "face index not compacted after 60 s: {slots} slots for {live}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = svc.identify_face(&held_back, 3, "test", "tab-1").await.unwrap();
    assert_eq!(after.person.as_ref().unwrap().external_id, "REAL-1");
    assert_eq!(after.candidates[0].score, before.candidates[0].score, "same exact score after the swap");
}
