//! ArcFace-style embedding: a 112×112 aligned crop → L2-normalised vector.
//! Preprocessing comes from the manifest entry, so another recognizer is a manifest edit.

use ort::value::TensorRef;

use super::image::Bgr;
use crate::error::{EngineError, Result};
use crate::models::{Entry, InputSpec};
use crate::onnx::SessionPool;

/// A face recognizer.
pub struct Embedder {
    pool: SessionPool,
    spec: InputSpec,
    dim: usize,
    name: String,
}

impl Embedder {
    /// Opens the manifest entry's model (checksum verified) with `sessions` sessions.
    pub fn open(entry: &Entry, sessions: usize) -> Result<Self> {
        let spec = entry
            .input
            .clone()
            .ok_or_else(|| EngineError::Invalid(format!("model {} has no input spec in the manifest", entry.name)))?;
        if spec.layout != "NCHW" || !matches!(spec.channels.as_str(), "RGB" | "BGR") {
            return Err(EngineError::Unsupported(format!(
                "model {}: embedders must take NCHW RGB or BGR input, got {} {}",
                entry.name, spec.layout, spec.channels
            )));
        }
        let dim = entry.dim.ok_or_else(|| EngineError::Invalid(format!("model {} has no dim", entry.name)))?;
        Ok(Self { pool: SessionPool::open(&entry.verified_path()?, sessions)?, spec, dim, name: entry.name.clone() })
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Manifest name of the model.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Embeds one aligned 112×112 BGR crop; the result has unit length.
    pub fn embed(&self, face: &Bgr) -> Result<Vec<f32>> {
        let rgb = self.spec.channels == "RGB";
        let x = face.to_planar(face.width, face.height, rgb, self.spec.mean, self.spec.scale);
        let mut v = self.pool.with(|sess| {
            let out = sess.run(ort::inputs![self.spec.name.as_str() => TensorRef::from_array_view(&x)?])?;
            Ok(out[0].try_extract_tensor::<f32>()?.1.to_vec())
        })?;
        if v.len() != self.dim {
            return Err(EngineError::Inference(format!(
                "model {} gave {} values, manifest says {}",
                self.name,
                v.len(),
                self.dim
            )));
        }
        l2_normalize(&mut v);
        Ok(v)
    }
}

/// Scales `v` to unit length (left as is when it is all zeros).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt() as f32;
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
