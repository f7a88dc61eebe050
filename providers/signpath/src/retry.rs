//! Retry policy for idempotent calls and `Retry-After` parsing.

use std::time::{Duration, SystemTime};

use rand::Rng as _;

/// How idempotent calls (GET, cancel) are retried on 429/502/503/504 and network errors.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// First backoff delay (doubled each attempt, with jitter).
    pub base: Duration,
    /// Largest backoff delay.
    pub max_delay: Duration,
    /// Largest honoured `Retry-After`.
    pub max_retry_after: Duration,
    /// How many retries after the first attempt.
    pub max_retries: u32,
}

impl Default for RetryPolicy {
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
    /// (capped), else exponential backoff with ±25 % jitter.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_retry_after);
        }
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        jitter(exp)
    }
}

/// ±25 % jitter, so that many clients do not retry in lock step.
pub(crate) fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis().min(u128::from(u64::MAX)) as u64;
    if ms < 4 {
        return d;
    }
    let quarter = ms / 4;
    let offset = rand::thread_rng().gen_range(0..=quarter * 2);
    Duration::from_millis(ms - quarter + offset)
}

/// Parse a `Retry-After` value: delta-seconds or an HTTP-date (RFC 9110 §10.2.3). A date in
/// the past means "now"; anything unparseable is ignored (`None`).
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
            assert!(d >= p.base - p.base / 4);
        }
    }
}
