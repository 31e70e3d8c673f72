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
    /// No valid credentials: missing, malformed, expired or forged token, wrong password.
    /// The text is fixed so it cannot leak what exactly was wrong.
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but the caller's role may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The request body is larger than the configured limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// The request body has the wrong media type.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// The `Range` asked for cannot be served from a resource of this many bytes.
    #[error("range not satisfiable ({0} bytes)")]
    RangeNotSatisfiable(u64),
    /// The caller exceeded its rate limit; retry after this many seconds.
    #[error("rate limited: retry after {retry_after_secs} s")]
    TooManyRequests {
        /// Seconds to wait (sent as `Retry-After`).
        retry_after_secs: u64,
    },
    /// The model stage is saturated; the caller should retry after this many seconds.
    #[error("busy: retry after {retry_after_secs} s")]
    Overloaded {
        /// Seconds to wait before retrying (sent as `Retry-After`).
        retry_after_secs: u32,
    },
    /// An unexpected failure inside the server (a panicked worker, a bug); details go to
    /// the log only.
    #[error("internal: {0}")]
    Internal(String),
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
