//! Reading the audit log and subscribing to the event outbox: both are themselves
//! audited.

use epatrol_store::Catalog;
use epatrol_store::catalog::AuditEntry;

use super::accounts::Actor;
use crate::error::{ApiError, Result};

/// Most rows one read returns.
pub const MAX_AUDIT_ROWS: i64 = 1000;
/// Rows a read returns when not told.
pub const DEFAULT_AUDIT_ROWS: i64 = 100;

/// The audit log and the outbox of the catalog.
#[derive(Debug, Clone)]
pub struct AuditTrail {
    catalog: Catalog,
}

impl AuditTrail {
    /// The trail of `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }

    /// The newest `limit` rows (1-1000, default 100), newest first; the read is audited.
    pub async fn tail(&self, by: Actor<'_>, limit: Option<i64>) -> Result<Vec<AuditEntry>> {
        let limit = limit.unwrap_or(DEFAULT_AUDIT_ROWS);
        if !(1..=MAX_AUDIT_ROWS).contains(&limit) {
            return Err(ApiError::BadRequest(format!("limit must be 1-{MAX_AUDIT_ROWS}")));
        }
        let rows = self.catalog.audit_tail(limit).await?;
        let detail = serde_json::json!({"rows": rows.len()});
        self.catalog.audit(by.login, by.device, "audit.read", None, "ok", &detail).await?;
        Ok(rows)
    }

    /// Starts a subscription to the outbox after sequence number `after` (default: the
    /// newest event, so only events from now on); audited. Returns where it starts.
    pub async fn subscribe(&self, by: Actor<'_>, after: Option<i64>) -> Result<i64> {
        let after = match after {
            Some(a) => a,
            None => self.catalog.last_event_seq().await?,
        };
        let detail = serde_json::json!({"after": after});
        self.catalog.audit(by.login, by.device, "events.subscribe", None, "ok", &detail).await?;
        Ok(after)
    }
}
