//! The real `hookrelay` binary in a temp dir: its config, store and logs, and a guard that
//! SIGKILLs it if a test fails. Used by the crash and service tests.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::fake_slack::FakeSlack;
use crate::helpers::opportunity;

pub const BIN: &str = env!("CARGO_BIN_EXE_hookrelay");

/// Workers in the binary's config: the most deliveries in flight at a crash.
pub const WORKERS: usize = 4;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// Polls `done` every 20 ms until it holds, panicking with `what` after `timeout`; returns how
/// long it took.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the base config has no {from:?}:\n{text}"
    );
    text.replacen(from, to, 1)
}

pub fn replace_all(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the base config has no {from:?}:\n{text}"
    );
    text.replace(from, to)
}

/// A temp dir holding the store, the config and the logs, plus the fake Slack the config uses.
pub struct Harness {
    pub slack: FakeSlack,
    pub dir: tempfile::TempDir,
    /// The config with `{PORT}` where the listen port goes.
    template: String,
    /// The port in the config file now.
    port: u16,
    /// Runs started so far, to name the log files.
    runs: usize,
    /// Extra environment for the child (NOTIFY_SOCKET, JOURNAL_STREAM, …).
    pub env: Vec<(String, String)>,
    /// The child's open-file limit (soft, hard), set just before exec as a systemd unit's
    /// `LimitNOFILE=` would be; `None` inherits the test's.
    pub open_files: Option<(libc::rlim_t, libc::rlim_t)>,
}

impl Harness {
    /// `helpers::config()` on a real port, a generous rate, and `edits` applied.
    pub fn new(edits: &[(&str, &str)]) -> Harness {
        let slack = FakeSlack::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut text = crate::helpers::config(&slack, &dir.path().join("store"));
        text = replace_once(
            &text,
            "listen = \"127.0.0.1:0\"",
            "listen = \"127.0.0.1:{PORT}\"",
        );
        text = replace_once(&text, "workers = 4", &format!("workers = {WORKERS}"));
        text = replace_all(&text, "rate = \"100/s\"", "rate = \"1000/s\"");
        text = replace_all(&text, "burst = 100\n", "burst = 1000\n");
        for (from, to) in edits {
            text = replace_once(&text, from, to);
        }
        let mut h = Harness {
            slack,
            dir,
            template: text,
            port: 0,
            runs: 0,
            env: Vec::new(),
            open_files: None,
        };
        h.write_config(free_port());
        h
    }

    /// Changes the config for the next start.
    pub fn edit_config(&mut self, from: &str, to: &str) {
        self.template = replace_once(&self.template, from, to);
        self.write_config(self.port);
    }

    /// The port the config names.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("hookrelay.toml")
    }

    pub fn write_config(&mut self, port: u16) {
        self.port = port;
        std::fs::write(
            self.config_path(),
            self.template.replace("{PORT}", &port.to_string()),
        )
        .expect("write config");
    }

    /// Starts `hookrelay serve` on the current config and waits until `/healthz` answers 200.
    /// Only if the port was taken meanwhile (the free port was picked by binding and dropping
    /// it) is the config rewritten with another port and the start retried.
    pub fn start(&mut self) -> Relay {
        for _ in 0..5 {
            self.runs += 1;
            let mut relay = Relay::spawn(
                &self.config_path(),
                self.dir.path(),
                self.runs,
                self.port,
                &self.env,
                self.open_files,
            );
            match relay.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return relay,
                Err(stderr) if stderr.contains("cannot listen") => {
                    eprintln!("port {} was taken; retrying on another port", self.port);
                    self.write_config(free_port());
                }
                Err(stderr) => panic!("hookrelay did not become ready; its stderr:\n{stderr}"),
            }
        }
        panic!("hookrelay could not find a free port in 5 tries");
    }
}

/// A running `hookrelay serve`. Dropping it SIGKILLs and reaps the child if it still runs, and
/// prints its stderr if the test is failing.
pub struct Relay {
    pub child: Child,
    pub address: String,
    stderr_path: PathBuf,
    run: usize,
}

impl Relay {
    pub fn spawn(
        config: &Path,
        dir: &Path,
        run: usize,
        port: u16,
        env: &[(String, String)],
        open_files: Option<(libc::rlim_t, libc::rlim_t)>,
    ) -> Relay {
        let stdout_path = dir.join(format!("run-{run}.stdout.log"));
        let stderr_path = dir.join(format!("run-{run}.stderr.log"));
        // WATCHDOG_PID must be the relay's own pid, as systemd sets it; `exec` from a shell
        // keeps the shell's pid, so `$$` is exactly that.
        let mut command = if env.iter().any(|(k, _)| k == "WATCHDOG_USEC") {
            let mut c = Command::new("sh");
            c.args([
                "-c",
                "WATCHDOG_PID=$$ exec \"$0\" serve --config \"$1\"",
                BIN,
            ])
            .arg(config);
            c
        } else {
            let mut c = Command::new(BIN);
            c.args(["serve", "--config"]).arg(config);
            c
        };
        if let Some((soft, hard)) = open_files {
            use std::os::unix::process::CommandExt as _;
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            // SAFETY: runs in the forked child before exec and only calls setrlimit, which is
            // async-signal-safe; the struct is copied into the closure.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = command
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("stdout log"))
            .stderr(File::create(&stderr_path).expect("stderr log"))
            .spawn()
            .expect("start hookrelay");
        Relay {
            child,
            address: format!("http://127.0.0.1:{port}"),
            stderr_path,
            run,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the relay's address has a port")
    }

    pub fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Polls `GET /healthz` until it answers 200; `Err(stderr)` if the child exits or the
    /// deadline passes first.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let agent = agent(Duration::from_secs(2));
        let url = format!("{}/healthz", self.address);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(format!("(exited with {status})\n{}", self.stderr()));
            }
            if let Ok(resp) = agent.get(&url).call() {
                if resp.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "(no 200 from /healthz after {timeout:?})\n{}",
                    self.stderr()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.pid());
    }

    /// Waits for the child to exit; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hookrelay (run {}) did not exit within {timeout:?} of the signal",
                self.run
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, and the exit must be 0 within `timeout`. Returns how long the stop took.
    pub fn terminate(&mut self, timeout: Duration) -> Duration {
        let started = Instant::now();
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(timeout);
        assert!(
            status.success(),
            "hookrelay (run {}) exited with {status} after SIGTERM",
            self.run
        );
        started.elapsed()
    }

    pub fn post(&self, agent: &ureq::Agent, id: &str, country: &str) -> Result<u16, ureq::Error> {
        let resp = agent
            .post(format!("{}/hooks/salesforce", self.address))
            .header("Content-Type", "application/json")
            .send(opportunity(id, country).to_string().as_bytes())?;
        Ok(resp.status().as_u16())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: as in `signal`; the child is still ours and unreaped.
            unsafe { libc::kill(self.pid(), libc::SIGKILL) };
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- hookrelay run {} stderr ({}) -----\n{}\n----- end of run {} -----",
                self.run,
                self.stderr_path.display(),
                self.stderr(),
                self.run
            );
        }
    }
}
