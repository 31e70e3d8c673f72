//! Accounts, devices and tokens in the catalog: what a token hash resolves to, and when
//! it stops resolving (expiry, disabled device, purge).

use epatrol_store::{Catalog, StoreError};

#[tokio::test]
async fn tokens_resolve_until_expiry_or_a_disabled_device_and_expired_ones_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open_in(dir.path()).await.unwrap();
    let uid = cat.create_user("ivanov", "patrol", "$argon2id$fake").await.unwrap();
    assert!(matches!(cat.create_user("ivanov", "admin", "x").await, Err(StoreError::Conflict(_))));
    assert!(matches!(cat.create_user("petrov", "king", "x").await, Err(StoreError::Invalid(_))));
    assert!(matches!(cat.create_user("", "patrol", "x").await, Err(StoreError::Invalid(_))));
    assert_eq!(cat.count_users_with_role("patrol").await.unwrap(), 1);
    assert_eq!(cat.user_by_login("ivanov").await.unwrap().unwrap().role, "patrol");
    assert!(cat.user_by_login("nobody").await.unwrap().is_none());

    cat.touch_device("tab-1").await.unwrap();
    cat.insert_token("live", uid, "tab-1", 1000, 2000).await.unwrap();
    cat.insert_token("old", uid, "tab-1", 100, 500).await.unwrap();
    let s = cat.session("live", 1500).await.unwrap().expect("live token");
    assert_eq!((s.login.as_str(), s.role.as_str(), s.device_id.as_str()), ("ivanov", "patrol", "tab-1"));
    assert!(cat.session("live", 2000).await.unwrap().is_none(), "expiry is exclusive");
    assert!(cat.session("old", 1500).await.unwrap().is_none());
    assert!(cat.session("unknown", 1500).await.unwrap().is_none());

    // a disabled device: its tokens stop at once and it cannot log in again
    cat.set_device_disabled("tab-1", true).await.unwrap();
    assert!(cat.session("live", 1500).await.unwrap().is_none());
    assert!(matches!(cat.touch_device("tab-1").await, Err(StoreError::Refused(_))));
    cat.set_device_disabled("tab-1", false).await.unwrap();
    assert!(cat.session("live", 1500).await.unwrap().is_some());
    assert!(matches!(cat.set_device_disabled("nope", true).await, Err(StoreError::NotFound(_))));

    assert_eq!(cat.purge_expired_tokens(1500).await.unwrap(), 1, "only the expired token goes");
    assert!(cat.session("live", 1500).await.unwrap().is_some());
    cat.close().await;
}
