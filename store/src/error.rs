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
}

/// Store result alias.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
