//! Account and device administration (administrators) and logout (everyone): create an
//! account with a one-time password, disable or re-enable accounts and devices (their
//! tokens stop working at once), revoke one's own token. Every change is audited.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json_body;
use crate::error::{ApiError, Result};
use crate::http::AppState;
use crate::http::auth::{Caller, RoleName, bearer_token};
use crate::http::problem::Problem;
use crate::service::accounts::{Role, random_secret, token_digest};

/// Body of `POST /v1/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login (1-64 printable characters).
    pub login: String,
    /// Role.
    pub role: RoleName,
}

/// A created account and its one-time password (shown once; only its hash is kept).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    /// Login.
    pub login: String,
    /// Role.
    pub role: RoleName,
    /// One-time password: hand it to the officer; it is not stored and cannot be shown again.
    pub password: String,
}

/// Creates an account (admin).
#[utoipa::path(
    post, path = "/v1/users", tag = "admin", request_body = NewUser,
    responses(
        (status = 201, body = CreatedUser),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: std::result::Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedUser>)> {
    caller.require(&[Role::Admin])?;
    let b = json_body(body)?;
    let password = random_secret();
    state.accounts.create(caller.actor(), &b.login, b.role.into(), &password).await?;
    Ok((StatusCode::CREATED, Json(CreatedUser { login: b.login, role: b.role, password })))
}

async fn set_user(state: &AppState, caller: &Caller, login: &str, disabled: bool) -> Result<StatusCode> {
    caller.require(&[Role::Admin])?;
    state.accounts.set_user_disabled(caller.actor(), login, disabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_device(state: &AppState, caller: &Caller, device: &str, disabled: bool) -> Result<StatusCode> {
    caller.require(&[Role::Admin])?;
    state.accounts.set_device_disabled(caller.actor(), device, disabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disables an account: it cannot log in and its tokens stop working (admin).
#[utoipa::path(post, path = "/v1/users/{login}/disable", tag = "admin",
    params(("login" = String, Path, description = "account login")),
    responses((status = 204, description = "disabled"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn disable_user(State(s): State<Arc<AppState>>, c: Caller, Path(login): Path<String>) -> Result<StatusCode> {
    set_user(&s, &c, &login, true).await
}

/// Re-enables an account (admin).
#[utoipa::path(post, path = "/v1/users/{login}/enable", tag = "admin",
    params(("login" = String, Path, description = "account login")),
    responses((status = 204, description = "enabled"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn enable_user(State(s): State<Arc<AppState>>, c: Caller, Path(login): Path<String>) -> Result<StatusCode> {
    set_user(&s, &c, &login, false).await
}

/// Disables a device (a lost tablet): its tokens stop working and it cannot log in (admin).
#[utoipa::path(post, path = "/v1/devices/{device}/disable", tag = "admin",
    params(("device" = String, Path, description = "device id")),
    responses((status = 204, description = "disabled"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn disable_device(State(s): State<Arc<AppState>>, c: Caller, Path(d): Path<String>) -> Result<StatusCode> {
    set_device(&s, &c, &d, true).await
}

/// Re-enables a device (admin).
#[utoipa::path(post, path = "/v1/devices/{device}/enable", tag = "admin",
    params(("device" = String, Path, description = "device id")),
    responses((status = 204, description = "enabled"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn enable_device(State(s): State<Arc<AppState>>, c: Caller, Path(d): Path<String>) -> Result<StatusCode> {
    set_device(&s, &c, &d, false).await
}

/// Body of `POST /v1/devices`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// Device id (1-128 printable characters), as the device sends it at login.
    pub device_id: String,
}

/// An enrolled device and its secret (shown once; only its SHA-256 is kept).
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolledDevice {
    /// Device id.
    pub device_id: String,
    /// Secret to configure on the device; logins from it must send it as `device_secret`.
    pub secret: String,
}

/// Enrols a tablet, dock or workstation with a secret of its own, or re-keys it (admin).
/// Logins from an enrolled device must present the secret; the device's tokens are
/// revoked.
#[utoipa::path(post, path = "/v1/devices", tag = "admin", request_body = NewDevice,
    responses(
        (status = 201, body = EnrolledDevice),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn enroll_device(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: std::result::Result<Json<NewDevice>, JsonRejection>,
) -> Result<(StatusCode, Json<EnrolledDevice>)> {
    caller.require(&[Role::Admin])?;
    let b = json_body(body)?;
    let secret = state.accounts.enroll_device(caller.actor(), &b.device_id).await?;
    Ok((StatusCode::CREATED, Json(EnrolledDevice { device_id: b.device_id, secret })))
}

/// Revokes the presented token (any role).
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "the token no longer works"), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn logout(State(state): State<Arc<AppState>>, caller: Caller, headers: HeaderMap) -> Result<StatusCode> {
    // the Caller extractor has already checked this header
    let token = bearer_token(&headers).ok_or(ApiError::Unauthenticated("a bearer token is required"))?;
    state.accounts.logout(caller.actor(), &token_digest(token)).await?;
    Ok(StatusCode::NO_CONTENT)
}
