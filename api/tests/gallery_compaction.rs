//! Deleting people compacts the galleries off the search path. Faces: a server-side
//! gallery with thousands of templates (synthetic distractors written by `epatrol bench
//! gallery` into a real SQLite catalog, plus a real person through the real models) loses
//! enough of them that a background thread builds a compacted index and swaps it in, and
//! the person is identified the same way before and after. Fingers: the same through the
//! finger gallery, rebuilt from ISO/IEC 19794-2 records in the catalog.

use std::process::Command;
use std::time::{Duration, Instant};

use epatrol_api::service::fingers::FINGER_MODEL;
use epatrol_api::service::{IdentificationService, Probe};
use epatrol_engine::finger::iso19794::{View, encode_iso2005};
use epatrol_engine::finger::quality::Quality;
use epatrol_engine::finger::{Extracted, synth};
use epatrol_store::Catalog;
use epatrol_store::catalog::{NewSubject, NewTemplate};

mod people;
use people::{orl, probe, subject};

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
    let person = subject("REAL-1");
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

/// A synthetic print of finger `f` (impression `seed`) as the service sees an extraction.
fn print(f: u64, seed: u64) -> Extracted {
    let quality = Quality { score: 80, area_px: 90_000.0, clarity: 0.6, minutiae: 40, reject: None };
    Extracted { template: synth::impression(&synth::finger(f), seed), quality }
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_people_compacts_the_finger_gallery_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open_in(dir.path()).await.unwrap();
    let batch: Vec<(NewSubject, Vec<NewTemplate>)> = (0..40u64)
        .map(|f| {
            let e = print(f, 1000 + f);
            let view =
                View { finger_position: 2, view_number: 0, impression_type: 0, quality: 80, template: e.template };
            let t = NewTemplate {
                modality: epatrol_store::model::Modality::Finger,
                model: FINGER_MODEL.into(),
                position: Some(2),
                quality: 80.0,
                data: encode_iso2005(&[view]).unwrap(),
                source_sha256: format!("{f:064x}"),
            };
            (subject(&format!("F-{f}")), vec![t])
        })
        .collect();
    assert_eq!(catalog.enroll_many(&batch).await.unwrap(), 40);
    catalog.close().await;

    let svc = IdentificationService::open(dir.path(), None).await.unwrap();
    let fingers = svc.fingers();
    assert_eq!(fingers.size(), (40, 40));
    let survivor = fingers.search(2, &print(33, 77), 1)[0].subject_id;
    // 11 of 40 deleted: past a quarter (a copy is due) and below half (no inline
    // compaction), so only the background thread can drop the removed slots
    for f in 0..11 {
        let r = svc.delete_subject(&format!("F-{f}")).await.unwrap();
        assert_eq!(r.finger_templates, 1);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while fingers.size() != (29, 29) {
        assert!(Instant::now() < deadline, "finger gallery not compacted after 60 s: {:?}", fingers.size());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fingers.search(2, &print(33, 78), 1)[0].subject_id, survivor, "survivor still found");
    let deleted = svc.catalog().subject_by_external_id("F-4").await;
    assert!(deleted.is_err(), "deleted subject gone from the catalog");
}
