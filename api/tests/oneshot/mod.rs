//! Helpers for the in-process HTTP tests: the real router built from parts over a temp
//! dir (SQLite catalog, local vault) with the model-free `StandIn` extractor, accounts,
//! logins, and requests sent through `tower::ServiceExt::oneshot`. No ONNX model, no
//! child process, no socket.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

use epatrol_api::http::{AppState, ServeConfig, router};
use epatrol_api::service::accounts;
use epatrol_api::service::{FaceIndex, IdentificationService, StandIn};
use epatrol_store::Catalog;
use epatrol_store::vault::Vault;

/// The password of every account these tests create (one argon2 hash for all of them).
pub const PASSWORD: &str = "the-same-test-password";
/// Multipart boundary of [`Payload::Form`].
pub const BOUNDARY: &str = "oneshot-boundary";

/// The application over a temp data dir, with the stand-in extractor.
pub struct TestApp {
    /// The router every request goes through.
    pub router: Router,
    /// Its state (catalog, gate, config) for checks behind the API.
    pub state: Arc<AppState>,
    dir: TempDir,
}

/// A logged-in account: bearer token and the device it is bound to.
#[derive(Debug, Clone)]
pub struct Session {
    pub login: String,
    pub token: String,
    pub device: String,
}

/// A request body.
pub enum Payload {
    /// No body.
    Empty,
    /// JSON text with `Content-Type: application/json`.
    Json(Value),
    /// `multipart/form-data` with these named parts.
    Form(Vec<(&'static str, Vec<u8>)>),
    /// Raw bytes with the given content type.
    Raw(&'static str, Vec<u8>),
}

impl TestApp {
    /// The application with default settings.
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// The application with settings changed by `tune` (limits, gate size ...).
    pub async fn with(tune: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let mut config = ServeConfig::new(data.to_path_buf());
        // one of the two cores; the gate tests set their own size
        config.model_workers = 1;
        tune(&mut config);
        let catalog = Catalog::open_in(data).await.unwrap();
        let ids = IdentificationService::with_parts(catalog.clone(), data, Arc::new(StandIn::new()), FaceIndex::Exact)
            .await
            .unwrap();
        let vault = Vault::local(&data.join("vault")).unwrap();
        let state = AppState::from_parts(config, catalog, vault, ids).await.unwrap();
        Self { router: router::router(state.clone()), state, dir }
    }

    /// The data dir.
    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    /// Creates accounts `(login, role)`, all with [`PASSWORD`].
    pub async fn add_users(&self, users: &[(&str, &str)]) {
        for (login, role) in users {
            self.state.catalog.create_user(login, role, password_hash()).await.unwrap();
        }
    }

    /// Sends one request through the router.
    pub async fn send(&self, req: Request<Body>) -> Response {
        self.router.clone().oneshot(req).await.unwrap()
    }

    /// `method path` as `who` with `payload`.
    pub async fn call(&self, method: Method, path: &str, who: Option<&Session>, payload: Payload) -> Response {
        self.send(request(method, path, who, payload)).await
    }

    /// `method path` as the logged-in `who`.
    pub async fn by(&self, who: &Session, method: Method, path: &str, payload: Payload) -> Response {
        self.send(request(method, path, Some(who), payload)).await
    }

    /// `POST /v1/auth/login` with `password` from `device`.
    pub async fn login_with(&self, login: &str, password: &str, device: &str) -> Response {
        let body = json!({"login": login, "password": password, "device_id": device});
        self.call(Method::POST, "/v1/auth/login", None, Payload::Json(body)).await
    }

    /// Logs `login` in from `device` with [`PASSWORD`]; fails the test unless that works.
    pub async fn login(&self, login: &str, device: &str) -> Session {
        let res = self.login_with(login, PASSWORD, device).await;
        let status = res.status();
        let body = json_body(res).await;
        assert_eq!(status, StatusCode::OK, "login {login}: {body}");
        Session { login: login.into(), token: body["token"].as_str().unwrap().into(), device: device.into() }
    }
}

/// The argon2 hash of [`PASSWORD`], computed once per test binary.
pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| accounts::hash_password(PASSWORD).unwrap())
}

/// A request: bearer token and `X-Device-Id` of `who` (if any), the body and its type.
pub fn request(method: Method, path: &str, who: Option<&Session>, payload: Payload) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(s) = who {
        b = b.header(header::AUTHORIZATION, format!("Bearer {}", s.token)).header("x-device-id", &s.device);
    }
    let (content_type, body) = match payload {
        Payload::Empty => (None, Vec::new()),
        Payload::Json(v) => (Some("application/json".to_string()), v.to_string().into_bytes()),
        Payload::Form(parts) => (Some(format!("multipart/form-data; boundary={BOUNDARY}")), form(&parts)),
        Payload::Raw(ct, bytes) => (Some(ct.to_string()), bytes),
    };
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.header(header::CONTENT_LENGTH, body.len()).body(Body::from(body)).unwrap()
}

/// A multipart/form-data body of named parts.
pub fn form(parts: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, bytes) in parts {
        b.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.bin\"\r\n\r\n")
                .as_bytes(),
        );
        b.extend_from_slice(bytes);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// The whole body as JSON (`Null` when empty).
pub async fn json_body(res: Response) -> Value {
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() }
}

/// Content type of a response ("" when none).
pub fn content_type(headers: &HeaderMap) -> &str {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Asserts an RFC 9457 problem with `status` (status line, media type, `status` member)
/// and returns its JSON.
pub async fn assert_problem(res: Response, status: StatusCode, what: &str) -> Value {
    let got = res.status();
    let ct = content_type(res.headers()).to_string();
    let body = json_body(res).await;
    assert_eq!(got, status, "{what}: {body}");
    assert_eq!(ct, "application/problem+json", "{what}: content type");
    assert_eq!(body["status"], status.as_u16(), "{what}: {body}");
    body
}
