//! LEADER's angle and type heads, evaluated on small patches around the minutiae instead
//! of the whole map (`models/leader_trunk.py`, `split_heads`).
//!
//! Finding minutiae needs the NMS'd quality at every pixel, but the angle and the type
//! only where a minutia is. The two heads are pixel-wise operations and a few
//! convolutions, so an output pixel depends on the heads' input within `reach` pixels
//! (half resolution) only; a patch of side `2·reach + 1` around the minutia, moved inside
//! the map at its borders (so every layer's zero padding falls where it falls on the
//! whole map), gives ONNX Runtime's whole-map numbers bit for bit. On FVC images this
//! evaluates 9x9 patches for ~40–60 minutiae instead of two heads on 38 000–77 000
//! pixels: ~0.75–0.8x of the trunk's inference time.
//!
//! The model travels inside the trunk's metadata (key [`METADATA_KEY`]):
//! `{"format": "epatrol-leader-heads-1", "patch": P, "channels": C, "model": base64 ONNX}`
//! with input `head_features` [N, C, P, P] and outputs `angle`, `type` [N, 1, 2P, 2P].

use std::path::Path;

use base64::Engine as _;
use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;

use crate::error::{EngineError, Result};
use crate::onnx;

/// Metadata key of the heads model in a LEADER trunk.
pub const METADATA_KEY: &str = "epatrol.leader_heads";
/// The metadata's `format` this module reads.
const FORMAT: &str = "epatrol-leader-heads-1";
/// The trunk output the heads read.
pub const FEATURES: &str = "head_features";
/// Patches per ONNX Runtime run: bounds the batch (~0.5 MB) however many minutiae a noisy
/// print yields. The results do not depend on it; it is small enough that FVC prints
/// (35–50 minutiae) take two runs, so the bit-for-bit test covers the batching too.
const BATCH: usize = 32;

#[derive(Deserialize)]
struct Meta {
    format: String,
    patch: usize,
    channels: usize,
    model: String,
}

/// The heads model of a LEADER trunk and the patch geometry it needs.
pub struct Heads {
    patch: usize,
    channels: usize,
    model: Vec<u8>,
}

/// Angle (radians) and type score of the network at one minutia.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadOutput {
    /// Channel 1 of the whole network's output.
    pub angle: f32,
    /// Channel 2 (≥ 0.5: ridge ending).
    pub kind: f32,
}

fn bad(msg: impl std::fmt::Display) -> EngineError {
    EngineError::Inference(format!("LEADER heads metadata ({METADATA_KEY}): {msg}"))
}

impl Heads {
    /// Reads the metadata JSON a trunk model carries.
    pub fn from_metadata(json: &str) -> Result<Heads> {
        let meta: Meta = serde_json::from_str(json).map_err(bad)?;
        if meta.format != FORMAT {
            return Err(bad(format!("format {:?}, this build reads {FORMAT:?}", meta.format)));
        }
        // the trunk's half-resolution maps are multiples of 16 on each side
        if meta.patch.is_multiple_of(2) || meta.patch > 16 || meta.channels == 0 {
            return Err(bad(format!("patch {} and {} channels", meta.patch, meta.channels)));
        }
        let model = base64::engine::general_purpose::STANDARD.decode(meta.model.as_bytes()).map_err(bad)?;
        Ok(Heads { patch: meta.patch, channels: meta.channels, model })
    }

    /// An ONNX Runtime session of the heads (`origin`: the trunk file, for errors).
    pub fn session(&self, origin: &Path, threads: usize) -> Result<Session> {
        onnx::session_from_memory(&self.model, METADATA_KEY, origin, threads)
    }

    /// Runs the heads at `points` (full-resolution `(x, y)` of the network input) given the
    /// trunk's `features` [1, C, h, w]: one patch per point, `BATCH` patches per run.
    pub fn run(
        &self,
        session: &mut Session,
        features: &[f32],
        shape: &[i64],
        points: &[(usize, usize)],
    ) -> Result<Vec<HeadOutput>> {
        let (c, h, w) = match *shape {
            [1, c, h, w] if c as usize == self.channels && h as usize >= self.patch && w as usize >= self.patch => {
                (c as usize, h as usize, w as usize)
            }
            _ => {
                return Err(EngineError::Inference(format!(
                    "LEADER {FEATURES} shape {shape:?}, expected [1,{},h,w] with sides ≥ {}",
                    self.channels, self.patch
                )));
            }
        };
        let mut out = Vec::with_capacity(points.len());
        for chunk in points.chunks(BATCH) {
            out.extend(self.run_batch(session, features, (c, h, w), chunk)?);
        }
        Ok(out)
    }

    /// One ONNX Runtime run over the patches of `points`.
    fn run_batch(
        &self,
        session: &mut Session,
        features: &[f32],
        (c, h, w): (usize, usize, usize),
        points: &[(usize, usize)],
    ) -> Result<Vec<HeadOutput>> {
        let p = self.patch;
        // top-left corner of each point's patch, clamped into the map
        let corners: Vec<(usize, usize)> = points
            .iter()
            .map(|&(x, y)| {
                let corner = |v: usize, side: usize| (v / 2).saturating_sub(p / 2).min(side - p);
                (corner(x, w), corner(y, h))
            })
            .collect();
        let mut batch = Vec::with_capacity(points.len() * c * p * p);
        for &(x0, y0) in &corners {
            for ch in 0..c {
                for y in y0..y0 + p {
                    batch.extend_from_slice(&features[(ch * h + y) * w + x0..][..p]);
                }
            }
        }
        let input = Tensor::from_array(([points.len(), c, p, p], batch.into_boxed_slice()))?;
        let outputs = session.run(ort::inputs![FEATURES => input])?;
        let side = 2 * p;
        let read = |name: &str| -> Result<Vec<f32>> {
            let data = onnx::output_f32(&outputs, name, &[points.len(), 1, side, side])?;
            Ok(points
                .iter()
                .zip(&corners)
                .enumerate()
                .map(|(i, (&(x, y), &(x0, y0)))| data[(i * side + y - 2 * y0) * side + x - 2 * x0])
                .collect())
        };
        let (angle, kind) = (read("angle")?, read("type")?);
        Ok(angle.into_iter().zip(kind).map(|(angle, kind)| HeadOutput { angle, kind }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_errors_are_clear() {
        let model = base64::engine::general_purpose::STANDARD.encode(b"x");
        let json = |format: &str, patch: usize| {
            format!(r#"{{"format":"{format}","patch":{patch},"channels":52,"model":"{model}"}}"#)
        };
        assert!(Heads::from_metadata(&json(FORMAT, 9)).is_ok());
        for (bad, what) in [
            (json("epatrol-leader-heads-0", 9), "format"),
            (json(FORMAT, 8), "patch"),
            (json(FORMAT, 17), "patch"),
            (r#"{"format":"epatrol-leader-heads-1"}"#.to_string(), "missing field"),
            (json(FORMAT, 9).replace(&model, "not base64!"), "Invalid"),
        ] {
            let e = Heads::from_metadata(&bad).err().expect(what).to_string();
            assert!(e.contains(what) && e.contains(METADATA_KEY), "{e}");
        }
    }
}
