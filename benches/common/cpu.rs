//! CPU time of a process, per thread group, read from `/proc/PID/task/*/stat`: the budget per
//! webhook that the load bench reports beside req/s (CPU per request moves far less than req/s
//! when other work shares the machine).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a thread does, from the name the relay (or actix) gives it.
pub fn group(comm: &str) -> &'static str {
    if comm.starts_with("actix") {
        "http"
    } else if comm == "journal" {
        "writer"
    } else if comm == "applier" {
        "applier"
    } else if comm.starts_with("worker-") || comm == "scheduler" {
        "delivery"
    } else {
        "other"
    }
}

/// CPU seconds (user + system) per thread group so far. Threads that ended are not counted,
/// which is why the bench samples while the relay still runs.
pub fn by_group(pid: u32) -> BTreeMap<&'static str, f64> {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ...`: comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the comm: state is field 0, utime 11, stime 12.
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        *out.entry(group(comm)).or_insert(0.0) += (ticks(11) + ticks(12)) as f64 / tick;
    }
    out
}

/// Waits until the process uses less than a tenth of a core over 200 ms (the work the load
/// left behind: the applier catching up, checkpoints), at most `limit`.
pub fn settle(pid: u32, limit: Duration) {
    let deadline = Instant::now() + limit;
    let total = |m: &BTreeMap<&str, f64>| m.values().sum::<f64>();
    let mut last = total(&by_group(pid));
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let now = total(&by_group(pid));
        if now - last < 0.02 {
            return;
        }
        last = now;
    }
}

/// `µs per request` overall and per group, from two samples and the requests answered.
pub fn per_request(
    before: &BTreeMap<&'static str, f64>,
    after: &BTreeMap<&'static str, f64>,
    requests: u64,
) -> (f64, String) {
    let n = requests.max(1) as f64;
    let mut parts = Vec::new();
    let mut sum = 0.0;
    for (group, secs) in after {
        let used = secs - before.get(group).copied().unwrap_or(0.0);
        sum += used;
        parts.push(format!("{group} {:.0}", used * 1e6 / n));
    }
    (sum * 1e6 / n, parts.join(", "))
}
