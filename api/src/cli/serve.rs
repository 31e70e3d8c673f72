//! `epatrol serve`: the HTTP API over the data dir.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use epatrol_api::http::{ServeConfig, serve};

/// Arguments of `epatrol serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "EPATROL_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Face recognizer (manifest name).
    #[arg(long)]
    pub model: Option<String>,
    /// Largest accepted request body in bytes.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Whole-request timeout in seconds (answered 408).
    #[arg(long, default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Bearer token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_ttl_secs: u64,
    /// Model jobs run at once (default: one per CPU).
    #[arg(long)]
    pub model_workers: Option<usize>,
    /// Model jobs that may wait for a worker; beyond this, 503 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub model_queue: usize,
    /// Where evidence blobs live: a directory, `s3://bucket?endpoint=..&allow_http=true`
    /// (credentials from AWS_* variables) or `memory://`. Default: DATA/vault.
    #[arg(long, env = "EPATROL_VAULT")]
    pub vault: Option<String>,
    /// Largest footage file accepted by one upload, bytes (default 4 GiB).
    #[arg(long, default_value_t = 4 << 30)]
    pub max_upload_bytes: u64,
    /// Timeout of the footage upload endpoints, seconds.
    #[arg(long, default_value_t = 3600)]
    pub upload_timeout_secs: u64,
    /// Requests per second per account, sustained (beyond: 429 with Retry-After).
    #[arg(long, default_value_t = 20)]
    pub rate_per_sec: u32,
    /// Requests per account allowed in a burst.
    #[arg(long, default_value_t = 100)]
    pub rate_burst: u32,
    /// Login attempts per minute per login name.
    #[arg(long, default_value_t = 10)]
    pub login_attempts_per_min: u32,
}

/// Serves until SIGINT/SIGTERM; prints `listening on http://ADDR` to stderr once bound.
pub fn run(data: PathBuf, a: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = ServeConfig::new(data);
    config.bind = a.bind;
    config.model = a.model;
    config.max_body_bytes = a.max_body_bytes;
    config.request_timeout = Duration::from_secs(a.request_timeout_secs);
    config.token_ttl = Duration::from_secs(a.token_ttl_secs);
    if let Some(w) = a.model_workers {
        config.model_workers = w;
    }
    config.model_queue = a.model_queue;
    config.vault = a.vault;
    config.max_upload_bytes = a.max_upload_bytes;
    config.upload_timeout = Duration::from_secs(a.upload_timeout_secs);
    config.rate_per_sec = a.rate_per_sec;
    config.rate_burst = a.rate_burst;
    config.login_attempts_per_min = a.login_attempts_per_min;
    super::runtime()?.block_on(serve(config, |addr| eprintln!("epatrol: listening on http://{addr}")))?;
    eprintln!("epatrol: stopped");
    Ok(ExitCode::SUCCESS)
}
