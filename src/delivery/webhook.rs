//! One delivery through an incoming webhook (or a `file://` outbox), or to a one-off URL: the
//! payload rendered and posted, the answer classified, and a decision's extra headers.

use super::policy::{classify, classify_decision, RetryAction};
use super::render::render_value;
use super::worker::{Step, Worker};
use crate::config::WebhookUrl;
use crate::sources::approval::Sent;
use crate::store::records::{Delivery, MessageKind, Notification};

impl Worker {
    /// Posts through an incoming webhook (or appends to a file outbox), or to a one-off URL: a
    /// route's webhook, an interaction's `response_url`, a requesting system's decision URL.
    pub(super) fn attempt_webhook(
        &self,
        url: &WebhookUrl,
        n: &Notification,
        d: &Delivery,
        sent: Option<&Sent>,
    ) -> Step {
        if d.message.acts_on().is_some() {
            // Only the Web API can change a posted message; the region lost its bot token.
            return Step::local(
                RetryAction::Delivered,
                "skipped: the region posts through an incoming webhook, which cannot change a posted message",
            );
        }
        let rendered = render_value(n, &d.message, &self.sources, sent).map(|mut message| {
            if matches!(d.message, MessageKind::Changes { .. }) {
                // A note about where the notification first went; a failed read leaves it out.
                let _ = self.name_its_digest(n, &mut message);
            }
            message.to_string().into_bytes()
        });
        match rendered {
            Ok(payload) => {
                let headers = self.decision_headers(n, d);
                let answer = self.transport.send_with_headers(url, &payload, &headers);
                let action = match d.message {
                    MessageKind::Decision => classify_decision(&answer),
                    _ => classify(&answer),
                };
                Step::Tried {
                    action,
                    answer: Some(answer),
                    posted: None,
                    note: None,
                }
            }
            Err(e) => Step::local(
                RetryAction::Permanent {
                    reason: format!("the stored body cannot be rendered: {e}"),
                },
                "",
            ),
        }
    }

    /// A decision carries the requesting system's bearer token and a key that is the same on
    /// every attempt, so a repeat after a crash can be recognised there.
    fn decision_headers(&self, n: &Notification, d: &Delivery) -> Vec<(&'static str, String)> {
        if d.message != MessageKind::Decision {
            return Vec::new();
        }
        let mut headers = vec![("Idempotency-Key", format!("hookrelay-{}", n.id))];
        let token = self
            .sources
            .get(&n.source)
            .and_then(|s| s.approval.as_ref())
            .and_then(|a| a.decision_token.as_ref());
        if let Some(token) = token {
            headers.push(("Authorization", format!("Bearer {}", token.expose())));
        }
        headers
    }
}
