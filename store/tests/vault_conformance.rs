//! One conformance suite, run against every backend: in-memory, local directory and a real
//! S3 server (moto on 127.0.0.1). Each case is a function over a [`Backend`]; the macro at
//! the bottom instantiates it three times.

mod common;

use bytes::Bytes;
use common::{Backend, World, dataset, req};
use epatrol_store::StoreError;
use epatrol_store::clock::{fmt_ts, parse_ts};
use epatrol_store::model::EvidenceState;
use epatrol_store::retention::{IncidentReport, Offence, Sweeper, Tier};
use epatrol_store::vault::{Commit, Declared, Digest, IngestStatus, blob_key};
use object_store::{ObjectStoreExt, PutPayload};
use time::Duration;

const A: &str = "a_h264_aac_720p30_20s.mp4";
const A_BLAKE3: &str = "ade3a16104884853d5ce2c61b0dbcf831bcce83f603e1b3d1889e47fed46e88a";

async fn dedup(b: Backend) {
    let Some(w) = World::new(b).await else { return };
    let first = w.ev.ingest_file(&dataset(A), &req()).await.unwrap();
    assert_eq!(first.status, IngestStatus::Stored);
    assert_eq!(first.digest, A_BLAKE3);
    let second = w.ev.ingest_file(&dataset(A), &req()).await.unwrap();
    assert_eq!(second.status, IngestStatus::Duplicate);
    assert_eq!(second.evidence_id, first.evidence_id);
    let blobs = w.ev.vault().list("blobs").await.unwrap();
    assert_eq!(blobs.len(), 1, "identical footage is stored once: {blobs:?}");
    assert!(w.ev.vault().list("staging").await.unwrap().is_empty(), "no staging left");
    // thumbnails are stored as blobs and catalogued
    let thumbs = w.ev.catalog().thumbnails_of(first.evidence_id.unwrap()).await.unwrap();
    assert!(!thumbs.is_empty());
    assert!(w.ev.verify().await.unwrap().ok());
}

async fn create_if_absent_race(b: Backend) {
    let Some(w) = World::new(b).await else { return };
    let bytes = std::fs::read(dataset("g_faststart.mp4")).unwrap();
    // two writers stage the same bytes, then both try to commit: exactly one creates
    let s1 = w.ev.vault().stage(&bytes[..], Declared::default()).await.unwrap();
    let s2 = w.ev.vault().stage(&bytes[..], Declared::default()).await.unwrap();
    assert_eq!(s1.digest, s2.digest);
    let (r1, r2) = tokio::join!(w.ev.vault().commit(&s1), w.ev.vault().commit(&s2));
    let mut outcomes = [r1.unwrap(), r2.unwrap()];
    outcomes.sort_by_key(|c| *c == Commit::AlreadyPresent);
    if b == Backend::S3 {
        // moto checks If-None-Match and completes the upload in two steps on a threaded
        // server, so two truly simultaneous completes can both succeed there (AWS S3 is
        // atomic). Identical bytes under one content address make that harmless: still
        // one blob with the right content, and the catalog's UNIQUE(digest) decides below.
        assert_eq!(outcomes[0], Commit::Created);
    } else {
        assert_eq!(outcomes, [Commit::Created, Commit::AlreadyPresent]);
    }
    assert_eq!(w.ev.vault().list("blobs").await.unwrap().len(), 1);
    let (d, _) = w.ev.vault().rehash(&blob_key(&s1.digest)).await.unwrap();
    assert_eq!(d, s1.digest);
    // sequentially, create-if-absent is exact on every backend
    let s3 = w.ev.vault().stage(&bytes[..], Declared::default()).await.unwrap();
    assert_eq!(w.ev.vault().commit(&s3).await.unwrap(), Commit::AlreadyPresent);

    // and two whole ingests of one new file: one row, one blob, one "stored"
    let (path, r) = (dataset(A), req());
    let (x, y) = tokio::join!(w.ev.ingest_file(&path, &r), w.ev.ingest_file(&path, &r));
    let mut st = [x.unwrap().status, y.unwrap().status];
    st.sort_by_key(|s| *s == IngestStatus::Duplicate);
    assert_eq!(st, [IngestStatus::Stored, IngestStatus::Duplicate]);
    assert_eq!(w.ev.catalog().evidence_in_state(EvidenceState::Active).await.unwrap().len(), 1);
}

async fn declared_mismatch_leaves_nothing(b: Backend) {
    let Some(w) = World::new(b).await else { return };
    let bytes = std::fs::read(dataset("g_faststart.mp4")).unwrap();
    let wrong = Declared { len: Some(bytes.len() as u64 + 1), digest: None };
    assert!(matches!(w.ev.vault().stage(&bytes[..], wrong).await, Err(StoreError::Integrity(_))));
    let wrong = Declared { len: None, digest: Some(Digest::of(b"other")) };
    assert!(matches!(w.ev.vault().stage(&bytes[..], wrong).await, Err(StoreError::Integrity(_))));
    assert!(w.ev.vault().list("staging").await.unwrap().is_empty());
    assert!(w.ev.vault().list("blobs").await.unwrap().is_empty());
}

async fn multipart_resume(b: Backend) {
    let Some(w) = World::new(b).await else { return };
    let bytes = std::fs::read(dataset(A)).unwrap();
    let part = 1u64 << 20;
    let parts: Vec<Bytes> = bytes.chunks(part as usize).map(Bytes::copy_from_slice).collect();
    assert!(parts.len() >= 3);
    let up = w.ev.begin_upload("dock-1", bytes.len() as u64, Some(A_BLAKE3.parse().unwrap()), part).await.unwrap();
    w.ev.upload_part(&up.id, 0, parts[0].clone()).await.unwrap();
    w.ev.upload_part(&up.id, 2, parts[2].clone()).await.unwrap();
    // a wrong-sized part is refused
    assert!(w.ev.upload_part(&up.id, 1, Bytes::from_static(b"short")).await.is_err());

    // "power loss": a new process over the same data dir and backend resumes
    let vault = w.ev.vault().clone();
    let World { tmp, .. } = w;
    let w = World::on(tmp, vault).await;
    let st = w.ev.upload_status(&up.id).await.unwrap();
    assert_eq!(st.received, vec![0, 2]);
    for i in (0..st.parts).filter(|i| !st.received.contains(i)) {
        w.ev.upload_part(&up.id, i, parts[i as usize].clone()).await.unwrap();
    }
    assert_eq!(w.ev.upload_digest(&up.id).await.unwrap().to_hex(), A_BLAKE3, "digest from part chaining values");
    let out = w.ev.complete_upload(&up.id, &req()).await.unwrap();
    assert_eq!(out.status, IngestStatus::Stored);
    assert_eq!(out.digest, A_BLAKE3);
    let (d, n) = w.ev.vault().rehash(&blob_key(&A_BLAKE3.parse().unwrap())).await.unwrap();
    assert_eq!((d.to_hex().as_str(), n), (A_BLAKE3, bytes.len() as u64));
    assert!(w.ev.vault().list("staging").await.unwrap().is_empty(), "parts removed after completion");
}

async fn range_reads(b: Backend) {
    let Some(w) = World::new(b).await else { return };
    let bytes = std::fs::read(dataset(A)).unwrap();
    let out = w.ev.ingest_file(&dataset(A), &req()).await.unwrap();
    let d: Digest = out.digest.parse().unwrap();
    for r in [0..1, 100..1000, 1_000_000..2_500_000, (bytes.len() as u64 - 10)..bytes.len() as u64] {
        let got = w.ev.vault().read_range(&d, r.clone()).await.unwrap();
        assert_eq!(&got[..], &bytes[r.start as usize..r.end as usize]);
    }
    assert!(w.ev.vault().read_range(&d, 0..bytes.len() as u64 + 1).await.is_err());
    assert!(w.ev.vault().read_range(&d, 5..5).await.is_err());
}

async fn retention_extend_only(b: Backend) {
    let Some(w) = World::new(b).await else { return };
    let out = w.ev.ingest_file(&dataset(A), &req()).await.unwrap();
    let d: Digest = out.digest.parse().unwrap();
    let e = w.ev.active_evidence(&d).await.unwrap();
    assert_eq!(
        (fmt_ts(e.recorded_from), fmt_ts(e.recorded_to)),
        ("2023-11-14T22:13:20Z".into(), "2023-11-14T22:13:40Z".into())
    );
    assert_eq!((e.tier.as_str(), fmt_ts(e.expires_at)), ("general", "2023-12-14T22:13:40Z".into()));

    let crime = IncidentReport {
        reference: "INC-1".into(),
        offence: Offence::Crime,
        officer: "O-1".into(),
        starts_at: "2023-11-14T22:13:30Z".into(),
        ends_at: "2023-11-14T22:20:00Z".into(),
        report: "assault".into(),
    };
    let r = w.ev.file_incident("sup", &crime).await.unwrap();
    assert_eq!(r.items.len(), 1);
    assert_eq!((r.items[0].to_tier.as_str(), fmt_ts(r.items[0].to_expires)), ("crime", "2028-11-14T22:13:40Z".into()));
    // a later administrative report or a manual downgrade never shortens it
    let admin = IncidentReport { reference: "INC-2".into(), offence: Offence::Administrative, ..crime.clone() };
    let r = w.ev.file_incident("sup", &admin).await.unwrap();
    assert_eq!((r.items[0].to_tier.as_str(), fmt_ts(r.items[0].to_expires)), ("crime", "2028-11-14T22:13:40Z".into()));
    assert!(matches!(w.ev.reclassify("sup", &d, Tier::Administrative, "oops").await, Err(StoreError::Refused(_))));
    // footage of another officer or outside the window is not selected
    let other = IncidentReport { reference: "INC-3".into(), officer: "O-2".into(), ..crime.clone() };
    assert!(w.ev.file_incident("sup", &other).await.unwrap().items.is_empty());

    if b == Backend::S3 {
        let ctl = w.ev.vault().s3_control().unwrap();
        assert_eq!(ctl.get_tier_tag(blob_key(&d).as_ref()).await.unwrap().as_deref(), Some("crime"));
    }
}

async fn hold_blocks_delete(b: Backend) {
    let Some(w) = World::new(b).await else { return };
    let out = w.ev.ingest_file(&dataset(A), &req()).await.unwrap();
    let d: Digest = out.digest.parse().unwrap();
    w.ev.place_hold("sup", &d, "complaint pending").await.unwrap();
    w.ev.link_case("inv", &d, "CASE-7").await.unwrap();
    w.clock.set(parse_ts("2030-01-01T00:00:00Z").unwrap());
    let sweeper = Sweeper::new(&w.ev, "node-a");
    let rep = sweeper.run(false).await.unwrap();
    assert!(rep.deleted.is_empty());
    assert_eq!(rep.held, 1);
    assert_eq!(w.ev.release_holds("sup", &d, "resolved").await.unwrap(), 1);
    // the open case still keeps it
    assert!(sweeper.run(false).await.unwrap().deleted.is_empty());
    w.ev.catalog().close_case("CASE-7", parse_ts("2030-01-01T00:00:00Z").unwrap()).await.unwrap();
    let dry = sweeper.run(true).await.unwrap();
    assert_eq!(dry.deleted.len(), 1);
    assert!(w.ev.vault().blob_size(&d).await.unwrap().is_some(), "dry run deletes nothing");
    assert_eq!(sweeper.run(false).await.unwrap().deleted.len(), 1);
    assert!(w.ev.vault().blob_size(&d).await.unwrap().is_none());
    assert!(w.ev.vault().list(&format!("thumbs/{d}")).await.unwrap().is_empty());
    assert!(w.ev.verify().await.unwrap().ok());
}

async fn sweeper_idempotent_multi_node(b: Backend) {
    let Some(w) = World::new(b).await else { return };
    // g and c carry no creation_time: declare when they were recorded
    let mut r = req();
    r.recorded_from = Some(parse_ts("2023-11-19T08:00:00Z").unwrap());
    for f in [A, "g_faststart.mp4", "c_mjpeg_pcm_640x480_5s.avi"] {
        w.ev.ingest_file(&dataset(f), &r).await.unwrap();
    }
    w.clock.advance(Duration::days(400));
    let (s1, s2) = (Sweeper::new(&w.ev, "node-a"), Sweeper::new(&w.ev, "node-b"));
    let (r1, r2) = tokio::join!(s1.run(false), s2.run(false));
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.deleted.len() + r2.deleted.len(), 3, "each item deleted exactly once");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deletions").fetch_one(&mut w.raw().await).await.unwrap();
    assert_eq!(n, 3);
    assert!(s1.run(false).await.unwrap().deleted.is_empty(), "second run has nothing to do");
    assert!(w.ev.vault().list("blobs").await.unwrap().is_empty());
    let rep = w.ev.verify().await.unwrap();
    assert!(rep.ok(), "{:?}", rep.problems);
    assert_eq!(rep.deletions_checked, 3);
}

async fn custody_chain_and_tamper(b: Backend) {
    let Some(w) = World::new(b).await else { return };
    let out = w.ev.ingest_file(&dataset(A), &req()).await.unwrap();
    let d: Digest = out.digest.parse().unwrap();
    w.ev.place_hold("sup", &d, "r").await.unwrap();
    w.ev.ingest_file(&dataset("g_faststart.mp4"), &req()).await.unwrap();
    let rep = w.ev.verify().await.unwrap();
    assert!(rep.ok(), "{:?}", rep.problems);
    assert_eq!(rep.custody_entries, 3);

    // custody rows refuse UPDATE/DELETE through SQL...
    let mut conn = w.raw().await;
    assert!(sqlx::query("UPDATE custody_log SET actor = 'x' WHERE seq = 2").execute(&mut conn).await.is_err());
    // ...and someone who drops the guard is caught by the chain
    sqlx::query("DROP TRIGGER custody_log_no_update").execute(&mut conn).await.unwrap();
    sqlx::query("UPDATE custody_log SET detail = '{\"reason\":\"nothing\"}' WHERE seq = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    let rep = w.ev.verify().await.unwrap();
    assert!(rep.problems.iter().any(|p| p.starts_with("custody entry 2")), "{:?}", rep.problems);

    // a corrupted blob is named
    let bad = Bytes::from_static(b"not the footage any more");
    w.ev.vault().store().put(&blob_key(&d), PutPayload::from(bad)).await.unwrap();
    let rep = w.ev.verify().await.unwrap();
    assert!(
        rep.problems.iter().any(|p| p.contains(&d.to_hex()) && p.contains("content changed")),
        "{:?}",
        rep.problems
    );
}

async fn rejects_and_damage(b: Backend) {
    let Some(w) = World::new(b).await else { return };
    for (f, why) in [
        ("e_empty_0byte.mp4", "empty"),
        ("f_text_renamed.mp4", "text"),
        ("d2_corrupt_truncated_half_of_g_moov_at_end.mp4", "ffmpeg cannot open"),
    ] {
        let o = w.ev.ingest_file(&dataset(f), &req()).await.unwrap();
        assert_eq!(o.status, IngestStatus::Rejected, "{f}");
        assert!(o.reason.as_deref().unwrap().contains(why), "{f}: {:?}", o.reason);
        assert_eq!(o.digest.len(), 64);
    }
    let d = w.ev.ingest_file(&dataset("d_corrupt_truncated_half_of_a.mp4"), &req()).await.unwrap();
    assert_eq!(d.status, IngestStatus::Damaged);
    assert!(d.reason.unwrap().contains("truncated"));
    assert_eq!(w.ev.vault().list("blobs").await.unwrap().len(), 1, "only the damaged file is kept");
    let e = w.ev.active_evidence(&d.digest.parse().unwrap()).await.unwrap();
    assert!(e.damaged);
}

async fn export_package(b: Backend) {
    let Some(w) = World::new(b).await else { return };
    let out = w.ev.ingest_file(&dataset("c_mjpeg_pcm_640x480_5s.avi"), &req()).await.unwrap();
    let d: Digest = out.digest.parse().unwrap();
    let dir = w.tmp.path().join("export");
    let rep = w.ev.export("court-clerk", &d, &dir).await.unwrap();
    assert!(rep.manifest.files.iter().any(|f| f.path.starts_with("footage/") && f.blake3 == d.to_hex()));
    assert_eq!(epatrol_store::vault::verify_export(&dir, None).unwrap(), Vec::<String>::new());
    let custody = std::fs::read_to_string(dir.join("custody.jsonl")).unwrap();
    assert!(custody.contains("\"ingest\"") && custody.contains("\"export\""));
    // flip one byte of the footage: the package no longer verifies
    let f = dir.join(&rep.manifest.files[0].path);
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(&f, bytes).unwrap();
    let problems = epatrol_store::vault::verify_export(&dir, None).unwrap();
    assert!(problems.iter().any(|p| p.starts_with("footage/")), "{problems:?}");
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory { $( #[tokio::test] async fn $case() { super::$case(super::Backend::Memory).await } )* }
        mod local { $( #[tokio::test] async fn $case() { super::$case(super::Backend::Local).await } )* }
        mod s3 { $( #[tokio::test] async fn $case() { super::$case(super::Backend::S3).await } )* }
    };
}

conformance!(
    dedup,
    create_if_absent_race,
    declared_mismatch_leaves_nothing,
    multipart_resume,
    range_reads,
    retention_extend_only,
    hold_blocks_delete,
    sweeper_idempotent_multi_node,
    custody_chain_and_tamper,
    rejects_and_damage,
    export_package,
);

/// Object Lock: on a lock-enabled bucket the blob gets COMPLIANCE retention until its
/// deadline, and classification extends it.
#[tokio::test]
async fn s3_object_lock_retention() {
    let Some(w) = World::with_lock(Backend::S3, true).await else {
        return;
    };
    // recordings from "now" so the deadlines are in the real future, as S3 requires
    let mut r = req();
    let now = time::OffsetDateTime::now_utc();
    r.recorded_from = Some(now);
    w.clock.set(now);
    let out = w.ev.ingest_file(&dataset("g_faststart.mp4"), &r).await.unwrap();
    let d: Digest = out.digest.parse().unwrap();
    let ctl = w.ev.vault().s3_control().unwrap();
    assert!(ctl.object_lock().await.unwrap());
    let key = blob_key(&d);
    let before = ctl.get_retention(key.as_ref()).await.unwrap().expect("retention set at ingest");
    w.ev.reclassify("sup", &d, Tier::Crime, "armed robbery").await.unwrap();
    let after = ctl.get_retention(key.as_ref()).await.unwrap().unwrap();
    assert!(after > before, "{before} -> {after}");
    assert_eq!(ctl.get_tier_tag(key.as_ref()).await.unwrap().as_deref(), Some("crime"));
    // a legal hold in the catalog is a legal hold on the object, and lifted with it
    w.ev.place_hold("sup", &d, "court order").await.unwrap();
    assert_eq!(ctl.get_legal_hold(key.as_ref()).await.unwrap().as_deref(), Some("ON"));
    w.ev.release_holds("sup", &d, "order lifted").await.unwrap();
    assert_eq!(ctl.get_legal_hold(key.as_ref()).await.unwrap().as_deref(), Some("OFF"));
}
