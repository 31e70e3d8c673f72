//! Enrolment and 1:N identification: the model phase ([`Biometrics`], run where the
//! caller's [`ModelRunner`] says) and the record phase (catalog, audit, events) on the
//! async runtime.
//!
//! Enrolment extracts every template first and writes the subject and all templates in
//! one transaction, so a bad image changes nothing. Identification searches first, then
//! reads the candidates' records in one query and writes one audit row with its event.

mod record;
pub mod report;
pub mod standin;

use std::path::Path;
use std::sync::Arc;

use epatrol_engine::EngineError;
use epatrol_engine::face::FaceTemplate;
use epatrol_engine::models::Calibration;
use epatrol_store::Catalog;
use epatrol_store::catalog::{Flags, NewSubject};

use super::accounts::Actor;
use super::biometrics::{Biometrics, Prepared, Probes};
use super::extractor::{Extractor, Models};
use super::face_files::FilesReport;
use super::faces::FaceIndex;
use super::fingers::{FingerProbe, FingerSide};
use super::runner::{Inline, ModelRunner};
use crate::error::{ApiError, Result};
use record::Who;

pub use record::IDENTIFICATION_REGISTERED;
pub use report::{CandidateView, DeleteReport, EnrollReport, IdentifyReport, PersonView};

/// Number of candidates returned with an identification.
pub const DEFAULT_TOP_K: usize = 5;

/// A probe image with a name for messages (never the content).
#[derive(Debug, Clone)]
pub struct Probe {
    /// File name or label, used in error messages.
    pub label: String,
    /// Encoded image bytes.
    pub bytes: Vec<u8>,
}

/// The galleries with their extractor, and the catalog the records live in. Clones
/// share everything.
#[derive(Clone)]
pub struct IdentificationService {
    catalog: Catalog,
    biometrics: Arc<Biometrics>,
    /// Held from a catalog write of templates until the galleries reflect it, so an
    /// enrolment and a deletion of the same person cannot interleave and leave a
    /// gallery entry without a catalog row.
    writes: Arc<tokio::sync::Mutex<()>>,
}

/// Runs the rest of a request on its own task. Once the models have run, the catalog
/// writes, the gallery updates and the audit row complete even if the caller goes away
/// (a closed connection, a timeout), so an identification that ran is always audited
/// and a stored template is always indexed.
async fn detached<T: Send + 'static>(rest: impl Future<Output = Result<T>> + Send + 'static) -> Result<T> {
    tokio::spawn(rest).await.map_err(|e| ApiError::Internal(format!("request task failed: {e}")))?
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
        let models = Arc::new(Models::open(model)?);
        Self::with_parts(catalog, data_dir, models, index).await
    }

    /// Assembles the service over an open catalog with any extractor (the models, or a
    /// model-free stand-in in tests); the galleries are loaded from `data_dir` and the
    /// catalog.
    pub async fn with_parts(
        catalog: Catalog,
        data_dir: &Path,
        extractor: Arc<dyn Extractor>,
        index: FaceIndex,
    ) -> Result<Self> {
        let biometrics = Arc::new(Biometrics::open(&catalog, data_dir, extractor, index).await?);
        Ok(Self { catalog, biometrics, writes: Arc::new(tokio::sync::Mutex::new(())) })
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The face decision threshold and how it was derived.
    pub fn calibration(&self) -> &Calibration {
        self.biometrics.faces().calibration()
    }

    /// The fingerprint side (gallery size, calibration).
    pub fn fingers(&self) -> &FingerSide {
        self.biometrics.fingers()
    }

    /// (subjects, templates) in the in-memory face gallery.
    pub fn gallery_size(&self) -> (usize, usize) {
        self.biometrics.faces().size()
    }

    /// Face templates in the gallery and the rows a search scans (the difference is
    /// removed templates awaiting compaction).
    pub fn face_gallery_size(&self) -> (usize, usize) {
        self.biometrics.faces().slots()
    }

    /// What opening the face gallery's files found and mended, and how many files there
    /// are now.
    pub fn face_files(&self) -> (&FilesReport, usize) {
        self.biometrics.faces().files()
    }

    /// Extracts face templates from many images in parallel (both cores).
    pub fn extract_faces(&self, probes: &[Probe]) -> Vec<std::result::Result<FaceTemplate, EngineError>> {
        self.biometrics.faces().extract_many(probes)
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
        let prepared = self.biometrics.prepare(faces, fingers)?;
        self.store_enrolment(subject, prepared, actor).await
    }

    /// [`enroll_with`](Self::enroll_with) with the extraction run by `runner`.
    pub async fn enroll_on(
        &self,
        runner: &impl ModelRunner,
        subject: &NewSubject,
        faces: Vec<Probe>,
        fingers: Vec<FingerProbe>,
        actor: &str,
    ) -> Result<EnrollReport> {
        let b = Arc::clone(&self.biometrics);
        let prepared = runner.run(move || b.prepare(&faces, &fingers)).await?;
        let (this, subject, actor) = (self.clone(), subject.clone(), actor.to_string());
        detached(async move { this.store_enrolment(&subject, prepared, &actor).await }).await
    }

    /// Second half of [`enroll`](Self::enroll), for callers that extracted faces in bulk.
    pub async fn enroll_extracted(
        &self,
        subject: &NewSubject,
        images: &[Probe],
        extracted: Vec<std::result::Result<FaceTemplate, EngineError>>,
        actor: &str,
    ) -> Result<EnrollReport> {
        let prepared = self.biometrics.prepare_faces(images, extracted)?;
        self.store_enrolment(subject, prepared, actor).await
    }

    /// Writes a new subject with its templates (one transaction), then indexes them.
    async fn store_enrolment(&self, subject: &NewSubject, prepared: Prepared, actor: &str) -> Result<EnrollReport> {
        let _w = self.writes.lock().await;
        let (subject_id, ids) = self.catalog.enroll(subject, prepared.rows()).await?;
        self.biometrics.index(subject_id, &ids, &prepared).await?;
        let (faces, fingers) = prepared.counts();
        let detail = serde_json::json!({"face_templates": faces, "finger_templates": fingers});
        self.catalog.audit(actor, "", "enroll", Some(subject_id), "enrolled", &detail).await?;
        Ok(EnrollReport {
            subject_id,
            external_id: subject.external_id.clone(),
            template_ids: ids,
            qualities: prepared.into_qualities(),
        })
    }

    /// Adds face photos and/or fingerprints to an enrolled person (every image must be
    /// usable, else nothing is stored), extracted by `runner`; audited. Returns the
    /// subject row id and the new template ids.
    pub async fn add_templates_on(
        &self,
        runner: &impl ModelRunner,
        by: Actor<'_>,
        external_id: &str,
        faces: Vec<Probe>,
        fingers: Vec<FingerProbe>,
    ) -> Result<(i64, Vec<i64>)> {
        let b = Arc::clone(&self.biometrics);
        let prepared = runner.run(move || b.prepare(&faces, &fingers)).await?;
        let (this, external_id) = (self.clone(), external_id.to_string());
        let (login, device) = (by.login.to_string(), by.device.to_string());
        detached(async move {
            let (subject_id, ids) = {
                let _w = this.writes.lock().await;
                let subject_id = this.catalog.subject_by_external_id(&external_id).await?.id;
                let ids = this.catalog.add_templates(subject_id, prepared.rows()).await?;
                this.biometrics.index(subject_id, &ids, &prepared).await?;
                (subject_id, ids)
            };
            let detail = serde_json::json!({"templates": ids.len()});
            this.catalog.audit(&login, &device, "subject.templates", Some(subject_id), "ok", &detail).await?;
            Ok((subject_id, ids))
        })
        .await
    }

    /// Deletes a person: the catalog row and templates (one transaction), then their
    /// entries in both galleries, so they are never matched again.
    pub async fn delete_subject(&self, external_id: &str) -> Result<DeleteReport> {
        let _w = self.writes.lock().await;
        let d = self.catalog.delete_subject(external_id).await?;
        let face_ids: Vec<u64> = d.templates.iter().filter(|(_, m)| m == "face").map(|(t, _)| *t as u64).collect();
        let (face_templates, finger_templates) = self.biometrics.remove(d.id, face_ids).await?;
        Ok(DeleteReport { subject_id: d.id, face_templates, finger_templates })
    }

    /// [`delete_subject`](Self::delete_subject), audited: the trail keeps the row id and
    /// the counts, not the record.
    pub async fn delete_subject_by(&self, by: Actor<'_>, external_id: &str) -> Result<DeleteReport> {
        let r = self.delete_subject(external_id).await?;
        let detail = serde_json::json!({"face_templates": r.face_templates, "finger_templates": r.finger_templates});
        self.catalog.audit(by.login, by.device, "subject.delete", Some(r.subject_id), "deleted", &detail).await?;
        Ok(r)
    }

    /// Replaces a person's operational flags; audited with the flags before and after.
    pub async fn set_flags(&self, by: Actor<'_>, external_id: &str, flags: &Flags) -> Result<()> {
        let (id, before) = self.catalog.set_flags(external_id, flags).await?;
        let detail = serde_json::json!({"before": before, "after": flags});
        self.catalog.audit(by.login, by.device, "subject.flags", Some(id), "ok", &detail).await?;
        Ok(())
    }

    /// Fingerprint first, face as fallback: the print decides when it matches; when it
    /// is unusable or matches nobody and a face photo is given, the face decides and
    /// `fallback` says why. Each modality tried is audited. The model phase runs on
    /// `runner`; the records are read and written after it, outside it.
    pub async fn identify_on(
        &self,
        runner: &impl ModelRunner,
        face: Option<Probe>,
        finger: Option<FingerProbe>,
        k: usize,
        actor: &str,
        device: &str,
    ) -> Result<IdentifyReport> {
        if face.is_none() && finger.is_none() {
            return Err(ApiError::BadRequest("give a fingerprint, a face photo, or both".into()));
        }
        let b = Arc::clone(&self.biometrics);
        let (probes, face) = runner
            .run(move || {
                let probes = b.probe(face.as_ref(), finger.as_ref(), k)?;
                Ok((probes, face))
            })
            .await?;
        let (this, actor, device) = (self.clone(), actor.to_string(), device.to_string());
        detached(async move { this.record_phase(probes, face, k, &actor, &device).await }).await
    }

    /// The record phase of [`identify_on`](Self::identify_on): the print's attempt, then
    /// the face's when the print did not match.
    async fn record_phase(
        &self,
        probes: Probes,
        face: Option<Probe>,
        k: usize,
        actor: &str,
        device: &str,
    ) -> Result<IdentifyReport> {
        let Probes { finger: finger_probed, face: face_probed } = probes;
        let mut fallback = None;
        if let Some(probed) = finger_probed {
            let who = Who { actor, device, face_follows: face.is_some() };
            let threshold = self.fingers().calibration().threshold;
            let r = record::record(&self.catalog, "finger", probed, threshold, &who).await?;
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
        let probed = match (face_probed, face) {
            (Some(probed), _) => probed?,
            // the print matched at search time but its person was deleted since: the face
            // decides after all (rare, so its model work is not queued behind the gate)
            (None, Some(face)) => {
                let b = Arc::clone(&self.biometrics);
                tokio::task::spawn_blocking(move || b.faces().probe(&face.bytes, k))
                    .await
                    .map_err(|e| ApiError::Internal(format!("model job failed: {e}")))??
            }
            // a request without a face returned with the print's answer above
            (None, None) => return Err(ApiError::Internal("identification without a probe to decide".into())),
        };
        let who = Who { actor, device, face_follows: false };
        let mut r = record::record(&self.catalog, "face", probed, self.calibration().threshold, &who).await?;
        r.fallback = fallback;
        Ok(r)
    }

    /// [`identify_on`](Self::identify_on), running the models inline.
    pub async fn identify(
        &self,
        face: Option<&Probe>,
        finger: Option<&FingerProbe>,
        k: usize,
        actor: &str,
        device: &str,
    ) -> Result<IdentifyReport> {
        self.identify_on(&Inline, face.cloned(), finger.cloned(), k, actor, device).await
    }

    /// Identifies one fingerprint 1:N (a registered identification: its event is emitted).
    pub async fn identify_finger(
        &self,
        probe: &FingerProbe,
        k: usize,
        actor: &str,
        device: &str,
    ) -> Result<IdentifyReport> {
        self.identify(None, Some(probe), k, actor, device).await
    }

    /// Identifies a face photo 1:N. An unreadable file is an error (nothing recorded
    /// as an identification); an unusable photo is a `rejected` answer that requires an
    /// escort, because the person could not be identified. Every answer is audited.
    pub async fn identify_face(&self, probe: &Probe, k: usize, actor: &str, device: &str) -> Result<IdentifyReport> {
        self.identify(Some(probe), None, k, actor, device).await
    }
}
