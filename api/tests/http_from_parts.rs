//! The router built from parts, without ONNX models: a real SQLite catalog and a local
//! vault in a temp dir, the model-free `StandIn` extractor, requests through
//! `tower::ServiceExt::oneshot`. Enrols a person over HTTP, then identifies them.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use epatrol_api::http::{AppState, ServeConfig, router};
use epatrol_api::service::accounts::{Actor, Role};
use epatrol_api::service::{FaceIndex, IdentificationService, StandIn};
use epatrol_store::Catalog;
use epatrol_store::vault::Vault;

const BOUNDARY: &str = "standin-boundary";

/// The application over `dir` with the stand-in extractor.
async fn app(dir: &Path) -> (Router, Arc<AppState>) {
    let config = ServeConfig::new(dir.to_path_buf());
    let catalog = Catalog::open_in(dir).await.unwrap();
    let ids = IdentificationService::with_parts(catalog.clone(), dir, Arc::new(StandIn::new()), FaceIndex::Exact)
        .await
        .unwrap();
    let vault = Vault::local(&dir.join("vault")).unwrap();
    let state = AppState::from_parts(config, catalog, vault, ids).await.unwrap();
    (router::router(state.clone()), state)
}

async fn add_user(state: &AppState, login: &str, role: Role, password: &str) {
    let by = Actor { login: "test", device: "" };
    state.accounts.create(by, login, role, password).await.unwrap();
}

/// Sends one request; returns the status and the body as JSON (`Null` when empty).
async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    (status, if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() })
}

async fn login(app: &Router, login: &str, password: &str, device: &str) -> String {
    let req = Request::post("/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"login": login, "password": password, "device_id": device}).to_string()))
        .unwrap();
    let (status, body) = send(app, req).await;
    assert_eq!(status, StatusCode::OK, "login {login}: {body}");
    body["token"].as_str().unwrap().to_string()
}

/// A multipart/form-data body of named parts.
fn form(parts: &[(&str, &[u8])]) -> Body {
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
    Body::from(b)
}

async fn post_form(
    app: &Router,
    path: &str,
    token: &str,
    device: &str,
    parts: &[(&str, &[u8])],
) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("x-device-id", device)
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(form(parts))
        .unwrap();
    send(app, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_from_parts_enrols_and_identifies_without_models() {
    let dir = tempfile::tempdir().unwrap();
    let (app, state) = app(dir.path()).await;
    add_user(&state, "admin1", Role::Admin, "admin-password-1").await;
    add_user(&state, "patrol1", Role::Patrol, "patrol-password-1").await;
    let admin = login(&app, "admin1", "admin-password-1", "ws-1").await;
    let patrol = login(&app, "patrol1", "patrol-password-1", "tab-1").await;

    let record =
        json!({"external_id": "P-1", "surname": "Doe", "given_name": "Jane", "flags": {"wanted": true}}).to_string();
    let parts: [(&str, &[u8]); 2] = [("record", record.as_bytes()), ("face", b"photo of P-1")];
    let (status, body) = post_form(&app, "/v1/subjects", &admin, "ws-1", &parts).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({"subject_id": 1, "external_id": "P-1", "templates": 1}));

    // the same face file: a match, wanted, escort
    let (status, body) = post_form(&app, "/v1/identify", &patrol, "tab-1", &[("face", b"photo of P-1")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["decision"].as_str(), body["modality"].as_str()), (Some("match"), Some("face")), "{body}");
    assert_eq!(body["person"]["surname"], "Doe");
    assert_eq!((body["escort_to_station"].as_bool(), body["escort_reason"].as_str()), (Some(true), Some("wanted")));

    // the print is tried first: alone, unusable; with the face photo, the face decides
    let (_, body) = post_form(&app, "/v1/identify", &patrol, "tab-1", &[("finger_2", b"a print")]).await;
    assert_eq!((body["decision"].as_str(), body["modality"].as_str()), (Some("rejected"), Some("finger")), "{body}");
    let probe: [(&str, &[u8]); 2] = [("finger_2", b"a print"), ("face", b"photo of P-1")];
    let (_, body) = post_form(&app, "/v1/identify", &patrol, "tab-1", &probe).await;
    assert_eq!((body["decision"].as_str(), body["modality"].as_str()), (Some("match"), Some("face")), "{body}");
    assert!(body["fallback"].as_str().unwrap().starts_with("fingerprint unusable"), "{body}");

    // another file: nobody; a blank image: rejected; an empty one: unreadable
    let (_, body) = post_form(&app, "/v1/identify", &patrol, "tab-1", &[("face", b"a stranger")]).await;
    assert_eq!(body["decision"], "no_match", "{body}");
    assert!(body.get("person").is_none(), "{body}");
    let (_, body) = post_form(&app, "/v1/identify", &patrol, "tab-1", &[("face", &[0u8; 64])]).await;
    assert_eq!(body["decision"], "rejected", "{body}");
    let (status, _) = post_form(&app, "/v1/identify", &patrol, "tab-1", &[("face", b"")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // every answer is audited with the officer and device; the final ones are events
    let rows = state.catalog.audit_tail(12).await.unwrap();
    let identify: Vec<_> = rows.iter().filter(|r| r.action == "identify").map(|r| r.outcome.as_str()).collect();
    assert_eq!(identify, ["rejected", "no_match", "match", "rejected", "rejected", "match"]);
    assert!(rows.iter().filter(|r| r.action == "identify").all(|r| r.actor == "patrol1" && r.device == "tab-1"));
    let events = state.catalog.events_after(0, 10).await.unwrap();
    let decisions: Vec<_> = events.iter().map(|e| e.payload["decision"].as_str().unwrap_or("")).collect();
    assert_eq!(decisions, ["match", "rejected", "match", "no_match", "rejected"]);
}
