//! One delivery through Slack's Web API (a region with a bot token): which method a message
//! kind calls, with which arguments, and on which posted message.
//!
//! A post (`chat.postMessage`) remembers the `channel` and `ts` Slack answered. An edit,
//! thread reply, reaction, pin or delete acts on the post named in its message kind: if that
//! post is still queued (it failed and waits for a retry), the action waits behind it; if it
//! was never posted (a dead letter), there is no message to act on.

use serde_json::{json, Value};

use super::policy::{classify_web_api, RetryAction};
use super::render::render_value;
use super::render_digest::line as digest_line;
use super::worker::{Step, Worker};
use crate::config::WebApiRegion;
use crate::slack::transport::Answer;
use crate::slack::web_api::{self, Method, Posted};
use crate::sources::approval::Sent;
use crate::store::records::{Delivery, DeliveryState, MessageKind, Notification};
use crate::store::{now_ms, StoreError};

/// How long an action waits when the post it needs is queued but already due: the post goes
/// first in the region's queue, so this is a fallback that keeps a mixed-up queue from spinning.
const WAIT_FOR_POST_MS: u64 = 1000;

impl Worker {
    pub(super) fn attempt_web_api(
        &self,
        api: &WebApiRegion,
        n: &Notification,
        d: &Delivery,
        due_ms: u64,
        sent: Option<&Sent>,
    ) -> Result<Step, StoreError> {
        // The message this acts on, if it acts on one.
        let target = match d.message.acts_on() {
            None => None,
            Some(of) => match self.store.delivery(of)? {
                // A digest lists many notifications: editing it to one of them, or reacting,
                // pinning or deleting for one of them, would be wrong for all the others. The
                // thread reply that comes with every update says what changed, in its thread.
                Some(post)
                    if post.digest.is_some()
                        && post.posted.is_some()
                        && !matches!(d.message, MessageKind::ThreadReply { .. }) =>
                {
                    // Its line cannot be taken out of the digest: a note in its thread says
                    // it no longer stands.
                    if let (MessageKind::Delete { .. }, Some(place)) = (&d.message, &post.posted) {
                        return Ok(self.gone_from_digest(api, n, d, place));
                    }
                    return Ok(Step::local(
                        RetryAction::Delivered,
                        &format!("skipped: notification {} went out in digest {}, which lists others too; its thread has the update", n.id, post.digest.unwrap_or(of)),
                    ));
                }
                Some(post) if post.posted.is_some() => post.posted,
                Some(post) => match &post.state {
                    DeliveryState::Pending { next_at_ms } => {
                        let now = now_ms();
                        let until_ms = if *next_at_ms >= due_ms && *next_at_ms >= now {
                            next_at_ms + 1
                        } else {
                            now + WAIT_FOR_POST_MS
                        };
                        return Ok(Step::Waiting { until_ms });
                    }
                    // Nothing to delete; anything else must wait for the post's replay, so it
                    // is a dead letter too (replayed after the post, it finds the new message).
                    DeliveryState::Dead { .. }
                        if !matches!(d.message, MessageKind::Delete { .. }) =>
                    {
                        return Ok(Step::local(
                            RetryAction::Permanent {
                                reason: format!("the message it acts on (delivery {of}) is a dead letter; replay that first, then this"),
                            },
                            "",
                        ));
                    }
                    _ => None,
                },
                None => None,
            },
        };
        let render = |kind: &MessageKind| render_value(n, kind, &self.sources, sent);
        let (channel, from_record) = channel_for(n, api);
        let (method, args) = match (&d.message, target.clone()) {
            (
                MessageKind::Edit { .. }
                | MessageKind::DecisionShown { .. }
                | MessageKind::DecisionResult { .. },
                Some(p),
            ) => {
                let Ok(message) = render(&d.message) else {
                    return Ok(unrenderable());
                };
                (Method::Update, with_place(message, &p, "ts"))
            }
            (MessageKind::ThreadReply { version, .. }, posted) => {
                let Ok(mut message) = render(&MessageKind::Changes { version: *version }) else {
                    return Ok(unrenderable());
                };
                self.name_its_digest(n, &mut message)?;
                // Without the first message there is no thread: the reply stands on its own,
                // as an incoming webhook's follow-up would.
                match posted {
                    Some(p) => {
                        message["channel"] = json!(p.channel);
                        message["thread_ts"] = json!(p.ts);
                    }
                    None => message["channel"] = json!(channel),
                }
                (Method::PostMessage, message)
            }
            (MessageKind::React { name, .. }, Some(p)) => (
                Method::ReactionsAdd,
                json!({"channel": p.channel, "timestamp": p.ts, "name": name}),
            ),
            (MessageKind::Pin { .. }, Some(p)) => (
                Method::PinsAdd,
                json!({"channel": p.channel, "timestamp": p.ts}),
            ),
            (MessageKind::Delete { .. }, Some(p)) => {
                (Method::Delete, json!({"channel": p.channel, "ts": p.ts}))
            }
            (MessageKind::Decision | MessageKind::Ephemeral { .. } | MessageKind::AskReason, _) => {
                return Ok(Step::local(
                    RetryAction::Permanent {
                        reason: "this message goes to a URL, not through the Web API".into(),
                    },
                    "",
                ));
            }
            (
                MessageKind::Edit { .. }
                | MessageKind::React { .. }
                | MessageKind::Pin { .. }
                | MessageKind::Delete { .. }
                | MessageKind::DecisionShown { .. }
                | MessageKind::DecisionResult { .. },
                None,
            ) => {
                return Ok(Step::local(
                    RetryAction::Delivered,
                    "skipped: the message it acts on was never posted (a dead letter, or posted before the region had a bot token)",
                ));
            }
            (MessageKind::Digest { .. }, _) => {
                return Ok(Step::local(
                    RetryAction::Retry {
                        reason: "a digest is sent with its members, not on its own".into(),
                    },
                    "",
                ));
            }
            (MessageKind::Full | MessageKind::Changes { .. } | MessageKind::Moved { .. }, _) => {
                let Ok(mut message) = render(&d.message) else {
                    return Ok(unrenderable());
                };
                message["channel"] = json!(channel);
                (Method::PostMessage, message)
            }
        };

        // A channel the record named (a new post's, or the one its message went to) is that
        // message's problem; the region's own channel is the region's.
        let from_record = match &target {
            Some(p) => p.channel != api.channel,
            None => from_record,
        };
        Ok(self.call_web_api(api, method, &args, from_record))
    }

    /// A digest's notification that was withdrawn or moved to another region: a reply in the
    /// digest's thread saying so, in place of deleting the message its line is in.
    fn gone_from_digest(
        &self,
        api: &WebApiRegion,
        n: &Notification,
        d: &Delivery,
        place: &Posted,
    ) -> Step {
        let what = if n.region == d.region {
            "was withdrawn".to_string()
        } else {
            format!("moved to {}", n.region)
        };
        let text = format!(
            "{} · id {} {what}: its line above no longer stands.",
            digest_line(n, &self.sources),
            n.id
        );
        let args = json!({
            "channel": place.channel,
            "thread_ts": place.ts,
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        });
        self.call_web_api(
            api,
            Method::PostMessage,
            &args,
            place.channel != api.channel,
        )
    }

    /// Calls `method` within Slack's rate tier for it; a post remembers where it went.
    pub(super) fn call_web_api(
        &self,
        api: &WebApiRegion,
        method: Method,
        args: &Value,
        from_record: bool,
    ) -> Step {
        let on_channel = args["channel"].as_str().unwrap_or("").to_string();
        let now = now_ms();
        if let Err(wait) = self.limits.try_take(&api.token, method, &on_channel, now) {
            return Step::Throttled {
                until_ms: now + wait.as_millis() as u64,
            };
        }
        let answer = self
            .transport
            .call_api(&self.slack_api, method, &api.token, args);
        let action = classify_web_api(method, &answer, from_record);
        let posted = match (&action, method, &answer) {
            (RetryAction::Delivered, Method::PostMessage, Answer::Status { body, .. }) => {
                web_api::read_answer(body)
                    .ok()
                    .and_then(|fields| web_api::posted(&fields))
            }
            _ => None,
        };
        Step::Tried {
            action,
            answer: Some(compact(answer)),
            posted,
            note: None,
        }
    }
}

/// The part of a Web API answer worth keeping in the attempt's history: Slack repeats the whole
/// message in it, which would grow every stored delivery.
fn compact(answer: Answer) -> Answer {
    match answer {
        Answer::Status {
            code,
            body,
            retry_after,
        } => {
            let body = match serde_json::from_str::<Value>(&body) {
                Ok(v) => {
                    let mut kept = serde_json::Map::new();
                    for key in ["ok", "error", "channel", "ts", "warning"] {
                        if let Some(x) = v.get(key) {
                            kept.insert(key.to_string(), x.clone());
                        }
                    }
                    Value::Object(kept).to_string()
                }
                Err(_) => body.chars().take(200).collect(),
            };
            Answer::Status {
                code,
                body,
                retry_after,
            }
        }
        other => other,
    }
}

/// The channel a new post goes to: the record's `channel_field` when it holds a non-empty
/// string, else the region's channel; and whether it came from the record.
fn channel_for(n: &Notification, api: &WebApiRegion) -> (String, bool) {
    let from_record = api.channel_field.as_deref().and_then(|pointer| {
        let doc: Value = serde_json::from_str(&n.raw).ok()?;
        let value = doc.pointer(pointer)?.as_str()?.trim();
        (!value.is_empty() && !value.chars().any(char::is_whitespace)).then(|| value.to_string())
    });
    match from_record {
        Some(channel) => (channel, true),
        None => (api.channel.clone(), false),
    }
}

/// A message with the channel and timestamp of the one it replaces.
fn with_place(mut message: Value, place: &Posted, ts_key: &str) -> Value {
    message["channel"] = json!(place.channel);
    message[ts_key] = json!(place.ts);
    message
}

fn unrenderable() -> Step {
    Step::local(
        RetryAction::Permanent {
            reason: "the stored body cannot be rendered".into(),
        },
        "",
    )
}
