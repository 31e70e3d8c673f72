//! `POST /v1/auth/login`: login + password + device → short-lived bearer token.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Result};
use crate::http::AppState;
use crate::http::auth::{Role, hash_password, random_secret, token_digest, unix_now, verify_password_blocking};
use crate::http::problem::Problem;

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
    pub role: Role,
    /// The device the token is bound to.
    pub device_id: String,
}

/// A fixed PHC hash checked when the login is unknown, so unknown and known logins take
/// the same argon2 time and cannot be told apart by timing.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_secret()).unwrap_or_default())
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
    let catalog = &state.catalog;
    let user = catalog.user_by_login(&req.login).await?;
    let phc =
        user.as_ref().filter(|u| !u.disabled).map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
    let ok = verify_password_blocking(req.password, phc).await?;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            catalog.audit(&req.login, &req.device_id, "login", None, "denied", &serde_json::json!({})).await?;
            return Err(ApiError::Unauthenticated("invalid login or password"));
        }
    };
    let role = Role::parse(&user.role).ok_or_else(|| ApiError::Internal("stored role is unknown".into()))?;
    // the device's own credential, checked after the password so a guesser without it
    // learns nothing about which devices are enrolled
    let device_ok = match catalog.device_secret(&req.device_id).await? {
        Some(expected) => req.device_secret.as_deref().is_some_and(|s| token_digest(s) == expected),
        None => !state.config.require_device_credentials,
    };
    if !device_ok {
        let detail = serde_json::json!({"reason": "device credentials"});
        catalog.audit(&user.login, &req.device_id, "login", None, "denied", &detail).await?;
        return Err(ApiError::Unauthenticated("invalid or missing device credentials"));
    }
    catalog.touch_device(&req.device_id).await?;
    let token = random_secret();
    let ttl = state.config.token_ttl.as_secs();
    let now = unix_now();
    // expired rows are useless; dropping them here keeps the table at about one row per
    // live session without a background task
    catalog.purge_expired_tokens(now).await?;
    catalog.insert_token(&token_digest(&token), user.id, &req.device_id, now, now + ttl as i64).await?;
    catalog
        .audit(&user.login, &req.device_id, "login", None, "ok", &serde_json::json!({"role": role.as_str()}))
        .await?;
    Ok(Json(LoginResponse { token, token_type: "Bearer", expires_in: ttl, role, device_id: req.device_id }))
}
