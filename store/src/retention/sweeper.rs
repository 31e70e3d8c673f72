//! The sweeper: deletes footage whose deadline has passed and that no hold or open case
//! keeps, leaving a signed deletion record.
//!
//! Several sweepers (nodes, cron overlaps) may run at once: each item is claimed by one
//! conditional UPDATE, so exactly one deletes it. A sweeper that dies after claiming leaves
//! the claim to expire ([`CLAIM_LEASE`]); the next run finishes the job. Deleting an
//! already-deleted blob is not an error, so every step can be repeated.

use serde::Serialize;
use sqlx::Row;
use time::Duration;

use super::fmt_ts;
use crate::catalog::Evidence;
use crate::catalog::evidence::row_to_evidence;
use crate::error::Result;
use crate::vault::{Digest, EvidenceVault, blob_key};

/// How long a claim protects an item from other sweepers.
pub const CLAIM_LEASE: Duration = Duration::minutes(30);

/// One item the sweeper deleted (or would delete, in a dry run).
#[derive(Debug, Clone, Serialize)]
pub struct SweepItem {
    /// Evidence digest.
    pub digest: String,
    /// Tier it was in.
    pub tier: String,
    /// Its deadline.
    pub expires_at: String,
    /// Bytes freed.
    pub size: i64,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// Dry run: nothing was changed.
    pub dry_run: bool,
    /// The clock's "now".
    pub now: String,
    /// Items deleted (or to delete, in a dry run).
    pub deleted: Vec<SweepItem>,
    /// Expired items kept by a hold or an open case.
    pub held: u64,
    /// Items another sweeper claimed first.
    pub lost_race: u64,
}

/// Runs sweeps over an [`EvidenceVault`].
#[derive(Debug)]
pub struct Sweeper<'a> {
    ev: &'a EvidenceVault,
    node: String,
}

const ELIGIBLE: &str = "NOT EXISTS (SELECT 1 FROM holds h WHERE h.evidence_id = evidence.id AND h.released_at IS NULL) \
     AND NOT EXISTS (SELECT 1 FROM case_evidence ce JOIN cases c ON c.id = ce.case_id \
                     WHERE ce.evidence_id = evidence.id AND c.closed_at IS NULL)";

impl<'a> Sweeper<'a> {
    /// A sweeper identified by `node` (claims and deletion records name it).
    pub fn new(ev: &'a EvidenceVault, node: impl Into<String>) -> Self {
        Self { ev, node: node.into() }
    }

    /// One pass. With `dry_run`, reports what would go and changes nothing.
    pub async fn run(&self, dry_run: bool) -> Result<SweepReport> {
        let now_t = self.ev.clock.now();
        let now = fmt_ts(now_t);
        let stale = fmt_ts(now_t - CLAIM_LEASE);
        let pool = self.ev.catalog.pool();
        let mut report = SweepReport { dry_run, now: now.clone(), ..Default::default() };

        let held = sqlx::query(&format!(
            "SELECT COUNT(*) FROM evidence WHERE state = 'active' AND expires_at <= ? AND NOT ({ELIGIBLE})"
        ))
        .bind(&now)
        .fetch_one(pool)
        .await?;
        report.held = held.try_get::<i64, _>(0)? as u64;

        let candidates = sqlx::query(&format!(
            "SELECT * FROM evidence WHERE ((state = 'active' AND expires_at <= ? AND {ELIGIBLE}) \
             OR (state = 'deleting' AND sweep_claimed_at < ?)) ORDER BY expires_at"
        ))
        .bind(&now)
        .bind(&stale)
        .fetch_all(pool)
        .await?;
        for row in candidates {
            let e = row_to_evidence(&row)?;
            let item = SweepItem {
                digest: e.digest.clone(),
                tier: e.tier.clone(),
                expires_at: e.expires_at.clone(),
                size: e.size,
            };
            if dry_run {
                report.deleted.push(item);
                continue;
            }
            // the claim re-checks every condition: a hold placed since the SELECT wins
            let claimed = sqlx::query(&format!(
                "UPDATE evidence SET state = 'deleting', sweep_claim = ?, sweep_claimed_at = ? WHERE id = ? AND \
                 ((state = 'active' AND expires_at <= ? AND {ELIGIBLE}) OR (state = 'deleting' AND sweep_claimed_at < ?))"
            ))
            .bind(&self.node)
            .bind(&now)
            .bind(e.id)
            .bind(&now)
            .bind(&stale)
            .execute(pool)
            .await?;
            if claimed.rows_affected() == 0 {
                report.lost_race += 1;
                continue;
            }
            self.delete_claimed(&e, &now).await?;
            report.deleted.push(item);
        }
        Ok(report)
    }

    async fn delete_claimed(&self, e: &Evidence, now: &str) -> Result<()> {
        let digest: Digest = e.digest.parse()?;
        for t in self.ev.catalog.thumbnails_of(e.id).await? {
            self.ev.vault.delete_key(&object_store::path::Path::from(t.object_key)).await?;
        }
        let blob_was_there = self.ev.vault.delete_key(&blob_key(&digest)).await?;
        let record = serde_json::json!({
            "evidence_id": e.id, "digest": e.digest, "size": e.size, "device": e.device, "officer": e.officer,
            "recorded_from": e.recorded_from, "recorded_to": e.recorded_to, "tier": e.tier,
            "expires_at": e.expires_at, "deleted_at": now, "node": self.node,
            "reason": "retention period expired", "blob_was_present": blob_was_there,
        });
        let text = record.to_string();
        let key = self.ev.custody.key();
        let signature = key.sign_hex(text.as_bytes());
        let mut tx = self.ev.catalog.pool().begin().await?;
        // only the claim holder finishes; after a lease takeover the old holder's write is a no-op
        let done = sqlx::query(
            "UPDATE evidence SET state = 'deleted' WHERE id = ? AND state = 'deleting' AND sweep_claim = ?",
        )
        .bind(e.id)
        .bind(&self.node)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(());
        }
        sqlx::query("INSERT OR IGNORE INTO deletions (evidence_id, digest, deleted_at, record, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(e.id)
            .bind(&e.digest)
            .bind(now)
            .bind(&text)
            .bind(key.key_id())
            .bind(&signature)
            .execute(&mut *tx)
            .await?;
        self.ev.custody.append_on(&mut tx, &format!("sweeper:{}", self.node), "delete", &e.digest, &record).await?;
        tx.commit().await?;
        Ok(())
    }
}
