//! Ingest: probe → journal → stream into staging while hashing → commit create-if-absent →
//! thumbnails → one transaction (evidence row + thumbnails + custody entry, journal row
//! removed). A process killed anywhere leaves a journal row that [`EvidenceVault::recover`]
//! rolls back, so no blob without an evidence row survives and no row without a blob exists.

use std::path::Path;
use std::str::FromStr;

use bytes::Bytes;
use object_store::path::Path as ObjPath;
use serde::Serialize;
use sqlx::Row;
use time::{Duration, OffsetDateTime};

use super::service::host_name;
use super::{Declared, Digest, EvidenceVault, Staged, blob_key, random_id};
use crate::catalog::NewEvidence;
use crate::catalog::evidence::insert_evidence;
use crate::error::{Result, StoreError};
use crate::retention::{Tier, fmt_ts};
use crate::video::{self, MediaInfo, Rejection};

/// How long a journal row of another host may go without a heartbeat before recovery
/// assumes its ingest died (same-host rows are checked by pid at once).
pub const JOURNAL_LEASE: Duration = Duration::hours(6);

/// Thumbnails made per item.
pub const THUMBNAILS_PER_ITEM: usize = 3;

/// Where footage came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Uploaded by the body camera itself.
    BodyCamera,
    /// Uploaded by a docking / charging station.
    Dock,
    /// Another device (a colleague's phone, another recorder) when the camera failed.
    OtherDevice,
}

impl Source {
    /// Catalog name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::BodyCamera => "body_camera",
            Source::Dock => "dock",
            Source::OtherDevice => "other_device",
        }
    }
}

impl FromStr for Source {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s.replace('-', "_").as_str() {
            "body_camera" | "camera" => Ok(Source::BodyCamera),
            "dock" => Ok(Source::Dock),
            "other_device" | "other" | "phone" => Ok(Source::OtherDevice),
            other => Err(StoreError::Invalid(format!("unknown source {other:?} (body_camera, dock, other_device)"))),
        }
    }
}

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
    pub tier: Option<String>,
    /// Retention deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
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
        sqlx::query("UPDATE ingest_journal SET digest = ? WHERE id = ?")
            .bind(&digest)
            .bind(journal_id)
            .execute(self.catalog.pool())
            .await?;

        if let Some(existing) = self.catalog.evidence_by_digest(&digest).await? {
            self.vault.discard(&staged.key).await;
            self.journal_end(journal_id).await?;
            return self.duplicate(name, req, &staged, existing).await;
        }

        // record the intent first: if this process dies inside or after the copy, recovery
        // knows a blob may exist that no evidence row owns yet
        sqlx::query("UPDATE ingest_journal SET commit_started = 1 WHERE id = ?")
            .bind(journal_id)
            .execute(self.catalog.pool())
            .await?;
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
            thumb_rows.push((i as i64, t.pts_ms, key.to_string(), td.to_hex(), size));
        }

        let (recorded_from, time_source) = match (req.recorded_from, media.creation_time) {
            (Some(t), _) => (t, "declared"),
            (None, Some(t)) => (t, "metadata"),
            (None, None) => (mtime, "file_mtime"),
        };
        let recorded_to = recorded_from + Duration::milliseconds(media.duration_ms as i64);
        let tier = Tier::General;
        let expires_at = tier.deadline(recorded_to);
        let now = fmt_ts(self.clock.now());
        let row = NewEvidence {
            digest: digest.clone(),
            size: staged.size as i64,
            device: req.device.clone(),
            officer: req.officer.clone(),
            source: req.source.as_str().into(),
            original_name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            container: media.container.clone(),
            video_codec: media.video_codec.clone(),
            audio_codec: media.audio_codec.clone(),
            width: media.width as i64,
            height: media.height as i64,
            duration_ms: media.duration_ms as i64,
            creation_time: media.creation_time.map(fmt_ts),
            recorded_from: fmt_ts(recorded_from),
            recorded_to: fmt_ts(recorded_to),
            time_source: time_source.into(),
            damage_reason: media.damage.clone(),
            tier: tier.as_str().into(),
            expires_at: fmt_ts(expires_at),
            ingested_at: now,
            ingested_by: req.actor.clone(),
        };

        let mut tx = self.catalog.pool().begin().await?;
        let id = match insert_evidence(&mut tx, &row).await {
            Ok(id) => id,
            Err(StoreError::Sql(sqlx::Error::Database(e))) if e.is_unique_violation() => {
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
        for (idx, pts, key, td, size) in &thumb_rows {
            sqlx::query(
                "INSERT INTO thumbnails (evidence_id, idx, pts_ms, object_key, digest, size) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(idx)
            .bind(pts)
            .bind(key)
            .bind(td)
            .bind(size)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM ingest_journal WHERE id = ?").bind(journal_id).execute(&mut *tx).await?;
        let detail = serde_json::json!({
            "evidence_id": id, "size": staged.size, "officer": req.officer, "device": req.device,
            "source": req.source.as_str(), "file": row.original_name, "damaged": media.damage.is_some(),
            "tier": tier.as_str(), "expires_at": row.expires_at,
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
            tier: Some(tier.as_str().into()),
            expires_at: Some(row.expires_at),
            media: Some(media),
        })
    }

    async fn duplicate(
        &self,
        name: &str,
        req: &IngestRequest,
        staged: &Staged,
        existing: crate::catalog::Evidence,
    ) -> Result<IngestOutcome> {
        let digest = staged.digest.to_hex();
        if existing.state != "active" {
            return Ok(IngestOutcome {
                file: name.into(),
                digest,
                size: staged.size,
                status: IngestStatus::Rejected,
                reason: Some(format!(
                    "identical footage was {} under retention (deadline {})",
                    existing.state, existing.expires_at
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
        let now = fmt_ts(self.clock.now());
        sqlx::query(
            "INSERT INTO ingest_journal (id, staging_key, host, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(staging.as_ref())
        .bind(host_name())
        .bind(std::process::id() as i64)
        .bind(&now)
        .bind(&now)
        .execute(self.catalog.pool())
        .await?;
        Ok(())
    }

    pub(crate) async fn journal_end(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM ingest_journal WHERE id = ?").bind(id).execute(self.catalog.pool()).await?;
        Ok(())
    }

    /// Rolls back interrupted ingests whose owner is gone: same-host rows whose process no
    /// longer exists, and other hosts' rows past [`JOURNAL_LEASE`]. Safe to run any time,
    /// from any number of processes.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let rows = sqlx::query("SELECT id, host, pid, heartbeat_at FROM ingest_journal")
            .fetch_all(self.catalog.pool())
            .await?;
        let me = host_name();
        let stale_before = fmt_ts(self.clock.now() - JOURNAL_LEASE);
        let mut report = RecoveryReport::default();
        for r in rows {
            let id: String = r.try_get("id")?;
            let host: String = r.try_get("host")?;
            let pid: i64 = r.try_get("pid")?;
            let heartbeat: String = r.try_get("heartbeat_at")?;
            let dead = if host == me {
                pid != std::process::id() as i64 && !Path::new(&format!("/proc/{pid}")).exists()
            } else {
                heartbeat < stale_before
            };
            if !dead {
                report.in_flight += 1;
                continue;
            }
            report.blobs_removed += self.rollback_journal(&id).await? as u64;
            report.rolled_back += 1;
        }
        Ok(report)
    }

    /// Undoes one journaled ingest; returns whether a blob was removed.
    pub(crate) async fn rollback_journal(&self, id: &str) -> Result<bool> {
        let Some(r) = sqlx::query("SELECT staging_key, digest, commit_started FROM ingest_journal WHERE id = ?")
            .bind(id)
            .fetch_optional(self.catalog.pool())
            .await?
        else {
            return Ok(false);
        };
        let staging: String = r.try_get("staging_key")?;
        let digest: Option<String> = r.try_get("digest")?;
        let commit_started: i64 = r.try_get("commit_started")?;
        self.vault.discard(&ObjPath::from(staging)).await;
        let mut removed = false;
        if let Some(d) = digest {
            // the digest is someone's if catalogued or if another ingest of it is in flight
            let others: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ingest_journal WHERE digest = ? AND id != ?")
                .bind(&d)
                .bind(id)
                .fetch_one(self.catalog.pool())
                .await?;
            if others == 0 && self.catalog.evidence_by_digest(&d).await?.is_none() {
                for (key, _) in self.vault.list(&format!("thumbs/{d}")).await? {
                    self.vault.delete_key(&key).await?;
                }
                if commit_started != 0 {
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
