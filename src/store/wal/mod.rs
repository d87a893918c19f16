//! The write-ahead log in front of sled.
//!
//! A 202 is sent once its batch is one record in the log, written with one `write` and made
//! durable with one `fdatasync`. sled is applied from the log behind that (by the applier thread)
//! and checkpointed now and then (sled flush + `fdatasync`, then a marker naming the last applied
//! record); segments wholly before the checkpoint are deleted. Start-up replays what follows the
//! checkpoint.
//!
//! # Why a log in front of sled
//! sled's `flush()` is not power-loss safe: it uses `sync_file_range` and never syncs its blob
//! files (hence `store/disk_sync.rs` at checkpoints). `flush_async()` deadlocks with many
//! waiters (sled #1308), and its timer flush would acknowledge data not yet on disk. With the
//! log, a 202 rests on one append and one `fdatasync` of a file whose format we own.
//!
//! # Why our own log and not okaywal
//! We read okaywal 0.3.1. Its README says it is early in development, not for production, with an
//! unstable file format; the last release was in November 2023. Its recovery stops silently at
//! the first entry header it does not recognise, so damage in the middle of the log drops the
//! rest without an error and later writes overwrite it; we must refuse to start instead. It
//! checks CRCs only if the log manager calls `check_crc`, recycles segment files in place (ours
//! are only appended and deleted, which is what tells a torn tail from damage), and drives
//! checkpoints from its own thread, where ours must follow sled's flush in the applier.
//!
//! # Files
//!
//! - [`record`]: the byte format of a record, with its checksum.
//! - [`segment`]: appending, `fdatasync`, rolling over to a new segment file, deleting old ones.
//! - [`scan`]: reading the whole log at start-up or for `store check`: a torn tail is cut, damage
//!   anywhere else stops the start.
//! - [`tail`]: reading records one by one as they are written (the applier).
//! - [`checkpoint`]: the marker file.

pub mod checkpoint;
pub mod record;
pub mod scan;
pub mod segment;
pub mod tail;

use std::path::{Path, PathBuf};

/// The log's folder inside the store directory.
pub fn dir(store: &Path) -> PathBuf {
    store.join("wal")
}

/// A segment is named by the lsn of its first record, zero-padded so names sort as numbers.
pub fn segment_path(dir: &Path, first_lsn: u64) -> PathBuf {
    dir.join(format!("{first_lsn:020}.log"))
}

/// The segments in a log folder, as (first lsn, path), oldest first.
pub fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
            continue;
        };
        if let Ok(lsn) = stem.parse::<u64>() {
            out.push((lsn, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Makes a folder's entries (created, renamed, removed files) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
