//! The durable server: the release binary, started on a temporary config and store, loaded,
//! then stopped with SIGTERM; its CPU per webhook and store size go into the report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{self, dir_size, free_port, healthz, Client, Conn};
use super::generator::{run_load_with, Report};
use super::{config_text, READY_TIMEOUT};

const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The relay process; SIGKILLed on drop if it was not stopped cleanly.
struct RelayProcess {
    child: Child,
    log: PathBuf,
}

impl RelayProcess {
    fn binary() -> PathBuf {
        if let Ok(bin) = std::env::var("HOOKRELAY_BIN") {
            return PathBuf::from(bin);
        }
        // Cargo builds the package's binaries for benches and says where, in the bench profile
        // (release settings), so this is never stale.
        PathBuf::from(env!("CARGO_BIN_EXE_hookrelay"))
    }

    fn start(dir: &Path, config: &Path) -> RelayProcess {
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
            .env("RUST_LOG", "warn")
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

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Polls until `ready` says so, failing early if the process exits.
    fn wait_ready(&mut self, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
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

    /// SIGTERM, then waits for a clean exit (SIGKILL after `STOP_TIMEOUT`).
    fn stop(mut self) -> String {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain syscall on a child we started and have not reaped.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        if rc != 0 {
            return format!("SIGTERM failed: {}", std::io::Error::last_os_error());
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return format!("exited with {status}"),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return format!("did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed");
                }
                Err(e) => return format!("could not wait for it: {e}"),
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

pub(super) fn run_durable(conns: u64, warmup: Duration, measure: Duration) -> Report {
    run_durable_as("durable (binary)", conns, warmup, measure, false, false)
}

/// The durable server over plain HTTP or TLS, loaded with keep-alive connections or with one
/// request per connection.
pub(super) fn run_durable_as(
    name: &str,
    conns: u64,
    warmup: Duration,
    measure: Duration,
    tls: bool,
    close_each: bool,
) -> Report {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let port = free_port();
    let config = dir.path().join("config.toml");
    let mut text = config_text(dir.path(), port);
    let mut client = Client {
        tls: None,
        close_each,
    };
    if tls {
        let (lines, config) = super::tls::setup(dir.path());
        text = text.replacen("[server]\n", &format!("[server]\n{lines}"), 1);
        client.tls = Some(config);
    }
    std::fs::write(&config, text).expect("cannot write the temp config");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();

    let mut relay = RelayProcess::start(dir.path(), &config);
    if tls {
        // Any answer over TLS (405 for a POST to /healthz) means the listener is up.
        let probe = Client {
            tls: client.tls.clone(),
            close_each: true,
        };
        relay.wait_ready(|| {
            Conn::open_with(addr, &probe).is_ok_and(|mut c| c.post("/healthz", "{}").is_ok())
        });
    } else {
        relay.wait_ready(|| healthz(addr));
    }
    let pid = relay.child.id();
    let before = common::cpu::by_group(pid);
    let mut report = run_load_with(name, addr, conns, warmup, measure, &client);
    // The work the load left behind (the applier catching up) belongs to those requests.
    common::cpu::settle(pid, Duration::from_secs(10));
    let after = common::cpu::by_group(pid);
    report.cpu = Some(common::cpu::per_request(&before, &after, report.answered));
    let stopped = relay.stop();
    let store_mb = dir_size(&dir.path().join("store")) as f64 / 1e6;
    report.extra = Some(format!("relay {stopped}; store {store_mb:.1} MB"));
    report
}
