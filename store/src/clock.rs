//! Time: the injectable clock and the two timestamp text formats the catalog stores.
//!
//! - [`fmt_ts`]: UTC `YYYY-MM-DDTHH:MM:SSZ`, fixed width, so SQL string order is time
//!   order (evidence, retention and custody tables);
//! - [`fmt_rfc3339`] / [`now_rfc3339`]: RFC 3339 with sub-second digits (subjects,
//!   accounts, audit rows, outbox events).

use std::sync::Mutex;

use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime, UtcOffset};

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

/// Formats as RFC 3339 with as many sub-second digits as needed (none for whole seconds).
pub fn fmt_rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("RFC 3339 formatting of a 4-digit-year time cannot fail")
}

/// Current UTC time as RFC 3339 with sub-second digits.
pub fn now_rfc3339() -> String {
    fmt_rfc3339(OffsetDateTime::now_utc())
}

/// Parses any RFC 3339 timestamp (with offset or `Z`).
pub fn parse_ts(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map_err(|e| StoreError::Invalid(format!("timestamp {s:?} is not RFC 3339: {e}")))
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

/// Serde for a timestamp as [`fmt_ts`] text (`#[serde(with = "crate::clock::fixed")]`).
pub mod fixed {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    /// Serializes as `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt_ts(*t))
    }

    /// Deserializes any RFC 3339 text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_ts(&s).map_err(serde::de::Error::custom)
    }

    /// The same for an optional timestamp (`null` when absent).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;

        /// Serializes as `YYYY-MM-DDTHH:MM:SSZ` or `null`.
        pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::fmt_ts(*t)),
                None => s.serialize_none(),
            }
        }

        /// Deserializes any RFC 3339 text or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| super::super::parse_ts(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_round_trip_their_own_text() {
        let t = parse_ts("2024-02-29T23:59:07.120Z").unwrap();
        assert_eq!(fmt_ts(t), "2024-02-29T23:59:07Z", "fixed width drops sub-seconds");
        assert_eq!(fmt_rfc3339(t), "2024-02-29T23:59:07.12Z");
        assert_eq!(fmt_rfc3339(parse_ts("2024-02-29T23:59:07Z").unwrap()), "2024-02-29T23:59:07Z");
        assert_eq!(fmt_ts(parse_ts("2024-03-01T01:59:07+02:00").unwrap()), "2024-02-29T23:59:07Z");
        assert!(parse_ts("yesterday").is_err());
    }
}
