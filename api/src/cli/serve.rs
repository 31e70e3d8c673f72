//! `epatrol serve`: the HTTP API over the data dir.
//!
//! Settings come from flags (or their `EPATROL_*` variables), else from the TOML file
//! given with `--config` (keys are the flag names with `_` for `-`), else the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use epatrol_api::http::{ServeConfig, TlsFiles, serve};
use epatrol_api::service::FaceIndex;

/// `--face-index` (and the `face_index` key of the config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaceIndexArg {
    /// int8 codes scanned, shortlist re-ranked with exact f32 (same scores, 1/4 the bytes).
    Int8,
    /// Exact f32 scan of every template.
    Exact,
}

impl From<FaceIndexArg> for FaceIndex {
    fn from(a: FaceIndexArg) -> Self {
        match a {
            FaceIndexArg::Int8 => FaceIndex::Int8,
            FaceIndexArg::Exact => FaceIndex::Exact,
        }
    }
}

/// Arguments of `epatrol serve` (every one may also be a key of the `--config` file).
#[derive(Debug, Default, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeArgs {
    /// TOML file with any of these settings (flags and variables win over it).
    #[arg(long, env = "EPATROL_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port (the URL is printed). [default: 127.0.0.1:8080]
    #[arg(long, env = "EPATROL_BIND")]
    pub bind: Option<SocketAddr>,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, env = "EPATROL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "EPATROL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Face recognizer (manifest name). [default: the manifest's first]
    #[arg(long)]
    pub model: Option<String>,
    /// Face gallery search: int8 codes + exact re-rank, or exact f32. [default: int8]
    #[arg(long, value_enum)]
    pub face_index: Option<FaceIndexArg>,
    /// Largest accepted request body in bytes. [default: 8388608]
    #[arg(long)]
    pub max_body_bytes: Option<usize>,
    /// Whole-request timeout in seconds (answered 408). [default: 30]
    #[arg(long)]
    pub request_timeout_secs: Option<u64>,
    /// Bearer token lifetime in seconds. [default: 3600]
    #[arg(long)]
    pub token_ttl_secs: Option<u64>,
    /// Model jobs run at once. [default: one per CPU]
    #[arg(long)]
    pub model_workers: Option<usize>,
    /// Model jobs that may wait for a worker; beyond this, 503 with Retry-After. [default: 64]
    #[arg(long)]
    pub model_queue: Option<usize>,
    /// Where evidence blobs live: a directory, `s3://bucket?endpoint=..&allow_http=true`
    /// (credentials from AWS_* variables) or `memory://`. [default: DATA/vault]
    #[arg(long, env = "EPATROL_VAULT")]
    pub vault: Option<String>,
    /// Largest footage file accepted by one upload, bytes. [default: 4 GiB]
    #[arg(long)]
    pub max_upload_bytes: Option<u64>,
    /// Timeout of the footage upload endpoints, seconds. [default: 3600]
    #[arg(long)]
    pub upload_timeout_secs: Option<u64>,
    /// Requests per second per account, sustained (beyond: 429 with Retry-After). [default: 20]
    #[arg(long)]
    pub rate_per_sec: Option<u32>,
    /// Requests per account allowed in a burst. [default: 100]
    #[arg(long)]
    pub rate_burst: Option<u32>,
    /// Login attempts per minute per login name. [default: 10]
    #[arg(long)]
    pub login_attempts_per_min: Option<u32>,
    /// Refuse logins from devices not enrolled with a secret (`epatrol device enroll`,
    /// `POST /v1/devices`); enrolled devices always need theirs. [default: false]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub require_device_credentials: Option<bool>,
}

impl ServeArgs {
    /// These arguments over the settings of `file` (arguments given win).
    fn over_file(self, file: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let from_file: ServeArgs =
            toml::from_str(&text).with_context(|| format!("{} is not a valid serve config", file.display()))?;
        let mut merged = serde_json::to_value(from_file)?;
        if let (Some(m), serde_json::Value::Object(given)) = (merged.as_object_mut(), serde_json::to_value(&self)?) {
            m.extend(given.into_iter().filter(|(_, v)| !v.is_null()));
        }
        Ok(serde_json::from_value(merged)?)
    }

    /// The server settings for data dir `data`.
    fn config(self, data: PathBuf) -> anyhow::Result<ServeConfig> {
        let mut c = ServeConfig::new(data);
        let secs = Duration::from_secs;
        c.bind = self.bind.unwrap_or(c.bind);
        c.tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => anyhow::bail!("TLS needs both tls_cert and tls_key"),
        };
        c.model = self.model;
        c.face_index = self.face_index.map_or(c.face_index, FaceIndex::from);
        c.max_body_bytes = self.max_body_bytes.unwrap_or(c.max_body_bytes);
        c.request_timeout = self.request_timeout_secs.map_or(c.request_timeout, secs);
        c.token_ttl = self.token_ttl_secs.map_or(c.token_ttl, secs);
        c.model_workers = self.model_workers.unwrap_or(c.model_workers);
        c.model_queue = self.model_queue.unwrap_or(c.model_queue);
        c.vault = self.vault;
        c.max_upload_bytes = self.max_upload_bytes.unwrap_or(c.max_upload_bytes);
        c.upload_timeout = self.upload_timeout_secs.map_or(c.upload_timeout, secs);
        c.rate_per_sec = self.rate_per_sec.unwrap_or(c.rate_per_sec);
        c.rate_burst = self.rate_burst.unwrap_or(c.rate_burst);
        c.login_attempts_per_min = self.login_attempts_per_min.unwrap_or(c.login_attempts_per_min);
        c.require_device_credentials = self.require_device_credentials.unwrap_or(c.require_device_credentials);
        Ok(c)
    }
}

/// Serves until SIGINT/SIGTERM; prints `listening on URL` to stderr once bound.
pub fn run(data: PathBuf, a: ServeArgs) -> anyhow::Result<ExitCode> {
    let a = match a.config.clone() {
        Some(file) => a.over_file(&file)?,
        None => a,
    };
    let config = a.config(data)?;
    super::runtime()?.block_on(serve(config, |url| eprintln!("epatrol: listening on {url}")))?;
    eprintln!("epatrol: stopped");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.toml");
        std::fs::write(&file, "bind = \"0.0.0.0:9443\"\nrate_per_sec = 5\nface_index = \"exact\"\n").unwrap();
        let flags = ServeArgs { rate_per_sec: Some(7), ..Default::default() };
        let c = flags.over_file(&file).unwrap().config(PathBuf::from("d")).unwrap();
        assert_eq!(c.bind, "0.0.0.0:9443".parse().unwrap());
        assert_eq!((c.rate_per_sec, c.face_index), (7, FaceIndex::Exact));
        assert_eq!(c.rate_burst, ServeConfig::new(PathBuf::from("d")).rate_burst);
    }

    #[test]
    fn unknown_keys_and_half_tls_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.toml");
        std::fs::write(&file, "bnd = \"0.0.0.0:1\"\n").unwrap();
        let e = ServeArgs::default().over_file(&file).unwrap_err();
        assert!(format!("{e:#}").contains("bnd"), "{e:#}");
        std::fs::write(&file, "tls_cert = \"/x.pem\"\n").unwrap();
        let e = ServeArgs::default().over_file(&file).unwrap().config(PathBuf::from("d")).unwrap_err();
        assert!(e.to_string().contains("tls_key"), "{e}");
    }
}
