//! Evidence over HTTP: one-shot footage upload (streamed to disk, never held in memory),
//! search, metadata, byte-range download, thumbnails and the item's custody extract.
//! Who may upload or see what, and the audit of each access:
//! [`EvidenceAccess`](crate::service::evidence::EvidenceAccess).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Result};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::Problem;
use crate::service::accounts::Role;
use crate::service::evidence::{Declaration, EvidenceAccess, EvidenceFilter, ItemDetail};
use epatrol_store::catalog::{Case, Evidence, Hold, Incident};
use epatrol_store::custody::CustodyEntry;
use epatrol_store::vault::{Digest, IngestOutcome, IngestStatus};

/// Query of `POST /v1/evidence`: what the uploader declares about the file.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Officer the footage belongs to. Patrol officers upload their own (default: the
    /// caller); docks must name the officer.
    pub officer: Option<String>,
    /// Camera or device that recorded it.
    pub device: String,
    /// `body_camera`, `dock` or `other_device` (default: `dock` for docks, else
    /// `body_camera`).
    pub source: Option<String>,
    /// Start of recording (RFC 3339), when the file's own metadata should not be trusted.
    pub recorded_from: Option<String>,
    /// File name to record (letters, digits, `.`, `_`, `-`; default `upload.bin`).
    pub name: Option<String>,
    /// Expected BLAKE3 of the body (64 hex digits); a mismatch stores nothing.
    pub blake3: Option<String>,
}

/// A file name safe to use inside our temp dir: no separators, no leading dot.
fn safe_name(name: Option<&str>) -> Result<String> {
    let Some(n) = name else { return Ok("upload.bin".into()) };
    let ok = !n.is_empty()
        && n.len() <= 100
        && !n.starts_with('.')
        && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(n.to_string())
    } else {
        Err(ApiError::BadRequest(
            "`name` may hold only letters, digits, '.', '_', '-' (at most 100, no leading '.')".into(),
        ))
    }
}

/// The status an ingest outcome is answered with: 201 for new footage, 200 for a
/// duplicate, 400 (with the reason) for a file that is not footage.
pub(super) fn ingest_response(out: IngestOutcome) -> Result<(StatusCode, Json<IngestOutcome>)> {
    match out.status {
        IngestStatus::Stored | IngestStatus::Damaged => Ok((StatusCode::CREATED, Json(out))),
        IngestStatus::Duplicate => Ok((StatusCode::OK, Json(out))),
        IngestStatus::Rejected => Err(ApiError::BadRequest(format!(
            "not stored: {}",
            out.reason.unwrap_or_else(|| "not a video file".into())
        ))),
    }
}

/// Uploads one footage file as the raw request body (patrol, dock). The body is
/// streamed to a temp file, probed and ingested; nothing is stored if it is not video.
#[utoipa::path(
    post, path = "/v1/evidence", tag = "evidence", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = IngestOutcome, description = "stored (or stored as damaged)"),
        (status = 200, body = IngestOutcome, description = "identical footage was already stored"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    query: std::result::Result<Query<UploadQuery>, QueryRejection>,
    body: Body,
) -> Result<(StatusCode, Json<IngestOutcome>)> {
    caller.require(&[Role::Patrol, Role::Dock])?;
    let Query(q) =
        query.map_err(|_| ApiError::BadRequest("bad query: `device` is required; see the API document".into()))?;
    let digest = q.blake3.as_deref().map(str::parse::<Digest>).transpose()?;
    let declared =
        Declaration { officer: q.officer, device: q.device, source: q.source, recorded_from: q.recorded_from, digest };
    let req = EvidenceAccess::upload_request(&caller.principal(), declared)?;
    let name = safe_name(q.name.as_deref())?;

    let tmp_root = state.config.data_dir.join("tmp");
    tokio::fs::create_dir_all(&tmp_root).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    // removed with everything in it when this handler returns, whatever happens
    let dir = tempfile::Builder::new()
        .prefix("http-upload-")
        .tempdir_in(&tmp_root)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let path = dir.path().join(name);
    receive_body(body, &path, state.config.max_upload_bytes).await?;
    let out = state.evidence.ingest_file(&path, &req).await.map_err(super::client_integrity)?;
    ingest_response(out)
}

/// Streams a request body into `path`, refusing more than `limit` bytes.
async fn receive_body(body: Body, path: &std::path::Path, limit: u64) -> Result<u64> {
    let mut file = tokio::fs::File::create(path).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut stream = body.into_data_stream();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::BadRequest("the upload was interrupted".into()))?;
        n += chunk.len() as u64;
        if n > limit {
            return Err(ApiError::PayloadTooLarge("the file exceeds the upload size limit".into()));
        }
        file.write_all(&chunk).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    file.flush().await.map_err(|e| ApiError::Internal(e.to_string()))?;
    if n == 0 {
        return Err(ApiError::BadRequest("empty body: send the footage file as the request body".into()));
    }
    Ok(n)
}

/// Query of `GET /v1/evidence`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Officer id.
    pub officer: Option<String>,
    /// Recording device id.
    pub device: Option<String>,
    /// `general`, `administrative` or `crime`.
    pub tier: Option<String>,
    /// Case reference.
    pub case: Option<String>,
    /// Recordings that end at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Recordings that start at or before this time (RFC 3339).
    pub to: Option<String>,
    /// Rows, newest first (1-500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Paging: only ids below this (the last `id` of the previous page).
    pub before: Option<i64>,
}

/// Searches active footage (supervisor: all; investigator: items of their cases).
#[utoipa::path(
    get, path = "/v1/evidence", tag = "evidence", params(SearchQuery),
    responses(
        (status = 200, body = Vec<Evidence>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    query: std::result::Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Vec<Evidence>>> {
    caller.require(&[Role::Supervisor, Role::Investigator])?;
    let Query(q) = query.map_err(|_| ApiError::BadRequest("bad search parameters; see the API document".into()))?;
    let filter = EvidenceFilter {
        officer: q.officer,
        device: q.device,
        tier: q.tier,
        case: q.case,
        from: q.from,
        to: q.to,
        limit: q.limit,
        before: q.before,
    };
    Ok(Json(state.access.search(&caller.principal(), filter).await?))
}

/// An item with what is attached to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceDetail {
    /// The catalog row.
    pub evidence: Evidence,
    /// Incident reports that selected it.
    pub incidents: Vec<Incident>,
    /// Cases it is linked to.
    pub cases: Vec<Case>,
    /// Legal holds, released or not.
    pub holds: Vec<Hold>,
    /// Keyframe thumbnails (fetch with `/thumbnails/{idx}`).
    pub thumbnails: Vec<ThumbnailInfo>,
}

/// One keyframe thumbnail.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThumbnailInfo {
    /// Index for `/thumbnails/{idx}`.
    pub idx: i64,
    /// Presentation time in the video, ms.
    pub pts_ms: i64,
    /// JPEG size in bytes.
    pub size: i64,
}

/// Metadata of one item (supervisor; investigator for items of their cases).
#[utoipa::path(
    get, path = "/v1/evidence/{digest}", tag = "evidence",
    params(("digest" = String, Path, description = "BLAKE3 of the footage, 64 hex digits")),
    responses(
        (status = 200, body = EvidenceDetail),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn metadata(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(digest): Path<String>,
) -> Result<Json<EvidenceDetail>> {
    Ok(Json(state.access.metadata(&caller.principal(), &digest).await?.into()))
}

impl From<ItemDetail> for EvidenceDetail {
    fn from(d: ItemDetail) -> Self {
        Self {
            evidence: d.evidence,
            incidents: d.incidents,
            cases: d.cases,
            holds: d.holds,
            thumbnails: d
                .thumbnails
                .into_iter()
                .map(|t| ThumbnailInfo { idx: t.idx, pts_ms: t.pts_ms, size: t.size })
                .collect(),
        }
    }
}

/// Media type of a container (ffmpeg demuxer name).
fn media_type(container: &str) -> &'static str {
    if container.contains("mp4") || container.contains("mov") {
        "video/mp4"
    } else if container.contains("matroska") || container.contains("webm") {
        "video/x-matroska"
    } else if container.contains("avi") {
        "video/x-msvideo"
    } else if container.contains("mpegts") {
        "video/mp2t"
    } else {
        "application/octet-stream"
    }
}

/// The footage bytes, whole or one `Range` (supervisor; investigator for items of their
/// cases). Each request is one custody `view` entry.
#[utoipa::path(
    get, path = "/v1/evidence/{digest}/content", tag = "evidence",
    params(
        ("digest" = String, Path, description = "BLAKE3 of the footage"),
        ("Range" = Option<String>, Header, description = "one byte range, e.g. `bytes=0-1023`"),
    ),
    responses(
        (status = 200, description = "the whole file", content_type = "video/mp4"),
        (status = 206, description = "the requested range", content_type = "video/mp4"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 416, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn content(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let p = caller.principal();
    let item = state.access.viewable(&p, &digest, "evidence.view").await?;
    let e = &item.0;
    let size = e.size as u64;
    let range = match headers.get(header::RANGE) {
        None => None,
        Some(v) => Some(one_range(v, size)?),
    };
    let (start, end) = range.unwrap_or((0, size));
    let stream = state.access.view(&p, &digest, &item, (start, end)).await?;
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type(&e.container)));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", e.digest)) {
        h.insert(header::ETAG, v);
    }
    if range.is_some() {
        *res.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1)) {
            res.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(res)
}

/// Parses a `Range` header holding one satisfiable byte range of a `size`-byte file into
/// a half-open `(start, end)`; anything else is 416.
fn one_range(v: &HeaderValue, size: u64) -> Result<(u64, u64)> {
    let unsatisfiable = || ApiError::RangeNotSatisfiable(size);
    let s = v.to_str().map_err(|_| unsatisfiable())?;
    let ranges =
        http_range_header::parse_range_header(s).and_then(|r| r.validate(size)).map_err(|_| unsatisfiable())?;
    match ranges.as_slice() {
        [r] => Ok((*r.start(), *r.end() + 1)),
        _ => Err(unsatisfiable()),
    }
}

/// One keyframe thumbnail as JPEG (supervisor; investigator for items of their cases).
#[utoipa::path(
    get, path = "/v1/evidence/{digest}/thumbnails/{idx}", tag = "evidence",
    params(("digest" = String, Path, description = "BLAKE3 of the footage"), ("idx" = i64, Path, description = "thumbnail index")),
    responses(
        (status = 200, description = "JPEG", content_type = "image/jpeg"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn thumbnail(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((digest, idx)): Path<(String, i64)>,
) -> Result<Response> {
    let jpeg = state.access.thumbnail(&caller.principal(), &digest, idx).await?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response())
}

/// The item's custody chain entries (supervisor; investigator for items of their cases).
#[utoipa::path(
    get, path = "/v1/evidence/{digest}/custody", tag = "evidence",
    params(("digest" = String, Path, description = "BLAKE3 of the footage")),
    responses(
        (status = 200, body = Vec<CustodyEntry>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn custody(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(digest): Path<String>,
) -> Result<Json<Vec<CustodyEntry>>> {
    Ok(Json(state.access.custody(&caller.principal(), &digest).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_separators_or_leading_dots_are_refused() {
        assert_eq!(safe_name(None).unwrap(), "upload.bin");
        assert_eq!(safe_name(Some("cam-7_2026.mp4")).unwrap(), "cam-7_2026.mp4");
        for bad in ["../x.mp4", "a/b.mp4", ".hidden", "", "a b.mp4", "x\\y", &"a".repeat(101)] {
            assert!(safe_name(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_satisfiable_range_is_accepted() {
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(one_range(&h("bytes=0-9"), 100).unwrap(), (0, 10));
        assert_eq!(one_range(&h("bytes=90-"), 100).unwrap(), (90, 100));
        assert_eq!(one_range(&h("bytes=-5"), 100).unwrap(), (95, 100));
        for bad in ["bytes=100-", "bytes=5-2", "bytes=0-1,5-6", "items=0-1", "bytes=x"] {
            assert!(matches!(one_range(&h(bad), 100), Err(ApiError::RangeNotSatisfiable(100))), "{bad}");
        }
    }
}
