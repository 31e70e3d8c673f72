//! Fingerprint quality: a 0..100 score and a reject reason, so that a caller can fall
//! back to the face when the print cannot identify anybody.
//!
//! Not NFIQ 2 (no trained model here): three measurable parts, each 0..1,
//! - ridge area: foreground blocks (16x16 px at 500 ppi whose grey-level spread shows
//!   ridges) against a 200x200 px reference (≈ 10x10 mm, a small plain impression);
//! - ridge clarity: mean orientation coherence of the gradient structure tensor over the
//!   foreground blocks (1 = parallel ridges, 0 = noise or smudge);
//! - minutiae: LEADER minutiae count against 30 (MCC needs a dozen or more to be reliable);
//!
//! score = 100 · (0.3 area + 0.4 clarity + 0.3 minutiae). Rejected outright: fewer than
//! [`MIN_MINUTIAE`] minutiae, less than [`MIN_AREA_PX`] of ridge area, or (from
//! [`image::check_usable`]) blank or tiny images.

use serde::Serialize;

use crate::finger::image::{self, GrayImage};
use crate::finger::template::Template;

/// Fewer minutiae than this cannot be matched reliably.
pub const MIN_MINUTIAE: usize = 10;
/// Ridge area below this (pixels at 500 ppi; ≈ 5x5 mm) is rejected.
pub const MIN_AREA_PX: f32 = 100.0 * 100.0;
const BLOCK: usize = 16;
/// Grey-level standard deviation that marks a block as ridges rather than background.
const FG_STDDEV: f32 = 12.0;

/// Quality assessment of one print.
#[derive(Debug, Clone, Serialize)]
pub struct Quality {
    /// 0..100, higher is better.
    pub score: u8,
    /// Ridge area, pixels at 500 ppi.
    pub area_px: f32,
    /// Mean orientation coherence over the ridge area, 0..1.
    pub clarity: f32,
    /// Minutiae found.
    pub minutiae: usize,
    /// Why the print is unusable, if it is.
    pub reject: Option<String>,
}

/// Assesses a print from its image (resolution `ppi`) and its extracted template.
pub fn assess(img: &GrayImage, ppi: f32, template: &Template) -> Quality {
    let scale = if ppi > 0.0 { 500.0 / ppi } else { 1.0 };
    let (w, h) = (img.width as usize, img.height as usize);
    let (mut fg_blocks, mut coh_sum) = (0usize, 0f32);
    let px = |x: usize, y: usize| img.pixels[y * w + x] as f32;
    for by in (0..h.saturating_sub(BLOCK - 1)).step_by(BLOCK) {
        for bx in (0..w.saturating_sub(BLOCK - 1)).step_by(BLOCK) {
            let (mut s, mut s2) = (0f32, 0f32);
            for y in by..by + BLOCK {
                for x in bx..bx + BLOCK {
                    let v = px(x, y);
                    s += v;
                    s2 += v * v;
                }
            }
            let n = (BLOCK * BLOCK) as f32;
            let sd = (s2 / n - (s / n) * (s / n)).max(0.0).sqrt();
            if sd < FG_STDDEV {
                continue;
            }
            fg_blocks += 1;
            // structure tensor of central differences inside the block
            let (mut gxx, mut gyy, mut gxy) = (0f32, 0f32, 0f32);
            for y in (by + 1).max(1)..(by + BLOCK - 1).min(h - 1) {
                for x in (bx + 1).max(1)..(bx + BLOCK - 1).min(w - 1) {
                    let gx = px(x + 1, y) - px(x - 1, y);
                    let gy = px(x, y + 1) - px(x, y - 1);
                    gxx += gx * gx;
                    gyy += gy * gy;
                    gxy += gx * gy;
                }
            }
            let tr = gxx + gyy;
            if tr > 0.0 {
                coh_sum += ((gxx - gyy).powi(2) + 4.0 * gxy * gxy).sqrt() / tr;
            }
        }
    }
    let area_px = fg_blocks as f32 * (BLOCK * BLOCK) as f32 * scale * scale;
    let clarity = if fg_blocks > 0 { coh_sum / fg_blocks as f32 } else { 0.0 };
    let minutiae = template.minutiae.len();
    let area_part = (area_px / (200.0 * 200.0)).min(1.0);
    let min_part = (minutiae as f32 / 30.0).min(1.0);
    let score = (100.0 * (0.3 * area_part + 0.4 * clarity + 0.3 * min_part)).round().clamp(0.0, 100.0) as u8;
    let reject = if let Err(e) = image::check_usable(img) {
        Some(e.to_string())
    } else if area_px < MIN_AREA_PX {
        Some(format!("ridge area {area_px:.0} px² at 500 ppi is below {MIN_AREA_PX:.0}: finger not on the sensor?"))
    } else if minutiae < MIN_MINUTIAE {
        Some(format!("only {minutiae} minutiae found (at least {MIN_MINUTIAE} needed): smudged, dry or partial print"))
    } else {
        None
    };
    Quality { score, area_px, clarity, minutiae, reject }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finger::image::Format;
    use crate::finger::synth;

    fn img(f: impl Fn(usize, usize) -> u8) -> GrayImage {
        let (w, h) = (300usize, 400usize);
        let pixels = (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).map(|(x, y)| f(x, y)).collect();
        GrayImage { width: w as u32, height: h as u32, pixels, ppi: None, format: Format::Png }
    }

    #[test]
    fn ridges_score_high_and_blank_or_noise_is_rejected() {
        let t = synth::finger(1);
        // parallel ridges with a 9 px period, like a clean print
        let ridges =
            img(
                |x, y| {
                    if ((x as f32 * 0.6 + y as f32 * 0.8) / 9.0 * std::f32::consts::TAU).sin() > 0.0 { 40 } else { 220 }
                },
            );
        let q = assess(&ridges, 500.0, &t);
        assert!(q.reject.is_none(), "{:?}", q.reject);
        assert!(q.clarity > 0.8 && q.score > 80, "{q:?}");

        let blank = img(|_, _| 250);
        assert!(assess(&blank, 500.0, &t).reject.unwrap().contains("blank"));

        // white noise: area yes, but no ridge flow and (here) no minutiae
        let noise = img(|x, y| {
            let s = ((y * 300 + x) as u32).wrapping_mul(2_654_435_761);
            ((s ^ (s >> 15)).wrapping_mul(2_246_822_519) >> 24) as u8
        });
        let empty = Template { minutiae: vec![], ..t.clone() };
        let q = assess(&noise, 500.0, &empty);
        assert!(q.clarity < 0.3, "{q:?}");
        assert!(q.reject.unwrap().contains("minutiae"));
    }
}
