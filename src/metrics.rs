//! Prometheus metrics: one registry per running relay (so tests running several relays in one
//! process do not mix their numbers), rendered in the text format at `GET /metrics`.
//!
//! Counters are bumped where things happen (intake, workers); queue depths, the oldest pending
//! age, dead letters and the store's size are read at scrape time from the journal's running
//! counts and one key lookup per target, never by scanning the queue.

use std::path::Path;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::journal::Journal;
use crate::store::{now_ms, Store};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceOutcome {
    /// The `[sources.NAME]`.
    pub source: String,
    /// `accepted`, `duplicate`, `updated`, `coalesced`, or the error type of a refusal.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegionOutcome {
    /// Region name; every one-off webhook is `one-off`, to keep the label set bounded.
    pub region: String,
    /// `delivered`, `retry`, `rate_limited`, `dead`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegionLabel {
    pub region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertLabel {
    /// The certificate's subject, so that a dashboard says which one expires.
    pub subject: String,
}

/// How many recent deliveries the status page shows.
const RECENT: usize = 50;

/// The latest news of one region, for `/v1/status` and the status page.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RegionNews {
    /// When Slack last took a message (ms).
    pub last_success_ms: Option<u64>,
    /// When the last failure happened (ms), and why.
    pub last_error_ms: Option<u64>,
    pub last_error: Option<String>,
    /// Digests Slack took since the relay started, and the notifications they carried.
    pub digests: u64,
    pub digested: u64,
    /// When the last digest went out (ms), and how many it listed.
    pub last_digest_ms: Option<u64>,
    pub last_digest_size: Option<u64>,
}

/// Digest sizes a dashboard tells apart: a few, a screen, the most a message holds.
const DIGEST_BUCKETS: [f64; 6] = [2.0, 5.0, 10.0, 20.0, 30.0, 48.0];

type DigestSizes = Family<RegionLabel, Histogram, fn() -> Histogram>;

fn digest_histogram() -> Histogram {
    Histogram::new(DIGEST_BUCKETS)
}

/// One finished attempt, for the status page's list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecentDelivery {
    pub at_ms: u64,
    pub region: String,
    pub notification_id: String,
    pub outcome: String,
}

/// The relay's metrics.
pub struct Metrics {
    /// Per region (one-off webhooks together), the latest success and error.
    news: std::sync::Mutex<std::collections::HashMap<String, RegionNews>>,
    /// The latest finished attempts, newest last.
    recent: std::sync::Mutex<std::collections::VecDeque<RecentDelivery>>,
    registry: Registry,
    /// Webhooks received, by source and outcome.
    pub received: Family<SourceOutcome, Counter>,
    /// Delivery attempts, by region and outcome.
    pub deliveries: Family<RegionOutcome, Counter>,
    queue_depth: Family<RegionLabel, Gauge>,
    oldest_pending_seconds: Family<RegionLabel, Gauge>,
    dead_letters: Gauge,
    store_bytes: Gauge,
    paused: Family<RegionLabel, Gauge>,
    /// Free space on the store's disk, its reserve, and whether the store is full: set at
    /// each scrape from the store's last sample.
    disk: [Gauge; 3],
    /// When the served TLS certificate expires (Unix seconds); no sample on plain HTTP, so an
    /// alert on "expires soon" cannot fire for a relay without a certificate.
    tls_expiry: Family<CertLabel, Gauge>,
    /// Notifications per digest delivered, by region (its count is the digests sent).
    digest_size: DigestSizes,
}

/// The label for a target key.
pub fn region_label(target: &str) -> String {
    if target.starts_with("url.") {
        "one-off".to_string()
    } else {
        target.to_string()
    }
}

impl Metrics {
    /// A registry with every metric, including the journal's flush histograms.
    pub fn new(journal: &Journal) -> Metrics {
        let mut registry = Registry::with_prefix("hookrelay");
        let received = Family::<SourceOutcome, Counter>::default();
        let deliveries = Family::<RegionOutcome, Counter>::default();
        let queue_depth = Family::<RegionLabel, Gauge>::default();
        let oldest_pending_seconds = Family::<RegionLabel, Gauge>::default();
        let dead_letters = Gauge::default();
        let store_bytes = Gauge::default();
        let paused = Family::<RegionLabel, Gauge>::default();
        registry.register(
            "region_paused",
            "1 while a region is paused by an operator or because its webhook is gone",
            paused.clone(),
        );
        registry.register(
            "received",
            "Webhooks received, by source and outcome",
            received.clone(),
        );
        registry.register(
            "deliveries",
            "Delivery attempts, by region and outcome",
            deliveries.clone(),
        );
        registry.register(
            "queue_depth",
            "Deliveries waiting, by region",
            queue_depth.clone(),
        );
        registry.register(
            "oldest_pending_seconds",
            "Age of the oldest waiting delivery, by region",
            oldest_pending_seconds.clone(),
        );
        registry.register(
            "dead_letters",
            "Deliveries in the dead-letter list",
            dead_letters.clone(),
        );
        registry.register(
            "store_bytes",
            "Size of the store on disk",
            store_bytes.clone(),
        );
        let tls_expiry = Family::<CertLabel, Gauge>::default();
        registry.register(
            "tls_cert_expiry_timestamp_seconds",
            "When the TLS certificate the listener serves expires, in Unix seconds",
            tls_expiry.clone(),
        );
        let digest_size: DigestSizes = Family::new_with_constructor(digest_histogram);
        registry.register(
            "digest_size",
            "Notifications listed in each digest Slack took, by region (the count is the digests sent)",
            digest_size.clone(),
        );
        let disk: [Gauge; 3] = Default::default();
        registry.register(
            "store_free_bytes",
            "Free space on the store's filesystem (for the relay's user)",
            disk[0].clone(),
        );
        registry.register(
            "store_min_free_bytes",
            "store.min_free in bytes: below it new webhooks get 503 disk_full",
            disk[1].clone(),
        );
        registry.register(
            "store_full",
            "1 while a log write found no room: nothing is accepted or delivered until one goes through",
            disk[2].clone(),
        );
        let space = journal.space();
        registry.register(
            "store_full_events",
            "Times the store's disk became full",
            space.full_events.clone(),
        );
        registry.register(
            "store_refused_writes",
            "Webhooks refused with 503 disk_full: under store.min_free, or no room in the log",
            space.refused_writes.clone(),
        );
        registry.register(
            "delivery_held_passes",
            "Scheduler passes that sent nothing because the store could not record an outcome",
            space.held_passes.clone(),
        );
        let stats = journal.stats();
        registry.register(
            "journal_flush_seconds",
            "Time of one group commit (log write and fdatasync)",
            stats.flush_seconds.clone(),
        );
        registry.register(
            "journal_batch_size",
            "Writes made durable by one group commit",
            stats.batch_size.clone(),
        );
        Metrics {
            news: Default::default(),
            recent: Default::default(),
            registry,
            received,
            deliveries,
            queue_depth,
            oldest_pending_seconds,
            dead_letters,
            store_bytes,
            paused,
            disk,
            tls_expiry,
            digest_size,
        }
    }

    /// A digest of `size` notifications that Slack took for `target`.
    pub fn digest(&self, target: &str, size: usize) {
        let region = region_label(target);
        self.digest_size
            .get_or_create(&RegionLabel {
                region: region.clone(),
            })
            .observe(size as f64);
        if let Ok(mut news) = self.news.lock() {
            let n = news.entry(region).or_default();
            n.digests += 1;
            n.digested += size as u64;
            n.last_digest_ms = Some(now_ms());
            n.last_digest_size = Some(size as u64);
        }
    }

    pub fn received(&self, source: &str, outcome: &str) {
        let labels = SourceOutcome {
            source: source.to_string(),
            outcome: outcome.to_string(),
        };
        self.received.get_or_create(&labels).inc();
    }

    /// Records a finished attempt: counters, the region's latest news, the recent list.
    pub fn attempt(&self, target: &str, notification_id: u64, outcome: &str, error: Option<&str>) {
        self.delivery(target, outcome);
        let now = now_ms();
        let region = region_label(target);
        if let Ok(mut news) = self.news.lock() {
            let n = news.entry(region.clone()).or_default();
            match error {
                None if outcome == "delivered" => n.last_success_ms = Some(now),
                Some(e) => {
                    n.last_error_ms = Some(now);
                    n.last_error = Some(e.to_string());
                }
                None => {}
            }
        }
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(RecentDelivery {
                at_ms: now,
                region,
                notification_id: notification_id.to_string(),
                outcome: outcome.to_string(),
            });
        }
    }

    pub fn news(&self, region: &str) -> RegionNews {
        self.news
            .lock()
            .ok()
            .and_then(|n| n.get(region).cloned())
            .unwrap_or_default()
    }

    /// The latest finished attempts, newest first.
    pub fn recent(&self) -> Vec<RecentDelivery> {
        self.recent
            .lock()
            .map(|r| r.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    pub fn delivery(&self, target: &str, outcome: &str) {
        let labels = RegionOutcome {
            region: region_label(target),
            outcome: outcome.to_string(),
        };
        self.deliveries.get_or_create(&labels).inc();
    }

    /// The served certificate's expiry, set at each scrape (a reload may have replaced it).
    pub fn set_tls_expiry(&self, subject: &str, not_after: i64) {
        self.tls_expiry.clear();
        self.tls_expiry
            .get_or_create(&CertLabel {
                subject: subject.to_string(),
            })
            .set(not_after);
    }

    /// Brings the scrape-time gauges up to date and renders everything.
    pub fn render(
        &self,
        store: &Store,
        journal: &Journal,
        regions: impl Iterator<Item = String>,
    ) -> String {
        self.queue_depth.clear();
        self.oldest_pending_seconds.clear();
        self.paused.clear();
        let held = store.manual_pauses().unwrap_or_default();
        let pending = journal.pending_by_target();
        let now = now_ms();
        let mut depth: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for region in regions {
            let is_paused = i64::from(held.contains_key(&region));
            self.paused
                .get_or_create(&RegionLabel {
                    region: region.clone(),
                })
                .set(is_paused);
            depth.entry(region).or_insert(0);
        }
        for (target, n) in &pending {
            *depth.entry(region_label(target)).or_insert(0) += *n as i64;
            let head = store.first_due(target).ok().flatten();
            let created = head
                // As applied: a scrape must answer while the applier waits for disk space.
                .and_then(|(_, id)| store.delivery_as_applied(id).ok().flatten())
                .map(|d| d.created_at_ms);
            if let Some(created) = created {
                let age = (now.saturating_sub(created) / 1000) as i64;
                let gauge = self.oldest_pending_seconds.get_or_create(&RegionLabel {
                    region: region_label(target),
                });
                gauge.set(gauge.get().max(age));
            }
        }
        for (region, n) in depth {
            self.queue_depth
                .get_or_create(&RegionLabel { region })
                .set(n);
        }
        self.dead_letters.set(journal.dead_letters() as i64);
        self.store_bytes.set(dir_size(store.path()) as i64);
        let space = store.space();
        self.disk[0].set(i64::try_from(space.free()).unwrap_or(i64::MAX));
        self.disk[1].set(i64::try_from(space.reserve_bytes()).unwrap_or(i64::MAX));
        self.disk[2].set(i64::from(space.is_full()));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            log::warn!("Could not render the metrics: {e}.");
        }
        out
    }
}

/// Bytes of every file under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}
