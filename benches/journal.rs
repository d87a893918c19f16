//! Durable journal appends per second with 1, 8 and 64 concurrent writer threads.
//!
//! Each criterion iteration appends `APPENDS_PER_ITER` new notifications (unique external ids, so
//! none is a duplicate) split evenly over N writer threads that each call `accept_blocking`, the
//! same path an HTTP request takes minus the async wake-up. Every append returns only after its
//! group commit is flushed and `fdatasync`ed, so this measures the disk-bound intake ceiling.
//! After each case the mean group-commit size (`ops / commits` from `Journal::stats`) is printed:
//! it should grow with the writer count, which is what keeps appends/s rising while fsyncs/s stay
//! roughly flat.
//!
//! The writer threads live for the whole case (spawned once, fed jobs over a channel) so thread
//! start-up is not timed. The store is a fresh temporary directory per case, on the same file
//! system as `std::env::temp_dir()` (set TMPDIR to bench another disk; tmpfs makes fsync free).

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use crossbeam_channel::{Receiver, Sender};
use hookrelay::sources::SourceKind;
use hookrelay::store::journal::{Accepted, Idempotency, Journal, NewNotification};
use hookrelay::store::Store;

/// Appends per criterion iteration; divisible by every writer count below.
const APPENDS_PER_ITER: u64 = 64;
const WRITERS: [u64; 3] = [1, 8, 64];

/// Unique external ids across every case and thread.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

const EXAMPLE: &str = r#"{"id":"0065800000BwzJt","name":"Sample02","status":"Qualification","account":"Andrew Test","close_date":"2017-03-16","type":"New Business","country":"UK","owner_name":"Andrew","owner_email":"andrew@tray.io","amount":4500}"#;

fn notification() -> NewNotification {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let external_id = format!("bench-{n}");
    NewNotification {
        source: "salesforce".into(),
        kind: SourceKind::Opportunity,
        raw: EXAMPLE.replace("0065800000BwzJt", &external_id),
        idempotency: Idempotency::Versioned(external_id),
        region: "UK".into(),
        url: None,
        also: Vec::new(),
        web_api: false,
        on_status: None,
        received_at_ms: hookrelay::store::now_ms(),
    }
}

/// N writer threads, each appending as many notifications as each job asks, one at a time.
struct Writers {
    jobs: Vec<Sender<u64>>,
    done: Receiver<()>,
    threads: Vec<JoinHandle<()>>,
}

impl Writers {
    fn start(journal: &Journal, n: u64) -> Writers {
        let (done_tx, done) = crossbeam_channel::unbounded();
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for i in 0..n {
            let (job_tx, job_rx) = crossbeam_channel::unbounded::<u64>();
            let journal = journal.clone();
            let done_tx = done_tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("writer-{i}"))
                .spawn(move || {
                    for count in job_rx {
                        for _ in 0..count {
                            match journal.accept_blocking(notification()) {
                                Ok(Accepted::New(_)) => {}
                                Ok(other) => {
                                    panic!("a unique id was not stored as new: {other:?}")
                                }
                                Err(e) => panic!("the journal refused an append: {e}"),
                            }
                        }
                        if done_tx.send(()).is_err() {
                            return;
                        }
                    }
                })
                .expect("cannot start a writer thread");
            jobs.push(job_tx);
            threads.push(thread);
        }
        Writers {
            jobs,
            done,
            threads,
        }
    }

    /// Has every writer append `per_writer` notifications; returns the wall time for all of them.
    fn run(&self, per_writer: u64) -> Duration {
        let start = Instant::now();
        for job in &self.jobs {
            job.send(per_writer).expect("a writer thread died");
        }
        for _ in &self.jobs {
            self.done.recv().expect("a writer thread died");
        }
        start.elapsed()
    }

    fn stop(self) {
        drop(self.jobs);
        for t in self.threads {
            t.join().expect("a writer thread panicked");
        }
    }
}

fn bench_journal(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal_append");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(APPENDS_PER_ITER));

    let mut summary = Vec::new();
    for &n in &WRITERS {
        let dir = tempfile::tempdir().expect("cannot create a temporary store directory");
        let store = Store::open(dir.path()).expect("cannot open the store");
        let (journal, handle) = Journal::start(store, None).expect("cannot start the journal");
        let writers = Writers::start(&journal, n);
        let per_writer = APPENDS_PER_ITER / n;

        let mut timed = Duration::ZERO;
        let mut timed_appends = 0u64;
        group.bench_function(format!("{n}_writers"), |b| {
            b.iter_custom(|iters| {
                let elapsed = writers.run(per_writer * iters);
                timed += elapsed;
                timed_appends += APPENDS_PER_ITER * iters;
                elapsed
            })
        });

        writers.stop();
        let stats = journal.stats();
        let commits = stats.commits.load(Ordering::Relaxed);
        let ops = stats.ops.load(Ordering::Relaxed);
        let batch = ops as f64 / commits.max(1) as f64;
        let rate = timed_appends as f64 / timed.as_secs_f64().max(1e-9);
        println!(
            "journal_append/{n}_writers: {ops} appends in {commits} group commits, \
             mean batch {batch:.1}; {rate:.0} appends/s, {:.0} commits/s over all runs",
            commits as f64 / timed.as_secs_f64().max(1e-9)
        );
        summary.push((n, rate, batch));
        journal.close();
        handle.join().expect("the journal thread panicked");
    }
    group.finish();

    println!("\nwriters | appends/s (all runs) | mean group-commit batch");
    for (n, rate, batch) in summary {
        println!("{n:>7} | {rate:>20.0} | {batch:>23.1}");
    }
}

criterion_group!(benches, bench_journal);
criterion_main!(benches);
