//! Reading the whole log: at start-up (to replay it) and for `hookrelay store check`.
//!
//! The rule for bad bytes: a record is written whole and synced before the next one is written,
//! so only the **last** record of the **last** segment can be half-written (a crash in mid-write,
//! never acknowledged). Bad bytes there, with no valid record after them, are a torn tail: cut and
//! logged. Bad bytes anywhere else, or a valid record after the bad one, are damage (a disk fault
//! or someone's edit): the start stops with what and where, because skipping a record would lose
//! acknowledged webhooks or deliver them twice.

use std::path::{Path, PathBuf};

use super::record::{self, Record, HEADER};

/// What a scan found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// The checkpoint the scan started from.
    pub checkpoint: u64,
    /// The last valid record's lsn (the checkpoint when the log holds nothing after it).
    pub last_lsn: u64,
    /// Records after the checkpoint: what start-up replays.
    pub to_replay: u64,
    /// Segment files read.
    pub segments: usize,
    /// Bytes in them.
    pub bytes: u64,
    /// A half-written last record, cut (at start-up) or to be cut (reported by `store check`).
    pub torn: Option<Torn>,
    /// Damage in records the checkpoint already covers: harmless, reported.
    pub notes: Vec<String>,
}

/// A half-written record at the end of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Torn {
    pub segment: PathBuf,
    /// Where the bad record starts: the file is cut here.
    pub offset: u64,
    /// Bytes after that.
    pub bytes: u64,
    /// What was wrong with them.
    pub why: String,
}

/// Damage the relay must not start over.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Damage {
    #[error("the log segment {segment} is damaged at byte {offset}, where record {lsn} should be: {why}. {after}")]
    Record {
        segment: PathBuf,
        offset: u64,
        lsn: u64,
        why: String,
        /// What follows, which is why this is not a torn tail.
        after: String,
    },
    #[error("the log is missing records {from} to {to}: {why}")]
    Gap { from: u64, to: u64, why: String },
    #[error("the log cannot be read: {0}")]
    Io(String),
}

/// Reads every segment, calls `visit` for each valid record after `checkpoint`, in order, and
/// cuts a torn tail when `cut_torn_tail` is set (start-up; `store check` only reports it).
pub fn scan(
    dir: &Path,
    checkpoint: u64,
    cut_torn_tail: bool,
    mut visit: impl FnMut(&Record),
) -> Result<Summary, Damage> {
    let io = |e: std::io::Error| Damage::Io(format!("{}: {e}", dir.display()));
    let segments = super::segments(dir).map_err(io)?;
    let mut summary = Summary {
        checkpoint,
        last_lsn: checkpoint,
        ..Summary::default()
    };
    if let Some((first, _)) = segments.first() {
        if *first > checkpoint + 1 {
            return Err(Damage::Gap {
                from: checkpoint + 1,
                to: first - 1,
                why: format!(
                    "the checkpoint is at {checkpoint} but the oldest segment starts at {first}"
                ),
            });
        }
    }
    let mut expected = segments.first().map(|(lsn, _)| *lsn).unwrap_or(1);
    for (i, (start, path)) in segments.iter().enumerate() {
        let last_segment = i + 1 == segments.len();
        if *start != expected {
            return Err(Damage::Gap {
                from: expected.min(*start),
                to: expected.max(*start) - 1,
                why: format!(
                    "segment {} starts at record {start}, after record {}",
                    path.display(),
                    expected - 1
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        summary.segments += 1;
        summary.bytes += bytes.len() as u64;
        let mut offset = 0usize;
        while offset < bytes.len() {
            let bad = match record::decode(&bytes[offset..]) {
                Ok((r, _)) if r.lsn != expected => format!("it holds record {}", r.lsn),
                Ok((r, size)) => {
                    if r.lsn > checkpoint {
                        visit(&r);
                        summary.to_replay += 1;
                    }
                    summary.last_lsn = summary.last_lsn.max(r.lsn);
                    expected += 1;
                    offset += size;
                    continue;
                }
                Err(why) => why.to_string(),
            };
            let later = find_valid_after(&bytes, offset, expected);
            let damage = |after: String| Damage::Record {
                segment: path.clone(),
                offset: offset as u64,
                lsn: expected,
                why: bad.clone(),
                after,
            };
            if !last_segment {
                let next = segments[i + 1].0;
                if next <= checkpoint + 1 {
                    // Everything here is in sled already: note it and go on.
                    summary.notes.push(damage(String::new()).to_string());
                    expected = next;
                    break;
                }
                return Err(damage(format!(
                    "Segment {} follows it, so this is not a half-written last record.",
                    segments[i + 1].1.display()
                )));
            }
            if let Some((at, lsn)) = later {
                return Err(damage(format!(
                    "A valid record ({lsn}) follows at byte {at}, so this is not a half-written last record."
                )));
            }
            let torn = Torn {
                segment: path.clone(),
                offset: offset as u64,
                bytes: (bytes.len() - offset) as u64,
                why: bad,
            };
            if cut_torn_tail {
                let cut = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(offset as u64).and_then(|()| f.sync_all()));
                cut.map_err(io)?;
            }
            summary.torn = Some(torn);
            break;
        }
    }
    Ok(summary)
}

/// The first offset after `from` where a valid record with an lsn at or after `expected`
/// starts, if any: the test that tells damage followed by more log from a torn end.
fn find_valid_after(bytes: &[u8], from: usize, expected: u64) -> Option<(usize, u64)> {
    let end = bytes.len().checked_sub(HEADER)?;
    (from + 1..=end).find_map(|at| {
        let lsn = record::claimed_lsn(&bytes[at..])?;
        // The lsn check is a cheap filter before the checksum.
        if lsn < expected || lsn > expected + (1 << 32) {
            return None;
        }
        record::decode(&bytes[at..]).ok().map(|(r, _)| (at, r.lsn))
    })
}

#[cfg(test)]
mod tests {
    use super::super::record::{CommandKind, Effect};
    use super::super::segment::SegmentWriter;
    use super::*;

    fn write_log(dir: &Path, n: u64, segment_bytes: u64) -> Vec<u64> {
        let mut w = SegmentWriter::open(dir, 0, segment_bytes).unwrap();
        let mut ends = Vec::new();
        for i in 0..n {
            let v = format!("value {i}").into_bytes();
            w.append(
                &[CommandKind::Accept],
                &[Effect::Put(vec![b'n', i as u8], v)],
            )
            .unwrap();
            let size = std::fs::metadata(super::super::segments(dir).unwrap().pop().unwrap().1)
                .unwrap()
                .len();
            ends.push(size);
        }
        ends
    }

    fn lsns(dir: &Path, checkpoint: u64, cut: bool) -> (Result<Summary, Damage>, Vec<u64>) {
        let mut seen = Vec::new();
        let s = scan(dir, checkpoint, cut, |r| seen.push(r.lsn));
        (s, seen)
    }

    #[test]
    fn a_log_cut_at_every_byte_of_its_last_record_keeps_every_earlier_record() {
        let dir = tempfile::tempdir().unwrap();
        let ends = write_log(dir.path(), 4, 1 << 20);
        let path = super::super::segments(dir.path()).unwrap()[0].1.clone();
        let full = std::fs::read(&path).unwrap();
        let last_start = ends[2] as usize;
        for cut in last_start..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (summary, seen) = lsns(dir.path(), 0, true);
            let summary = summary.unwrap();
            assert_eq!(seen, vec![1, 2, 3], "cut at {cut}");
            assert_eq!(summary.torn.is_some(), cut > last_start, "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), last_start as u64);
            // The writer continues after the cut with the next lsn.
            let mut w = SegmentWriter::open(dir.path(), summary.last_lsn, 1 << 20).unwrap();
            assert_eq!(w.append(&[CommandKind::Write], &[]).unwrap().0, 4);
            assert_eq!(lsns(dir.path(), 0, false).1, vec![1, 2, 3, 4]);
        }
    }

    #[test]
    fn a_damaged_record_in_the_middle_stops_the_scan_and_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let ends = write_log(dir.path(), 4, 1 << 20);
        let path = super::super::segments(dir.path()).unwrap()[0].1.clone();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[ends[0] as usize + HEADER + 2] ^= 0xff; // inside record 2
        std::fs::write(&path, &bytes).unwrap();
        let err = lsns(dir.path(), 0, true).0.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Damage::Record { lsn: 2, .. }), "{text}");
        assert!(text.contains("checksum mismatch"), "{text}");
        assert!(text.contains("A valid record (3) follows"), "{text}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was cut");
    }

    #[test]
    fn damage_in_an_older_segment_stops_the_scan_unless_checkpointed() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), 6, 1); // one record per segment
        let segs = super::super::segments(dir.path()).unwrap();
        assert_eq!(segs.len(), 6);
        std::fs::write(&segs[1].1, b"garbage that is no record").unwrap();
        assert!(matches!(
            lsns(dir.path(), 0, true).0,
            Err(Damage::Record { lsn: 2, .. })
        ));
        let (summary, seen) = lsns(dir.path(), 3, true);
        assert_eq!(seen, vec![4, 5, 6]);
        assert_eq!(summary.unwrap().notes.len(), 1);
        std::fs::remove_file(&segs[3].1).unwrap();
        assert!(matches!(
            lsns(dir.path(), 3, true).0,
            Err(Damage::Gap { from: 4, to: 4, .. })
        ));
    }
}
