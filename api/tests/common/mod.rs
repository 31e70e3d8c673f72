//! Helpers shared by the HTTP end-to-end tests: start the real `epatrol serve` binary on
//! an ephemeral port over a temp data dir, add accounts with the CLI, log in, and check
//! problem responses.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// A running `epatrol serve` child; killed on drop if a test fails midway.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub admin_password: String,
    pub stderr: mpsc::Receiver<String>,
}

impl Server {
    // the child is owned by the returned `Server`, whose Drop kills and waits for it
    #[allow(clippy::zombie_processes)]
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Self::start_with_env(data, extra, &[])
    }

    /// Like [`Server::start`], with extra environment variables for the server.
    #[allow(clippy::zombie_processes)]
    pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_epatrol"))
            .envs(env.iter().copied())
            .arg("--data")
            .arg(data)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn epatrol serve");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut admin_password = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("server did not report its address within 60 s");
            if let Some(p) = line.split("one-time password: ").nth(1) {
                admin_password = p.trim().to_string();
            }
            if let Some(addr) = line.split("listening on ").nth(1) {
                return Server { child, base: addr.trim().to_string(), admin_password, stderr: rx };
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn add_user(data: &Path, login: &str, role: &str, password: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_epatrol"))
        .arg("--data")
        .arg(data)
        .args(["user", "add", "--login", login, "--role", role, "--password-stdin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user add {login}: {}", String::from_utf8_lossy(&out.stderr));
}

pub async fn login(http: &reqwest::Client, s: &Server, login: &str, password: &str, device: &str) -> reqwest::Response {
    http.post(s.url("/v1/auth/login"))
        .json(&json!({"login": login, "password": password, "device_id": device}))
        .send()
        .await
        .unwrap()
}

pub async fn token(http: &reqwest::Client, s: &Server, user: &str, password: &str, device: &str) -> String {
    let r = login(http, s, user, password, device).await;
    assert_eq!(r.status(), StatusCode::OK, "login {user}");
    let body: Value = r.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

/// Asserts an RFC 9457 problem with `status` and returns its JSON.
pub async fn problem(r: reqwest::Response, status: StatusCode, what: &str) -> Value {
    assert_eq!(r.status(), status, "{what}");
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert_eq!(ct, "application/problem+json", "{what}: content type");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{what}: {body}");
    body
}

/// Reads an HTTP/1.1 response head from a raw socket (until the blank line).
pub fn read_head(tcp: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!("connection ended before a full response head: {other:?}, got {head:?}"),
        }
    }
    String::from_utf8_lossy(&head).to_lowercase()
}
