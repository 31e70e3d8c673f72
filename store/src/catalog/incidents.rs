//! Incident reports, cases and legal holds: what keeps footage beyond general retention.

use serde::Serialize;
use time::OffsetDateTime;

use super::Catalog;
use super::db::{Conn, Fixed, FixedOpt, is_unique_violation};
use crate::error::{Result, StoreError};
use crate::model::Offence;

/// A stored incident.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incident {
    /// Row id.
    pub id: i64,
    /// Report number.
    pub reference: String,
    /// Offence type.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub offence: Offence,
    /// Officer.
    pub officer: String,
    /// Window start.
    #[serde(with = "crate::clock::fixed")]
    #[sqlx(try_from = "Fixed")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub starts_at: OffsetDateTime,
    /// Window end.
    #[serde(with = "crate::clock::fixed")]
    #[sqlx(try_from = "Fixed")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ends_at: OffsetDateTime,
    /// Report text.
    pub report: String,
}

/// A case file.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Case {
    /// Row id.
    pub id: i64,
    /// Case reference.
    pub reference: String,
    /// Opened.
    #[serde(with = "crate::clock::fixed")]
    #[sqlx(try_from = "Fixed")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub opened_at: OffsetDateTime,
    /// Closed, if closed (links to a closed case no longer block deletion).
    #[serde(with = "crate::clock::fixed::option")]
    #[sqlx(try_from = "FixedOpt")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub closed_at: Option<OffsetDateTime>,
}

/// A legal hold on one evidence item.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hold {
    /// Row id.
    pub id: i64,
    /// Item held.
    pub evidence_id: i64,
    /// Why.
    pub reason: String,
    /// By whom.
    pub placed_by: String,
    /// When.
    #[serde(with = "crate::clock::fixed")]
    #[sqlx(try_from = "Fixed")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub placed_at: OffsetDateTime,
    /// Released by, if released.
    pub released_by: Option<String>,
    /// Released at, if released.
    #[serde(with = "crate::clock::fixed::option")]
    #[sqlx(try_from = "FixedOpt")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub released_at: Option<OffsetDateTime>,
}

/// Stores an incident (`id` ignored) filed by `created_by` at `created_at`; returns its
/// id. A duplicate reference is a conflict.
pub async fn insert(conn: &mut Conn, i: &Incident, created_by: &str, created_at: OffsetDateTime) -> Result<i64> {
    let r = sqlx::query_scalar(
        "INSERT INTO incidents (reference, offence, officer, starts_at, ends_at, report, created_at, created_by) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&i.reference)
    .bind(i.offence)
    .bind(&i.officer)
    .bind(Fixed(i.starts_at))
    .bind(Fixed(i.ends_at))
    .bind(&i.report)
    .bind(Fixed(created_at))
    .bind(created_by)
    .fetch_one(&mut *conn)
    .await;
    match r {
        Ok(id) => Ok(id),
        Err(e) if is_unique_violation(&e) => {
            Err(StoreError::Conflict(format!("incident {} already filed", i.reference)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Links evidence to an incident that selected it (a repeated link is a no-op).
pub async fn link_evidence(conn: &mut Conn, evidence_id: i64, incident_id: i64, at: OffsetDateTime) -> Result<()> {
    sqlx::query(
        "INSERT INTO evidence_incidents (evidence_id, incident_id, linked_at) VALUES (?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(evidence_id)
    .bind(incident_id)
    .bind(Fixed(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Incidents linked to an evidence item.
pub async fn of_evidence(conn: &mut Conn, evidence_id: i64) -> Result<Vec<Incident>> {
    Ok(sqlx::query_as(
        "SELECT i.* FROM incidents i JOIN evidence_incidents ei ON ei.incident_id = i.id \
         WHERE ei.evidence_id = ? ORDER BY i.id",
    )
    .bind(evidence_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Opens a case (idempotent on the reference); returns its id.
pub async fn open_case(conn: &mut Conn, reference: &str, at: OffsetDateTime) -> Result<i64> {
    sqlx::query("INSERT INTO cases (reference, opened_at) VALUES (?, ?) ON CONFLICT (reference) DO NOTHING")
        .bind(reference)
        .bind(Fixed(at))
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_scalar("SELECT id FROM cases WHERE reference = ?").bind(reference).fetch_one(&mut *conn).await?)
}

/// Closes an open case; `NotFound` if there is no such open case.
pub async fn close_case(conn: &mut Conn, reference: &str, at: OffsetDateTime) -> Result<()> {
    let r = sqlx::query("UPDATE cases SET closed_at = ? WHERE reference = ? AND closed_at IS NULL")
        .bind(Fixed(at))
        .bind(reference)
        .execute(&mut *conn)
        .await?;
    if r.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("open case {reference}")));
    }
    Ok(())
}

/// Links evidence to a case; returns whether the link is new.
pub async fn link_case(conn: &mut Conn, case_id: i64, evidence_id: i64, by: &str, at: OffsetDateTime) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO case_evidence (case_id, evidence_id, linked_at, linked_by) VALUES (?, ?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(case_id)
    .bind(evidence_id)
    .bind(Fixed(at))
    .bind(by)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Cases an evidence item is linked to.
pub async fn cases_of(conn: &mut Conn, evidence_id: i64) -> Result<Vec<Case>> {
    Ok(sqlx::query_as(
        "SELECT c.* FROM cases c JOIN case_evidence ce ON ce.case_id = c.id WHERE ce.evidence_id = ? ORDER BY c.id",
    )
    .bind(evidence_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// The case `reference`, open or closed.
pub async fn case_by_reference(conn: &mut Conn, reference: &str) -> Result<Option<Case>> {
    Ok(sqlx::query_as("SELECT id, reference, opened_at, closed_at FROM cases WHERE reference = ?")
        .bind(reference)
        .fetch_optional(&mut *conn)
        .await?)
}

/// Places a hold on `evidence_id` while it is active; returns the hold id, or `None`
/// when the item is not active (a sweeper claimed it first).
pub async fn place_hold(
    conn: &mut Conn,
    evidence_id: i64,
    reason: &str,
    by: &str,
    at: OffsetDateTime,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO holds (evidence_id, reason, placed_by, placed_at) \
         SELECT id, ?, ?, ? FROM evidence WHERE id = ? AND state = 'active' RETURNING id",
    )
    .bind(reason)
    .bind(by)
    .bind(Fixed(at))
    .bind(evidence_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Releases every open hold on `evidence_id`; returns how many.
pub async fn release_holds(conn: &mut Conn, evidence_id: i64, by: &str, at: OffsetDateTime) -> Result<u64> {
    let r =
        sqlx::query("UPDATE holds SET released_by = ?, released_at = ? WHERE evidence_id = ? AND released_at IS NULL")
            .bind(by)
            .bind(Fixed(at))
            .bind(evidence_id)
            .execute(&mut *conn)
            .await?;
    Ok(r.rows_affected())
}

/// Holds on an evidence item, released or not.
pub async fn holds_of(conn: &mut Conn, evidence_id: i64) -> Result<Vec<Hold>> {
    Ok(sqlx::query_as("SELECT * FROM holds WHERE evidence_id = ? ORDER BY id")
        .bind(evidence_id)
        .fetch_all(&mut *conn)
        .await?)
}

impl Catalog {
    /// Incidents linked to an evidence item.
    pub async fn incidents_of(&self, evidence_id: i64) -> Result<Vec<Incident>> {
        of_evidence(&mut *self.acquire().await?, evidence_id).await
    }

    /// Opens a case (idempotent on the reference); returns its id.
    pub async fn open_case(&self, reference: &str, at: OffsetDateTime) -> Result<i64> {
        open_case(&mut *self.acquire().await?, reference, at).await
    }

    /// Closes a case; its links stop blocking deletion.
    pub async fn close_case(&self, reference: &str, at: OffsetDateTime) -> Result<()> {
        close_case(&mut *self.acquire().await?, reference, at).await
    }

    /// Cases an evidence item is linked to.
    pub async fn cases_of(&self, evidence_id: i64) -> Result<Vec<Case>> {
        cases_of(&mut *self.acquire().await?, evidence_id).await
    }

    /// Holds on an evidence item, released or not.
    pub async fn holds_of(&self, evidence_id: i64) -> Result<Vec<Hold>> {
        holds_of(&mut *self.acquire().await?, evidence_id).await
    }
}
