//! The closed vocabularies the catalog stores as lower-case TEXT (the same words its
//! CHECK constraints list), as Rust enums that encode and decode themselves through sqlx.
//! A leaf module: the catalog, retention and the vault all use it, it uses none of them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::StoreError;

/// Writes `$t` as its stored name (`Display` = `as_str`).
macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

/// Storage tier ("differential reserve storage"), ordered by retention length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum Tier {
    /// General storage: 1 month.
    General,
    /// Administrative offences and control checks: 1 year.
    Administrative,
    /// Crimes: 5 years.
    Crime,
}

impl Tier {
    /// All tiers, shortest retention first.
    pub const ALL: [Tier; 3] = [Tier::General, Tier::Administrative, Tier::Crime];

    /// Name as stored in the catalog and object tags.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::General => "general",
            Tier::Administrative => "administrative",
            Tier::Crime => "crime",
        }
    }

    /// Retention period in calendar months.
    pub fn months(self) -> u32 {
        match self {
            Tier::General => 1,
            Tier::Administrative => 12,
            Tier::Crime => 60,
        }
    }

    /// Deadline for footage whose recording ended at `recorded_to`.
    pub fn deadline(self, recorded_to: OffsetDateTime) -> OffsetDateTime {
        crate::clock::add_months(recorded_to, self.months())
    }
}

impl FromStr for Tier {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "general" => Ok(Tier::General),
            "administrative" => Ok(Tier::Administrative),
            "crime" => Ok(Tier::Crime),
            other => Err(StoreError::Invalid(format!("unknown tier {other:?} (general, administrative, crime)"))),
        }
    }
}

/// Offence type of an incident report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum Offence {
    /// A crime: footage kept 5 years.
    Crime,
    /// An administrative offence: 1 year.
    Administrative,
    /// A control check (no offence found): 1 year.
    ControlCheck,
    /// Anything else: stays in general storage (1 month).
    Other,
}

impl Offence {
    /// Name as stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Offence::Crime => "crime",
            Offence::Administrative => "administrative",
            Offence::ControlCheck => "control_check",
            Offence::Other => "other",
        }
    }

    /// The tier footage of this incident belongs in.
    pub fn tier(self) -> Tier {
        match self {
            Offence::Crime => Tier::Crime,
            Offence::Administrative | Offence::ControlCheck => Tier::Administrative,
            Offence::Other => Tier::General,
        }
    }
}

impl FromStr for Offence {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "crime" => Ok(Offence::Crime),
            "administrative" => Ok(Offence::Administrative),
            "control_check" | "control-check" => Ok(Offence::ControlCheck),
            "other" => Ok(Offence::Other),
            other => Err(StoreError::Invalid(format!(
                "unknown offence {other:?} (crime, administrative, control_check, other)"
            ))),
        }
    }
}

/// Where footage came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum Source {
    /// Uploaded by the body camera itself.
    BodyCamera,
    /// Uploaded by a docking / charging station.
    Dock,
    /// Another device (a colleague's phone, another recorder) when the camera failed.
    OtherDevice,
}

impl Source {
    /// Catalog name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::BodyCamera => "body_camera",
            Source::Dock => "dock",
            Source::OtherDevice => "other_device",
        }
    }
}

impl FromStr for Source {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.replace('-', "_").as_str() {
            "body_camera" | "camera" => Ok(Source::BodyCamera),
            "dock" => Ok(Source::Dock),
            "other_device" | "other" | "phone" => Ok(Source::OtherDevice),
            other => Err(StoreError::Invalid(format!("unknown source {other:?} (body_camera, dock, other_device)"))),
        }
    }
}

/// Lifecycle of an evidence row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum EvidenceState {
    /// Stored and visible.
    Active,
    /// Claimed by a sweeper that is deleting it.
    Deleting,
    /// Deleted by the sweeper (the row and its deletion record stay).
    Deleted,
}

impl EvidenceState {
    /// Name as stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceState::Active => "active",
            EvidenceState::Deleting => "deleting",
            EvidenceState::Deleted => "deleted",
        }
    }
}

/// Where an evidence item's `recorded_from` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum TimeSource {
    /// Declared by the caller.
    Declared,
    /// The container's `creation_time`.
    Metadata,
    /// The file's modification time.
    FileMtime,
}

impl TimeSource {
    /// Name as stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeSource::Declared => "declared",
            TimeSource::Metadata => "metadata",
            TimeSource::FileMtime => "file_mtime",
        }
    }
}

/// Biometric modality of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum Modality {
    /// Face embedding.
    Face,
    /// Fingerprint template.
    Finger,
}

impl Modality {
    /// Name as stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Face => "face",
            Modality::Finger => "finger",
        }
    }
}

/// State of a resumable upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum UploadState {
    /// Taking parts.
    Open,
    /// Assembled and ingested.
    Completed,
    /// Given up.
    Aborted,
}

impl UploadState {
    /// Name as stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Open => "open",
            UploadState::Completed => "completed",
            UploadState::Aborted => "aborted",
        }
    }
}

display_as_str!(Tier, Offence, Source, EvidenceState, TimeSource, Modality, UploadState);
