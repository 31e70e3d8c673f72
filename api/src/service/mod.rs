//! The application layer shared by the CLI and the HTTP API.
//!
//! - [`identification`]: enrolment and 1:N identification over [`biometrics`] (the
//!   model phase: [`faces`] and [`fingers`], each behind the [`extractor`]) and the
//!   catalog; [`runner`] says where the model phase runs.
//! - [`accounts`]: roles, sessions, account and device changes.
//! - [`evidence`]: who may upload or view which footage; cases.
//! - [`audit_trail`]: reading the audit log, subscribing to events.
//! - [`face_files`], [`compaction`]: the face gallery's files and background compaction.
//!
//! Each rule and each audit row lives here once; no SQL, no HTTP types.

pub mod accounts;
pub mod audit_trail;
pub mod biometrics;
pub mod compaction;
pub mod evidence;
pub mod extractor;
pub mod face_files;
pub mod faces;
pub mod fingers;
pub mod identification;
pub mod probed;
pub mod runner;

pub use extractor::{Extractor, Models};
pub use faces::FaceIndex;
pub use fingers::FingerProbe;
pub use identification::standin::StandIn;
pub use identification::{DeleteReport, EnrollReport, IdentificationService, IdentifyReport, Probe};
pub use runner::{Inline, ModelRunner};
