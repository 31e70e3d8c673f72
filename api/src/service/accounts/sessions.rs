//! Sessions: login (password, then the device's own credential) issues a bearer token
//! bound to the device; every request's token is checked against it.

use std::time::Duration;

use super::{Accounts, Actor, Role, hash_password, random_secret, token_digest, unix_now, verify_password_blocking};
use crate::error::{ApiError, Result};

/// How sessions are issued.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Lifetime of a token.
    pub token_ttl: Duration,
    /// Refuse devices not enrolled with a secret (enrolled ones always need theirs).
    pub require_device_credentials: bool,
}

/// A login request.
#[derive(Debug)]
pub struct LoginAttempt {
    /// Account login.
    pub login: String,
    /// Password.
    pub password: String,
    /// Device the token is to be bound to.
    pub device_id: String,
    /// The device's own secret, if it sent one.
    pub device_secret: Option<String>,
}

/// A token issued by a login.
#[derive(Debug)]
pub struct Issued {
    /// Bearer token (64 hex digits; only its SHA-256 is stored).
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The account's role.
    pub role: Role,
    /// The device it is bound to.
    pub device_id: String,
}

/// The account behind a live token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Account login.
    pub login: String,
    /// Account role.
    pub role: Role,
    /// Device the token is bound to.
    pub device_id: String,
}

/// A fixed PHC hash checked when the login is unknown, so unknown and known logins take
/// the same argon2 time and cannot be told apart by timing.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_secret()).unwrap_or_default())
}

fn stored_role(name: &str) -> Result<Role> {
    Role::parse(name).ok_or_else(|| ApiError::Internal("stored role is unknown".into()))
}

impl Accounts {
    /// Checks the password, then the device's credential, and issues a token bound to
    /// the device. Every attempt is audited; a refusal says nothing about which check
    /// failed beyond "login or password" versus "device credentials".
    pub async fn login(&self, attempt: LoginAttempt, policy: SessionPolicy) -> Result<Issued> {
        let LoginAttempt { login, password, device_id, device_secret } = attempt;
        let user = self.catalog.user_by_login(&login).await?;
        let phc =
            user.as_ref().filter(|u| !u.disabled).map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
        let ok = verify_password_blocking(password, phc).await?;
        let user = match user {
            Some(u) if ok && !u.disabled => u,
            _ => {
                self.audit(Actor { login: &login, device: &device_id }, "login", "denied", &serde_json::json!({}))
                    .await?;
                return Err(ApiError::Unauthenticated("invalid login or password"));
            }
        };
        let role = stored_role(&user.role)?;
        let by = Actor { login: &user.login, device: &device_id };
        // the device's own credential, checked after the password so a guesser without it
        // learns nothing about which devices are enrolled
        let device_ok = match self.catalog.device_secret(&device_id).await? {
            Some(expected) => device_secret.as_deref().is_some_and(|s| token_digest(s) == expected),
            None => !policy.require_device_credentials,
        };
        if !device_ok {
            self.audit(by, "login", "denied", &serde_json::json!({"reason": "device credentials"})).await?;
            return Err(ApiError::Unauthenticated("invalid or missing device credentials"));
        }
        self.catalog.touch_device(&device_id).await?;
        let token = random_secret();
        let ttl = policy.token_ttl.as_secs();
        let now = unix_now();
        // expired rows are useless; dropping them here keeps the table at about one row per
        // live session without a background task
        self.catalog.purge_expired_tokens(now).await?;
        self.catalog.insert_token(&token_digest(&token), user.id, &device_id, now, now + ttl as i64).await?;
        self.audit(by, "login", "ok", &serde_json::json!({"role": role.as_str()})).await?;
        Ok(Issued { token, expires_in: ttl, role, device_id })
    }

    /// The account behind bearer `token` presented from `device`: the token must be
    /// well-formed, live, and bound to that device.
    pub async fn authenticate(&self, token: &str, device: &str) -> Result<Authenticated> {
        // well-formed tokens are 64 hex digits; anything else is not worth a lookup
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::Unauthenticated("invalid or expired token"));
        }
        let session = self
            .catalog
            .session(&token_digest(token), unix_now())
            .await?
            .ok_or(ApiError::Unauthenticated("invalid or expired token"))?;
        if device != session.device_id {
            return Err(ApiError::Unauthenticated("token is bound to another device"));
        }
        let role = stored_role(&session.role)?;
        Ok(Authenticated { login: session.login, role, device_id: session.device_id })
    }
}
