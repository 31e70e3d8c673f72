//! Evidence items: one row per distinct footage file (by BLAKE3 digest), with its media
//! facts, recording window, tier and retention deadline.

use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::Catalog;
use crate::error::Result;

/// One evidence row.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evidence {
    /// Row id.
    pub id: i64,
    /// BLAKE3 of the bytes (hex).
    pub digest: String,
    /// Length in bytes.
    pub size: i64,
    /// Camera or device id.
    pub device: String,
    /// Officer id.
    pub officer: String,
    /// `body_camera`, `dock` or `other_device`.
    pub source: String,
    /// File name as submitted.
    pub original_name: String,
    /// Container (ffmpeg demuxer name).
    pub container: String,
    /// Video codec.
    pub video_codec: String,
    /// Audio codec, if any.
    pub audio_codec: Option<String>,
    /// Frame width.
    pub width: i64,
    /// Frame height.
    pub height: i64,
    /// Declared duration in milliseconds.
    pub duration_ms: i64,
    /// Container `creation_time`, if any.
    pub creation_time: Option<String>,
    /// Start of the recording (UTC).
    pub recorded_from: String,
    /// End of the recording (UTC).
    pub recorded_to: String,
    /// Where `recorded_from` came from (`declared`, `metadata`, `file_mtime`).
    pub time_source: String,
    /// Whether the file is damaged (kept as evidence anyway).
    pub damaged: bool,
    /// Why it is damaged.
    pub damage_reason: Option<String>,
    /// Storage tier.
    pub tier: String,
    /// Retention deadline (UTC).
    pub expires_at: String,
    /// `active`, `deleting` (claimed by a sweeper) or `deleted`.
    pub state: String,
    /// When it was ingested.
    pub ingested_at: String,
    /// Who ingested it.
    pub ingested_by: String,
}

/// Columns of a new evidence row (the id, state and sweep claim are the catalog's).
#[derive(Debug, Clone)]
pub struct NewEvidence {
    /// See [`Evidence`].
    pub digest: String,
    /// See [`Evidence`].
    pub size: i64,
    /// See [`Evidence`].
    pub device: String,
    /// See [`Evidence`].
    pub officer: String,
    /// See [`Evidence`].
    pub source: String,
    /// See [`Evidence`].
    pub original_name: String,
    /// See [`Evidence`].
    pub container: String,
    /// See [`Evidence`].
    pub video_codec: String,
    /// See [`Evidence`].
    pub audio_codec: Option<String>,
    /// See [`Evidence`].
    pub width: i64,
    /// See [`Evidence`].
    pub height: i64,
    /// See [`Evidence`].
    pub duration_ms: i64,
    /// See [`Evidence`].
    pub creation_time: Option<String>,
    /// See [`Evidence`].
    pub recorded_from: String,
    /// See [`Evidence`].
    pub recorded_to: String,
    /// See [`Evidence`].
    pub time_source: String,
    /// See [`Evidence`].
    pub damage_reason: Option<String>,
    /// See [`Evidence`].
    pub tier: String,
    /// See [`Evidence`].
    pub expires_at: String,
    /// See [`Evidence`].
    pub ingested_at: String,
    /// See [`Evidence`].
    pub ingested_by: String,
}

/// A stored thumbnail.
#[derive(Debug, Clone, Serialize)]
pub struct ThumbnailRow {
    /// Order within the item.
    pub idx: i64,
    /// Time in the video.
    pub pts_ms: i64,
    /// Object key in the vault.
    pub object_key: String,
    /// BLAKE3 of the JPEG.
    pub digest: String,
    /// JPEG size.
    pub size: i64,
}

pub(crate) fn row_to_evidence(r: &SqliteRow) -> Result<Evidence> {
    Ok(Evidence {
        id: r.try_get("id")?,
        digest: r.try_get("digest")?,
        size: r.try_get("size")?,
        device: r.try_get("device")?,
        officer: r.try_get("officer")?,
        source: r.try_get("source")?,
        original_name: r.try_get("original_name")?,
        container: r.try_get("container")?,
        video_codec: r.try_get("video_codec")?,
        audio_codec: r.try_get("audio_codec")?,
        width: r.try_get("width")?,
        height: r.try_get("height")?,
        duration_ms: r.try_get("duration_ms")?,
        creation_time: r.try_get("creation_time")?,
        recorded_from: r.try_get("recorded_from")?,
        recorded_to: r.try_get("recorded_to")?,
        time_source: r.try_get("time_source")?,
        damaged: r.try_get::<i64, _>("damaged")? != 0,
        damage_reason: r.try_get("damage_reason")?,
        tier: r.try_get("tier")?,
        expires_at: r.try_get("expires_at")?,
        state: r.try_get("state")?,
        ingested_at: r.try_get("ingested_at")?,
        ingested_by: r.try_get("ingested_by")?,
    })
}

/// Inserts an evidence row on `conn` (inside the caller's transaction); returns its id.
/// Fails with a unique violation if the digest is already catalogued.
pub async fn insert_evidence(conn: &mut sqlx::SqliteConnection, e: &NewEvidence) -> Result<i64> {
    let r = sqlx::query(
        "INSERT INTO evidence (digest, size, device, officer, source, original_name, container, video_codec, \
         audio_codec, width, height, duration_ms, creation_time, recorded_from, recorded_to, time_source, damaged, \
         damage_reason, tier, expires_at, ingested_at, ingested_by) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&e.digest)
    .bind(e.size)
    .bind(&e.device)
    .bind(&e.officer)
    .bind(&e.source)
    .bind(&e.original_name)
    .bind(&e.container)
    .bind(&e.video_codec)
    .bind(&e.audio_codec)
    .bind(e.width)
    .bind(e.height)
    .bind(e.duration_ms)
    .bind(&e.creation_time)
    .bind(&e.recorded_from)
    .bind(&e.recorded_to)
    .bind(&e.time_source)
    .bind(e.damage_reason.is_some() as i64)
    .bind(&e.damage_reason)
    .bind(&e.tier)
    .bind(&e.expires_at)
    .bind(&e.ingested_at)
    .bind(&e.ingested_by)
    .execute(&mut *conn)
    .await?;
    Ok(r.last_insert_rowid())
}

impl Catalog {
    /// The evidence row with `digest`, in any state.
    pub async fn evidence_by_digest(&self, digest: &str) -> Result<Option<Evidence>> {
        let r = sqlx::query("SELECT * FROM evidence WHERE digest = ?").bind(digest).fetch_optional(self.pool()).await?;
        r.as_ref().map(row_to_evidence).transpose()
    }

    /// Evidence rows in `state` (`active`, `deleting`, `deleted`), oldest first.
    pub async fn evidence_in_state(&self, state: &str) -> Result<Vec<Evidence>> {
        let rows = sqlx::query("SELECT * FROM evidence WHERE state = ? ORDER BY id")
            .bind(state)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(row_to_evidence).collect()
    }

    /// Active footage of `officer` overlapping `[from, to)` (UTC fixed-width timestamps).
    pub async fn evidence_overlapping(&self, officer: Option<&str>, from: &str, to: &str) -> Result<Vec<Evidence>> {
        let rows = sqlx::query(
            "SELECT * FROM evidence WHERE state = 'active' AND (? IS NULL OR officer = ?) \
             AND recorded_from < ? AND recorded_to > ? ORDER BY recorded_from",
        )
        .bind(officer)
        .bind(officer)
        .bind(to)
        .bind(from)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row_to_evidence).collect()
    }

    /// Thumbnails of an evidence item.
    pub async fn thumbnails_of(&self, evidence_id: i64) -> Result<Vec<ThumbnailRow>> {
        let rows = sqlx::query("SELECT * FROM thumbnails WHERE evidence_id = ? ORDER BY idx")
            .bind(evidence_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ThumbnailRow {
                    idx: r.try_get("idx")?,
                    pts_ms: r.try_get("pts_ms")?,
                    object_key: r.try_get("object_key")?,
                    digest: r.try_get("digest")?,
                    size: r.try_get("size")?,
                })
            })
            .collect()
    }

    /// Whether `evidence_id` has an unreleased hold or a link to an open case.
    pub async fn is_held(&self, evidence_id: i64) -> Result<bool> {
        let r = sqlx::query(HELD_SQL).bind(evidence_id).bind(evidence_id).fetch_one(self.pool()).await?;
        Ok(r.try_get::<i64, _>(0)? != 0)
    }
}

/// SQL: 1 if evidence `?1` (bound twice) has an unreleased hold or an open case link.
pub(crate) const HELD_SQL: &str = "SELECT EXISTS (SELECT 1 FROM holds WHERE evidence_id = ? AND released_at IS NULL) \
     OR EXISTS (SELECT 1 FROM case_evidence ce JOIN cases c ON c.id = ce.case_id WHERE ce.evidence_id = ? AND c.closed_at IS NULL)";
