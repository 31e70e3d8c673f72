//! Fingerprint pipeline: minutiae extraction (LEADER ONNX), matcher, 1:N.
//!
//! - [`image`]: decode PNG/BMP/TIFF/PGM/JPEG/WSQ to grey, resolution, usability checks.
//! - [`wsq`]: WSQ decoder.
//! - [`leader`]: LEADER ONNX minutiae extraction.
//! - [`template`]: the minutiae template type.
//! - [`iso19794`]: ISO/IEC 19794-2:2005 (and ANSI INCITS 378) template import/export.
//! - [`mcc`]: Minutia Cylinder-Code matcher (why MCC: see the module doc).
//! - [`dataset`], [`eval`]: FVC-protocol evaluation over a dataset folder.
//! - [`index`]: 1:N search (LSH candidates over cylinder bits, MCC shortlist, fingers fused).
//! - [`synth`]: synthetic fingers and distorted impressions (tests, 1:N distractors).

pub mod dataset;
pub mod eval;
pub mod image;
pub mod index;
pub mod iso19794;
pub mod leader;
pub mod mcc;
pub mod synth;
pub mod template;
pub mod wsq;

pub use template::{Minutia, MinutiaKind, Template};
