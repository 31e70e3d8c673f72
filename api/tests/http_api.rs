//! The HTTP API end to end: the real `epatrol serve` binary on an ephemeral port over a
//! temp data dir, real models, real HTTP through reqwest, ORL face images from
//! ../shared/datasets.

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
async fn http_api_login_roles_enrol_identify_limits_audit_shutdown() {
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

    // accounts: the bootstrap admin, plus a patrol officer and a dock made with the CLI
    add_user(&data, "patrol1", "patrol", "patrol-password-1");
    add_user(&data, "dock1", "dock", "dock-password-123");
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
    let dock = token(&http, &s, "dock1", "dock-password-123", "dock-1").await;
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
    // the same person again is a conflict that does not echo the record
    let form = Form::new()
        .text("record", json!({"external_id": "P-1", "surname": "Secret", "given_name": "Name"}).to_string())
        .part("face", Part::bytes(orl("s1/3.pgm")));
    let r = http
        .post(s.url("/v1/subjects"))
        .bearer_auth(&admin)
        .header("x-device-id", "ws-1")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::CONFLICT, "duplicate enrolment").await;
    assert!(!p.to_string().contains("P-1") && !p.to_string().contains("Secret"), "{p}");

    // authentication: none, forged, malformed, expired, other device → 401
    problem(identify(&http, &s, None, "tab-1", face_form("s1/7.pgm")).await, StatusCode::UNAUTHORIZED, "no token")
        .await;
    let forged = "ab".repeat(32);
    problem(
        identify(&http, &s, Some(&forged), "tab-1", face_form("s1/7.pgm")).await,
        StatusCode::UNAUTHORIZED,
        "forged",
    )
    .await;
    problem(
        identify(&http, &s, Some("abc"), "tab-1", face_form("s1/7.pgm")).await,
        StatusCode::UNAUTHORIZED,
        "malformed",
    )
    .await;
    problem(
        identify(&http, &s, Some(&patrol), "tab-2", face_form("s1/7.pgm")).await,
        StatusCode::UNAUTHORIZED,
        "other device",
    )
    .await;
    let expired = "cd".repeat(32);
    {
        let cat = Catalog::open_in(&data).await.unwrap();
        let uid = cat.user_by_login("patrol1").await.unwrap().unwrap().id;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(expired.as_bytes()));
        cat.insert_token(&digest, uid, "tab-1", now - 7200, now - 3600).await.unwrap();
        cat.close().await;
    }
    problem(
        identify(&http, &s, Some(&expired), "tab-1", face_form("s1/7.pgm")).await,
        StatusCode::UNAUTHORIZED,
        "expired",
    )
    .await;

    // roles: a dock may not identify, a patrol officer may not enrol
    problem(
        identify(&http, &s, Some(&dock), "dock-1", face_form("s1/7.pgm")).await,
        StatusCode::FORBIDDEN,
        "dock identify",
    )
    .await;
    let form = Form::new().text("record", "{}").part("face", Part::bytes(orl("s3/1.pgm")));
    let r = http
        .post(s.url("/v1/subjects"))
        .bearer_auth(&patrol)
        .header("x-device-id", "tab-1")
        .multipart(form)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::FORBIDDEN, "patrol enrol").await;

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

    // bad input: clean problem+json, never a 500
    let r = http
        .post(s.url("/v1/identify"))
        .bearer_auth(&patrol)
        .header("x-device-id", "tab-1")
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"face\"\r\n\r\ntruncated")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "truncated multipart").await;
    let r = http
        .post(s.url("/v1/identify"))
        .bearer_auth(&patrol)
        .header("x-device-id", "tab-1")
        .json(&json!({"face": 1}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "JSON instead of multipart").await;
    // an oversized body is refused on its declared length, before it is read; a raw socket
    // because a client still writing when the server answers and closes sees a broken pipe
    let head = oversized_head(&s, &patrol, max_body + 1).await;
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(head.contains("content-type: application/problem+json"), "{head}");
    let form = Form::new().text("photo", "x");
    problem(identify(&http, &s, Some(&patrol), "tab-1", form).await, StatusCode::BAD_REQUEST, "unknown field").await;
    let form = Form::new().part("face", Part::bytes(b"not an image".to_vec()));
    problem(identify(&http, &s, Some(&patrol), "tab-1", form).await, StatusCode::BAD_REQUEST, "not an image").await;
    problem(http.get(s.url("/v1/nope")).send().await.unwrap(), StatusCode::NOT_FOUND, "unknown route").await;
    problem(http.get(s.url("/v1/identify")).send().await.unwrap(), StatusCode::METHOD_NOT_ALLOWED, "wrong method")
        .await;

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

    // administrators read the same rows over HTTP (and that read is audited); others may not
    let get_audit = |tok: &str, device: &str, q: &str| {
        http.get(s.url(&format!("/v1/audit{q}"))).bearer_auth(tok).header("x-device-id", device).send()
    };
    let r = get_audit(&admin, "ws-1", "?limit=50").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rows: Vec<Value> = r.json().await.unwrap();
    let row = rows.iter().find(|r| r["id"] == match_audit_id).expect("match row over HTTP");
    assert_eq!((&row["actor"], &row["device"], &row["outcome"]), (&json!("patrol1"), &json!("tab-1"), &json!("match")));
    assert!(row["detail"].is_object(), "{row}");
    problem(get_audit(&patrol, "tab-1", "").await.unwrap(), StatusCode::FORBIDDEN, "patrol reads audit").await;
    problem(get_audit(&admin, "ws-1", "?limit=0").await.unwrap(), StatusCode::BAD_REQUEST, "limit 0").await;
    problem(get_audit(&admin, "ws-1", "?limit=abc").await.unwrap(), StatusCode::BAD_REQUEST, "limit abc").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_rate_limits_per_account_and_login_and_prometheus_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().to_path_buf();
    let s = Server::start(&data, &["--rate-per-sec", "1", "--rate-burst", "3", "--login-attempts-per-min", "2"]);
    add_user(&data, "patrol3", "patrol", "patrol-password-3");
    let http = reqwest::Client::new();

    // password guessing: the third attempt on one login name within a minute is 429,
    // even with the right password; another login name is not affected
    for _ in 0..2 {
        problem(login(&http, &s, "Admin", "guess", "ws-1").await, StatusCode::UNAUTHORIZED, "guess").await;
    }
    let r = login(&http, &s, "admin", &s.admin_password, "ws-1").await;
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    problem(r, StatusCode::TOO_MANY_REQUESTS, "third attempt").await;
    let tok = token(&http, &s, "patrol3", "patrol-password-3", "tab-3").await;

    // an account's burst of 3, then 429 until the bucket refills (1 per second)
    let get = || http.get(s.url("/v1/audit")).bearer_auth(&tok).header("x-device-id", "tab-3").send();
    for _ in 0..3 {
        problem(get().await.unwrap(), StatusCode::FORBIDDEN, "patrol reads audit").await;
    }
    let r = get().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "1");
    problem(r, StatusCode::TOO_MANY_REQUESTS, "beyond the burst").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    problem(get().await.unwrap(), StatusCode::FORBIDDEN, "refilled").await;

    // metrics: no login, counts by route and status, nothing personal
    let r = http.get(s.url("/v1/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
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
    for secret in ["patrol3", "admin", "tab-3", &tok] {
        assert!(!text.contains(secret), "metrics must not name {secret}");
    }
}

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

/// HTTPS from a config file: a self-signed certificate (openssl), settings in TOML, the
/// client trusting only that certificate; plain HTTP to the TLS port gets no answer; a
/// missing key file stops the server at start with a message naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_serves_tls_configured_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        // a server certificate, not a CA (webpki refuses a CA as the end entity)
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let config = dir.path().join("serve.toml");
    let mut f = std::fs::File::create(&config).unwrap();
    writeln!(f, "tls_cert = {:?}\ntls_key = {:?}\nrate_burst = 50\nface_index = \"exact\"", cert, key).unwrap();
    drop(f);

    let s = Server::start(&data, &["--config", config.to_str().unwrap()]);
    assert!(s.base.starts_with("https://127.0.0.1:"), "{}", s.base);
    let pem = std::fs::read(&cert).unwrap();
    let https =
        reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()]).build().unwrap();
    let r = https.get(s.url("/v1/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let admin = token(&https, &s, "admin", &s.admin_password, "ws-1").await;
    let r = https.get(s.url("/v1/audit")).bearer_auth(&admin).header("x-device-id", "ws-1").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // a client that does not trust this certificate is refused by its own TLS stack
    assert!(reqwest::Client::new().get(s.url("/v1/health")).send().await.is_err());
    // plain HTTP to the TLS port: no HTTP answer
    let plain = s.base.replace("https://", "http://");
    let r = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
        .get(format!("{plain}/v1/health"))
        .send()
        .await;
    assert!(r.is_err(), "plain HTTP answered: {:?}", r.map(|r| r.status()));
    drop(s);

    let out = Command::new(env!("CARGO_BIN_EXE_epatrol"))
        .arg("--data")
        .arg(&data)
        .args(["serve", "--bind", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(dir.path().join("missing.pem"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("private key") && err.contains("missing.pem"), "{err}");
}
