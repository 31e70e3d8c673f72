//! `verify`: re-hash every blob the catalog says exists, check thumbnails, find blobs the
//! catalog does not know, check deletion records and the custody chain. Every problem is
//! one line naming the item.

use std::collections::HashSet;

use object_store::path::Path as ObjPath;
use serde::Serialize;

use super::{EvidenceVault, blob_key};
use crate::catalog::{journal, sweep};
use crate::custody::keys;
use crate::error::{Result, StoreError};
use crate::model::EvidenceState;

/// What verification found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Blobs re-hashed.
    pub blobs_checked: u64,
    /// Bytes re-hashed.
    pub bytes_checked: u64,
    /// Thumbnails checked.
    pub thumbnails_checked: u64,
    /// Custody entries checked.
    pub custody_entries: u64,
    /// Deletion records checked.
    pub deletions_checked: u64,
    /// Ingests in flight (not errors).
    pub ingests_in_flight: u64,
    /// One line per problem; empty means clean.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether nothing failed.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl EvidenceVault {
    /// Verifies blobs, thumbnails, deletion records and the custody chain.
    pub async fn verify(&self) -> Result<VerifyReport> {
        let mut rep = VerifyReport::default();
        let mut known: HashSet<String> = HashSet::new();

        for state in [EvidenceState::Active, EvidenceState::Deleting] {
            for e in self.catalog.evidence_in_state(state).await? {
                known.insert(e.digest.clone());
                let digest = e.digest.parse()?;
                match self.vault.rehash(&blob_key(&digest)).await {
                    Ok((d, size)) => {
                        rep.blobs_checked += 1;
                        rep.bytes_checked += size;
                        if d != digest || size != e.size as u64 {
                            rep.problems.push(format!(
                                "blob {} (evidence {}): content changed: now {size} bytes hashing to {d}",
                                e.digest, e.id
                            ));
                        }
                    }
                    // a sweeper may have deleted the blob before it died; the next sweep finishes
                    Err(StoreError::NotFound(_)) if state == EvidenceState::Deleting => {}
                    Err(StoreError::NotFound(_)) => {
                        rep.problems.push(format!("blob {} (evidence {}): missing from the vault", e.digest, e.id))
                    }
                    Err(err) => rep.problems.push(format!("blob {} (evidence {}): unreadable: {err}", e.digest, e.id)),
                }
                for t in self.catalog.thumbnails_of(e.id).await? {
                    rep.thumbnails_checked += 1;
                    match self.vault.rehash(&ObjPath::from(t.object_key.clone())).await {
                        Ok((d, _)) if d.to_hex() == t.digest => {}
                        Ok(_) => {
                            rep.problems.push(format!("thumbnail {} of {}: content changed", t.object_key, e.digest))
                        }
                        Err(StoreError::NotFound(_)) if state == EvidenceState::Deleting => {}
                        Err(err) => rep.problems.push(format!("thumbnail {} of {}: {err}", t.object_key, e.digest)),
                    }
                }
            }
        }

        // blobs nobody catalogued: only an ingest still running may own one
        let journal = journal::all(&mut *self.catalog.acquire().await?).await?;
        rep.ingests_in_flight = journal.len() as u64;
        let in_flight: HashSet<String> = journal.into_iter().filter_map(|r| r.digest).collect();
        for (key, _) in self.vault.list("blobs").await? {
            let name = key.filename().unwrap_or_default().to_string();
            if !known.contains(&name) && !in_flight.contains(&name) {
                rep.problems.push(format!("blob {name}: in the vault but not in the catalog (orphan)"));
            }
        }

        let public = keys::load_public(self.data_dir())?;
        let dels = sweep::deletions(&mut *self.catalog.acquire().await?).await?;
        for r in dels {
            rep.deletions_checked += 1;
            let digest = r.digest;
            if !keys::verify_hex(&public, r.record.as_bytes(), &r.signature) {
                rep.problems.push(format!("deletion record of {digest}: bad signature"));
            }
            if self.vault.blob_size(&digest.parse()?).await?.is_some() && !known.contains(&digest) {
                rep.problems.push(format!("blob {digest}: recorded as deleted but still in the vault"));
            }
        }

        let chain = self.custody.verify_chain(&public).await?;
        rep.custody_entries = chain.entries;
        rep.problems.extend(chain.problems);
        Ok(rep)
    }
}
