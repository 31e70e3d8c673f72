//! Fingerprint pipeline: minutiae extraction (LEADER ONNX), matcher, 1:N.
//!
//! - [`image`]: decode PNG/BMP/TIFF/PGM/JPEG/WSQ to grey, resolution, usability checks.
//! - [`wsq`]: WSQ decoder.
//! - [`leader`]: LEADER ONNX minutiae extraction.
//! - [`template`]: the minutiae template type.

pub mod image;
pub mod leader;
pub mod template;
pub mod wsq;

pub use template::{Minutia, MinutiaKind, Template};
