//! Every problem mapping through real routes, in process (router from parts, stand-in
//! extractor, no models): 400, 404, 405, 409, 413, 415, 429 and 503, each an
//! `application/problem+json` document carrying its status.

mod oneshot;

use std::sync::mpsc;
use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use epatrol_api::service::ModelRunner;
use oneshot::{Payload, TestApp, assert_problem, json_body};

/// Largest body of the problem app: the enrolments below fit, the oversized probe not.
const MAX_BODY: usize = 16 * 1024;

fn face(bytes: &[u8]) -> Payload {
    Payload::Form(vec![("face", bytes.to_vec())])
}

fn enrolment(external_id: &str, surname: &str, photo: &[u8]) -> Payload {
    let record = json!({"external_id": external_id, "surname": surname, "given_name": "Test"});
    Payload::Form(vec![("record", record.to_string().into_bytes()), ("face", photo.to_vec())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_unknown_records_conflicts_sizes_and_media_types_are_problems() {
    let app = TestApp::with(|c| c.max_body_bytes = MAX_BODY).await;
    app.add_users(&[("admin1", "admin"), ("patrol1", "patrol"), ("sup1", "supervisor")]).await;
    let admin = app.login("admin1", "ws-1").await;
    let patrol = app.login("patrol1", "tab-1").await;
    let sup = app.login("sup1", "duty-1").await;

    // 400: malformed or incomplete input, never a 500
    let truncated = Payload::Raw(
        "multipart/form-data; boundary=XYZ",
        b"--XYZ\r\nContent-Disposition: form-data; name=\"face\"\r\n\r\ntruncated".to_vec(),
    );
    let res = app.by(&patrol, Method::POST, "/v1/identify", truncated).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "truncated multipart").await;
    let res = app.by(&patrol, Method::POST, "/v1/identify", Payload::Form(vec![("photo", b"x".to_vec())])).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "unknown form field").await;
    let res = app.by(&patrol, Method::POST, "/v1/identify", face(b"")).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "an empty image").await;
    let res = app.by(&admin, Method::POST, "/v1/subjects", face(b"photo")).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "enrolment without a record").await;
    for q in ["?limit=0", "?limit=abc"] {
        let res = app.by(&admin, Method::GET, &format!("/v1/audit{q}"), Payload::Empty).await;
        assert_problem(res, StatusCode::BAD_REQUEST, q).await;
    }
    let res = app.call(Method::POST, "/v1/auth/login", None, Payload::Raw("application/json", b"{not json".to_vec()));
    assert_problem(res.await, StatusCode::BAD_REQUEST, "malformed login JSON").await;
    let res = app.by(&admin, Method::POST, "/v1/users", Payload::Json(json!({"login": "p10", "role": "king"}))).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "unknown role").await;

    // 404: unknown records and routes; the text names no record
    let digest = "0".repeat(64);
    let res = app.by(&sup, Method::GET, &format!("/v1/evidence/{digest}"), Payload::Empty).await;
    let p = assert_problem(res, StatusCode::NOT_FOUND, "unknown evidence").await;
    assert_eq!(p["detail"], "no such record", "{p}");
    let res = app.by(&admin, Method::DELETE, "/v1/subjects/P-404", Payload::Empty).await;
    let p = assert_problem(res, StatusCode::NOT_FOUND, "unknown subject").await;
    assert!(!p.to_string().contains("P-404"), "{p}");
    let res = app.by(&admin, Method::PUT, "/v1/subjects/P-404/flags", Payload::Json(json!({"wanted": true}))).await;
    assert_problem(res, StatusCode::NOT_FOUND, "flags of nobody").await;
    let res = app.by(&admin, Method::POST, "/v1/users/ghost/disable", Payload::Empty).await;
    assert_problem(res, StatusCode::NOT_FOUND, "unknown account").await;
    let res = app.call(Method::GET, "/v1/nope", None, Payload::Empty).await;
    assert_problem(res, StatusCode::NOT_FOUND, "unknown route").await;
    // 405: a routed path with another method
    let res = app.call(Method::GET, "/v1/identify", None, Payload::Empty).await;
    assert_problem(res, StatusCode::METHOD_NOT_ALLOWED, "wrong method").await;

    // 409: the same registry id again, the same login again; the record is not echoed
    let res = app.by(&admin, Method::POST, "/v1/subjects", enrolment("P-1", "Doe", b"photo of P-1")).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", json_body(res).await);
    let res = app.by(&admin, Method::POST, "/v1/subjects", enrolment("P-1", "Secret", b"another photo")).await;
    let p = assert_problem(res, StatusCode::CONFLICT, "duplicate enrolment").await;
    assert!(!p.to_string().contains("P-1") && !p.to_string().contains("Secret"), "{p}");
    let user = || Payload::Json(json!({"login": "p9", "role": "patrol"}));
    assert_eq!(app.by(&admin, Method::POST, "/v1/users", user()).await.status(), StatusCode::CREATED);
    let p =
        assert_problem(app.by(&admin, Method::POST, "/v1/users", user()).await, StatusCode::CONFLICT, "dup user").await;
    assert!(!p.to_string().contains("p9"), "{p}");

    // 413: a declared length over the limit is refused before the body is read; an
    // upload announced larger than the upload limit is refused by the handler
    let res = app.by(&patrol, Method::POST, "/v1/identify", face(&[7; MAX_BODY])).await;
    assert_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "declared length").await;
    let huge = Payload::Json(json!({"length": 5u64 << 30}));
    assert_problem(app.by(&patrol, Method::POST, "/v1/uploads", huge).await, StatusCode::PAYLOAD_TOO_LARGE, "upload")
        .await;

    // 415: JSON where a form is expected, a form where JSON is expected
    let json_probe = Payload::Json(json!({"face": 1}));
    assert_problem(
        app.by(&patrol, Method::POST, "/v1/identify", json_probe).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "",
    )
    .await;
    let res = app.by(&admin, Method::POST, "/v1/subjects", Payload::Json(json!({"external_id": "P-2"}))).await;
    assert_problem(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "JSON enrolment").await;
    let res = app.by(&admin, Method::POST, "/v1/users", Payload::Raw("text/plain", b"login=p11".to_vec())).await;
    assert_problem(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "text account").await;

    // none of that reached the identification records: one enrolment, no probe answered
    let rows = app.state.catalog.audit_tail(100).await.unwrap();
    assert_eq!(rows.iter().filter(|r| r.action == "identify").count(), 0);
    assert!(app.state.catalog.events_after(0, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_model_stage_is_503_with_retry_after_until_it_frees() {
    // one worker, no queue: while it is held, every model request is refused at once
    let app = TestApp::with(|c| {
        c.model_workers = 1;
        c.model_queue = 0;
    })
    .await;
    app.add_users(&[("admin1", "admin"), ("patrol1", "patrol")]).await;
    let admin = app.login("admin1", "ws-1").await;
    let patrol = app.login("patrol1", "tab-1").await;
    let res = app.call(Method::POST, "/v1/subjects", Some(&admin), enrolment("P-1", "Doe", b"photo of P-1")).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let (release, wait) = mpsc::channel::<()>();
    let state = app.state.clone();
    let holder = tokio::spawn(async move {
        state
            .gate
            .run(move || {
                wait.recv().ok();
                Ok(())
            })
            .await
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.state.gate.slots().0 > 0 {
        assert!(std::time::Instant::now() < deadline, "the held job never took the slot");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let res = app.call(Method::POST, "/v1/identify", Some(&patrol), face(b"photo of P-1")).await;
    assert_eq!(res.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap()), Some("1"));
    let p = assert_problem(res, StatusCode::SERVICE_UNAVAILABLE, "identify while the worker is busy").await;
    assert_eq!(p["detail"], "the identification queue is full; retry later", "{p}");
    let res = app.call(Method::POST, "/v1/subjects", Some(&admin), enrolment("P-2", "Roe", b"photo of P-2")).await;
    assert_problem(res, StatusCode::SERVICE_UNAVAILABLE, "enrol while the worker is busy").await;
    let res = app.call(Method::POST, "/v1/subjects/P-1/templates", Some(&admin), face(b"new photo")).await;
    assert_problem(res, StatusCode::SERVICE_UNAVAILABLE, "templates while the worker is busy").await;
    // the refused probe left no trace
    let audited = app.state.catalog.audit_tail(50).await.unwrap();
    assert_eq!(audited.iter().filter(|r| r.action == "identify").count(), 0);

    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    assert_eq!(app.state.gate.slots(), (1, 1));
    let res = app.call(Method::POST, "/v1/identify", Some(&patrol), face(b"photo of P-1")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json_body(res).await["decision"], "match");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_guessing_and_request_bursts_are_429_with_retry_after() {
    let app = TestApp::with(|c| {
        c.rate_per_sec = 1;
        c.rate_burst = 3;
        c.login_attempts_per_min = 2;
    })
    .await;
    app.add_users(&[("patrol3", "patrol"), ("patrol4", "patrol")]).await;

    // the third attempt on one login name (any case) within a minute is 429, even with
    // the right password; another login name is not affected
    for _ in 0..2 {
        let res = app.login_with("Patrol3", "a guess", "tab-3").await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "guess").await;
    }
    let res = app.login_with("patrol3", oneshot::PASSWORD, "tab-3").await;
    let wait: u64 = res.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "third attempt").await;
    let tok = app.login("patrol4", "tab-4").await;

    // an account's burst of 3, then 429 until the bucket refills (1 per second)
    let get = || app.call(Method::GET, "/v1/audit", Some(&tok), Payload::Empty);
    for _ in 0..3 {
        assert_problem(get().await, StatusCode::FORBIDDEN, "patrol reads audit").await;
    }
    let res = get().await;
    assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    let p = assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "beyond the burst").await;
    assert!(!p.to_string().contains("patrol4"), "{p}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_problem(get().await, StatusCode::FORBIDDEN, "refilled").await;

    // metrics count those answers per route and status, and name nobody
    let res = app.call(Method::GET, "/v1/metrics", None, Payload::Empty).await;
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    for want in [
        r#"epatrol_http_requests_total{route="/v1/auth/login",method="POST",status="429"} 1"#,
        r#"epatrol_http_requests_total{route="/v1/auth/login",method="POST",status="401"} 2"#,
        r#"epatrol_http_requests_total{route="/v1/audit",method="GET",status="403"} 4"#,
        r#"epatrol_http_requests_total{route="/v1/audit",method="GET",status="429"} 1"#,
        "epatrol_http_request_duration_seconds_bucket",
        "epatrol_model_slots_free",
    ] {
        assert!(text.contains(want), "metrics lack {want}:\n{text}");
    }
    for secret in ["patrol3", "patrol4", "tab-4", tok.token.as_str()] {
        assert!(!text.contains(secret), "metrics must not name {secret}");
    }
}
