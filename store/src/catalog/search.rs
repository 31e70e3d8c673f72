//! Evidence search and case membership: which footage a caller may find and view.

use sqlx::QueryBuilder;
use time::OffsetDateTime;

use super::Catalog;
use super::db::{Conn, Db, Fixed};
use super::evidence::Evidence;
use super::incidents::Case;
use crate::error::{Result, StoreError};
use crate::model::Tier;

/// Filters of an evidence search (all optional; active items only, newest id first).
#[derive(Debug, Clone, Default)]
pub struct EvidenceQuery {
    /// Officer the footage belongs to.
    pub officer: Option<String>,
    /// Recording device.
    pub device: Option<String>,
    /// Storage tier.
    pub tier: Option<Tier>,
    /// Linked to the case with this reference.
    pub case_ref: Option<String>,
    /// Recording ends at or after this time.
    pub from: Option<OffsetDateTime>,
    /// Recording starts at or before this time.
    pub to: Option<OffsetDateTime>,
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

/// Active evidence matching `q`, newest first.
pub async fn search(conn: &mut Conn, q: &EvidenceQuery) -> Result<Vec<Evidence>> {
    let mut b: QueryBuilder<Db> = QueryBuilder::new("SELECT e.* FROM evidence e WHERE e.state = 'active'");
    if let Some(v) = &q.officer {
        b.push(" AND e.officer = ").push_bind(v);
    }
    if let Some(v) = &q.device {
        b.push(" AND e.device = ").push_bind(v);
    }
    if let Some(v) = q.tier {
        b.push(" AND e.tier = ").push_bind(v);
    }
    if let Some(v) = q.from {
        b.push(" AND e.recorded_to >= ").push_bind(Fixed(v));
    }
    if let Some(v) = q.to {
        b.push(" AND e.recorded_from <= ").push_bind(Fixed(v));
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
    Ok(b.build_query_as().fetch_all(&mut *conn).await?)
}

/// Whether `login` is a member of a case that evidence `evidence_id` is linked to.
pub async fn may_view_via_case(conn: &mut Conn, evidence_id: i64, login: &str) -> Result<bool> {
    let sql = format!("SELECT {MEMBER_SQL} ?) FROM evidence e WHERE e.id = ?");
    let r: Option<bool> = sqlx::query_scalar(&sql).bind(login).bind(evidence_id).fetch_optional(&mut *conn).await?;
    Ok(r.unwrap_or(false))
}

/// Adds `login` to the case `reference` (idempotent); the case must exist.
pub async fn add_case_member(
    conn: &mut Conn,
    reference: &str,
    login: &str,
    by: &str,
    at: OffsetDateTime,
) -> Result<()> {
    let case_id: i64 = sqlx::query_scalar("SELECT id FROM cases WHERE reference = ?")
        .bind(reference)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("case {reference}")))?;
    sqlx::query(
        "INSERT INTO case_members (case_id, login, added_at, added_by) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(case_id)
    .bind(login)
    .bind(Fixed(at))
    .bind(by)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Logins assigned to the case `reference`.
pub async fn case_members(conn: &mut Conn, reference: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT m.login FROM case_members m JOIN cases c ON c.id = m.case_id WHERE c.reference = ? ORDER BY m.login",
    )
    .bind(reference)
    .fetch_all(&mut *conn)
    .await?)
}

impl Catalog {
    /// Active evidence matching `q`, newest first.
    pub async fn search_evidence(&self, q: &EvidenceQuery) -> Result<Vec<Evidence>> {
        search(&mut *self.acquire().await?, q).await
    }

    /// Whether `login` is a member of a case that evidence `evidence_id` is linked to.
    pub async fn may_view_via_case(&self, evidence_id: i64, login: &str) -> Result<bool> {
        may_view_via_case(&mut *self.acquire().await?, evidence_id, login).await
    }

    /// Adds `login` to the case `reference` (idempotent); the case must exist.
    pub async fn add_case_member(&self, reference: &str, login: &str, by: &str, at: OffsetDateTime) -> Result<()> {
        add_case_member(&mut *self.acquire().await?, reference, login, by, at).await
    }

    /// The case `reference`, open or closed.
    pub async fn case_by_reference(&self, reference: &str) -> Result<Option<Case>> {
        super::incidents::case_by_reference(&mut *self.acquire().await?, reference).await
    }

    /// Logins assigned to the case `reference`.
    pub async fn case_members(&self, reference: &str) -> Result<Vec<String>> {
        case_members(&mut *self.acquire().await?, reference).await
    }
}
