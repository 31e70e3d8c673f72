//! The store's one error type.

/// Everything that can go wrong in durable storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The SQL catalog failed.
    #[error("catalog: {0}")]
    Sql(#[from] sqlx::Error),
    /// A schema migration failed.
    #[error("catalog migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A record that must exist does not.
    #[error("not found: {0}")]
    NotFound(String),
    /// A record with the same key already exists.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The caller passed something unusable; the message is safe to show.
    #[error("invalid: {0}")]
    Invalid(String),
    /// File system error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The blob store (local dir, S3, memory) failed.
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// Bytes did not match what was declared or recorded (length or digest).
    #[error("integrity: {0}")]
    Integrity(String),
    /// The custody log or its signing key failed.
    #[error("custody: {0}")]
    Custody(String),
    /// The operation is refused by policy (retention, legal hold, downgrade).
    #[error("refused: {0}")]
    Refused(String),
    /// A direct S3 request (object lock, tagging) failed.
    #[error("s3: {0}")]
    S3(String),
}

/// Store result alias.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
