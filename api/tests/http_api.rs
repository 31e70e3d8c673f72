//! The HTTP API end to end: the real `epatrol serve` binary on an ephemeral port over a
//! temp data dir, real models, real HTTP through reqwest, ORL face images from
//! ../shared/datasets. Roles, tokens and the problem mappings are checked in process,
//! without models, by `http_roles.rs` and `http_problems.rs`; this is the smoke test of
//! identification, enrolment, events and audit with the real models and process.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, add_user, login, problem, read_head, token};

use epatrol_store::Catalog;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

fn orl(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/faces/orl").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (tests need ../shared beside the repo)", p.display()))
}

fn face_form(rel: &str) -> Form {
    Form::new().part("face", Part::bytes(orl(rel)).file_name("probe.pgm"))
}

async fn identify(
    http: &reqwest::Client,
    s: &Server,
    tok: Option<&str>,
    device: &str,
    form: Form,
) -> reqwest::Response {
    let mut rq = http.post(s.url("/v1/identify")).header("x-device-id", device).multipart(form);
    if let Some(t) = tok {
        rq = rq.bearer_auth(t);
    }
    rq.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_smoke_login_enrol_identify_events_audit_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().to_path_buf();
    let max_body = 512 * 1024; // two FVC prints (166 KB each) fit
    let s = Server::start(
        &data,
        &["--max-body-bytes", &max_body.to_string(), "--model-workers", "2", "--request-timeout-secs", "300"],
    );
    assert_eq!(s.admin_password.len(), 64, "first start prints the administrator's one-time password");
    let http = reqwest::Client::new();

    // health and the OpenAPI document need no token
    let r = http.get(s.url("/v1/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    let doc: Value = http.get(s.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    for path in ["/v1/health", "/v1/auth/login", "/v1/identify", "/v1/subjects", "/v1/audit"] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["paths"]["/v1/identify"]["post"]["responses"]["503"].is_object());

    // accounts: the bootstrap admin, plus a patrol officer made with the CLI (every role
    // on every route is checked in process by http_roles.rs)
    add_user(&data, "patrol1", "patrol", "patrol-password-1");
    let p =
        problem(login(&http, &s, "admin", "wrong password", "ws-1").await, StatusCode::UNAUTHORIZED, "bad pw").await;
    assert!(!p.to_string().contains("wrong password"), "the password is not echoed: {p}");
    problem(login(&http, &s, "nobody", "x", "ws-1").await, StatusCode::UNAUTHORIZED, "unknown login").await;
    let r = http
        .post(s.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "malformed login JSON").await;
    let admin = token(&http, &s, "admin", &s.admin_password, "ws-1").await;
    let patrol = token(&http, &s, "patrol1", "patrol-password-1", "tab-1").await;
    assert_eq!(patrol.len(), 64);

    // admin enrols s1 (wanted) and s2 from two photos each
    for (n, wanted) in [(1, true), (2, false)] {
        let record = json!({"external_id": format!("P-{n}"), "surname": format!("Surname{n}"), "given_name": "Test",
                            "date_of_birth": "1980-01-01", "flags": {"wanted": wanted}});
        let form = Form::new()
            .text("record", record.to_string())
            .part("face", Part::bytes(orl(&format!("s{n}/1.pgm"))))
            .part("face", Part::bytes(orl(&format!("s{n}/2.pgm"))));
        let r = http
            .post(s.url("/v1/subjects"))
            .bearer_auth(&admin)
            .header("x-device-id", "ws-1")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "enrol s{n}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["templates"], 2);
        assert_eq!(body["external_id"], format!("P-{n}"));
    }
    // a person enrolled from two fingerprint impressions only
    let fvc = |name: &str| {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/datasets/fingerprints/fvc2002_db2_b")
                .join(name),
        )
        .unwrap()
    };
    let form = Form::new()
        .text("record", json!({"external_id": "P-F", "surname": "Print", "given_name": "Only"}).to_string())
        .part("finger_2", Part::bytes(fvc("101_1.tif")))
        .part("finger_2", Part::bytes(fvc("101_2.tif")));
    let r = http
        .post(s.url("/v1/subjects"))
        .bearer_auth(&admin)
        .header("x-device-id", "ws-1")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "enrol by fingerprints");
    // a held-back photo of s1 is identified; the officer sees identity and flags only
    let r = identify(&http, &s, Some(&patrol), "tab-1", face_form("s1/7.pgm")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["decision"], "match", "{body}");
    assert_eq!(body["person"]["external_id"], "P-1");
    assert_eq!(body["flags"]["wanted"], true);
    assert_eq!(body["escort_to_station"], true, "wanted people are escorted");
    for hidden in ["candidates", "times", "quality", "threshold", "template", "embedding"] {
        assert!(body.get(hidden).is_none(), "patrol answer must not carry `{hidden}`: {body}");
    }
    let match_audit_id = body["audit_id"].as_i64().unwrap();
    // someone not enrolled: no match, escort, no person
    let body: Value = identify(&http, &s, Some(&patrol), "tab-1", face_form("s20/1.pgm")).await.json().await.unwrap();
    assert_eq!(body["decision"], "no_match", "{body}");
    assert!(body.get("person").is_none() && body["escort_to_station"] == true, "{body}");
    // fingerprint first: another impression of P-F's finger decides by itself
    let form = Form::new().part("finger", Part::bytes(fvc("101_5.tif")));
    let body: Value = identify(&http, &s, Some(&patrol), "tab-1", form).await.json().await.unwrap();
    assert_eq!((body["decision"].as_str(), body["modality"].as_str()), (Some("match"), Some("finger")), "{body}");
    assert_eq!(body["person"]["external_id"], "P-F");
    // an unenrolled print is inconclusive, the face photo decides
    let form = face_form("s1/7.pgm").part("finger", Part::bytes(fvc("110_1.tif")).file_name("print.tif"));
    let body: Value = identify(&http, &s, Some(&patrol), "tab-1", form).await.json().await.unwrap();
    assert_eq!((body["decision"].as_str(), body["modality"].as_str()), (Some("match"), Some("face")), "{body}");
    assert!(body["fallback"].as_str().unwrap().contains("fingerprint"), "{body}");

    // events: every final answer is in the durable outbox, delivered over SSE from any
    // point; the inconclusive print that the face overruled is not an event of its own
    add_user(&data, "sup1", "supervisor", "supervisor-password-1");
    let sup = token(&http, &s, "sup1", "supervisor-password-1", "duty-1").await;
    let subscribe = |tok: &str, dev: &str, q: &str| {
        http.get(s.url(&format!("/v1/events{q}"))).bearer_auth(tok).header("x-device-id", dev).send()
    };
    problem(subscribe(&patrol, "tab-1", "").await.unwrap(), StatusCode::FORBIDDEN, "patrol subscribes").await;
    problem(subscribe(&sup, "duty-1", "?after=x").await.unwrap(), StatusCode::BAD_REQUEST, "bad after").await;
    let mut replay = SseReader::new(subscribe(&sup, "duty-1", "?after=0").await.unwrap());
    let ev = replay.next(4).await;
    let field = |i: usize, k: &str| ev[i]["data"][k].clone();
    assert!(ev.iter().all(|e| e["event"] == "identification.registered"), "{ev:?}");
    assert_eq!(field(0, "audit_id"), json!(match_audit_id));
    assert_eq!((field(0, "decision"), field(0, "external_id")), (json!("match"), json!("P-1")));
    assert_eq!((field(0, "officer"), field(0, "device")), (json!("patrol1"), json!("tab-1")));
    assert_eq!((field(0, "flags")["wanted"].clone(), field(0, "escort_to_station")), (json!(true), json!(true)));
    assert!(ev[0]["data"].get("surname").is_none(), "no names in events: {ev:?}");
    assert_eq!((field(1, "decision"), field(1, "escort_to_station")), (json!("no_match"), json!(true)));
    assert_eq!((field(2, "modality"), field(2, "external_id")), (json!("finger"), json!("P-F")));
    assert_eq!((field(3, "modality"), field(3, "decision")), (json!("face"), json!("match")));
    drop(replay);
    // live: a subscriber from now on sees the next identification at once; one that
    // resumes with Last-Event-ID gets what it missed
    let mut live = SseReader::new(subscribe(&sup, "duty-1", "").await.unwrap());
    let r = identify(&http, &s, Some(&patrol), "tab-1", face_form("s1/7.pgm")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let got = live.next(1).await;
    assert_eq!(got[0]["data"]["external_id"], "P-1", "{got:?}");
    let second = ev[1]["id"].as_str().unwrap().to_string();
    let r = http
        .get(s.url("/v1/events"))
        .bearer_auth(&sup)
        .header("x-device-id", "duty-1")
        .header("last-event-id", &second)
        .send()
        .await
        .unwrap();
    let resumed = SseReader::new(r).next(3).await;
    let ids: Vec<i64> = resumed.iter().map(|e| e["id"].as_str().unwrap().parse().unwrap()).collect();
    let from: i64 = second.parse().unwrap();
    assert_eq!(ids, [from + 1, from + 2, from + 3], "resumes right after the last id seen");

    // finger positions: P-F was enrolled as finger 2 (right index); a probe sent as
    // another finger is not compared with it, one sent as finger 2 or unknown is
    let by_finger = |field: &'static str| Form::new().part(field, Part::bytes(fvc("101_5.tif")));
    let body: Value = identify(&http, &s, Some(&patrol), "tab-1", by_finger("finger_2")).await.json().await.unwrap();
    assert_eq!((body["decision"].as_str(), body["person"]["external_id"].as_str()), (Some("match"), Some("P-F")));
    let body: Value = identify(&http, &s, Some(&patrol), "tab-1", by_finger("finger_7")).await.json().await.unwrap();
    assert_eq!(body["decision"], "no_match", "another finger: {body}");
    problem(
        identify(&http, &s, Some(&patrol), "tab-1", by_finger("finger_11")).await,
        StatusCode::BAD_REQUEST,
        "pos 11",
    )
    .await;

    // flags change: the warrant on P-1 is lifted and P-1 reported missing instead; the
    // next answer carries the new flags and the new escort reason
    let put_flags = |tok: &str, dev: &str, id: &str, body: Value| {
        http.put(s.url(&format!("/v1/subjects/{id}/flags")))
            .bearer_auth(tok)
            .header("x-device-id", dev)
            .json(&body)
            .send()
    };
    let r = put_flags(&admin, "ws-1", "P-1", json!({"missing": true})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = identify(&http, &s, Some(&patrol), "tab-1", face_form("s1/7.pgm")).await.json().await.unwrap();
    assert_eq!(
        (body["flags"]["wanted"].clone(), body["flags"]["missing"].clone()),
        (json!(false), json!(true)),
        "{body}"
    );
    assert_eq!(body["escort_reason"], "reported missing", "{body}");
    problem(put_flags(&patrol, "tab-1", "P-1", json!({})).await.unwrap(), StatusCode::FORBIDDEN, "patrol sets flags")
        .await;
    problem(put_flags(&admin, "ws-1", "P-404", json!({})).await.unwrap(), StatusCode::NOT_FOUND, "unknown person")
        .await;
    problem(
        put_flags(&admin, "ws-1", "P-1", json!({"armed": true})).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad flag",
    )
    .await;

    // templates added later: a face photo and a print of P-2; then the print alone finds them
    let add = |tok: &str, dev: &str, id: &str, form: Form| {
        http.post(s.url(&format!("/v1/subjects/{id}/templates")))
            .bearer_auth(tok)
            .header("x-device-id", dev)
            .multipart(form)
            .send()
    };
    let form = face_form("s2/3.pgm").part("finger_3", Part::bytes(fvc("102_1.tif")));
    let r = add(&admin, "ws-1", "P-2", form).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["templates"], 2);
    let form = Form::new().part("finger_3", Part::bytes(fvc("102_2.tif")));
    let body: Value = identify(&http, &s, Some(&patrol), "tab-1", form).await.json().await.unwrap();
    assert_eq!((body["decision"].as_str(), body["person"]["external_id"].as_str()), (Some("match"), Some("P-2")));
    problem(add(&patrol, "tab-1", "P-2", face_form("s2/4.pgm")).await.unwrap(), StatusCode::FORBIDDEN, "patrol adds")
        .await;
    problem(add(&admin, "ws-1", "P-404", face_form("s2/4.pgm")).await.unwrap(), StatusCode::NOT_FOUND, "nobody").await;
    let bad = face_form("s2/4.pgm").part("face", Part::bytes(b"not an image".to_vec()));
    problem(add(&admin, "ws-1", "P-2", bad).await.unwrap(), StatusCode::BAD_REQUEST, "one bad image").await;

    // deletion: refused to patrol; for the administrator the person is gone at once (the
    // next identification with their photo matches nobody) and a second delete is 404
    let del = |tok: &str, dev: &str, id: &str| {
        http.delete(s.url(&format!("/v1/subjects/{id}"))).bearer_auth(tok).header("x-device-id", dev).send()
    };
    problem(del(&patrol, "tab-1", "P-1").await.unwrap(), StatusCode::FORBIDDEN, "patrol deletes").await;
    let r = del(&admin, "ws-1", "P-1").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let gone: Value = r.json().await.unwrap();
    assert_eq!((gone["face_templates"].clone(), gone["finger_templates"].clone()), (json!(2), json!(0)), "{gone}");
    let body: Value = identify(&http, &s, Some(&patrol), "tab-1", face_form("s1/7.pgm")).await.json().await.unwrap();
    assert_eq!(body["decision"], "no_match", "a deleted person is never matched: {body}");
    problem(del(&admin, "ws-1", "P-1").await.unwrap(), StatusCode::NOT_FOUND, "deleted twice").await;
    let cat = Catalog::open_in(&data).await.unwrap();
    assert!(cat.subject_by_external_id("P-1").await.is_err());
    let rows = cat.audit_tail(100).await.unwrap();
    assert!(rows.iter().any(|r| r.action == "subject.delete" && r.actor == "admin" && r.device == "ws-1"));
    let added = rows.iter().filter(|r| r.action == "subject.templates").count();
    assert_eq!(added, 1, "one audited addition; the refused ones stored nothing");
    cat.close().await;

    // an oversized body is refused on its declared length, before it is read; a raw socket
    // because a client still writing when the server answers and closes sees a broken pipe
    // bad input: clean problem+json, never a 500 (the other mappings are in http_problems.rs)
    let head = oversized_head(&s, &patrol, max_body + 1).await;
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(head.contains("content-type: application/problem+json"), "{head}");
    let form = Form::new().part("face", Part::bytes(b"not an image".to_vec()));
    problem(identify(&http, &s, Some(&patrol), "tab-1", form).await, StatusCode::BAD_REQUEST, "not an image").await;

    // the audit log has the identification with officer and device, and the failed login
    let cat = Catalog::open_in(&data).await.unwrap();
    let rows = cat.audit_tail(200).await.unwrap();
    let row = rows.iter().find(|r| r.id == match_audit_id).expect("audit row of the match");
    assert_eq!(
        (row.actor.as_str(), row.device.as_str(), row.action.as_str(), row.outcome.as_str()),
        ("patrol1", "tab-1", "identify", "match")
    );
    assert!(row.subject_id.is_some());
    assert!(rows.iter().any(|r| r.action == "login" && r.outcome == "denied" && r.actor == "admin"));
    assert!(rows.iter().any(|r| r.action == "enroll" && r.actor == "admin"));
    cat.close().await;

    // administrators read the same rows over HTTP (and that read is audited)
    let get_audit = |tok: &str, device: &str, q: &str| {
        http.get(s.url(&format!("/v1/audit{q}"))).bearer_auth(tok).header("x-device-id", device).send()
    };
    let r = get_audit(&admin, "ws-1", "?limit=50").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rows: Vec<Value> = r.json().await.unwrap();
    let row = rows.iter().find(|r| r["id"] == match_audit_id).expect("match row over HTTP");
    assert_eq!((&row["actor"], &row["device"], &row["outcome"]), (&json!("patrol1"), &json!("tab-1"), &json!("match")));
    assert!(row["detail"].is_object(), "{row}");
    let cat = Catalog::open_in(&data).await.unwrap();
    let reads = cat.audit_tail(5).await.unwrap();
    assert!(reads.iter().any(|r| r.action == "audit.read" && r.actor == "admin" && r.device == "ws-1"));
    cat.close().await;

    // SIGTERM: graceful stop, exit 0, even with an event stream still open
    let _live = live;
    let mut s = s;
    let pid = s.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "server did not stop within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // the reader thread drains the closed pipe, then the channel disconnects
    let rest: Vec<String> = std::iter::from_fn(|| s.stderr.recv_timeout(Duration::from_secs(5)).ok()).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

/// Reads Server-Sent Events from a streaming response: `{id, event, data}` per event.
struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    fn new(resp: reqwest::Response) -> Self {
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self { resp, buf: String::new() }
    }

    /// The next `n` events (keep-alive comments skipped); fails after 20 s.
    async fn next(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while out.len() < n {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = json!({});
                for line in block.lines() {
                    if let Some((k, v)) = line.split_once(':') {
                        let v = v.strip_prefix(' ').unwrap_or(v);
                        match k {
                            "id" | "event" => ev[k] = json!(v),
                            "data" => ev["data"] = serde_json::from_str(v).unwrap(),
                            _ => {}
                        }
                    }
                }
                if ev.get("event").is_some() {
                    out.push(ev);
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.resp.chunk()).await.expect("events within 20 s").unwrap();
            self.buf.push_str(&String::from_utf8_lossy(&chunk.expect("stream ended")));
        }
        out
    }
}

/// Sends identify headers declaring a `len`-byte multipart body plus its first bytes
/// over a raw socket and returns the response head.
async fn oversized_head(s: &Server, token: &str, len: usize) -> String {
    let addr = s.base.trim_start_matches("http://").to_string();
    let head = format!(
        "POST /v1/identify HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nX-Device-Id: tab-1\r\n\
         Content-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: {len}\r\n\r\n\
         --XYZ\r\nContent-Disposition: form-data; name=\"face\"\r\n\r\n"
    );
    tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        tcp.write_all(head.as_bytes()).unwrap();
        read_head(&mut tcp)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_full_model_queue_is_503_with_retry_after_and_slow_bodies_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().to_path_buf();
    // one model worker, no queue: a second probe arriving while one runs is refused
    let s = Server::start(&data, &["--model-workers", "1", "--model-queue", "0", "--request-timeout-secs", "2"]);
    add_user(&data, "patrol2", "patrol", "patrol-password-2");
    let http = reqwest::Client::new();
    let tok = token(&http, &s, "patrol2", "patrol-password-2", "tab-9").await;

    // bursts of simultaneous probes until one finds the queue full (the first burst
    // nearly always does; a few bursts make a quiet scheduler no reason to fail)
    let mut refused = 0;
    for _ in 0..5 {
        let burst = (0..8).map(|_| identify(&http, &s, Some(&tok), "tab-9", face_form("s5/1.pgm")));
        for r in futures::future::join_all(burst).await {
            match r.status() {
                StatusCode::OK => {
                    let body: Value = r.json().await.unwrap();
                    assert_eq!(body["decision"], "no_match", "empty gallery: {body}");
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(r.headers()["retry-after"], "1");
                    problem(r, StatusCode::SERVICE_UNAVAILABLE, "queue full").await;
                    refused += 1;
                }
                other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "no probe was refused with one worker, no queue and bursts of 8");
    // a refused client that waits Retry-After and retries is served
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(identify(&http, &s, Some(&tok), "tab-9", face_form("s5/1.pgm")).await.status(), StatusCode::OK);

    // a client that stops sending its body mid-way gets 408 problem+json after the
    // request timeout, and the connection is closed
    let addr = s.base.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let head = tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        tcp.write_all(
            b"POST /v1/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"login\":",
        )
        .unwrap();
        read_head(&mut tcp)
    })
    .await
    .unwrap();
    assert!(head.starts_with("http/1.1 408"), "{head}");
    assert!(head.contains("content-type: application/problem+json"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(started.elapsed() >= Duration::from_millis(1900), "answered before the timeout: {:?}", started.elapsed());
}
