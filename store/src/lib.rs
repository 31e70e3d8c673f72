//! E-patrol durable storage: everything that must survive a restart.
//!
//! - [`catalog`]: the SQL catalog (SQLite under the data dir); all SQL lives there.
//! - [`clock`]: the injectable clock and the catalog's timestamp formats.
//! - [`vault`]: content-addressed evidence blobs over `object_store`, ingest, export.
//! - [`model`]: the closed vocabularies (tier, source, states) the catalog stores.
//! - [`video`]: ffmpeg probing, damage checks, keyframe thumbnails.
//! - [`retention`]: tiers, extend-only deadlines, holds, the sweeper.
//! - [`custody`]: the append-only, hash-chained, signed custody log.

pub mod catalog;
pub mod clock;
pub mod custody;
pub mod error;
pub mod model;
pub mod retention;
pub mod vault;
pub mod video;

pub use catalog::Catalog;
pub use error::{Result, StoreError};
