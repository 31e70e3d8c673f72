//! Services shared by the CLI and the HTTP API.

pub mod identification;

pub use identification::{EnrollReport, IdentificationService, IdentifyReport, Probe};
