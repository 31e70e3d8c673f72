//! The record phase of an identification, on the async runtime after the model phase:
//! one batched read of the candidates' records, the decision, one audit row with its
//! `identification.registered` event (one transaction), and the answer.

use std::collections::HashMap;

use epatrol_engine::identify::{Candidate, Decision, decide};
use epatrol_store::Catalog;
use epatrol_store::catalog::{NewEvent, Subject};

use super::report::{CandidateView, IdentifyReport};
use crate::error::Result;
use crate::service::probed::Probed;

/// Event type of a registered identification.
pub const IDENTIFICATION_REGISTERED: &str = "identification.registered";

/// Who asked for an identification, and whether a face probe will decide if this
/// attempt does not match.
pub(super) struct Who<'a> {
    pub actor: &'a str,
    pub device: &'a str,
    pub face_follows: bool,
}

/// Records one modality's attempt and builds its answer.
pub(super) async fn record(
    catalog: &Catalog,
    modality: &'static str,
    probed: Probed,
    threshold: f32,
    who: &Who<'_>,
) -> Result<IdentifyReport> {
    match probed {
        Probed::Rejected(reason) => rejected(catalog, modality, reason, threshold, who).await,
        Probed::Searched { candidates, quality, times } => {
            let mut r = report(catalog, modality, &candidates, threshold, quality, who).await?;
            r.times = Some(times);
            Ok(r)
        }
    }
}

/// The answer for an unusable probe: rejected, escort (identity not established).
async fn rejected(
    catalog: &Catalog,
    modality: &'static str,
    reason: String,
    threshold: f32,
    who: &Who<'_>,
) -> Result<IdentifyReport> {
    let detail = serde_json::json!({"modality": modality, "reason": reason});
    let escort_reason = format!("identity could not be established: the {modality} image is unusable");
    let event = (!who.face_follows).then(|| registered(who, "rejected", modality, None, Some(&escort_reason)));
    let audit_id =
        catalog.audit_with_event(who.actor, who.device, "identify", None, "rejected", &detail, event).await?;
    Ok(IdentifyReport {
        decision: "rejected",
        modality,
        fallback: None,
        escort_to_station: true,
        escort_reason: Some(escort_reason),
        reason: Some(reason),
        person: None,
        flags: None,
        score: None,
        threshold,
        candidates: Vec::new(),
        quality: None,
        times: None,
        audit_id,
    })
}

/// The candidates still enrolled, in rank order, with their records (one read; a
/// person deleted between the search and now is no longer a candidate).
async fn live_candidates(catalog: &Catalog, candidates: &[Candidate]) -> Result<Vec<(Candidate, Subject)>> {
    let ids: Vec<i64> = candidates.iter().map(|c| c.subject_id.0).collect();
    let by_id: HashMap<i64, Subject> = catalog.subjects_by_ids(&ids).await?.into_iter().map(|s| (s.id, s)).collect();
    Ok(candidates.iter().filter_map(|c| Some((*c, by_id.get(&c.subject_id.0)?.clone()))).collect())
}

/// Decision, person view, flags and escort advice from ranked candidates; audited.
async fn report(
    catalog: &Catalog,
    modality: &'static str,
    candidates: &[Candidate],
    threshold: f32,
    quality: Option<serde_json::Value>,
    who: &Who<'_>,
) -> Result<IdentifyReport> {
    let found = live_candidates(catalog, candidates).await?;
    let live: Vec<Candidate> = found.iter().map(|(c, _)| *c).collect();
    let decision = decide(&live, threshold);
    let mut views = Vec::with_capacity(found.len());
    let mut matched: Option<Subject> = None;
    for (i, (c, s)) in found.into_iter().enumerate() {
        views.push(CandidateView { rank: i + 1, external_id: s.data.external_id.clone(), score: c.score });
        if i == 0 && matches!(decision, Decision::Match { .. }) {
            matched = Some(s);
        }
    }
    let (decision_str, escort_reason, score) = match (&decision, &matched) {
        (Decision::Match { score, .. }, Some(s)) => {
            let f = s.data.flags;
            let why = match (f.wanted, f.missing) {
                (true, true) => Some("wanted and reported missing".to_string()),
                (true, false) => Some("wanted".to_string()),
                (false, true) => Some("reported missing".to_string()),
                _ => None,
            };
            ("match", why, Some(*score))
        }
        _ => ("no_match", Some("identity could not be established: no enrolled person matches".to_string()), None),
    };
    let detail = serde_json::json!({
        "modality": modality,
        "score": score,
        "threshold": threshold,
        "candidates": views.len(),
        "escort": escort_reason.is_some(),
    });
    let event = (decision_str == "match" || !who.face_follows)
        .then(|| registered(who, decision_str, modality, matched.as_ref(), escort_reason.as_deref()));
    let audit_id = catalog
        .audit_with_event(
            who.actor,
            who.device,
            "identify",
            matched.as_ref().map(|s| s.id),
            decision_str,
            &detail,
            event,
        )
        .await?;
    Ok(IdentifyReport {
        decision: decision_str,
        modality,
        fallback: None,
        reason: None,
        escort_to_station: escort_reason.is_some(),
        escort_reason,
        flags: matched.as_ref().map(|s| s.data.flags),
        person: matched.map(Into::into),
        score,
        threshold,
        candidates: views,
        quality,
        times: None,
        audit_id,
    })
}

/// The `identification.registered` event of a final answer: who asked from which
/// device, the decision and, for a match, the registry id and flags (no names or
/// addresses: subscribers who need the record look it up with their own rights).
fn registered(
    who: &Who<'_>,
    decision: &str,
    modality: &str,
    matched: Option<&Subject>,
    escort_reason: Option<&str>,
) -> NewEvent {
    NewEvent {
        kind: IDENTIFICATION_REGISTERED,
        payload: serde_json::json!({
            "officer": who.actor,
            "device": who.device,
            "decision": decision,
            "modality": modality,
            "subject_id": matched.map(|s| s.id),
            "external_id": matched.map(|s| s.data.external_id.clone()),
            "flags": matched.map(|s| s.data.flags),
            "escort_to_station": escort_reason.is_some(),
            "escort_reason": escort_reason,
        }),
    }
}
