//! Schemathesis (from PyPI; `scripts/install-deps.sh --test` puts it in
//! `.cache/schemathesis-venv`) fuzzes the real `epatrol serve` from the OpenAPI document
//! the server itself publishes, as a patrol officer, a supervisor and an administrator:
//! no generated request may get a server error (5xx).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Server, add_user, token};

/// The schemathesis executable: `EPATROL_SCHEMATHESIS`, else the venv made by
/// install-deps. `None` skips the test locally; under `CI=true` it fails.
fn schemathesis() -> Option<PathBuf> {
    let p = std::env::var("EPATROL_SCHEMATHESIS").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/schemathesis-venv/bin/schemathesis")
    });
    if p.exists() {
        return Some(p);
    }
    let why = format!("{} not found (run scripts/install-deps.sh --test)", p.display());
    assert!(!std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"), "schemathesis is needed under CI: {why}");
    eprintln!("SKIPPING schemathesis: {why}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let Some(st) = schemathesis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    // limits that would turn most generated requests into 429s are lifted here; they
    // have their own tests
    let unlimited = ["--rate-per-sec", "100000", "--rate-burst", "100000", "--login-attempts-per-min", "100000"];
    let s = Server::start(&data, &unlimited);
    add_user(&data, "patrol1", "patrol", "patrol-password-1");
    add_user(&data, "sup1", "supervisor", "supervisor-password-1");
    let http = reqwest::Client::new();
    let patrol = token(&http, &s, "patrol1", "patrol-password-1", "tab-1").await;
    let sup = token(&http, &s, "sup1", "supervisor-password-1", "duty-1").await;
    let admin = token(&http, &s, "admin", &s.admin_password, "ws-1").await;
    for (who, tok, device) in [("patrol", &patrol, "tab-1"), ("supervisor", &sup, "duty-1"), ("admin", &admin, "ws-1")]
    {
        let out = Command::new(&st)
            .args(["run", &s.url("/v1/openapi.json"), "--checks", "not_a_server_error"])
            .args(["--max-examples", "20", "--seed", "7", "--request-timeout", "60", "--workers", "2"])
            // Hypothesis health checks judge the data generator (e.g. "too many examples
            // filtered out" on a path with a strict pattern), not the server
            .args(["--suppress-health-check", "all"])
            // an event stream never ends by design; logout, password reset and disabling
            // the caller's device would end the run's own session (they have their own tests)
            .args(["--exclude-path", "/v1/events", "--exclude-path", "/v1/auth/logout"])
            .args(["--exclude-path", "/v1/users/{login}/password", "--exclude-path", "/v1/devices/{device}/disable"])
            .args(["-H", &format!("Authorization: Bearer {tok}"), "-H", &format!("X-Device-Id: {device}")])
            .env("NO_COLOR", "1")
            .output()
            .expect("run schemathesis");
        let report = String::from_utf8_lossy(&out.stdout);
        eprintln!("schemathesis as {who}:\n{report}");
        assert!(out.status.success(), "schemathesis as {who} found server errors:\n{report}");
    }
}
