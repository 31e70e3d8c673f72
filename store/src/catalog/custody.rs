//! The custody log's rows: append-only (SQLite triggers refuse UPDATE and DELETE), each
//! entry hash-chained to the one before. The chaining and signing live in
//! [`crate::custody`]; this module only stores and reads entries.

use futures::stream::{BoxStream, StreamExt};
use serde::{Deserialize, Serialize};

use super::db::Conn;
#[cfg(doc)]
use crate::custody::GENESIS;
use crate::error::{Result, StoreError};

// `at` stays the exact text that was hashed and signed (UTC, fixed width), so checking an
// entry never depends on re-formatting a time.
/// One custody entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustodyEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (UTC, fixed width).
    pub at: String,
    /// Who (officer login, `cli:<user>`, `sweeper:<node>`).
    pub actor: String,
    /// What: `ingest`, `duplicate`, `view`, `export`, `classify`, `hold`, `release`,
    /// `case_link`, `delete`, `reject`.
    pub action: String,
    /// The item concerned (evidence digest), or empty.
    pub subject: String,
    /// JSON detail.
    pub detail: String,
    /// Hash of entry `seq - 1` ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// BLAKE3 (derive-key mode, context `epatrol custody v1`) of the fields above.
    pub hash: String,
    /// Id of the signing key.
    pub key_id: String,
    /// Ed25519 signature of `hash` (the 32 raw bytes), hex.
    pub signature: String,
}

/// `(seq, hash)` of the newest entry, if any.
pub async fn last(conn: &mut Conn) -> Result<Option<(i64, String)>> {
    Ok(sqlx::query_as("SELECT seq, hash FROM custody_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *conn).await?)
}

/// Appends `e` as stored. Two writers that computed the same `seq` collide on the
/// primary key: the second gets a unique violation.
pub async fn insert(conn: &mut Conn, e: &CustodyEntry) -> Result<()> {
    sqlx::query(
        "INSERT INTO custody_log (seq, at, actor, action, subject, detail, prev_hash, hash, key_id, signature) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(e.seq)
    .bind(&e.at)
    .bind(&e.actor)
    .bind(&e.action)
    .bind(&e.subject)
    .bind(&e.detail)
    .bind(&e.prev_hash)
    .bind(&e.hash)
    .bind(&e.key_id)
    .bind(&e.signature)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every entry about `subject`, in chain order.
pub async fn for_subject(conn: &mut Conn, subject: &str) -> Result<Vec<CustodyEntry>> {
    Ok(sqlx::query_as("SELECT * FROM custody_log WHERE subject = ? ORDER BY seq")
        .bind(subject)
        .fetch_all(&mut *conn)
        .await?)
}

/// Every entry in chain order, streamed (the log can be long).
pub fn all(conn: &mut Conn) -> BoxStream<'_, Result<CustodyEntry>> {
    sqlx::query_as("SELECT * FROM custody_log ORDER BY seq").fetch(conn).map(|r| r.map_err(StoreError::from)).boxed()
}
