//! The sweeper's rows: which expired items may go, the claim that makes exactly one
//! sweeper delete each, and the signed deletion records left behind.

use time::OffsetDateTime;

use super::db::{Conn, Fixed};
use super::evidence::Evidence;
use crate::error::Result;

/// SQL condition on `evidence`: no unreleased hold and no link to an open case.
const ELIGIBLE: &str = "NOT EXISTS (SELECT 1 FROM holds h WHERE h.evidence_id = evidence.id AND h.released_at IS NULL) \
     AND NOT EXISTS (SELECT 1 FROM case_evidence ce JOIN cases c ON c.id = ce.case_id \
                     WHERE ce.evidence_id = evidence.id AND c.closed_at IS NULL)";

/// A signed record of one deletion.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Deletion {
    /// The deleted item's row id.
    pub evidence_id: i64,
    /// Its digest.
    pub digest: String,
    /// When it was deleted.
    #[sqlx(try_from = "Fixed")]
    pub deleted_at: OffsetDateTime,
    /// The signed JSON record, exactly as signed.
    pub record: String,
    /// Id of the signing key.
    pub key_id: String,
    /// Ed25519 signature of `record`, hex.
    pub signature: String,
}

/// Active items past their deadline at `now` that a hold or an open case keeps.
pub async fn count_held(conn: &mut Conn, now: OffsetDateTime) -> Result<i64> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM evidence WHERE state = 'active' AND expires_at <= ? AND NOT ({ELIGIBLE})"
    ))
    .bind(Fixed(now))
    .fetch_one(&mut *conn)
    .await?)
}

/// Items to delete at `now`, by deadline: expired and unheld, or claimed by a sweeper
/// whose claim is older than `stale` (it died).
pub async fn candidates(conn: &mut Conn, now: OffsetDateTime, stale: OffsetDateTime) -> Result<Vec<Evidence>> {
    Ok(sqlx::query_as(&format!(
        "SELECT * FROM evidence WHERE ((state = 'active' AND expires_at <= ? AND {ELIGIBLE}) \
         OR (state = 'deleting' AND sweep_claimed_at < ?)) ORDER BY expires_at"
    ))
    .bind(Fixed(now))
    .bind(Fixed(stale))
    .fetch_all(&mut *conn)
    .await?)
}

/// Claims item `id` for sweeper `node`, re-checking every condition of [`candidates`] (a
/// hold placed since wins); returns whether this sweeper got it.
pub async fn claim(conn: &mut Conn, id: i64, node: &str, now: OffsetDateTime, stale: OffsetDateTime) -> Result<bool> {
    let r = sqlx::query(&format!(
        "UPDATE evidence SET state = 'deleting', sweep_claim = ?, sweep_claimed_at = ? WHERE id = ? AND \
         ((state = 'active' AND expires_at <= ? AND {ELIGIBLE}) OR (state = 'deleting' AND sweep_claimed_at < ?))"
    ))
    .bind(node)
    .bind(Fixed(now))
    .bind(id)
    .bind(Fixed(now))
    .bind(Fixed(stale))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Marks item `id` deleted if `node` still holds its claim; returns whether it did (after
/// a lease takeover the old holder's call is a no-op).
pub async fn mark_deleted(conn: &mut Conn, id: i64, node: &str) -> Result<bool> {
    let r =
        sqlx::query("UPDATE evidence SET state = 'deleted' WHERE id = ? AND state = 'deleting' AND sweep_claim = ?")
            .bind(id)
            .bind(node)
            .execute(&mut *conn)
            .await?;
    Ok(r.rows_affected() > 0)
}

/// Stores a deletion record (one per item: a repeat is a no-op).
pub async fn insert_deletion(conn: &mut Conn, d: &Deletion) -> Result<()> {
    sqlx::query(
        "INSERT INTO deletions (evidence_id, digest, deleted_at, record, key_id, signature) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(d.evidence_id)
    .bind(&d.digest)
    .bind(Fixed(d.deleted_at))
    .bind(&d.record)
    .bind(&d.key_id)
    .bind(&d.signature)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every deletion record, oldest first.
pub async fn deletions(conn: &mut Conn) -> Result<Vec<Deletion>> {
    Ok(sqlx::query_as("SELECT * FROM deletions ORDER BY id").fetch_all(&mut *conn).await?)
}
