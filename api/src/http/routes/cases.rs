//! Cases (supervisors): open a case with the investigators assigned to it, link evidence
//! (an open case blocks deletion, and its investigators may then view the item), close it.

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
use epatrol_store::vault::Digest;

/// Body of `POST /v1/cases`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseIn {
    /// Case reference (unique); opening an existing open case only adds investigators.
    pub reference: String,
    /// Logins of the investigators assigned to it.
    #[serde(default)]
    pub investigators: Vec<String>,
}

/// A case and who is assigned to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseOut {
    /// Case id.
    pub case_id: i64,
    /// Reference.
    pub reference: String,
    /// Assigned investigators.
    pub investigators: Vec<String>,
}

/// Body of `POST /v1/cases/{reference}/evidence`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkIn {
    /// BLAKE3 of the footage.
    pub digest: String,
}

/// Opens a case (idempotent) and assigns investigators (supervisor). Each must be an
/// investigator account.
#[utoipa::path(
    post, path = "/v1/cases", tag = "cases", request_body = CaseIn,
    responses(
        (status = 201, body = CaseOut),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn open_case(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: std::result::Result<Json<CaseIn>, JsonRejection>,
) -> Result<(StatusCode, Json<CaseOut>)> {
    caller.require(&[Role::Supervisor])?;
    let b = json_body(body)?;
    let (case_id, investigators) = state.access.open_case(&caller.principal(), &b.reference, &b.investigators).await?;
    Ok((StatusCode::CREATED, Json(CaseOut { case_id, reference: b.reference, investigators })))
}

/// Links an item to an open case (supervisor); the case's investigators may then view it.
#[utoipa::path(
    post, path = "/v1/cases/{reference}/evidence", tag = "cases", request_body = LinkIn,
    params(("reference" = String, Path, description = "case reference")),
    responses(
        (status = 204, description = "linked"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn link_evidence(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(reference): Path<String>,
    body: std::result::Result<Json<LinkIn>, JsonRejection>,
) -> Result<StatusCode> {
    caller.require(&[Role::Supervisor])?;
    let b = json_body(body)?;
    let d: Digest = b.digest.parse().map_err(|_| ApiError::BadRequest("`digest` must be 64 hex digits".into()))?;
    state.access.link_case(&caller.principal(), &reference, &d).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Closes a case: its links stop blocking deletion (supervisor).
#[utoipa::path(
    post, path = "/v1/cases/{reference}/close", tag = "cases",
    params(("reference" = String, Path, description = "case reference")),
    responses(
        (status = 204, description = "closed"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn close_case(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(reference): Path<String>,
) -> Result<StatusCode> {
    caller.require(&[Role::Supervisor])?;
    state.access.close_case(&caller.principal(), &reference).await?;
    Ok(StatusCode::NO_CONTENT)
}
