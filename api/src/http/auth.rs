//! The [`Caller`] extractor every protected handler takes: the bearer token in
//! `Authorization: Bearer ...` and the device it was issued to in `X-Device-Id`, checked
//! by [`Accounts::authenticate`](crate::service::accounts::Accounts::authenticate) (a
//! token copied to another device is refused), then the account's rate limit.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use crate::error::{ApiError, Result};
use crate::service::accounts::{Actor, Principal, Role};

/// Header carrying the device id a token is bound to.
pub const DEVICE_HEADER: &str = "x-device-id";

/// What an account may do. Stored as the lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = Role)]
pub enum RoleName {
    /// Patrol officer: identify, upload.
    Patrol,
    /// Charging dock: upload only.
    Dock,
    /// Investigator: search and view evidence of their cases.
    Investigator,
    /// Supervisor: classify, holds, duty records.
    Supervisor,
    /// Administrator: users, devices, enrolment.
    Admin,
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::Patrol => RoleName::Patrol,
            Role::Dock => RoleName::Dock,
            Role::Investigator => RoleName::Investigator,
            Role::Supervisor => RoleName::Supervisor,
            Role::Admin => RoleName::Admin,
        }
    }
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Patrol => Role::Patrol,
            RoleName::Dock => Role::Dock,
            RoleName::Investigator => Role::Investigator,
            RoleName::Supervisor => Role::Supervisor,
            RoleName::Admin => Role::Admin,
        }
    }
}

/// The bearer token of a request's `Authorization` header, if any.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Account login (recorded as the audit actor).
    pub login: String,
    /// Account role.
    pub role: Role,
    /// Device the token is bound to (recorded in the audit log).
    pub device_id: String,
}

impl Caller {
    /// The caller as the audit log records it.
    pub fn actor(&self) -> Actor<'_> {
        Actor { login: &self.login, device: &self.device_id }
    }

    /// The caller with its role, for the services' access rules.
    pub fn principal(&self) -> Principal<'_> {
        Principal { login: &self.login, role: self.role, device: &self.device_id }
    }

    /// Refuses the request unless the caller has one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<()> {
        self.principal().require(allowed)
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthenticated("a bearer token is required"))?;
        let device = parts.headers.get(DEVICE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        let a = state.accounts.authenticate(token, device).await?;
        state.limits.request(&a.login)?;
        Ok(Caller { login: a.login, role: a.role, device_id: a.device_id })
    }
}
