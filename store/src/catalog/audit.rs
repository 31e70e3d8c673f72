//! Audit trail: every lookup of personal data is recorded (who, device, when, what, result).

use serde::Serialize;
use time::OffsetDateTime;

use super::Catalog;
use super::db::{Conn, JsonOrText, Precise};
use crate::error::Result;

/// One audit row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuditRow))]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// When (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[sqlx(try_from = "Precise")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: OffsetDateTime,
    /// Login of the account (or `system`, `cli:<user>`).
    pub actor: String,
    /// Device id, if any.
    pub device: String,
    /// What was done (`identify`, `enroll`, `login`, `audit.read`, ...).
    pub action: String,
    /// Catalog id of the subject concerned, if any.
    pub subject_id: Option<i64>,
    /// Result (`match`, `no_match`, `rejected`, `ok`, `denied`, ...).
    pub outcome: String,
    /// JSON detail (no personal data).
    // a stored text that is not JSON reads as a JSON string of it
    #[sqlx(try_from = "JsonOrText")]
    pub detail: serde_json::Value,
}

/// Appends an audit row written at `at`; returns its id.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    conn: &mut Conn,
    at: OffsetDateTime,
    actor: &str,
    device: &str,
    action: &str,
    subject_id: Option<i64>,
    outcome: &str,
    detail: &serde_json::Value,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO audit_log (at, actor, device, action, subject_id, outcome, detail) \
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(Precise(at))
    .bind(actor)
    .bind(device)
    .bind(action)
    .bind(subject_id)
    .bind(outcome)
    .bind(detail.to_string())
    .fetch_one(&mut *conn)
    .await?)
}

/// The most recent `limit` audit rows, newest first.
pub async fn tail(conn: &mut Conn, limit: i64) -> Result<Vec<AuditEntry>> {
    Ok(sqlx::query_as(
        "SELECT id, at, actor, device, action, subject_id, outcome, detail FROM audit_log ORDER BY id DESC LIMIT ?",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

impl Catalog {
    /// Appends an audit row and returns its id.
    pub async fn audit(
        &self,
        actor: &str,
        device: &str,
        action: &str,
        subject_id: Option<i64>,
        outcome: &str,
        detail: &serde_json::Value,
    ) -> Result<i64> {
        self.audit_with_event(actor, device, action, subject_id, outcome, detail, None).await
    }

    /// The most recent `limit` audit rows, newest first.
    pub async fn audit_tail(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        tail(&mut *self.acquire().await?, limit).await
    }
}
