//! The model phase of identification and enrolment: both sides (face and finger), the
//! CPU-bound work that runs inside the model gate (decode, detect, embed or extract,
//! search), and the gallery updates that follow a catalog write. No catalog access.

use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use epatrol_engine::EngineError;
use epatrol_engine::face::{FaceTemplate, Quality};
use epatrol_engine::finger::Extracted;
use epatrol_engine::identify::encode_f32;
use epatrol_store::Catalog;
use epatrol_store::catalog::NewTemplate;
use epatrol_store::model::Modality;

use super::extractor::Extractor;
use super::faces::{FaceIndex, FaceSide};
use super::fingers::{FINGER_MODEL, FingerProbe, FingerSide};
use super::identification::Probe;
use super::probed::Probed;
use crate::error::{ApiError, Result};

/// The face side and the finger side.
pub struct Biometrics {
    faces: FaceSide,
    fingers: FingerSide,
}

/// The model phase's answer to an identification request: the print's (when one was
/// given) and the face's (when one was given and the print did not already match; an
/// unreadable photo is kept as its error so the print's attempt is still recorded first).
#[derive(Debug)]
pub struct Probes {
    /// The fingerprint, searched or rejected.
    pub finger: Option<Probed>,
    /// The face photo, searched, rejected or unreadable.
    pub face: Option<Result<Probed>>,
}

/// Templates extracted and checked, ready to store: catalog rows (faces first), the
/// face vectors and quality, the extracted prints.
pub struct Prepared {
    rows: Vec<NewTemplate>,
    qualities: Vec<Quality>,
    vectors: Vec<Vec<f32>>,
    prints: Vec<(u8, Extracted)>,
}

impl Prepared {
    /// The catalog rows, faces first.
    pub fn rows(&self) -> &[NewTemplate] {
        &self.rows
    }

    /// Face templates and fingerprint templates.
    pub fn counts(&self) -> (usize, usize) {
        (self.vectors.len(), self.prints.len())
    }

    /// The quality of each face image, in order.
    pub fn into_qualities(self) -> Vec<Quality> {
        self.qualities
    }
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

impl Biometrics {
    /// Loads both galleries for `extractor` (face gallery from its files under
    /// `data_dir`, prints from the catalog).
    pub async fn open(
        catalog: &Catalog,
        data_dir: &Path,
        extractor: Arc<dyn Extractor>,
        index: FaceIndex,
    ) -> Result<Self> {
        let faces = FaceSide::open(catalog, data_dir, Arc::clone(&extractor), index).await?;
        let fingers = FingerSide::open(catalog, extractor).await?;
        Ok(Self { faces, fingers })
    }

    /// The face side.
    pub fn faces(&self) -> &FaceSide {
        &self.faces
    }

    /// The fingerprint side.
    pub fn fingers(&self) -> &FingerSide {
        &self.fingers
    }

    /// The model phase of an identification (top `k`): the print first; the face only
    /// when it is given and the print does not match. An unreadable print is an error.
    pub fn probe(&self, face: Option<&Probe>, finger: Option<&FingerProbe>, k: usize) -> Result<Probes> {
        let finger = finger.map(|f| self.fingers.probe(f, k)).transpose()?;
        let decided = finger.as_ref().is_some_and(|p| p.looks_like_match(self.fingers.calibration().threshold));
        let face = face.filter(|_| !decided).map(|f| self.faces.probe(&f.bytes, k));
        Ok(Probes { finger, face })
    }

    /// Extracts and checks face photos and prints (in parallel); the first unusable
    /// image is a 400 naming it.
    pub fn prepare(&self, faces: &[Probe], fingers: &[FingerProbe]) -> Result<Prepared> {
        if faces.is_empty() && fingers.is_empty() {
            return Err(ApiError::BadRequest("at least one face image or fingerprint is required".into()));
        }
        let extracted = self.faces.extract_many(faces);
        let mut p = self.prepare_faces(faces, extracted)?;
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

    /// Catalog rows of face templates extracted from `images` (in bulk, by the caller).
    pub fn prepare_faces(
        &self,
        images: &[Probe],
        extracted: Vec<std::result::Result<FaceTemplate, EngineError>>,
    ) -> Result<Prepared> {
        let mut p = Prepared { rows: Vec::new(), qualities: Vec::new(), vectors: Vec::new(), prints: Vec::new() };
        for (img, t) in images.iter().zip(extracted) {
            let t = t.map_err(|e| image_error(&img.label, e))?;
            let q = t.quality.expect("probe path measures quality");
            p.rows.push(NewTemplate {
                modality: Modality::Face,
                model: self.faces.model().to_string(),
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

    /// Adds stored templates (`ids` in the order of `p.rows()`, faces first) of catalog
    /// subject `subject_id` to the galleries and the face templates to the files.
    pub async fn index(&self, subject_id: i64, ids: &[i64], p: &Prepared) -> Result<()> {
        let n_faces = p.vectors.len();
        if n_faces > 0 {
            let tids: Vec<u64> = ids[..n_faces].iter().map(|&i| i as u64).collect();
            self.faces.add(subject_id, tids, p.vectors.concat()).await?;
        }
        let refs: Vec<(u8, &Extracted)> = p.prints.iter().map(|(pos, e)| (*pos, e)).collect();
        self.fingers.add(subject_id, &refs);
        Ok(())
    }

    /// Removes deleted templates from both galleries: the face templates `face_ids` and
    /// every print of `subject_id`. Returns (face, finger) templates removed.
    pub async fn remove(&self, subject_id: i64, face_ids: Vec<u64>) -> Result<(usize, usize)> {
        let faces = self.faces.remove(face_ids).await?;
        let fingers = self.fingers.remove(subject_id);
        Ok((faces, fingers))
    }
}
