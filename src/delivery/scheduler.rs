//! Decides what is sent next: walks each region's due queue, honours 429 pauses and the token
//! bucket, and hands one delivery per region at a time to the worker pool.
//!
//! One delivery in flight per region keeps a channel's messages in order and means a slow or
//! failing region can hold at most one worker, so the others never wait behind it.
//!
//! Pauses are of two kinds, both stored and read again at start: `p` keys, 429 pauses with an
//! end time (so a restart honours `Retry-After`), and `P` keys, pauses until resumed, set by an
//! operator or by a region's webhook that answered 403, 404 or 410. The scheduler holds both in
//! memory. A delivery's target is a region name or, for a route's or an event's one-off webhook,
//! `url.` + a hash of the URL; the scheduler learns such targets from the applier's wake-ups and,
//! after a restart, from the stored queue counters (the queue is not scanned).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::burst::{Burst, Pick};
use super::rate_limit::TokenBucket;
use crate::clock::Clock;
use crate::config::{DigestRule, Rate, RegionSettings};
use crate::store::journal::Journal;
use crate::store::{now_ms, Store};

/// Longest the scheduler sleeps without an event; a safety net, since every new notification and
/// every finished attempt wakes it anyway.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How long a region waits after the store failed to read or record one of its deliveries.
pub(crate) const STORE_ERROR_PAUSE_MS: u64 = 1000;
/// Target keys of one-off webhooks start with this (region names cannot contain a dot).
const ONE_OFF_PREFIX: &str = "url.";
/// Burst for one-off webhooks: the same as a region's default.
const ONE_OFF_BURST: u32 = 3;

/// Messages to the scheduler thread.
#[derive(Debug)]
pub enum Event {
    /// New deliveries were stored for these targets.
    Wake(Vec<String>),
    /// A worker finished a region's delivery; `pause_until_ms` after a 429 or a store error,
    /// `paused` when the webhook turned out to be gone.
    Done {
        region: String,
        pause_until_ms: Option<u64>,
        paused: bool,
    },
    /// An operator paused (`true`) or resumed (`false`) a region.
    Pause { region: String, paused: bool },
    /// Stop dispatching and exit.
    Stop,
}

/// One unit of work for the pool.
#[derive(Debug, Clone)]
pub struct Job {
    /// The delivery to attempt.
    pub delivery_id: u64,
    /// Its region, so the worker can report back without a lookup.
    pub region: String,
    /// Its due-queue time, so a stale queue entry can be removed.
    pub due_ms: u64,
    /// Send it as the digest of these posts too (the region is in a burst).
    pub digest: Option<Pick>,
}

struct RegionState {
    /// `rate` and `burst` for this webhook.
    bucket: TokenBucket,
    /// Whether the region is in a burst (never for one-off webhooks).
    burst: Burst,
    /// A delivery of this region is with a worker.
    busy: bool,
    /// No request before this time (ms): Slack's Retry-After.
    paused_until_ms: u64,
    /// Paused by an operator or a "webhook gone" answer, until resumed.
    held: bool,
}

/// Adds a `url.…` target with the default limit and any stored 429 pause; region names come
/// only from the config.
fn add_one_off(
    states: &mut BTreeMap<String, RegionState>,
    pauses: &HashMap<String, u64>,
    target: String,
    now: u64,
) {
    if target.starts_with(ONE_OFF_PREFIX) && !states.contains_key(&target) {
        let state = RegionState {
            bucket: TokenBucket::new(Rate::SLACK_DEFAULT, ONE_OFF_BURST, now),
            burst: Burst::new(&DigestRule::OFF, Rate::SLACK_DEFAULT),
            busy: false,
            paused_until_ms: pauses.get(&target).copied().unwrap_or(0),
            held: false,
        };
        states.insert(target, state);
    }
}

/// `journal`'s counters say which targets have pending deliveries at start, and how long a
/// region's queue is when a digest is picked.
pub fn run(
    store: Store,
    journal: &Journal,
    regions: &BTreeMap<String, RegionSettings>,
    events: Receiver<Event>,
    jobs: Sender<Job>,
    heartbeat: &AtomicU64,
    clock: &dyn Clock,
) {
    // After a restart the applier may still be replaying the log: an outcome in it (a delivery
    // already posted) must reach sled before the queue is read, or it would be posted again.
    // The heartbeat goes on meanwhile: a long replay is progress, not a hung scheduler.
    loop {
        heartbeat.store(now_ms(), Ordering::Relaxed);
        match store.sync_reads_for(std::time::Duration::from_secs(1)) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                log::error!(
                    "The store could not catch up with its log, so nothing is delivered: {e}."
                );
                return;
            }
        }
    }
    let now = clock.now_ms();
    let pauses = store.pauses().unwrap_or_else(|e| {
        log::error!("Could not read the regions' 429 pauses from the store: {e}.");
        HashMap::new()
    });
    let held = store.manual_pauses().unwrap_or_else(|e| {
        log::error!("Could not read the paused regions from the store: {e}.");
        HashMap::new()
    });
    // A region whose URL is still the shipped placeholder has no state: its messages stay queued.
    let mut states: BTreeMap<String, RegionState> = regions
        .iter()
        .filter(|(_, r)| !r.target.is_placeholder())
        .map(|(name, r)| {
            let state = RegionState {
                bucket: TokenBucket::new(r.rate, r.burst, now),
                burst: Burst::new(&r.digest, r.rate),
                busy: false,
                paused_until_ms: pauses.get(name).copied().unwrap_or(0),
                held: held.contains_key(name),
            };
            (name.clone(), state)
        })
        .collect();
    // One-off webhooks (a route's URL, a Rainforest event's) queued before the restart.
    for target in journal.pending_by_target().into_keys() {
        add_one_off(&mut states, &pauses, target, now);
    }

    loop {
        let now = clock.now_ms();
        heartbeat.store(now_ms(), Ordering::Relaxed);
        // No post without a place to record its outcome: while the store cannot take writes,
        // nothing is handed out (a message sent then would be sent again). The disk watcher
        // wakes this loop once a write goes through again.
        let writable = store.space().takes_writes();
        if !writable {
            store.space().held_passes.inc();
        }
        // One-off targets are forgotten once idle with an empty queue, so a stream of distinct
        // event URLs cannot grow this map (and each pass) without bound.
        let mut idle: Vec<String> = Vec::new();
        let mut wake_at = now + IDLE_POLL.as_millis() as u64;
        for (name, state) in states.iter_mut() {
            if state.busy || state.held || !writable {
                continue;
            }
            if state.paused_until_ms > now {
                wake_at = wake_at.min(state.paused_until_ms);
                continue;
            }
            let (due, delivery_id) = match store.first_due(name) {
                Ok(Some(head)) => head,
                Ok(None) => {
                    if name.starts_with(ONE_OFF_PREFIX) {
                        idle.push(name.clone());
                    }
                    continue;
                }
                Err(e) => {
                    log::error!("Could not read region {name}'s queue: {e}.");
                    state.paused_until_ms = now + STORE_ERROR_PAUSE_MS;
                    continue;
                }
            };
            if due > now {
                wake_at = wake_at.min(due);
                continue;
            }
            match state.bucket.try_take(now) {
                Ok(()) => {
                    let pending = journal.pending_of(name);
                    let digest = state
                        .burst
                        .pick(&store, name, delivery_id, pending, now)
                        .unwrap_or_else(|e| {
                            log::error!("Could not read region {name}'s queue for a digest; posting one by one: {e}.");
                            None
                        });
                    if jobs
                        .send(Job {
                            delivery_id,
                            region: name.clone(),
                            due_ms: due,
                            digest,
                        })
                        .is_err()
                    {
                        return; // the pool is gone: shutting down
                    }
                    state.busy = true;
                }
                Err(wait) => wake_at = wake_at.min(now + wait.as_millis() as u64),
            }
        }

        for name in idle {
            states.remove(&name);
        }
        let timeout = Duration::from_millis(wake_at.saturating_sub(clock.now_ms()));
        let mut next = events.recv_timeout(timeout);
        loop {
            match next {
                Ok(Event::Wake(targets)) => {
                    for target in targets {
                        add_one_off(&mut states, &pauses, target, clock.now_ms());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Ok(Event::Pause { region, paused }) => {
                    if let Some(state) = states.get_mut(&region) {
                        state.held = paused;
                    }
                }
                Ok(Event::Done {
                    region,
                    pause_until_ms,
                    paused,
                }) => {
                    if let Some(state) = states.get_mut(&region) {
                        state.busy = false;
                        state.held |= paused;
                        if let Some(until) = pause_until_ms {
                            state.paused_until_ms = state.paused_until_ms.max(until);
                        }
                    }
                }
                Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            }
            // Take every event already queued before scanning again.
            next = match events.try_recv() {
                Ok(e) => Ok(e),
                Err(_) => break,
            };
        }
    }
}
