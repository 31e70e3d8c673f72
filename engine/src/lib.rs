//! E-patrol biometric engine: pure computation, no servers, no database.
//!
//! - [`vector`]: distance kernels behind one safe API with runtime CPU detection.
//! - [`index`]: gallery search (batch-first).
//! - [`face`]: detect (YuNet), align (5-point similarity), embed (ArcFace-style ONNX).
//! - [`finger`]: fingerprint minutiae extraction (LEADER ONNX) and matching.
//! - [`metrics`]: EER, FNMR@FMR, ZeroFMR, timing summaries.
//! - [`models`]: the model manifest shared with `models/fetch.py`.
//! - [`onnx`]: finds ONNX Runtime and builds sessions.
//! - [`subject`]: [`SubjectId`], the identity both galleries answer with.

pub mod compaction;
pub mod error;
pub mod face;
pub mod finger;
pub mod identify;
pub mod index;
pub mod metrics;
pub mod models;
pub mod onnx;
pub mod subject;
pub mod vector;

pub use error::{EngineError, Result};
pub use subject::SubjectId;
