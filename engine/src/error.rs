//! The engine's one error type.

use std::path::PathBuf;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The ONNX Runtime shared library could not be found or loaded.
    #[error("ONNX Runtime library not available: {0}")]
    RuntimeMissing(String),
    /// A model file is missing or does not match its pinned checksum.
    #[error("model {name}: {reason} ({path})")]
    Model {
        /// Model name from the manifest.
        name: String,
        /// Where we looked.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Inference failed inside ONNX Runtime.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The input image could not be used; the message is safe to show to a caller.
    #[error("{0}")]
    BadInput(String),
    /// The probe was readable but not good enough to search with.
    #[error("probe rejected: {0}")]
    Rejected(String),
    /// Vectors of the wrong dimension, unknown ids and similar API misuse.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The operation is not supported by this index or model.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A persisted file (index segment, tombstone list) failed its checks at open: bad
    /// magic or version, wrong length or checksum. Never served; rebuild from the catalog.
    #[error("corrupt {path}: {reason}")]
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// Which check failed.
        reason: String,
    },
    /// A call into faiss failed (cargo feature `faiss`); carries faiss's message.
    #[error("faiss: {0}")]
    Faiss(String),
    /// File system error (index segments, model files).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<ort::Error> for EngineError {
    fn from(e: ort::Error) -> Self {
        EngineError::Inference(e.to_string())
    }
}

/// Engine result alias.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
