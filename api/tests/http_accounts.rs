//! Administration end to end on the real `epatrol serve` binary: accounts created,
//! disabled and reset over HTTP, devices disabled and enrolled with their own secret,
//! logout and password change, and a restart that requires device credentials. The role
//! checks of these routes are in `http_roles.rs` (in process, no models).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Server, login, problem, token};

use epatrol_store::Catalog;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_admin_creates_accounts_disables_accounts_and_devices_and_tokens_can_be_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().to_path_buf();
    // p9 logs in a dozen times here; the per-login limit is tested elsewhere
    let s = Server::start(&data, &["--login-attempts-per-min", "100"]);
    let http = reqwest::Client::new();
    let admin = token(&http, &s, "admin", &s.admin_password, "ws-0").await;
    let post = |tok: &str, dev: &str, path: &str, body: Option<Value>| {
        let rq = http.post(s.url(path)).bearer_auth(tok).header("x-device-id", dev);
        match body {
            Some(b) => rq.json(&b).send(),
            None => rq.send(),
        }
    };
    let r = post(&admin, "ws-0", "/v1/users", Some(json!({"login": "p9", "role": "patrol"}))).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let password = created["password"].as_str().unwrap().to_string();
    assert_eq!(password.len(), 64);
    let again = post(&admin, "ws-0", "/v1/users", Some(json!({"login": "p9", "role": "patrol"}))).await.unwrap();
    problem(again, StatusCode::CONFLICT, "same login").await;
    let bad = post(&admin, "ws-0", "/v1/users", Some(json!({"login": "p10", "role": "king"}))).await.unwrap();
    problem(bad, StatusCode::BAD_REQUEST, "unknown role").await;

    // the one-time password works; a patrol officer may not administer
    let p9 = token(&http, &s, "p9", &password, "tab-9").await;
    let r = post(&p9, "tab-9", "/v1/users", Some(json!({"login": "x", "role": "admin"}))).await.unwrap();
    problem(r, StatusCode::FORBIDDEN, "patrol creates an account").await;
    let audit = |tok: &str, dev: &str| http.get(s.url("/v1/audit")).bearer_auth(tok).header("x-device-id", dev).send();
    problem(audit(&p9, "tab-9").await.unwrap(), StatusCode::FORBIDDEN, "token accepted, role refused").await;

    // a lost tablet: disabling the device kills its token and its logins, until re-enabled
    assert_eq!(post(&admin, "ws-0", "/v1/devices/tab-9/disable", None).await.unwrap().status(), StatusCode::NO_CONTENT);
    problem(audit(&p9, "tab-9").await.unwrap(), StatusCode::UNAUTHORIZED, "token of a disabled device").await;
    problem(login(&http, &s, "p9", &password, "tab-9").await, StatusCode::FORBIDDEN, "login from it").await;
    assert_eq!(post(&admin, "ws-0", "/v1/devices/tab-9/enable", None).await.unwrap().status(), StatusCode::NO_CONTENT);
    problem(audit(&p9, "tab-9").await.unwrap(), StatusCode::FORBIDDEN, "device back").await;
    problem(post(&admin, "ws-0", "/v1/devices/nope/disable", None).await.unwrap(), StatusCode::NOT_FOUND, "no device")
        .await;

    // a disabled account: tokens and logins refused; administrators cannot lock themselves out
    assert_eq!(post(&admin, "ws-0", "/v1/users/p9/disable", None).await.unwrap().status(), StatusCode::NO_CONTENT);
    problem(audit(&p9, "tab-9").await.unwrap(), StatusCode::UNAUTHORIZED, "token of a disabled account").await;
    problem(login(&http, &s, "p9", &password, "tab-9").await, StatusCode::UNAUTHORIZED, "login disabled").await;
    problem(post(&admin, "ws-0", "/v1/users/admin/disable", None).await.unwrap(), StatusCode::BAD_REQUEST, "self")
        .await;
    problem(post(&admin, "ws-0", "/v1/users/ghost/disable", None).await.unwrap(), StatusCode::NOT_FOUND, "ghost").await;
    assert_eq!(post(&admin, "ws-0", "/v1/users/p9/enable", None).await.unwrap().status(), StatusCode::NO_CONTENT);

    // logout revokes exactly the presented token
    let t1 = token(&http, &s, "p9", &password, "tab-9").await;
    let t2 = token(&http, &s, "p9", &password, "tab-9").await;
    assert_eq!(post(&t1, "tab-9", "/v1/auth/logout", None).await.unwrap().status(), StatusCode::NO_CONTENT);
    problem(audit(&t1, "tab-9").await.unwrap(), StatusCode::UNAUTHORIZED, "revoked").await;
    problem(audit(&t2, "tab-9").await.unwrap(), StatusCode::FORBIDDEN, "the other token still works").await;

    // password change: needs the current password and a long enough new one; the token
    // used keeps working, the account's other tokens and the old password stop working
    let change = |tok: &str, current: &str, new: &str| {
        post(tok, "tab-9", "/v1/auth/password", Some(json!({"current_password": current, "new_password": new})))
    };
    let t3 = token(&http, &s, "p9", &password, "tab-9").await;
    let new_pw = "a-new-long-password-9";
    problem(change(&t2, "wrong", new_pw).await.unwrap(), StatusCode::FORBIDDEN, "wrong current password").await;
    problem(change(&t2, &password, "short").await.unwrap(), StatusCode::BAD_REQUEST, "too short").await;
    problem(change(&t2, &password, &password).await.unwrap(), StatusCode::BAD_REQUEST, "unchanged").await;
    assert_eq!(change(&t2, &password, new_pw).await.unwrap().status(), StatusCode::NO_CONTENT);
    problem(audit(&t2, "tab-9").await.unwrap(), StatusCode::FORBIDDEN, "the changing token still works").await;
    problem(audit(&t3, "tab-9").await.unwrap(), StatusCode::UNAUTHORIZED, "other tokens revoked").await;
    problem(login(&http, &s, "p9", &password, "tab-9").await, StatusCode::UNAUTHORIZED, "old password").await;
    let _ = token(&http, &s, "p9", new_pw, "tab-9").await;
    // an administrator resets it: a new one-time password, every token revoked
    problem(post(&t2, "tab-9", "/v1/users/p9/password", None).await.unwrap(), StatusCode::FORBIDDEN, "self reset")
        .await;
    let r = post(&admin, "ws-0", "/v1/users/p9/password", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let reset: Value = r.json().await.unwrap();
    let one_time = reset["password"].as_str().unwrap().to_string();
    problem(audit(&t2, "tab-9").await.unwrap(), StatusCode::UNAUTHORIZED, "reset revokes all").await;
    problem(login(&http, &s, "p9", new_pw, "tab-9").await, StatusCode::UNAUTHORIZED, "password before reset").await;
    let _ = token(&http, &s, "p9", &one_time, "tab-9").await;
    problem(post(&admin, "ws-0", "/v1/users/ghost/password", None).await.unwrap(), StatusCode::NOT_FOUND, "ghost")
        .await;

    let cat = Catalog::open_in(&data).await.unwrap();
    let rows = cat.audit_tail(200).await.unwrap();
    for action in [
        "user.create",
        "device.disable",
        "device.enable",
        "user.disable",
        "user.enable",
        "logout",
        "password.change",
        "password.reset",
    ] {
        assert!(rows.iter().any(|r| r.action == action), "{action} not audited");
    }
    for secret in [password.as_str(), new_pw, one_time.as_str()] {
        assert!(!rows.iter().any(|r| r.detail.to_string().contains(secret)), "passwords are never logged");
    }
    cat.close().await;

    // device credentials: an enrolled device needs its own secret at every login
    let r = post(&admin, "ws-0", "/v1/devices", Some(json!({"device_id": "tab-77"}))).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let dev_secret = r.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_string();
    let p9_at = ("p9", one_time.as_str(), "tab-77");
    problem(login_with(&http, &s, p9_at, None).await, StatusCode::UNAUTHORIZED, "no device secret").await;
    let wrong = "0".repeat(64);
    problem(login_with(&http, &s, p9_at, Some(&wrong)).await, StatusCode::UNAUTHORIZED, "wrong device secret").await;
    assert_eq!(login_with(&http, &s, p9_at, Some(&dev_secret)).await.status(), StatusCode::OK);
    let p9 = token(&http, &s, "p9", &one_time, "tab-9").await;
    let r = post(&p9, "tab-9", "/v1/devices", Some(json!({"device_id": "x"}))).await.unwrap();
    problem(r, StatusCode::FORBIDDEN, "patrol enrols a device").await;

    // a server that requires device credentials: unenrolled devices cannot log in; the
    // administrator's workstation is enrolled from the command line
    let admin_password = s.admin_password.clone();
    drop(s);
    let out = Command::new(env!("CARGO_BIN_EXE_epatrol"))
        .arg("--data")
        .arg(&data)
        .args(["device", "enroll", "--id", "ws-0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let ws_secret = err.split("(shown once): ").nth(1).unwrap().trim().to_string();
    let s = Server::start(&data, &["--require-device-credentials", "--login-attempts-per-min", "100"]);
    let r = login_with(&http, &s, ("admin", &admin_password, "ws-0"), None).await;
    problem(r, StatusCode::UNAUTHORIZED, "admin without the workstation secret").await;
    let r = login_with(&http, &s, ("admin", &admin_password, "ws-0"), Some(&ws_secret)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = login_with(&http, &s, ("p9", &one_time, "tab-9"), None).await;
    problem(r, StatusCode::UNAUTHORIZED, "a device never enrolled").await;
    let r = login_with(&http, &s, ("p9", &one_time, "tab-77"), Some(&dev_secret)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cat = Catalog::open_in(&data).await.unwrap();
    let rows = cat.audit_tail(50).await.unwrap();
    assert!(rows.iter().any(|r| r.action == "device.enroll"));
    assert!(
        !rows.iter().any(|r| r.detail.to_string().contains(&dev_secret) || r.detail.to_string().contains(&ws_secret))
    );
    cat.close().await;
}

/// Logs in `(login, password, device)`, sending `device_secret` when given.
async fn login_with(
    http: &reqwest::Client,
    s: &Server,
    (login, password, device): (&str, &str, &str),
    secret: Option<&str>,
) -> reqwest::Response {
    let mut b = json!({"login": login, "password": password, "device_id": device});
    if let Some(sec) = secret {
        b["device_secret"] = json!(sec);
    }
    http.post(s.url("/v1/auth/login")).json(&b).send().await.unwrap()
}
