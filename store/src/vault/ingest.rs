//! Ingest: probe → journal → stream into staging while hashing → commit create-if-absent →
//! thumbnails → one transaction (evidence row + thumbnails + custody entry, journal row
//! removed). A process killed anywhere leaves a journal row that [`EvidenceVault::recover`]
//! rolls back, so no blob without an evidence row survives and no row without a blob exists.

use std::path::Path;

use bytes::Bytes;
use object_store::path::Path as ObjPath;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::service::host_name;
use super::{Declared, Digest, EvidenceVault, Staged, blob_key, random_id};
use crate::catalog::db::is_unique_violation;
use crate::catalog::{Evidence, ThumbnailRow, evidence, journal};
use crate::clock::fmt_ts;
use crate::error::{Result, StoreError};
use crate::model::{EvidenceState, Source, Tier, TimeSource};
use crate::video::{self, MediaInfo, Rejection};

/// How long a journal row of another host may go without a heartbeat before recovery
/// assumes its ingest died (same-host rows are checked by pid at once).
pub const JOURNAL_LEASE: Duration = Duration::hours(6);

/// Thumbnails made per item.
pub const THUMBNAILS_PER_ITEM: usize = 3;

/// Who submits footage and what they declare about it.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    /// Officer the footage belongs to.
    pub officer: String,
    /// Device that recorded it.
    pub device: String,
    /// Where it came from.
    pub source: Source,
    /// Who performs the ingest (for custody).
    pub actor: String,
    /// Start of recording, when the caller knows it better than the file metadata.
    pub recorded_from: Option<OffsetDateTime>,
    /// Declared length / digest to check.
    pub declared: Declared,
}

/// Result of one ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IngestStatus {
    /// New footage stored.
    Stored,
    /// Identical footage was already in the vault.
    Duplicate,
    /// Stored, but the file is damaged (truncated); kept as evidence.
    Damaged,
    /// Not footage; nothing stored.
    Rejected,
}

/// What the CLI prints per file (one JSON line).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestOutcome {
    /// File as given.
    pub file: String,
    /// BLAKE3 of the bytes.
    pub digest: String,
    /// Bytes.
    pub size: u64,
    /// Outcome.
    pub status: IngestStatus,
    /// Why rejected or damaged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Evidence row id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_id: Option<i64>,
    /// Tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub tier: Option<Tier>,
    /// Retention deadline.
    #[serde(skip_serializing_if = "Option::is_none", with = "crate::clock::fixed::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub expires_at: Option<OffsetDateTime>,
    /// Media facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaInfo>,
}

/// What [`EvidenceVault::recover`] cleaned up.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoveryReport {
    /// Interrupted ingests rolled back.
    pub rolled_back: u64,
    /// Blobs removed because their ingest never finished.
    pub blobs_removed: u64,
    /// Ingests still running (left alone).
    pub in_flight: u64,
}

impl EvidenceVault {
    /// Ingests one local file.
    pub async fn ingest_file(&self, path: &Path, req: &IngestRequest) -> Result<IngestOutcome> {
        let name = path.display().to_string();
        let p = path.to_path_buf();
        let probed = tokio::task::spawn_blocking(move || video::probe(&p)).await.expect("probe task panicked");
        let media = match probed {
            Ok(m) => m,
            Err(Rejection(reason)) => return self.reject(path, &name, req, reason).await,
        };
        let meta = tokio::fs::metadata(path).await?;
        let declared = Declared { len: req.declared.len.or(Some(meta.len())), digest: req.declared.digest };

        let journal_id = random_id();
        let staging = ObjPath::from(format!("staging/{journal_id}"));
        self.journal_begin(&journal_id, &staging).await?;
        let result = self.ingest_journaled(path, &name, req, media, declared, &journal_id, &staging, &meta).await;
        if result.is_err() {
            // undo what this attempt left (the journal row tells recovery the same thing)
            self.rollback_journal(&journal_id).await?;
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn ingest_journaled(
        &self,
        path: &Path,
        name: &str,
        req: &IngestRequest,
        media: MediaInfo,
        declared: Declared,
        journal_id: &str,
        staging: &ObjPath,
        meta: &std::fs::Metadata,
    ) -> Result<IngestOutcome> {
        let staged = self.vault.stage_file(staging.clone(), path, declared).await?;
        let mtime = OffsetDateTime::from(meta.modified()?);
        self.finish(path, name, req, media, staged, journal_id, mtime).await
    }

    /// Everything after the bytes are staged and hashed: dedup check, commit, thumbnails
    /// (from `local`, a local copy of the bytes), and the catalog transaction.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn finish(
        &self,
        path: &Path,
        name: &str,
        req: &IngestRequest,
        media: MediaInfo,
        staged: Staged,
        journal_id: &str,
        mtime: OffsetDateTime,
    ) -> Result<IngestOutcome> {
        let digest = staged.digest.to_hex();
        journal::set_digest(&mut *self.catalog.acquire().await?, journal_id, &digest).await?;

        if let Some(existing) = self.catalog.evidence_by_digest(&digest).await? {
            self.vault.discard(&staged.key).await;
            self.journal_end(journal_id).await?;
            return self.duplicate(name, req, &staged, existing).await;
        }

        // record the intent first: if this process dies inside or after the copy, recovery
        // knows a blob may exist that no evidence row owns yet
        journal::mark_commit_started(&mut *self.catalog.acquire().await?, journal_id).await?;
        self.vault.commit(&staged).await?;

        // thumbnails come from the local file: no second read through the object store
        let p = path.to_path_buf();
        let dur = media.duration_ms;
        let thumbs = tokio::task::spawn_blocking(move || video::thumbnails(&p, dur, THUMBNAILS_PER_ITEM))
            .await
            .expect("thumbnail task panicked");
        let mut thumb_rows = Vec::new();
        for (i, t) in thumbs.into_iter().enumerate() {
            let key = ObjPath::from(format!("thumbs/{digest}/{i}.jpg"));
            let td = Digest::of(&t.jpeg);
            let size = t.jpeg.len() as i64;
            self.vault.put_small(&key, Bytes::from(t.jpeg)).await?;
            thumb_rows.push(ThumbnailRow {
                idx: i as i64,
                pts_ms: t.pts_ms,
                object_key: key.to_string(),
                digest: td.to_hex(),
                size,
            });
        }

        let (recorded_from, time_source) = match (req.recorded_from, media.creation_time) {
            (Some(t), _) => (t, TimeSource::Declared),
            (None, Some(t)) => (t, TimeSource::Metadata),
            (None, None) => (mtime, TimeSource::FileMtime),
        };
        let recorded_to = recorded_from + Duration::milliseconds(media.duration_ms as i64);
        let tier = Tier::General;
        let expires_at = tier.deadline(recorded_to);
        let row = Evidence {
            id: 0,
            digest: digest.clone(),
            size: staged.size as i64,
            device: req.device.clone(),
            officer: req.officer.clone(),
            source: req.source,
            original_name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            container: media.container.clone(),
            video_codec: media.video_codec.clone(),
            audio_codec: media.audio_codec.clone(),
            width: media.width as i64,
            height: media.height as i64,
            duration_ms: media.duration_ms as i64,
            creation_time: media.creation_time,
            recorded_from,
            recorded_to,
            time_source,
            damaged: media.damage.is_some(),
            damage_reason: media.damage.clone(),
            tier,
            expires_at,
            state: EvidenceState::Active,
            ingested_at: self.clock.now(),
            ingested_by: req.actor.clone(),
        };

        let mut tx = self.catalog.begin().await?;
        let id = match evidence::insert(&mut tx, &row).await {
            Ok(id) => id,
            Err(StoreError::Sql(e)) if is_unique_violation(&e) => {
                // a concurrent ingest of the same bytes catalogued it first; the blob is shared
                drop(tx);
                self.journal_end(journal_id).await?;
                let existing = self
                    .catalog
                    .evidence_by_digest(&digest)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(digest.clone()))?;
                return self.duplicate(name, req, &staged, existing).await;
            }
            Err(e) => return Err(e),
        };
        for t in &thumb_rows {
            evidence::insert_thumbnail(&mut tx, id, t).await?;
        }
        journal::end(&mut tx, journal_id).await?;
        let detail = serde_json::json!({
            "evidence_id": id, "size": staged.size, "officer": req.officer, "device": req.device,
            "source": req.source.as_str(), "file": row.original_name, "damaged": media.damage.is_some(),
            "tier": tier.as_str(), "expires_at": fmt_ts(row.expires_at),
        });
        self.custody.append_on(&mut tx, &req.actor, "ingest", &digest, &detail).await?;
        tx.commit().await?;

        if let Err(e) = self.vault.apply_retention(&staged.digest, tier, expires_at).await {
            tracing::warn!(%digest, error = %e, "could not set retention on the stored object");
        }
        let status = if media.damage.is_some() { IngestStatus::Damaged } else { IngestStatus::Stored };
        Ok(IngestOutcome {
            file: name.into(),
            digest,
            size: staged.size,
            status,
            reason: media.damage.clone(),
            evidence_id: Some(id),
            tier: Some(tier),
            expires_at: Some(row.expires_at),
            media: Some(media),
        })
    }

    async fn duplicate(
        &self,
        name: &str,
        req: &IngestRequest,
        staged: &Staged,
        existing: Evidence,
    ) -> Result<IngestOutcome> {
        let digest = staged.digest.to_hex();
        if existing.state != EvidenceState::Active {
            return Ok(IngestOutcome {
                file: name.into(),
                digest,
                size: staged.size,
                status: IngestStatus::Rejected,
                reason: Some(format!(
                    "identical footage was {} under retention (deadline {})",
                    existing.state,
                    fmt_ts(existing.expires_at)
                )),
                evidence_id: Some(existing.id),
                tier: None,
                expires_at: None,
                media: None,
            });
        }
        let detail =
            serde_json::json!({"evidence_id": existing.id, "officer": req.officer, "device": req.device, "file": name});
        self.custody.append(&req.actor, "duplicate", &digest, &detail).await?;
        Ok(IngestOutcome {
            file: name.into(),
            digest,
            size: staged.size,
            status: IngestStatus::Duplicate,
            reason: None,
            evidence_id: Some(existing.id),
            tier: Some(existing.tier),
            expires_at: Some(existing.expires_at),
            media: None,
        })
    }

    /// Not footage: hash it for the report and record the refusal; nothing is stored.
    pub(crate) async fn reject(
        &self,
        path: &Path,
        name: &str,
        req: &IngestRequest,
        reason: String,
    ) -> Result<IngestOutcome> {
        let (digest, size) = hash_file(path).await?;
        let detail = serde_json::json!({"file": name, "digest": digest.to_hex(), "size": size, "reason": reason});
        self.catalog.audit(&req.actor, &req.device, "ingest", None, "rejected", &detail).await?;
        Ok(IngestOutcome {
            file: name.into(),
            digest: digest.to_hex(),
            size,
            status: IngestStatus::Rejected,
            reason: Some(reason),
            evidence_id: None,
            tier: None,
            expires_at: None,
            media: None,
        })
    }

    pub(crate) async fn journal_begin(&self, id: &str, staging: &ObjPath) -> Result<()> {
        let mut conn = self.catalog.acquire().await?;
        journal::begin(&mut conn, id, staging.as_ref(), &host_name(), std::process::id() as i64, self.clock.now()).await
    }

    pub(crate) async fn journal_end(&self, id: &str) -> Result<()> {
        journal::end(&mut *self.catalog.acquire().await?, id).await
    }

    /// Rolls back interrupted ingests whose owner is gone: same-host rows whose process no
    /// longer exists, and other hosts' rows past [`JOURNAL_LEASE`]. Safe to run any time,
    /// from any number of processes.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let rows = journal::all(&mut *self.catalog.acquire().await?).await?;
        let me = host_name();
        let stale_before = self.clock.now() - JOURNAL_LEASE;
        let mut report = RecoveryReport::default();
        for r in rows {
            let pid = r.pid;
            let dead = if r.host == me {
                pid != std::process::id() as i64 && !Path::new(&format!("/proc/{pid}")).exists()
            } else {
                r.heartbeat_at < stale_before
            };
            if !dead {
                report.in_flight += 1;
                continue;
            }
            report.blobs_removed += self.rollback_journal(&r.id).await? as u64;
            report.rolled_back += 1;
        }
        Ok(report)
    }

    /// Undoes one journaled ingest; returns whether a blob was removed.
    pub(crate) async fn rollback_journal(&self, id: &str) -> Result<bool> {
        let Some(r) = journal::get(&mut *self.catalog.acquire().await?, id).await? else {
            return Ok(false);
        };
        self.vault.discard(&ObjPath::from(r.staging_key)).await;
        let mut removed = false;
        if let Some(d) = r.digest {
            // the digest is someone's if catalogued or if another ingest of it is in flight
            let others = journal::others_with_digest(&mut *self.catalog.acquire().await?, &d, id).await?;
            if others == 0 && self.catalog.evidence_by_digest(&d).await?.is_none() {
                for (key, _) in self.vault.list(&format!("thumbs/{d}")).await? {
                    self.vault.delete_key(&key).await?;
                }
                if r.commit_started {
                    removed = self.vault.delete_key(&blob_key(&d.parse()?)).await?;
                }
            }
        }
        self.journal_end(id).await?;
        Ok(removed)
    }
}

/// BLAKE3 and length of a local file, streamed.
pub async fn hash_file(path: &Path) -> Result<(Digest, u64)> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut h = blake3::Hasher::new();
        let mut f = std::fs::File::open(&p)?;
        let n = std::io::copy(&mut f, &mut h)?;
        Ok((Digest::from(h.finalize()), n))
    })
    .await
    .expect("hash task panicked")
}
