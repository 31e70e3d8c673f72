//! Classification into the differential reserve storage, legal holds and case links.
//! Every change is one transaction with its custody entry; retention only ever extends.

use serde::Serialize;
use time::OffsetDateTime;

use super::{Offence, Retention, Tier};
use crate::catalog::{Evidence, Incident, evidence, incidents};
use crate::clock::{fmt_ts, parse_ts};
use crate::error::{Result, StoreError};
use crate::model::EvidenceState;
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
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub from_tier: Tier,
    /// Tier after.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub to_tier: Tier,
    /// Deadline before.
    #[serde(with = "crate::clock::fixed")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub from_expires: OffsetDateTime,
    /// Deadline after.
    #[serde(with = "crate::clock::fixed")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub to_expires: OffsetDateTime,
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
        let now = self.clock.now();
        let incident = Incident {
            id: 0,
            reference: r.reference.clone(),
            offence: r.offence,
            officer: r.officer.clone(),
            starts_at: starts,
            ends_at: ends,
            report: r.report.clone(),
        };
        let incident_id = incidents::insert(&mut *self.catalog.acquire().await?, &incident, actor, now).await?;
        let footage = self.catalog.evidence_overlapping(Some(&r.officer), starts, ends).await?;
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
        let current = e.tier;
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
        let before = Retention { tier: e.tier, expires_at: e.expires_at };
        let after = before.upgrade(wanted, e.recorded_to);
        let mut tx = self.catalog.begin().await?;
        // extend-only is repeated in SQL, so a concurrent classifier cannot be undone
        let (to_tier, to_expires) = evidence::extend_retention(&mut tx, e.id, after.tier, after.expires_at).await?;
        if let Some(i) = incident {
            incidents::link_evidence(&mut tx, e.id, i, self.clock.now()).await?;
        }
        let change = Reclassified {
            digest: e.digest.clone(),
            from_tier: e.tier,
            to_tier,
            from_expires: e.expires_at,
            to_expires,
        };
        let detail = serde_json::json!({"from_tier": change.from_tier, "to_tier": change.to_tier,
            "from_expires": fmt_ts(change.from_expires), "to_expires": fmt_ts(change.to_expires), "why": why});
        self.custody.append_on(&mut tx, actor, "classify", &e.digest, &detail).await?;
        tx.commit().await?;
        let digest: Digest = e.digest.parse()?;
        if let Err(err) = self.vault.apply_retention(&digest, change.to_tier, change.to_expires).await {
            tracing::warn!(digest = %e.digest, error = %err, "could not reflect retention on the stored object");
        }
        Ok(change)
    }

    /// Places a legal hold; the item cannot be swept until every hold is released.
    pub async fn place_hold(&self, actor: &str, digest: &Digest, reason: &str) -> Result<i64> {
        let e = self.active_evidence(digest).await?;
        let mut tx = self.catalog.begin().await?;
        // only while active: a sweeper that already claimed the item wins, and says so
        let Some(id) = incidents::place_hold(&mut tx, e.id, reason, actor, self.clock.now()).await? else {
            return Err(StoreError::Refused(format!("{digest} is being deleted; no hold placed")));
        };
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
        let mut tx = self.catalog.begin().await?;
        let n = incidents::release_holds(&mut tx, e.id, actor, self.clock.now()).await?;
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
        let now = self.clock.now();
        let case_id = self.catalog.open_case(case_ref, now).await?;
        let mut tx = self.catalog.begin().await?;
        if incidents::link_case(&mut tx, case_id, e.id, actor, now).await? {
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
            Some(e) if e.state == EvidenceState::Active => Ok(e),
            Some(e) => Err(StoreError::NotFound(format!("{digest} ({})", e.state))),
            None => Err(StoreError::NotFound(format!("evidence {digest}"))),
        }
    }
}
