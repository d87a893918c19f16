//! The soak's relay: the shared [`RelayProcess`], started after a `check-config` of the soak's
//! config; the purge lines of its log; its RSS.

use std::path::Path;
use std::process::Command;

pub(super) use super::common::relay::RelayProcess;

/// Checks the config with the binary (an older binary may not know a soak setting), then starts
/// it with `SOAK_RUST_LOG`.
pub(super) fn start(dir: &Path, config: &Path) -> RelayProcess {
    let bin = RelayProcess::binary();
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
    let log = std::env::var("SOAK_RUST_LOG")
        .unwrap_or_else(|_| "warn,hookrelay::store::retention=info".into());
    RelayProcess::spawn(dir, config, &log)
}

/// The log lines that mention the purge, and the notifications they say were purged (the first
/// number after "purged").
pub(super) fn purge_log(relay: &RelayProcess) -> (Vec<String>, u64) {
    let text = relay.log_text();
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

/// The process's resident set size in bytes (`VmRSS`), if it can be read.
pub(super) fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
