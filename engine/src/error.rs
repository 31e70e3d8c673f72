//! The engine's one error type.

use std::path::PathBuf;
use std::sync::Arc;

/// The underlying error of a failure that has one (ONNX Runtime, file system).
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The ONNX Runtime shared library could not be found or loaded.
    #[error("ONNX Runtime library not available: {reason}")]
    RuntimeMissing {
        /// What was looked for, or what loading it said.
        reason: String,
        /// ONNX Runtime's error when the library was found but did not load (shared: the
        /// environment is created once and every later call gets the same failure).
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// A model file is missing or does not match its pinned checksum.
    #[error("model {name}: {reason} ({path})")]
    Model {
        /// Model name from the manifest.
        name: String,
        /// Where we looked.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// The underlying error (ONNX Runtime refusing the model, the file unreadable).
        #[source]
        source: Option<Source>,
    },
    /// The model's inputs or outputs are not what the pipeline expects.
    #[error("inference failed: {0}")]
    Inference(String),
    /// ONNX Runtime reported an error while building a session or running a model.
    #[error("inference failed: {0}")]
    Ort(#[from] ort::Error),
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

/// Engine result alias.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
