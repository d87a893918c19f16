//! `[store]`'s validated values that the store runs with: memory, checkpoints, the log's
//! segments and the free-space reserve.

use std::time::Duration;

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
