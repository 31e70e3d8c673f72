//! Evidence search and case membership: which footage a caller may find and view.

use sqlx::{QueryBuilder, Row, Sqlite};

use super::Catalog;
use super::evidence::{Evidence, row_to_evidence};
use super::incidents::Case;
use crate::error::{Result, StoreError};

/// Filters of an evidence search (all optional; active items only, newest id first).
/// Times are UTC fixed-width timestamps (`YYYY-MM-DDTHH:MM:SSZ`).
#[derive(Debug, Clone, Default)]
pub struct EvidenceQuery {
    /// Officer the footage belongs to.
    pub officer: Option<String>,
    /// Recording device.
    pub device: Option<String>,
    /// Storage tier (`general`, `administrative`, `crime`).
    pub tier: Option<String>,
    /// Linked to the case with this reference.
    pub case_ref: Option<String>,
    /// Recording ends at or after this time.
    pub from: Option<String>,
    /// Recording starts at or before this time.
    pub to: Option<String>,
    /// Only items linked to a case this login is a member of (investigators).
    pub member: Option<String>,
    /// Only ids below this one (paging: pass the last id of the previous page).
    pub before_id: Option<i64>,
    /// Most rows returned.
    pub limit: i64,
}

/// SQL condition: the evidence row `e` is linked to a case the bound login belongs to.
const MEMBER_SQL: &str = "EXISTS (SELECT 1 FROM case_evidence ce JOIN case_members m ON m.case_id = ce.case_id \
     WHERE ce.evidence_id = e.id AND m.login = ";

impl Catalog {
    /// Active evidence matching `q`, newest first.
    pub async fn search_evidence(&self, q: &EvidenceQuery) -> Result<Vec<Evidence>> {
        let mut b: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT e.* FROM evidence e WHERE e.state = 'active'");
        if let Some(v) = &q.officer {
            b.push(" AND e.officer = ").push_bind(v);
        }
        if let Some(v) = &q.device {
            b.push(" AND e.device = ").push_bind(v);
        }
        if let Some(v) = &q.tier {
            b.push(" AND e.tier = ").push_bind(v);
        }
        if let Some(v) = &q.from {
            b.push(" AND e.recorded_to >= ").push_bind(v);
        }
        if let Some(v) = &q.to {
            b.push(" AND e.recorded_from <= ").push_bind(v);
        }
        if let Some(v) = q.before_id {
            b.push(" AND e.id < ").push_bind(v);
        }
        if let Some(v) = &q.case_ref {
            b.push(
                " AND EXISTS (SELECT 1 FROM case_evidence ce JOIN cases c ON c.id = ce.case_id \
                 WHERE ce.evidence_id = e.id AND c.reference = ",
            )
            .push_bind(v)
            .push(")");
        }
        if let Some(v) = &q.member {
            b.push(" AND ").push(MEMBER_SQL).push_bind(v).push(")");
        }
        b.push(" ORDER BY e.id DESC LIMIT ").push_bind(q.limit);
        let rows = b.build().fetch_all(self.pool()).await?;
        rows.iter().map(row_to_evidence).collect()
    }

    /// Whether `login` is a member of a case that evidence `evidence_id` is linked to.
    pub async fn may_view_via_case(&self, evidence_id: i64, login: &str) -> Result<bool> {
        let sql = format!("SELECT {MEMBER_SQL} ?) FROM evidence e WHERE e.id = ?");
        let r = sqlx::query(&sql).bind(login).bind(evidence_id).fetch_optional(self.pool()).await?;
        Ok(match r {
            Some(r) => r.try_get::<i64, _>(0)? != 0,
            None => false,
        })
    }

    /// Adds `login` to the case `reference` (idempotent); the case must exist.
    pub async fn add_case_member(&self, reference: &str, login: &str, by: &str, at: &str) -> Result<()> {
        let case_id: i64 = sqlx::query("SELECT id FROM cases WHERE reference = ?")
            .bind(reference)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("case {reference}")))?
            .try_get(0)?;
        sqlx::query("INSERT OR IGNORE INTO case_members (case_id, login, added_at, added_by) VALUES (?, ?, ?, ?)")
            .bind(case_id)
            .bind(login)
            .bind(at)
            .bind(by)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The case `reference`, open or closed.
    pub async fn case_by_reference(&self, reference: &str) -> Result<Option<Case>> {
        let r = sqlx::query("SELECT id, reference, opened_at, closed_at FROM cases WHERE reference = ?")
            .bind(reference)
            .fetch_optional(self.pool())
            .await?;
        r.map(|r| {
            Ok(Case {
                id: r.try_get("id")?,
                reference: r.try_get("reference")?,
                opened_at: r.try_get("opened_at")?,
                closed_at: r.try_get("closed_at")?,
            })
        })
        .transpose()
    }

    /// Logins assigned to the case `reference`.
    pub async fn case_members(&self, reference: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT m.login FROM case_members m JOIN cases c ON c.id = m.case_id WHERE c.reference = ? ORDER BY m.login",
        )
        .bind(reference)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}
