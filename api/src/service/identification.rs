//! Enrolment and 1:N identification: engine templates + catalog records + audit.
//!
//! The in-memory face gallery is derived state: loaded at start from its segment files
//! (`face_files`), which are checked against the catalog, the source of truth. Enrolment
//! extracts every template first and writes the subject and all templates in one
//! transaction, so a bad image changes nothing.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use epatrol_engine::EngineError;
use epatrol_engine::SubjectId;
use epatrol_engine::compaction::Compactable;
use epatrol_engine::face::{FacePipeline, FaceTemplate, Quality, StageTimes};
use epatrol_engine::finger::Extracted;
use epatrol_engine::identify::{Candidate, Decision, Gallery, decide, encode_f32};
use epatrol_engine::models::{Calibration, Manifest};
use epatrol_store::Catalog;
use epatrol_store::catalog::{Flags, NewEvent, NewSubject, NewTemplate, Subject};
use epatrol_store::model::Modality;

use super::compaction::Compactor;
use super::face_files::{FaceFiles, FilesReport};
use super::fingers::{FINGER_MODEL, FingerProbe, FingerSide};
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
    face_gallery: Arc<RwLock<Gallery>>,
    /// Builds compacted face indexes on a background thread, one at a time.
    face_compactor: Compactor<Gallery>,
    /// The face gallery's segment files.
    face_files: FaceFiles,
    /// What opening them found.
    face_files_report: FilesReport,
    calibration: Calibration,
    fingers: FingerSide,
    /// Held from a catalog write of templates until the galleries reflect it, so an
    /// enrolment and a deletion of the same person cannot interleave and leave a
    /// gallery entry without a catalog row.
    writes: tokio::sync::Mutex<()>,
}

/// How the in-memory face gallery is searched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaceIndex {
    /// int8 codes scanned, shortlist re-ranked with exact f32 (same scores, 1/4 the bytes).
    #[default]
    Int8,
    /// Exact f32 scan of every template.
    Exact,
}

/// Templates extracted and checked, ready to store: catalog rows (faces first), the
/// face vectors and quality, the extracted prints.
struct Prepared {
    rows: Vec<NewTemplate>,
    qualities: Vec<Quality>,
    vectors: Vec<Vec<f32>>,
    prints: Vec<(u8, Extracted)>,
}

/// What a subject deletion removed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

/// An enrolment image that failed: the caller's fault (unreadable, unusable, invalid)
/// is a 400 naming the image; anything else (a model that failed to load or run) stays
/// the server error it is.
fn image_error(label: &str, e: EngineError) -> ApiError {
    match e {
        EngineError::BadInput(_) | EngineError::Rejected(_) | EngineError::Invalid(_) => {
            ApiError::BadRequest(format!("{label}: {e}"))
        }
        other => ApiError::Engine(other),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl IdentificationService {
    /// Opens the catalog under `data_dir`, loads the face models (`model` = manifest name
    /// of the recognizer, default the first) and rebuilds the gallery from the catalog.
    pub async fn open(data_dir: &Path, model: Option<&str>) -> Result<Self> {
        Self::open_with(data_dir, model, FaceIndex::default()).await
    }

    /// [`open`](Self::open) with a choice of face index.
    pub async fn open_with(data_dir: &Path, model: Option<&str>, index: FaceIndex) -> Result<Self> {
        let catalog = Catalog::open_in(data_dir).await?;
        let sessions = rayon::current_num_threads().clamp(1, 4);
        let faces = FacePipeline::open(model, sessions)?;
        let name = faces.embedder().name().to_string();
        let calibration = Manifest::embedded()
            .model(&name)?
            .calibration
            .clone()
            .ok_or_else(|| ApiError::Engine(EngineError::Invalid(format!("model {name} has no calibration"))))?;
        let dim = faces.embedder().dim();
        // int8 scales are fitted on a sample of the whole enrolled population at once
        let make = |sample: &[f32]| -> Result<Gallery> {
            Ok(match index {
                FaceIndex::Exact => Gallery::exact(dim),
                FaceIndex::Int8 if sample.is_empty() => Gallery::int8(dim)?,
                FaceIndex::Int8 => Gallery::int8_trained(dim, sample)?,
            })
        };
        let (face_files, gallery, face_files_report) = FaceFiles::open(&catalog, data_dir, &name, dim, make).await?;
        if face_files_report != FilesReport::default() {
            tracing::info!(report = ?face_files_report, "face index files loaded");
        }
        let fingers = FingerSide::open(&catalog).await?;
        let face_gallery = Arc::new(RwLock::new(gallery));
        Ok(Self {
            catalog,
            faces,
            face_compactor: Compactor::new(Arc::clone(&face_gallery), "face"),
            face_gallery,
            face_files,
            face_files_report,
            calibration,
            fingers,
            writes: tokio::sync::Mutex::new(()),
        })
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The decision threshold and how it was derived.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// The fingerprint side (gallery size, calibration).
    pub fn fingers(&self) -> &FingerSide {
        &self.fingers
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
        self.enroll_with(subject, images, &[], actor).await
    }

    /// Enrols a subject from face images and/or fingerprints (at least one of them);
    /// every image must be usable, else nothing is written and the error names it.
    pub async fn enroll_with(
        &self,
        subject: &NewSubject,
        faces: &[Probe],
        fingers: &[FingerProbe],
        actor: &str,
    ) -> Result<EnrollReport> {
        let prepared = self.prepare(faces, fingers)?;
        self.store_enrolment(subject, prepared, actor).await
    }

    /// Second half of [`enroll`](Self::enroll), for callers that extracted faces in bulk.
    pub async fn enroll_extracted(
        &self,
        subject: &NewSubject,
        images: &[Probe],
        extracted: Vec<std::result::Result<FaceTemplate, EngineError>>,
        actor: &str,
    ) -> Result<EnrollReport> {
        let prepared = Self::prepare_faces(images, extracted, self.faces.embedder().name())?;
        self.store_enrolment(subject, prepared, actor).await
    }

    /// Writes a new subject with its templates (one transaction), then indexes them.
    async fn store_enrolment(&self, subject: &NewSubject, prepared: Prepared, actor: &str) -> Result<EnrollReport> {
        let _w = self.writes.lock().await;
        let (subject_id, ids) = self.catalog.enroll(subject, &prepared.rows).await?;
        self.index_templates(subject_id, &ids, &prepared).await?;
        let detail =
            serde_json::json!({"face_templates": prepared.vectors.len(), "finger_templates": prepared.prints.len()});
        self.catalog.audit(actor, "", "enroll", Some(subject_id), "enrolled", &detail).await?;
        Ok(EnrollReport {
            subject_id,
            external_id: subject.external_id.clone(),
            template_ids: ids,
            qualities: prepared.qualities,
        })
    }

    /// Adds face photos and/or fingerprints to an enrolled person (every image must be
    /// usable, else nothing is stored). Returns the subject row id and new template ids.
    pub async fn add_templates(
        &self,
        external_id: &str,
        faces: &[Probe],
        fingers: &[FingerProbe],
    ) -> Result<(i64, Vec<i64>)> {
        let prepared = self.prepare(faces, fingers)?;
        let _w = self.writes.lock().await;
        let subject_id = self.catalog.subject_by_external_id(external_id).await?.id;
        let ids = self.catalog.add_templates(subject_id, &prepared.rows).await?;
        self.index_templates(subject_id, &ids, &prepared).await?;
        Ok((subject_id, ids))
    }

    /// Deletes a person: the catalog row and templates (one transaction), then their
    /// entries in both galleries, so they are never matched again.
    pub async fn delete_subject(&self, external_id: &str) -> Result<DeleteReport> {
        let _w = self.writes.lock().await;
        let d = self.catalog.delete_subject(external_id).await?;
        let face_ids: Vec<u64> =
            d.templates.iter().filter(|(_, m)| *m == Modality::Face).map(|(t, _)| *t as u64).collect();
        let face_templates = self.face_gallery.write().unwrap_or_else(|p| p.into_inner()).remove(&face_ids)?;
        self.face_files.remove(face_ids).await;
        let finger_templates = self.fingers.remove(d.id);
        if face_templates > 0 {
            // a compacted copy is built off the search path when enough rows are dead
            self.face_compactor.start();
        }
        Ok(DeleteReport { subject_id: d.id, face_templates, finger_templates })
    }

    /// What opening the face gallery's files found and mended, and how many files there
    /// are now.
    pub fn face_files(&self) -> (&FilesReport, usize) {
        (&self.face_files_report, self.face_files.files())
    }

    /// Face templates in the gallery and the rows a search scans (the difference is
    /// removed templates awaiting compaction).
    pub fn face_gallery_size(&self) -> (usize, usize) {
        let g = self.face_gallery.read().unwrap_or_else(|p| p.into_inner());
        (g.len(), g.slots())
    }

    /// Extracts and checks face photos and prints (in parallel); the first unusable
    /// image is a 400 naming it.
    fn prepare(&self, faces: &[Probe], fingers: &[FingerProbe]) -> Result<Prepared> {
        if faces.is_empty() && fingers.is_empty() {
            return Err(ApiError::BadRequest("at least one face image or fingerprint is required".into()));
        }
        let extracted = self.extract_faces(faces);
        let mut p = Self::prepare_faces(faces, extracted, self.faces.embedder().name())?;
        let prints: Vec<_> = fingers.par_iter().map(|f| self.fingers.extract(f)).collect();
        for (f, e) in fingers.iter().zip(prints) {
            let e = e.map_err(|e| image_error(&f.label, e))?;
            p.rows.push(NewTemplate {
                modality: Modality::Finger,
                model: FINGER_MODEL.into(),
                position: Some(f.position as i64),
                quality: e.quality.score as f64,
                data: FingerSide::encode(f.position, &e)?,
                source_sha256: sha256_hex(&f.bytes),
            });
            p.prints.push((f.position, e));
        }
        Ok(p)
    }

    /// Catalog rows of extracted face templates (`model` = recognizer name).
    fn prepare_faces(
        images: &[Probe],
        extracted: Vec<std::result::Result<FaceTemplate, EngineError>>,
        model: &str,
    ) -> Result<Prepared> {
        let mut p = Prepared { rows: Vec::new(), qualities: Vec::new(), vectors: Vec::new(), prints: Vec::new() };
        for (img, t) in images.iter().zip(extracted) {
            let t = t.map_err(|e| image_error(&img.label, e))?;
            let q = t.quality.expect("probe path measures quality");
            p.rows.push(NewTemplate {
                modality: Modality::Face,
                model: model.to_string(),
                position: None,
                quality: q.score as f64,
                data: encode_f32(&t.embedding),
                source_sha256: sha256_hex(&img.bytes),
            });
            p.qualities.push(q);
            p.vectors.push(t.embedding);
        }
        Ok(p)
    }

    /// Adds stored templates (`ids` in the order of `p.rows`, faces first) to the galleries
    /// and the face templates to the gallery's files.
    async fn index_templates(&self, subject_id: i64, ids: &[i64], p: &Prepared) -> Result<()> {
        let n_faces = p.vectors.len();
        if n_faces > 0 {
            let tids: Vec<u64> = ids[..n_faces].iter().map(|&i| i as u64).collect();
            let vectors = p.vectors.concat();
            self.face_gallery.write().unwrap_or_else(|p| p.into_inner()).add(
                &tids,
                &vec![SubjectId(subject_id); n_faces],
                &vectors,
            )?;
            self.face_files.append(tids, vectors).await;
        }
        let refs: Vec<(u8, &Extracted)> = p.prints.iter().map(|(pos, e)| (*pos, e)).collect();
        self.fingers.add(subject_id, &refs);
        Ok(())
    }

    /// Fingerprint first, face as fallback: the print decides when it matches; when it
    /// is unusable or matches nobody and a face photo is given, the face decides and
    /// `fallback` says why. Each modality tried is audited.
    pub async fn identify(
        &self,
        face: Option<&Probe>,
        finger: Option<&FingerProbe>,
        k: usize,
        actor: &str,
        device: &str,
    ) -> Result<IdentifyReport> {
        let mut fallback = None;
        if let Some(fp) = finger {
            let r = self.identify_finger_then(fp, k, actor, device, face.is_some()).await?;
            if r.decision == "match" || face.is_none() {
                return Ok(r);
            }
            fallback = Some(match (&r.reason, r.candidates.first()) {
                (Some(why), _) => format!("fingerprint unusable ({why}); decided by face"),
                (None, Some(c)) => format!(
                    "fingerprint inconclusive (best score {:.3} below {:.3}); decided by face",
                    c.score, r.threshold
                ),
                (None, None) => "fingerprint matched no enrolled print; decided by face".to_string(),
            });
        }
        let Some(face) = face else {
            return Err(ApiError::BadRequest("give a fingerprint, a face photo, or both".into()));
        };
        let mut r = self.identify_face(face, k, actor, device).await?;
        r.fallback = fallback;
        Ok(r)
    }

    /// Identifies one fingerprint 1:N (a registered identification: its event is emitted).
    pub async fn identify_finger(
        &self,
        probe: &FingerProbe,
        k: usize,
        actor: &str,
        device: &str,
    ) -> Result<IdentifyReport> {
        self.identify_finger_then(probe, k, actor, device, false).await
    }

    /// Identifies one fingerprint; with `face_follows`, an answer other than a match is
    /// not final (the face decides next), so it is audited without an event.
    async fn identify_finger_then(
        &self,
        probe: &FingerProbe,
        k: usize,
        actor: &str,
        device: &str,
        face_follows: bool,
    ) -> Result<IdentifyReport> {
        let who = Who { actor, device, face_follows };
        let threshold = self.fingers.calibration().threshold;
        let t = std::time::Instant::now();
        let e = match self.fingers.extract(probe) {
            Ok(e) => e,
            Err(EngineError::Rejected(reason)) => {
                return self.rejected("finger", reason, threshold, &who).await;
            }
            Err(e) => return Err(e.into()),
        };
        let extract_ms = t.elapsed().as_secs_f64() * 1e3;
        let candidates = self.fingers.search(probe.position, &e, k);
        let quality = serde_json::to_value(&e.quality).ok();
        let mut r = self.report("finger", &candidates, threshold, quality, &who).await?;
        r.times = Some(StageTimes { embed_ms: extract_ms, ..Default::default() });
        Ok(r)
    }

    /// Identifies a face photo 1:N. An unreadable file is an error (nothing recorded
    /// as an identification); an unusable photo is a `rejected` answer that requires an
    /// escort, because the person could not be identified. Every answer is audited.
    pub async fn identify_face(&self, probe: &Probe, k: usize, actor: &str, device: &str) -> Result<IdentifyReport> {
        let who = Who { actor, device, face_follows: false };
        let threshold = self.calibration.threshold;
        let template = match self.faces.probe(&probe.bytes) {
            Ok(t) => t,
            Err(EngineError::Rejected(reason)) => return self.rejected("face", reason, threshold, &who).await,
            Err(e) => return Err(e.into()),
        };
        let candidates: Vec<Candidate> = {
            let g = self.face_gallery.read().unwrap_or_else(|p| p.into_inner());
            g.search(&template.embedding, k.max(1))?.pop().unwrap_or_default()
        };
        let quality = template.quality.as_ref().and_then(|q| serde_json::to_value(q).ok());
        let mut r = self.report("face", &candidates, threshold, quality, &who).await?;
        r.times = Some(template.times);
        Ok(r)
    }

    /// The answer for an unusable probe: rejected, escort (identity not established).
    async fn rejected(
        &self,
        modality: &'static str,
        reason: String,
        threshold: f32,
        who: &Who<'_>,
    ) -> Result<IdentifyReport> {
        let detail = serde_json::json!({"modality": modality, "reason": reason});
        let escort_reason = format!("identity could not be established: the {modality} image is unusable");
        let event = (!who.face_follows).then(|| registered(who, "rejected", modality, None, Some(&escort_reason)));
        let audit_id =
            self.catalog.audit_with_event(who.actor, who.device, "identify", None, "rejected", &detail, event).await?;
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

    /// Decision, person view, flags and escort advice from ranked candidates; audited.
    async fn report(
        &self,
        modality: &'static str,
        candidates: &[Candidate],
        threshold: f32,
        quality: Option<serde_json::Value>,
        who: &Who<'_>,
    ) -> Result<IdentifyReport> {
        // a person deleted between the search and now is no longer a candidate
        let mut found = Vec::with_capacity(candidates.len());
        for c in candidates {
            match self.catalog.subject(c.subject_id.0).await {
                Ok(s) => found.push((*c, s)),
                Err(epatrol_store::StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
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
        let audit_id = self
            .catalog
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
            quality,
            times: None,
            audit_id,
        })
    }
}

/// Who asked for an identification, and whether a face probe will decide if this
/// attempt does not match.
struct Who<'a> {
    actor: &'a str,
    device: &'a str,
    face_follows: bool,
}

/// Event type of a registered identification.
pub const IDENTIFICATION_REGISTERED: &str = "identification.registered";

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
