//! Slack's Web API, for regions whose office has a Slack app with a bot token: the methods the
//! relay calls with their rate tiers, and how their answers read (the token itself is a
//! configured value, `config::tokens`). Sending is `transport`'s job; what an answer means for a delivery is
//! `delivery::policy`'s.

use std::time::Duration;

use serde_json::Value;

use super::transport::Answer;

/// The Web API methods the relay calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    ApiTest,
    AuthTest,
    ConversationsInfo,
    PostMessage,
    Update,
    Delete,
    PinsAdd,
    ReactionsAdd,
    UsersInfo,
    ViewsOpen,
    AppsConnectionsOpen,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::ApiTest => "api.test",
            Method::AuthTest => "auth.test",
            Method::ConversationsInfo => "conversations.info",
            Method::PostMessage => "chat.postMessage",
            Method::Update => "chat.update",
            Method::Delete => "chat.delete",
            Method::PinsAdd => "pins.add",
            Method::ReactionsAdd => "reactions.add",
            Method::UsersInfo => "users.info",
            Method::ViewsOpen => "views.open",
            Method::AppsConnectionsOpen => "apps.connections.open",
        }
    }

    /// Slack's published budget for the method, as (one call per this interval, burst).
    /// `chat.postMessage` is "about one message per second per channel, short bursts allowed"
    /// and is counted per channel; the others are tiers counted per method and token: Tier 2
    /// is 20+ calls a minute, Tier 3 50+, Tier 4 100+. The relay stays at the tier's floor.
    pub fn budget(self) -> (Duration, u32) {
        match self {
            Method::PostMessage => (Duration::from_secs(1), 3),
            // Tier 2: 20 a minute.
            Method::PinsAdd => (Duration::from_secs(3), 2),
            // Tier 3: 50 a minute.
            Method::Update | Method::Delete | Method::ReactionsAdd => {
                (Duration::from_millis(1200), 3)
            }
            // Tier 4 (api.test has no tier; treated the same): 100 a minute.
            Method::ApiTest
            | Method::AuthTest
            | Method::ConversationsInfo
            | Method::UsersInfo
            | Method::ViewsOpen => (Duration::from_millis(600), 5),
            // Tier 1: 1+ a minute; connections are opened rarely.
            Method::AppsConnectionsOpen => (Duration::from_secs(60), 3),
        }
    }

    /// Whether the budget is counted per channel rather than per token.
    pub fn per_channel(self) -> bool {
        self == Method::PostMessage
    }
}

pub use crate::model::Posted;

/// Why a Web API call gave no fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Slack answered `"ok": false` with this error word.
    #[error("{0}")]
    Slack(String),
    /// No answer, another status than 200, or a body that is not Slack's JSON (a proxy's
    /// page): Slack was not reached, or its answer was lost.
    #[error("{0}")]
    Unreached(String),
}

/// A Web API answer body's JSON: `Ok(fields)` for `"ok": true`.
pub fn read_answer(body: &str) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_str(body).map_err(|_| {
        let start: String = body.chars().take(80).collect();
        ApiError::Unreached(format!("an unreadable answer: {start:?}"))
    })?;
    if v.get("ok").and_then(Value::as_bool) == Some(true) {
        Ok(v)
    } else {
        Err(ApiError::Slack(
            v.get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown_error")
                .to_string(),
        ))
    }
}

/// The fields of a whole call's answer (status included).
pub fn fields(answer: &Answer) -> Result<Value, ApiError> {
    match answer {
        Answer::Status {
            code: 200, body, ..
        } => read_answer(body),
        Answer::Status { code, body, .. } => {
            Err(ApiError::Unreached(format!("HTTP {code} {body}")))
        }
        Answer::NoAnswer(e) => Err(ApiError::Unreached(format!("no answer: {e}"))),
    }
}

/// The `channel` and `ts` of a `chat.postMessage` answer.
pub fn posted(fields: &Value) -> Option<Posted> {
    Some(Posted {
        channel: fields.get("channel")?.as_str()?.to_string(),
        ts: fields.get("ts")?.as_str()?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_as_fields_or_the_error_word() {
        let ok = read_answer(r#"{"ok":true,"channel":"C1","ts":"1.2"}"#).unwrap();
        assert_eq!(
            posted(&ok),
            Some(Posted {
                channel: "C1".into(),
                ts: "1.2".into()
            })
        );
        assert_eq!(
            read_answer(r#"{"ok":false,"error":"not_in_channel"}"#),
            Err(ApiError::Slack("not_in_channel".into()))
        );
        assert_eq!(
            read_answer(r#"{"ok":false}"#),
            Err(ApiError::Slack("unknown_error".into()))
        );
        assert!(matches!(read_answer("<html>"), Err(ApiError::Unreached(_))));
    }
}
