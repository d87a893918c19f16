//! The durable store: a write-ahead log in front of one sled tree.
//!
//! Everything that touches sled is in this folder, so its use is easy to see, to test and, if it
//! ever fails the crash tests, to replace. Readers (the scheduler, workers, tests) use [`Store`];
//! writers send commands to the [`journal::Journal`], which group-commits them to the [`wal`];
//! the applier (`applier.rs`) applies the log to sled behind it and checkpoints.
//!
//! - The write path: `journal/` (the writer thread, recovery, counters), `commands.rs` (what the
//!   writer takes and answers), `batch/` (commands → sled writes, implementing `queue.rs`),
//!   `app_mode.rs` and `click.rs` (what a new version or a click queues), `overlay.rs`,
//!   `applier.rs`, `progress.rs` (the read barrier), `wal/` (the log itself).
//! - What is stored: `keys.rs` (key layout), `records.rs` (the stored types), `codec/` (their
//!   compact encoding), `index.rs` and `listing.rs` (list indexes and the walks over them),
//!   `bodies.rs` (what the store asks a source about a body).
//! - Keeping it healthy: `space.rs` and `headroom.rs` (a full disk), `disk_sync.rs` (the
//!   `fdatasync` sled's flush lacks), `sled_open.rs`, `retention.rs`, `compact.rs`.
//! - Tools on a stopped relay: `check.rs` (`store check`), `dump.rs` (`store dump`).

mod app_mode;
mod applier;
mod batch;
pub mod bodies;
pub mod check;
pub mod click;
pub mod codec;
pub mod commands;
pub mod compact;
pub mod disk_sync;
pub mod dump;
mod headroom;
pub mod index;
pub mod journal;
pub mod keys;
pub mod listing;
mod overlay;
pub mod progress;
mod queue;
pub mod records;
pub mod retention;
mod sled_open;
pub mod space;
pub mod wal;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use progress::Progress;

use records::{Delivery, Notification};
pub use sled_open::is_locked;
pub(crate) use sled_open::open_sled;
use sled_open::remove_unfinished_snapshots;

/// The layout version written into every store, checked at open so that a newer store is never
/// misread by an older relay (and an older one is migrated when the layout changes).
///
/// 2: the write-ahead log (`wal/`) holds acknowledged writes sled may not have yet, so a relay
/// that does not know it must not open the store. Format 1 opens as is (its queue counters and
/// id sequence are taken from sled once).
/// 3: list indexes (`store/index.rs`), written with the data; an older store gets them built
/// once. An older relay must not write to it, or its records would miss their index keys.
pub const FORMAT_VERSION: u32 = 4;

/// Why the store could not do what was asked. Cloneable, because one failed group commit is
/// answered to every request that waited on it.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum StoreError {
    #[error("the store failed: {0}")]
    Sled(String),
    #[error("the store's disk failed: {0}")]
    Io(String),
    /// Retryable: nothing was written, and the same write succeeds once there is room.
    #[error("the store's disk is full: {0}")]
    DiskFull(String),
    #[error("the store is closed (the relay is stopping)")]
    Closed,
    #[error("the store holds a record it cannot read: {0}")]
    Corrupt(String),
    #[error("the store's log is damaged: {0}")]
    Damaged(String),
    #[error("the store at {path} has format version {found}, this hookrelay reads up to {supported}; use a newer hookrelay")]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(io) => io.into(),
            other => StoreError::Sled(other.to_string()),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        if space::is_no_space(&e) {
            StoreError::DiskFull(e.to_string())
        } else {
            StoreError::Io(e.to_string())
        }
    }
}

pub use crate::config::store::StoreOptions;

/// Read access to the store. Cheap to clone (sled's handles are reference counted).
#[derive(Clone)]
pub struct Store {
    /// The one tree everything lives in (see [`keys`]).
    db: sled::Db,
    /// The directory, for `fdatasync` and for messages.
    path: PathBuf,
    /// Sizes and intervals, for the journal and applier.
    pub(crate) options: StoreOptions,
    /// How far the log is written and applied: reads wait for sled to catch up.
    pub(crate) progress: Arc<Progress>,
    /// Room on the disk, and whether the store is full or broken (`space.rs`).
    pub(crate) space: Arc<space::Space>,
    /// What only the sources can say about a body (a repeat? its coalescing key?).
    bodies: Arc<dyn bodies::Bodies>,
}

impl Store {
    /// Opens (or creates) the store with the default options.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, StoreOptions::default())
    }

    /// Opens (or creates) the store and checks its format version.
    pub fn open_with(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(path)?;
        compact::finish_unfinished(path)?;
        remove_unfinished_snapshots(path)?;
        // No background flush: the log makes writes durable, and the applier's checkpoints
        // flush sled; a timer flush would only add writes the guarantees do not rest on.
        let db = open_sled(
            sled::Config::new()
                .path(path)
                .cache_capacity(options.cache_bytes)
                .flush_every_ms(None),
        )?;
        match db.get(keys::FORMAT_VERSION)? {
            None => {
                // Nothing in it: a store this release creates, whose records bring their index
                // keys. (Data without a format version is older than the indexes: they are
                // built once at start.)
                if db.is_empty() {
                    index::mark_current(&db)?;
                }
                db.insert(keys::FORMAT_VERSION, FORMAT_VERSION.to_string().as_bytes())?;
                db.flush()?;
            }
            Some(v) => {
                let found: u32 = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt("format version".into()))?;
                if found > FORMAT_VERSION {
                    return Err(StoreError::TooNew {
                        path: path.to_path_buf(),
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                if found < FORMAT_VERSION {
                    log::info!(
                        "Upgrading the store at {} from format {found} to {FORMAT_VERSION}.",
                        path.display()
                    );
                    db.insert(keys::FORMAT_VERSION, FORMAT_VERSION.to_string().as_bytes())?;
                    db.flush()?;
                }
            }
        }
        let space = Arc::new(space::Space::new(path, options.min_free));
        Ok(Store {
            db,
            path: path.to_path_buf(),
            options,
            progress: Arc::new(Progress::default()),
            space,
            bodies: Arc::new(bodies::Plain),
        })
    }

    /// The store with the sources' answers about bodies; set before the journal starts.
    pub fn with_bodies(mut self, bodies: Arc<dyn bodies::Bodies>) -> Store {
        self.bodies = bodies;
        self
    }

    pub(crate) fn bodies(&self) -> &dyn bodies::Bodies {
        self.bodies.as_ref()
    }

    /// Waits until sled holds every write acknowledged so far (no wait unless a burst is being
    /// applied), so a read right after a 202 sees what it stored.
    ///
    /// While the applier waits for room on the disk this fails at once instead of waiting: a
    /// read must not hold an HTTP worker for as long as the disk stays full.
    pub fn sync_reads(&self) -> Result<(), StoreError> {
        self.progress.catch_up_unless(&self.space.applier_waiting)
    }

    /// [`Store::sync_reads`] for at most `timeout`: whether sled caught up.
    pub fn sync_reads_for(&self, timeout: Duration) -> Result<bool, StoreError> {
        self.progress.catch_up_for(timeout)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Room on the store's disk, and whether the store takes writes.
    pub fn space(&self) -> &space::Space {
        &self.space
    }

    /// The same, to share with a thread that outlives this handle's borrow.
    pub fn space_arc(&self) -> &Arc<space::Space> {
        &self.space
    }

    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    pub fn notification(&self, id: u64) -> Result<Option<Notification>, StoreError> {
        self.sync_reads()?;
        self.get_stored(&keys::notification(id))
    }

    pub fn delivery(&self, id: u64) -> Result<Option<Delivery>, StoreError> {
        self.sync_reads()?;
        self.get_stored(&keys::delivery(id))
    }

    /// [`Store::notification`] without waiting for the applier: for a scan that called
    /// [`Store::sync_reads`] once at its start.
    pub fn notification_as_applied(&self, id: u64) -> Result<Option<Notification>, StoreError> {
        self.get_stored(&keys::notification(id))
    }

    /// [`Store::delivery`] without waiting for the applier (see above).
    pub fn delivery_as_applied(&self, id: u64) -> Result<Option<Delivery>, StoreError> {
        self.get_stored(&keys::delivery(id))
    }

    /// The notification id stored for a source's external id, if any.
    pub fn find_external(
        &self,
        source: &str,
        external_id: &str,
    ) -> Result<Option<u64>, StoreError> {
        self.sync_reads()?;
        Ok(self
            .db
            .get(keys::external(source, external_id))?
            .as_deref()
            .and_then(keys_id_value))
    }

    /// The earliest entry of a region's due queue: (due ms, delivery id).
    pub fn first_due(&self, region: &str) -> Result<Option<(u64, u64)>, StoreError> {
        match self.db.scan_prefix(keys::due_prefix(region)).next() {
            None => Ok(None),
            Some(entry) => {
                let (key, _) = entry?;
                let (_, due, id) = keys::parse_due(&key)
                    .ok_or_else(|| StoreError::Corrupt("due-queue key".into()))?;
                Ok(Some((due, id)))
            }
        }
    }

    /// A region's due queue from its head: (due ms, delivery id), earliest first.
    pub fn due_entries(
        &self,
        region: &str,
    ) -> impl Iterator<Item = Result<(u64, u64), StoreError>> {
        self.db.scan_prefix(keys::due_prefix(region)).map(|entry| {
            let (key, _) = entry?;
            keys::parse_due(&key)
                .map(|(_, due, id)| (due, id))
                .ok_or_else(|| StoreError::Corrupt("due-queue key".into()))
        })
    }

    /// Pending deliveries per region, by scanning the due queue (the journal keeps running
    /// counters; this is for tests and for counting a store once).
    pub fn pending_by_region(&self) -> Result<BTreeMap<String, usize>, StoreError> {
        self.sync_reads()?;
        self.pending_by_region_unchecked()
    }

    fn pending_by_region_unchecked(&self) -> Result<BTreeMap<String, usize>, StoreError> {
        let mut counts = BTreeMap::new();
        for entry in self.db.scan_prefix([keys::DUE]) {
            let (key, _) = entry?;
            if let Some((region, _, _)) = keys::parse_due(&key) {
                *counts.entry(region.to_string()).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    /// Regions paused by a 429, with the time (ms) the pause ends.
    pub fn pauses(&self) -> Result<HashMap<String, u64>, StoreError> {
        let mut out = HashMap::new();
        for entry in self.db.scan_prefix([keys::PAUSE]) {
            let (key, value) = entry?;
            let region = String::from_utf8_lossy(&key[1..]).into_owned();
            if let Ok(bytes) = <[u8; 8]>::try_from(value.as_ref()) {
                out.insert(region, u64::from_be_bytes(bytes));
            }
        }
        Ok(out)
    }

    /// Regions paused until someone resumes them, with the reason.
    pub fn manual_pauses(&self) -> Result<HashMap<String, String>, StoreError> {
        let mut out = HashMap::new();
        for entry in self.db.scan_prefix([keys::MANUAL_PAUSE]) {
            let (key, value) = entry?;
            out.insert(
                String::from_utf8_lossy(&key[1..]).into_owned(),
                String::from_utf8_lossy(&value).into_owned(),
            );
        }
        Ok(out)
    }

    /// Every delivery in the dead-letter list, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<Delivery>, StoreError> {
        self.sync_reads()?;
        self.dead_letters_as_applied()
    }

    /// [`Store::dead_letters`] without waiting for the applier: for the status page, which
    /// must render while the applier waits for disk space (it may then miss the newest).
    pub fn dead_letters_as_applied(&self) -> Result<Vec<Delivery>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix([keys::DEAD]) {
            let (key, _) = entry?;
            let id = keys::id_from(&key).ok_or_else(|| StoreError::Corrupt("dead key".into()))?;
            if let Some(d) = self.delivery_as_applied(id)? {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Dead letters, by scanning their index (for counting a store once).
    fn dead_letter_count_unchecked(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for entry in self.db.scan_prefix([keys::DEAD]) {
            entry?;
            n += 1;
        }
        Ok(n)
    }

    fn get_stored<T: codec::Stored>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.db.get(key)? {
            None => Ok(None),
            Some(v) => decode(&v).map(Some),
        }
    }
}

/// A stored value, in whichever encoding it was written (`codec.rs`).
pub fn decode<T: codec::Stored>(bytes: &[u8]) -> Result<T, StoreError> {
    T::from_bytes(bytes)
}

/// A value as the store writes it now (`codec.rs`).
pub(crate) fn encode<T: codec::Stored>(value: &T) -> Vec<u8> {
    value.to_bytes()
}

fn keys_id_value(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
