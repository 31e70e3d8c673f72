//! `GET /v1/audit`: the most recent audit rows, for administrators.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, Result};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::Problem;
use crate::service::accounts::Role;
use epatrol_store::catalog::AuditEntry;

/// Query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Number of rows, newest first (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// The newest audit rows (admin role). Reading the log is itself audited.
#[utoipa::path(
    get, path = "/v1/audit", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, body = Vec<AuditEntry>),
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
) -> Result<Json<Vec<AuditEntry>>> {
    caller.require(&[Role::Admin])?;
    let Query(q) = query.map_err(|_| ApiError::BadRequest("query: limit=<1-1000>".into()))?;
    Ok(Json(state.audit_trail.tail(caller.actor(), q.limit).await?))
}
