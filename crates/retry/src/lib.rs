//! How sigbridge's HTTP clients wait before trying again: one bounded exponential backoff with
//! jitter, and one `Retry-After` parser (delta-seconds and HTTP-date, RFC 9110 §10.2.3).
//!
//! It decides delays only; which failures are worth retrying is each client's business (a
//! registry and a signing service disagree on that).

#![forbid(unsafe_code)]

use std::time::{Duration, SystemTime};

use rand::Rng as _;

/// How many times to retry and how long to wait between tries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First backoff delay (doubled each attempt, with ±25 % jitter).
    pub base: Duration,
    /// Largest backoff delay (before jitter).
    pub max_delay: Duration,
    /// Largest honoured `Retry-After`; a server asking for more gets this.
    pub max_retry_after: Duration,
    /// How many retries after the first attempt.
    pub max_retries: u32,
}

impl Default for RetryPolicy {
    /// The policy for a remote service whose outages can last minutes: 1 s doubling to 30 s,
    /// 8 retries, `Retry-After` up to 5 minutes.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
            max_retries: 8,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (0-based): `Retry-After` if the server sent one
    /// (capped at [`max_retry_after`](Self::max_retry_after)), else [`backoff`](Self::backoff).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(ra) => ra.min(self.max_retry_after),
            None => self.backoff(attempt),
        }
    }

    /// Exponential backoff for retry number `attempt` (0-based): `base * 2^attempt`, at most
    /// `max_delay`, with ±25 % jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        jitter(exp)
    }

    /// Whether retry number `attempt` (0-based) is still allowed.
    pub fn allows(&self, attempt: u32) -> bool {
        attempt < self.max_retries
    }
}

/// ±25 % jitter, so that many clients do not retry in lock step.
pub fn jitter(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms < 4 {
        return d;
    }
    let quarter = ms / 4;
    let offset = rand::thread_rng().gen_range(0..=quarter * 2);
    Duration::from_millis(ms - quarter + offset)
}

/// Parse a `Retry-After` value: delta-seconds or an HTTP-date, relative to `now`. A date in
/// the past means "now"; anything unparseable is ignored (`None`). Not capped: that is the
/// policy's job ([`RetryPolicy::delay`]).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<u64>().ok().map(Duration::from_secs);
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(42));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(42))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(42));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("99999999999999999999999", now), None);
    }

    #[test]
    fn backoff_is_bounded_and_honours_retry_after() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(100_000))),
            p.max_retry_after
        );
        for attempt in 0..40 {
            let d = p.delay(attempt, None);
            assert!(d <= p.max_delay + p.max_delay / 4, "{attempt}: {d:?}");
            assert!(d >= p.base - p.base / 4, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn backoff_doubles_within_jitter() {
        let p = RetryPolicy {
            base: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
            max_retries: 3,
        };
        for (attempt, centre) in [(0u32, 200u64), (1, 400), (2, 800)] {
            let d = p.backoff(attempt);
            assert!(
                d >= Duration::from_millis(centre * 3 / 4)
                    && d <= Duration::from_millis(centre * 5 / 4),
                "{attempt}: {d:?}"
            );
        }
        assert!(p.allows(2) && !p.allows(3));
    }

    #[test]
    fn tiny_delays_are_not_jittered_to_zero() {
        assert_eq!(jitter(Duration::from_millis(3)), Duration::from_millis(3));
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
