//! `POST /v1/identify`: a patrol officer's face probe → decision, identity, flags.
//!
//! What a patrol officer sees (issue 7: "only what the role may see"): the decision,
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

use super::read_parts;
use crate::error::{ApiError, Result};
use crate::http::AppState;
use crate::http::auth::{Caller, Role};
use crate::http::problem::Problem;
use crate::service::{IdentifyReport, Probe};

/// Multipart form of an identification (schema only; the handler reads the parts).
#[derive(ToSchema)]
#[allow(dead_code)] // never constructed: it exists to describe the form in OpenAPI
pub struct IdentifyForm {
    /// Frontal face photo (JPEG, PNG, BMP, TIFF, PGM, WebP).
    #[schema(value_type = String, format = Binary)]
    face: Vec<u8>,
}

/// Identity data of a matched person.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonOut {
    /// Registry id.
    pub external_id: String,
    /// Family name.
    pub surname: String,
    /// Given name.
    pub given_name: String,
    /// Patronymic.
    pub patronymic: String,
    /// Date of birth (ISO 8601).
    pub date_of_birth: String,
    /// Registered address.
    pub address: String,
}

/// Operational flags of a matched person.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlagsOut {
    /// Has a criminal conviction.
    pub convicted: bool,
    /// Wanted: escort to the station.
    pub wanted: bool,
    /// Reported missing: escort to the station.
    pub missing: bool,
    /// Under preventive supervision.
    pub preventive_supervision: bool,
    /// Under probation supervision.
    pub probation_supervision: bool,
    /// Under administrative supervision.
    pub administrative_supervision: bool,
}

/// The answer a patrol officer gets.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentifyResponse {
    /// `match`, `no_match`, or `rejected` (photo unusable).
    pub decision: String,
    /// Modality that decided (`face`).
    pub modality: String,
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
    pub person: Option<PersonOut>,
    /// The matched person's flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<FlagsOut>,
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
            person: r.person.map(|p| PersonOut {
                external_id: p.external_id,
                surname: p.surname,
                given_name: p.given_name,
                patronymic: p.patronymic,
                date_of_birth: p.date_of_birth,
                address: p.address,
            }),
            flags: r.flags.map(|f| FlagsOut {
                convicted: f.convicted,
                wanted: f.wanted,
                missing: f.missing,
                preventive_supervision: f.preventive_supervision,
                probation_supervision: f.probation_supervision,
                administrative_supervision: f.administrative_supervision,
            }),
            score: r.score,
            audit_id: r.audit_id,
        }
    }
}

/// Identifies a person 1:N from a face photo (patrol role). Every answer, including a
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
    let parts = read_parts(form?, &["face"], 1).await?;
    let Some((_, bytes)) = parts.into_iter().next() else {
        return Err(ApiError::BadRequest("form field `face` (an image) is required".into()));
    };
    let probe = Probe { label: "face".into(), bytes: bytes.to_vec() };
    let svc = state.ids.clone();
    let report = state
        .gate
        .run(move || {
            // runs on a blocking-pool thread, which may block on the runtime's handle;
            // top-1 only: the decision uses the best candidate and nobody else's record
            // needs reading
            tokio::runtime::Handle::current().block_on(svc.identify_face(&probe, 1, &caller.login, &caller.device_id))
        })
        .await?;
    Ok(Json(report.into()))
}
