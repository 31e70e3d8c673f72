//! Accounts, devices and bearer tokens for the HTTP API.
//!
//! The store keeps what the API layer decided: password hashes arrive already hashed
//! (argon2, in `epatrol-api`), tokens arrive as their SHA-256. Nothing here can turn a
//! row back into a credential.

use serde::Serialize;

use super::Catalog;
use crate::clock::now_rfc3339;
use crate::error::{Result, StoreError};

/// An account. The role stays text here: the set of roles belongs to the API's access
/// policy, and the table's CHECK constraint already refuses anything else.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub login: String,
    /// `patrol`, `dock`, `investigator`, `supervisor` or `admin`.
    pub role: String,
    /// PHC-format password hash.
    #[serde(skip)]
    pub password_hash: String,
    /// A disabled account cannot log in and its tokens stop working.
    pub disabled: bool,
}

/// What a live token stands for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    /// Account row id.
    pub user_id: i64,
    /// Account login.
    pub login: String,
    /// Account role.
    pub role: String,
    /// Device the token was issued to.
    pub device_id: String,
    /// Expiry, unix seconds.
    pub expires_at: i64,
}

impl Catalog {
    /// Creates an account. An existing login is a conflict (nothing is changed).
    pub async fn create_user(&self, login: &str, role: &str, password_hash: &str) -> Result<i64> {
        if login.trim().is_empty() || login.len() > 64 || login.chars().any(char::is_control) {
            return Err(StoreError::Invalid("login must be 1-64 printable characters".into()));
        }
        let res = sqlx::query("INSERT INTO users (login, role, password_hash, created_at) VALUES (?, ?, ?, ?)")
            .bind(login)
            .bind(role)
            .bind(password_hash)
            .bind(now_rfc3339())
            .execute(&self.pool)
            .await;
        match res {
            // SQLite: the rowid of this connection's last insert
            Ok(r) => Ok(r.last_insert_rowid()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict("an account with this login exists".into()))
            }
            Err(sqlx::Error::Database(e)) if e.is_check_violation() => Err(StoreError::Invalid("unknown role".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// The account with this login, if any.
    pub async fn user_by_login(&self, login: &str) -> Result<Option<User>> {
        Ok(sqlx::query_as("SELECT id, login, role, password_hash, disabled FROM users WHERE login = ?")
            .bind(login)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Number of enabled accounts with `role`.
    pub async fn count_users_with_role(&self, role: &str) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = ? AND disabled = 0")
            .bind(role)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Records that `device_id` is in use (first/last seen). A disabled device is refused.
    pub async fn touch_device(&self, device_id: &str) -> Result<()> {
        check_device_id(device_id)?;
        let now = now_rfc3339();
        sqlx::query(
            "INSERT INTO devices (device_id, first_seen, last_seen) VALUES (?, ?, ?) \
             ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen",
        )
        .bind(device_id)
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        let disabled: bool = sqlx::query_scalar("SELECT disabled FROM devices WHERE device_id = ?")
            .bind(device_id)
            .fetch_one(&self.pool)
            .await?;
        if disabled {
            return Err(StoreError::Refused("device is disabled".into()));
        }
        Ok(())
    }

    /// Enrols a device with the SHA-256 of its secret, or re-keys an enrolled one; the
    /// device's tokens are revoked (a re-key means the old secret may be out), in one
    /// transaction.
    pub async fn enroll_device(&self, device_id: &str, secret_sha256: &str) -> Result<()> {
        check_device_id(device_id)?;
        let now = now_rfc3339();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO devices (device_id, first_seen, last_seen, secret_sha256) VALUES (?, ?, ?, ?) \
             ON CONFLICT (device_id) DO UPDATE SET secret_sha256 = excluded.secret_sha256",
        )
        .bind(device_id)
        .bind(&now)
        .bind(&now)
        .bind(secret_sha256)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM tokens WHERE device_id = ?").bind(device_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The SHA-256 of an enrolled device's secret; `None` for a device never enrolled
    /// (or unknown).
    pub async fn device_secret(&self, device_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT secret_sha256 FROM devices WHERE device_id = ?")
            .bind(device_id)
            .fetch_optional(&self.pool)
            .await?
            .flatten())
    }

    /// Disables (or re-enables) a device; its tokens stop working at once.
    pub async fn set_device_disabled(&self, device_id: &str, disabled: bool) -> Result<()> {
        let r = sqlx::query("UPDATE devices SET disabled = ? WHERE device_id = ?")
            .bind(disabled)
            .bind(device_id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound("device".into()));
        }
        Ok(())
    }

    /// Stores a token by its SHA-256 (hex). Times are unix seconds.
    pub async fn insert_token(
        &self,
        token_sha256: &str,
        user_id: i64,
        device_id: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (token_sha256, user_id, device_id, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token_sha256)
        .bind(user_id)
        .bind(device_id)
        .bind(issued_at)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session behind a token hash, if the token exists, has not expired at `now`
    /// (unix seconds), and neither its account nor its device is disabled.
    pub async fn session(&self, token_sha256: &str, now: i64) -> Result<Option<Session>> {
        Ok(sqlx::query_as(
            "SELECT t.user_id, u.login, u.role, t.device_id, t.expires_at FROM tokens t \
             JOIN users u ON u.id = t.user_id JOIN devices d ON d.device_id = t.device_id \
             WHERE t.token_sha256 = ? AND t.expires_at > ? AND u.disabled = 0 AND d.disabled = 0",
        )
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Disables (or re-enables) an account; its tokens stop working at once.
    pub async fn set_user_disabled(&self, login: &str, disabled: bool) -> Result<()> {
        let r = sqlx::query("UPDATE users SET disabled = ? WHERE login = ?")
            .bind(disabled)
            .bind(login)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound("account".into()));
        }
        Ok(())
    }

    /// Replaces an account's password hash and revokes its tokens except `keep` (the
    /// SHA-256 of the token that asked, on a self-service change), in one transaction.
    /// Returns how many tokens were revoked.
    pub async fn set_password(&self, login: &str, password_hash: &str, keep: Option<&str>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE login = ?")
            .bind(login)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound("account".into()))?;
        sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let revoked = sqlx::query("DELETE FROM tokens WHERE user_id = ? AND token_sha256 IS NOT ?")
            .bind(id)
            .bind(keep)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(revoked)
    }

    /// Deletes one token (logout); returns whether it existed.
    pub async fn revoke_token(&self, token_sha256: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM tokens WHERE token_sha256 = ?").bind(token_sha256).execute(&self.pool).await?;
        Ok(r.rows_affected() > 0)
    }

    /// Deletes tokens that expired before `now` (unix seconds); returns how many.
    pub async fn purge_expired_tokens(&self, now: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM tokens WHERE expires_at <= ?").bind(now).execute(&self.pool).await?.rows_affected())
    }
}

/// Device ids are 1-128 printable characters.
fn check_device_id(device_id: &str) -> Result<()> {
    if device_id.trim().is_empty() || device_id.len() > 128 || device_id.chars().any(char::is_control) {
        return Err(StoreError::Invalid("device id must be 1-128 printable characters".into()));
    }
    Ok(())
}
