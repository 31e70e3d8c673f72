//! Retention policy: tiers, offence types, deadlines, and the sweeper.
//!
//! The law: crimes 5 years, administrative offences and control checks 1 year, everything
//! else 1 month, counted from the end of the recording. A deadline only ever moves later
//! ("longest wins"); a legal hold or an open case blocks deletion whatever the deadline.

mod classify;
mod sweeper;

pub use classify::{IncidentOutcome, IncidentReport, Reclassified};
pub use sweeper::{SweepItem, SweepReport, Sweeper};

pub use crate::clock::add_months;
pub use crate::model::{Offence, Tier};

use time::OffsetDateTime;

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
