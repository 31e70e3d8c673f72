//! Retention policy: tiers, offence types, deadlines, the clock, and the sweeper.
//!
//! The law: crimes 5 years, administrative offences and control checks 1 year, everything
//! else 1 month, counted from the end of the recording. A deadline only ever moves later
//! ("longest wins"); a legal hold or an open case blocks deletion whatever the deadline.

mod classify;
mod clock;
mod sweeper;

pub use classify::{IncidentOutcome, IncidentReport, Reclassified};
pub use clock::{Clock, FixedClock, SystemClock, fmt_ts, parse_ts};
pub use sweeper::{SweepItem, SweepReport, Sweeper};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::error::StoreError;

/// Storage tier ("differential reserve storage"), ordered by retention length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
        add_months(recorded_to, self.months())
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// The retention state of one item after applying a (re)classification: extend-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Tier after the change (never lower than before).
    pub tier: Tier,
    /// Deadline after the change (never earlier than before).
    pub expires_at: OffsetDateTime,
}

impl Retention {
    /// Applies a request to move to `wanted` for footage that ended at `recorded_to`:
    /// the higher tier and the later deadline win, so nothing is ever shortened.
    pub fn upgrade(self, wanted: Tier, recorded_to: OffsetDateTime) -> Retention {
        let tier = self.tier.max(wanted);
        let expires_at = self.expires_at.max(tier.deadline(recorded_to));
        Retention { tier, expires_at }
    }
}

/// Adds calendar months, clamping the day to the end of the target month
/// (31 Jan + 1 month = 28/29 Feb), so a deadline never spills into the month after.
pub fn add_months(t: OffsetDateTime, months: u32) -> OffsetDateTime {
    let total = t.year() as i64 * 12 + (t.month() as i64 - 1) + months as i64;
    let year = (total.div_euclid(12)) as i32;
    let month = time::Month::try_from((total.rem_euclid(12) + 1) as u8).expect("month in 1..=12");
    let last = time::util::days_in_month(month, year);
    let day = t.day().min(last);
    let date = Date::from_calendar_date(year, month, day).expect("clamped day is valid");
    t.replace_date(date)
}
