//! Per-credential rate limits (GCRA, `governor`): every authenticated request counts
//! against its account, every login attempt against the login name tried, so one
//! tablet gone wild or one password-guessing script slows only itself. Beyond the
//! limit the answer is 429 with `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::{ApiError, Result};

/// The two limiters and their clock.
#[derive(Debug)]
pub struct RateLimits {
    requests: DefaultKeyedRateLimiter<String>,
    logins: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

impl RateLimits {
    /// `per_sec` requests per second per account with bursts of `burst`; `logins_per_min`
    /// login attempts per minute per login name (bursts of the same size).
    pub fn new(per_sec: u32, burst: u32, logins_per_min: u32) -> Self {
        Self {
            requests: DefaultKeyedRateLimiter::keyed(Quota::per_second(nz(per_sec)).allow_burst(nz(burst))),
            logins: DefaultKeyedRateLimiter::keyed(
                Quota::per_minute(nz(logins_per_min)).allow_burst(nz(logins_per_min)),
            ),
            clock: DefaultClock::default(),
        }
    }

    fn check(&self, limiter: &DefaultKeyedRateLimiter<String>, key: &str) -> Result<()> {
        limiter.check_key(&key.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::TooManyRequests { retry_after_secs: wait.as_secs().max(1) }
        })
    }

    /// Counts one request of account `login`.
    pub fn request(&self, login: &str) -> Result<()> {
        self.check(&self.requests, login)
    }

    /// Counts one login attempt for the login name `login` (case-insensitive).
    pub fn login(&self, login: &str) -> Result<()> {
        self.check(&self.logins, &login.to_lowercase())
    }

    /// Forgets keys whose limits have fully recovered, so guessed login names do not
    /// accumulate (called periodically).
    pub fn forget_idle(&self) {
        self.requests.retain_recent();
        self.logins.retain_recent();
    }
}

/// How often idle keys are forgotten.
pub const FORGET_EVERY: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_key_waits_and_other_keys_do_not() {
        let l = RateLimits::new(1, 3, 2);
        for _ in 0..3 {
            l.request("a").unwrap();
        }
        assert!(matches!(l.request("a"), Err(ApiError::TooManyRequests { retry_after_secs: 1 })));
        l.request("b").unwrap();
        l.login("Admin").unwrap();
        l.login("admin").unwrap();
        let Err(ApiError::TooManyRequests { retry_after_secs }) = l.login("ADMIN") else { panic!("third login") };
        assert!((1..=30).contains(&retry_after_secs), "{retry_after_secs}");
    }
}
