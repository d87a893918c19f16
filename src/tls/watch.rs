//! The reload thread: reads the TLS files again on SIGHUP (`systemctl reload hookrelay`) and
//! when it sees them change, so that a renewed certificate is served without a restart.
//!
//! Noticing a change waits for the files to stay the same over one more look: certbot and an
//! operator copying files write the certificate and the key one after the other, and a pair
//! read between the two writes would not match and be refused with an ERROR for nothing.

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::Tls;

/// How often the files are looked at: a renewal is served within two looks (4 s), and a
/// `stat` of three files costs nothing worth counting.
pub const POLL: Duration = Duration::from_secs(2);

enum Command {
    /// SIGHUP: read the files now, changed or not.
    Reload,
    /// The relay stops.
    Stop,
}

/// Asks the reload thread to read the files now; cheap to clone into a signal handler.
#[derive(Clone)]
pub struct Reloader(Sender<Command>);

impl Reloader {
    pub fn reload(&self) {
        let _ = self.0.send(Command::Reload);
    }
}

/// The running reload thread.
pub struct Watcher {
    /// Commands to the thread.
    commands: Sender<Command>,
    /// Joined at stop.
    thread: JoinHandle<()>,
}

impl Watcher {
    pub fn spawn(tls: Arc<Tls>) -> std::io::Result<Watcher> {
        let (commands, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("tls-reload".into())
            .spawn(move || run(&tls, &rx))?;
        Ok(Watcher { commands, thread })
    }

    pub fn reloader(&self) -> Reloader {
        Reloader(self.commands.clone())
    }

    pub fn stop(self) {
        let _ = self.commands.send(Command::Stop);
        let _ = self.thread.join();
    }
}

/// What identifies a file's content without reading it: a copy, an edit in place and a
/// symlink moved to a new target (certbot's `live/`) each change one of these.
type Stamp = Option<(i64, i64, u64, u64)>;

fn stamps(files: &[PathBuf]) -> Vec<Stamp> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .map(|m| (m.mtime(), m.mtime_nsec(), m.len(), m.ino()))
        })
        .collect()
}

fn run(tls: &Tls, commands: &Receiver<Command>) {
    let files = tls.files();
    // What the pair in use (or the last one refused) was read from.
    let mut loaded = stamps(&files);
    // A change seen at the last look, taken once it holds still.
    let mut seen: Option<Vec<Stamp>> = None;
    loop {
        let why = match commands.recv_timeout(POLL) {
            Ok(Command::Reload) => "on SIGHUP",
            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                let now = stamps(&files);
                if now == loaded {
                    seen = None;
                    continue;
                }
                if seen.as_ref() != Some(&now) {
                    seen = Some(now);
                    continue;
                }
                "because its files changed"
            }
        };
        let before = tls.info();
        loaded = stamps(&files);
        seen = None;
        match tls.reload() {
            Ok(info) if info == before => log::info!(
                "Read the TLS certificate again {why}; it is the one already in use ({}, valid until {}).",
                info.subject,
                info.not_after_text()
            ),
            Ok(info) => log::info!(
                "Serving the renewed TLS certificate {why}: {} for {}, issued by {}, valid until {}. Connections already open keep the previous one.",
                info.subject,
                info.names.join(", "),
                info.issuer,
                info.not_after_text()
            ),
            Err(e) => log::error!(
                "The new TLS certificate cannot be used ({e}); the previous one ({}, valid until {}) stays in use. Fix the files; they are read again when they change or on systemctl reload hookrelay.",
                before.subject,
                before.not_after_text()
            ),
        }
    }
}
