//! `POST /v1/auth/login`: login + password + device → short-lived bearer token.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Result};
use crate::http::AppState;
use crate::http::auth::RoleName;
use crate::http::problem::Problem;
use crate::service::accounts::{LoginAttempt, SessionPolicy};

/// Login request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Account login.
    pub login: String,
    /// Password.
    pub password: String,
    /// Id of the tablet/dock/workstation; the token only works with this id in `X-Device-Id`.
    pub device_id: String,
    /// The device's own secret (from `POST /v1/devices`); required when the device is
    /// enrolled, and for every device when the server requires device credentials.
    #[serde(default)]
    pub device_secret: Option<String>,
}

/// Issued token.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token (64 hex digits); send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// The account's role.
    pub role: RoleName,
    /// The device the token is bound to.
    pub device_id: String,
}

/// Exchanges login, password and device id for a bearer token bound to that device.
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "device disabled"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    State(state): State<Arc<AppState>>,
    body: std::result::Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginResponse>> {
    let Json(req) = body.map_err(|r| match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType("expected application/json".into()),
        _ => ApiError::BadRequest("expected a JSON object {login, password, device_id}".into()),
    })?;
    // before the (deliberately slow) hash check, so guessing costs the guesser time
    state.limits.login(&req.login)?;
    let policy = SessionPolicy {
        token_ttl: state.config.token_ttl,
        require_device_credentials: state.config.require_device_credentials,
    };
    let attempt = LoginAttempt {
        login: req.login,
        password: req.password,
        device_id: req.device_id,
        device_secret: req.device_secret,
    };
    let t = state.accounts.login(attempt, policy).await?;
    Ok(Json(LoginResponse {
        token: t.token,
        token_type: "Bearer",
        expires_in: t.expires_in,
        role: t.role.into(),
        device_id: t.device_id,
    }))
}
