//! The model-bound step of identification and enrolment: an image's bytes → a template.
//!
//! Everything else (galleries, their files, the catalog, audit) is model-free, so this
//! trait is the one seam between the application and the ONNX models: [`Models`] runs
//! them, [`StandIn`](super::identification::standin::StandIn) derives templates from the
//! bytes so the HTTP layer can be tested without models.

use std::sync::OnceLock;

use epatrol_engine::EngineError;
use epatrol_engine::face::{FacePipeline, FaceTemplate};
use epatrol_engine::finger::leader::Leader;
use epatrol_engine::finger::{self, Extracted};
use epatrol_engine::models::{Calibration, Manifest};

use super::fingers::FINGER_MODEL;
use crate::error::{ApiError, Result};

/// Turns face photos and fingerprint images into templates, and says how their scores
/// are to be judged. Called from blocking threads, several at once.
pub trait Extractor: Send + Sync {
    /// Catalog `model` of face templates (the recognizer's manifest name).
    fn face_model(&self) -> &str;
    /// Length of a face embedding.
    fn face_dim(&self) -> usize;
    /// The face decision threshold and its derivation.
    fn face_calibration(&self) -> &Calibration;
    /// The per-finger decision threshold and its derivation.
    fn finger_calibration(&self) -> &Calibration;
    /// One face photo → unit-length embedding with quality and timings. `BadInput` for an
    /// unreadable file, `Rejected` (with a reason fit for the officer) for an unusable one.
    fn face(&self, bytes: &[u8]) -> std::result::Result<FaceTemplate, EngineError>;
    /// One fingerprint image → minutiae and quality, with the same error kinds.
    fn finger(&self, bytes: &[u8]) -> std::result::Result<Extracted, EngineError>;
}

/// The ONNX models: the face detector and recognizer (loaded at open) and LEADER (loaded
/// on first use: most runs never see a print).
pub struct Models {
    faces: FacePipeline,
    leader: OnceLock<Leader>,
    face_calibration: Calibration,
    finger_calibration: Calibration,
}

/// The calibration of manifest entry `name`.
fn calibration_of(name: &str) -> Result<Calibration> {
    Manifest::embedded()
        .model(name)?
        .calibration
        .clone()
        .ok_or_else(|| ApiError::Engine(EngineError::Invalid(format!("model {name} has no calibration"))))
}

/// ONNX sessions per model: one per worker thread, at most four.
fn sessions() -> usize {
    rayon::current_num_threads().clamp(1, 4)
}

impl Models {
    /// Loads the face models (`model` = manifest name of the recognizer, default the
    /// first) and the calibrations of both modalities.
    pub fn open(model: Option<&str>) -> Result<Self> {
        let faces = FacePipeline::open(model, sessions())?;
        let face_calibration = calibration_of(faces.embedder().name())?;
        let finger_calibration = calibration_of(FINGER_MODEL)?;
        Ok(Self { faces, leader: OnceLock::new(), face_calibration, finger_calibration })
    }

    fn leader(&self) -> std::result::Result<&Leader, EngineError> {
        if let Some(l) = self.leader.get() {
            return Ok(l);
        }
        let l = Leader::open_default(sessions())?;
        Ok(self.leader.get_or_init(|| l))
    }
}

impl Extractor for Models {
    fn face_model(&self) -> &str {
        self.faces.embedder().name()
    }

    fn face_dim(&self) -> usize {
        self.faces.embedder().dim()
    }

    fn face_calibration(&self) -> &Calibration {
        &self.face_calibration
    }

    fn finger_calibration(&self) -> &Calibration {
        &self.finger_calibration
    }

    fn face(&self, bytes: &[u8]) -> std::result::Result<FaceTemplate, EngineError> {
        self.faces.probe(bytes)
    }

    fn finger(&self, bytes: &[u8]) -> std::result::Result<Extracted, EngineError> {
        finger::extract_checked(self.leader()?, bytes, None)
    }
}
