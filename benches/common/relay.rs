//! The relay under test, as the load, soak and burst harnesses run it: the real binary (or
//! `HOOKRELAY_BIN`) on a config in a temporary directory, its log in a file there, waited on
//! until ready, stopped with SIGTERM, and SIGKILLed on drop if it was not stopped cleanly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take before the harness gives up.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stop may take before SIGKILL: longer than the relay's own shutdown timeout.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A whole number from the environment (`_` allowed as a digit separator), else `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// The relay process.
pub struct RelayProcess {
    /// The running binary.
    child: Child,
    /// Its stdout and stderr, for the report and for failures.
    log: PathBuf,
}

impl RelayProcess {
    /// `HOOKRELAY_BIN`, else the binary cargo built for this bench (in the bench profile, so
    /// never stale).
    pub fn binary() -> PathBuf {
        if let Ok(bin) = std::env::var("HOOKRELAY_BIN") {
            return PathBuf::from(bin);
        }
        PathBuf::from(env!("CARGO_BIN_EXE_hookrelay"))
    }

    /// Starts `serve --config config` in `dir` with `RUST_LOG=rust_log`.
    pub fn spawn(dir: &Path, config: &Path, rust_log: &str) -> RelayProcess {
        let bin = Self::binary();
        assert!(
            bin.is_file(),
            "the relay binary {} is missing; build it with `cargo build --release` or set HOOKRELAY_BIN",
            bin.display()
        );
        let log = dir.join("relay.log");
        let log_file = std::fs::File::create(&log).expect("cannot create the relay's log file");
        let child = Command::new(&bin)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(
                log_file
                    .try_clone()
                    .expect("cannot share the relay's log file"),
            )
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        RelayProcess { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its last 20 log lines.
    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Polls until `ready` says so, failing early if the process exits.
    pub fn wait_ready(&mut self, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                panic!(
                    "the relay exited with {status} before it was ready:\n{}",
                    self.log_tail()
                );
            }
            if ready() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the relay was not ready within {READY_TIMEOUT:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for it to exit (SIGKILL after `STOP_TIMEOUT`): its status, or why not.
    pub fn stop(&mut self) -> Result<ExitStatus, String> {
        if let Some(status) = self.exited() {
            return Ok(status);
        }
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain syscall on a child we started and have not reaped.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        if rc != 0 {
            return Err(format!(
                "SIGTERM failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!(
                        "did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed"
                    ));
                }
                Err(e) => return Err(format!("could not wait for it: {e}")),
            }
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
