//! Makes a sled flush survive power loss.
//!
//! sled 0.34's `flush()` writes its log with `sync_file_range`, which pushes pages to the disk but
//! not the file's metadata nor the drive's cache (sled #1351), and writes large values to `blobs/`
//! without any sync. At each checkpoint the applier calls [`DiskSync::sync`] after sled's flush, which `fdatasync`s the
//! log file and every blob file not synced before, and the blob directory when it gained files.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub struct DiskSync {
    /// sled's log file, kept open so each commit costs one `fdatasync`, not an `open`.
    log: File,
    /// Where sled puts values too large for a log segment.
    blobs_dir: PathBuf,
    /// Blob files already synced: they are written once and never change.
    synced_blobs: HashSet<OsString>,
}

impl DiskSync {
    pub fn open(store_dir: &Path) -> io::Result<DiskSync> {
        let log = File::open(store_dir.join("db"))?;
        // The directory entries of a freshly created store must be durable too.
        File::open(store_dir)?.sync_all()?;
        Ok(DiskSync {
            log,
            blobs_dir: store_dir.join("blobs"),
            synced_blobs: HashSet::new(),
        })
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.log.sync_data()?;
        let entries = match std::fs::read_dir(&self.blobs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut present = HashSet::new();
        let mut new_files = false;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !self.synced_blobs.contains(&name) {
                match File::open(entry.path()) {
                    Ok(f) => f.sync_data()?,
                    // sled may have collected it between the listing and the open.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                new_files = true;
            }
            present.insert(name);
        }
        if new_files {
            File::open(&self.blobs_dir)?.sync_all()?;
        }
        self.synced_blobs = present;
        Ok(())
    }
}
