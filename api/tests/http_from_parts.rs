//! The router built from parts, without ONNX models: a real SQLite catalog and a local
//! vault in a temp dir, the model-free `StandIn` extractor, requests through
//! `tower::ServiceExt::oneshot`. Enrols a person over HTTP, then identifies them.

mod oneshot;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use oneshot::{Payload, Session, TestApp, json_body};

/// Posts a multipart form of `parts` as `who`; the status and the JSON answer.
async fn post_form(app: &TestApp, path: &str, who: &Session, parts: &[(&'static str, &[u8])]) -> (StatusCode, Value) {
    let parts = parts.iter().map(|(name, bytes)| (*name, bytes.to_vec())).collect();
    let res = app.by(who, Method::POST, path, Payload::Form(parts)).await;
    (res.status(), json_body(res).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_from_parts_enrols_and_identifies_without_models() {
    let app = TestApp::new().await;
    app.add_users(&[("admin1", "admin"), ("patrol1", "patrol")]).await;
    let admin = app.login("admin1", "ws-1").await;
    let patrol = app.login("patrol1", "tab-1").await;

    let record =
        json!({"external_id": "P-1", "surname": "Doe", "given_name": "Jane", "flags": {"wanted": true}}).to_string();
    let parts: [(&str, &[u8]); 2] = [("record", record.as_bytes()), ("face", b"photo of P-1")];
    let (status, body) = post_form(&app, "/v1/subjects", &admin, &parts).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({"subject_id": 1, "external_id": "P-1", "templates": 1}));

    // the same face file: a match, wanted, escort
    let (status, body) = post_form(&app, "/v1/identify", &patrol, &[("face", b"photo of P-1")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["decision"].as_str(), body["modality"].as_str()), (Some("match"), Some("face")), "{body}");
    assert_eq!(body["person"]["surname"], "Doe");
    assert_eq!((body["escort_to_station"].as_bool(), body["escort_reason"].as_str()), (Some(true), Some("wanted")));

    // the print is tried first: alone, unusable; with the face photo, the face decides
    let (_, body) = post_form(&app, "/v1/identify", &patrol, &[("finger_2", b"a print")]).await;
    assert_eq!((body["decision"].as_str(), body["modality"].as_str()), (Some("rejected"), Some("finger")), "{body}");
    let probe: [(&str, &[u8]); 2] = [("finger_2", b"a print"), ("face", b"photo of P-1")];
    let (_, body) = post_form(&app, "/v1/identify", &patrol, &probe).await;
    assert_eq!((body["decision"].as_str(), body["modality"].as_str()), (Some("match"), Some("face")), "{body}");
    assert!(body["fallback"].as_str().unwrap().starts_with("fingerprint unusable"), "{body}");

    // another file: nobody; a blank image: rejected; an empty one: unreadable
    let (_, body) = post_form(&app, "/v1/identify", &patrol, &[("face", b"a stranger")]).await;
    assert_eq!(body["decision"], "no_match", "{body}");
    assert!(body.get("person").is_none(), "{body}");
    let (_, body) = post_form(&app, "/v1/identify", &patrol, &[("face", &[0u8; 64])]).await;
    assert_eq!(body["decision"], "rejected", "{body}");
    let (status, _) = post_form(&app, "/v1/identify", &patrol, &[("face", b"")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // every answer is audited with the officer and device; the final ones are events
    let rows = app.state.catalog.audit_tail(12).await.unwrap();
    let identify: Vec<_> = rows.iter().filter(|r| r.action == "identify").map(|r| r.outcome.as_str()).collect();
    assert_eq!(identify, ["rejected", "no_match", "match", "rejected", "rejected", "match"]);
    assert!(rows.iter().filter(|r| r.action == "identify").all(|r| r.actor == "patrol1" && r.device == "tab-1"));
    let events = app.state.catalog.events_after(0, 10).await.unwrap();
    let decisions: Vec<_> = events.iter().map(|e| e.payload["decision"].as_str().unwrap_or("")).collect();
    assert_eq!(decisions, ["match", "rejected", "match", "no_match", "rejected"]);
}
