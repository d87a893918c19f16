//! Appending records: one `write` and one `fdatasync` per group-committed batch.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::record::{self, CommandKind, Effect};

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
        })
    }

    /// Appends a record and makes it durable; returns its lsn.
    pub fn append(
        &mut self,
        commands: &[CommandKind],
        effects: &[Effect],
    ) -> Result<(u64, usize), String> {
        if let Some(why) = &self.failed {
            return Err(why.clone());
        }
        if self.size >= self.segment_bytes {
            self.file = create(&self.dir, self.next_lsn).map_err(|e| {
                format!(
                    "cannot start a new log segment in {}: {e}",
                    self.dir.display()
                )
            })?;
            self.size = 0;
        }
        let lsn = self.next_lsn;
        let bytes = record::encode(lsn, commands, effects);
        if bytes.len() - record::HEADER > record::MAX_PAYLOAD {
            return Err(format!(
                "a batch of {} bytes is larger than a log record may be",
                bytes.len()
            ));
        }
        let result = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = result {
            // Cut a partial write so that nothing is ever appended after garbage (which the
            // next start would take for damage in the middle of the log). After a failed
            // `fdatasync` the page cache may no longer match the disk, so the writer stops for
            // good: a restart recovers from what the disk really holds.
            let _ = self.file.set_len(self.size);
            let why = format!(
                "writing to the log failed ({e}); the store refuses writes until hookrelay restarts"
            );
            self.failed = Some(why.clone());
            return Err(why);
        }
        self.size += bytes.len() as u64;
        self.next_lsn += 1;
        Ok((lsn, bytes.len()))
    }

    /// The lsn of the last record written.
    pub fn last_lsn(&self) -> u64 {
        self.next_lsn - 1
    }
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
