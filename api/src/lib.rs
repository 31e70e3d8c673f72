//! E-patrol application layer: the services the CLI and the HTTP API share.
//!
//! Dependencies point one way: this crate uses `epatrol-engine` (computation) and
//! `epatrol-store` (durable state); neither knows about this crate.

pub mod error;
pub mod http;
pub mod service;

pub use error::{ApiError, Result};
