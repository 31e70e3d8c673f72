//! Authentication and roles: argon2id password hashes, random bearer tokens bound to a
//! device, and the [`Caller`] extractor every protected handler takes.
//!
//! A token is 256 random bits (hex on the wire); the catalog stores only its SHA-256, so
//! reading the database does not yield usable tokens. Each request must present the
//! token in `Authorization: Bearer ...` and the device it was issued to in
//! `X-Device-Id`; a token copied to another device is refused.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::AppState;
use crate::error::{ApiError, Result};

/// Header carrying the device id a token is bound to.
pub const DEVICE_HEADER: &str = "x-device-id";

/// What an account may do. Stored as the lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
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

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patrol => "patrol",
            Role::Dock => "dock",
            Role::Investigator => "investigator",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "patrol" => Role::Patrol,
            "dock" => Role::Dock,
            "investigator" => Role::Investigator,
            "supervisor" => Role::Supervisor,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
}

/// Hashes a password with argon2id (default parameters, random salt) into a PHC string.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
}

/// Checks a password against a PHC string; a malformed stored hash is a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// [`hash_password`] on the blocking pool: argon2 is deliberately slow (tens of ms) and
/// must not hold up the async workers.
pub async fn hash_password_blocking(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// [`verify_password`] on the blocking pool (see [`hash_password_blocking`]).
pub async fn verify_password_blocking(password: String, phc: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// A fresh random secret of 256 bits as lower-case hex (tokens, generated passwords).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The bearer token of a request's `Authorization` header, if any.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The SHA-256 (hex) under which a token is stored.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Current time in unix seconds.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
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
    /// Refuses the request unless the caller has one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<()> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this role may not use this endpoint"))
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthenticated("a bearer token is required"))?;
        // well-formed tokens are 64 hex digits; anything else is not worth a lookup
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::Unauthenticated("invalid or expired token"));
        }
        let session = state
            .catalog
            .session(&token_digest(token), unix_now())
            .await?
            .ok_or(ApiError::Unauthenticated("invalid or expired token"))?;
        let device = parts.headers.get(DEVICE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if device != session.device_id {
            return Err(ApiError::Unauthenticated("token is bound to another device"));
        }
        let role = Role::parse(&session.role).ok_or_else(|| ApiError::Internal("stored role is unknown".into()))?;
        state.limits.request(&session.login)?;
        Ok(Caller { login: session.login, role, device_id: session.device_id })
    }
}
