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
use crate::error::Result;
use crate::http::AppState;
use crate::http::auth::{Caller, bearer_token};
use crate::http::problem::Problem;
use crate::service::accounts::{Role, check_new_password, token_digest};

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
    check_new_password(&b.current_password, &b.new_password)?;
    // a stolen token must not become a way to guess the password faster than login
    state.limits.login(&caller.login)?;
    let keep = bearer_token(&headers).map(token_digest);
    state.accounts.change_password(caller.actor(), b.current_password, b.new_password, keep.as_deref()).await?;
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
    let password = state.accounts.reset_password(caller.actor(), &login).await?;
    Ok(Json(PasswordReset { login, password }))
}
