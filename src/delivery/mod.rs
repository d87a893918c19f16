//! Delivery: the scheduler thread, the worker pool, and the policy they follow.
//!
//! ```text
//! journal ──Wake──▶ scheduler ──Job──▶ workers (N) ──POST──▶ Slack
//!                       ▲                 │
//!                       └──────Done───────┘   (outcome recorded in the journal first)
//! ```
//!
//! - `scheduler.rs`: per region, the head of its due queue, pauses and the token bucket;
//! - `worker.rs`: `deliver_one`, one attempt start to finish, and its `Outcome`;
//! - `webhook.rs` (incoming webhooks, `file://`, one-off URLs) and `web_api.rs` (bot-token
//!   regions: which method, which posted message) send it; `render.rs` builds the payload from
//!   the stored versions at send time;
//! - `policy.rs`: `classify(answer) -> RetryAction` (and its Web API and decision forms), apart
//!   from the transport; `backoff.rs`, `rate_limit.rs` (token bucket), `method_limits.rs`
//!   (Slack's per-method tiers);
//! - `outcome.rs`: an outcome recorded through the journal and logged;
//! - `burst.rs` (is a region's queue a burst, what does its digest list), `digest.rs` (form,
//!   send and settle a digest), `render_digest.rs` (its message).

pub mod backoff;
pub mod burst;
pub mod digest;
pub mod method_limits;
mod outcome;
pub mod policy;
pub mod rate_limit;
pub mod render;
pub mod render_digest;
#[cfg(test)]
mod render_tests;
pub mod scheduler;
pub mod web_api;
mod webhook;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::clock::Clock;
use crate::store::now_ms;
use scheduler::{Event, Job};
use worker::{Outcome, Worker};

/// The running scheduler and worker pool.
pub struct Dispatcher {
    /// To tell the scheduler to stop.
    events: Sender<Event>,
    /// Set at stop: workers leave queued jobs for the next start instead of sending them.
    stopping: Arc<AtomicBool>,
    /// Every thread reports here as it exits, so `stop` can wait with a deadline.
    exited: Receiver<()>,
    /// Scheduler plus workers.
    threads: Vec<JoinHandle<()>>,
    /// Set by the scheduler on every loop (ms); the watchdog reads it.
    heartbeat: Arc<AtomicU64>,
}

impl Dispatcher {
    /// Starts the scheduler and `settings.workers` workers. `events` must be the channel whose
    /// sender the journal's waker uses.
    pub fn start(
        worker: Worker,
        events: (Sender<Event>, Receiver<Event>),
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Dispatcher> {
        let (events_tx, events_rx) = events;
        let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<Job>();
        let (exited_tx, exited) = crossbeam_channel::unbounded();
        let stopping = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();

        for i in 0..worker.settings.workers {
            let (w, jobs, done, stop, exit) = (
                worker.clone(),
                jobs_rx.clone(),
                events_tx.clone(),
                Arc::clone(&stopping),
                exited_tx.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .spawn(move || {
                        work(&w, &jobs, &done, &stop);
                        let _ = exit.send(());
                    })?,
            );
        }
        let store = worker.store.clone();
        let journal = worker.journal.clone();
        let regions: Arc<BTreeMap<_, _>> = Arc::clone(&worker.regions);
        let exit = exited_tx;
        let heartbeat = Arc::new(AtomicU64::new(now_ms()));
        let beat = Arc::clone(&heartbeat);
        threads.push(
            std::thread::Builder::new()
                .name("scheduler".into())
                .spawn(move || {
                    scheduler::run(
                        store,
                        &journal,
                        &regions,
                        events_rx,
                        jobs_tx,
                        &beat,
                        clock.as_ref(),
                    );
                    let _ = exit.send(());
                })?,
        );
        Ok(Dispatcher {
            events: events_tx,
            stopping,
            exited,
            threads,
            heartbeat,
        })
    }

    pub fn heartbeat(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.heartbeat)
    }

    /// Stops dispatching, lets attempts under way finish for up to `grace`, and returns whether
    /// every thread ended in time. An attempt cut off here is sent again after the restart.
    pub fn stop(self, grace: Duration) -> bool {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.events.send(Event::Stop);
        let deadline = Instant::now() + grace;
        let total = self.threads.len();
        let mut ended = 0;
        while ended < total {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.exited.recv_timeout(left).is_err() {
                log::warn!(
                    "{} delivery threads were still busy after {grace:?}; their attempts will be repeated after the restart.",
                    total - ended
                );
                return false;
            }
            ended += 1;
        }
        for t in self.threads {
            let _ = t.join();
        }
        true
    }
}

fn work(worker: &Worker, jobs: &Receiver<Job>, done: &Sender<Event>, stopping: &AtomicBool) {
    while let Ok(job) = jobs.recv() {
        let mut paused = false;
        let pause_until_ms = if stopping.load(Ordering::SeqCst) {
            None
        } else {
            // A digest is stored before it is sent: retried whole, repeated at most once.
            let formed = match &job.digest {
                Some(pick) => worker
                    .form_digest(job.delivery_id, &pick.members, pick.more)
                    .map(|_| ()),
                None => Ok(()),
            };
            match formed.and_then(|()| worker.deliver_one(job.delivery_id)) {
                Ok(
                    Outcome::RateLimited { until_ms }
                    | Outcome::Throttled { until_ms }
                    | Outcome::Retrying {
                        at_ms: until_ms,
                        in_place: true,
                        ..
                    },
                ) => Some(until_ms),
                Ok(Outcome::RegionPaused { .. }) => {
                    paused = true;
                    None
                }
                Ok(Outcome::Skipped) => {
                    // The queue pointed at nothing pending; without this the scheduler would
                    // hand out the same entry again at once, for ever.
                    log::warn!(
                        "Removing a stale queue entry for delivery {} of region {}.",
                        job.delivery_id,
                        job.region
                    );
                    worker
                        .journal
                        .drop_due(&job.region, job.due_ms, job.delivery_id)
                        .err()
                        .map(|_| now_ms() + scheduler::STORE_ERROR_PAUSE_MS)
                }
                Ok(_) => None,
                // A full disk is reported once by the store; the delivery simply waits.
                Err(e @ crate::store::StoreError::DiskFull(_)) => {
                    log::warn!("Delivery {} waits: {e}.", job.delivery_id);
                    Some(now_ms() + scheduler::STORE_ERROR_PAUSE_MS)
                }
                Err(e) => {
                    log::error!("Delivery {} could not be processed: {e}.", job.delivery_id);
                    Some(now_ms() + scheduler::STORE_ERROR_PAUSE_MS)
                }
            }
        };
        let _ = done.send(Event::Done {
            region: job.region,
            pause_until_ms,
            paused,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::store::journal::Journal;
    use crate::store::{keys, Store};

    #[test]
    fn a_queue_entry_pointing_at_nothing_is_removed_not_retried_for_ever() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[store]\npath = {:?}\n[regions.UK]\nwebhook_url = \"file://{}/uk.jsonl\"\n",
            dir.path().join("store").display().to_string(),
            dir.path().display()
        );
        let settings = Settings::parse(&text).unwrap();
        let store = Store::open(&settings.store.path).unwrap();
        // A due entry whose delivery record does not exist.
        store.db().insert(keys::due("UK", 1, 999), &[]).unwrap();
        let (journal, writer) = Journal::start(store.clone(), None).unwrap();
        let worker = Worker::new(store.clone(), journal.clone(), &settings).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let dispatcher = Dispatcher::start(worker, crossbeam_channel::unbounded(), clock).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.first_due("UK").unwrap().is_some() {
            assert!(Instant::now() < deadline, "the stale entry is still queued");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(dispatcher.stop(Duration::from_secs(5)));
        journal.close();
        writer.join().unwrap();
    }
}
