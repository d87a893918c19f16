//! The relay's notion of "now" for intake decisions (receipt time, coalescing windows), behind a
//! trait so tests can move time by hand instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Calls `wake` whenever the time jumps, so a thread waiting for a time (the scheduler,
    /// for a token or a due message) looks again. The system clock never jumps: nothing to do.
    fn on_advance(&self, _wake: Box<dyn Fn() + Send + Sync>) {}
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
    /// Told after every `advance`.
    wakers: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
}

impl ManualClock {
    /// Starts at the system time, so due times stay near real time.
    pub fn new() -> ManualClock {
        ManualClock {
            now: AtomicU64::new(crate::store::now_ms()),
            wakers: Mutex::new(Vec::new()),
        }
    }

    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
        if let Ok(wakers) = self.wakers.lock() {
            for wake in wakers.iter() {
                wake();
            }
        }
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

    fn on_advance(&self, wake: Box<dyn Fn() + Send + Sync>) {
        if let Ok(mut wakers) = self.wakers.lock() {
            wakers.push(wake);
        }
    }
}
