//! HTTPS on the real `epatrol serve` binary, configured from a TOML file.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Server, token};

use reqwest::StatusCode;

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
