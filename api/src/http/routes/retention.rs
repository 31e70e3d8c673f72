//! Classification and legal holds (supervisors): incident reports move overlapping
//! footage to the offence's tier, a manual reclassification moves one item up, and holds
//! block deletion. Retention only ever extends; each change is a custody entry.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json_body;
use crate::error::{ApiError, Result};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::Problem;
use crate::service::accounts::Role;
use epatrol_store::retention::{IncidentOutcome, IncidentReport, Reclassified, Tier};
use epatrol_store::vault::Digest;

/// Body of `POST /v1/incidents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentIn {
    /// Report number (unique).
    pub reference: String,
    /// `crime`, `administrative`, `control_check` or `other`.
    pub offence: String,
    /// Officer whose footage it concerns.
    pub officer: String,
    /// Window start (RFC 3339).
    pub starts_at: String,
    /// Window end (RFC 3339).
    pub ends_at: String,
    /// Report text.
    #[serde(default)]
    pub report: String,
}

/// Body of a reclassification.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierIn {
    /// `administrative` or `crime` (never lower than the current tier).
    pub tier: String,
    /// Why (recorded in the custody log).
    pub reason: String,
}

/// Body of a hold placement or release.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonIn {
    /// Why (recorded in the custody log).
    pub reason: String,
}

/// A placed hold.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldOut {
    /// Hold id.
    pub hold_id: i64,
}

/// Holds released.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleasedOut {
    /// How many open holds were released.
    pub released: u64,
}

fn digest(s: &str) -> Result<Digest> {
    s.parse().map_err(|_| ApiError::BadRequest("evidence id must be 64 hex digits".into()))
}

fn reason(r: &str) -> Result<&str> {
    if r.trim().is_empty() { Err(ApiError::BadRequest("`reason` is required".into())) } else { Ok(r) }
}

/// Files an incident report: the officer's footage overlapping the window moves to the
/// offence's tier (supervisor).
#[utoipa::path(
    post, path = "/v1/incidents", tag = "retention", request_body = IncidentIn,
    responses(
        (status = 201, body = IncidentOutcome),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn file_incident(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: std::result::Result<Json<IncidentIn>, JsonRejection>,
) -> Result<(StatusCode, Json<IncidentOutcome>)> {
    caller.require(&[Role::Supervisor])?;
    let b = json_body(body)?;
    let report = IncidentReport {
        reference: b.reference,
        offence: b.offence.parse()?,
        officer: b.officer,
        starts_at: b.starts_at,
        ends_at: b.ends_at,
        report: b.report,
    };
    let out = state.evidence.file_incident(&caller.login, &report).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Moves one item to a higher tier (supervisor). A lower tier is refused.
#[utoipa::path(
    post, path = "/v1/evidence/{digest}/tier", tag = "retention", request_body = TierIn,
    params(("digest" = String, Path, description = "BLAKE3 of the footage")),
    responses(
        (status = 200, body = Reclassified),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "wrong role, or a downgrade"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reclassify(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(d): Path<String>,
    body: std::result::Result<Json<TierIn>, JsonRejection>,
) -> Result<Json<Reclassified>> {
    caller.require(&[Role::Supervisor])?;
    let b = json_body(body)?;
    let tier: Tier = b.tier.parse()?;
    Ok(Json(state.evidence.reclassify(&caller.login, &digest(&d)?, tier, reason(&b.reason)?).await?))
}

/// Places a legal hold: the item cannot be deleted until released (supervisor).
#[utoipa::path(
    post, path = "/v1/evidence/{digest}/holds", tag = "retention", request_body = ReasonIn,
    params(("digest" = String, Path, description = "BLAKE3 of the footage")),
    responses(
        (status = 201, body = HoldOut),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn place_hold(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(d): Path<String>,
    body: std::result::Result<Json<ReasonIn>, JsonRejection>,
) -> Result<(StatusCode, Json<HoldOut>)> {
    caller.require(&[Role::Supervisor])?;
    let b = json_body(body)?;
    let hold_id = state.evidence.place_hold(&caller.login, &digest(&d)?, reason(&b.reason)?).await?;
    Ok((StatusCode::CREATED, Json(HoldOut { hold_id })))
}

/// Releases the item's open holds (supervisor).
#[utoipa::path(
    post, path = "/v1/evidence/{digest}/holds/release", tag = "retention", request_body = ReasonIn,
    params(("digest" = String, Path, description = "BLAKE3 of the footage")),
    responses(
        (status = 200, body = ReleasedOut),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn release_holds(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(d): Path<String>,
    body: std::result::Result<Json<ReasonIn>, JsonRejection>,
) -> Result<Json<ReleasedOut>> {
    caller.require(&[Role::Supervisor])?;
    let b = json_body(body)?;
    let released = state.evidence.release_holds(&caller.login, &digest(&d)?, reason(&b.reason)?).await?;
    Ok(Json(ReleasedOut { released }))
}
