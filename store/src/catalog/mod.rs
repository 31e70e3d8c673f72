//! The SQL catalog: SQLite file under the data dir (WAL, foreign keys, embedded migrations).
//!
//! One type, [`Catalog`], with domain methods split by resource into submodules.

mod audit;
pub mod crypto;
pub mod evidence;
pub mod incidents;
mod outbox;
mod search;
mod subjects;
mod users;

pub use audit::AuditEntry;
pub use evidence::{Evidence, NewEvidence, ThumbnailRow};
pub use incidents::{Case, Hold, Incident, NewIncident};
pub use outbox::{NewEvent, OutboxEvent};
pub use search::EvidenceQuery;
pub use subjects::{DeletedSubject, Flags, NewSubject, NewTemplate, Subject, TemplateRow};
pub use users::{Session, User};

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::error::Result;

/// File name of the catalog inside the data dir.
pub const CATALOG_FILE: &str = "catalog.sqlite";

/// Handle to the catalog database.
#[derive(Clone, Debug)]
pub struct Catalog {
    pool: SqlitePool,
    path: PathBuf,
    cipher: std::sync::Arc<crypto::FieldCipher>,
}

impl Catalog {
    /// Opens (creating if needed) `DATA_DIR/catalog.sqlite` and applies pending migrations.
    pub async fn open_in(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        Self::open(&data_dir.join(CATALOG_FILE)).await
    }

    /// Opens (creating if needed) the SQLite file at `path`, applies pending migrations and
    /// loads the field key (env, else `keys/` beside the file); subject rows written before
    /// encryption existed are encrypted now.
    pub async fn open(path: &Path) -> Result<Self> {
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable across process crashes; FULL adds power-loss durability
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // overwrite freed space, so personal text replaced by ciphertext (or deleted)
            // does not linger in free pages of the file
            .pragma("secure_delete", "ON")
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let keys = path.parent().unwrap_or(Path::new(".")).join("keys");
        let cipher = std::sync::Arc::new(crypto::FieldCipher::load_or_create(&keys)?);
        let catalog = Self { pool, path: path.to_path_buf(), cipher };
        catalog.encrypt_legacy_subjects().await?;
        Ok(catalog)
    }

    /// The connection pool, for modules that add their own queries.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes all connections (flushes the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Current UTC time as RFC 3339, the format of every timestamp column.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formatting of the current time cannot fail")
}
