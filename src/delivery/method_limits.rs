//! Slack's per-method rate tiers for Web API calls, shared by every worker.
//!
//! The scheduler's token bucket paces a region as a whole; the Web API also limits each method
//! per app and workspace (`pins.add` 20 a minute, `chat.update` 50 …) and `chat.postMessage` per
//! channel. Before a call, a worker takes a token here; without one it makes no request and
//! the region waits (the delivery keeps its place), so Slack never sees us exceed a tier.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::rate_limit::TokenBucket;
use crate::config::tokens::BotToken;
use crate::config::Rate;
use crate::slack::web_api::Method;

/// Buckets by (token fingerprint, method, channel for per-channel methods).
#[derive(Default)]
pub struct MethodLimits {
    /// Created on first use; a handful per token, so the map stays small.
    buckets: Mutex<HashMap<(String, Method, String), TokenBucket>>,
}

impl MethodLimits {
    /// Takes one call of `method` for `token` (and `channel`, for per-channel methods), or says
    /// how long until one is allowed.
    pub fn try_take(
        &self,
        token: &BotToken,
        method: Method,
        channel: &str,
        now_ms: u64,
    ) -> Result<(), Duration> {
        let channel = if method.per_channel() { channel } else { "" };
        let key = (token.fingerprint(), method, channel.to_string());
        let Ok(mut buckets) = self.buckets.lock() else {
            // A worker panicked while holding the lock; pacing by the region's bucket remains.
            return Ok(());
        };
        let bucket = buckets.entry(key).or_insert_with(|| {
            let (interval, burst) = method.budget();
            TokenBucket::new(
                Rate {
                    count: 1,
                    per: interval,
                },
                burst,
                now_ms,
            )
        });
        bucket.try_take(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_held_to_tier_2_and_posts_are_counted_per_channel() {
        let limits = MethodLimits::default();
        let token = BotToken::parse("xoxb-1").unwrap();
        assert!(limits.try_take(&token, Method::PinsAdd, "C1", 0).is_ok());
        assert!(limits.try_take(&token, Method::PinsAdd, "C2", 0).is_ok());
        // Tier 2 is 20 a minute: the third pin in the same instant waits 3 s.
        assert_eq!(
            limits.try_take(&token, Method::PinsAdd, "C1", 0),
            Err(Duration::from_secs(3))
        );
        for _ in 0..3 {
            assert!(limits
                .try_take(&token, Method::PostMessage, "C1", 0)
                .is_ok());
        }
        assert!(limits
            .try_take(&token, Method::PostMessage, "C1", 0)
            .is_err());
        assert!(limits
            .try_take(&token, Method::PostMessage, "C2", 0)
            .is_ok());
        // Another app's token has its own budget.
        let other = BotToken::parse("xoxb-2").unwrap();
        assert!(limits.try_take(&other, Method::PinsAdd, "C1", 0).is_ok());
    }
}
