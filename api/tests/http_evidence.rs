//! Evidence over HTTP end to end, through the real `epatrol serve` binary: a patrol
//! officer uploads footage, a dock uploads in parts across a server crash, a supervisor
//! files an incident, opens a case for an investigator and places a hold, and the
//! investigator finds, reads (byte ranges) and audits only that case's footage. Run once
//! on the local vault and once on a real S3 server (moto on 127.0.0.1).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Server, add_user, problem, token};
use epatrol_store::Catalog;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn video(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/video").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (tests need ../shared beside the repo)", p.display()))
}

#[path = "../../store/tests/common/moto.rs"]
mod moto;
use moto::s3_endpoint;

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn req(&self, m: reqwest::Method, path: &str, (tok, dev): (&str, &str)) -> reqwest::RequestBuilder {
        self.http.request(m, format!("{}{path}", self.base)).bearer_auth(tok).header("x-device-id", dev)
    }
    async fn get(&self, path: &str, who: (&str, &str)) -> reqwest::Response {
        self.req(reqwest::Method::GET, path, who).send().await.unwrap()
    }
    async fn post_json(&self, path: &str, who: (&str, &str), body: Value) -> reqwest::Response {
        self.req(reqwest::Method::POST, path, who).json(&body).send().await.unwrap()
    }
    async fn post_bytes(&self, path: &str, who: (&str, &str), body: Vec<u8>) -> reqwest::Response {
        self.req(reqwest::Method::POST, path, who)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .unwrap()
    }
    async fn put_bytes(&self, path: &str, who: (&str, &str), body: Vec<u8>) -> reqwest::Response {
        self.req(reqwest::Method::PUT, path, who).body(body).send().await.unwrap()
    }
}

async fn json_of(r: reqwest::Response, status: StatusCode, what: &str) -> Value {
    let got = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(got, status, "{what}: {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Each account's token and device, as the requests take them.
#[derive(Clone, Copy)]
struct Tokens<'a> {
    p1: (&'a str, &'a str),
    dock1: (&'a str, &'a str),
    sup1: (&'a str, &'a str),
    inv1: (&'a str, &'a str),
    inv2: (&'a str, &'a str),
    admin: (&'a str, &'a str),
}

/// The evidence story, step by step, on one server (restarted once) and one data dir.
async fn scenario(vault: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let mut args = vec!["--max-body-bytes".to_string(), "524288".into(), "--max-upload-bytes".into(), "8000000".into()];
    if let Some(v) = &vault {
        args.extend(["--vault".into(), v.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_REGION", "us-east-1")];
    let server = Server::start_with_env(&data, &args, &env);
    for (login, role) in [
        ("p1", "patrol"),
        ("dock1", "dock"),
        ("sup1", "supervisor"),
        ("inv1", "investigator"),
        ("inv2", "investigator"),
    ] {
        add_user(&data, login, role, &format!("{login}-password-long"));
    }
    let http = reqwest::Client::new();
    let tok =
        async |s: &Server, login: &str, dev: &str| token(&http, s, login, &format!("{login}-password-long"), dev).await;
    let (p1, dock1, sup1, inv1, inv2) = (
        tok(&server, "p1", "tab-1").await,
        tok(&server, "dock1", "dock-A").await,
        tok(&server, "sup1", "ws-1").await,
        tok(&server, "inv1", "ws-2").await,
        tok(&server, "inv2", "ws-3").await,
    );
    let admin = token(&http, &server, "admin", &server.admin_password, "ws-0").await;
    let t = Tokens {
        p1: (&p1, "tab-1"),
        dock1: (&dock1, "dock-A"),
        sup1: (&sup1, "ws-1"),
        inv1: (&inv1, "ws-2"),
        inv2: (&inv2, "ws-3"),
        admin: (&admin, "ws-0"),
    };

    let mut server = server;
    let c = Client { http: http.clone(), base: server.base.clone() };
    let (a, da) = patrol_uploads(&c, &t).await;
    let (c, dg) = dock_upload_survives_a_crash(&c, &t, &mut server, &data, &args, &env).await;
    who_may_search(&c, &t, &da, &dg).await;
    incident_and_case(&c, &t, &da, &dg).await;
    ranges_and_thumbnails(&c, &t, &da, &a).await;
    holds_custody_and_audit(&c, &t, &da, &data).await;
    closing_a_case(&c, &t).await;
    drop(server);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// A patrol officer uploads a file (twice: a duplicate) and is refused what they may
/// not do; bad uploads store nothing. Returns the bytes and digest of the stored file.
async fn patrol_uploads(c: &Client, t: &Tokens<'_>) -> (Vec<u8>, String) {
    let Tokens { p1, sup1, .. } = *t;
    // a patrol officer uploads a 3 MB file (above the 512 KiB limit of other endpoints)
    let a = video("a_h264_aac_720p30_20s.mp4");
    let up = "/v1/evidence?device=cam-7&name=a.mp4";
    let out = json_of(c.post_bytes(up, p1, a.clone()).await, StatusCode::CREATED, "patrol upload").await;
    assert_eq!((out["status"].as_str(), out["size"].as_u64()), (Some("stored"), Some(a.len() as u64)));
    let da = out["digest"].as_str().unwrap().to_string();
    assert_eq!(da, blake3::hash(&a).to_hex().as_str());
    let out = json_of(c.post_bytes(up, p1, a.clone()).await, StatusCode::OK, "same bytes again").await;
    assert_eq!(out["status"], "duplicate");
    // what a patrol officer may not do, and bad uploads that store nothing. Requests refused
    // before the body is read carry a small body: the server answers and closes at once,
    // and a client still sending megabytes sees a broken pipe instead of the answer
    // (real clients send `Expect: 100-continue`, see docs/http.md)
    let small = || b"not read".to_vec();
    problem(c.post_bytes("/v1/evidence?device=cam-7&officer=p2", p1, small()).await, StatusCode::FORBIDDEN, "other's")
        .await;
    let p = problem(c.post_bytes(up, p1, video("f_text_renamed.mp4")).await, StatusCode::BAD_REQUEST, "text").await;
    assert!(p["detail"].as_str().unwrap().starts_with("not stored"), "{p}");
    let wrong = format!("{up}&blake3={}", "0".repeat(64));
    problem(c.post_bytes(&wrong, p1, video("g_faststart.mp4")).await, StatusCode::BAD_REQUEST, "digest mismatch").await;
    problem(
        c.post_bytes("/v1/evidence?device=x&name=../../etc/passwd", p1, small()).await,
        StatusCode::BAD_REQUEST,
        "path",
    )
    .await;
    problem(c.post_bytes("/v1/evidence?name=a.mp4", p1, small()).await, StatusCode::BAD_REQUEST, "no device").await;
    problem(c.post_bytes(up, p1, Vec::new()).await, StatusCode::BAD_REQUEST, "empty").await;
    problem(c.post_bytes(up, sup1, small()).await, StatusCode::FORBIDDEN, "supervisor uploads").await;

    (a, da)
}

/// A dock's resumable upload: half the parts, a server crash (SIGKILL) and restart,
/// the rest. Returns the client of the restarted server and the item's digest.
async fn dock_upload_survives_a_crash(
    c: &Client,
    t: &Tokens<'_>,
    server: &mut Server,
    data: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Client, String) {
    let Tokens { p1, dock1, .. } = *t;
    // a dock uploads g in 64 KiB parts; the server dies after some of them
    let g = video("g_faststart.mp4");
    let part = 64 * 1024usize;
    let begin = json!({"length": g.len(), "part_size": part, "blake3": blake3::hash(&g).to_hex().as_str()});
    let st = json_of(c.post_json("/v1/uploads", dock1, begin).await, StatusCode::CREATED, "begin").await;
    let id = st["id"].as_str().unwrap().to_string();
    let parts = st["parts"].as_u64().unwrap() as usize;
    assert_eq!(parts, g.len().div_ceil(part));
    let chunk = |i: usize| g[i * part..((i + 1) * part).min(g.len())].to_vec();
    for i in (0..parts).filter(|i| i % 2 == 0) {
        let r = c.put_bytes(&format!("/v1/uploads/{id}/parts/{i}"), dock1, chunk(i)).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    problem(
        c.put_bytes(&format!("/v1/uploads/{id}/parts/1"), dock1, vec![0; 10]).await,
        StatusCode::BAD_REQUEST,
        "short",
    )
    .await;
    problem(c.get(&format!("/v1/uploads/{id}"), p1).await, StatusCode::NOT_FOUND, "someone else's upload").await;
    drop(std::mem::replace(server, Server::start_with_env(data, args, env))); // SIGKILL: a dock's power cut is our crash too
    let c = Client { http: c.http.clone(), base: server.base.clone() };
    let st = json_of(c.get(&format!("/v1/uploads/{id}"), dock1).await, StatusCode::OK, "status after restart").await;
    let received: Vec<usize> = serde_json::from_value(st["received"].clone()).unwrap();
    assert_eq!(received, (0..parts).filter(|i| i % 2 == 0).collect::<Vec<_>>(), "{st}");
    let done = json!({"officer": "p1", "device": "cam-9"});
    problem(
        c.post_json(&format!("/v1/uploads/{id}/complete"), dock1, done.clone()).await,
        StatusCode::BAD_REQUEST,
        "gaps",
    )
    .await;
    for i in (0..parts).filter(|i| !received.contains(i)) {
        let r = c.put_bytes(&format!("/v1/uploads/{id}/parts/{i}"), dock1, chunk(i)).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    problem(
        c.post_json(&format!("/v1/uploads/{id}/complete"), dock1, json!({"device": "cam-9"})).await,
        StatusCode::BAD_REQUEST,
        "dock without officer",
    )
    .await;
    let out =
        json_of(c.post_json(&format!("/v1/uploads/{id}/complete"), dock1, done).await, StatusCode::CREATED, "done")
            .await;
    let dg = out["digest"].as_str().unwrap().to_string();
    assert_eq!(dg, blake3::hash(&g).to_hex().as_str());
    (c, dg)
}

/// Supervisors search everything, investigators their cases' items, nobody else.
async fn who_may_search(c: &Client, t: &Tokens<'_>, da: &str, dg: &str) {
    let Tokens { p1, dock1, sup1, inv1, admin, .. } = *t;
    // who may search: supervisors everything, investigators their cases, nobody else
    for who in [p1, dock1, admin] {
        problem(c.get("/v1/evidence", who).await, StatusCode::FORBIDDEN, "search by a non-reader").await;
    }
    let all = json_of(c.get("/v1/evidence?officer=p1", sup1).await, StatusCode::OK, "supervisor search").await;
    let found: Vec<&str> = all.as_array().unwrap().iter().map(|e| e["digest"].as_str().unwrap()).collect();
    assert_eq!(found, [dg, da], "two items, newest first, nothing from the refused uploads");
    let dock_item = &all[0];
    assert_eq!((&dock_item["source"], &dock_item["device"]), (&json!("dock"), &json!("cam-9")));
    assert_eq!(json_of(c.get("/v1/evidence", inv1).await, StatusCode::OK, "inv1 before a case").await, json!([]));
    problem(c.get(&format!("/v1/evidence/{da}"), inv1).await, StatusCode::FORBIDDEN, "inv1 before a case").await;
    problem(c.get("/v1/evidence?tier=gold", sup1).await, StatusCode::BAD_REQUEST, "bad tier").await;
    problem(c.get("/v1/evidence?from=yesterday", sup1).await, StatusCode::BAD_REQUEST, "bad time").await;
    problem(c.get("/v1/evidence/xyz", sup1).await, StatusCode::BAD_REQUEST, "bad id").await;
    problem(c.get(&format!("/v1/evidence/{}", "0".repeat(64)), sup1).await, StatusCode::NOT_FOUND, "unknown id").await;
}

/// An incident moves the first item to the crime tier; a case lets inv1 see it alone.
async fn incident_and_case(c: &Client, t: &Tokens<'_>, da: &str, dg: &str) {
    let Tokens { p1, sup1, inv1, inv2, .. } = *t;
    // an incident report moves a's window to the crime tier; a downgrade is refused
    let meta = json_of(c.get(&format!("/v1/evidence/{da}"), sup1).await, StatusCode::OK, "metadata").await;
    let (from, to) = (meta["evidence"]["recorded_from"].clone(), meta["evidence"]["recorded_to"].clone());
    assert!(!meta["thumbnails"].as_array().unwrap().is_empty(), "{meta}");
    let inc = json!({"reference": "INC-1", "offence": "crime", "officer": "p1", "starts_at": from, "ends_at": to,
                     "report": "robbery on the square"});
    problem(c.post_json("/v1/incidents", p1, inc.clone()).await, StatusCode::FORBIDDEN, "patrol files incident").await;
    let out = json_of(c.post_json("/v1/incidents", sup1, inc).await, StatusCode::CREATED, "incident").await;
    assert!(out["items"].as_array().unwrap().iter().any(|i| i["digest"] == da && i["to_tier"] == "crime"));
    let down = json!({"tier": "administrative", "reason": "mistake"});
    problem(c.post_json(&format!("/v1/evidence/{da}/tier"), sup1, down).await, StatusCode::FORBIDDEN, "downgrade")
        .await;

    // a case for inv1 with a in it; inv1 then sees a and only a
    let case = json!({"reference": "CASE-1", "investigators": ["inv1"]});
    problem(c.post_json("/v1/cases", inv1, case.clone()).await, StatusCode::FORBIDDEN, "investigator opens").await;
    problem(
        c.post_json("/v1/cases", sup1, json!({"reference": "CASE-2", "investigators": ["p1"]})).await,
        StatusCode::BAD_REQUEST,
        "a patrol officer as investigator",
    )
    .await;
    let out = json_of(c.post_json("/v1/cases", sup1, case).await, StatusCode::CREATED, "case").await;
    assert_eq!(out["investigators"], json!(["inv1"]));
    let link = |d: &str| json!({"digest": d});
    problem(c.post_json("/v1/cases/NOPE/evidence", sup1, link(da)).await, StatusCode::NOT_FOUND, "no case").await;
    let r = c.post_json("/v1/cases/CASE-1/evidence", sup1, link(da)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let mine = json_of(c.get("/v1/evidence", inv1).await, StatusCode::OK, "inv1 search").await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["digest"], da);
    assert_eq!(mine[0]["tier"], "crime");
    let m = json_of(c.get(&format!("/v1/evidence/{da}"), inv1).await, StatusCode::OK, "inv1 metadata").await;
    assert_eq!(m["cases"][0]["reference"], "CASE-1");
    assert_eq!(m["incidents"][0]["reference"], "INC-1");
    problem(c.get(&format!("/v1/evidence/{dg}"), inv1).await, StatusCode::FORBIDDEN, "inv1 on another item").await;
    problem(c.get(&format!("/v1/evidence/{da}/content"), inv2).await, StatusCode::FORBIDDEN, "inv2 not on the case")
        .await;
}

/// Byte ranges for seeking, the whole file, a range past the end, thumbnails.
async fn ranges_and_thumbnails(c: &Client, t: &Tokens<'_>, da: &str, a: &[u8]) {
    let Tokens { inv1, .. } = *t;
    // byte ranges for seeking, the whole file, and a range past the end
    let ranged = |r: &str| c.req(reqwest::Method::GET, &format!("/v1/evidence/{da}/content"), inv1).header("range", r);
    let r = ranged("bytes=0-99").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], format!("bytes 0-99/{}", a.len()).as_str());
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &a[..100]);
    let r = ranged("bytes=-10").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &a[a.len() - 10..]);
    let mid = a.len() / 2;
    let r = ranged(&format!("bytes={mid}-")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &a[mid..]);
    let r = c.get(&format!("/v1/evidence/{da}/content"), inv1).await;
    assert_eq!((r.status(), r.headers()["accept-ranges"].to_str().unwrap()), (StatusCode::OK, "bytes"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), a, "the whole file, byte for byte");
    let r = ranged(&format!("bytes={}-", a.len())).send().await.unwrap();
    assert_eq!(r.headers()["content-range"], format!("bytes */{}", a.len()).as_str());
    problem(r, StatusCode::RANGE_NOT_SATISFIABLE, "past the end").await;
    let r = c.get(&format!("/v1/evidence/{da}/thumbnails/0"), inv1).await;
    assert_eq!((r.status(), r.headers()["content-type"].to_str().unwrap()), (StatusCode::OK, "image/jpeg"));
    assert_eq!(&r.bytes().await.unwrap()[..2], &[0xFF, 0xD8]);
    problem(c.get(&format!("/v1/evidence/{da}/thumbnails/99"), inv1).await, StatusCode::NOT_FOUND, "no thumb").await;
}

/// Holds (supervisors only), the item's custody chain and the audit log of reads.
async fn holds_custody_and_audit(c: &Client, t: &Tokens<'_>, da: &str, data: &Path) {
    let Tokens { sup1, inv1, .. } = *t;
    // holds: supervisors only
    let why = json!({"reason": "court order 12/3"});
    problem(
        c.post_json(&format!("/v1/evidence/{da}/holds"), inv1, why.clone()).await,
        StatusCode::FORBIDDEN,
        "inv hold",
    )
    .await;
    json_of(c.post_json(&format!("/v1/evidence/{da}/holds"), sup1, why.clone()).await, StatusCode::CREATED, "hold")
        .await;
    let out =
        json_of(c.post_json(&format!("/v1/evidence/{da}/holds/release"), sup1, why).await, StatusCode::OK, "release")
            .await;
    assert_eq!(out["released"], 1);

    // the custody chain of a holds every step, including inv1's reads with the device
    let chain = json_of(c.get(&format!("/v1/evidence/{da}/custody"), inv1).await, StatusCode::OK, "custody").await;
    let actions: Vec<&str> = chain.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for want in ["ingest", "duplicate", "classify", "case_link", "view", "hold", "release"] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    let view = chain.as_array().unwrap().iter().find(|e| e["action"] == "view").unwrap();
    assert_eq!(view["actor"], "inv1");
    assert!(view["detail"].as_str().unwrap().contains("ws-2"), "{view}");

    // the audit log has every read and every refused read, with who and which device
    let cat = Catalog::open_in(data).await.unwrap();
    let rows = cat.audit_tail(500).await.unwrap();
    let has = |actor: &str, device: &str, action: &str, outcome: &str| {
        rows.iter().any(|r| r.actor == actor && r.device == device && r.action == action && r.outcome == outcome)
    };
    assert!(has("inv1", "ws-2", "evidence.view", "ok"));
    assert!(has("inv1", "ws-2", "evidence.metadata", "denied"));
    assert!(has("inv2", "ws-3", "evidence.view", "denied"));
    assert!(has("sup1", "ws-1", "evidence.search", "ok"));
    assert!(has("inv1", "ws-2", "evidence.thumbnail", "ok"));
    assert!(has("sup1", "ws-1", "case.open", "ok"));
    cat.close().await;
}

/// Closing a case; closing it again is "not found".
async fn closing_a_case(c: &Client, t: &Tokens<'_>) {
    let Tokens { sup1, .. } = *t;
    // closing the case leaves inv1's access with the case link (the record stays)
    assert_eq!(
        c.req(reqwest::Method::POST, "/v1/cases/CASE-1/close", sup1).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    problem(
        c.req(reqwest::Method::POST, "/v1/cases/CASE-1/close", sup1).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "closing twice",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_over_http_on_the_local_vault() {
    scenario(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_over_http_on_s3() {
    let Some(ep) = s3_endpoint() else { return };
    let bucket =
        format!("http-{}", &blake3::hash(format!("{:?}", std::time::SystemTime::now()).as_bytes()).to_hex()[..12]);
    // moto does not check signatures: a plain PUT creates the bucket
    let r = reqwest::Client::new().put(format!("{ep}/{bucket}")).send().await.unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    scenario(Some(format!("s3://{bucket}?endpoint={ep}&allow_http=true"))).await;
}

/// Many docks at once: each dock account uploads two files simultaneously (camera files
/// made distinct by a dock-specific trailer); every upload is answered 201 with the
/// BLAKE3 of the bytes sent, and a supervisor then downloads every item and finds it
/// byte-exact. `EPATROL_TEST_DOCKS` (default 12) scales the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_dock_uploads_are_stored_byte_exact() {
    let docks: usize = std::env::var("EPATROL_TEST_DOCKS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let server = Server::start(&data, &["--max-upload-bytes", "8000000", "--rate-burst", "1000"]);
    let http = reqwest::Client::new();
    let c = Client { http: http.clone(), base: server.base.clone() };
    let admin = token(&http, &server, "admin", &server.admin_password, "ws-0").await;
    add_user(&data, "sup1", "supervisor", "sup1-password-long");
    let sup = token(&http, &server, "sup1", "sup1-password-long", "ws-1").await;
    let mut tokens = Vec::new();
    for d in 0..docks {
        let login = format!("dock{d}");
        let body = json!({"login": login, "role": "dock"});
        let created =
            json_of(c.post_json("/v1/users", (&admin, "ws-0"), body).await, StatusCode::CREATED, "dock").await;
        let device = format!("dock-{d}");
        tokens.push((token(&http, &server, &login, created["password"].as_str().unwrap(), &device).await, device));
    }
    let sources = ["a_h264_aac_720p30_20s.mp4", "b_h265_aac_720p30_10s.mkv", "c_mjpeg_pcm_640x480_5s.avi"];
    let sources: Vec<Vec<u8>> = sources.iter().map(|n| video(n)).collect();
    let started = std::time::Instant::now();
    let mut uploads = tokio::task::JoinSet::new();
    for (d, (tok, device)) in tokens.iter().enumerate() {
        for k in 0..2 {
            let mut bytes = sources[(d + k) % sources.len()].clone();
            bytes.extend(format!("dock {d} file {k}").as_bytes().repeat(64));
            let (c, tok, device) =
                (Client { http: http.clone(), base: server.base.clone() }, tok.clone(), device.clone());
            uploads.spawn(async move {
                // a dock uploads the footage of the officer whose camera sits in it
                let path = format!("/v1/evidence?device=cam-{d}-{k}&officer=officer{d}&name=f{k}.bin");
                let r = c.post_bytes(&path, (&tok, &device), bytes.clone()).await;
                (r.status(), r.text().await.unwrap(), bytes)
            });
        }
    }
    let mut stored = Vec::new();
    while let Some(done) = uploads.join_next().await {
        let (status, body, bytes) = done.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let out: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(out["digest"].as_str().unwrap(), blake3::hash(&bytes).to_hex().as_str());
        stored.push((out["digest"].as_str().unwrap().to_string(), bytes));
    }
    let secs = started.elapsed().as_secs_f64();
    let total: usize = stored.iter().map(|(_, b)| b.len()).sum();
    eprintln!("{} uploads from {docks} docks, {total} bytes in {secs:.1} s", stored.len());
    assert_eq!(stored.len(), 2 * docks);
    for (digest, bytes) in &stored {
        let r = c.get(&format!("/v1/evidence/{digest}/content"), (&sup, "ws-1")).await;
        assert_eq!(r.status(), StatusCode::OK);
        let got = r.bytes().await.unwrap();
        assert!(got.len() == bytes.len() && blake3::hash(&got) == blake3::hash(bytes), "{digest} differs");
    }
}
