//! Chain-of-custody log: append-only, hash-chained, Ed25519-signed.
//!
//! Every entry's hash covers its fields and the previous entry's hash; the hash is signed
//! with the node key. Editing, reordering or removing an entry in the middle breaks the
//! chain; SQLite triggers refuse UPDATE and DELETE so honest code cannot do it by mistake.

pub mod keys;

pub use keys::CustodyKey;

use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use serde::Serialize;

pub use crate::catalog::CustodyEntry;
use crate::catalog::db::Conn;
use crate::catalog::{Catalog, custody as rows};
use crate::clock::{Clock, fmt_ts};
use crate::error::{Result, StoreError};

/// `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
            let mut conn = self.catalog.acquire().await?;
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
        conn: &mut Conn,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> Result<CustodyEntry> {
        let detail = detail.to_string();
        let (seq, prev_hash) = match rows::last(conn).await? {
            Some((seq, hash)) => (seq + 1, hash),
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
        rows::insert(conn, &entry).await?;
        Ok(entry)
    }

    /// Every entry about `subject`, in chain order.
    pub async fn entries_for(&self, subject: &str) -> Result<Vec<CustodyEntry>> {
        rows::for_subject(&mut *self.catalog.acquire().await?, subject).await
    }

    /// Checks every entry's hash and signature and every link, streaming the table.
    pub async fn verify_chain(&self, public: &VerifyingKey) -> Result<ChainReport> {
        use futures::TryStreamExt;
        let mut report = ChainReport::default();
        let mut prev: Option<(i64, String)> = None;
        let mut conn = self.catalog.acquire().await?;
        let mut entries = rows::all(&mut conn);
        while let Some(e) = entries.try_next().await? {
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
