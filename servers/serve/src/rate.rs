//! Per-identity request rate limit: a token bucket per identity holding up to
//! `max_requests_per_minute` calls and refilling at that rate, so a client may burst up to the
//! limit and then continues at the configured pace. A small map behind a mutex is enough for
//! the identities one configuration lists (a keyed-limiter crate would add a dependency tree
//! for the same 40 lines).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every identity that has called.
pub(crate) struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one call from `who`'s bucket at `now`, or say how long until one is available.
    pub(crate) fn check(&self, who: &str, now: Instant) -> Result<(), Duration> {
        self.take(who, now, true)
    }

    /// Whether `who` has a call left at `now`, without taking it (the login form counts only
    /// failures, so it asks first and takes after a failure).
    pub(crate) fn peek(&self, who: &str, now: Instant) -> Result<(), Duration> {
        self.take(who, now, false)
    }

    fn take(&self, who: &str, now: Instant, consume: bool) -> Result<(), Duration> {
        // A poisoned lock only means another call panicked mid-update of a number; the map
        // is still usable.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(who.to_string()).or_insert(Bucket {
            tokens: self.per_minute,
            at: now,
        });
        let per_second = self.per_minute / 60.0;
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(self.per_minute);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            if consume {
                bucket.tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

/// Whole seconds for `Retry-After`, rounded up and at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_beyond_the_limit_waits_for_the_refill_and_identities_do_not_share() {
        let limiter = RateLimiter::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("ci", t0), Ok(()));
        }
        let wait = limiter.check("ci", t0).unwrap_err();
        // 3 a minute: one call every 20 seconds.
        assert_eq!(retry_after_secs(wait), 20);
        assert_eq!(limiter.check("alice", t0), Ok(()));
        assert_eq!(limiter.check("ci", t0 + Duration::from_secs(20)), Ok(()));
        assert!(limiter.check("ci", t0 + Duration::from_secs(20)).is_err());
        // Idle time refills only up to the limit, not beyond.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.check("ci", later), Ok(()));
        }
        assert!(limiter.check("ci", later).is_err());
    }

    #[test]
    fn peeking_takes_nothing() {
        let limiter = RateLimiter::new(1);
        let t0 = Instant::now();
        assert_eq!(limiter.peek("alice", t0), Ok(()));
        assert_eq!(limiter.peek("alice", t0), Ok(()));
        assert_eq!(limiter.check("alice", t0), Ok(()));
        assert!(limiter.peek("alice", t0).is_err());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
    }
}
