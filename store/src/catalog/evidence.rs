//! Evidence items: one row per distinct footage file (by BLAKE3 digest), with its media
//! facts, recording window, tier and retention deadline, and its thumbnails.

use serde::Serialize;
use time::OffsetDateTime;

use super::Catalog;
use super::db::{Conn, Fixed, FixedOpt};
use crate::error::Result;
use crate::model::{EvidenceState, Source, Tier, TimeSource};

// To insert one, fill every field; `id` and `state` are the catalog's (a new row is
// `active`): see [`insert`].
/// One evidence row.
#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
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
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub source: Source,
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
    #[serde(with = "crate::clock::fixed::option")]
    #[sqlx(try_from = "FixedOpt")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub creation_time: Option<OffsetDateTime>,
    /// Start of the recording (UTC).
    #[serde(with = "crate::clock::fixed")]
    #[sqlx(try_from = "Fixed")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub recorded_from: OffsetDateTime,
    /// End of the recording (UTC).
    #[serde(with = "crate::clock::fixed")]
    #[sqlx(try_from = "Fixed")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub recorded_to: OffsetDateTime,
    /// Where `recorded_from` came from (`declared`, `metadata`, `file_mtime`).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub time_source: TimeSource,
    /// Whether the file is damaged (kept as evidence anyway).
    pub damaged: bool,
    /// Why it is damaged.
    pub damage_reason: Option<String>,
    /// Storage tier.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub tier: Tier,
    /// Retention deadline (UTC).
    #[serde(with = "crate::clock::fixed")]
    #[sqlx(try_from = "Fixed")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: OffsetDateTime,
    /// `active`, `deleting` (claimed by a sweeper) or `deleted`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: EvidenceState,
    /// When it was ingested.
    #[serde(with = "crate::clock::fixed")]
    #[sqlx(try_from = "Fixed")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ingested_at: OffsetDateTime,
    /// Who ingested it.
    pub ingested_by: String,
}

/// A stored thumbnail.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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

/// Inserts an evidence row (`id` and `state` ignored; the row starts `active`); returns
/// its id. Fails with a unique violation if the digest is already catalogued.
pub async fn insert(conn: &mut Conn, e: &Evidence) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO evidence (digest, size, device, officer, source, original_name, container, video_codec, \
         audio_codec, width, height, duration_ms, creation_time, recorded_from, recorded_to, time_source, damaged, \
         damage_reason, tier, expires_at, ingested_at, ingested_by) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&e.digest)
    .bind(e.size)
    .bind(&e.device)
    .bind(&e.officer)
    .bind(e.source)
    .bind(&e.original_name)
    .bind(&e.container)
    .bind(&e.video_codec)
    .bind(&e.audio_codec)
    .bind(e.width)
    .bind(e.height)
    .bind(e.duration_ms)
    .bind(e.creation_time.map(Fixed))
    .bind(Fixed(e.recorded_from))
    .bind(Fixed(e.recorded_to))
    .bind(e.time_source)
    .bind(e.damaged)
    .bind(&e.damage_reason)
    .bind(e.tier)
    .bind(Fixed(e.expires_at))
    .bind(Fixed(e.ingested_at))
    .bind(&e.ingested_by)
    .fetch_one(&mut *conn)
    .await?)
}

/// Records a thumbnail of evidence `evidence_id`.
pub async fn insert_thumbnail(conn: &mut Conn, evidence_id: i64, t: &ThumbnailRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO thumbnails (evidence_id, idx, pts_ms, object_key, digest, size) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(evidence_id)
    .bind(t.idx)
    .bind(t.pts_ms)
    .bind(&t.object_key)
    .bind(&t.digest)
    .bind(t.size)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The evidence row with `digest`, in any state.
pub async fn by_digest(conn: &mut Conn, digest: &str) -> Result<Option<Evidence>> {
    Ok(sqlx::query_as("SELECT * FROM evidence WHERE digest = ?").bind(digest).fetch_optional(&mut *conn).await?)
}

/// Evidence rows in `state`, oldest first.
pub async fn in_state(conn: &mut Conn, state: EvidenceState) -> Result<Vec<Evidence>> {
    Ok(sqlx::query_as("SELECT * FROM evidence WHERE state = ? ORDER BY id").bind(state).fetch_all(&mut *conn).await?)
}

/// Active footage of `officer` (any officer with `None`) overlapping `[from, to)`.
pub async fn overlapping(
    conn: &mut Conn,
    officer: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<Evidence>> {
    Ok(sqlx::query_as(
        "SELECT * FROM evidence WHERE state = 'active' AND (? IS NULL OR officer = ?) \
         AND recorded_from < ? AND recorded_to > ? ORDER BY recorded_from",
    )
    .bind(officer)
    .bind(officer)
    .bind(Fixed(to))
    .bind(Fixed(from))
    .fetch_all(&mut *conn)
    .await?)
}

/// Thumbnails of an evidence item.
pub async fn thumbnails_of(conn: &mut Conn, evidence_id: i64) -> Result<Vec<ThumbnailRow>> {
    Ok(sqlx::query_as("SELECT * FROM thumbnails WHERE evidence_id = ? ORDER BY idx")
        .bind(evidence_id)
        .fetch_all(&mut *conn)
        .await?)
}

/// Whether `evidence_id` has an unreleased hold or a link to an open case.
pub async fn is_held(conn: &mut Conn, evidence_id: i64) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM holds WHERE evidence_id = ? AND released_at IS NULL) \
         OR EXISTS (SELECT 1 FROM case_evidence ce JOIN cases c ON c.id = ce.case_id \
                    WHERE ce.evidence_id = ? AND c.closed_at IS NULL)",
    )
    .bind(evidence_id)
    .bind(evidence_id)
    .fetch_one(&mut *conn)
    .await?)
}

/// Moves an active item to `tier` with deadline `expires_at`, extend-only in SQL too (a
/// concurrent classifier's higher tier or later deadline is kept); returns the tier and
/// deadline the row has afterwards.
pub async fn extend_retention(
    conn: &mut Conn,
    evidence_id: i64,
    tier: Tier,
    expires_at: OffsetDateTime,
) -> Result<(Tier, OffsetDateTime)> {
    // SQLite: two-argument MAX() is the scalar maximum (GREATEST elsewhere)
    sqlx::query(
        "UPDATE evidence SET tier = ?, expires_at = MAX(expires_at, ?) WHERE id = ? AND state = 'active' \
         AND CASE tier WHEN 'general' THEN 0 WHEN 'administrative' THEN 1 ELSE 2 END <= ?",
    )
    .bind(tier)
    .bind(Fixed(expires_at))
    .bind(evidence_id)
    .bind(tier_rank(tier))
    .execute(&mut *conn)
    .await?;
    let (tier, expires_at): (Tier, Fixed) = sqlx::query_as("SELECT tier, expires_at FROM evidence WHERE id = ?")
        .bind(evidence_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok((tier, expires_at.0))
}

/// Rank of a tier in the SQL `CASE` of [`extend_retention`].
fn tier_rank(t: Tier) -> i64 {
    match t {
        Tier::General => 0,
        Tier::Administrative => 1,
        Tier::Crime => 2,
    }
}

impl Catalog {
    /// The evidence row with `digest`, in any state.
    pub async fn evidence_by_digest(&self, digest: &str) -> Result<Option<Evidence>> {
        by_digest(&mut *self.acquire().await?, digest).await
    }

    /// Evidence rows in `state`, oldest first.
    pub async fn evidence_in_state(&self, state: EvidenceState) -> Result<Vec<Evidence>> {
        in_state(&mut *self.acquire().await?, state).await
    }

    /// Active footage of `officer` overlapping `[from, to)`.
    pub async fn evidence_overlapping(
        &self,
        officer: Option<&str>,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Evidence>> {
        overlapping(&mut *self.acquire().await?, officer, from, to).await
    }

    /// Thumbnails of an evidence item.
    pub async fn thumbnails_of(&self, evidence_id: i64) -> Result<Vec<ThumbnailRow>> {
        thumbnails_of(&mut *self.acquire().await?, evidence_id).await
    }

    /// Whether `evidence_id` has an unreleased hold or a link to an open case.
    pub async fn is_held(&self, evidence_id: i64) -> Result<bool> {
        is_held(&mut *self.acquire().await?, evidence_id).await
    }
}
