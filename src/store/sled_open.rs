//! Opening sled 0.34 past two of its quirks: a lock it holds a moment after its last handle is
//! dropped, and a half-written start-up snapshot it would take for a corrupt one.

use std::path::Path;
use std::time::Duration;

use super::StoreError;

/// sled 0.34 writes a snapshot at open as `snap.<lsn>.generating` and renames it once it is
/// whole, but takes every `snap.*` file for a snapshot when it opens: one left half-written (a
/// full disk, a crash during the open) would stop every later open with "Read corrupted data".
/// Such a file is never a snapshot, and sled writes a new one.
pub(super) fn remove_unfinished_snapshots(dir: &Path) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.starts_with("snap.") && n.ends_with(".generating")) {
            // Once per process: a start waiting for disk space leaves one at every try.
            static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            if !TOLD.swap(true, std::sync::atomic::Ordering::Relaxed) {
                log::warn!(
                    "Removing {}, a snapshot sled did not finish writing (its open was cut short); sled writes a new one.",
                    path.display()
                );
            }
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Whether sled refused to open a store because another handle holds its lock (a running
/// relay); sled says so only in an I/O error's text.
pub fn is_locked(e: &dyn std::fmt::Display) -> bool {
    e.to_string().contains("could not acquire lock")
}

/// How long [`open_sled`] waits for another handle's lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Opens sled, waiting a moment for the lock of a handle just dropped in this process (a
/// compaction at start closes its own before the store opens): sled's threads let go of the
/// file a little after its last handle is gone.
pub(crate) fn open_sled(config: sled::Config) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Err(e) if is_locked(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}
