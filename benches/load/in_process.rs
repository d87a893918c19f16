//! Optional (`LOAD_INPROC_DURABLE=1`): the real `Application` in process, loaded like the
//! binary, to read the journal's group-commit statistics.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hookrelay::config::Settings;

use super::common::healthz;
use super::generator::{run_load, Report};
use super::{config_text, READY_TIMEOUT};

pub(super) fn run_inproc_durable(conns: u64, warmup: Duration, measure: Duration) -> Report {
    use hookrelay::startup::Application;

    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let settings =
        Settings::parse(&config_text(dir.path(), 0)).expect("the generated config is valid");
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("inproc-relay".into())
        .spawn(move || {
            let result = actix_web::rt::System::new().block_on(async move {
                let app = Application::build(settings).map_err(|e| e.to_string())?;
                let _ = tx.send((app.port(), app.handle(), app.journal().clone()));
                app.run_until_stopped().await.map_err(|e| e.to_string())
            });
            if let Err(e) = result {
                eprintln!("the in-process relay failed: {e}");
            }
        })
        .expect("cannot start the in-process relay thread");
    let (port, handle, journal) = rx
        .recv()
        .expect("the in-process relay did not start (see the error above)");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + READY_TIMEOUT;
    while !healthz(addr) {
        assert!(
            Instant::now() < deadline,
            "the in-process relay never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = (
        journal.stats().ops.load(Ordering::Relaxed),
        journal.stats().commits.load(Ordering::Relaxed),
    );
    let mut report = run_load("durable (in-proc)", addr, conns, warmup, measure);
    let ops = journal.stats().ops.load(Ordering::Relaxed) - before.0;
    let commits = journal.stats().commits.load(Ordering::Relaxed) - before.1;
    report.extra = Some(format!(
        "{ops} journal ops in {commits} commits: mean batch {:.1}, {:.0} commits/s",
        ops as f64 / commits.max(1) as f64,
        commits as f64 / (warmup + measure).as_secs_f64()
    ));
    actix_web::rt::System::new().block_on(handle.stop(true));
    thread.join().expect("the in-process relay thread panicked");
    report
}
