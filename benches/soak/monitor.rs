//! The monitor: samples the store's size and the relay's RSS, prints a progress line every
//! `REPORT_EVERY`, and keeps the maxima for the summary.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::clients::Load;
use super::common::dir_size;
use super::relay::rss;
use super::sink::SinkCounts;
use super::{mb, REPORT_EVERY};

/// Samples store size and RSS, prints progress every `REPORT_EVERY`, keeps the maxima.
pub(super) struct Monitor<'a> {
    pub(super) start: Instant,
    pub(super) next_report: Instant,
    pub(super) store: &'a Path,
    pub(super) pid: u32,
    pub(super) load: &'a Load,
    pub(super) sink: &'a SinkCounts,
    pub(super) max_rss: u64,
    pub(super) max_store: u64,
}

impl Monitor<'_> {
    /// One sample; prints a progress line if one is due (or `force`). Returns the store size.
    pub(super) fn tick(&mut self, phase: &str, force: bool) -> u64 {
        let store = dir_size(self.store);
        self.max_store = self.max_store.max(store);
        let rss = rss(self.pid);
        if let Some(r) = rss {
            self.max_rss = self.max_rss.max(r);
        }
        let now = Instant::now();
        if force || now >= self.next_report {
            while self.next_report <= now {
                self.next_report += REPORT_EVERY;
            }
            println!(
                "[{:>6.0}s] {phase:<8} posted {:>9}  delivered {:>9}  backlog {:>6}  errors {:>4}  \
                 store {:>8.1} MB  rss {:>7.1} MB",
                (now - self.start).as_secs_f64(),
                self.load.posted.load(Ordering::Relaxed),
                self.sink.received.load(Ordering::Relaxed),
                self.load.backlog(self.sink),
                self.load.errors.load(Ordering::Relaxed),
                mb(store),
                rss.map_or(f64::NAN, mb),
            );
        }
        store
    }
}
