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
use crate::http::auth::{Caller, Role};
use crate::http::problem::Problem;
use epatrol_store::retention::fmt_ts;
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
    if b.reference.trim().is_empty() || b.reference.len() > 100 {
        return Err(ApiError::BadRequest("`reference` must be 1 to 100 characters".into()));
    }
    let cat = &state.catalog;
    for login in &b.investigators {
        match cat.user_by_login(login).await? {
            Some(u) if u.role == Role::Investigator.as_str() && !u.disabled => {}
            _ => return Err(ApiError::BadRequest("every assignee must be an enabled investigator account".into())),
        }
    }
    let now = fmt_ts(state.evidence.clock.now());
    let case_id = cat.open_case(&b.reference, &now).await?;
    for login in &b.investigators {
        cat.add_case_member(&b.reference, login, &caller.login, &now).await?;
    }
    let detail = serde_json::json!({"case": b.reference, "investigators": b.investigators});
    cat.audit(&caller.login, &caller.device_id, "case.open", None, "ok", &detail).await?;
    let investigators = cat.case_members(&b.reference).await?;
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
    // link_case opens a missing case; over HTTP a case is opened explicitly (with its
    // investigators) first, and a closed one takes no new evidence
    match state.evidence.catalog.case_by_reference(&reference).await? {
        Some(c) if c.closed_at.is_none() => {}
        _ => return Err(ApiError::NotFound("open case".into())),
    }
    state.evidence.link_case(&caller.login, &d, &reference).await?;
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
    let cat = &state.catalog;
    cat.close_case(&reference, &fmt_ts(state.evidence.clock.now())).await?;
    cat.audit(&caller.login, &caller.device_id, "case.close", None, "ok", &serde_json::json!({"case": reference}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
