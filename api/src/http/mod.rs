//! The HTTP API: axum over the same services the CLI uses.
//!
//! - [`router`]: routes and the layers around them (limits, timeout, problem mapping).
//! - [`auth`]: the caller of a request (bearer token bound to a device, role).
//! - [`problem`]: [`ApiError`] → `application/problem+json`.
//! - [`routes`]: one module per resource.
//! - [`openapi`]: the OpenAPI document generated from the handlers' annotations.
//!
//! Model work (face detection/embedding) is CPU-bound and blocking, so it runs on
//! tokio's blocking pool behind [`ModelGate`]: a fixed number of workers plus a bounded
//! queue; a request that finds the queue full is answered 503 with `Retry-After` at once
//! instead of piling up behind the models. Only the model phase holds a slot: the
//! catalog reads and writes of the same request run after it, on the async runtime.
//!
//! [`AppState::from_parts`] assembles the server from an open catalog, vault and
//! identification service, so tests can run it without ONNX models.

pub mod auth;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod router;
pub mod routes;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::{ApiError, Result};
use crate::service::accounts::Accounts;
use crate::service::audit_trail::AuditTrail;
use crate::service::evidence::EvidenceAccess;
use crate::service::{FaceIndex, IdentificationService, ModelRunner};
use epatrol_store::Catalog;
use epatrol_store::retention::SystemClock;
use epatrol_store::vault::{DEFAULT_VAULT_DIR, EvidenceVault, Vault};

/// Server settings (from `epatrol serve` flags or a test).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Data directory (catalog, vault, keys).
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Face recognizer (manifest name); `None` = the manifest's default.
    pub model: Option<String>,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Lifetime of a bearer token.
    pub token_ttl: Duration,
    /// Model jobs running at once.
    pub model_workers: usize,
    /// Model jobs allowed to wait for a worker; beyond this, 503.
    pub model_queue: usize,
    /// Login of the administrator created on first start when there is none.
    pub bootstrap_admin: String,
    /// Where evidence blobs live (a directory, `s3://...`); `None` = `DATA/vault`.
    pub vault: Option<String>,
    /// Largest footage file accepted in one `POST /v1/evidence`, bytes.
    pub max_upload_bytes: u64,
    /// Timeout of the footage upload endpoints (large bodies take long).
    pub upload_timeout: Duration,
    /// Requests per second per account (sustained).
    pub rate_per_sec: u32,
    /// Requests per account allowed in a burst.
    pub rate_burst: u32,
    /// Login attempts per minute per login name.
    pub login_attempts_per_min: u32,
    /// Serve HTTPS with this PEM certificate chain and private key; `None` = plain HTTP.
    pub tls: Option<TlsFiles>,
    /// How the face gallery is searched.
    pub face_index: FaceIndex,
    /// Refuse logins from devices not enrolled with a secret (`POST /v1/devices`).
    pub require_device_credentials: bool,
}

/// PEM files of the server's TLS identity.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

impl ServeConfig {
    /// Defaults for `data_dir`: loopback port 8080, 8 MiB bodies, 30 s timeout, 1 h
    /// tokens, one model worker per CPU, a queue of 64, the local vault, footage files
    /// up to 4 GiB with a 1 h upload timeout.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            model: None,
            max_body_bytes: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            token_ttl: Duration::from_secs(3600),
            model_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            model_queue: 64,
            bootstrap_admin: "admin".into(),
            vault: None,
            max_upload_bytes: 4 << 30,
            upload_timeout: Duration::from_secs(3600),
            rate_per_sec: 20,
            rate_burst: 100,
            login_attempts_per_min: 10,
            tls: None,
            face_index: FaceIndex::default(),
            require_device_credentials: false,
        }
    }
}

/// Bounded admission to the blocking model stage.
#[derive(Debug)]
pub struct ModelGate {
    /// Workers + queue slots; `try_acquire` failing means "full, answer 503".
    admission: Arc<Semaphore>,
    /// Jobs running at once.
    workers: Arc<Semaphore>,
    /// Workers + queue.
    capacity: usize,
}

impl ModelGate {
    /// A gate with `workers` concurrent jobs and `queue` waiting ones.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            admission: Arc::new(Semaphore::new(workers + queue)),
            workers: Arc::new(Semaphore::new(workers)),
            capacity: workers + queue,
        }
    }

    /// Free admission slots and all of them (for metrics).
    pub fn slots(&self) -> (usize, usize) {
        (self.admission.available_permits(), self.capacity)
    }
}

impl ModelRunner for ModelGate {
    /// Runs `job` on the blocking pool once a worker is free, or fails at once with
    /// [`ApiError::Overloaded`] when the queue is full. The permits travel with the job,
    /// so a client that disconnects does not free a slot while its job still runs.
    fn run<T, F>(&self, job: F) -> impl Future<Output = Result<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let admitted = self.admission.clone().try_acquire_owned();
        let workers = self.workers.clone();
        async move {
            let admitted = admitted.map_err(|_| ApiError::Overloaded { retry_after_secs: 1 })?;
            let worker = workers.acquire_owned().await.map_err(|_| ApiError::Internal("model gate closed".into()))?;
            tokio::task::spawn_blocking(move || {
                let _permits = (admitted, worker);
                job()
            })
            .await
            .map_err(|e| ApiError::Internal(format!("model job failed: {e}")))?
        }
    }
}

/// Shared state of all handlers.
pub struct AppState {
    /// The catalog (accounts, sessions, audit, events, subjects, evidence rows).
    pub catalog: Catalog,
    /// Accounts, devices and sessions.
    pub accounts: Accounts,
    /// Identification and enrolment.
    pub ids: Arc<IdentificationService>,
    /// Admission to the model stage.
    pub gate: ModelGate,
    /// Evidence vault (over the same catalog).
    pub evidence: EvidenceVault,
    /// Who may upload or view which footage; cases.
    pub access: EvidenceAccess,
    /// Reading the audit log and the event outbox.
    pub audit_trail: AuditTrail,
    /// Settings the server runs with.
    pub config: ServeConfig,
    /// Per-account and per-login rate limits.
    pub limits: limits::RateLimits,
    /// Prometheus metrics.
    pub metrics: metrics::Metrics,
    /// Woken when this server writes an outbox event (event streams re-read the outbox).
    pub events: tokio::sync::Notify,
    /// Becomes `true` when the server stops, so open event streams end and graceful
    /// shutdown does not wait for them forever.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// Opens the catalog, models and vault of `config`, and creates the first
    /// administrator when there is none (its password is printed once to stderr).
    pub async fn open(config: ServeConfig) -> Result<Arc<Self>> {
        let ids =
            IdentificationService::open_with(&config.data_dir, config.model.as_deref(), config.face_index).await?;
        let catalog = ids.catalog().clone();
        // first start: the only way to the first administrator's password
        if let Some(password) = Accounts::new(catalog.clone()).bootstrap_admin(&config.bootstrap_admin).await? {
            eprintln!("epatrol: created administrator '{}' with one-time password: {password}", config.bootstrap_admin);
        }
        let vault = match &config.vault {
            Some(location) => Vault::open(location)?,
            None => Vault::local(&config.data_dir.join(DEFAULT_VAULT_DIR))?,
        };
        Self::from_parts(config, catalog, vault, ids).await
    }

    /// Assembles the state from parts already open: the catalog, the blob vault and the
    /// identification service (over the models, or a model-free stand-in in tests; see
    /// [`crate::service::StandIn`]). Undoes an ingest the previous process left half
    /// done; creates no account.
    pub async fn from_parts(
        config: ServeConfig,
        catalog: Catalog,
        vault: Vault,
        ids: IdentificationService,
    ) -> Result<Arc<Self>> {
        let gate = ModelGate::new(config.model_workers, config.model_queue);
        let evidence = EvidenceVault::with_parts(&config.data_dir, catalog.clone(), vault, Arc::new(SystemClock))?;
        // an ingest killed with the previous process left a journal row: undo it first
        evidence.recover().await?;
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let limits = limits::RateLimits::new(config.rate_per_sec, config.rate_burst, config.login_attempts_per_min);
        Ok(Arc::new(Self {
            accounts: Accounts::new(catalog.clone()),
            access: EvidenceAccess::new(evidence.clone()),
            audit_trail: AuditTrail::new(catalog.clone()),
            catalog,
            ids: Arc::new(ids),
            gate,
            evidence,
            limits,
            metrics: metrics::Metrics::default(),
            config,
            events: tokio::sync::Notify::new(),
            shutdown,
            stop,
        }))
    }
}

/// Binds `config.bind`, serves until SIGINT/SIGTERM, then stops accepting and lets
/// in-flight requests finish. `on_bound` gets the base URL (`http://` or `https://` and
/// the actual address: port 0 → real port).
pub async fn serve(config: ServeConfig, on_bound: impl FnOnce(&str)) -> Result<()> {
    // a bad certificate is reported before anything is opened
    let tls = config.tls.as_ref().map(|t| tls::server_config(&t.cert, &t.key)).transpose()?;
    let state = AppState::open(config).await?;
    let listener = tokio::net::TcpListener::bind(state.config.bind)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot bind {}: {e}", state.config.bind)))?;
    let addr = listener.local_addr().map_err(|e| ApiError::Internal(e.to_string()))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    on_bound(&format!("{scheme}://{addr}"));
    let app = router::router(state.clone());
    let forgetting = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(limits::FORGET_EVERY);
        loop {
            every.tick().await;
            forgetting.limits.forget_idle();
        }
    });
    let stopping = state.clone();
    let stopped = async move {
        shutdown_signal().await;
        stopping.stop.send_replace(true);
    };
    let served = match tls {
        Some(config) => {
            let listener = tls::TlsListener::new(listener, config).map_err(|e| ApiError::Internal(e.to_string()))?;
            axum::serve(listener, app).with_graceful_shutdown(stopped).await
        }
        None => axum::serve(listener, app).with_graceful_shutdown(stopped).await,
    };
    served.map_err(|e| ApiError::Internal(format!("server: {e}")))?;
    state.catalog.close().await;
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wait_until(cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "condition not reached in 10 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_model_queue_is_refused_at_once_and_reopens_when_jobs_finish() {
        let gate = Arc::new(ModelGate::new(1, 1));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let g = gate.clone();
        let running = tokio::spawn(async move {
            g.run(move || {
                wait.recv().ok();
                Ok(1)
            })
            .await
        });
        wait_until(|| gate.workers.available_permits() == 0).await;
        let g = gate.clone();
        let queued = tokio::spawn(async move { g.run(|| Ok(2)).await });
        wait_until(|| gate.admission.available_permits() == 0).await;

        // one running + one queued = full: the third is refused without waiting
        let refused = tokio::time::timeout(Duration::from_secs(1), gate.run(|| Ok(3))).await.expect("no waiting");
        assert!(matches!(refused, Err(ApiError::Overloaded { retry_after_secs: 1 })), "{refused:?}");

        release.send(()).unwrap();
        assert_eq!(running.await.unwrap().unwrap(), 1);
        assert_eq!(queued.await.unwrap().unwrap(), 2);
        assert_eq!(gate.run(|| Ok(4)).await.unwrap(), 4);
        assert_eq!(gate.admission.available_permits(), 2);
    }

    #[tokio::test]
    async fn a_panicking_model_job_is_an_internal_error_and_frees_its_slot() {
        let gate = ModelGate::new(1, 0);
        let r: Result<()> = gate.run(|| panic!("model bug")).await;
        assert!(matches!(r, Err(ApiError::Internal(_))), "{r:?}");
        assert_eq!(gate.run(|| Ok(5)).await.unwrap(), 5);
    }
}
