//! Shared test fixtures: the video dataset, backends (memory, local dir, moto S3), and an
//! [`EvidenceVault`] over a temp data dir with a fixed clock.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use epatrol_store::Catalog;
use epatrol_store::clock::{FixedClock, parse_ts};
use epatrol_store::vault::{Declared, EvidenceVault, IngestRequest, Source, Vault};
use object_store::aws::AmazonS3Builder;

/// The shared video test files (`../shared/datasets/video` beside the repo, or
/// `EPATROL_VIDEO_DATASET`).
pub fn dataset(name: &str) -> PathBuf {
    let dir = std::env::var("EPATROL_VIDEO_DATASET")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/video"));
    let p = dir.join(name);
    assert!(p.exists(), "test video {} missing (set EPATROL_VIDEO_DATASET)", p.display());
    p
}

/// Which backend a conformance case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// object_store InMemory.
    Memory,
    /// LocalFileSystem in a temp dir.
    Local,
    /// moto S3 on 127.0.0.1.
    S3,
}

mod moto;
pub use moto::s3_endpoint;

/// An S3 builder for a fresh bucket on the moto server.
pub fn s3_builder(endpoint: &str, bucket: &str) -> AmazonS3Builder {
    AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(bucket)
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
}

/// A vault on `backend` (fresh bucket / dir), or `None` when the S3 leg is skipped.
pub async fn vault(backend: Backend, tmp: &tempfile::TempDir, object_lock: bool) -> Option<Vault> {
    match backend {
        Backend::Memory => Some(Vault::memory()),
        Backend::Local => Some(Vault::local(&tmp.path().join("vault")).unwrap()),
        Backend::S3 => {
            let ep = s3_endpoint()?;
            let bucket = format!("t-{}", &epatrol_store::vault::random_id()[..12]);
            let v = Vault::s3_builder(s3_builder(&ep, &bucket)).unwrap();
            v.s3_control().unwrap().create_bucket(object_lock).await.unwrap();
            Some(v)
        }
    }
}

/// A test world: data dir, vault, fixed clock.
pub struct World {
    /// Temp data dir (kept alive).
    pub tmp: tempfile::TempDir,
    /// The service.
    pub ev: EvidenceVault,
    /// Its clock.
    pub clock: Arc<FixedClock>,
}

/// The clock's start: a week after the dataset's recordings (2023-11-14).
pub const T0: &str = "2023-11-20T12:00:00Z";

impl World {
    /// A world on `backend`, or `None` if that backend is unavailable (S3 without moto).
    pub async fn new(backend: Backend) -> Option<World> {
        Self::with_lock(backend, false).await
    }

    /// Same, with an Object Lock bucket on S3.
    pub async fn with_lock(backend: Backend, lock: bool) -> Option<World> {
        let tmp = tempfile::tempdir().unwrap();
        let vault = vault(backend, &tmp, lock).await?;
        Some(Self::on(tmp, vault).await)
    }

    /// A world over an existing vault (to simulate a restart on the same backend).
    pub async fn on(tmp: tempfile::TempDir, vault: Vault) -> World {
        let clock = Arc::new(FixedClock::new(parse_ts(T0).unwrap()));
        let catalog = Catalog::open_in(tmp.path()).await.unwrap();
        let ev = EvidenceVault::with_parts(tmp.path(), catalog, vault, clock.clone()).unwrap();
        World { tmp, ev, clock }
    }
}

impl World {
    /// A connection of its own to the catalog file, for raw SQL (tamper tests, counts).
    pub async fn raw(&self) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let url = format!("sqlite://{}", self.ev.catalog().path().display());
        sqlx::SqliteConnection::connect(&url).await.unwrap()
    }
}

/// An ingest request for officer `O-1`, camera `CAM-01`.
pub fn req() -> IngestRequest {
    IngestRequest {
        officer: "O-1".into(),
        device: "CAM-01".into(),
        source: Source::BodyCamera,
        actor: "test".into(),
        recorded_from: None,
        declared: Declared::default(),
    }
}
