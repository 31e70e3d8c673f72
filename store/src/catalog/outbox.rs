//! The durable event outbox: events written atomically with their audit row, read in
//! order by subscribers that resume from the last sequence number they saw.

use serde::Serialize;
use sqlx::Row;

use super::{Catalog, now_rfc3339};
use crate::error::Result;

/// One stored event.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutboxEvent {
    /// Position in the outbox, increasing; subscribers resume after it.
    pub seq: i64,
    /// When it was written (RFC 3339).
    pub at: String,
    /// Event type, e.g. `identification.registered`.
    pub kind: String,
    /// The event's JSON document.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: serde_json::Value,
}

/// An event to write with an audit row; `audit_id` and `at` are added to its payload.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Event type.
    pub kind: &'static str,
    /// JSON object payload.
    pub payload: serde_json::Value,
}

impl Catalog {
    /// Appends an audit row and, when given, its event, in one transaction; returns the
    /// audit row id.
    #[allow(clippy::too_many_arguments)]
    pub async fn audit_with_event(
        &self,
        actor: &str,
        device: &str,
        action: &str,
        subject_id: Option<i64>,
        outcome: &str,
        detail: &serde_json::Value,
        event: Option<NewEvent>,
    ) -> Result<i64> {
        let at = now_rfc3339();
        let mut tx = self.pool().begin().await?;
        let audit_id = sqlx::query(
            "INSERT INTO audit_log (at, actor, device, action, subject_id, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&at)
        .bind(actor)
        .bind(device)
        .bind(action)
        .bind(subject_id)
        .bind(outcome)
        .bind(detail.to_string())
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        if let Some(mut e) = event {
            if let Some(obj) = e.payload.as_object_mut() {
                obj.insert("audit_id".into(), audit_id.into());
                obj.insert("at".into(), at.clone().into());
            }
            sqlx::query("INSERT INTO outbox (at, kind, audit_id, payload) VALUES (?, ?, ?, ?)")
                .bind(&at)
                .bind(e.kind)
                .bind(audit_id)
                .bind(e.payload.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(audit_id)
    }

    /// Up to `limit` events with `seq > after`, oldest first.
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<OutboxEvent>> {
        let rows = sqlx::query("SELECT seq, at, kind, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get("payload")?;
                Ok(OutboxEvent {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }

    /// Sequence number of the newest event (0 when there is none).
    pub async fn last_event_seq(&self) -> Result<i64> {
        let r = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetch_one(self.pool()).await?;
        Ok(r.try_get(0)?)
    }
}
