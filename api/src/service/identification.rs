//! Enrolment and 1:N identification: engine templates + catalog records + audit.
//!
//! The in-memory gallery is derived state, rebuilt from the catalog at start; the
//! catalog is the source of truth. Enrolment extracts every template first and writes
//! the subject and all templates in one transaction, so a bad image changes nothing.

use std::path::Path;
use std::sync::RwLock;

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use epatrol_engine::EngineError;
use epatrol_engine::face::{FacePipeline, FaceTemplate, Quality, StageTimes};
use epatrol_engine::identify::{Candidate, Decision, Gallery, decide, encode_f32};
use epatrol_engine::models::{Calibration, Manifest};
use epatrol_store::Catalog;
use epatrol_store::catalog::{Flags, NewSubject, NewTemplate, Subject};

use crate::error::{ApiError, Result};

/// Number of candidates returned with an identification.
pub const DEFAULT_TOP_K: usize = 5;

/// A probe image with a name for messages (never the content).
pub struct Probe {
    /// File name or label, used in error messages.
    pub label: String,
    /// Encoded image bytes.
    pub bytes: Vec<u8>,
}

/// Loaded models, catalog and the derived face gallery.
pub struct IdentificationService {
    catalog: Catalog,
    faces: FacePipeline,
    face_gallery: RwLock<Gallery>,
    calibration: Calibration,
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

/// The answer to an identification.
#[derive(Debug, Serialize)]
pub struct IdentifyReport {
    /// `match`, `no_match` or `rejected` (probe unusable).
    pub decision: &'static str,
    /// Which modality decided.
    pub modality: &'static str,
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
    /// Quality of the probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Per-stage timings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<StageTimes>,
    /// Audit row id of this identification.
    pub audit_id: i64,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl IdentificationService {
    /// Opens the catalog under `data_dir`, loads the face models (`model` = manifest name
    /// of the recognizer, default the first) and rebuilds the gallery from the catalog.
    pub async fn open(data_dir: &Path, model: Option<&str>) -> Result<Self> {
        let catalog = Catalog::open_in(data_dir).await?;
        let sessions = rayon::current_num_threads().clamp(1, 4);
        let faces = FacePipeline::open(model, sessions)?;
        let name = faces.embedder().name().to_string();
        let calibration = Manifest::embedded()
            .model(&name)?
            .calibration
            .clone()
            .ok_or_else(|| ApiError::Engine(EngineError::Invalid(format!("model {name} has no calibration"))))?;
        let mut gallery = Gallery::exact(faces.embedder().dim());
        for row in catalog.templates("face", &name).await? {
            gallery.add_encoded(row.id as u64, row.subject_id, &row.data)?;
        }
        Ok(Self { catalog, faces, face_gallery: RwLock::new(gallery), calibration })
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The decision threshold and how it was derived.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// (subjects, templates) in the in-memory face gallery.
    pub fn gallery_size(&self) -> (usize, usize) {
        let g = self.face_gallery.read().unwrap_or_else(|p| p.into_inner());
        (g.subjects(), g.len())
    }

    /// Extracts face templates from many images in parallel (both cores).
    pub fn extract_faces(&self, probes: &[Probe]) -> Vec<std::result::Result<FaceTemplate, EngineError>> {
        probes.par_iter().map(|p| self.faces.probe(&p.bytes)).collect()
    }

    /// Enrols a subject from face images: every image must yield a usable face, else
    /// nothing is written and the error names the image.
    pub async fn enroll(&self, subject: &NewSubject, images: &[Probe], actor: &str) -> Result<EnrollReport> {
        if images.is_empty() {
            return Err(ApiError::BadRequest("at least one face image is required".into()));
        }
        let extracted = self.extract_faces(images);
        self.enroll_extracted(subject, images, extracted, actor).await
    }

    /// Second half of [`enroll`](Self::enroll), for callers that extracted in bulk.
    pub async fn enroll_extracted(
        &self,
        subject: &NewSubject,
        images: &[Probe],
        extracted: Vec<std::result::Result<FaceTemplate, EngineError>>,
        actor: &str,
    ) -> Result<EnrollReport> {
        let model = self.faces.embedder().name().to_string();
        let mut templates = Vec::new();
        let mut qualities = Vec::new();
        let mut vectors = Vec::new();
        for (img, t) in images.iter().zip(extracted) {
            let t = t.map_err(|e| ApiError::BadRequest(format!("{}: {e}", img.label)))?;
            let q = t.quality.expect("probe path measures quality");
            templates.push(NewTemplate {
                modality: "face".into(),
                model: model.clone(),
                position: None,
                quality: q.score as f64,
                data: encode_f32(&t.embedding),
                source_sha256: sha256_hex(&img.bytes),
            });
            qualities.push(q);
            vectors.push(t.embedding);
        }
        let (subject_id, ids) = self.catalog.enroll(subject, &templates).await?;
        {
            let mut g = self.face_gallery.write().unwrap_or_else(|p| p.into_inner());
            let tids: Vec<u64> = ids.iter().map(|&i| i as u64).collect();
            g.add(&tids, &vec![subject_id; tids.len()], &vectors.concat())?;
        }
        let detail = serde_json::json!({"templates": ids.len(), "modality": "face"});
        self.catalog.audit(actor, "", "enroll", Some(subject_id), "enrolled", &detail).await?;
        Ok(EnrollReport { subject_id, external_id: subject.external_id.clone(), template_ids: ids, qualities })
    }

    /// Identifies a face photo 1:N. An unreadable file is an error (nothing recorded
    /// as an identification); an unusable photo is a `rejected` answer that requires an
    /// escort, because the person could not be identified. Every answer is audited.
    pub async fn identify_face(&self, probe: &Probe, k: usize, actor: &str, device: &str) -> Result<IdentifyReport> {
        let threshold = self.calibration.threshold;
        let template = match self.faces.probe(&probe.bytes) {
            Ok(t) => t,
            Err(EngineError::Rejected(reason)) => {
                let detail = serde_json::json!({"modality": "face", "reason": reason});
                let audit_id = self.catalog.audit(actor, device, "identify", None, "rejected", &detail).await?;
                return Ok(IdentifyReport {
                    decision: "rejected",
                    modality: "face",
                    escort_to_station: true,
                    escort_reason: Some("identity could not be established: the photo is unusable".into()),
                    reason: Some(reason),
                    person: None,
                    flags: None,
                    score: None,
                    threshold,
                    candidates: Vec::new(),
                    quality: None,
                    times: None,
                    audit_id,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let candidates: Vec<Candidate> = {
            let g = self.face_gallery.read().unwrap_or_else(|p| p.into_inner());
            g.search(&template.embedding, k.max(1))?.pop().unwrap_or_default()
        };
        let mut views = Vec::with_capacity(candidates.len());
        let mut matched: Option<Subject> = None;
        let decision = decide(&candidates, threshold);
        for (i, c) in candidates.iter().enumerate() {
            let s = self.catalog.subject(c.subject_id).await?;
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
            "modality": "face",
            "score": score,
            "threshold": threshold,
            "candidates": candidates.len(),
            "escort": escort_reason.is_some(),
        });
        let audit_id = self
            .catalog
            .audit(actor, device, "identify", matched.as_ref().map(|s| s.id), decision_str, &detail)
            .await?;
        Ok(IdentifyReport {
            decision: decision_str,
            modality: "face",
            reason: None,
            escort_to_station: escort_reason.is_some(),
            escort_reason,
            flags: matched.as_ref().map(|s| s.data.flags),
            person: matched.map(|s| PersonView {
                external_id: s.data.external_id,
                surname: s.data.surname,
                given_name: s.data.given_name,
                patronymic: s.data.patronymic,
                date_of_birth: s.data.date_of_birth,
                address: s.data.address,
            }),
            score,
            threshold,
            candidates: views,
            quality: template.quality,
            times: Some(template.times),
            audit_id,
        })
    }
}
