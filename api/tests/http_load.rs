//! The load harness end to end at CI size: a catalog with synthetic face distractors
//! (`epatrol bench gallery`) and one real person, the real server with a small model
//! queue, and `epatrol bench load` firing hundreds of simultaneous identifications that
//! must all be answered (refusals retried after `Retry-After`) and all be audited.
//! The region-size run (3,000 connections, 100,000 templates) is in docs/load.md.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, add_user};
use epatrol_store::Catalog;
use serde_json::Value;

fn epatrol(data: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_epatrol")).arg("--data").arg(data).args(args).output().unwrap();
    assert!(out.status.success(), "epatrol {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn hundreds_of_simultaneous_identifications_are_all_answered_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let orl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/faces/orl");
    let out = epatrol(data, &["bench", "gallery", "--faces", "3000", "--batch", "1000"]);
    let g: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(g["templates"], 3000, "{g}");
    let face = |f: &str| orl.join(f).to_string_lossy().into_owned();
    epatrol(
        data,
        &[
            "enroll",
            "--id",
            "P-1",
            "--surname",
            "Test",
            "--given-name",
            "One",
            "--flag",
            "wanted",
            "--face",
            &face("s1/1.pgm"),
            "--face",
            &face("s1/2.pgm"),
        ],
    );
    add_user(data, "load1", "patrol", "load-password-1");
    // two workers and a queue of 8 against 400 simultaneous requests: most are refused
    // at first and must come back after Retry-After
    let s = Server::start(
        data,
        &["--model-workers", "2", "--model-queue", "8", "--rate-per-sec", "10000", "--rate-burst", "10000"],
    );
    let json = data.join("load.json");
    let out = Command::new(env!("CARGO_BIN_EXE_epatrol"))
        .args(["bench", "load", "--url", &s.base, "--login", "load1", "--face", &face("s1/7.pgm")])
        .args(["--requests", "400", "--concurrency", "400", "--json"])
        .arg(&json)
        .env("EPATROL_PASSWORD", "load-password-1")
        .output()
        .unwrap();
    assert!(out.status.success(), "bench load: {}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        (r["answered_ok"].as_u64(), r["failed"].as_u64(), r["gave_up"].as_u64()),
        (Some(400), Some(0), Some(0)),
        "{r}"
    );
    assert!(r["retried_503_429"].as_u64().unwrap() > 0, "a queue of 8 refused nobody out of 400? {r}");
    drop(s);

    // every answered identification is registered: one audit row and one event each,
    // all of them the enrolled wanted person
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cat = Catalog::open_in(data).await.unwrap();
        let rows = cat.audit_tail(1000).await.unwrap();
        let ids: Vec<_> = rows.iter().filter(|r| r.action == "identify").collect();
        assert_eq!(ids.len(), 400);
        assert!(ids.iter().all(|r| r.outcome == "match" && r.actor == "load1"), "every probe is P-1");
        let events = cat.events_after(0, 1000).await.unwrap();
        assert_eq!(events.len(), 400);
        assert!(events.iter().all(|e| e.payload["external_id"] == "P-1" && e.payload["escort_to_station"] == true));
        cat.close().await;
    });
}
