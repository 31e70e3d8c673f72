//! Catalog against a real SQLite file.

use epatrol_store::catalog::{Flags, NewSubject, NewTemplate};
use epatrol_store::model::Modality;
use epatrol_store::{Catalog, StoreError};
use sqlx::Connection;

/// A connection of its own to the catalog file, for raw SQL the catalog does not offer.
async fn raw(dir: &std::path::Path) -> sqlx::SqliteConnection {
    let url = format!("sqlite://{}", dir.join(epatrol_store::catalog::CATALOG_FILE).display());
    sqlx::SqliteConnection::connect(&url).await.unwrap()
}

fn subject(id: &str) -> NewSubject {
    NewSubject {
        external_id: id.into(),
        surname: "Testova".into(),
        given_name: "Anna".into(),
        patronymic: "Ivanovna".into(),
        date_of_birth: "1990-01-01".into(),
        address: "1 Synthetic St".into(),
        flags: Flags { wanted: true, ..Flags::default() },
    }
}

fn template(sha: &str) -> NewTemplate {
    NewTemplate {
        modality: Modality::Face,
        model: "m".into(),
        position: None,
        quality: 0.9,
        data: vec![1, 2, 3, 4],
        source_sha256: sha.into(),
    }
}

#[tokio::test]
async fn enroll_reopen_and_conflicts_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open_in(dir.path()).await.unwrap();
    let (sid, tids) = cat.enroll(&subject("A-1"), &[template("x"), template("y")]).await.unwrap();
    assert_eq!(tids.len(), 2);
    // same external id: conflict, nothing written
    let err = cat.enroll(&subject("A-1"), &[template("z")]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // duplicate image inside one enrolment: whole enrolment rolls back
    let err = cat.enroll(&subject("A-2"), &[template("q"), template("q")]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(matches!(cat.subject_by_external_id("A-2").await, Err(StoreError::NotFound(_))));
    assert_eq!(cat.counts().await.unwrap(), (1, 2));
    cat.close().await;

    let cat = Catalog::open_in(dir.path()).await.unwrap();
    let s = cat.subject(sid).await.unwrap();
    assert_eq!(s.data.surname, "Testova");
    assert!(s.data.flags.escort_required());
    let rows = cat.templates(Modality::Face, "m").await.unwrap();
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), tids);
    assert!(matches!(cat.add_templates(999, &[template("w")]).await, Err(StoreError::NotFound(_))));
    cat.audit("cli:test", "", "identify", Some(sid), "match", &serde_json::json!({"score": 0.9})).await.unwrap();
    assert_eq!(cat.audit_tail(10).await.unwrap()[0].outcome, "match");
}

/// Personal fields are ciphertext in the SQLite file, plaintext through the catalog;
/// another key cannot read them; rows from before encryption are encrypted at open.
#[tokio::test]
async fn personal_fields_are_encrypted_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open_in(dir.path()).await.unwrap();
    let mut s = subject("ENC-1");
    s.surname = "Kovalchuk".into();
    s.address = "12 Khreshchatyk St, Kyiv".into();
    let (id, _) = cat.enroll(&s, &[template("e1")]).await.unwrap();
    assert_eq!(cat.subject(id).await.unwrap().data.surname, "Kovalchuk");
    // a legacy catalog: a row written in plain text by an older version, which had no
    // `catalog_meta` flag saying every row is encrypted
    let mut conn = raw(dir.path()).await;
    sqlx::query("DELETE FROM catalog_meta").execute(&mut conn).await.unwrap();
    sqlx::query(
        "INSERT INTO subjects (external_id, surname, given_name, patronymic, date_of_birth, address, convicted, \
         wanted, missing, preventive_supervision, probation_supervision, administrative_supervision, created_at) \
         VALUES ('OLD-1', 'Plainova', 'Olha', '', '1970-01-01', 'Old Street 1', 0, 0, 0, 0, 0, 0, '2026-01-01T00:00:00Z')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    cat.close().await;

    // the file holds no personal text once the legacy row is encrypted at the next open
    let cat = Catalog::open_in(dir.path()).await.unwrap();
    let old = cat.subject_by_external_id("OLD-1").await.unwrap();
    assert_eq!((old.data.surname.as_str(), old.data.address.as_str()), ("Plainova", "Old Street 1"));
    let mut conn = raw(dir.path()).await;
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT external_id, surname, address FROM subjects").fetch_all(&mut conn).await.unwrap();
    for (ext, surname, address) in &rows {
        assert!(surname.starts_with("enc:v1:") && address.starts_with("enc:v1:"), "{ext}: {surname} / {address}");
    }
    // done once: the flag makes later opens skip the scan
    let flagged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM catalog_meta WHERE key = 'subjects_encrypted'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(flagged, 1);
    conn.close().await.unwrap();
    cat.close().await;
    let bytes = std::fs::read(dir.path().join("catalog.sqlite")).unwrap();
    let wal = std::fs::read(dir.path().join("catalog.sqlite-wal")).unwrap_or_default();
    for needle in ["Kovalchuk", "Khreshchatyk", "Plainova", "Old Street"] {
        let hit = |b: &[u8]| b.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(!hit(&bytes), "{needle} in the database file");
        assert!(!hit(&wal), "{needle} in the WAL file");
    }

    // a copy of the catalog with another key opens, but personal fields do not
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("catalog.sqlite"), other.path().join("catalog.sqlite")).unwrap();
    let cat = Catalog::open_in(other.path()).await.unwrap();
    let e = cat.subject(id).await.unwrap_err().to_string();
    assert!(e.contains("does not open with this key") && !e.contains("enc:v1"), "{e}");
    cat.close().await;
}

/// A catalog file as earlier versions wrote it (every timestamp, tier, state and source
/// as the text those versions stored) opens and reads through the typed rows unchanged.
#[tokio::test]
async fn a_catalog_written_in_the_old_text_formats_reads_back_unchanged() {
    use epatrol_store::clock::{fmt_rfc3339, fmt_ts};
    use epatrol_store::model::{EvidenceState, Offence, Source, Tier, TimeSource};

    let dir = tempfile::tempdir().unwrap();
    Catalog::open_in(dir.path()).await.unwrap().close().await;
    let mut conn = raw(dir.path()).await;
    for sql in [
        "INSERT INTO evidence (id, digest, size, device, officer, source, original_name, container, video_codec, \
         audio_codec, width, height, duration_ms, creation_time, recorded_from, recorded_to, time_source, damaged, \
         damage_reason, tier, expires_at, state, sweep_claim, sweep_claimed_at, ingested_at, ingested_by) VALUES \
         (7, 'ab12', 1000, 'CAM-1', 'O-1', 'other_device', 'a.mp4', 'mov,mp4,m4a,3gp,3g2,mj2', 'h264', NULL, 640, 480, \
          20000, '2023-11-14T22:13:20Z', '2023-11-14T22:13:20Z', '2023-11-14T22:13:40Z', 'file_mtime', 1, 'truncated', \
          'administrative', '2024-11-14T22:13:40Z', 'deleting', 'node-a', '2025-01-01T00:00:00Z', \
          '2023-11-20T12:00:00Z', 'cli:test')",
        "INSERT INTO incidents (id, reference, offence, officer, starts_at, ends_at, report, created_at, created_by) \
         VALUES (3, 'INC-1', 'control_check', 'O-1', '2023-11-14T22:00:00Z', '2023-11-14T23:00:00Z', 'r', \
         '2023-11-20T12:00:00Z', 'sup')",
        "INSERT INTO evidence_incidents (evidence_id, incident_id, linked_at) VALUES (7, 3, '2023-11-20T12:00:00Z')",
        "INSERT INTO cases (id, reference, opened_at, closed_at) VALUES (5, 'CASE-1', '2023-11-21T08:00:00Z', \
         '2023-12-01T08:00:00Z')",
        "INSERT INTO case_evidence (case_id, evidence_id, linked_at, linked_by) VALUES (5, 7, '2023-11-21T08:00:00Z', 'sup')",
        "INSERT INTO holds (id, evidence_id, reason, placed_by, placed_at, released_by, released_at) VALUES \
         (9, 7, 'complaint', 'sup', '2023-11-22T08:00:00Z', NULL, NULL)",
        "INSERT INTO audit_log (id, at, actor, device, action, subject_id, outcome, detail) VALUES \
         (1, '2026-01-02T03:04:05.123456789Z', 'admin', 'ws-1', 'login', NULL, 'ok', 'not json'), \
         (2, '2026-01-02T03:04:06.5Z', 'admin', 'ws-1', 'audit.read', 4, 'ok', '{\"rows\":1}')",
        "INSERT INTO outbox (seq, at, kind, audit_id, payload) VALUES (1, '2026-01-02T03:04:06.5Z', \
         'identification.registered', 2, '{\"audit_id\":2}')",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let cat = Catalog::open_in(dir.path()).await.unwrap();
    let e = cat.evidence_by_digest("ab12").await.unwrap().unwrap();
    assert_eq!(
        (e.id, e.source, e.time_source, e.tier, e.state),
        (7, Source::OtherDevice, TimeSource::FileMtime, Tier::Administrative, EvidenceState::Deleting)
    );
    assert_eq!(e.creation_time.map(fmt_ts).as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(fmt_ts(e.expires_at), "2024-11-14T22:13:40Z");
    assert!(e.damaged);
    // the JSON the API serves carries the stored text, word for word
    let json = serde_json::to_value(&e).unwrap();
    for (k, v) in [
        ("source", "other_device"),
        ("time_source", "file_mtime"),
        ("tier", "administrative"),
        ("state", "deleting"),
        ("creation_time", "2023-11-14T22:13:20Z"),
        ("recorded_from", "2023-11-14T22:13:20Z"),
        ("recorded_to", "2023-11-14T22:13:40Z"),
        ("expires_at", "2024-11-14T22:13:40Z"),
        ("ingested_at", "2023-11-20T12:00:00Z"),
    ] {
        assert_eq!(json[k], v, "{k}");
    }
    assert_eq!(cat.evidence_in_state(EvidenceState::Deleting).await.unwrap(), vec![e.clone()]);

    let incidents = cat.incidents_of(7).await.unwrap();
    assert_eq!(
        (incidents[0].offence, fmt_ts(incidents[0].ends_at)),
        (Offence::ControlCheck, "2023-11-14T23:00:00Z".into())
    );
    assert_eq!(serde_json::to_value(&incidents[0]).unwrap()["starts_at"], "2023-11-14T22:00:00Z");
    let case = cat.case_by_reference("CASE-1").await.unwrap().unwrap();
    assert_eq!(serde_json::to_value(&case).unwrap()["closed_at"], "2023-12-01T08:00:00Z");
    assert_eq!(cat.cases_of(7).await.unwrap().len(), 1);
    let holds = cat.holds_of(7).await.unwrap();
    let hold = serde_json::to_value(&holds[0]).unwrap();
    assert_eq!((hold["placed_at"].as_str(), hold["released_at"].is_null()), (Some("2023-11-22T08:00:00Z"), true));
    assert!(cat.is_held(7).await.unwrap(), "the unreleased hold keeps it");

    let audit = cat.audit_tail(10).await.unwrap();
    assert_eq!(fmt_rfc3339(audit[1].at), "2026-01-02T03:04:05.123456789Z");
    let newest = serde_json::to_value(&audit[0]).unwrap();
    assert_eq!((newest["at"].as_str(), newest["detail"]["rows"].as_i64()), (Some("2026-01-02T03:04:06.5Z"), Some(1)));
    assert_eq!(audit[1].detail, serde_json::Value::String("not json".into()), "text that is not JSON stays text");
    let events = cat.events_after(0, 10).await.unwrap();
    assert_eq!(serde_json::to_value(&events[0]).unwrap()["at"], "2026-01-02T03:04:06.5Z");
    assert_eq!(cat.last_event_seq().await.unwrap(), 1);
    cat.close().await;
}

#[tokio::test]
async fn subjects_by_ids_reads_many_at_once_and_skips_missing_ids() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open_in(dir.path()).await.unwrap();
    let (a, _) = cat.enroll(&subject("B-1"), &[template("b1")]).await.unwrap();
    let mut other = subject("B-2");
    other.surname = "Petrenko".into();
    let (b, _) = cat.enroll(&other, &[template("b2")]).await.unwrap();
    let got = cat.subjects_by_ids(&[b, 999, a, b]).await.unwrap();
    assert_eq!(
        got.iter().map(|s| s.id).collect::<Vec<_>>(),
        [b, a],
        "in the asked order, missing and repeated ids dropped"
    );
    assert_eq!((got[0].data.surname.as_str(), got[1].data.surname.as_str()), ("Petrenko", "Testova"), "decrypted");
    assert_eq!(got[1].created_at, cat.subject(a).await.unwrap().created_at);
    assert!(cat.subjects_by_ids(&[]).await.unwrap().is_empty());
    assert!(cat.subjects_by_ids(&[404]).await.unwrap().is_empty());
    cat.close().await;
}
