//! One delivery attempt, start to finish: load, render, send, classify, record.
//!
//! [`Worker::deliver_one`] is public so tests can drive a single step against a fake Slack
//! without threads or sleeps; the pool in `delivery::mod` just calls it in a loop.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::backoff::backoff;
use super::policy::{classify, RetryAction};
use crate::config::{DeliverySettings, RegionSettings, Settings, SourceSettings};
use crate::metrics::Metrics;
use crate::slack::message::{render_changes, render_moved, render_opportunity};
use crate::slack::target::WebhookUrl;
use crate::slack::transport::{Answer, Transport, TransportError};
use crate::sources::generic::{self, GenericSettings};
use crate::sources::InvalidRecord;
use crate::sources::{rainforest, tray_commerce};
use crate::store::journal::{DeliveryUpdate, Journal};
use crate::store::records::{Attempt, Delivery, DeliveryState, MessageKind, Notification, Record};
use crate::store::{now_ms, Store, StoreError};

/// What one step did, for the scheduler and for tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Slack has it.
    Delivered,
    /// Failed for now; due again at `at_ms`.
    Retrying { at_ms: u64, reason: String },
    /// Slack answered 429; the region must wait until `until_ms`.
    RateLimited { until_ms: u64 },
    /// Moved to the dead-letter list.
    Dead { reason: String },
    /// The region's webhook is gone: the region is paused until resumed; the message waits.
    RegionPaused { reason: String },
    /// Nothing to do: the delivery is gone or no longer pending.
    Skipped,
}

/// Everything an attempt needs. One per worker thread; all share the transport and the journal.
#[derive(Clone)]
pub struct Worker {
    /// Where the delivery and its notification are read.
    pub store: Store,
    /// Where the outcome is written, durably, before the next attempt can start.
    pub journal: Journal,
    /// The shared HTTP agent.
    pub transport: Arc<Transport>,
    /// Region name → webhook; read at send time so a corrected URL applies to queued messages.
    pub regions: Arc<BTreeMap<String, RegionSettings>>,
    /// Attempt budget and backoff.
    pub settings: DeliverySettings,
    /// Source settings, for rendering (a generic source's title and fields).
    pub sources: Arc<BTreeMap<String, SourceSettings>>,
    /// Where outcomes are counted.
    pub metrics: Arc<Metrics>,
}

impl Worker {
    /// A worker for these settings, with its own HTTP agent; clone it to share the agent.
    pub fn new(
        store: Store,
        journal: Journal,
        settings: &Settings,
    ) -> Result<Worker, TransportError> {
        Ok(Worker {
            store,
            transport: Arc::new(Transport::new(&settings.delivery)?),
            regions: Arc::new(settings.regions.clone()),
            settings: settings.delivery.clone(),
            sources: Arc::new(settings.sources.clone()),
            metrics: Arc::new(Metrics::new(&journal)),
            journal,
        })
    }

    /// Where a delivery goes: its own one-off URL, or its region's webhook.
    fn target(&self, delivery: &Delivery) -> Result<WebhookUrl, String> {
        match &delivery.url {
            Some(url) => WebhookUrl::parse(url)
                .map_err(|e| format!("the stored webhook URL is invalid: {e}")),
            None => self
                .regions
                .get(&delivery.region)
                .map(|r| r.webhook_url.clone())
                .ok_or_else(|| format!("region {} is not configured", delivery.region)),
        }
    }

    /// Attempts one delivery and records the outcome in the store.
    pub fn deliver_one(&self, delivery_id: u64) -> Result<Outcome, StoreError> {
        let Some(mut delivery) = self.store.delivery(delivery_id)? else {
            return Ok(Outcome::Skipped);
        };
        let Some(previous_due_ms) = delivery.due_ms() else {
            return Ok(Outcome::Skipped);
        };
        let (action, answer) = match self.store.notification(delivery.notification_id)? {
            None => (
                RetryAction::Permanent {
                    reason: "the notification record is missing".into(),
                },
                None,
            ),
            Some(notification) => match self.target(&delivery) {
                Err(reason) => (RetryAction::Retry { reason }, None),
                Ok(target) => match render(&notification, &delivery.message, &self.sources) {
                    Ok(payload) => {
                        let answer = self.transport.send(&target, &payload);
                        (classify(&answer), Some(answer))
                    }
                    Err(e) => (
                        RetryAction::Permanent {
                            reason: format!("the stored body cannot be rendered: {e}"),
                        },
                        None,
                    ),
                },
            },
        };

        let now = now_ms();
        delivery.push_attempt(Attempt {
            at_ms: now,
            status: match &answer {
                Some(Answer::Status { code, .. }) => Some(*code),
                _ => None,
            },
            answer: match (&answer, &action) {
                (Some(Answer::Status { body, .. }), _) => body.clone(),
                (Some(Answer::NoAnswer(e)), _) => e.clone(),
                (None, RetryAction::Retry { reason } | RetryAction::Permanent { reason }) => {
                    reason.clone()
                }
                (None, _) => String::new(),
            },
        });

        let mut pause = None;
        let mut paused = None;
        let outcome = match action {
            RetryAction::Delivered => {
                delivery.attempts += 1;
                delivery.state = DeliveryState::Delivered { at_ms: now };
                Outcome::Delivered
            }
            RetryAction::RateLimited { wait } => {
                let until_ms = now + wait.as_millis() as u64;
                // The message keeps its place in the queue: the pause is the webhook's, so the
                // region's messages still go out in order once it ends.
                delivery.state = DeliveryState::Pending {
                    next_at_ms: previous_due_ms,
                };
                pause = Some(until_ms);
                Outcome::RateLimited { until_ms }
            }
            RetryAction::Retry { reason } => {
                delivery.attempts += 1;
                if delivery.attempts >= self.settings.max_attempts {
                    let reason = format!(
                        "gave up after {} attempts; last: {reason}",
                        delivery.attempts
                    );
                    delivery.state = DeliveryState::Dead {
                        at_ms: now,
                        reason: reason.clone(),
                    };
                    Outcome::Dead { reason }
                } else {
                    let wait = backoff(
                        delivery.attempts,
                        self.settings.initial_backoff,
                        self.settings.max_backoff,
                    );
                    let at_ms = now + wait.as_millis() as u64;
                    delivery.state = DeliveryState::Pending { next_at_ms: at_ms };
                    Outcome::Retrying { at_ms, reason }
                }
            }
            // The region's webhook itself is gone or refused (Slack's 403/404/410): every
            // queued message would fail the same way, so the region pauses and keeps them
            // instead of burning them all into the dead-letter list.
            RetryAction::Permanent { reason }
                if webhook_gone(&answer) && delivery.url.is_none() =>
            {
                let why = format!(
                    "the webhook answered {reason}; fix regions.{}.webhook_url, restart, then resume the region",
                    delivery.region
                );
                paused = Some(why.clone());
                Outcome::RegionPaused { reason: why }
            }
            RetryAction::Permanent { reason } => {
                delivery.attempts += 1;
                delivery.state = DeliveryState::Dead {
                    at_ms: now,
                    reason: reason.clone(),
                };
                Outcome::Dead { reason }
            }
        };

        self.journal.record(DeliveryUpdate {
            delivery: delivery.clone(),
            previous_due_ms: Some(previous_due_ms),
            pause_region_until_ms: pause,
            pause_region_reason: paused,
        })?;
        let counted = match &outcome {
            Outcome::Delivered => Some("delivered"),
            Outcome::Retrying { .. } => Some("retry"),
            Outcome::RateLimited { .. } => Some("rate_limited"),
            Outcome::Dead { .. } => Some("dead"),
            Outcome::RegionPaused { .. } => Some("region_paused"),
            Outcome::Skipped => None,
        };
        if let Some(c) = counted {
            let error = match &outcome {
                Outcome::Retrying { reason, .. }
                | Outcome::Dead { reason }
                | Outcome::RegionPaused { reason } => Some(reason.as_str()),
                Outcome::RateLimited { .. } => Some("Slack answered 429 rate_limited"),
                _ => None,
            };
            self.metrics
                .attempt(&delivery.region, delivery.notification_id, c, error);
        }
        log_outcome(
            &delivery.region,
            delivery.notification_id,
            delivery.attempts,
            &outcome,
        );
        Ok(outcome)
    }
}

/// Slack's answers that mean the webhook itself no longer works (see `slack-facts.md`).
fn webhook_gone(answer: &Option<Answer>) -> bool {
    matches!(
        answer,
        Some(Answer::Status {
            code: 403 | 404 | 410,
            ..
        })
    )
}

/// The Slack payload a delivery posts.
pub fn render(
    notification: &Notification,
    message: &MessageKind,
    sources: &BTreeMap<String, SourceSettings>,
) -> Result<Vec<u8>, InvalidRecord> {
    let payload = match (notification.record()?, message) {
        (Record::Opportunity(o), MessageKind::Full) => render_opportunity(&o),
        (Record::Opportunity(latest), MessageKind::Changes { version }) => {
            // This follow-up is about version-1 → version, whatever came after it.
            let parse = |n: u32| {
                notification
                    .version(n)
                    .and_then(|raw| Record::parse(notification.kind, raw.as_bytes()).ok())
            };
            match (parse(version.saturating_sub(1)), parse(*version)) {
                (Some(Record::Opportunity(old)), Some(Record::Opportunity(new))) => {
                    render_changes(&old, &new)
                }
                // An earlier body that no longer parses cannot be compared: send the whole message.
                (_, Some(Record::Opportunity(new))) => render_opportunity(&new),
                _ => render_opportunity(&latest),
            }
        }
        (Record::Opportunity(o), MessageKind::Moved { to, .. }) => render_moved(&o, to),
        (Record::TrayCommerce(n), _) => tray_commerce::render(&n, notification.count),
        (
            Record::Rainforest {
                event_name,
                payload,
            },
            _,
        ) => rainforest::render(event_name, &payload),
        (Record::Generic(doc), _) => {
            let fallback = GenericSettings {
                id_pointer: None,
                // A source no longer configured (or the send-test message): its own title if it
                // has one, else "Notification from SOURCE".
                title: "{/title}".to_string(),
                fields: Vec::new(),
            };
            let settings = sources
                .get(&notification.source)
                .and_then(|s| s.generic.as_ref())
                .unwrap_or(&fallback);
            generic::render(&doc, settings, &notification.source)
        }
    };
    Ok(payload.to_string().into_bytes())
}

fn log_outcome(region: &str, notification: u64, attempts: u32, outcome: &Outcome) {
    match outcome {
        Outcome::Delivered => log::info!("Delivered notification {notification} to region {region}."),
        Outcome::Retrying { at_ms, reason } => log::warn!(
            "Delivery of notification {notification} to region {region} failed (attempt {attempts}: {reason}); retrying in {} ms.",
            at_ms.saturating_sub(now_ms())
        ),
        Outcome::RateLimited { until_ms } => log::warn!(
            "Slack rate-limited region {region}; pausing it for {} ms.",
            until_ms.saturating_sub(now_ms())
        ),
        Outcome::RegionPaused { reason } => log::error!(
            "Region {region} is paused and keeps its messages queued: {reason}."
        ),
        Outcome::Dead { reason } => log::error!(
            "Notification {notification} could not be delivered to region {region} and is now a dead letter: {reason}."
        ),
        Outcome::Skipped => {}
    }
}
