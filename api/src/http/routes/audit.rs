//! `GET /v1/audit`: the most recent audit rows, for administrators.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Result};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::Problem;
use crate::service::accounts::Role;

/// Query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Number of rows, newest first (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// One audit row.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRow {
    /// Row id.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Login of the account (or `system`, `cli:<user>`).
    pub actor: String,
    /// Device id, if any.
    pub device: String,
    /// What was done (`identify`, `enroll`, `login`, `audit.read`, ...).
    pub action: String,
    /// Catalog id of the subject concerned, if any.
    pub subject_id: Option<i64>,
    /// Result (`match`, `no_match`, `rejected`, `ok`, `denied`, ...).
    pub outcome: String,
    /// JSON detail (no personal data).
    pub detail: serde_json::Value,
}

/// The newest audit rows (admin role). Reading the log is itself audited.
#[utoipa::path(
    get, path = "/v1/audit", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, body = Vec<AuditRow>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    query: std::result::Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditRow>>> {
    caller.require(&[Role::Admin])?;
    let Query(q) = query.map_err(|_| ApiError::BadRequest("query: limit=<1-1000>".into()))?;
    let rows = state.audit_trail.tail(caller.actor(), q.limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| AuditRow {
                id: r.id,
                at: r.at,
                actor: r.actor,
                device: r.device,
                action: r.action,
                subject_id: r.subject_id,
                outcome: r.outcome,
                // stored by this crate as JSON text; an unparsable row is shown as a string
                detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::String(r.detail)),
            })
            .collect(),
    ))
}
