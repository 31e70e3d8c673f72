//! Catalog against a real SQLite file.

use epatrol_store::catalog::{Flags, NewSubject, NewTemplate};
use epatrol_store::{Catalog, StoreError};

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
        modality: "face".into(),
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
    let rows = cat.templates("face", "m").await.unwrap();
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
    sqlx::query("DELETE FROM catalog_meta").execute(cat.pool()).await.unwrap();
    sqlx::query(
        "INSERT INTO subjects (external_id, surname, given_name, patronymic, date_of_birth, address, convicted, \
         wanted, missing, preventive_supervision, probation_supervision, administrative_supervision, created_at) \
         VALUES ('OLD-1', 'Plainova', 'Olha', '', '1970-01-01', 'Old Street 1', 0, 0, 0, 0, 0, 0, '2026-01-01T00:00:00Z')",
    )
    .execute(cat.pool())
    .await
    .unwrap();
    cat.close().await;

    // the file holds no personal text once the legacy row is encrypted at the next open
    let cat = Catalog::open_in(dir.path()).await.unwrap();
    let old = cat.subject_by_external_id("OLD-1").await.unwrap();
    assert_eq!((old.data.surname.as_str(), old.data.address.as_str()), ("Plainova", "Old Street 1"));
    let raw: Vec<(String, String, String)> =
        sqlx::query_as("SELECT external_id, surname, address FROM subjects").fetch_all(cat.pool()).await.unwrap();
    for (ext, surname, address) in &raw {
        assert!(surname.starts_with("enc:v1:") && address.starts_with("enc:v1:"), "{ext}: {surname} / {address}");
    }
    // done once: the flag makes later opens skip the scan
    let flagged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM catalog_meta WHERE key = 'subjects_encrypted'")
        .fetch_one(cat.pool())
        .await
        .unwrap();
    assert_eq!(flagged, 1);
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
