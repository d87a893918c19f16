//! Retry delays: exponential, capped, with jitter so that a region's retries after an outage do
//! not all land on Slack in the same second.

use std::time::Duration;

/// Delay before the attempt that follows `failed_attempts` failures (1 = after the first failure).
/// The nominal delay is `initial * 2^(failed_attempts-1)` capped at `max`; the result is drawn
/// uniformly from its upper half, so it never drops below half the nominal value.
pub fn backoff(failed_attempts: u32, initial: Duration, max: Duration) -> Duration {
    let exp = failed_attempts.saturating_sub(1).min(32);
    let nominal = initial.saturating_mul(1u32 << exp.min(31)).min(max);
    let half = nominal / 2;
    let jitter_ms = fastrand::u64(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_the_jitter_band() {
        let s = Duration::from_secs;
        for (attempt, nominal) in [(1, 1), (2, 2), (3, 4), (4, 8)] {
            for _ in 0..100 {
                let d = backoff(attempt, s(1), s(3600));
                assert!(
                    d >= s(nominal) / 2 && d <= s(nominal),
                    "attempt {attempt}: {d:?}"
                );
            }
        }
    }

    #[test]
    fn delays_never_exceed_the_ceiling() {
        for attempt in [13, 40, u32::MAX] {
            let d = backoff(attempt, Duration::from_secs(1), Duration::from_secs(3600));
            assert!(d <= Duration::from_secs(3600) && d >= Duration::from_secs(1800));
        }
    }
}
