//! Where a keyless signature's signing time comes from: the integrated time of a
//! transparency-log entry whose signed entry timestamp verified against the trusted root's log
//! key (an entry verified by its inclusion proof alone has no signed time; see `crate::tlog`).
//! Nothing else is accepted in release builds.
//!
//! Test-only seam (debug builds only, compiled out of release builds):
//! `SIGBRIDGE_TEST_KEYLESS_SIGNING_TIME=<unix seconds>` stands in for a verified entry's
//! integrated time where a test cannot make one (`attach --format bundle` writes no
//! `tlogEntries`). It is read only when no verified time exists.

use std::time::SystemTime;

/// The message when no verified transparency-log time exists.
pub const NEEDS_TLOG: &str = "keyless verification needs a verified transparency-log entry (its integrated time is the signing time the certificate is checked at)";

/// The debug-only stand-in for a verified integrated time.
pub const TEST_SIGNING_TIME_VAR: &str = "SIGBRIDGE_TEST_KEYLESS_SIGNING_TIME";

/// The signing time to check a keyless signature at: `verified_tlog_time` (the integrated time
/// of a verified transparency-log entry), else a refusal.
pub fn require(verified_tlog_time: Option<SystemTime>) -> Result<SystemTime, String> {
    if let Some(t) = verified_tlog_time {
        return Ok(t);
    }
    test_seam().ok_or_else(|| NEEDS_TLOG.to_string())
}

#[cfg(debug_assertions)]
fn test_seam() -> Option<SystemTime> {
    let secs: u64 = std::env::var(TEST_SIGNING_TIME_VAR).ok()?.parse().ok()?;
    Some(super::chain::unix(secs))
}

#[cfg(not(debug_assertions))]
fn test_seam() -> Option<SystemTime> {
    None
}
