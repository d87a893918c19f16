//! The relay's notion of "now" for intake decisions (receipt time, coalescing windows), behind a
//! trait so tests can move time by hand instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};

pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        crate::store::now_ms()
    }
}

/// A clock that only moves when told to (tests).
pub struct ManualClock {
    /// Current time in ms.
    now: AtomicU64,
}

impl ManualClock {
    /// Starts at the system time, so due times stay near real time.
    pub fn new() -> ManualClock {
        ManualClock {
            now: AtomicU64::new(crate::store::now_ms()),
        }
    }

    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}
