//! Room reserved on disk for sled, so that sled itself never meets a full disk.
//!
//! sled 0.34 treats any write error as fatal for the open database (its "global error": every
//! later call fails until the process opens it again), so a full disk must never reach it. sled
//! writes only its `db` file (blobs aside) and only when the applier applies or checkpoints, so
//! the applier keeps [`CHUNK`] bytes allocated past the end of that file with
//! `fallocate(FALLOC_FL_KEEP_SIZE)`: sled's next writes land in blocks that already belong to
//! the file, whatever else fills the disk meanwhile. Before each record the applier asks for
//! room ([`Headroom::ensure`]); when the allocation cannot be topped up, it waits instead of
//! writing, and tries again once the disk has room. On a copy-on-write filesystem (btrfs with
//! snapshots, ZFS) even an overwrite needs new blocks, so this cannot protect sled there; the
//! relay then exits on sled's error and recovers from the log after systemd restarts it.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::space::{is_no_space, statvfs};

/// Bytes allocated ahead of sled's file at a time: many sled segments (512 KiB each).
pub const CHUNK: u64 = 16 << 20;
/// The allocation is topped up when less than this is left ahead of the file.
const LOW_WATER: u64 = 8 << 20;
/// How often a nearly full disk is asked for a whole chunk again.
const CHUNK_RETRY: Duration = Duration::from_secs(1);
/// Room ahead of the file every record needs besides its own bytes: sled's next segment.
const MIN_AHEAD: u64 = 1 << 20;
/// Values above this may go to sled's `blobs/` folder (new files, outside the allocation), so
/// the filesystem must have that much free besides.
const BLOB_CANDIDATE: u64 = 64 << 10;

/// Why sled cannot be written now.
#[derive(Debug)]
pub enum NoRoom {
    /// The disk is full: wait and try again.
    Full(String),
    /// Something else failed (the file vanished, an I/O error).
    Failed(String),
}

pub struct Headroom {
    /// sled's data file.
    path: PathBuf,
    /// The store folder, for the filesystem's free space.
    dir: PathBuf,
    /// Open on sled's file, for `fstat` and `fallocate`.
    file: Option<File>,
    /// The end of the allocated range: sled may grow its file up to here without new blocks.
    reserved_to: u64,
    /// The filesystem cannot allocate ahead (`EOPNOTSUPP`): only free space is checked.
    unsupported: bool,
    /// The file's length at the last look, to notice sled cutting it.
    last_len: u64,
    /// When a whole chunk could not be allocated (a nearly full disk).
    chunk_refused_at: Option<Instant>,
    /// [`CHUNK`], or what the test hook `HOOKRELAY_TEST_SLED_AHEAD` says (0: only what each
    /// record needs, so that a test can make the applier wait for room on a small disk).
    chunk: u64,
}

impl Headroom {
    pub fn open(store_dir: &Path) -> Headroom {
        let path = store_dir.join("db");
        Headroom {
            file: File::options().write(true).open(&path).ok(),
            path,
            dir: store_dir.to_path_buf(),
            reserved_to: 0,
            unsupported: false,
            last_len: 0,
            chunk_refused_at: None,
            chunk: super::wal::segment::test_hook("HOOKRELAY_TEST_SLED_AHEAD").unwrap_or(CHUNK),
        }
    }

    /// Makes sure sled can write a record of `bytes` (its largest value `largest`) without
    /// needing a block from the disk; tops up the allocation when it runs low.
    pub fn ensure(&mut self, bytes: u64, largest: u64) -> Result<(), NoRoom> {
        if largest > BLOB_CANDIDATE {
            let (free, _) = statvfs(&self.dir).map_err(|e| NoRoom::Failed(e.to_string()))?;
            if free < largest.saturating_mul(2) + LOW_WATER {
                return Err(NoRoom::Full(format!(
                    "a value of {largest} bytes needs room for sled's blob files"
                )));
            }
        }
        if self.unsupported {
            let (free, _) = statvfs(&self.dir).map_err(|e| NoRoom::Failed(e.to_string()))?;
            return if free >= bytes.saturating_mul(4) + MIN_AHEAD {
                Ok(())
            } else {
                Err(NoRoom::Full("the disk is nearly full".into()))
            };
        }
        if self.file.is_none() {
            self.file = Some(
                File::options()
                    .write(true)
                    .open(&self.path)
                    .map_err(|e| NoRoom::Failed(format!("{}: {e}", self.path.display())))?,
            );
        }
        let Some(file) = &self.file else {
            return Err(NoRoom::Failed("sled's file is not open".into()));
        };
        let len = file
            .metadata()
            .map_err(|e| NoRoom::Failed(e.to_string()))?
            .len();
        // sled cuts its file when it frees the last segment, and the blocks allocated past
        // the end go with it.
        if len < self.last_len {
            self.reserved_to = 0;
        }
        self.last_len = len;
        let retry_chunk = self
            .chunk_refused_at
            .map_or(true, |at| at.elapsed() >= CHUNK_RETRY);
        if self.chunk > 0 && self.reserved_to < len + LOW_WATER.min(self.chunk) && retry_chunk {
            // Many records' worth at once; on a nearly full disk, what the record needs is
            // enough (below), and the whole chunk is tried again only now and then.
            match allocate(file, len, self.chunk) {
                Ok(()) => {
                    self.reserved_to = len + self.chunk;
                    self.chunk_refused_at = None;
                }
                Err(e) if is_no_space(&e) => self.chunk_refused_at = Some(Instant::now()),
                Err(e) => return self.not_allocated(e, bytes, largest),
            }
        }
        // sled may write several times a record's bytes (page fragments, rewrites). This range
        // is allocated for every record: cheap when it already is, and right again should
        // sled have cut and regrown its file since the last look.
        let need = bytes.saturating_mul(4) + MIN_AHEAD;
        match allocate(file, len, need) {
            Ok(()) => Ok(()),
            Err(e) if is_no_space(&e) => Err(NoRoom::Full(format!(
                "no room to allocate {need} bytes ahead for sled: {e}"
            ))),
            Err(e) => self.not_allocated(e, bytes, largest),
        }
    }

    /// `fallocate` failed for another reason than space.
    fn not_allocated(&mut self, e: std::io::Error, bytes: u64, largest: u64) -> Result<(), NoRoom> {
        match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => {
                log::info!("The store's filesystem cannot allocate room ahead for sled ({e}); hookrelay checks its free space instead.");
                self.unsupported = true;
                self.ensure(bytes, largest)
            }
            _ => Err(NoRoom::Failed(format!(
                "allocating room ahead for sled failed: {e}"
            ))),
        }
    }
}

/// Allocates `[offset, offset + len)` of `file` without changing its size.
fn allocate(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    // SAFETY: a plain syscall on a file descriptor we own.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_KEEP_SIZE,
            offset as libc::off_t,
            len as libc::off_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_allocated_ahead_of_the_file_without_changing_its_size() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"0123").unwrap();
        let mut room = Headroom::open(dir.path());
        room.ensure(1000, 100).unwrap();
        let meta = std::fs::metadata(dir.path().join("db")).unwrap();
        assert_eq!(meta.len(), 4, "sled sees the same file length");
        if !room.unsupported {
            use std::os::unix::fs::MetadataExt;
            assert!(meta.blocks() * 512 >= CHUNK, "{} blocks", meta.blocks());
            assert!(room.reserved_to >= CHUNK);
        }
    }
}
