//! Resumable footage uploads for docks and tablets on flaky power or links: start an
//! upload, send its parts in any order over as many connections as it takes (asking
//! which parts arrived after a restart), then complete it, which ingests the file.
//! Only the account that started an upload may see or continue it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::evidence::ingest_response;
use super::{client_integrity, json_body};
use crate::error::{ApiError, Result};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::Problem;
use crate::service::accounts::Role;
use crate::service::evidence::{Declaration, EvidenceAccess};
use epatrol_store::vault::{Digest, IngestOutcome, UploadStatus};

/// Default part size (8 MiB: above S3's 5 MiB multipart minimum).
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;
/// Largest part size a client may choose (a part is held in memory while stored).
pub const MAX_PART_SIZE: u64 = 64 << 20;

/// Body of `POST /v1/uploads`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BeginUpload {
    /// Total length of the file in bytes.
    pub length: u64,
    /// Part size: a power of two from 1 KiB to 64 MiB (default 8 MiB).
    pub part_size: Option<u64>,
    /// Expected BLAKE3 of the whole file (64 hex digits), checked at completion.
    pub blake3: Option<String>,
}

/// Body of `POST /v1/uploads/{id}/complete`: what the uploader declares about the file.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteUpload {
    /// Officer the footage belongs to (patrol: themselves, the default; docks: required).
    pub officer: Option<String>,
    /// Camera or device that recorded it.
    pub device: String,
    /// `body_camera`, `dock` or `other_device`.
    pub source: Option<String>,
    /// Start of recording (RFC 3339), when the file's own metadata should not be trusted.
    pub recorded_from: Option<String>,
}

/// Starts a resumable upload (patrol, dock).
#[utoipa::path(
    post, path = "/v1/uploads", tag = "evidence", request_body = BeginUpload,
    responses(
        (status = 201, body = UploadStatus),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn begin(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: std::result::Result<Json<BeginUpload>, JsonRejection>,
) -> Result<(StatusCode, Json<UploadStatus>)> {
    caller.require(&[Role::Patrol, Role::Dock])?;
    let b = json_body(body)?;
    if b.length > state.config.max_upload_bytes {
        return Err(ApiError::PayloadTooLarge("the file exceeds the upload size limit".into()));
    }
    let part_size = b.part_size.unwrap_or(DEFAULT_PART_SIZE);
    if part_size > MAX_PART_SIZE {
        return Err(ApiError::BadRequest(format!("part_size may be at most {MAX_PART_SIZE}")));
    }
    let digest = b.blake3.as_deref().map(str::parse::<Digest>).transpose()?;
    let st = state.evidence.begin_upload(&caller.login, b.length, digest, part_size).await?;
    Ok((StatusCode::CREATED, Json(st)))
}

/// Where an upload stands: which parts arrived (its owner only).
#[utoipa::path(
    get, path = "/v1/uploads/{id}", tag = "evidence", params(("id" = String, Path, description = "upload id")),
    responses((status = 200, body = UploadStatus), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn status(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<UploadStatus>> {
    Ok(Json(state.access.own_upload(&caller.principal(), &id).await?))
}

/// Stores part `idx` (0-based) as the raw body; sending a part again replaces it.
#[utoipa::path(
    put, path = "/v1/uploads/{id}/parts/{idx}", tag = "evidence",
    params(("id" = String, Path, description = "upload id"), ("idx" = u64, Path, description = "part index from 0")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 204, description = "stored"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn put_part(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, idx)): Path<(String, u64)>,
    body: Bytes,
) -> Result<StatusCode> {
    state.access.own_upload(&caller.principal(), &id).await?;
    state.evidence.upload_part(&id, idx, body).await.map_err(client_integrity)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Completes the upload: the parts are assembled, checked and ingested as one file.
#[utoipa::path(
    post, path = "/v1/uploads/{id}/complete", tag = "evidence",
    params(("id" = String, Path, description = "upload id")), request_body = CompleteUpload,
    responses(
        (status = 201, body = IngestOutcome),
        (status = 200, body = IngestOutcome, description = "identical footage was already stored"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn complete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: std::result::Result<Json<CompleteUpload>, JsonRejection>,
) -> Result<(StatusCode, Json<IngestOutcome>)> {
    let st = state.access.own_upload(&caller.principal(), &id).await?;
    if st.state != "open" {
        return Err(ApiError::Conflict(format!("upload is {}", st.state)));
    }
    let b = json_body(body)?;
    let declared = Declaration {
        officer: b.officer,
        device: b.device,
        source: b.source,
        recorded_from: b.recorded_from,
        digest: None,
    };
    let req = EvidenceAccess::upload_request(&caller.principal(), declared)?;
    let out = state.evidence.complete_upload(&id, &req).await.map_err(client_integrity)?;
    ingest_response(out)
}
