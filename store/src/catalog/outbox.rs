//! The durable event outbox: events written atomically with their audit row, read in
//! order by subscribers that resume from the last sequence number they saw.

use serde::Serialize;
use time::OffsetDateTime;

use super::Catalog;
use super::db::{Conn, JsonText, Precise};
use crate::clock::fmt_rfc3339;
use crate::error::Result;

/// One stored event.
#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutboxEvent {
    /// Position in the outbox, increasing; subscribers resume after it.
    pub seq: i64,
    /// When it was written (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[sqlx(try_from = "Precise")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: OffsetDateTime,
    /// Event type, e.g. `identification.registered`.
    pub kind: String,
    /// The event's JSON document.
    #[sqlx(try_from = "JsonText")]
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

/// Appends an event written at `at` about audit row `audit_id`.
pub async fn insert(
    conn: &mut Conn,
    at: OffsetDateTime,
    kind: &str,
    audit_id: i64,
    payload: &serde_json::Value,
) -> Result<()> {
    sqlx::query("INSERT INTO outbox (at, kind, audit_id, payload) VALUES (?, ?, ?, ?)")
        .bind(Precise(at))
        .bind(kind)
        .bind(audit_id)
        .bind(payload.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Up to `limit` events with `seq > after`, oldest first.
pub async fn after(conn: &mut Conn, after: i64, limit: i64) -> Result<Vec<OutboxEvent>> {
    Ok(sqlx::query_as("SELECT seq, at, kind, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?")
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?)
}

/// Sequence number of the newest event (0 when there is none).
pub async fn last_seq(conn: &mut Conn) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetch_one(&mut *conn).await?)
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
        let at = OffsetDateTime::now_utc();
        let mut tx = self.begin().await?;
        let audit_id = super::audit::insert(&mut tx, at, actor, device, action, subject_id, outcome, detail).await?;
        if let Some(mut e) = event {
            if let Some(obj) = e.payload.as_object_mut() {
                obj.insert("audit_id".into(), audit_id.into());
                obj.insert("at".into(), fmt_rfc3339(at).into());
            }
            insert(&mut tx, at, e.kind, audit_id, &e.payload).await?;
        }
        tx.commit().await?;
        Ok(audit_id)
    }

    /// Up to `limit` events with `seq > after`, oldest first.
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<OutboxEvent>> {
        self::after(&mut *self.acquire().await?, after, limit).await
    }

    /// Sequence number of the newest event (0 when there is none).
    pub async fn last_event_seq(&self) -> Result<i64> {
        last_seq(&mut *self.acquire().await?).await
    }
}
