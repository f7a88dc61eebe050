//! Test-only knobs. Nothing here changes a release build: every knob reads its variable only
//! when debug assertions are on (the test profile), and answers the production value otherwise.

/// Names the variable that scales the lost-update settle and confirm delays (a float, `0..=1`).
///
/// Tests that do not measure concurrency set it to make the delays short; tests of concurrent
/// writers leave it unset so the delays stay realistic.
pub const DELAY_SCALE_VAR: &str = "SIGBRIDGE_TEST_DELAY_SCALE";

/// The factor to multiply settle/confirm delays by: `1.0` in release builds, when the variable
/// is unset, or when it is not a number in `0..=1` (a test knob may shorten, never lengthen).
///
/// Call it where the delay is computed, e.g. `SETTLE_DELAY.mul_f64(settle_scale())`.
pub fn settle_scale() -> f64 {
    if !cfg!(debug_assertions) {
        return 1.0;
    }
    parse_scale(std::env::var(DELAY_SCALE_VAR).ok().as_deref())
}

fn parse_scale(value: Option<&str>) -> f64 {
    value
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| (0.0..=1.0).contains(s))
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::parse_scale;

    #[test]
    fn unset_or_bad_values_keep_the_real_delay() {
        assert_eq!(parse_scale(None), 1.0);
        assert_eq!(parse_scale(Some("")), 1.0);
        assert_eq!(parse_scale(Some("fast")), 1.0);
        assert_eq!(parse_scale(Some("NaN")), 1.0);
        assert_eq!(parse_scale(Some("2")), 1.0);
        assert_eq!(parse_scale(Some("-0.5")), 1.0);
    }

    #[test]
    fn a_fraction_shortens_the_delay() {
        assert_eq!(parse_scale(Some("0.1")), 0.1);
        assert_eq!(parse_scale(Some(" 0 ")), 0.0);
        assert_eq!(parse_scale(Some("1")), 1.0);
    }
}
