//! Time source (injectable for tests) and the catalog's fixed-width timestamp format.

use std::sync::Mutex;

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::error::{Result, StoreError};

/// Where "now" comes from. Retention and the sweeper take it as a parameter so tests can
/// move time across years without waiting.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Current instant.
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until told to move.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    /// A clock stopped at `t`.
    pub fn new(t: OffsetDateTime) -> Self {
        Self(Mutex::new(t))
    }
    /// Sets the time.
    pub fn set(&self, t: OffsetDateTime) {
        *self.0.lock().expect("clock mutex") = t;
    }
    /// Moves the time forward (or back, with a negative duration).
    pub fn advance(&self, d: Duration) {
        let mut g = self.0.lock().expect("clock mutex");
        *g += d;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock mutex")
    }
}

/// Formats as UTC `YYYY-MM-DDTHH:MM:SSZ`: fixed width, so string order is time order in SQL.
pub fn fmt_ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses any RFC 3339 timestamp (with offset or `Z`).
pub fn parse_ts(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map_err(|e| StoreError::Invalid(format!("timestamp {s:?} is not RFC 3339: {e}")))
}
