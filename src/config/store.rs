//! `[store]`: the store's directory and retention, and the values the store runs with (memory,
//! checkpoints, the log's segments and the free-space reserve).

use std::path::PathBuf;
use std::time::Duration;

use super::raw::RawStore;
use super::values::{self, parse_duration};
use super::ConfigError;

/// The default reserve: 256 MiB, or 5% of a smaller filesystem (a 2 GiB disk keeps 100 MiB).
const DEFAULT_RESERVE_BYTES: u64 = 256 << 20;
const DEFAULT_RESERVE_PERCENT: f64 = 5.0;

/// `store.min_free`: free space below which intake is refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reserve {
    /// The smaller of 256 MiB and 5% of the filesystem.
    Default,
    /// A fixed number of bytes (0: no reserve).
    Bytes(u64),
    /// A share of the filesystem's size.
    Percent(f64),
}

impl Reserve {
    /// The reserve in bytes on a filesystem of `total` bytes.
    pub fn bytes(&self, total: u64) -> u64 {
        let share = |p: f64| (total as f64 * p / 100.0) as u64;
        match *self {
            Reserve::Default => DEFAULT_RESERVE_BYTES.min(share(DEFAULT_RESERVE_PERCENT)),
            Reserve::Bytes(b) => b,
            Reserve::Percent(p) => share(p),
        }
    }
}

/// How the store uses memory and disk (`[store]` in the config).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreOptions {
    /// sled's page cache: the bulk of the relay's memory once the store is large.
    pub cache_bytes: u64,
    /// A checkpoint (sled flush + `fdatasync`, then old log segments deleted) at least this
    /// often while there is something to checkpoint.
    pub checkpoint_interval: Duration,
    /// ... and sooner once this many bytes were applied since the last one, which bounds the
    /// log on disk and what a restart replays.
    pub checkpoint_bytes: u64,
    /// The size at which the log starts a new segment file.
    pub segment_bytes: u64,
    /// `store.min_free`: intake is refused while less than this is free on the store's disk.
    pub min_free: Reserve,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: 64 << 20,
            checkpoint_interval: Duration::from_secs(30),
            checkpoint_bytes: 64 << 20,
            segment_bytes: 16 << 20,
            min_free: Reserve::Default,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The sled directory; created if missing.
    pub path: PathBuf,
    /// Delivered notifications are purged this long after their last delivery.
    pub retention: Duration,
    /// Dead letters are purged this long after they died.
    pub dead_letter_retention: Duration,
    /// How often the background purge runs.
    pub purge_interval: Duration,
    /// Undelivered deliveries above which intake answers 503 instead of filling the disk; 0: no limit.
    pub max_pending: u64,
    /// sled's cache, checkpoints and log segments.
    pub options: StoreOptions,
}

/// `[store]`'s paths, retention and options, checked.
pub(super) fn store_settings(raw: &RawStore) -> Result<StoreSettings, ConfigError> {
    Ok(StoreSettings {
        path: PathBuf::from(&raw.path),
        retention: parse_duration("store.retention", &raw.retention)?,
        dead_letter_retention: parse_duration(
            "store.dead_letter_retention",
            &raw.dead_letter_retention,
        )?,
        purge_interval: parse_duration("store.purge_interval", &raw.purge_interval)?,
        max_pending: raw.max_pending,
        options: store_options(raw)?,
    })
}

/// The `[store]` sizes and intervals, checked.
fn store_options(raw: &RawStore) -> Result<StoreOptions, ConfigError> {
    let cache_bytes = values::parse_size("store.cache_size", &raw.cache_size)?;
    if cache_bytes < 1 << 20 {
        return Err(ConfigError::invalid(
            "store.cache_size",
            &raw.cache_size,
            "is below 1MiB, too small for sled to hold its index",
            "\"64MiB\"",
        ));
    }
    let checkpoint_interval =
        values::parse_duration("store.checkpoint_interval", &raw.checkpoint_interval)?;
    if checkpoint_interval < std::time::Duration::from_millis(10) {
        return Err(ConfigError::invalid(
            "store.checkpoint_interval",
            &raw.checkpoint_interval,
            "is shorter than 10ms",
            "\"30s\"",
        ));
    }
    let checkpoint_bytes = values::parse_size("store.checkpoint_size", &raw.checkpoint_size)?;
    let min_free = values::parse_reserve("store.min_free", &raw.min_free)?;
    Ok(StoreOptions {
        min_free,
        cache_bytes,
        checkpoint_interval,
        checkpoint_bytes,
        // A quarter of the checkpoint size, so a checkpoint deletes whole files, at least 1 MiB.
        segment_bytes: (checkpoint_bytes / 4).max(1 << 20),
    })
}
