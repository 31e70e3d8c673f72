//! The ingest journal: one row per ingest in flight, so recovery can roll back what a
//! killed process left (its staging object, and the blob it may have committed).

use time::OffsetDateTime;

use super::db::{Conn, Fixed};
use crate::error::Result;

/// One ingest in flight.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JournalRow {
    /// Journal id (random hex).
    pub id: String,
    /// Staging object key.
    pub staging_key: String,
    /// Digest of the bytes, once hashed.
    pub digest: Option<String>,
    /// Whether the commit copy to `blobs/<digest>` may have started.
    pub commit_started: bool,
    /// Host of the ingesting process.
    pub host: String,
    /// Its pid.
    pub pid: i64,
    /// When it started.
    #[sqlx(try_from = "Fixed")]
    pub started_at: OffsetDateTime,
    /// Its last sign of life.
    #[sqlx(try_from = "Fixed")]
    pub heartbeat_at: OffsetDateTime,
}

/// Records an ingest starting now (`at`) on `host`/`pid` with staging key `staging_key`.
pub async fn begin(
    conn: &mut Conn,
    id: &str,
    staging_key: &str,
    host: &str,
    pid: i64,
    at: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ingest_journal (id, staging_key, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(staging_key)
    .bind(host)
    .bind(pid)
    .bind(Fixed(at))
    .bind(Fixed(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records the digest of the staged bytes.
pub async fn set_digest(conn: &mut Conn, id: &str, digest: &str) -> Result<()> {
    sqlx::query("UPDATE ingest_journal SET digest = ? WHERE id = ?").bind(digest).bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Records that the commit copy is about to start (set *before* it starts).
pub async fn mark_commit_started(conn: &mut Conn, id: &str) -> Result<()> {
    sqlx::query("UPDATE ingest_journal SET commit_started = 1 WHERE id = ?").bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Removes the row: the ingest finished (or was rolled back).
pub async fn end(conn: &mut Conn, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM ingest_journal WHERE id = ?").bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Every ingest in flight.
pub async fn all(conn: &mut Conn) -> Result<Vec<JournalRow>> {
    Ok(sqlx::query_as("SELECT * FROM ingest_journal").fetch_all(&mut *conn).await?)
}

/// The ingest `id`, if still in flight.
pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<JournalRow>> {
    Ok(sqlx::query_as("SELECT * FROM ingest_journal WHERE id = ?").bind(id).fetch_optional(&mut *conn).await?)
}

/// How many other ingests in flight (not `id`) carry `digest`.
pub async fn others_with_digest(conn: &mut Conn, digest: &str, id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM ingest_journal WHERE digest = ? AND id != ?")
        .bind(digest)
        .bind(id)
        .fetch_one(&mut *conn)
        .await?)
}
