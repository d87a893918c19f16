//! Per source, the last webhook taken and the last refused, when and from which address, for
//! `/v1/status` and the status page; and the log line of each refused webhook.
//!
//! In memory only (a restart forgets it): it answers "is the sender still reaching us, and from
//! where", which the store's notifications do not (they hold no address, and a refusal stores
//! nothing). This is on the intake path: one short lock per webhook, and an allocation only the
//! first time a source is seen.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;

use actix_web::{HttpRequest, ResponseError};
use serde_json::{json, Value};

use super::hooks::{HookError, IntakeState};
use super::sender::sender_addr;
use crate::store::now_ms;

/// One webhook as remembered: when, and from where.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    /// When it was answered (epoch ms, like the regions' `last_success_ms`).
    pub at_ms: u64,
    /// The sender's address (`sender::sender_addr`); `None` if the peer was not known.
    pub from: Option<IpAddr>,
}

/// The last of each kind of answer a source's senders got.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LastSeen {
    /// The last webhook taken (stored, or answered as a duplicate of one stored).
    pub accepted: Option<Seen>,
    /// The last webhook refused, and the status it was refused with.
    pub refused: Option<(Seen, u16)>,
}

/// [`LastSeen`] per configured source; shared by all HTTP workers in `IntakeState`.
#[derive(Debug, Default)]
pub struct Senders {
    /// Keyed by the config's source names only (never a name from a path), so it stays small.
    last: Mutex<HashMap<String, LastSeen>>,
}

impl Senders {
    /// Notes a webhook taken from `from` at `at_ms`.
    pub fn accepted(&self, source: &str, from: Option<IpAddr>, at_ms: u64) {
        self.update(source, |last| last.accepted = Some(Seen { at_ms, from }));
    }

    /// Notes a webhook from `from` refused with `status` at `at_ms`.
    pub fn refused(&self, source: &str, from: Option<IpAddr>, status: u16, at_ms: u64) {
        self.update(source, |last| {
            last.refused = Some((Seen { at_ms, from }, status))
        });
    }

    /// What is known of `source`; all `None` before its first webhook.
    pub fn last(&self, source: &str) -> LastSeen {
        self.last
            .lock()
            .ok()
            .and_then(|m| m.get(source).copied())
            .unwrap_or_default()
    }

    fn update(&self, source: &str, f: impl FnOnce(&mut LastSeen)) {
        // A poisoned lock (a panic elsewhere while holding it) only costs this note.
        let Ok(mut map) = self.last.lock() else {
            return;
        };
        match map.get_mut(source) {
            Some(last) => f(last),
            None => {
                let mut last = LastSeen::default();
                f(&mut last);
                map.insert(source.to_string(), last);
            }
        }
    }
}

/// `last_accepted` and `last_refused` of one source, as `/v1/status` shows them.
pub fn status_json(last: LastSeen) -> Value {
    let seen = |s: Seen| json!({"at_ms": s.at_ms, "from": s.from.map(|ip| ip.to_string())});
    json!({
        "last_accepted": last.accepted.map(seen),
        "last_refused": last.refused.map(|(s, status)| {
            let mut v = seen(s);
            v["status"] = json!(status);
            v
        }),
    })
}

/// Notes how a webhook to `source` was answered (`refusal`: why it was refused, if it was), and
/// logs a refusal at INFO: the source, the status, the reason as the sender was told it, and
/// the sender's address. Never the body, a token or a signature: the reasons name none.
pub fn note(state: &IntakeState, req: &HttpRequest, source: &str, refusal: Option<&HookError>) {
    let from = sender_addr(req, &state.settings.server);
    let configured = state.settings.sources.contains_key(source);
    match refusal {
        None if configured => state.senders.accepted(source, from, now_ms()),
        None => {}
        Some(e) => {
            let status = e.status_code();
            log::info!(
                "Refused a webhook for source {source:?} from {}: {} {}, {}.",
                Address(from),
                status.as_u16(),
                e.kind(),
                e
            );
            if configured {
                state
                    .senders
                    .refused(source, from, status.as_u16(), now_ms());
            }
        }
    }
}

/// A sender's address in a log line, without a `String` for it.
pub struct Address(
    /// `None`: the peer was not known.
    pub Option<IpAddr>,
);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("an unknown address"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_answer_of_each_kind_is_kept_per_source() {
        let senders = Senders::default();
        let a: IpAddr = "203.0.113.7".parse().expect("an address");
        let b: IpAddr = "198.51.100.2".parse().expect("an address");
        assert_eq!(senders.last("orders"), LastSeen::default());
        senders.accepted("orders", Some(a), 1_000);
        senders.refused("orders", Some(b), 400, 2_000);
        senders.accepted("orders", Some(b), 3_000);
        let last = senders.last("orders");
        assert_eq!(
            last.accepted,
            Some(Seen {
                at_ms: 3_000,
                from: Some(b)
            })
        );
        assert_eq!(
            last.refused,
            Some((
                Seen {
                    at_ms: 2_000,
                    from: Some(b)
                },
                400
            ))
        );
        assert_eq!(senders.last("shop"), LastSeen::default());
        assert_eq!(
            status_json(last)["last_refused"],
            json!({"at_ms": 2_000, "from": "198.51.100.2", "status": 400})
        );
        assert_eq!(
            status_json(LastSeen::default())["last_accepted"],
            Value::Null
        );
    }
}
