//! [`StandIn`]: a model-free [`Extractor`] for tests (a test double; the `epatrol` binary
//! never uses it).
//!
//! Face templates are derived from the SHA-256 of the image bytes: the same file always
//! gives the same template, and any other file an unrelated one. So a person enrolled
//! with a photo is identified by that same file (score 1) and by nothing else. As with
//! the models, empty bytes are an unreadable file (`BadInput`: a 400) and an image whose
//! bytes all have one value is a blank, unusable one (`Rejected`: a `rejected` answer).
//! Every other print is unusable too (`Rejected`), so the face decides.
//!
//! A test builds the real service and server over it, without ONNX models:
//!
//! ```no_run
//! # async fn f(config: epatrol_api::http::ServeConfig) -> epatrol_api::Result<()> {
//! use std::sync::Arc;
//! use epatrol_api::http::AppState;
//! use epatrol_api::service::{FaceIndex, IdentificationService, StandIn};
//! use epatrol_store::Catalog;
//! use epatrol_store::vault::Vault;
//!
//! let catalog = Catalog::open_in(&config.data_dir).await?;
//! let ids = IdentificationService::with_parts(catalog.clone(), &config.data_dir, Arc::new(StandIn::new()), FaceIndex::Exact)
//!     .await?;
//! let vault = Vault::local(&config.data_dir.join("vault"))?;
//! let state = AppState::from_parts(config, catalog, vault, ids).await?;
//! let app = epatrol_api::http::router::router(state);
//! # Ok(()) }
//! ```

use sha2::{Digest, Sha256};

use epatrol_engine::EngineError;
use epatrol_engine::face::{FaceTemplate, Quality, StageTimes};
use epatrol_engine::finger::Extracted;
use epatrol_engine::models::Calibration;

use crate::service::extractor::Extractor;

/// Catalog `model` of the stand-in's face templates (its files live under
/// `index/face-standin/`).
pub const STANDIN_MODEL: &str = "standin";
/// Length of the stand-in's face embeddings.
pub const STANDIN_DIM: usize = 32;

/// Derives templates from image bytes; see the module doc.
#[derive(Debug, Clone)]
pub struct StandIn {
    face_calibration: Calibration,
    finger_calibration: Calibration,
}

impl Default for StandIn {
    fn default() -> Self {
        Self::new()
    }
}

fn calibration(threshold: f32) -> Calibration {
    Calibration {
        fmr: 0.0,
        threshold,
        impostor_pairs: 0,
        derived_from: "stand-in extractor: the same bytes score 1, other bytes far below".into(),
    }
}

/// `BadInput` for no bytes, `Rejected` for bytes of one value.
fn check(bytes: &[u8], what: &str) -> Result<(), EngineError> {
    match bytes.first() {
        None => Err(EngineError::BadInput(format!("empty {what} image"))),
        Some(b) if bytes.iter().all(|x| x == b) => Err(EngineError::Rejected(format!("blank {what} image"))),
        Some(_) => Ok(()),
    }
}

/// `n` pseudo-random bytes determined by `tag` and `bytes`.
fn stream(tag: &str, bytes: &[u8], n: usize) -> Vec<u8> {
    let seed = Sha256::new().chain_update(tag).chain_update(bytes).finalize();
    (0u32..).flat_map(|i| Sha256::new().chain_update(seed).chain_update(i.to_le_bytes()).finalize()).take(n).collect()
}

impl StandIn {
    /// A stand-in with a face threshold of 0.9: far above what two different files
    /// score, below what the same file scores.
    pub fn new() -> Self {
        Self { face_calibration: calibration(0.9), finger_calibration: calibration(0.5) }
    }
}

impl Extractor for StandIn {
    fn face_model(&self) -> &str {
        STANDIN_MODEL
    }

    fn face_dim(&self) -> usize {
        STANDIN_DIM
    }

    fn face_calibration(&self) -> &Calibration {
        &self.face_calibration
    }

    fn finger_calibration(&self) -> &Calibration {
        &self.finger_calibration
    }

    fn face(&self, bytes: &[u8]) -> Result<FaceTemplate, EngineError> {
        check(bytes, "face")?;
        let mut embedding: Vec<f32> =
            stream("face", bytes, STANDIN_DIM).into_iter().map(|b| b as f32 - 127.5).collect();
        let norm = embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
        embedding.iter_mut().for_each(|x| *x /= norm);
        let quality = Quality { confidence: 1.0, eye_distance: 60.0, sharpness: 100.0, score: 1.0 };
        Ok(FaceTemplate {
            embedding,
            detection: None,
            faces_found: 1,
            quality: Some(quality),
            times: StageTimes::default(),
        })
    }

    /// Prints are not modelled: a non-empty print is always unusable, so a request
    /// with a print and a face photo is decided by the face.
    fn finger(&self, bytes: &[u8]) -> Result<Extracted, EngineError> {
        check(bytes, "fingerprint")?;
        Err(EngineError::Rejected("the stand-in extractor reads no fingerprints".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_give_the_same_face_and_other_bytes_a_distant_one() {
        let s = StandIn::new();
        let a = s.face(b"photo a").unwrap().embedding;
        let b = s.face(b"photo b").unwrap().embedding;
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
        assert_eq!(a, s.face(b"photo a").unwrap().embedding);
        assert!(dot(&a, &b) < s.face_calibration().threshold, "{}", dot(&a, &b));
    }

    #[test]
    fn empty_is_unreadable_and_one_value_is_blank() {
        let s = StandIn::new();
        assert!(matches!(s.face(b""), Err(EngineError::BadInput(_))));
        assert!(matches!(s.face(&[7; 100]), Err(EngineError::Rejected(_))));
        assert!(matches!(s.finger(b""), Err(EngineError::BadInput(_))));
        assert!(matches!(s.finger(&[0; 100]), Err(EngineError::Rejected(_))));
    }
}
