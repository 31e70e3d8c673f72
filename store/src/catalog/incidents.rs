//! Incident reports, cases and legal holds: what keeps footage beyond general retention.

use serde::Serialize;
use sqlx::Row;

use super::Catalog;
use crate::error::{Result, StoreError};

/// An incident report as submitted.
#[derive(Debug, Clone)]
pub struct NewIncident {
    /// Unique reference (report number).
    pub reference: String,
    /// `crime`, `administrative`, `control_check` or `other`.
    pub offence: String,
    /// Officer whose footage is concerned.
    pub officer: String,
    /// Start of the incident window (UTC fixed width).
    pub starts_at: String,
    /// End of the incident window.
    pub ends_at: String,
    /// Report text.
    pub report: String,
    /// Who filed it.
    pub created_by: String,
    /// When it was filed.
    pub created_at: String,
}

/// A stored incident.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incident {
    /// Row id.
    pub id: i64,
    /// Report number.
    pub reference: String,
    /// Offence type.
    pub offence: String,
    /// Officer.
    pub officer: String,
    /// Window start.
    pub starts_at: String,
    /// Window end.
    pub ends_at: String,
    /// Report text.
    pub report: String,
}

/// A case file.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Case {
    /// Row id.
    pub id: i64,
    /// Case reference.
    pub reference: String,
    /// Opened.
    pub opened_at: String,
    /// Closed, if closed (links to a closed case no longer block deletion).
    pub closed_at: Option<String>,
}

/// A legal hold on one evidence item.
#[derive(Debug, Clone, Serialize)]
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
    pub placed_at: String,
    /// Released by, if released.
    pub released_by: Option<String>,
    /// Released at, if released.
    pub released_at: Option<String>,
}

impl Catalog {
    /// Stores an incident; returns its id. A duplicate reference is a conflict.
    pub async fn insert_incident(&self, i: &NewIncident) -> Result<i64> {
        let r = sqlx::query(
            "INSERT INTO incidents (reference, offence, officer, starts_at, ends_at, report, created_at, created_by) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&i.reference)
        .bind(&i.offence)
        .bind(&i.officer)
        .bind(&i.starts_at)
        .bind(&i.ends_at)
        .bind(&i.report)
        .bind(&i.created_at)
        .bind(&i.created_by)
        .execute(self.pool())
        .await;
        match r {
            Ok(r) => Ok(r.last_insert_rowid()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict(format!("incident {} already filed", i.reference)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Incidents linked to an evidence item.
    pub async fn incidents_of(&self, evidence_id: i64) -> Result<Vec<Incident>> {
        let rows = sqlx::query(
            "SELECT i.* FROM incidents i JOIN evidence_incidents ei ON ei.incident_id = i.id WHERE ei.evidence_id = ? ORDER BY i.id",
        )
        .bind(evidence_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Incident {
                    id: r.try_get("id")?,
                    reference: r.try_get("reference")?,
                    offence: r.try_get("offence")?,
                    officer: r.try_get("officer")?,
                    starts_at: r.try_get("starts_at")?,
                    ends_at: r.try_get("ends_at")?,
                    report: r.try_get("report")?,
                })
            })
            .collect()
    }

    /// Opens a case (idempotent on the reference); returns its id.
    pub async fn open_case(&self, reference: &str, at: &str) -> Result<i64> {
        sqlx::query("INSERT INTO cases (reference, opened_at) VALUES (?, ?) ON CONFLICT (reference) DO NOTHING")
            .bind(reference)
            .bind(at)
            .execute(self.pool())
            .await?;
        let r = sqlx::query("SELECT id FROM cases WHERE reference = ?").bind(reference).fetch_one(self.pool()).await?;
        Ok(r.try_get("id")?)
    }

    /// Closes a case; its links stop blocking deletion.
    pub async fn close_case(&self, reference: &str, at: &str) -> Result<()> {
        let r = sqlx::query("UPDATE cases SET closed_at = ? WHERE reference = ? AND closed_at IS NULL")
            .bind(at)
            .bind(reference)
            .execute(self.pool())
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("open case {reference}")));
        }
        Ok(())
    }

    /// Cases an evidence item is linked to.
    pub async fn cases_of(&self, evidence_id: i64) -> Result<Vec<Case>> {
        let rows = sqlx::query(
            "SELECT c.* FROM cases c JOIN case_evidence ce ON ce.case_id = c.id WHERE ce.evidence_id = ? ORDER BY c.id",
        )
        .bind(evidence_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Case {
                    id: r.try_get("id")?,
                    reference: r.try_get("reference")?,
                    opened_at: r.try_get("opened_at")?,
                    closed_at: r.try_get("closed_at")?,
                })
            })
            .collect()
    }

    /// Holds on an evidence item, released or not.
    pub async fn holds_of(&self, evidence_id: i64) -> Result<Vec<Hold>> {
        let rows = sqlx::query("SELECT * FROM holds WHERE evidence_id = ? ORDER BY id")
            .bind(evidence_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Hold {
                    id: r.try_get("id")?,
                    evidence_id: r.try_get("evidence_id")?,
                    reason: r.try_get("reason")?,
                    placed_by: r.try_get("placed_by")?,
                    placed_at: r.try_get("placed_at")?,
                    released_by: r.try_get("released_by")?,
                    released_at: r.try_get("released_at")?,
                })
            })
            .collect()
    }
}
