//! Per-webhook token bucket (`rate`, `burst`). Only the scheduler thread touches it, so it needs
//! no lock, and every worker is paced by it because the scheduler hands out all the work.

use std::time::Duration;

use crate::config::Rate;

#[derive(Debug)]
pub struct TokenBucket {
    /// Most tokens held: the burst.
    capacity: f64,
    /// Tokens now.
    tokens: f64,
    /// Milliseconds per token.
    interval_ms: f64,
    /// When `tokens` was last brought up to date.
    updated_ms: u64,
}

impl TokenBucket {
    /// A full bucket: a quiet webhook may send `burst` messages at once.
    pub fn new(rate: Rate, burst: u32, now_ms: u64) -> TokenBucket {
        TokenBucket {
            capacity: f64::from(burst),
            tokens: f64::from(burst),
            interval_ms: rate.interval().as_secs_f64() * 1000.0,
            updated_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        if now_ms > self.updated_ms {
            let gained = (now_ms - self.updated_ms) as f64 / self.interval_ms;
            self.tokens = (self.tokens + gained).min(self.capacity);
            self.updated_ms = now_ms;
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn try_take(&mut self, now_ms: u64) -> Result<(), Duration> {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let missing_ms = ((1.0 - self.tokens) * self.interval_ms).ceil() as u64;
            Err(Duration::from_millis(missing_ms.max(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_the_rate_applies() {
        let mut b = TokenBucket::new(Rate::SLACK_DEFAULT, 3, 0);
        assert!(b.try_take(0).is_ok() && b.try_take(0).is_ok() && b.try_take(0).is_ok());
        assert_eq!(b.try_take(0), Err(Duration::from_millis(1000)));
        assert_eq!(b.try_take(400), Err(Duration::from_millis(600)));
        assert!(b.try_take(1000).is_ok());
        assert!(b.try_take(1000).is_err());
    }

    #[test]
    fn an_idle_bucket_refills_only_to_the_burst() {
        let mut b = TokenBucket::new(Rate::parse("k", "50/h").unwrap(), 2, 0);
        assert!(b.try_take(0).is_ok() && b.try_take(0).is_ok());
        let hour = 3_600_000;
        assert!(b.try_take(hour).is_ok() && b.try_take(hour).is_ok());
        assert!(b.try_take(hour).is_err());
    }
}
