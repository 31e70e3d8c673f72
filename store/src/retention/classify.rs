//! Classification into the differential reserve storage, legal holds and case links.
//! Every change is one transaction with its custody entry; retention only ever extends.

use serde::Serialize;
use sqlx::Row;

use super::{Offence, Retention, Tier, fmt_ts, parse_ts};
use crate::catalog::{Evidence, NewIncident};
use crate::error::{Result, StoreError};
use crate::vault::{Digest, EvidenceVault};

/// An incident report as filed by a supervisor.
#[derive(Debug, Clone)]
pub struct IncidentReport {
    /// Report number (unique).
    pub reference: String,
    /// Offence type.
    pub offence: Offence,
    /// Officer whose footage it concerns.
    pub officer: String,
    /// Window start (RFC 3339).
    pub starts_at: String,
    /// Window end (RFC 3339).
    pub ends_at: String,
    /// Report text.
    pub report: String,
}

/// One item's retention before and after a classification.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reclassified {
    /// Evidence digest.
    pub digest: String,
    /// Tier before.
    pub from_tier: String,
    /// Tier after.
    pub to_tier: String,
    /// Deadline before.
    pub from_expires: String,
    /// Deadline after.
    pub to_expires: String,
}

/// Result of filing an incident.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentOutcome {
    /// Incident row id.
    pub incident_id: i64,
    /// Footage it selected, with its retention change.
    pub items: Vec<Reclassified>,
}

impl EvidenceVault {
    /// Files an incident report: selects the officer's active footage overlapping the
    /// window, links it, and moves it to the offence's tier (never lower, never shorter).
    pub async fn file_incident(&self, actor: &str, r: &IncidentReport) -> Result<IncidentOutcome> {
        let starts = parse_ts(&r.starts_at)?;
        let ends = parse_ts(&r.ends_at)?;
        if ends <= starts {
            return Err(StoreError::Invalid("incident window ends before it starts".into()));
        }
        let now = fmt_ts(self.clock.now());
        let incident_id = self
            .catalog
            .insert_incident(&NewIncident {
                reference: r.reference.clone(),
                offence: r.offence.as_str().into(),
                officer: r.officer.clone(),
                starts_at: fmt_ts(starts),
                ends_at: fmt_ts(ends),
                report: r.report.clone(),
                created_by: actor.into(),
                created_at: now.clone(),
            })
            .await?;
        let footage = self.catalog.evidence_overlapping(Some(&r.officer), &fmt_ts(starts), &fmt_ts(ends)).await?;
        let mut items = Vec::new();
        for e in footage {
            let why = serde_json::json!({"incident": r.reference, "offence": r.offence.as_str()});
            let change = self.upgrade(actor, &e, r.offence.tier(), &why, Some(incident_id)).await?;
            items.push(change);
        }
        Ok(IncidentOutcome { incident_id, items })
    }

    /// Manual reclassification (audited). Asking for a lower tier than the item has is
    /// refused: retention never shortens.
    pub async fn reclassify(&self, actor: &str, digest: &Digest, tier: Tier, reason: &str) -> Result<Reclassified> {
        let e = self.active_evidence(digest).await?;
        let current: Tier = e.tier.parse()?;
        if tier < current {
            return Err(StoreError::Refused(format!(
                "{} is in tier {current}; retention only extends, not to {tier}",
                e.digest
            )));
        }
        let why = serde_json::json!({"manual": true, "reason": reason});
        let change = self.upgrade(actor, &e, tier, &why, None).await?;
        self.catalog
            .audit(
                actor,
                "",
                "reclassify",
                None,
                "ok",
                &serde_json::json!({"digest": e.digest, "tier": tier.as_str(), "reason": reason}),
            )
            .await?;
        Ok(change)
    }

    async fn upgrade(
        &self,
        actor: &str,
        e: &Evidence,
        wanted: Tier,
        why: &serde_json::Value,
        incident: Option<i64>,
    ) -> Result<Reclassified> {
        let recorded_to = parse_ts(&e.recorded_to)?;
        let before = Retention { tier: e.tier.parse()?, expires_at: parse_ts(&e.expires_at)? };
        let after = before.upgrade(wanted, recorded_to);
        let mut tx = self.catalog.pool().begin().await?;
        // the WHERE repeats extend-only in SQL, so a concurrent classifier cannot be undone
        sqlx::query(
            "UPDATE evidence SET tier = ?, expires_at = MAX(expires_at, ?) WHERE id = ? AND state = 'active' \
             AND CASE tier WHEN 'general' THEN 0 WHEN 'administrative' THEN 1 ELSE 2 END <= ?",
        )
        .bind(after.tier.as_str())
        .bind(fmt_ts(after.expires_at))
        .bind(e.id)
        .bind(tier_rank(after.tier))
        .execute(&mut *tx)
        .await?;
        if let Some(i) = incident {
            sqlx::query(
                "INSERT OR IGNORE INTO evidence_incidents (evidence_id, incident_id, linked_at) VALUES (?, ?, ?)",
            )
            .bind(e.id)
            .bind(i)
            .bind(fmt_ts(self.clock.now()))
            .execute(&mut *tx)
            .await?;
        }
        let r =
            sqlx::query("SELECT tier, expires_at FROM evidence WHERE id = ?").bind(e.id).fetch_one(&mut *tx).await?;
        let change = Reclassified {
            digest: e.digest.clone(),
            from_tier: e.tier.clone(),
            to_tier: r.try_get("tier")?,
            from_expires: e.expires_at.clone(),
            to_expires: r.try_get("expires_at")?,
        };
        let detail = serde_json::json!({"from_tier": change.from_tier, "to_tier": change.to_tier,
            "from_expires": change.from_expires, "to_expires": change.to_expires, "why": why});
        self.custody.append_on(&mut tx, actor, "classify", &e.digest, &detail).await?;
        tx.commit().await?;
        let digest: Digest = e.digest.parse()?;
        if let Err(err) =
            self.vault.apply_retention(&digest, change.to_tier.parse()?, parse_ts(&change.to_expires)?).await
        {
            tracing::warn!(digest = %e.digest, error = %err, "could not reflect retention on the stored object");
        }
        Ok(change)
    }

    /// Places a legal hold; the item cannot be swept until every hold is released.
    pub async fn place_hold(&self, actor: &str, digest: &Digest, reason: &str) -> Result<i64> {
        let e = self.active_evidence(digest).await?;
        let mut tx = self.catalog.pool().begin().await?;
        // only while active: a sweeper that already claimed the item wins, and says so
        let r = sqlx::query(
            "INSERT INTO holds (evidence_id, reason, placed_by, placed_at) \
             SELECT id, ?, ?, ? FROM evidence WHERE id = ? AND state = 'active'",
        )
        .bind(reason)
        .bind(actor)
        .bind(fmt_ts(self.clock.now()))
        .bind(e.id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Refused(format!("{digest} is being deleted; no hold placed")));
        }
        let id = r.last_insert_rowid();
        self.custody
            .append_on(&mut tx, actor, "hold", &e.digest, &serde_json::json!({"hold_id": id, "reason": reason}))
            .await?;
        tx.commit().await?;
        if let Err(err) = self.vault.apply_legal_hold(digest, true).await {
            tracing::warn!(%digest, error = %err, "could not set the S3 legal hold");
        }
        Ok(id)
    }

    /// Releases every open hold on the item; returns how many.
    pub async fn release_holds(&self, actor: &str, digest: &Digest, reason: &str) -> Result<u64> {
        let e = self.active_evidence(digest).await?;
        let mut tx = self.catalog.pool().begin().await?;
        let r = sqlx::query(
            "UPDATE holds SET released_by = ?, released_at = ? WHERE evidence_id = ? AND released_at IS NULL",
        )
        .bind(actor)
        .bind(fmt_ts(self.clock.now()))
        .bind(e.id)
        .execute(&mut *tx)
        .await?;
        let n = r.rows_affected();
        if n > 0 {
            self.custody
                .append_on(&mut tx, actor, "release", &e.digest, &serde_json::json!({"released": n, "reason": reason}))
                .await?;
        }
        tx.commit().await?;
        if n > 0
            && let Err(err) = self.vault.apply_legal_hold(digest, false).await
        {
            tracing::warn!(%digest, error = %err, "could not lift the S3 legal hold");
        }
        Ok(n)
    }

    /// Links the item to a case (opened if new); an open case blocks deletion.
    pub async fn link_case(&self, actor: &str, digest: &Digest, case_ref: &str) -> Result<i64> {
        let e = self.active_evidence(digest).await?;
        let now = fmt_ts(self.clock.now());
        let case_id = self.catalog.open_case(case_ref, &now).await?;
        let mut tx = self.catalog.pool().begin().await?;
        let r = sqlx::query(
            "INSERT OR IGNORE INTO case_evidence (case_id, evidence_id, linked_at, linked_by) VALUES (?, ?, ?, ?)",
        )
        .bind(case_id)
        .bind(e.id)
        .bind(&now)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() > 0 {
            self.custody
                .append_on(&mut tx, actor, "case_link", &e.digest, &serde_json::json!({"case": case_ref}))
                .await?;
        }
        tx.commit().await?;
        Ok(case_id)
    }

    /// The active evidence row for `digest`, or `NotFound`.
    pub async fn active_evidence(&self, digest: &Digest) -> Result<Evidence> {
        match self.catalog.evidence_by_digest(&digest.to_hex()).await? {
            Some(e) if e.state == "active" => Ok(e),
            Some(e) => Err(StoreError::NotFound(format!("{digest} ({})", e.state))),
            None => Err(StoreError::NotFound(format!("evidence {digest}"))),
        }
    }
}

fn tier_rank(t: Tier) -> i64 {
    match t {
        Tier::General => 0,
        Tier::Administrative => 1,
        Tier::Crime => 2,
    }
}
