//! The SQL catalog: SQLite file under the data dir (WAL, foreign keys, embedded migrations).
//!
//! Every SQL statement of the crate lives under this module.
//!
//! - [`Catalog`]: the handle (pool, file, field cipher) with convenience methods for
//!   one-shot reads and writes, and [`Catalog::begin`] for callers that compose several
//!   repository calls in one transaction;
//! - one repository module per resource (`evidence`, `incidents`, `custody`, `journal`,
//!   `uploads`, `sweep`, ...): typed rows (`sqlx::FromRow`) and free functions taking
//!   `&mut `[`db::Conn`], so the vault, retention and custody code compose them;
//! - [`db`]: the database type and the column encodings, named once.
//!
//! SQL is kept portable where it costs nothing (`ON CONFLICT`, `RETURNING`); what is
//! SQLite-specific says so where it is written (scalar `MAX(a, b)`, `last_insert_rowid`,
//! `VACUUM` and pragmas, the connection options below). Placeholders are `?`, which a
//! PostgreSQL backend would rewrite as `$n`.

mod audit;
pub mod crypto;
pub mod custody;
pub mod db;
pub mod evidence;
pub mod incidents;
pub mod journal;
mod outbox;
mod search;
mod subjects;
pub mod sweep;
pub mod uploads;
mod users;

pub use audit::AuditEntry;
pub use custody::CustodyEntry;
pub use evidence::{Evidence, ThumbnailRow};
pub use incidents::{Case, Hold, Incident};
pub use outbox::{NewEvent, OutboxEvent};
pub use search::EvidenceQuery;
pub use subjects::{DeletedSubject, Flags, NewSubject, NewTemplate, Subject, TemplateRow};
pub use users::{Session, User};

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use self::db::{Pool, PoolConn, Tx};
use crate::error::Result;

/// File name of the catalog inside the data dir.
pub const CATALOG_FILE: &str = "catalog.sqlite";

/// Handle to the catalog database.
#[derive(Clone, Debug)]
pub struct Catalog {
    pool: Pool,
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

    /// Starts a transaction: pass `&mut tx` to repository functions, then `commit()`.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }

    /// A connection from the pool, for repository calls that need no transaction.
    pub async fn acquire(&self) -> Result<PoolConn> {
        Ok(self.pool.acquire().await?)
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
