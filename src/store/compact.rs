//! Giving disk space back: sled keeps its file at its peak size, so after retention purges a
//! burst the store would hold on to the burst's space for good. Compaction copies what the
//! store holds into a fresh sled beside it and swaps the files in.
//!
//! It runs while the store is closed: at start-up, when the retention pass found the file much
//! bigger than what it holds (it leaves [`WANTED`] in the store directory), and from
//! `hookrelay store compact` on a stopped relay. Only sled's files are rewritten; the log
//! (`wal/`) stays, so it runs only when the log has nothing sled lacks.
//!
//! A crash at any point leaves a store that opens: the copy is built in `compacting/` and
//! marked `DONE` once durable; the old files move to `superseded/`, `SWAPPING` marks that
//! they all did, then the new ones move in. An open finishes a marked swap and deletes an
//! unmarked copy.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::disk_sync::DiskSync;
use super::wal::{self, checkpoint, scan};
use super::StoreError;

/// Left by the retention pass: compact at the next start.
pub const WANTED: &str = "compact-wanted";
const COMPACTING: &str = "compacting";
const SUPERSEDED: &str = "superseded";
const DONE: &str = "DONE";
const SWAPPING: &str = "SWAPPING";
/// Keys copied per sled batch.
const BATCH: usize = 4096;

/// The file is worth compacting when it is more than this many times what it holds...
pub const WORTH_FACTOR: u64 = 2;
/// ...and the difference is at least this much (small stores are not worth a start's delay).
pub const WORTH_BYTES: u64 = 64 << 20;

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// sled's files before and after, in bytes.
    pub before: u64,
    pub after: u64,
    pub keys: u64,
}

/// Why a compaction did not run.
#[derive(Debug, thiserror::Error)]
pub enum NotCompacted {
    #[error("the log holds {0} records sled has not applied yet; start the relay once so it applies them, then compact")]
    LogToReplay(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether sled's files holding `file` bytes for `live` bytes of keys and values are worth
/// compacting. The tests give a smaller least gain (`HOOKRELAY_TEST_COMPACT_MIN_BYTES`) rather
/// than fill 64 MiB.
pub fn worth_it(file: u64, live: u64) -> bool {
    static MIN_GAIN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let min_gain = *MIN_GAIN.get_or_init(|| {
        super::wal::segment::test_hook("HOOKRELAY_TEST_COMPACT_MIN_BYTES").unwrap_or(WORTH_BYTES)
    });
    worth_it_from(file, live, min_gain)
}

fn worth_it_from(file: u64, live: u64, min_gain: u64) -> bool {
    file > live.saturating_mul(WORTH_FACTOR) && file - live >= min_gain
}

fn is_sled_file(name: &str) -> bool {
    matches!(name, "db" | "conf" | "blobs") || name.starts_with("snap.")
}

fn sled_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(is_sled_file) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// The bytes of sled's files in `dir`.
pub fn sled_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for path in sled_files(dir)? {
        let meta = std::fs::metadata(&path)?;
        total += if meta.is_dir() {
            std::fs::read_dir(&path)?
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Finishes a swap a crash interrupted, or deletes a copy that was never finished. Runs at
/// every open, before sled opens the directory.
pub fn finish_unfinished(store: &Path) -> io::Result<()> {
    let copy = store.join(COMPACTING);
    if !copy.exists() {
        // A swap that finished moving files in but not cleaning up.
        let old = store.join(SUPERSEDED);
        if old.exists() {
            std::fs::remove_dir_all(old)?;
        }
        return Ok(());
    }
    if copy.join(DONE).exists() {
        log::warn!("Finishing a compaction of the store that a stop interrupted.");
        swap(store)
    } else {
        std::fs::remove_dir_all(&copy)?;
        wal::sync_dir(store)
    }
}

fn mark(dir: &Path, name: &str) -> io::Result<()> {
    File::create(dir.join(name))?.sync_all()?;
    wal::sync_dir(dir)
}

fn swap(store: &Path) -> io::Result<()> {
    let copy = store.join(COMPACTING);
    let old = store.join(SUPERSEDED);
    if !copy.join(SWAPPING).exists() {
        std::fs::create_dir_all(&old)?;
        for path in sled_files(store)? {
            if let Some(name) = path.file_name() {
                std::fs::rename(&path, old.join(name))?;
            }
        }
        wal::sync_dir(&old)?;
        wal::sync_dir(store)?;
        mark(&copy, SWAPPING)?;
    }
    for path in sled_files(&copy)? {
        if let Some(name) = path.file_name() {
            std::fs::rename(&path, store.join(name))?;
        }
    }
    wal::sync_dir(store)?;
    std::fs::remove_dir_all(&copy)?;
    wal::sync_dir(store)?;
    std::fs::remove_dir_all(&old)?;
    wal::sync_dir(store)
}

/// Copies the closed store at `store` into a fresh sled and swaps it in. `progress` is called
/// with the keys copied so far, every few thousand.
pub fn compact(store: &Path, progress: &mut dyn FnMut(u64)) -> Result<Compacted, NotCompacted> {
    finish_unfinished(store).map_err(StoreError::from)?;
    let dir = wal::dir(store);
    if dir.exists() {
        let at = checkpoint::read(&dir).map_err(StoreError::Damaged)?;
        let summary =
            scan::scan(&dir, at, false, |_| {}).map_err(|d| StoreError::Damaged(d.to_string()))?;
        if summary.to_replay > 0 {
            return Err(NotCompacted::LogToReplay(summary.to_replay));
        }
    }
    let before = sled_bytes(store).map_err(StoreError::from)?;
    let copy = store.join(COMPACTING);
    let keys = match copy_into(store, &copy, progress) {
        Ok(keys) => keys,
        Err(e) => {
            // The old files are untouched: the store opens as it was.
            let _ = std::fs::remove_dir_all(&copy);
            return Err(e.into());
        }
    };
    mark(&copy, DONE).map_err(StoreError::from)?;
    swap(store).map_err(StoreError::from)?;
    let after = sled_bytes(store).map_err(StoreError::from)?;
    Ok(Compacted {
        before,
        after,
        keys,
    })
}

fn copy_into(store: &Path, copy: &Path, progress: &mut dyn FnMut(u64)) -> Result<u64, StoreError> {
    if copy.exists() {
        std::fs::remove_dir_all(copy)?;
    }
    let plain = |path: &Path| sled::Config::new().path(path).flush_every_ms(None);
    let old = super::open_sled(plain(store))?;
    let new = super::open_sled(plain(copy))?;
    let mut keys = 0;
    for name in old.tree_names() {
        let (from, to) = (old.open_tree(&name)?, new.open_tree(&name)?);
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for entry in from.iter() {
            let (k, v) = entry?;
            batch.insert(k, v);
            in_batch += 1;
            keys += 1;
            if in_batch == BATCH {
                to.apply_batch(std::mem::take(&mut batch))?;
                in_batch = 0;
                progress(keys);
            }
        }
        to.apply_batch(batch)?;
    }
    new.flush()?;
    // sled's flush alone does not survive power loss (`disk_sync.rs`).
    DiskSync::open(copy)?.sync()?;
    Ok(keys)
}

/// At start-up, before the store opens: compacts if the retention pass asked for it ([`WANTED`]). The request is taken back first, so a compaction
/// that cannot finish (a stop, a full disk) is not retried at every start; the retention pass
/// asks again if it is still worth it.
pub fn at_start(store: &Path, progress: &mut dyn FnMut(u64)) -> Result<(), StoreError> {
    // An interrupted swap is finished by `compact` here, or by `Store::open_with` otherwise.
    let wanted = store.join(WANTED);
    if !wanted.exists() {
        return Ok(());
    }
    std::fs::remove_file(&wanted)?;
    wal::sync_dir(store)?;
    log::info!("Compacting the store to give back the disk space retention freed (the retention pass asked for it); deliveries start once it is done.");
    let started = std::time::Instant::now();
    match compact(store, progress) {
        Ok(c) => log::info!(
            "Compacted the store in {:.1} s: sled's files went from {} to {} ({} keys).",
            started.elapsed().as_secs_f64(),
            super::space::human(c.before),
            super::space::human(c.after),
            c.keys
        ),
        Err(NotCompacted::LogToReplay(n)) => log::info!(
            "The store is not compacted at this start: its log has {n} records to apply first. The retention pass asks again later."
        ),
        Err(NotCompacted::Store(e)) => log::warn!(
            "Compacting the store failed ({e}); it runs on as it was, and the retention pass asks again later."
        ),
    }
    Ok(())
}

/// Asks for a compaction at the next start (from the retention pass).
pub fn want(store: &Path) -> io::Result<()> {
    File::create(store.join(WANTED))?.sync_all()?;
    wal::sync_dir(store)
}

/// Gives the store's files back to the owner of its directory: a command run as root (`sudo
/// hookrelay store compact`) must not leave files the relay's own user cannot open.
pub fn give_to_owner(store: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let owner = std::fs::metadata(store)?;
    let (uid, gid) = (owner.uid(), owner.gid());
    let mut dirs = vec![store.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.uid() != uid || meta.gid() != gid {
                std::os::unix::fs::chown(entry.path(), Some(uid), Some(gid))?;
            }
            if meta.is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    Ok(())
}

/// The bytes of every key and value in the store: what a compacted store needs, give or take
/// sled's own overhead.
pub fn live_bytes(db: &sled::Db) -> sled::Result<u64> {
    let mut total = 0u64;
    for entry in db.iter() {
        let (k, v) = entry?;
        total += (k.len() + v.len()) as u64;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(path: &Path, n: u64) {
        // As the relay opens it: sled's timer flush thread would hold the file a while after
        // the handle is dropped.
        let db = sled::Config::new()
            .path(path)
            .flush_every_ms(None)
            .open()
            .unwrap();
        for i in 0..n {
            db.insert(i.to_be_bytes(), vec![7u8; 500]).unwrap();
        }
        for i in 0..n - 10 {
            db.remove(i.to_be_bytes()).unwrap();
        }
        db.flush().unwrap();
    }

    #[test]
    fn a_compacted_store_keeps_every_key_in_less_space() {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path(), 50_000);
        let mut seen = 0;
        let done = compact(dir.path(), &mut |k| seen = k).unwrap();
        assert_eq!(done.keys, 10);
        assert_eq!(seen, 0, "fewer keys than a batch");
        assert!(done.after * 4 < done.before, "{done:?}");
        let db = sled::open(dir.path()).unwrap();
        assert_eq!(db.len(), 10);
        assert_eq!(db.get(49_999u64.to_be_bytes()).unwrap().unwrap().len(), 500);
        assert!(!dir.path().join(COMPACTING).exists());
        assert!(!dir.path().join(SUPERSEDED).exists());
    }

    /// Every point a crash can stop the swap at: the store opens with all its keys, old or new.
    #[test]
    fn a_swap_interrupted_anywhere_is_finished_or_undone_at_the_next_open() {
        for stop_after in 0..4 {
            let dir = tempfile::tempdir().unwrap();
            let store = dir.path();
            fill(store, 2_000);
            let copy = store.join(COMPACTING);
            copy_into(store, &copy, &mut |_| {}).unwrap();
            if stop_after >= 1 {
                mark(&copy, DONE).unwrap();
            }
            if stop_after >= 2 {
                // The old files moved out, and half of the new ones in.
                let old = store.join(SUPERSEDED);
                std::fs::create_dir_all(&old).unwrap();
                for path in sled_files(store).unwrap() {
                    std::fs::rename(&path, old.join(path.file_name().unwrap())).unwrap();
                }
                mark(&copy, SWAPPING).unwrap();
            }
            if stop_after >= 3 {
                std::fs::rename(copy.join("conf"), store.join("conf")).unwrap();
            }
            finish_unfinished(store).unwrap();
            let db = sled::open(store).unwrap();
            assert_eq!(db.len(), 10, "stopped after step {stop_after}");
            assert!(!copy.exists() && !store.join(SUPERSEDED).exists());
        }
    }

    /// As root (`sudo hookrelay store compact`), the new files go to the store's owner; as
    /// anyone else nothing changes hands (nor could it).
    #[test]
    fn files_made_by_root_go_to_the_owner_of_the_store() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("blobs").join("1"), b"x").unwrap();
        let me = std::fs::metadata(dir.path()).unwrap().uid();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
        }
        give_to_owner(dir.path()).unwrap();
        let owner = std::fs::metadata(dir.path().join("blobs").join("1"))
            .unwrap()
            .uid();
        assert_eq!(owner, if root { 65534 } else { me });
    }

    #[test]
    fn worth_it_needs_twice_the_size_and_a_real_gain() {
        let worth_it = |file, live| worth_it_from(file, live, WORTH_BYTES);
        assert!(worth_it(1 << 30, 100 << 20));
        assert!(!worth_it(100 << 20, 60 << 20), "less than twice");
        assert!(!worth_it(50 << 20, 1 << 20), "a small store");
    }
}
