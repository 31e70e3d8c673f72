//! Passwords: an officer changes their own (knowing the current one); an administrator
//! resets someone's to a one-time password. Either way the account's other tokens stop
//! working, and the change is audited (never the password).

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
use crate::http::auth::{
    Caller, Role, bearer_token, hash_password_blocking, random_secret, token_digest, verify_password_blocking,
};
use crate::http::problem::Problem;

/// Shortest accepted new password.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password (argon2 input is bounded so a huge body costs nothing).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Body of `POST /v1/auth/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password in use now.
    pub current_password: String,
    /// The new password (12-256 characters, different from the current one).
    pub new_password: String,
}

/// A one-time password set by an administrator.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordReset {
    /// Login.
    pub login: String,
    /// One-time password: hand it to the officer; it is not stored and cannot be shown again.
    pub password: String,
}

/// Changes the caller's own password. The token used for the request keeps working;
/// every other token of the account is revoked.
#[utoipa::path(
    post, path = "/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses(
        (status = 204, description = "changed"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "current password wrong"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn change(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: std::result::Result<Json<PasswordChange>, JsonRejection>,
) -> Result<StatusCode> {
    let b = json_body(body)?;
    let n = b.new_password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(ApiError::BadRequest(format!(
            "the new password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    if b.new_password == b.current_password {
        return Err(ApiError::BadRequest("the new password must differ from the current one".into()));
    }
    // a stolen token must not become a way to guess the password faster than login
    state.limits.login(&caller.login)?;
    let cat = &state.catalog;
    let user = cat.user_by_login(&caller.login).await?.ok_or(ApiError::Unauthenticated("invalid or expired token"))?;
    let ok = verify_password_blocking(b.current_password, user.password_hash).await?;
    if !ok {
        cat.audit(&caller.login, &caller.device_id, "password.change", None, "denied", &serde_json::json!({})).await?;
        return Err(ApiError::Forbidden("the current password is wrong"));
    }
    let hash = hash_password_blocking(b.new_password).await?;
    let keep = bearer_token(&headers).map(token_digest);
    let revoked = cat.set_password(&caller.login, &hash, keep.as_deref()).await?;
    let detail = serde_json::json!({"tokens_revoked": revoked});
    cat.audit(&caller.login, &caller.device_id, "password.change", None, "ok", &detail).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Resets an account's password to a new one-time password and revokes all its tokens
/// (admin), e.g. when an officer forgot theirs or it may have leaked.
#[utoipa::path(
    post, path = "/v1/users/{login}/password", tag = "admin",
    params(("login" = String, Path, description = "account login")),
    responses(
        (status = 200, body = PasswordReset),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reset(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(login): Path<String>,
) -> Result<Json<PasswordReset>> {
    caller.require(&[Role::Admin])?;
    let password = random_secret();
    let hash = hash_password_blocking(password.clone()).await?;
    let cat = &state.catalog;
    let revoked = cat.set_password(&login, &hash, None).await?;
    let detail = serde_json::json!({"login": login, "tokens_revoked": revoked});
    cat.audit(&caller.login, &caller.device_id, "password.reset", None, "ok", &detail).await?;
    Ok(Json(PasswordReset { login, password }))
}
