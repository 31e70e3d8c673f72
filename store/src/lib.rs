//! E-patrol durable storage: everything that must survive a restart.
//!
//! - [`catalog`]: the SQL catalog (SQLite under the data dir).
//! - [`vault`]: content-addressed evidence blobs over `object_store`, ingest, export.
//! - [`video`]: ffmpeg probing, damage checks, keyframe thumbnails.
//! - [`retention`]: tiers, extend-only deadlines, holds, the sweeper.
//! - [`custody`]: the append-only, hash-chained, signed custody log.

pub mod catalog;
pub mod custody;
pub mod error;
pub mod retention;
pub mod vault;
pub mod video;

pub use catalog::Catalog;
pub use error::{Result, StoreError};
