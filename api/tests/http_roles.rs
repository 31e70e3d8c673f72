//! Who may call what: every route of the router for every role and without a token,
//! through `tower::ServiceExt::oneshot` on the router built from parts (no models).
//!
//! The table below is the documented access (docs/http.md; the role checks of the
//! handlers and of `service::evidence`).
//! Each request is shaped so that an allowed caller gets past the role check and stops
//! at something harmless (a missing field, an unknown id), so a refused caller can only
//! be told apart by 401/403: dropping one role check makes the matrix test fail.

mod oneshot;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use oneshot::{Payload, Session, TestApp, assert_problem, content_type, json_body};

/// The callers of the matrix: no token, then one account per role.
const CALLERS: [&str; 6] = ["anonymous", "patrol", "dock", "investigator", "supervisor", "admin"];

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// Anyone, without a token.
    Public,
    /// Any logged-in account.
    Account,
    /// Accounts with one of these roles; other roles get 403.
    Roles(&'static [&'static str]),
}

/// What to send: a body that gets an allowed caller past the role check without
/// changing anything (missing fields, unknown ids).
#[derive(Debug, Clone, Copy)]
enum Probe {
    Empty,
    Json(&'static str),
    /// A multipart form with one part of this name.
    Form(&'static str),
    Bytes,
}

use Access::{Account, Public, Roles};
use Probe::{Bytes, Empty, Form, Json};

const ADMIN: &[&str] = &["admin"];
const SUPERVISOR: &[&str] = &["supervisor"];
const UPLOADERS: &[&str] = &["patrol", "dock"];
const VIEWERS: &[&str] = &["supervisor", "investigator"];

/// Every route: method, path as in the router, access, probe.
const ROUTES: &[(&str, &str, Access, Probe)] = &[
    ("GET", "/v1/health", Public, Empty),
    ("GET", "/v1/openapi.json", Public, Empty),
    ("GET", "/v1/metrics", Public, Empty),
    ("POST", "/v1/auth/login", Public, Json("{}")),
    ("POST", "/v1/auth/logout", Account, Empty),
    ("POST", "/v1/auth/password", Account, Json(r#"{"current_password": "x", "new_password": "short"}"#)),
    ("POST", "/v1/users/{login}/password", Roles(ADMIN), Empty),
    ("POST", "/v1/users", Roles(ADMIN), Json("{}")),
    ("POST", "/v1/users/{login}/disable", Roles(ADMIN), Empty),
    ("POST", "/v1/users/{login}/enable", Roles(ADMIN), Empty),
    ("POST", "/v1/devices", Roles(ADMIN), Json("{}")),
    ("POST", "/v1/devices/{device}/disable", Roles(ADMIN), Empty),
    ("POST", "/v1/devices/{device}/enable", Roles(ADMIN), Empty),
    ("POST", "/v1/identify", Roles(&["patrol"]), Form("photo")),
    ("POST", "/v1/subjects", Roles(ADMIN), Form("face")),
    ("DELETE", "/v1/subjects/{external_id}", Roles(ADMIN), Empty),
    ("PUT", "/v1/subjects/{external_id}/flags", Roles(ADMIN), Json("{}")),
    ("POST", "/v1/subjects/{external_id}/templates", Roles(ADMIN), Form("photo")),
    ("GET", "/v1/audit", Roles(ADMIN), Empty),
    ("GET", "/v1/events", Roles(&["supervisor", "admin"]), Empty),
    ("GET", "/v1/evidence", Roles(VIEWERS), Empty),
    ("GET", "/v1/evidence/{digest}", Roles(VIEWERS), Empty),
    ("GET", "/v1/evidence/{digest}/content", Roles(VIEWERS), Empty),
    ("GET", "/v1/evidence/{digest}/thumbnails/{idx}", Roles(VIEWERS), Empty),
    ("GET", "/v1/evidence/{digest}/custody", Roles(VIEWERS), Empty),
    ("POST", "/v1/evidence/{digest}/tier", Roles(SUPERVISOR), Json("{}")),
    ("POST", "/v1/evidence/{digest}/holds", Roles(SUPERVISOR), Json("{}")),
    ("POST", "/v1/evidence/{digest}/holds/release", Roles(SUPERVISOR), Json("{}")),
    ("POST", "/v1/incidents", Roles(SUPERVISOR), Json("{}")),
    ("POST", "/v1/cases", Roles(SUPERVISOR), Json("{}")),
    ("POST", "/v1/cases/{reference}/evidence", Roles(SUPERVISOR), Json("{}")),
    ("POST", "/v1/cases/{reference}/close", Roles(SUPERVISOR), Empty),
    ("POST", "/v1/uploads", Roles(UPLOADERS), Json("{}")),
    ("GET", "/v1/uploads/{id}", Roles(UPLOADERS), Empty),
    ("POST", "/v1/uploads/{id}/complete", Roles(UPLOADERS), Json("{}")),
    ("POST", "/v1/evidence", Roles(UPLOADERS), Bytes),
    ("PUT", "/v1/uploads/{id}/parts/{idx}", Roles(UPLOADERS), Bytes),
];

/// A concrete path: unknown ids for every parameter.
fn concrete(path: &str) -> String {
    let digest = "0".repeat(64);
    path.replace("{login}", "ghost")
        .replace("{device}", "ghost-device")
        .replace("{external_id}", "P-404")
        .replace("{digest}", &digest)
        .replace("{idx}", "0")
        .replace("{reference}", "C-404")
        .replace("{id}", "upload-404")
}

/// What the documented access says `caller` gets.
fn expected(access: Access, caller: &str) -> &'static str {
    match access {
        Public => "allowed",
        _ if caller == "anonymous" => "401",
        Account => "allowed",
        Roles(roles) if roles.contains(&caller) => "allowed",
        Roles(_) => "403",
    }
}

/// The routes registered in the router's source: `(METHOD, path)`.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../src/http/router.rs");
    let mut routes = BTreeSet::new();
    for piece in src.split(".route(\"").skip(1) {
        let (path, rest) = piece.split_once('"').unwrap();
        let rest = rest.trim_start_matches([',', ' ']);
        let method = rest.split_once('(').unwrap().0.to_uppercase();
        routes.insert((method, path.to_string()));
    }
    routes
}

/// Logs in one account per role (two tokens each: logout spends one).
async fn sessions(app: &TestApp) -> Vec<(Session, Session)> {
    let users: Vec<(String, &str)> = CALLERS[1..].iter().map(|r| (format!("{r}1"), *r)).collect();
    let pairs: Vec<(&str, &str)> = users.iter().map(|(l, r)| (l.as_str(), *r)).collect();
    app.add_users(&pairs).await;
    let mut out = Vec::new();
    for (login, role) in &users {
        let device = format!("{role}-device");
        out.push((app.login(login, &device).await, app.login(login, &device).await));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_documented() {
    let table: BTreeSet<(String, String)> = ROUTES.iter().map(|r| (r.0.to_string(), r.1.to_string())).collect();
    assert_eq!(table.len(), ROUTES.len(), "a route is listed twice");
    let routes = router_routes();
    assert_eq!(routes.len(), 37, "routes found in router.rs: {routes:?}");
    assert_eq!(
        table,
        routes,
        "the table must list exactly the router's routes; missing: {:?}, not routed: {:?}",
        routes.difference(&table).collect::<Vec<_>>(),
        table.difference(&routes).collect::<Vec<_>>()
    );

    let app = TestApp::with(|c| c.rate_burst = 1000).await;
    let sessions = sessions(&app).await;
    let mut mismatches = Vec::new();
    let mut cells = 0;
    for &(method, path, access, probe) in ROUTES {
        for (i, caller) in CALLERS.iter().enumerate() {
            let who = match i {
                0 => None,
                // logout revokes the token it is called with: use the spare one
                _ if path == "/v1/auth/logout" => Some(&sessions[i - 1].1),
                _ => Some(&sessions[i - 1].0),
            };
            let payload = match probe {
                Empty => Payload::Empty,
                Json(text) => Payload::Json(serde_json::from_str(text).unwrap()),
                Form(part) => Payload::Form(vec![(part, b"not an image".to_vec())]),
                Bytes => Payload::Raw("application/octet-stream", b"some bytes".to_vec()),
            };
            let res = app.call(Method::from_bytes(method.as_bytes()).unwrap(), &concrete(path), who, payload).await;
            let status = res.status();
            let got = match status {
                StatusCode::UNAUTHORIZED => "401",
                StatusCode::FORBIDDEN => "403",
                _ => "allowed",
            };
            let want = expected(access, caller);
            cells += 1;
            // refusals are problems; an allowed probe must not break the server either
            let refused_shape = got != "allowed" && content_type(res.headers()) != "application/problem+json";
            if got != want || refused_shape || status.is_server_error() {
                let detail = if status.is_success() { String::new() } else { json_body(res).await.to_string() };
                mismatches.push(format!("{method} {path} as {caller}: expected {want}, got {status} {detail}"));
            }
        }
    }
    assert_eq!(cells, ROUTES.len() * CALLERS.len());
    eprintln!("role matrix: {} routes x {} callers = {cells} requests", ROUTES.len(), CALLERS.len());
    let listed = mismatches.join("\n");
    assert!(
        mismatches.is_empty(),
        "{} of {cells} answers differ from the documented access:\n{listed}",
        mismatches.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_works_only_from_its_device_and_while_valid() {
    let app = TestApp::new().await;
    app.add_users(&[("patrol1", "patrol")]).await;
    let patrol = app.login("patrol1", "tab-1").await;
    let app = &app;
    let audit = |who: Session| async move { app.by(&who, Method::GET, "/v1/audit", Payload::Empty).await };

    // the real token and device get to the role check (403: patrol may not read the audit)
    assert_problem(audit(patrol.clone()).await, StatusCode::FORBIDDEN, "own device").await;

    let elsewhere = Session { device: "tab-2".into(), ..patrol.clone() };
    let res = audit(elsewhere.clone()).await;
    assert_eq!(res.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap()), Some("Bearer"));
    let p = assert_problem(res, StatusCode::UNAUTHORIZED, "another device").await;
    assert_eq!(p["detail"], "token is bound to another device", "{p}");
    let no_device = Session { device: String::new(), ..patrol.clone() };
    assert_problem(audit(no_device.clone()).await, StatusCode::UNAUTHORIZED, "no X-Device-Id").await;
    let forged = Session { token: "ab".repeat(32), ..patrol.clone() };
    assert_problem(audit(forged.clone()).await, StatusCode::UNAUTHORIZED, "forged").await;
    let malformed = Session { token: "abc".into(), ..patrol.clone() };
    assert_problem(audit(malformed.clone()).await, StatusCode::UNAUTHORIZED, "malformed").await;
    let res = app.call(Method::GET, "/v1/audit", None, Payload::Empty).await;
    assert_problem(res, StatusCode::UNAUTHORIZED, "no token").await;

    // an expired token of the same account and device
    let expired = "cd".repeat(32);
    let uid = app.state.catalog.user_by_login("patrol1").await.unwrap().unwrap().id;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(expired.as_bytes()));
    app.state.catalog.insert_token(&digest, uid, "tab-1", now - 7200, now - 3600).await.unwrap();
    let old = Session { token: expired, ..patrol.clone() };
    assert_problem(audit(old.clone()).await, StatusCode::UNAUTHORIZED, "expired").await;

    // still the same for the original pair afterwards
    assert_problem(audit(patrol.clone()).await, StatusCode::FORBIDDEN, "own device again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumable_upload_is_visible_to_its_owner_only() {
    let app = TestApp::new().await;
    app.add_users(&[("patrol1", "patrol"), ("patrol2", "patrol"), ("dock1", "dock"), ("sup1", "supervisor")]).await;
    let owner = app.login("patrol1", "tab-1").await;
    let res = app.call(Method::POST, "/v1/uploads", Some(&owner), Payload::Json(json!({"length": 10}))).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = json_body(res).await["id"].as_str().unwrap().to_string();
    let status = format!("/v1/uploads/{id}");

    let res = app.call(Method::GET, &status, Some(&owner), Payload::Empty).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json_body(res).await["id"], id.as_str());
    // other uploaders do not learn that it exists; other roles are refused outright
    for login in ["patrol2", "dock1"] {
        let other = app.login(login, "dev-x").await;
        let res = app.call(Method::GET, &status, Some(&other), Payload::Empty).await;
        assert_problem(res, StatusCode::NOT_FOUND, login).await;
        let part = Payload::Raw("application/octet-stream", vec![1; 10]);
        let res = app.call(Method::PUT, &format!("{status}/parts/0"), Some(&other), part).await;
        assert_problem(res, StatusCode::NOT_FOUND, login).await;
    }
    let sup = app.login("sup1", "duty-1").await;
    assert_problem(app.call(Method::GET, &status, Some(&sup), Payload::Empty).await, StatusCode::FORBIDDEN, "sup")
        .await;
}
