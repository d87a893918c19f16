//! Reading records one at a time as the writer makes them durable (the applier's view).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::record::{self, Record, HEADER};

/// A cursor over the log, from a given lsn on.
pub struct Tail {
    /// The log folder.
    dir: PathBuf,
    /// The segment read now, and where in it the next record starts.
    file: Option<(File, u64)>,
    /// The lsn the next `next()` returns.
    next_lsn: u64,
}

impl Tail {
    /// A cursor whose first record is `first_lsn` (the one after the checkpoint).
    pub fn new(dir: &Path, first_lsn: u64) -> Tail {
        Tail {
            dir: dir.to_path_buf(),
            file: None,
            next_lsn: first_lsn,
        }
    }

    /// Reads the next record. Only call it for a record known to be durable.
    pub fn read_next(&mut self) -> Result<Record, String> {
        if let Some(r) = self.read_here()? {
            return Ok(r);
        }
        // Not in the open segment: it starts a new one, or (the first time) it is somewhere
        // inside an older one.
        let segments = super::segments(&self.dir).map_err(|e| e.to_string())?;
        let Some((_, path)) = segments
            .into_iter()
            .rev()
            .find(|(start, _)| *start <= self.next_lsn)
        else {
            return Err(format!("no log segment holds record {}", self.next_lsn));
        };
        let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.file = Some((file, 0));
        self.read_here()?
            .ok_or_else(|| format!("record {} is not in {}", self.next_lsn, path.display()))
    }

    /// The wanted record from the open segment (skipping earlier ones), or `None` when the
    /// segment ends before it.
    fn read_here(&mut self) -> Result<Option<Record>, String> {
        let Some((file, offset)) = &mut self.file else {
            return Ok(None);
        };
        loop {
            let mut header = [0u8; HEADER];
            if file.read_exact_at(&mut header, *offset).is_err() {
                return Ok(None);
            }
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            if len > record::MAX_PAYLOAD {
                return Err(format!("a record length of {len} at byte {offset}"));
            }
            let mut buf = vec![0u8; HEADER + len];
            file.read_exact_at(&mut buf, *offset)
                .map_err(|e| format!("record at byte {offset}: {e}"))?;
            let (r, size) =
                record::decode(&buf).map_err(|e| format!("record at byte {offset}: {e}"))?;
            if r.lsn > self.next_lsn {
                return Ok(None);
            }
            *offset += size as u64;
            if r.lsn == self.next_lsn {
                self.next_lsn += 1;
                return Ok(Some(r));
            }
        }
    }
}
