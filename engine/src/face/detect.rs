//! YuNet face detection: decode all strides, score threshold, greedy NMS, 5 landmarks.
//! Follows `../shared/models/face/README.md` (which matches OpenCV `FaceDetectorYN`).

use std::path::Path;

use ort::value::TensorRef;
use serde::Serialize;

use super::image::Bgr;
use crate::error::{EngineError, Result};
use crate::onnx::SessionPool;

/// Longer side the image is resized to (at most) before detection (the reference's).
pub const MAX_SIDE: usize = 640;
/// Coarse detection side for probes: a patrol photo's face is large, so a quarter of the
/// pixels finds it and places the landmarks well enough (accuracy measured with
/// `eval faces --mode probe`, see models/README.md); smaller faces fall back to
/// [`MAX_SIDE`].
pub const PROBE_SIDE: usize = 320;
/// Below this eye distance at the coarse scale the landmarks are too coarse: redo at
/// [`MAX_SIDE`].
pub const COARSE_MIN_EYE_DISTANCE: f32 = 16.0;
/// Minimum face score.
pub const SCORE_THRESHOLD: f32 = 0.6;
/// IoU above which the lower-scored box is suppressed.
pub const NMS_IOU: f32 = 0.3;

/// A detected face in original image coordinates.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Detection {
    /// Box left, top, width, height.
    pub bbox: [f32; 4],
    /// Eyes (image-left, image-right), nose tip, mouth corners (image-left, image-right).
    pub landmarks: [[f32; 2]; 5],
    /// Detector confidence, 0..1.
    pub score: f32,
}

impl Detection {
    /// Box area in pixels².
    pub fn area(&self) -> f32 {
        self.bbox[2] * self.bbox[3]
    }

    /// Distance between the eye centres, pixels.
    pub fn eye_distance(&self) -> f32 {
        let [l, r] = [self.landmarks[0], self.landmarks[1]];
        ((l[0] - r[0]).powi(2) + (l[1] - r[1]).powi(2)).sqrt()
    }

    fn shifted(mut self, d: f32) -> Self {
        self.bbox[0] -= d;
        self.bbox[1] -= d;
        for p in &mut self.landmarks {
            p[0] -= d;
            p[1] -= d;
        }
        self
    }
}

/// The YuNet detector.
pub struct Detector {
    pool: SessionPool,
}

impl Detector {
    /// Loads the model with `sessions` parallel sessions.
    pub fn open(model: &Path, sessions: usize) -> Result<Self> {
        Ok(Self { pool: SessionPool::open(model, sessions)? })
    }

    /// All faces, best score first, detected with the longer side at most [`MAX_SIDE`].
    pub fn detect(&self, img: &Bgr) -> Result<Vec<Detection>> {
        self.detect_at(img, MAX_SIDE)
    }

    /// All faces, best score first, detected with the longer side at most `max_side`.
    pub fn detect_at(&self, img: &Bgr, max_side: usize) -> Result<Vec<Detection>> {
        let s = (max_side as f32 / img.width.max(img.height) as f32).min(1.0);
        let resized;
        let src = if s < 1.0 {
            resized = img.resize_linear(
                ((img.width as f32 * s).round() as usize).max(1),
                ((img.height as f32 * s).round() as usize).max(1),
            );
            &resized
        } else {
            img
        };
        let (pw, ph) = (src.width.div_ceil(32) * 32, src.height.div_ceil(32) * 32);
        // BGR, raw 0..255, zero padding bottom/right so coordinates need no offset
        let blob = src.to_planar(pw, ph, false, 0.0, 1.0);
        let mut dets = self.pool.with(|sess| {
            let out = sess.run(ort::inputs!["input" => TensorRef::from_array_view(&blob)?])?;
            let mut dets = Vec::new();
            for stride in [8usize, 16, 32] {
                let get = |name: &str| -> Result<Vec<f32>> {
                    let v = out
                        .get(format!("{name}_{stride}").as_str())
                        .ok_or_else(|| EngineError::Inference(format!("YuNet output {name}_{stride} missing")))?;
                    Ok(v.try_extract_tensor::<f32>()?.1.to_vec())
                };
                let (cls, obj, bbox, kps) = (get("cls")?, get("obj")?, get("bbox")?, get("kps")?);
                let cols = pw / stride;
                let st = stride as f32;
                for idx in 0..cls.len() {
                    let score = (cls[idx].clamp(0.0, 1.0) * obj[idx].clamp(0.0, 1.0)).sqrt();
                    if score < SCORE_THRESHOLD {
                        continue;
                    }
                    let (r, c) = ((idx / cols) as f32, (idx % cols) as f32);
                    let b = &bbox[idx * 4..idx * 4 + 4];
                    let (cx, cy) = ((c + b[0]) * st, (r + b[1]) * st);
                    let (w, h) = (b[2].exp() * st, b[3].exp() * st);
                    let k = &kps[idx * 10..idx * 10 + 10];
                    let landmarks = std::array::from_fn(|i| [(k[2 * i] + c) * st, (k[2 * i + 1] + r) * st]);
                    dets.push(Detection { bbox: [cx - w / 2.0, cy - h / 2.0, w, h], landmarks, score });
                }
            }
            Ok(dets)
        })?;
        dets = nms(dets, NMS_IOU);
        for d in &mut dets {
            d.bbox.iter_mut().for_each(|v| *v /= s);
            d.landmarks.iter_mut().flatten().for_each(|v| *v /= s);
        }
        Ok(dets)
    }

    /// Like [`detect`](Self::detect), retrying once with a black border of ¼ of the longer
    /// side when nothing is found (faces filling the frame), as the reference does.
    pub fn detect_with_retry(&self, img: &Bgr) -> Result<Vec<Detection>> {
        let dets = self.detect(img)?;
        if !dets.is_empty() {
            return Ok(dets);
        }
        let b = img.width.max(img.height) / 4;
        Ok(self.detect(&img.with_border(b))?.into_iter().map(|d| d.shifted(b as f32)).collect())
    }

    /// Probe detection, coarse to fine: at [`PROBE_SIDE`] first; at [`MAX_SIDE`] (with
    /// the border retry) when that finds nothing or the largest face is small there.
    pub fn detect_probe(&self, img: &Bgr) -> Result<Vec<Detection>> {
        let longer = img.width.max(img.height);
        if longer > PROBE_SIDE {
            let scale = PROBE_SIDE as f32 / longer as f32;
            let dets = self.detect_at(img, PROBE_SIDE)?;
            let largest = dets.iter().map(|d| d.eye_distance() * scale).fold(0.0, f32::max);
            if largest >= COARSE_MIN_EYE_DISTANCE {
                return Ok(dets);
            }
        }
        self.detect_with_retry(img)
    }
}

/// Greedy NMS (cv2.dnn.NMSBoxes): sort by score, drop boxes overlapping a kept one.
fn nms(mut dets: Vec<Detection>, iou_thr: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::new();
    for d in dets {
        if keep.iter().all(|k| iou(&k.bbox, &d.bbox) <= iou_thr) {
            keep.push(d);
        }
    }
    keep
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let (x0, y0) = (a[0].max(b[0]), a[1].max(b[1]));
    let (x1, y1) = ((a[0] + a[2]).min(b[0] + b[2]), (a[1] + a[3]).min(b[1] + b[3]));
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, score: f32) -> Detection {
        Detection { bbox: [x, 0.0, 10.0, 10.0], landmarks: [[0.0; 2]; 5], score }
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_all_disjoint() {
        let kept = nms(vec![det(0.0, 0.7), det(1.0, 0.9), det(50.0, 0.65)], 0.3);
        let xs: Vec<f32> = kept.iter().map(|d| d.bbox[0]).collect();
        assert_eq!(xs, vec![1.0, 50.0]);
    }

    #[test]
    fn iou_of_identical_is_one_and_disjoint_zero() {
        assert_eq!(iou(&[0., 0., 2., 2.], &[0., 0., 2., 2.]), 1.0);
        assert_eq!(iou(&[0., 0., 2., 2.], &[5., 5., 2., 2.]), 0.0);
    }
}
