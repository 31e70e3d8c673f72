//! The sweeper: deletes footage whose deadline has passed and that no hold or open case
//! keeps, leaving a signed deletion record.
//!
//! Several sweepers (nodes, cron overlaps) may run at once: each item is claimed by one
//! conditional UPDATE, so exactly one deletes it. A sweeper that dies after claiming leaves
//! the claim to expire ([`CLAIM_LEASE`]); the next run finishes the job. Deleting an
//! already-deleted blob is not an error, so every step can be repeated.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::Tier;
use crate::catalog::Evidence;
use crate::catalog::sweep::{self, Deletion};
use crate::clock::fmt_ts;
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
    pub tier: Tier,
    /// Its deadline.
    #[serde(with = "crate::clock::fixed")]
    pub expires_at: OffsetDateTime,
    /// Bytes freed.
    pub size: i64,
}

/// What a sweep did.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// Dry run: nothing was changed.
    pub dry_run: bool,
    /// The clock's "now".
    #[serde(with = "crate::clock::fixed")]
    pub now: OffsetDateTime,
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

impl<'a> Sweeper<'a> {
    /// A sweeper identified by `node` (claims and deletion records name it).
    pub fn new(ev: &'a EvidenceVault, node: impl Into<String>) -> Self {
        Self { ev, node: node.into() }
    }

    /// One pass. With `dry_run`, reports what would go and changes nothing.
    pub async fn run(&self, dry_run: bool) -> Result<SweepReport> {
        let now = self.ev.clock.now();
        let stale = now - CLAIM_LEASE;
        let mut report = SweepReport { dry_run, now, deleted: Vec::new(), held: 0, lost_race: 0 };
        let mut conn = self.ev.catalog.acquire().await?;
        report.held = sweep::count_held(&mut conn, now).await? as u64;
        let candidates = sweep::candidates(&mut conn, now, stale).await?;
        drop(conn);
        for e in candidates {
            let item = SweepItem { digest: e.digest.clone(), tier: e.tier, expires_at: e.expires_at, size: e.size };
            if dry_run {
                report.deleted.push(item);
                continue;
            }
            // the claim re-checks every condition: a hold placed since the SELECT wins
            if !sweep::claim(&mut *self.ev.catalog.acquire().await?, e.id, &self.node, now, stale).await? {
                report.lost_race += 1;
                continue;
            }
            self.delete_claimed(&e, now).await?;
            report.deleted.push(item);
        }
        Ok(report)
    }

    async fn delete_claimed(&self, e: &Evidence, now: OffsetDateTime) -> Result<()> {
        let digest: Digest = e.digest.parse()?;
        for t in self.ev.catalog.thumbnails_of(e.id).await? {
            self.ev.vault.delete_key(&object_store::path::Path::from(t.object_key)).await?;
        }
        let blob_was_there = self.ev.vault.delete_key(&blob_key(&digest)).await?;
        let record = serde_json::json!({
            "evidence_id": e.id, "digest": e.digest, "size": e.size, "device": e.device, "officer": e.officer,
            "recorded_from": fmt_ts(e.recorded_from), "recorded_to": fmt_ts(e.recorded_to), "tier": e.tier,
            "expires_at": fmt_ts(e.expires_at), "deleted_at": fmt_ts(now), "node": self.node,
            "reason": "retention period expired", "blob_was_present": blob_was_there,
        });
        let text = record.to_string();
        let key = self.ev.custody.key();
        let signature = key.sign_hex(text.as_bytes());
        let mut tx = self.ev.catalog.begin().await?;
        // only the claim holder finishes; after a lease takeover the old holder's write is a no-op
        if !sweep::mark_deleted(&mut tx, e.id, &self.node).await? {
            return Ok(());
        }
        let deletion = Deletion {
            evidence_id: e.id,
            digest: e.digest.clone(),
            deleted_at: now,
            record: text,
            key_id: key.key_id().into(),
            signature,
        };
        sweep::insert_deletion(&mut tx, &deletion).await?;
        self.ev.custody.append_on(&mut tx, &format!("sweeper:{}", self.node), "delete", &e.digest, &record).await?;
        tx.commit().await?;
        Ok(())
    }
}
