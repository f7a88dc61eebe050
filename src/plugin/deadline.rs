//! cosign's `ctxDeadline` (RFC 3339 with nanoseconds and a local offset): when cosign kills the
//! plugin. An approval wait must end, with an answer, before that.

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Time kept back from cosign's deadline to answer and let cosign write the signature.
pub const MARGIN: Duration = Duration::from_secs(5);

/// How long a signer may wait when cosign's deadline is `deadline` and it is now `now`:
/// `None` without a deadline (the signer's default), zero when the margin is already used up.
pub fn budget(deadline: Option<&str>, now: OffsetDateTime) -> Result<Option<Duration>> {
    let Some(text) = deadline.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        Error::InvalidInput(format!(
            "cosign passed ctxDeadline {text:?}, which is not an RFC 3339 time: {e}"
        ))
    })?;
    let left = Duration::try_from(at - now).unwrap_or(Duration::ZERO);
    Ok(Some(left.saturating_sub(MARGIN)))
}

/// What to tell the user when the wait ran out: how to give cosign (and so the plugin) longer.
pub fn raise_hint(budget: Duration) -> String {
    format!(
        "the plugin gave up after {}s so that cosign's deadline is kept; for approvals that take longer raise cosign's timeout: `cosign sign --timeout 30m ...` or COSIGN_TIMEOUT=30m (the default is 3m)",
        budget.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datetime(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn budget_is_the_time_left_minus_the_margin() {
        let now = datetime("2026-09-01T08:00:00Z");
        let b = budget(Some("2026-09-01T10:03:00.51+02:00"), now).unwrap();
        assert_eq!(b, Some(Duration::from_millis(180_510) - MARGIN));
    }

    #[test]
    fn a_past_deadline_leaves_nothing() {
        let now = datetime("2026-09-01T09:00:00Z");
        let b = budget(Some("2026-09-01T10:03:00.51+02:00"), now).unwrap();
        assert_eq!(b, Some(Duration::ZERO));
    }

    #[test]
    fn no_deadline_means_the_signers_default() {
        let now = datetime("2026-09-01T09:00:00Z");
        assert_eq!(budget(None, now).unwrap(), None);
        assert_eq!(budget(Some(""), now).unwrap(), None);
    }

    #[test]
    fn a_malformed_deadline_is_an_error() {
        let now = datetime("2026-09-01T09:00:00Z");
        let err = budget(Some("tomorrow"), now).unwrap_err().to_string();
        assert!(err.contains("ctxDeadline"), "{err}");
    }

    #[test]
    fn the_hint_names_cosign_timeout() {
        let hint = raise_hint(Duration::from_secs(175));
        assert!(
            hint.contains("COSIGN_TIMEOUT") && hint.contains("--timeout"),
            "{hint}"
        );
    }
}
