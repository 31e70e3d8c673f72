//! What enrolment, deletion and identification answer.

use serde::Serialize;

use epatrol_engine::face::{Quality, StageTimes};
use epatrol_store::catalog::{Flags, Subject};

/// What a subject deletion removed.
#[derive(Debug, Serialize)]
pub struct DeleteReport {
    /// Row id the subject had (kept in the audit trail).
    pub subject_id: i64,
    /// Face templates removed.
    pub face_templates: usize,
    /// Fingerprint templates removed.
    pub finger_templates: usize,
}

/// What enrolment stored.
#[derive(Debug, Serialize)]
pub struct EnrollReport {
    /// Catalog id of the new subject.
    pub subject_id: i64,
    /// External id.
    pub external_id: String,
    /// Template ids, one per image.
    pub template_ids: Vec<i64>,
    /// Quality of each image, in order.
    pub qualities: Vec<Quality>,
}

/// A candidate as reported to the caller.
#[derive(Debug, Serialize)]
pub struct CandidateView {
    /// Rank, 1 = best.
    pub rank: usize,
    /// External id of the subject.
    pub external_id: String,
    /// Similarity score (cosine).
    pub score: f32,
}

/// The identity data an officer sees for a match.
#[derive(Debug, Serialize)]
pub struct PersonView {
    /// External id.
    pub external_id: String,
    /// Family name.
    pub surname: String,
    /// Given name.
    pub given_name: String,
    /// Patronymic.
    pub patronymic: String,
    /// Date of birth.
    pub date_of_birth: String,
    /// Address.
    pub address: String,
}

impl From<Subject> for PersonView {
    fn from(s: Subject) -> Self {
        Self {
            external_id: s.data.external_id,
            surname: s.data.surname,
            given_name: s.data.given_name,
            patronymic: s.data.patronymic,
            date_of_birth: s.data.date_of_birth,
            address: s.data.address,
        }
    }
}

/// The answer to an identification.
#[derive(Debug, Serialize)]
pub struct IdentifyReport {
    /// `match`, `no_match` or `rejected` (probe unusable).
    pub decision: &'static str,
    /// Which modality decided: `finger` or `face`.
    pub modality: &'static str,
    /// Why the face decided when a fingerprint was given too (print unusable or
    /// inconclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Why the probe was rejected, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Escort the person to the station: wanted, missing, or identity not established.
    pub escort_to_station: bool,
    /// Why escorting is required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escort_reason: Option<String>,
    /// The matched person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonView>,
    /// The matched person's flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Flags>,
    /// Score of the match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// Decision threshold used.
    pub threshold: f32,
    /// Top candidates (scores and ids only).
    pub candidates: Vec<CandidateView>,
    /// Quality of the probe (face or finger measurements).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<serde_json::Value>,
    /// Per-stage timings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<StageTimes>,
    /// Audit row id of this identification.
    pub audit_id: i64,
}
