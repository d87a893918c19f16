//! Room on the store's disk, and what the store does when there is none.
//!
//! Two kinds of failure need opposite answers:
//! - **No space** (`ENOSPC`, `EDQUOT` from a `write`): nothing reached the disk, the partial
//!   write is cut, and the same write can simply be tried again once there is room. The store
//!   is *full*: intake answers 503 `disk_full`, the scheduler hands out nothing (an outcome could
//!   not be recorded, so a post would be repeated), and a watcher probes the log every
//!   [`WATCH_INTERVAL`] until a write goes through again.
//! - **A failed sync** (`fdatasync` of the log, of sled's files, of a folder), or any other I/O
//!   error: after it the page cache may not match the disk, so no later success can be trusted.
//!   The store is *broken*: [`Space::fatal`] logs an ERROR and asks the relay to exit non-zero,
//!   so that systemd restarts it and recovery replays the log from what the disk really holds.
//!
//! Below the reserve (`store.min_free`) intake is refused before the disk is full, so that
//! outcomes, pauses and checkpoints can still be written after intake stops.
//!
//! While *full*:
//! - a worker whose post was under way keeps its outcome and records it once there is room, so
//!   the message is not sent again; a stop while full loses the outcomes still waiting (WARN),
//!   so those messages are posted again after the restart;
//! - the probe (an empty log record) is tried once `statvfs` shows min(16 MiB, `min_free`) free,
//!   at least 1 MiB; the first write that goes through clears *full* and wakes the scheduler;
//! - a command that gives up partway for want of room (its read of sled, while the applier waits
//!   for space, see `headroom.rs`) drops its whole batch, so nothing half-done is written.
//!
//! A checkpoint marker that cannot be written or synced is only retried: the old marker stays
//! true, and the log grows meanwhile. A start on a full disk waits for room
//! (`startup::open_when_room`) instead of exiting into a restart loop.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

/// How often free space is sampled, and a full store probed. Intake and delivery resume within
/// about this long of the disk having room again.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// A full store resumes delivering once this much is free (or the whole reserve, if smaller):
/// enough for many outcomes, while intake waits for the whole reserve.
const OUTCOME_ROOM: u64 = 16 << 20;

pub use crate::config::store::Reserve;

/// Whether an I/O error means the disk (or the user's quota) has no room.
pub fn is_no_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// (available to unprivileged users, total) bytes on the filesystem holding `path`.
pub fn statvfs(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let block = st.f_frsize as u64;
    Ok((
        (st.f_bavail as u64).saturating_mul(block),
        (st.f_blocks as u64).saturating_mul(block),
    ))
}

/// The store's view of its disk, shared by the writer, the applier, the watcher, intake, the
/// scheduler and `/readyz`.
#[derive(Debug)]
pub struct Space {
    /// The store folder, whose filesystem is watched.
    path: PathBuf,
    /// `store.min_free` as configured; made bytes against the filesystem's size.
    reserve: Reserve,
    /// Bytes free for the relay's user at the last sample.
    free: AtomicU64,
    /// The reserve in bytes at the last sample.
    reserve_bytes: AtomicU64,
    /// Free space is below the reserve: intake is refused, outcomes are still written.
    low: AtomicBool,
    /// A log write found no room: nothing can be recorded until a write goes through again.
    full: AtomicBool,
    /// Set (with the reason) when the store can no longer be trusted; the relay exits. The
    /// lock also orders the condvar's waits.
    broken: Mutex<Option<String>>,
    /// `broken` is set: read without the lock, also by waiters that hold it.
    is_broken: AtomicBool,
    /// Signalled when `full` or `broken` changes, for workers waiting to record an outcome
    /// and for the thread that stops the relay.
    changed: Condvar,
    /// Webhooks refused for want of space (under the reserve, or a log write that found no
    /// room); shared with `/metrics`.
    pub refused_writes: Counter,
    /// Times the store became full.
    pub full_events: Counter,
    /// Scheduler passes that handed out nothing because the store was full.
    pub held_passes: Counter,
    /// Set while the applier waits for room before it writes to sled.
    pub applier_waiting: AtomicBool,
}

impl Space {
    pub fn new(path: &Path, reserve: Reserve) -> Space {
        let space = Space {
            path: path.to_path_buf(),
            reserve,
            free: AtomicU64::new(u64::MAX),
            reserve_bytes: AtomicU64::new(0),
            low: AtomicBool::new(false),
            full: AtomicBool::new(false),
            broken: Mutex::new(None),
            is_broken: AtomicBool::new(false),
            changed: Condvar::new(),
            refused_writes: Counter::default(),
            full_events: Counter::default(),
            held_passes: Counter::default(),
            applier_waiting: AtomicBool::new(false),
        };
        space.sample();
        space
    }

    /// Reads the filesystem's free space again; returns the bytes free.
    pub fn sample(&self) -> u64 {
        match statvfs(&self.path) {
            Ok((free, total)) => {
                let reserve = self.reserve.bytes(total);
                self.free.store(free, Ordering::Relaxed);
                self.reserve_bytes.store(reserve, Ordering::Relaxed);
                let low = free < reserve;
                let was = self.low.swap(low, Ordering::Relaxed);
                if low && !was {
                    log::warn!(
                        "Free space on the store's disk ({}) is below store.min_free ({}): new webhooks are refused with 503 disk_full until there is room; deliveries go on.",
                        human(free),
                        human(reserve)
                    );
                } else if was && !low {
                    log::info!(
                        "Free space on the store's disk is back above store.min_free ({} free): new webhooks are accepted again.",
                        human(free)
                    );
                }
                free
            }
            // A filesystem that cannot say is treated as roomy: the writes themselves tell.
            Err(_) => u64::MAX,
        }
    }

    /// Bytes free at the last sample.
    pub fn free(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    /// The reserve in bytes at the last sample.
    pub fn reserve_bytes(&self) -> u64 {
        self.reserve_bytes.load(Ordering::Relaxed)
    }

    /// Free space is below the reserve: refuse intake.
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::Relaxed)
    }

    /// A log write found no room and none has gone through since: record nothing new.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::SeqCst)
    }

    /// Whether an outcome written now is recorded without waiting: the log has room, sled has
    /// room, and the store is not broken. The scheduler hands out nothing otherwise.
    pub fn takes_writes(&self) -> bool {
        !self.is_full()
            && !self.applier_waiting.load(Ordering::SeqCst)
            && !self.is_broken.load(Ordering::SeqCst)
    }

    /// Whether new webhooks are taken: as [`Space::takes_writes`], and above the reserve.
    pub fn accepts_webhooks(&self) -> bool {
        !self.is_low() && self.takes_writes()
    }

    /// The applier starts or stops waiting for room before it writes to sled.
    pub fn set_applier_waiting(&self, waiting: bool) -> bool {
        let was = self.applier_waiting.swap(waiting, Ordering::SeqCst);
        if was != waiting {
            self.notify();
        }
        was
    }

    /// Whether a full store has room again to try a write (see `OUTCOME_ROOM`), by the last
    /// sample.
    pub fn has_room_to_resume(&self) -> bool {
        let need = OUTCOME_ROOM.min(self.reserve_bytes()).max(1 << 20);
        self.free() >= need
    }

    /// A log write failed for want of space.
    pub fn set_full(&self, why: &str) {
        // What statvfs says now, for /readyz and /metrics. (A quota or the inodes can run out
        // while statvfs shows room: `full` alone then stops intake, see `accepts_webhooks`.)
        self.sample();
        if !self.full.swap(true, Ordering::SeqCst) {
            self.full_events.inc();
            log::error!(
                "The store's disk is full ({why}): new webhooks get 503 disk_full and nothing is delivered until there is room, so that no message is posted whose outcome cannot be recorded. Free space on {}; hookrelay resumes by itself.",
                self.path.display()
            );
        }
        self.notify();
    }

    /// A log write went through: the store takes writes again.
    pub fn set_writable(&self) {
        if self.full.swap(false, Ordering::SeqCst) {
            log::info!(
                "The store's disk has room again ({} free): deliveries resume.",
                human(self.free())
            );
            self.notify();
        }
    }

    /// The store cannot be trusted any more: log why and have the relay exit non-zero.
    pub fn fatal(&self, why: &str) {
        if let Ok(mut broken) = self.broken.lock() {
            if broken.is_none() {
                log::error!(
                    "hookrelay stops because the store's disk failed: {why}. Acknowledged webhooks are safe in the log; systemd restarts hookrelay and recovery replays the log from what the disk holds."
                );
                *broken = Some(why.to_string());
                self.is_broken.store(true, Ordering::SeqCst);
            }
        }
        self.notify();
    }

    /// Why the store is broken, if it is.
    pub fn broken(&self) -> Option<String> {
        self.broken.lock().ok().and_then(|b| b.clone())
    }

    /// Waits until the store is broken or `stop` says so; returns the reason if broken.
    pub fn wait_broken(&self, stop: &AtomicBool) -> Option<String> {
        let mut broken = self.broken.lock().ok()?;
        loop {
            if broken.is_some() {
                return broken.clone();
            }
            if stop.load(Ordering::SeqCst) {
                return None;
            }
            broken = self.changed.wait_timeout(broken, WATCH_INTERVAL).ok()?.0;
        }
    }

    /// Waits up to `timeout` for the store to take writes again (see [`Space::takes_writes`]);
    /// whether it does.
    pub fn wait_writable(&self, timeout: Duration) -> bool {
        let Ok(guard) = self.broken.lock() else {
            return false;
        };
        let deadline = std::time::Instant::now() + timeout;
        let mut guard = guard;
        // Only atomics in the condition: the lock is held here and is not reentrant.
        while !self.takes_writes() && guard.is_none() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = match self.changed.wait_timeout(guard, left) {
                Ok((g, _)) => g,
                Err(_) => return false,
            };
        }
        guard.is_none()
    }

    /// What stops intake or delivery now, in sentences for `/readyz` and `/v1/status`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(why) = self.broken() {
            out.push(format!(
                "the store's disk failed ({why}); hookrelay stops so that systemd restarts it"
            ));
            return out;
        }
        if self.is_full() {
            out.push(format!(
                "the store's disk is full ({} free): nothing is accepted or delivered until a write goes through again",
                human(self.free())
            ));
        } else if self.is_low() {
            out.push(format!(
                "free space on the store's disk ({}) is below store.min_free ({}): new webhooks are refused, deliveries go on",
                human(self.free()),
                human(self.reserve_bytes())
            ));
        }
        if self.applier_waiting.load(Ordering::SeqCst) {
            out.push(
                "the store waits for room on its disk before it applies the log; acknowledged webhooks are safe in the log"
                    .to_string(),
            );
        }
        out
    }

    fn notify(&self) {
        // Taking the lock orders the change before any waiter's check.
        drop(self.broken.lock());
        self.changed.notify_all();
    }
}

/// `1.5 GiB`-style sizes for log lines.
pub fn human(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_reserve_is_256_mib_or_5_percent_of_a_small_disk() {
        assert_eq!(Reserve::Default.bytes(1 << 40), 256 << 20);
        assert_eq!(Reserve::Default.bytes(2 << 30), (2u64 << 30) / 20);
        assert_eq!(Reserve::Percent(10.0).bytes(1000), 100);
        assert_eq!(Reserve::Bytes(0).bytes(1000), 0);
    }

    #[test]
    fn enospc_and_edquot_are_no_space_and_eio_is_not() {
        assert!(is_no_space(&std::io::Error::from_raw_os_error(
            libc::ENOSPC
        )));
        assert!(is_no_space(&std::io::Error::from_raw_os_error(
            libc::EDQUOT
        )));
        assert!(!is_no_space(&std::io::Error::from_raw_os_error(libc::EIO)));
    }

    #[test]
    fn a_full_store_is_writable_again_after_a_write_and_waiters_wake() {
        let dir = tempfile::tempdir().unwrap();
        let space = std::sync::Arc::new(Space::new(dir.path(), Reserve::Bytes(0)));
        assert!(space.free() > 0 && !space.is_low());
        space.set_full("test");
        assert!(space.is_full() && !space.accepts_webhooks() && !space.takes_writes());
        assert!(!space.wait_writable(Duration::from_millis(10)));
        let s = std::sync::Arc::clone(&space);
        let waiter = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            (s.wait_writable(Duration::from_secs(30)), started.elapsed())
        });
        // Most likely the waiter waits by now (a waiting thread cannot be observed); if the
        // notification were lost, it would wait the whole 30 s.
        std::thread::sleep(Duration::from_millis(50));
        space.set_writable();
        let (writable, waited) = waiter.join().unwrap();
        assert!(writable && waited < Duration::from_secs(10), "{waited:?}");
        space.fatal("a test sync failure");
        assert_eq!(space.broken().as_deref(), Some("a test sync failure"));
        assert!(!space.wait_writable(Duration::from_millis(10)));
    }
}
