//! Button clicks and modal submissions from Slack, whichever way they arrive: signed POSTs to
//! the Request URL (`http/interactions.rs`) or Socket Mode's WebSocket ([`socket_mode`]).
//!
//! A click is checked (is the clicker an approver?), then stored through the journal with
//! everything it causes, and only then acknowledged. Slack waits 3 seconds for the answer; the
//! store's commit takes milliseconds, and all further work (the message update, the POST to the
//! requesting system) is done by the delivery engine from the store.
//!
//! This file holds `Interactivity::handle` (the approver check, the `users.info` cache, the
//! click to the journal, the answer); `payload.rs` reads Slack's payloads into an
//! `Interaction`; `socket_mode.rs` is the outbound WebSocket thread.

pub mod payload;
pub mod socket_mode;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::clock::Clock;
use crate::config::{RegionTarget, Settings, WebApiRegion};
use crate::slack::transport::Transport;
use crate::slack::web_api::{fields, ApiError, Method};
use crate::sources::approval::{host_allowed, reject_modal, SlackUser};
use crate::sources::Record;
use crate::store::click::{Approver, Click, ClickKind, Clicked};
use crate::store::journal::Journal;
use crate::store::{Store, StoreError};
use payload::Interaction;

/// How long a user's email from `users.info` is trusted; a changed email applies after this.
const EMAIL_CACHE: Duration = Duration::from_secs(600);
/// `users.info` runs before Slack gets its answer, which Slack wants within 3 seconds.
const USERS_INFO_TIMEOUT: Duration = Duration::from_millis(1500);

/// What to answer Slack.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An empty 200: taken (or ignored).
    Ack,
    /// A modal submission refused with a message under the reason field.
    ModalError(String),
}

impl Reply {
    /// The HTTP body (or Socket Mode ack payload) for this reply.
    pub fn body(&self) -> Option<Value> {
        match self {
            Reply::Ack => None,
            Reply::ModalError(why) => Some(json!({
                "response_action": "errors",
                "errors": {"reason": why},
            })),
        }
    }
}

/// Shared by the HTTP route and the Socket Mode thread.
pub struct Interactivity {
    /// Sources (approvers), regions (bot tokens), `[slack]`.
    pub settings: Arc<Settings>,
    /// To find the clicked request's source and region.
    pub store: Store,
    /// Where clicks are stored.
    pub journal: Journal,
    /// For `users.info`.
    pub transport: Arc<Transport>,
    /// The click's time.
    pub clock: Arc<dyn Clock>,
    /// User id → email (or none) and when it was looked up, so a burst of clicks makes one
    /// `users.info` call.
    emails: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

impl Interactivity {
    pub fn new(
        settings: Arc<Settings>,
        store: Store,
        journal: Journal,
        transport: Arc<Transport>,
        clock: Arc<dyn Clock>,
    ) -> Interactivity {
        Interactivity {
            settings,
            store,
            journal,
            transport,
            clock,
            emails: Mutex::new(HashMap::new()),
        }
    }

    /// Handles one decoded payload; blocking (it may call `users.info` and waits for the
    /// journal's commit).
    pub fn handle(&self, payload: &Value) -> Result<Reply, StoreError> {
        match payload::parse(payload) {
            Interaction::Unknown(why) => {
                log::info!("Ignored a Slack interaction that is not ours to act on: {why}.");
                Ok(Reply::Ack)
            }
            Interaction::ChoicePicked => Ok(Reply::Ack),
            Interaction::Action {
                notification_id,
                kind,
                user,
                response_url,
                trigger_id,
            } => {
                let response_url = response_url.filter(|url| {
                    let ok = host_allowed(url, &self.settings.slack.response_url_hosts);
                    if !ok {
                        log::warn!("Ignored a response_url outside slack.response_url_hosts in a click on request {notification_id}.");
                    }
                    ok
                });
                if let Some(mut click) =
                    self.click(notification_id, kind, user, response_url, trigger_id)?
                {
                    click.modal_opened = self.open_reject_modal(&click)?;
                    self.journal.click_blocking(click)?;
                }
                Ok(Reply::Ack)
            }
            Interaction::Submission {
                notification_id,
                user,
                reason,
            } => {
                if reason.trim().is_empty() {
                    return Ok(Reply::ModalError("A reason is required to reject.".into()));
                }
                let kind = ClickKind::RejectWithReason(reason);
                let Some(click) = self.click(notification_id, kind, user, None, None)? else {
                    return Ok(Reply::ModalError(
                        "This request is no longer held by hookrelay.".into(),
                    ));
                };
                Ok(match self.journal.click_blocking(click)? {
                    Clicked::NotAllowed => Reply::ModalError(
                        "You are not on this request's approvers list, so nothing was decided."
                            .into(),
                    ),
                    Clicked::AlreadyDecided(d) => Reply::ModalError(format!(
                        "Already {} by {}; your reject changed nothing.",
                        d.verdict.as_str(),
                        if d.by.name.is_empty() {
                            &d.by.id
                        } else {
                            &d.by.name
                        }
                    )),
                    _ => Reply::Ack,
                })
            }
        }
    }

    /// The click as the journal takes it, or `None` for a request the relay does not hold.
    fn click(
        &self,
        notification_id: u64,
        kind: ClickKind,
        user: SlackUser,
        response_url: Option<String>,
        trigger_id: Option<String>,
    ) -> Result<Option<Click>, StoreError> {
        let Some(n) = self.store.notification(notification_id)? else {
            log::info!(
                "A click names request {notification_id}, which the store does not hold (purged?)."
            );
            return Ok(None);
        };
        let Some(approval) = self
            .settings
            .sources
            .get(&n.source)
            .and_then(|s| s.approval.as_ref())
        else {
            log::warn!(
                "A click on request {notification_id} of source {}, which is no longer an approval source.",
                n.source
            );
            return Ok(None);
        };
        let bot = self
            .settings
            .regions
            .get(&n.region)
            .and_then(|r| match &r.target {
                RegionTarget::WebApi(api) => Some(api),
                RegionTarget::Webhook(_) => None,
            });
        let approvers = &approval.approvers;
        let approver = if approvers.has_id(&user.id) {
            Approver::Yes
        } else if approvers.emails.is_empty() {
            Approver::No
        } else {
            match bot.map(|api| self.email_of(api, &user.id)) {
                // No bot token in this region: emails cannot be checked, only ids count.
                None => Approver::No,
                Some(Err(())) => Approver::Unknown,
                Some(Ok(Some(email))) if approvers.has_email(&email) => Approver::Yes,
                Some(Ok(_)) => Approver::No,
            }
        };
        Ok(Some(Click {
            notification_id,
            user,
            kind,
            approver,
            response_url,
            trigger_id,
            web_api: bot.is_some(),
            modal_opened: false,
            at_ms: self.clock.now_ms(),
        }))
    }

    /// For an approver's Reject in a bot-token region, opens the reason modal now: its trigger
    /// expires 3 seconds after the click, too soon for a queue. `false` when there is no modal
    /// to open or Slack refused it; the click's `response_url` then asks in the message.
    fn open_reject_modal(&self, c: &Click) -> Result<bool, StoreError> {
        let (ClickKind::Reject, true, true, Some(trigger)) = (
            &c.kind,
            c.approver == Approver::Yes,
            c.web_api,
            &c.trigger_id,
        ) else {
            return Ok(false);
        };
        let Some(n) = self.store.notification(c.notification_id)? else {
            return Ok(false);
        };
        let (Ok(Record::Approval(request)), None) =
            (Record::parse(n.kind, n.raw.as_bytes()), &n.decision)
        else {
            return Ok(false); // decided already: the click is answered "already decided"
        };
        let Some(api) = self
            .settings
            .regions
            .get(&n.region)
            .and_then(|r| r.target.web_api())
        else {
            return Ok(false);
        };
        let args = json!({"trigger_id": trigger, "view": reject_modal(&request, n.id, n.latest_version())});
        let answer = self.transport.call_api(
            &self.settings.slack.api_url,
            Method::ViewsOpen,
            &api.token,
            &args,
        );
        match fields(&answer) {
            Ok(_) => Ok(true),
            Err(e) => {
                log::warn!("views.open for request {} failed ({e}); asking for the reason in the message instead.", n.id);
                Ok(false)
            }
        }
    }

    /// A user's email from `users.info` (scope `users:read.email`), cached; `Err` when Slack
    /// could not be asked (a passing failure: not cached).
    fn email_of(&self, api: &WebApiRegion, user_id: &str) -> Result<Option<String>, ()> {
        if let Ok(cache) = self.emails.lock() {
            if let Some((email, at)) = cache.get(user_id) {
                if at.elapsed() < EMAIL_CACHE {
                    return Ok(email.clone());
                }
            }
        }
        let answer = self.transport.call_api_form(
            &self.settings.slack.api_url,
            Method::UsersInfo,
            api.token.expose(),
            &[("user", user_id)],
            Some(USERS_INFO_TIMEOUT),
        );
        let email = match fields(&answer) {
            Ok(fields) => fields["user"]["profile"]["email"]
                .as_str()
                .map(str::to_string),
            Err(ApiError::Slack(e)) => {
                log::warn!("users.info for {user_id} answered {e}; approvers listed by email cannot be matched (the app needs users:read.email).");
                None
            }
            // A passing failure: not cached, and the click is refused for now.
            Err(ApiError::Unreached(e)) => {
                log::warn!("users.info for {user_id} failed ({e}); the click is refused for now.");
                return Err(());
            }
        };
        if let Ok(mut cache) = self.emails.lock() {
            cache.insert(user_id.to_string(), (email.clone(), Instant::now()));
        }
        Ok(email)
    }
}
