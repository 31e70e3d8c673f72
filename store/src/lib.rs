//! E-patrol durable storage: everything that must survive a restart.
//!
//! - [`catalog`]: the SQL catalog (SQLite under the data dir).

pub mod catalog;
pub mod error;

pub use catalog::Catalog;
pub use error::{Result, StoreError};
