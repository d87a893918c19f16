//! The relay under test: the real binary started on the harness's config (after a
//! `check-config`), waited on until ready, its log read, stopped with SIGTERM; and its RSS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::common::healthz;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The relay process; SIGKILLed on drop if it was not stopped cleanly.
pub(super) struct RelayProcess {
    child: Child,
    log: PathBuf,
}

impl RelayProcess {
    fn binary() -> PathBuf {
        if let Ok(bin) = std::env::var("HOOKRELAY_BIN") {
            return PathBuf::from(bin);
        }
        PathBuf::from(env!("CARGO_BIN_EXE_hookrelay"))
    }

    pub(super) fn start(dir: &Path, config: &Path) -> RelayProcess {
        let bin = Self::binary();
        assert!(
            bin.is_file(),
            "the relay binary {} is missing; build it with `cargo build --release` or set HOOKRELAY_BIN",
            bin.display()
        );
        let check = Command::new(&bin)
            .arg("check-config")
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        if !check.status.success() {
            eprintln!(
                "the relay ({}) refuses the soak config (does it know store.retention and \
                 store.purge_interval yet?):\n{}{}",
                bin.display(),
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
            std::process::exit(2);
        }
        let log = dir.join("relay.log");
        let log_file = std::fs::File::create(&log).expect("cannot create the relay's log file");
        let child = Command::new(&bin)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .env(
                "RUST_LOG",
                std::env::var("SOAK_RUST_LOG")
                    .unwrap_or_else(|_| "warn,hookrelay::store::retention=info".into()),
            )
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

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The log lines that mention the purge, and the notifications they say were purged (the
    /// first number after "purged").
    pub(super) fn purge_log(&self) -> (Vec<String>, u64) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("purge"))
            .map(str::to_string)
            .collect();
        let purged = lines
            .iter()
            .filter_map(|l| {
                let (_, rest) = l.split_once("purged ")?;
                rest.split_whitespace().next()?.parse::<u64>().ok()
            })
            .sum();
        (lines, purged)
    }

    /// The exit status if the process has ended.
    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Polls `GET /healthz` until it answers 200, failing early if the process exits.
    pub(super) fn wait_ready(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                panic!(
                    "the relay exited with {status} before it was ready:\n{}",
                    self.log_tail()
                );
            }
            if healthz(addr) {
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
    pub(super) fn stop(&mut self) -> Result<ExitStatus, String> {
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

/// The process's resident set size in bytes (`VmRSS`), if it can be read.
pub(super) fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
