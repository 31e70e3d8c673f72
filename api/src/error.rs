//! The application's one error type; mapped once to exit codes / HTTP problems.

use epatrol_engine::EngineError;
use epatrol_store::StoreError;

/// Everything a command or request can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The caller sent something unusable (bad image, unknown id, bad argument).
    #[error("{0}")]
    BadRequest(String),
    /// Something that must exist does not.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request conflicts with existing data (nothing was changed).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Engine failure (models, inference).
    #[error(transparent)]
    Engine(EngineError),
    /// Storage failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::BadInput(m) | EngineError::Rejected(m) | EngineError::Invalid(m) => ApiError::BadRequest(m),
            other => ApiError::Engine(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Invalid(m) => ApiError::BadRequest(m),
            other => ApiError::Store(other),
        }
    }
}

/// Result alias.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;
