//! Accounts and devices: roles, sessions, and every change to them with its audit row,
//! written here once for the HTTP API and the command line.
//!
//! - [`secrets`]: argon2id password hashes, random secrets, token digests.
//! - [`sessions`]: login (password, then the device's own credential) and the bearer
//!   token check of every request.

pub mod secrets;
pub mod sessions;

use serde::{Deserialize, Serialize};

use epatrol_store::Catalog;

use crate::error::{ApiError, Result};
pub use secrets::{
    hash_password, hash_password_blocking, random_secret, token_digest, unix_now, verify_password,
    verify_password_blocking,
};
pub use sessions::{Authenticated, Issued, LoginAttempt, SessionPolicy};

/// What an account may do. Stored as the lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Every role.
    pub const ALL: [Role; 5] = [Role::Patrol, Role::Dock, Role::Investigator, Role::Supervisor, Role::Admin];

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
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Who does something, as the audit log records it: an account login (or `system`,
/// `cli:<user>`) and the device it acts from (empty when none).
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// Login or tool name.
    pub login: &'a str,
    /// Device id, or empty.
    pub device: &'a str,
}

/// An account acting from a device with its role: whose rights a request uses.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// Account login.
    pub login: &'a str,
    /// Its role.
    pub role: Role,
    /// Device the request comes from.
    pub device: &'a str,
}

impl Principal<'_> {
    /// The principal as the audit log records it.
    pub fn actor(&self) -> Actor<'_> {
        Actor { login: self.login, device: self.device }
    }

    /// Refuses unless the principal has one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<()> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this role may not use this endpoint"))
        }
    }
}

/// The shortest password a person may choose.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password (argon2 input is bounded so a huge body costs nothing).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Checks a self-chosen new password: 12-256 characters, different from the current one.
pub fn check_new_password(current: &str, new: &str) -> Result<()> {
    let n = new.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(ApiError::BadRequest(format!(
            "the new password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    if new == current {
        return Err(ApiError::BadRequest("the new password must differ from the current one".into()));
    }
    Ok(())
}

/// Account and device administration over the catalog.
#[derive(Debug, Clone)]
pub struct Accounts {
    catalog: Catalog,
}

impl Accounts {
    /// Accounts of `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }

    async fn audit(&self, by: Actor<'_>, action: &str, outcome: &str, detail: &serde_json::Value) -> Result<()> {
        self.catalog.audit(by.login, by.device, action, None, outcome, detail).await?;
        Ok(())
    }

    /// Creates an account with `password` (only its argon2 hash is kept); returns its id.
    /// An existing login is a conflict.
    pub async fn create(&self, by: Actor<'_>, login: &str, role: Role, password: &str) -> Result<i64> {
        let detail = serde_json::json!({"login": login, "role": role.as_str()});
        self.create_audited(by, login, role, password, detail).await
    }

    async fn create_audited(
        &self,
        by: Actor<'_>,
        login: &str,
        role: Role,
        password: &str,
        detail: serde_json::Value,
    ) -> Result<i64> {
        let hash = hash_password_blocking(password.to_string()).await?;
        let id = self.catalog.create_user(login, role.as_str(), &hash).await?;
        self.audit(by, "user.create", "ok", &detail).await?;
        Ok(id)
    }

    /// First start: with no enabled administrator, creates `login` as one with a random
    /// password and returns that password (shown once: only its hash is kept); `None`
    /// when there is an administrator already.
    pub async fn bootstrap_admin(&self, login: &str) -> Result<Option<String>> {
        if self.catalog.count_users_with_role(Role::Admin.as_str()).await? > 0 {
            return Ok(None);
        }
        let password = random_secret();
        let detail = serde_json::json!({"login": login, "role": "admin", "bootstrap": true});
        let system = Actor { login: "system", device: "" };
        self.create_audited(system, login, Role::Admin, &password, detail).await?;
        Ok(Some(password))
    }

    /// Disables or re-enables an account (its tokens stop working at once).
    /// Administrators cannot disable their own account.
    pub async fn set_user_disabled(&self, by: Actor<'_>, login: &str, disabled: bool) -> Result<()> {
        if disabled && login == by.login {
            return Err(ApiError::BadRequest("administrators cannot disable their own account".into()));
        }
        self.catalog.set_user_disabled(login, disabled).await?;
        let action = if disabled { "user.disable" } else { "user.enable" };
        self.audit(by, action, "ok", &serde_json::json!({"login": login})).await
    }

    /// Disables or re-enables a device (its tokens stop working at once).
    pub async fn set_device_disabled(&self, by: Actor<'_>, device: &str, disabled: bool) -> Result<()> {
        self.catalog.set_device_disabled(device, disabled).await?;
        let action = if disabled { "device.disable" } else { "device.enable" };
        self.audit(by, action, "ok", &serde_json::json!({"device": device})).await
    }

    /// Enrols (or re-keys) a device with a fresh secret and returns the secret (shown
    /// once: only its SHA-256 is kept); the device's tokens are revoked.
    pub async fn enroll_device(&self, by: Actor<'_>, device: &str) -> Result<String> {
        let secret = random_secret();
        self.catalog.enroll_device(device, &token_digest(&secret)).await?;
        self.audit(by, "device.enroll", "ok", &serde_json::json!({"device": device})).await?;
        Ok(secret)
    }

    /// Sets a new one-time password for `login` and revokes all its tokens; returns the
    /// password (shown once).
    pub async fn reset_password(&self, by: Actor<'_>, login: &str) -> Result<String> {
        let password = random_secret();
        let hash = hash_password_blocking(password.clone()).await?;
        let revoked = self.catalog.set_password(login, &hash, None).await?;
        let detail = serde_json::json!({"login": login, "tokens_revoked": revoked});
        self.audit(by, "password.reset", "ok", &detail).await?;
        Ok(password)
    }

    /// Changes the password of `by.login`, which must know the current one (checked with
    /// [`check_new_password`] first); every token but `keep` (the SHA-256 of the token
    /// that asked) is revoked. A wrong current password is audited and refused.
    pub async fn change_password(&self, by: Actor<'_>, current: String, new: String, keep: Option<&str>) -> Result<()> {
        let user =
            self.catalog.user_by_login(by.login).await?.ok_or(ApiError::Unauthenticated("invalid or expired token"))?;
        if !verify_password_blocking(current, user.password_hash).await? {
            self.audit(by, "password.change", "denied", &serde_json::json!({})).await?;
            return Err(ApiError::Forbidden("the current password is wrong"));
        }
        let hash = hash_password_blocking(new).await?;
        let revoked = self.catalog.set_password(by.login, &hash, keep).await?;
        self.audit(by, "password.change", "ok", &serde_json::json!({"tokens_revoked": revoked})).await
    }

    /// Revokes the token with SHA-256 `token_sha256` (logout).
    pub async fn logout(&self, by: Actor<'_>, token_sha256: &str) -> Result<()> {
        self.catalog.revoke_token(token_sha256).await?;
        self.audit(by, "logout", "ok", &serde_json::json!({})).await
    }
}
