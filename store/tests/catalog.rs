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
