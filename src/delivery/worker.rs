//! One delivery attempt, start to finish: load, render, send, classify, record.
//!
//! [`Worker::deliver_one`] is public so tests can drive a single step against a fake Slack
//! without threads or sleeps; the pool in `delivery::mod` just calls it in a loop.
//!
//! The send itself is `webhook.rs` (incoming webhooks, one-off URLs) or `web_api.rs` (a bot
//! token); recording and logging the outcome is `outcome.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::backoff::backoff;
use super::digest::settle_members;
use super::method_limits::MethodLimits;
use super::outcome::log_outcome;
use super::policy::RetryAction;
use crate::config::WebhookUrl;
use crate::config::{DeliverySettings, RegionSettings, RegionTarget, Settings, SourceSettings};
use crate::metrics::Metrics;
use crate::slack::transport::{Answer, Transport, TransportError};
use crate::slack::web_api::Posted;
use crate::sources::approval::Sent;
use crate::store::journal::{DeliveryUpdate, Journal};
use crate::store::records::{Attempt, Delivery, DeliveryState, MessageKind};
use crate::store::{now_ms, Store, StoreError};

/// What one step did, for the scheduler and for tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Slack has it.
    Delivered,
    /// Failed for now; due again at `at_ms`. `in_place`: it kept its place in the queue and
    /// the region waits until then (a digest).
    Retrying {
        at_ms: u64,
        reason: String,
        in_place: bool,
    },
    /// Slack answered 429; the region must wait until `until_ms`.
    RateLimited { until_ms: u64 },
    /// Moved to the dead-letter list.
    Dead { reason: String },
    /// The region's webhook or token is refused: the region is paused until resumed; the
    /// message waits.
    RegionPaused { reason: String },
    /// A Web API method's budget (Slack's rate tier) is spent: no request was made and nothing
    /// recorded; the region waits until `until_ms` and the delivery keeps its place.
    Throttled { until_ms: u64 },
    /// The message this acts on (an edit, reaction, pin, delete) is not posted yet: the action
    /// waits behind it until `until_ms`, without counting an attempt.
    Waiting { until_ms: u64 },
    /// Nothing to do: the delivery is gone or no longer pending.
    Skipped,
}

/// What trying a delivery came to, before it is recorded.
pub(super) enum Step {
    /// An answer (or a local failure, or nothing to do) to record.
    Tried {
        /// What the answer means.
        action: RetryAction,
        /// Slack's answer, if a request was made.
        answer: Option<Answer>,
        /// Where the Web API put the message, for a post that went through.
        posted: Option<Posted>,
        /// What to keep in the attempt's record when there was no answer to keep.
        note: Option<String>,
    },
    /// See [`Outcome::Throttled`].
    Throttled { until_ms: u64 },
    /// See [`Outcome::Waiting`].
    Waiting { until_ms: u64 },
}

impl Step {
    /// A result reached without asking Slack.
    pub(super) fn local(action: RetryAction, note: &str) -> Step {
        Step::Tried {
            action,
            answer: None,
            posted: None,
            note: Some(note.to_string()),
        }
    }
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
    /// Region name → webhook or bot token; read at send time so a corrected setting applies to
    /// queued messages.
    pub regions: Arc<BTreeMap<String, RegionSettings>>,
    /// Attempt budget and backoff.
    pub settings: DeliverySettings,
    /// Source settings, for rendering (a generic source's title and fields).
    pub sources: Arc<BTreeMap<String, SourceSettings>>,
    /// Where outcomes are counted.
    pub metrics: Arc<Metrics>,
    /// Base URL of Slack's Web API (ends in `/`).
    pub slack_api: Arc<str>,
    /// Slack's per-method rate tiers, shared by all workers.
    pub limits: Arc<MethodLimits>,
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
            slack_api: Arc::from(settings.slack.api_url.as_str()),
            limits: Arc::new(MethodLimits::default()),
        })
    }

    /// Where a delivery goes: its own one-off URL, or its region's webhook or bot token.
    fn target(&self, delivery: &Delivery) -> Result<RegionTarget, String> {
        match &delivery.url {
            Some(url) => WebhookUrl::parse(url)
                .map(RegionTarget::Webhook)
                .map_err(|e| format!("the stored webhook URL is invalid: {e}")),
            None => self
                .regions
                .get(&delivery.region)
                .map(|r| r.target.clone())
                .ok_or_else(|| format!("region {} is not configured", delivery.region)),
        }
    }

    /// For an approval's message: how far its decision got, or `Err(until)` when the message
    /// must wait until the decision has settled (the outcome is shown after the 2xx).
    fn settled(&self, d: &Delivery, due_ms: u64) -> Result<Result<Option<Sent>, u64>, StoreError> {
        let Some(decision) = d.message.reports_on() else {
            return Ok(Ok(None));
        };
        Ok(match self.store.delivery(decision)? {
            None => Ok(Some(Sent::Failed)),
            Some(a) => match a.state {
                DeliveryState::Delivered { .. } => Ok(Some(Sent::Done)),
                DeliveryState::Dead { .. } => Ok(Some(Sent::Failed)),
                // Look again just after its next try, and never sooner than a second from now.
                DeliveryState::Pending { next_at_ms } if d.message.waits_for().is_some() => {
                    Err(next_at_ms.max(due_ms).max(now_ms() + 1000) + 1)
                }
                DeliveryState::Pending { .. } => Ok(Some(Sent::Processing)),
            },
        })
    }

    /// Attempts one delivery and records the outcome in the store.
    pub fn deliver_one(&self, delivery_id: u64) -> Result<Outcome, StoreError> {
        let Some(mut delivery) = self.store.delivery(delivery_id)? else {
            return Ok(Outcome::Skipped);
        };
        let Some(previous_due_ms) = delivery.due_ms() else {
            return Ok(Outcome::Skipped);
        };
        let notification = self.store.notification(delivery.notification_id)?;
        let source = notification
            .as_ref()
            .map(|n| n.source.clone())
            .unwrap_or_default();
        // A digest's members, read before the attempt: they settle with it.
        let members = self.digest_members(&delivery)?;
        let step = match notification {
            None => Step::local(
                RetryAction::Permanent {
                    reason: "the notification record is missing".into(),
                },
                "",
            ),
            Some(notification) => match (
                self.target(&delivery),
                self.settled(&delivery, previous_due_ms)?,
            ) {
                (_, Err(until_ms)) => Step::Waiting { until_ms },
                (Err(reason), _) => Step::local(RetryAction::Retry { reason }, ""),
                (Ok(target), _) if matches!(delivery.message, MessageKind::Digest { .. }) => {
                    self.attempt_digest(&target, &notification, &delivery, &members)
                }
                (Ok(RegionTarget::Webhook(url)), Ok(sent)) => {
                    self.attempt_webhook(&url, &notification, &delivery, sent.as_ref())
                }
                (Ok(RegionTarget::WebApi(api)), Ok(sent)) => self.attempt_web_api(
                    &api,
                    &notification,
                    &delivery,
                    previous_due_ms,
                    sent.as_ref(),
                )?,
            },
        };
        let (action, answer, posted, note) = match step {
            Step::Tried {
                action,
                answer,
                posted,
                note,
            } => (action, answer, posted, note),
            Step::Throttled { until_ms } => return Ok(Outcome::Throttled { until_ms }),
            Step::Waiting { until_ms } => {
                delivery.state = DeliveryState::Pending {
                    next_at_ms: until_ms,
                };
                self.journal.record(DeliveryUpdate {
                    delivery,
                    previous_due_ms: Some(previous_due_ms),
                    pause_region_until_ms: None,
                    pause_region_reason: None,
                    source,
                })?;
                return Ok(Outcome::Waiting { until_ms });
            }
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
                (None, RetryAction::Retry { reason } | RetryAction::Permanent { reason })
                    if note.as_deref().unwrap_or("").is_empty() =>
                {
                    reason.clone()
                }
                (None, _) => note.unwrap_or_default(),
            },
        });
        if posted.is_some() {
            delivery.posted = posted;
        }

        let mut pause = None;
        let mut paused = None;
        // `reason` says who answered what (a Web API reason does already; a webhook's status
        // gets "Slack answered" from its caller below), so the note is one sentence.
        let region_paused = |reason: &str, delivery: &Delivery| {
            let setting = self
                .regions
                .get(&delivery.region)
                .map_or("webhook_url", |r| r.target.setting_name());
            format!(
                "{reason}; fix regions.{}.{setting}, restart, then resume the region",
                delivery.region
            )
        };
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
                    // A digest lists the oldest posts waiting: it keeps its place and holds
                    // the region until its retry, so the posts behind it cannot overtake it.
                    let in_place = matches!(delivery.message, MessageKind::Digest { .. });
                    let next_at_ms = if in_place { previous_due_ms } else { at_ms };
                    delivery.state = DeliveryState::Pending { next_at_ms };
                    Outcome::Retrying {
                        at_ms,
                        reason,
                        in_place,
                    }
                }
            }
            // The region's credentials or channel are refused (a webhook's 403/404/410, a
            // token revoked, a channel archived): every queued message would fail the same
            // way, so the region pauses and keeps them instead of burning them all into the
            // dead-letter list.
            RetryAction::PauseRegion { reason } => {
                let why = region_paused(&reason, &delivery);
                paused = Some(why.clone());
                Outcome::RegionPaused { reason: why }
            }
            RetryAction::Permanent { reason }
                if webhook_gone(&answer) && delivery.url.is_none() =>
            {
                let why = region_paused(&format!("Slack answered {reason}"), &delivery);
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

        let size = members.len() + 1;
        let is_digest = matches!(delivery.message, MessageKind::Digest { .. });
        let settled = settle_members(&delivery, members);
        self.record_outcome(
            DeliveryUpdate {
                delivery: delivery.clone(),
                previous_due_ms: Some(previous_due_ms),
                pause_region_until_ms: pause,
                pause_region_reason: paused,
                source,
            },
            settled,
        )?;
        if is_digest && outcome == Outcome::Delivered {
            self.metrics.digest(&delivery.region, size);
        }
        let counted = match &outcome {
            Outcome::Delivered => Some("delivered"),
            Outcome::Retrying { .. } => Some("retry"),
            Outcome::RateLimited { .. } => Some("rate_limited"),
            Outcome::Dead { .. } => Some("dead"),
            Outcome::RegionPaused { .. } => Some("region_paused"),
            Outcome::Throttled { .. } | Outcome::Waiting { .. } | Outcome::Skipped => None,
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
        log_outcome(&delivery, size, &outcome);
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
