//! `hookrelay store check`: what the log on disk holds and whether the relay can start over it.
//!
//! Read-only: it never cuts a torn tail (start-up does that) and does not open sled, so it can
//! run beside a running relay and on a copy of a store sent in for support.

use std::fmt::Write;
use std::path::Path;

use super::wal::{self, checkpoint, scan};

/// The report, and whether start-up would refuse the store.
pub struct Report {
    pub text: String,
    pub damaged: bool,
}

pub fn check(store: &Path) -> Report {
    let dir = wal::dir(store);
    let mut text = String::new();
    let _ = writeln!(text, "store: {}", store.display());
    let checkpoint = match checkpoint::read(&dir) {
        Ok(lsn) => lsn,
        Err(e) => {
            let _ = writeln!(text, "DAMAGED: {e}");
            let _ = writeln!(text, "The relay will not start: it cannot tell which log records sled already holds. Restore the store from a backup.");
            return Report {
                text,
                damaged: true,
            };
        }
    };
    let _ = writeln!(text, "checkpoint: record {checkpoint}");
    let mut commands = [0u64; 4];
    let result = scan::scan(&dir, checkpoint, false, |r| {
        for c in &r.commands {
            commands[*c as usize - 1] += 1;
        }
    });
    match result {
        Ok(s) => {
            let _ = writeln!(
                text,
                "log: {} segments, {} bytes, last record {}",
                s.segments, s.bytes, s.last_lsn
            );
            let _ = writeln!(
                text,
                "to replay at start: {} records ({} accepted webhooks, {} outcomes and operator writes, {} replays, {} approval clicks)",
                s.to_replay, commands[0], commands[1], commands[2], commands[3]
            );
            if let Some(t) = &s.torn {
                let _ = writeln!(
                    text,
                    "torn tail: {} bytes at byte {} of {} ({}): a write cut short by a crash, never acknowledged; the next start cuts it",
                    t.bytes,
                    t.offset,
                    t.segment.display(),
                    t.why
                );
            }
            for note in &s.notes {
                let _ = writeln!(text, "note: {note} (already checkpointed, harmless)");
            }
            let _ = writeln!(text, "OK: the relay can start over this store.");
            Report {
                text,
                damaged: false,
            }
        }
        Err(d) => {
            let _ = writeln!(text, "DAMAGED: {d}");
            let _ = writeln!(
                text,
                "The relay will not start over this log: skipping the record would lose acknowledged webhooks or post them twice. Keep a copy of the store directory, then restore it from a backup or contact support with this report."
            );
            Report {
                text,
                damaged: true,
            }
        }
    }
}
