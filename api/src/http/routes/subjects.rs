//! Subjects (administrators): enrol a person (record + face photos and/or prints), add
//! templates, replace flags, delete.

use std::sync::Arc;

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{FINGER_FIELDS, finger_position, read_parts};
use crate::error::{ApiError, Result};
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::Problem;
use crate::service::accounts::Role;
use crate::service::{FingerProbe, Probe};
use epatrol_store::catalog::{Flags, NewSubject};

/// Most images (face photos and fingerprints together) accepted in one enrolment.
pub const MAX_ENROL_IMAGES: usize = 10;

/// The `record` part of an enrolment: identity data and flags.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectRecord {
    /// Unique registry id.
    pub external_id: String,
    /// Family name.
    pub surname: String,
    /// Given name.
    pub given_name: String,
    /// Patronymic.
    #[serde(default)]
    pub patronymic: String,
    /// Date of birth (ISO 8601).
    #[serde(default)]
    pub date_of_birth: String,
    /// Registered address.
    #[serde(default)]
    pub address: String,
    /// Operational flags.
    #[serde(default)]
    pub flags: Flags,
}

/// Multipart form of an enrolment (schema only; the handler reads the parts).
#[derive(ToSchema)]
#[allow(dead_code)] // never constructed: it exists to describe the form in OpenAPI
pub struct EnrolForm {
    /// The subject record as JSON.
    record: SubjectRecord,
    /// Face photos (repeat the field).
    #[schema(value_type = Vec<String>, format = Binary)]
    face: Vec<Vec<u8>>,
    /// Fingerprint images (repeat the field), position unknown. Use `finger_1` …
    /// `finger_10` to give the ISO position (1 right thumb … 10 left little). One to ten
    /// images in all, faces and prints together.
    #[schema(value_type = Vec<String>, format = Binary)]
    finger: Vec<Vec<u8>>,
}

/// What was enrolled.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolled {
    /// Catalog id of the new subject.
    pub subject_id: i64,
    /// Registry id.
    pub external_id: String,
    /// Number of templates stored (faces and prints).
    pub templates: usize,
}

/// Enrols a person from a JSON record, face photos and/or fingerprints (admin role). Every
/// image must be usable, else nothing is stored.
#[utoipa::path(
    post, path = "/v1/subjects", tag = "subjects",
    request_body(content = EnrolForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = Enrolled),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn enrol(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    form: std::result::Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Enrolled>)> {
    caller.require(&[Role::Admin])?;
    let allowed: Vec<&str> = ["record", "face"].into_iter().chain(FINGER_FIELDS).collect();
    let parts = read_parts(form?, &allowed, MAX_ENROL_IMAGES + 1).await?;
    let mut record = None;
    let mut images = Vec::new();
    for (name, bytes) in parts {
        if name == "record" {
            if record.is_some() {
                return Err(ApiError::BadRequest("exactly one `record` part is required".into()));
            }
            let r: SubjectRecord = serde_json::from_slice(&bytes)
                .map_err(|_| ApiError::BadRequest("`record` must be a JSON subject record".into()))?;
            record = Some(r);
        } else {
            images.push((name, bytes));
        }
    }
    let r = record.ok_or_else(|| ApiError::BadRequest("a `record` part is required".into()))?;
    let (faces, fingers) = sort_images(images)?;
    let subject = NewSubject {
        external_id: r.external_id,
        surname: r.surname,
        given_name: r.given_name,
        patronymic: r.patronymic,
        date_of_birth: r.date_of_birth,
        address: r.address,
        flags: r.flags,
    };
    let report = state.ids.enroll_on(&state.gate, &subject, faces, fingers, &caller.login).await?;
    Ok((
        StatusCode::CREATED,
        Json(Enrolled {
            subject_id: report.subject_id,
            external_id: report.external_id,
            templates: report.template_ids.len(),
        }),
    ))
}

/// Face photos and prints from multipart parts named `face`, `finger`, `finger_1`…`finger_10`;
/// 1 to [`MAX_ENROL_IMAGES`] in all.
fn sort_images(parts: Vec<(String, axum::body::Bytes)>) -> Result<(Vec<Probe>, Vec<FingerProbe>)> {
    let mut faces = Vec::new();
    let mut fingers = Vec::new();
    for (name, bytes) in parts {
        if let Some(position) = finger_position(&name) {
            let label = format!("finger #{}", fingers.len() + 1);
            fingers.push(FingerProbe { label, bytes: bytes.to_vec(), position });
        } else {
            // labels are ours, not the client's file names, so errors quote nothing personal
            faces.push(Probe { label: format!("face #{}", faces.len() + 1), bytes: bytes.to_vec() });
        }
    }
    let images = faces.len() + fingers.len();
    if images == 0 || images > MAX_ENROL_IMAGES {
        return Err(ApiError::BadRequest(format!("1 to {MAX_ENROL_IMAGES} `face`/`finger` parts are required")));
    }
    Ok((faces, fingers))
}

/// Multipart form adding templates (schema only; the handler reads the parts).
#[derive(ToSchema)]
#[allow(dead_code)] // never constructed: it exists to describe the form in OpenAPI
pub struct TemplatesForm {
    /// Face photos (repeat the field).
    #[schema(value_type = Vec<String>, format = Binary)]
    face: Vec<Vec<u8>>,
    /// Fingerprint images, position unknown; `finger_1` … `finger_10` give the ISO
    /// position. One to ten images in all.
    #[schema(value_type = Vec<String>, format = Binary)]
    finger: Vec<Vec<u8>>,
}

/// Templates added to a person.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplatesAdded {
    /// Registry id.
    pub external_id: String,
    /// Number of templates stored.
    pub templates: usize,
}

/// Adds face photos and/or fingerprints to an enrolled person (admin), e.g. a new photo
/// or prints taken at the station. Every image must be usable, else nothing is stored.
#[utoipa::path(
    post, path = "/v1/subjects/{external_id}/templates", tag = "subjects",
    params(("external_id" = String, Path, description = "registry id")),
    request_body(content = TemplatesForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = TemplatesAdded),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn add_templates(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(external_id): Path<String>,
    form: std::result::Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<TemplatesAdded>)> {
    caller.require(&[Role::Admin])?;
    let allowed: Vec<&str> = ["face"].into_iter().chain(FINGER_FIELDS).collect();
    let (faces, fingers) = sort_images(read_parts(form?, &allowed, MAX_ENROL_IMAGES).await?)?;
    let (_, ids) = state.ids.add_templates_on(&state.gate, caller.actor(), &external_id, faces, fingers).await?;
    Ok((StatusCode::CREATED, Json(TemplatesAdded { external_id, templates: ids.len() })))
}

/// Deletes a person and all their templates (admin): they are never matched again. The
/// audit trail keeps the row id and the counts, not the record.
#[utoipa::path(
    delete, path = "/v1/subjects/{external_id}", tag = "subjects",
    params(("external_id" = String, Path, description = "registry id")),
    responses(
        (status = 200, body = DeleteReport),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_subject(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(external_id): Path<String>,
) -> Result<Json<DeleteReport>> {
    caller.require(&[Role::Admin])?;
    Ok(Json(state.ids.delete_subject_by(caller.actor(), &external_id).await?.into()))
}

/// What a subject deletion removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteReport {
    /// Row id the subject had (kept in the audit trail).
    pub subject_id: i64,
    /// Face templates removed.
    pub face_templates: usize,
    /// Fingerprint templates removed.
    pub finger_templates: usize,
}

impl From<crate::service::DeleteReport> for DeleteReport {
    fn from(r: crate::service::DeleteReport) -> Self {
        Self { subject_id: r.subject_id, face_templates: r.face_templates, finger_templates: r.finger_templates }
    }
}

/// Replaces a person's operational flags (admin), e.g. when a search warrant is issued
/// or lifted; the next identification answers with the new flags. Audited with the
/// flags before and after.
#[utoipa::path(
    put, path = "/v1/subjects/{external_id}/flags", tag = "subjects", request_body = Flags,
    params(("external_id" = String, Path, description = "registry id")),
    responses(
        (status = 200, body = Flags, description = "the flags now"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn set_flags(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(external_id): Path<String>,
    body: std::result::Result<Json<Flags>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Flags>> {
    caller.require(&[Role::Admin])?;
    let flags = super::json_body(body)?;
    state.ids.set_flags(caller.actor(), &external_id, &flags).await?;
    Ok(Json(flags))
}
