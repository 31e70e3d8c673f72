//! [`EvidenceVault`]: the catalog, the blob vault, the custody log and the clock together,
//! with the domain operations (ingest, classify, hold, sweep, verify, export) on top.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::clock::{Clock, SystemClock};
use crate::custody::{CustodyKey, CustodyLog};
use crate::error::Result;

use super::Vault;

/// Default vault location inside the data dir.
pub const DEFAULT_VAULT_DIR: &str = "vault";

/// The evidence vault service.
#[derive(Debug, Clone)]
pub struct EvidenceVault {
    /// SQL catalog.
    pub(crate) catalog: Catalog,
    /// Blob store.
    pub(crate) vault: Vault,
    /// Custody log (signs with the node key).
    pub(crate) custody: CustodyLog,
    /// Time source.
    pub(crate) clock: Arc<dyn Clock>,
    /// Node name for sweeper claims and journal rows (`host:pid`).
    node: String,
    data_dir: PathBuf,
}

impl EvidenceVault {
    /// Opens the data dir's catalog and signing key, and the vault at `location`
    /// (`None`: `DATA/vault` on the local file system).
    pub async fn open(data_dir: &Path, location: Option<&str>, clock: Arc<dyn Clock>) -> Result<Self> {
        let catalog = Catalog::open_in(data_dir).await?;
        let vault = match location {
            Some(l) => Vault::open(l)?,
            None => Vault::local(&data_dir.join(DEFAULT_VAULT_DIR))?,
        };
        Self::with_parts(data_dir, catalog, vault, clock)
    }

    /// Opens with the wall clock and the default or given vault.
    pub async fn open_default(data_dir: &Path, location: Option<&str>) -> Result<Self> {
        Self::open(data_dir, location, Arc::new(SystemClock)).await
    }

    /// Assembles from parts already open (tests pass an in-memory vault or a fixed clock).
    pub fn with_parts(data_dir: &Path, catalog: Catalog, vault: Vault, clock: Arc<dyn Clock>) -> Result<Self> {
        let key = Arc::new(CustodyKey::load_or_create(data_dir)?);
        let custody = CustodyLog::new(catalog.clone(), key, clock.clone());
        Ok(Self { catalog, vault, custody, clock, node: node_name(), data_dir: data_dir.to_path_buf() })
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The SQL catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The blob store.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The custody log.
    pub fn custody(&self) -> &CustodyLog {
        &self.custody
    }

    /// The time source.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// This node's name (`host:pid`).
    pub fn node(&self) -> &str {
        &self.node
    }
}

/// `hostname:pid` of this process.
pub fn node_name() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

/// This machine's host name (from the kernel; `localhost` if unknown).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

impl EvidenceVault {
    /// Reads bytes `range` of an active item for `actor` (video seeking), recording the view
    /// in the custody log first. A player seeking through one file should open one view
    /// and then read through [`Vault::read_range`], rather than log every range.
    pub async fn view_range(
        &self,
        actor: &str,
        digest: &super::Digest,
        range: std::ops::Range<u64>,
    ) -> Result<bytes::Bytes> {
        let e = self.active_evidence(digest).await?;
        let detail = serde_json::json!({"evidence_id": e.id, "range": [range.start, range.end]});
        self.custody.append(actor, "view", &e.digest, &detail).await?;
        self.vault.read_range(digest, range).await
    }

    /// The JPEG of thumbnail `idx` of evidence item `evidence_id` (small: read whole).
    pub async fn thumbnail(&self, evidence_id: i64, idx: i64) -> Result<bytes::Bytes> {
        let thumbs = self.catalog.thumbnails_of(evidence_id).await?;
        let t = thumbs
            .iter()
            .find(|t| t.idx == idx)
            .ok_or_else(|| crate::error::StoreError::NotFound(format!("thumbnail {idx} of evidence {evidence_id}")))?;
        let key = object_store::path::Path::from(t.object_key.as_str());
        Ok(object_store::ObjectStoreExt::get(self.vault.store().as_ref(), &key).await?.bytes().await?)
    }
}
