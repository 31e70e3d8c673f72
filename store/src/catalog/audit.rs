//! Audit trail: every lookup of personal data is recorded (who, device, when, what, result).

use serde::Serialize;
use sqlx::Row;

use super::Catalog;
use crate::error::Result;

/// One audit row.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Officer login or system actor (`cli:<user>`).
    pub actor: String,
    /// Device id, if any.
    pub device: String,
    /// What was done (`identify`, `enroll`, ...).
    pub action: String,
    /// Subject concerned, if any.
    pub subject_id: Option<i64>,
    /// Result (`match`, `no_match`, `rejected`, ...).
    pub outcome: String,
    /// JSON detail without personal data.
    pub detail: String,
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
        let rows = sqlx::query(
            "SELECT id, at, actor, device, action, subject_id, outcome, detail FROM audit_log ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    device: r.try_get("device")?,
                    action: r.try_get("action")?,
                    subject_id: r.try_get("subject_id")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
