//! Chain-of-custody log: append-only, hash-chained, Ed25519-signed.
//!
//! Every entry's hash covers its fields and the previous entry's hash; the hash is signed
//! with the node key. Editing, reordering or removing an entry in the middle breaks the
//! chain; SQLite triggers refuse UPDATE and DELETE so honest code cannot do it by mistake.

pub mod keys;

pub use keys::CustodyKey;

use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::catalog::Catalog;
use crate::error::{Result, StoreError};
use crate::retention::{Clock, fmt_ts};

/// `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One custody entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// Hash of an entry's content and its link to the previous entry.
pub fn entry_hash(
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
    prev_hash: &str,
) -> String {
    // JSON of a tuple of strings is an unambiguous encoding (no field can run into the next)
    let canonical = serde_json::to_vec(&(seq, at, actor, action, subject, detail, prev_hash))
        .expect("serialising strings cannot fail");
    let mut h = blake3::Hasher::new_derive_key("epatrol custody v1");
    h.update(&canonical);
    h.finalize().to_hex().to_string()
}

impl CustodyEntry {
    /// Recomputes the hash from the fields.
    pub fn computed_hash(&self) -> String {
        entry_hash(self.seq, &self.at, &self.actor, &self.action, &self.subject, &self.detail, &self.prev_hash)
    }

    /// Checks the entry on its own: hash matches fields, signature matches hash.
    pub fn check(&self, public: &VerifyingKey) -> std::result::Result<(), String> {
        if self.computed_hash() != self.hash {
            return Err(format!("custody entry {} ({}): content does not match its hash", self.seq, self.action));
        }
        let raw = hex::decode(&self.hash).map_err(|_| format!("custody entry {}: hash is not hex", self.seq))?;
        if !keys::verify_hex(public, &raw, &self.signature) {
            return Err(format!("custody entry {} ({}): bad signature", self.seq, self.action));
        }
        Ok(())
    }
}

/// Result of checking the whole chain.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainReport {
    /// Entries checked.
    pub entries: u64,
    /// One message per broken entry or link.
    pub problems: Vec<String>,
}

/// Appends to and checks the custody log.
#[derive(Debug, Clone)]
pub struct CustodyLog {
    catalog: Catalog,
    key: Arc<CustodyKey>,
    clock: Arc<dyn Clock>,
}

impl CustodyLog {
    /// A log writing through `catalog`, signing with `key`.
    pub fn new(catalog: Catalog, key: Arc<CustodyKey>, clock: Arc<dyn Clock>) -> Self {
        Self { catalog, key, clock }
    }

    /// The signing key (public part and id).
    pub fn key(&self) -> &CustodyKey {
        &self.key
    }

    /// Appends one entry and returns it. Safe with several writers (processes or nodes):
    /// `seq` is the primary key, so a writer that raced loses the insert and retries on top.
    pub async fn append(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> Result<CustodyEntry> {
        for attempt in 0..200u32 {
            let mut conn = self.catalog.pool().acquire().await?;
            match self.append_on(&mut conn, actor, action, subject, detail).await {
                Ok(e) => return Ok(e),
                Err(StoreError::Sql(sqlx::Error::Database(e)))
                    if e.is_unique_violation() || e.message().contains("locked") =>
                {
                    // another writer took this seq; back off a little and build on its entry
                    tokio::time::sleep(std::time::Duration::from_millis(1 + (attempt as u64 % 7))).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Custody("could not append after 200 attempts (contention)".into()))
    }

    /// Appends one entry on `conn`, typically inside the transaction that makes the change
    /// it records, so the change and its custody entry commit together. Call it after the
    /// transaction's first write: SQLite then holds the write lock and no one can race `seq`.
    pub async fn append_on(
        &self,
        conn: &mut sqlx::SqliteConnection,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> Result<CustodyEntry> {
        let detail = detail.to_string();
        let last = sqlx::query("SELECT seq, hash FROM custody_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
        let (seq, prev_hash) = match last {
            Some(r) => (r.try_get::<i64, _>("seq")? + 1, r.try_get::<String, _>("hash")?),
            None => (1, GENESIS.to_string()),
        };
        let at = fmt_ts(self.clock.now());
        let hash = entry_hash(seq, &at, actor, action, subject, &detail, &prev_hash);
        let signature = self.key.sign_hex(&hex::decode(&hash).expect("own hash is hex"));
        let entry = CustodyEntry {
            seq,
            at,
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            detail,
            prev_hash,
            hash,
            key_id: self.key.key_id().into(),
            signature,
        };
        sqlx::query(
            "INSERT INTO custody_log (seq, at, actor, action, subject, detail, prev_hash, hash, key_id, signature) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(entry.seq)
        .bind(&entry.at)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.subject)
        .bind(&entry.detail)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .bind(&entry.key_id)
        .bind(&entry.signature)
        .execute(&mut *conn)
        .await?;
        Ok(entry)
    }

    /// Every entry about `subject`, in chain order.
    pub async fn entries_for(&self, subject: &str) -> Result<Vec<CustodyEntry>> {
        let rows = sqlx::query("SELECT * FROM custody_log WHERE subject = ? ORDER BY seq")
            .bind(subject)
            .fetch_all(self.catalog.pool())
            .await?;
        rows.iter().map(row_to_entry).collect()
    }

    /// Checks every entry's hash and signature and every link, streaming the table.
    pub async fn verify_chain(&self, public: &VerifyingKey) -> Result<ChainReport> {
        use futures::TryStreamExt;
        let mut report = ChainReport::default();
        let mut prev: Option<(i64, String)> = None;
        let mut rows = sqlx::query("SELECT * FROM custody_log ORDER BY seq").fetch(self.catalog.pool());
        while let Some(row) = rows.try_next().await? {
            let e = row_to_entry(&row)?;
            report.entries += 1;
            if let Err(msg) = e.check(public) {
                report.problems.push(msg);
            }
            let (want_seq, want_prev) = match &prev {
                Some((s, h)) => (s + 1, h.as_str()),
                None => (1, GENESIS),
            };
            if e.seq != want_seq {
                report.problems.push(format!("custody entry {}: expected seq {want_seq} (entries missing)", e.seq));
            }
            if e.prev_hash != want_prev {
                report
                    .problems
                    .push(format!("custody entry {} ({}): chain link broken (prev_hash mismatch)", e.seq, e.action));
            }
            prev = Some((e.seq, e.hash.clone()));
        }
        Ok(report)
    }
}

fn row_to_entry(r: &sqlx::sqlite::SqliteRow) -> Result<CustodyEntry> {
    Ok(CustodyEntry {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        detail: r.try_get("detail")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
        key_id: r.try_get("key_id")?,
        signature: r.try_get("signature")?,
    })
}
