//! Appending records: one `write` and one `fdatasync` per group-committed batch.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::record::{self, CommandKind, Effect};
use crate::store::space::is_no_space;

/// Why an append failed, which decides what the writer does next (see `store/space.rs`).
#[derive(Debug, Clone, PartialEq)]
pub enum AppendError {
    /// The disk or the quota had no room for the write. Nothing of it remains in the log, so
    /// the same append may be tried again once there is room.
    NoSpace(String),
    /// A sync failed, or the file could not be put back as it was: what the disk holds is no
    /// longer known, and only a restart (recovery from the disk) may write again.
    Broken(String),
    /// The batch cannot be a record at all (larger than a record may be); others may follow.
    TooLarge(String),
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::NoSpace(why) | AppendError::Broken(why) | AppendError::TooLarge(why) => {
                f.write_str(why)
            }
        }
    }
}

/// The open segment the writer appends to.
pub struct SegmentWriter {
    /// The log folder.
    dir: PathBuf,
    /// The segment being appended to.
    file: File,
    /// Its size: where the next record goes, and where to cut back to if a write fails.
    size: u64,
    /// A new segment is started once the current one holds this much, so that a checkpoint
    /// can delete whole files.
    segment_bytes: u64,
    /// The lsn the next record gets.
    next_lsn: u64,
    /// Set when a write or sync failed in a way that leaves the file's state unknown (after a
    /// failed `fdatasync` the kernel may have dropped the dirty pages): nothing more is written
    /// until a restart recovers from what is really on disk.
    failed: Option<String>,
    /// Test hook (`HOOKRELAY_TEST_FAIL_SYNC_AFTER=N`): the sync after N successful ones fails
    /// with EIO, so the tests can show the relay exit and recover from a failed `fdatasync`.
    fail_sync_after: Option<u64>,
    /// Syncs done, for the test hook.
    syncs: u64,
}

impl SegmentWriter {
    /// Continues the log after `last_lsn`: appends to the newest segment, or starts one.
    pub fn open(dir: &Path, last_lsn: u64, segment_bytes: u64) -> std::io::Result<SegmentWriter> {
        std::fs::create_dir_all(dir)?;
        let next_lsn = last_lsn + 1;
        let (file, size) = match super::segments(dir)?.pop() {
            Some((_, path)) => {
                let file = OpenOptions::new().append(true).open(&path)?;
                let size = file.metadata()?.len();
                (file, size)
            }
            None => (create(dir, next_lsn)?, 0),
        };
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            file,
            size,
            segment_bytes,
            next_lsn,
            failed: None,
            fail_sync_after: test_hook("HOOKRELAY_TEST_FAIL_SYNC_AFTER"),
            syncs: 0,
        })
    }

    /// Appends a record and makes it durable; returns its lsn and size.
    pub fn append(
        &mut self,
        commands: &[CommandKind],
        effects: &[Effect],
    ) -> Result<(u64, usize), AppendError> {
        if let Some(why) = &self.failed {
            return Err(AppendError::Broken(why.clone()));
        }
        if self.size >= self.segment_bytes {
            self.roll()?;
        }
        let lsn = self.next_lsn;
        let bytes = record::encode(lsn, commands, effects);
        if bytes.len() - record::HEADER > record::MAX_PAYLOAD {
            return Err(AppendError::TooLarge(format!(
                "a batch of {} bytes is larger than a log record may be",
                bytes.len()
            )));
        }
        if let Err(e) = self.file.write_all(&bytes) {
            // Cut a partial write so that nothing is ever appended after garbage (which the
            // next start would take for damage in the middle of the log).
            if let Err(cut) = self.file.set_len(self.size) {
                return Err(self.break_for(format!(
                    "writing to the log failed ({e}) and the partial record could not be cut ({cut})"
                )));
            }
            if is_no_space(&e) {
                return Err(AppendError::NoSpace(format!(
                    "no room for a log record of {} bytes in {}: {e}",
                    bytes.len(),
                    self.dir.display()
                )));
            }
            return Err(self.break_for(format!("writing to the log failed ({e})")));
        }
        if let Err(e) = self.sync() {
            // After a failed `fdatasync` the page cache may no longer match the disk (the
            // kernel may have dropped the dirty pages), so no later sync can vouch for this
            // record or any before it: the writer stops for good and a restart recovers from
            // what the disk really holds.
            let _ = self.file.set_len(self.size);
            return Err(self.break_for(format!("fdatasync of the log failed ({e})")));
        }
        self.size += bytes.len() as u64;
        self.next_lsn += 1;
        Ok((lsn, bytes.len()))
    }

    /// Starts the next segment file. Out of room, the current one is kept and this is tried
    /// again at the next append.
    fn roll(&mut self) -> Result<(), AppendError> {
        let path = super::segment_path(&self.dir, self.next_lsn);
        let created = OpenOptions::new().create_new(true).append(true).open(&path);
        let file = match created {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Left by a try that ran out of room before the folder sync: still empty.
                match OpenOptions::new().append(true).open(&path) {
                    Ok(f) if f.metadata().map(|m| m.len()).unwrap_or(1) == 0 => f,
                    Ok(_) | Err(_) => {
                        return Err(self.break_for(format!(
                            "cannot start a new log segment {}: it exists and is not empty",
                            path.display()
                        )))
                    }
                }
            }
            Err(e) if is_no_space(&e) => {
                return Err(AppendError::NoSpace(format!(
                    "no room for a new log segment in {}: {e}",
                    self.dir.display()
                )))
            }
            Err(e) => {
                return Err(self.break_for(format!(
                    "cannot start a new log segment in {}: {e}",
                    self.dir.display()
                )))
            }
        };
        if let Err(e) = super::sync_dir(&self.dir) {
            if is_no_space(&e) {
                return Err(AppendError::NoSpace(format!(
                    "no room to record a new log segment in {}: {e}",
                    self.dir.display()
                )));
            }
            return Err(self.break_for(format!(
                "the sync of the log folder {} failed ({e})",
                self.dir.display()
            )));
        }
        self.file = file;
        self.size = 0;
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.syncs += 1;
        if self.fail_sync_after.is_some_and(|n| self.syncs > n) {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        self.file.sync_data()
    }

    fn break_for(&mut self, why: String) -> AppendError {
        let why = format!("{why}; the store refuses writes until hookrelay restarts");
        self.failed = Some(why.clone());
        AppendError::Broken(why)
    }

    /// The lsn of the last record written.
    pub fn last_lsn(&self) -> u64 {
        self.next_lsn - 1
    }
}

/// A test hook's number from the environment, with a WARN: set by mistake, it changes what the
/// relay does.
pub(crate) fn test_hook(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?.parse().ok()?;
    log::warn!("{name}={value} is set: a test hook that changes how the store behaves; unset it outside tests.");
    Some(value)
}

fn create(dir: &Path, first_lsn: u64) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(super::segment_path(dir, first_lsn))?;
    super::sync_dir(dir)?;
    Ok(file)
}

/// Deletes the segments whose records are all at or before `checkpoint`; returns how many.
pub fn delete_before(dir: &Path, checkpoint: u64) -> std::io::Result<usize> {
    let segments = super::segments(dir)?;
    let mut deleted = 0;
    for pair in segments.windows(2) {
        // Segment 0 holds lsns [pair[0].0, pair[1].0): all checkpointed when the next one
        // starts at or before checkpoint + 1.
        if pair[1].0 <= checkpoint + 1 {
            std::fs::remove_file(&pair[0].1)?;
            deleted += 1;
        }
    }
    if deleted > 0 {
        super::sync_dir(dir)?;
    }
    Ok(deleted)
}
