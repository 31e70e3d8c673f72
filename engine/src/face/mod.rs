//! Face pipeline: detect (YuNet), align (5-point similarity to 112×112), embed
//! (ArcFace-style ONNX), quality gate.
//!
//! Two ways to pick the face:
//! - [`FacePipeline::probe`] for enrolment and identification: the largest face; a clear
//!   "no face" or "several faces" rejection when the photo is ambiguous, and a quality gate.
//! - [`FacePipeline::reference_template`] for evaluation: exactly what
//!   `../shared/tools/face_reference.py` does (best-scoring face, border retry, letterbox
//!   fallback), so accuracy numbers compare one to one.

pub mod align;
pub mod detect;
pub mod embed;
pub mod image;
pub mod quality;

use std::time::Instant;

use serde::Serialize;

pub use detect::{Detection, Detector};
pub use embed::Embedder;
pub use image::Bgr;
pub use quality::Quality;

use crate::error::{EngineError, Result};
use crate::models::Manifest;

/// A second face at least this fraction of the largest face's area makes the photo
/// ambiguous: we do not guess which person the officer meant.
pub const SEVERAL_FACES_AREA_RATIO: f32 = 0.5;
/// ...and is detected with at least this confidence. Real second people score 0.9+ with
/// YuNet in the shared sets (two_people.jpg, kit_with_rose); blurred background faces and
/// partial profiles at the frame edge score 0.6–0.8 and must not void a good photo.
pub const SEVERAL_FACES_MIN_SCORE: f32 = 0.85;

/// Milliseconds spent per stage for one image.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTimes {
    /// Image decode.
    pub decode_ms: f64,
    /// Detection (resize, network, decode, NMS).
    pub detect_ms: f64,
    /// Alignment warp.
    pub align_ms: f64,
    /// Embedding network incl. preprocessing.
    pub embed_ms: f64,
}

/// The template of one face and how it was obtained.
#[derive(Debug, Clone, Serialize)]
pub struct FaceTemplate {
    /// Unit-length embedding.
    #[serde(skip)]
    pub embedding: Vec<f32>,
    /// The face used (None when the reference fallback letterboxed the whole image).
    pub detection: Option<Detection>,
    /// Faces the detector found.
    pub faces_found: usize,
    /// Quality measurements (probe path only).
    pub quality: Option<Quality>,
    /// Per-stage timings.
    pub times: StageTimes,
}

/// Detector + recognizer, loaded once and shared across threads.
pub struct FacePipeline {
    detector: Detector,
    embedder: Embedder,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl FacePipeline {
    /// Loads the default detector and the recognizer `model` (default: the manifest's
    /// first face embedder), each with `sessions` ONNX sessions for parallel use.
    pub fn open(model: Option<&str>, sessions: usize) -> Result<Self> {
        let m = Manifest::embedded();
        let det = m.default_of("face_detector")?;
        let emb = match model {
            Some(name) => {
                let e = m.model(name)?;
                if e.kind != "face_embedder" {
                    return Err(EngineError::Invalid(format!("model {name} is a {}, not a face_embedder", e.kind)));
                }
                e
            }
            None => m.default_of("face_embedder")?,
        };
        Ok(Self {
            detector: Detector::open(&det.verified_path()?, sessions)?,
            embedder: Embedder::open(emb, sessions)?,
        })
    }

    /// The recognizer.
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// The detector.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Enrolment / identification path: decode, pick the one face, check quality, embed.
    /// Errors are `BadInput` (unreadable image) or `Rejected` (no face, several faces,
    /// poor quality) with a reason fit for the officer.
    pub fn probe(&self, bytes: &[u8]) -> Result<FaceTemplate> {
        let t = Instant::now();
        let img = image::decode(bytes)?;
        let decode_ms = ms(t);
        let t = Instant::now();
        let dets = self.detector.detect_probe(&img)?;
        let detect_ms = ms(t);
        let det = choose_single(&dets)?;
        let t = Instant::now();
        let face = align::align(&img, &det.landmarks);
        let align_ms = ms(t);
        let quality = Quality::measure(&det, &face);
        if let Some(reason) = quality.rejection() {
            return Err(EngineError::Rejected(reason));
        }
        let t = Instant::now();
        let embedding = self.embedder.embed(&face)?;
        let times = StageTimes { decode_ms, detect_ms, align_ms, embed_ms: ms(t) };
        Ok(FaceTemplate { embedding, detection: Some(det), faces_found: dets.len(), quality: Some(quality), times })
    }

    /// Evaluation path, identical in behaviour to the Python reference pipeline; with
    /// `coarse` the detection is the probe path's coarse-to-fine one
    /// ([`Detector::detect_probe`]), to measure what that costs in accuracy.
    pub fn reference_template(&self, img: &Bgr, coarse: bool) -> Result<FaceTemplate> {
        let t = Instant::now();
        let dets = if coarse { self.detector.detect_probe(img)? } else { self.detector.detect_with_retry(img)? };
        let detect_ms = ms(t);
        let t = Instant::now();
        let det = dets.first().copied();
        let face = match &det {
            Some(d) => align::align(img, &d.landmarks),
            None => align::letterbox(img),
        };
        let align_ms = ms(t);
        let t = Instant::now();
        let embedding = self.embedder.embed(&face)?;
        let times = StageTimes { decode_ms: 0.0, detect_ms, align_ms, embed_ms: ms(t) };
        Ok(FaceTemplate { embedding, detection: det, faces_found: dets.len(), quality: None, times })
    }
}

/// The largest face, unless another clearly detected face is nearly as large (then the
/// photo is ambiguous).
pub fn choose_single(dets: &[Detection]) -> Result<Detection> {
    let largest = dets.iter().max_by(|a, b| a.area().total_cmp(&b.area()));
    let Some(first) = largest else {
        return Err(EngineError::Rejected("no face found in the photo".into()));
    };
    let rivals = dets
        .iter()
        .filter(|d| !std::ptr::eq(*d, first))
        .filter(|d| d.area() >= SEVERAL_FACES_AREA_RATIO * first.area() && d.score >= SEVERAL_FACES_MIN_SCORE)
        .count();
    if rivals > 0 {
        return Err(EngineError::Rejected(format!(
            "several faces in the photo ({}); take a photo of one person",
            rivals + 1
        )));
    }
    Ok(*first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(w: f32) -> Detection {
        Detection { bbox: [0.0, 0.0, w, w], landmarks: [[0.0; 2]; 5], score: 0.9 }
    }

    #[test]
    fn face_choice_rules() {
        assert!(matches!(choose_single(&[]), Err(EngineError::Rejected(r)) if r.contains("no face")));
        assert_eq!(choose_single(&[det(10.0), det(50.0)]).unwrap().bbox[2], 50.0);
        assert!(
            matches!(choose_single(&[det(45.0), det(50.0)]), Err(EngineError::Rejected(r)) if r.contains("several"))
        );
        // a weakly detected face of similar size (background, cut-off profile) is ignored
        let faint = Detection { score: 0.7, ..det(45.0) };
        assert_eq!(choose_single(&[faint, det(50.0)]).unwrap().bbox[2], 50.0);
    }
}
