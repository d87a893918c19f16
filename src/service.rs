//! Running under systemd: readiness, the watchdog, and log lines journald understands.
//!
//! Every call is a no-op outside systemd (no `NOTIFY_SOCKET`, no `WATCHDOG_USEC`), so the same
//! binary runs by hand, in tests and as a `Type=notify` unit.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::store::now_ms;

/// Tells systemd the relay is ready: store open, recovery done, socket bound.
pub fn ready(status: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd that start-up needs `more` time yet (a compaction of the store), so that
/// `TimeoutStartSec=` does not kill a start that is making progress.
pub fn extend_start(more: Duration, status: &str) {
    let usec = u32::try_from(more.as_micros()).unwrap_or(u32::MAX);
    let _ = sd_notify::notify(
        false,
        &[
            NotifyState::ExtendTimeoutUsec(usec),
            NotifyState::Status(status),
        ],
    );
}

/// Tells systemd a stop has begun, so `systemctl status` says so while deliveries finish.
pub fn stopping() {
    let _ = sd_notify::notify(
        false,
        &[NotifyState::Stopping, NotifyState::Status("stopping")],
    );
}

/// If the unit has `WatchdogSec=`, starts a thread that feeds the watchdog only while the
/// delivery scheduler's `heartbeat` (ms of its last loop) is recent. A stuck scheduler thus
/// gets the service restarted, while a busy HTTP side alone does not keep it alive.
pub fn spawn_watchdog(heartbeat: Arc<AtomicU64>) {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let interval = Duration::from_micros(usec);
    let spawned = std::thread::Builder::new().name("watchdog".into()).spawn(move || {
        // systemd's advice: ping at half the interval.
        let period = interval / 2;
        loop {
            std::thread::sleep(period);
            let silent_ms = now_ms().saturating_sub(heartbeat.load(Ordering::Relaxed));
            if silent_ms < interval.as_millis() as u64 {
                let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
            } else {
                log::error!(
                    "The delivery scheduler has not run for {silent_ms} ms; the watchdog is no longer fed, so systemd will restart hookrelay."
                );
            }
        }
    });
    if let Err(e) = spawned {
        log::error!("The watchdog thread could not start: {e}; systemd will restart hookrelay.");
    }
}

/// Sets up logging: `RUST_LOG` if set, else `level` from the config. Under systemd (journald
/// sets `JOURNAL_STREAM`) lines carry a `<N>` priority instead of a timestamp, because journald
/// adds its own time and maps the priority.
pub fn init_logging(level: &str) {
    let env = env_logger::Env::default().default_filter_or(level);
    let mut builder = env_logger::Builder::from_env(env);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.format(|buf, record| {
            let priority = match record.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            writeln!(buf, "<{priority}>{}", record.args())
        });
    }
    // A second call (tests) keeps the first logger.
    let _ = builder.try_init();
}
