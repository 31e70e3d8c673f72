//! `POST /v1/identify`: a patrol officer's fingerprint and/or face probe → decision,
//! identity, flags. The print is tried first; the face decides when the print is unusable
//! or inconclusive (`fallback` says why).
//!
//! What a patrol officer sees (only what the role may see): the decision,
//! whether to escort the person and why, and for a match the person's identity data,
//! flags and score. Never templates, probe quality internals, the other candidates, or
//! anyone else's data: the search asks for the top candidate only, so no other
//! person's record is even read from the catalog.

use std::sync::Arc;

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::{FINGER_FIELDS, finger_position, read_parts};
use crate::error::{ApiError, Result};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::Problem;
use crate::service::accounts::Role;
use epatrol_store::catalog::Flags;

use crate::service::identification::PersonView as Person;
use crate::service::{FingerProbe, IdentifyReport, Probe};

/// Multipart form of an identification (schema only; the handler reads the parts).
#[derive(ToSchema)]
#[allow(dead_code)] // never constructed: it exists to describe the form in OpenAPI
pub struct IdentifyForm {
    /// Frontal face photo (JPEG, PNG, BMP, TIFF, PGM, WebP); required without `finger`.
    #[schema(value_type = Option<String>, format = Binary)]
    face: Option<Vec<u8>>,
    /// Fingerprint image (PNG, BMP, TIFF, PGM, JPEG, WSQ; 500 ppi unless the file says
    /// otherwise); tried first. Required without `face`. Position unknown: compared with
    /// every enrolled finger. Send it as `finger_1` … `finger_10` instead to give the ISO
    /// position (1 right thumb … 10 left little) and compare with that finger only.
    #[schema(value_type = Option<String>, format = Binary)]
    finger: Option<Vec<u8>>,
}

/// The answer a patrol officer gets.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentifyResponse {
    /// `match`, `no_match`, or `rejected` (photo unusable).
    pub decision: String,
    /// Modality that decided (`finger` or `face`).
    pub modality: String,
    /// Why the face decided although a print was given (print unusable or inconclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Escort the person to the station (wanted, missing, or identity not established).
    pub escort_to_station: bool,
    /// Why escorting is required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escort_reason: Option<String>,
    /// Why the photo was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The matched person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonView>,
    /// The matched person's flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Flags>,
    /// Similarity of the match (cosine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// Audit row of this identification (quote it in reports).
    pub audit_id: i64,
}

impl From<IdentifyReport> for IdentifyResponse {
    fn from(r: IdentifyReport) -> Self {
        Self {
            decision: r.decision.into(),
            modality: r.modality.into(),
            escort_to_station: r.escort_to_station,
            escort_reason: r.escort_reason,
            reason: r.reason,
            fallback: r.fallback,
            person: r.person.map(Into::into),
            flags: r.flags,
            score: r.score,
            audit_id: r.audit_id,
        }
    }
}

/// The identity data an officer sees for a match.
#[derive(Debug, Serialize, ToSchema)]
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

impl From<Person> for PersonView {
    fn from(p: Person) -> Self {
        Self {
            external_id: p.external_id,
            surname: p.surname,
            given_name: p.given_name,
            patronymic: p.patronymic,
            date_of_birth: p.date_of_birth,
            address: p.address,
        }
    }
}

/// Identifies a person 1:N from a fingerprint and/or a face photo (patrol role). Every answer, including a
/// rejected photo, is written to the audit log with the officer and the device.
#[utoipa::path(
    post, path = "/v1/identify", tag = "identify",
    request_body(content = IdentifyForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, body = IdentifyResponse),
        (status = 400, body = Problem, content_type = "application/problem+json",
         description = "form malformed, or the file is not a decodable image of usable size"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "model queue full; see Retry-After"),
    ),
    security(("bearer" = []))
)]
pub async fn identify(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    form: std::result::Result<Multipart, MultipartRejection>,
) -> Result<Json<IdentifyResponse>> {
    caller.require(&[Role::Patrol])?;
    let allowed: Vec<&str> = std::iter::once("face").chain(FINGER_FIELDS).collect();
    let parts = read_parts(form?, &allowed, 2).await?;
    let face = parts.iter().find(|p| p.0 == "face").map(|p| p.1.to_vec());
    let finger = parts.iter().find_map(|p| finger_position(&p.0).map(|pos| (pos, p.1.to_vec())));
    if parts.len() == 2 && (face.is_none() || finger.is_none()) {
        return Err(ApiError::BadRequest(
            "give one `face` and one fingerprint (`finger` or `finger_N`) at most".into(),
        ));
    }
    if face.is_none() && finger.is_none() {
        return Err(ApiError::BadRequest("form field `face` or `finger` (an image) is required".into()));
    }
    let face = face.map(|bytes| Probe { label: "face".into(), bytes });
    let finger = finger.map(|(position, bytes)| FingerProbe { label: "finger".into(), bytes, position });
    // the models run behind the gate, the catalog I/O after it; top-1 only: the decision
    // uses the best candidate and nobody else's record needs reading
    let report = state.ids.identify_on(&state.gate, face, finger, 1, &caller.login, &caller.device_id).await?;
    // subscribers of /v1/events read the outbox row the service just wrote
    state.events.notify_waiters();
    state.metrics.identification(report.decision, report.modality);
    Ok(Json(report.into()))
}
