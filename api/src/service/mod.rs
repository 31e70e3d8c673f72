//! Services shared by the CLI and the HTTP API.

pub mod compaction;
pub mod face_files;
pub mod fingers;
pub mod identification;

pub use fingers::FingerProbe;
pub use identification::{DeleteReport, EnrollReport, FaceIndex, IdentificationService, IdentifyReport, Probe};
