//! What an answer from Slack means for the delivery: the retry policy, apart from the transport.
//! The table is `../shared/slack-facts.md`'s.

use std::time::Duration;

use crate::slack::transport::Answer;
use crate::slack::web_api::{self, ApiError, Method};

/// Slack's usual wait when a 429 comes without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Longest 429 pause honoured; a larger value is taken as this, so a bad header cannot park a
/// region for days.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What to do after one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryAction {
    /// Slack has it.
    Delivered,
    /// A passing failure (5xx, timeout, refused connection): try again after backoff.
    Retry { reason: String },
    /// Slack asked us to slow down: wait at least this long before the next request to this webhook.
    RateLimited { wait: Duration },
    /// This message or this webhook is broken: dead-letter it with the reason, do not retry.
    Permanent { reason: String },
    /// The region's token or channel is refused (revoked, archived, the bot not invited):
    /// every message of the region would fail the same way, so the region pauses until an
    /// operator fixes it and resumes it, and the message keeps its place.
    PauseRegion { reason: String },
}

pub fn classify(answer: &Answer) -> RetryAction {
    match answer {
        Answer::NoAnswer(e) => RetryAction::Retry {
            reason: format!("no answer: {e}"),
        },
        Answer::Status {
            code,
            body,
            retry_after,
        } => {
            let reason = if body.is_empty() {
                format!("HTTP {code}")
            } else {
                format!("HTTP {code} {body}")
            };
            match code {
                200..=299 => RetryAction::Delivered,
                429 => RetryAction::RateLimited {
                    wait: retry_after
                        .or_else(|| json_retry_after(body))
                        .unwrap_or(DEFAULT_RETRY_AFTER)
                        .clamp(DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER),
                },
                // Request Timeout and Too Early are about this moment, not this message.
                408 | 425 => RetryAction::Retry { reason },
                500..=599 => RetryAction::Retry { reason },
                // 400 invalid_payload, 403 action_prohibited, 404 no_service, 410
                // channel_is_archived, and redirects we refuse to follow: retrying cannot help.
                _ => RetryAction::Permanent { reason },
            }
        }
    }
}

/// Web API errors that say the token or the app cannot work in this workspace.
const TOKEN_REFUSED: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "not_allowed_token_type",
    "team_access_not_granted",
    "ekm_access_denied",
];
/// Web API errors that say the channel cannot take the bot's messages.
const CHANNEL_REFUSED: &[&str] = &[
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "restricted_action",
];
/// Web API errors about Slack's side at this moment.
const PASSING: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// What a Web API answer means for the delivery. `channel_from_record` is set when the channel
/// came from the record (`channel_field`): a bad channel there is that message's problem, not
/// the region's, so it is dead-lettered instead of pausing the region.
pub fn classify_web_api(method: Method, answer: &Answer, channel_from_record: bool) -> RetryAction {
    let (code, body, retry_after) = match answer {
        Answer::NoAnswer(_) => return classify(answer),
        Answer::Status {
            code,
            body,
            retry_after,
        } => (*code, body, retry_after),
    };
    if code != 200 {
        // 429 (Retry-After), 5xx and timeouts as for webhooks; any other status is refused.
        return classify(answer);
    }
    let error = match web_api::read_answer(body) {
        Ok(_) => return RetryAction::Delivered,
        // Not Slack's JSON (a proxy's login page): Slack was not reached, or its answer lost.
        Err(e @ ApiError::Unreached(_)) => {
            return RetryAction::Retry {
                reason: format!("{} got {e}", method.name()),
            }
        }
        Err(ApiError::Slack(error)) => error,
    };
    // A whole clause naming who answered, so it reads alone (a dead letter) and as the start
    // of the region's pause note, which must not say "answered" twice.
    let reason = format!("Slack answered {} with {error}", method.name());
    match error.as_str() {
        "ratelimited" | "rate_limited" => RetryAction::RateLimited {
            wait: retry_after
                .or_else(|| json_retry_after(body))
                .unwrap_or(DEFAULT_RETRY_AFTER)
                .clamp(DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER),
        },
        // What was asked for is already so: done.
        "already_reacted" | "already_pinned" => RetryAction::Delivered,
        "message_not_found" if method == Method::Delete => RetryAction::Delivered,
        // Reactions and pins need their own scopes: without them only those actions fail, and
        // posting goes on.
        "missing_scope" if matches!(method, Method::PinsAdd | Method::ReactionsAdd) => {
            RetryAction::Permanent { reason }
        }
        e if TOKEN_REFUSED.contains(&e) => RetryAction::PauseRegion { reason },
        e if CHANNEL_REFUSED.contains(&e) && !channel_from_record => {
            RetryAction::PauseRegion { reason }
        }
        e if PASSING.contains(&e) => RetryAction::Retry { reason },
        // msg_too_long, invalid_blocks, no_text, cant_update_message, message_not_found for an
        // edit, and whatever Slack adds later: retrying the same request cannot help.
        _ => RetryAction::Permanent { reason },
    }
}

/// What a requesting system's answer to an approval decision means: as for a webhook, except
/// that 409 (a repeat of an `Idempotency-Key` it has already taken) means it has the decision.
pub fn classify_decision(answer: &Answer) -> RetryAction {
    match answer {
        Answer::Status { code: 409, .. } => RetryAction::Delivered,
        _ => classify(answer),
    }
}

/// Slack sometimes puts the wait in the body: `{"ok":false,"error":"rate_limited","retry_after":1}`.
fn json_retry_after(body: &str) -> Option<Duration> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("retry_after")?.as_u64().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, body: &str, retry_after: Option<u64>) -> Answer {
        Answer::Status {
            code,
            body: body.into(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn ok_is_delivered() {
        assert_eq!(classify(&status(200, "ok", None)), RetryAction::Delivered);
    }

    #[test]
    fn server_errors_and_silence_are_retried() {
        assert!(matches!(
            classify(&status(500, "rollup_error", None)),
            RetryAction::Retry { .. }
        ));
        assert!(matches!(
            classify(&status(503, "", None)),
            RetryAction::Retry { .. }
        ));
        assert!(matches!(
            classify(&Answer::NoAnswer("reset".into())),
            RetryAction::Retry { .. }
        ));
    }

    #[test]
    fn slack_permanent_errors_keep_their_reason() {
        for (code, word) in [
            (400, "invalid_blocks"),
            (403, "action_prohibited"),
            (404, "no_service"),
            (410, "channel_is_archived"),
        ] {
            assert_eq!(
                classify(&status(code, word, None)),
                RetryAction::Permanent {
                    reason: format!("HTTP {code} {word}")
                }
            );
        }
    }

    #[test]
    fn a_429_waits_for_retry_after_from_header_or_body() {
        assert_eq!(
            classify(&status(429, "rate_limited", Some(7))),
            RetryAction::RateLimited {
                wait: Duration::from_secs(7)
            }
        );
        assert_eq!(
            classify(&status(
                429,
                r#"{"ok":false,"error":"rate_limited","retry_after":3}"#,
                None
            )),
            RetryAction::RateLimited {
                wait: Duration::from_secs(3)
            }
        );
        assert_eq!(
            classify(&status(429, "", None)),
            RetryAction::RateLimited {
                wait: Duration::from_secs(1)
            }
        );
        assert_eq!(
            classify(&status(429, "", Some(86_400))),
            RetryAction::RateLimited {
                wait: Duration::from_secs(3600)
            }
        );
    }

    fn api(body: &str) -> Answer {
        status(200, body, None)
    }

    fn error(word: &str) -> Answer {
        api(&format!(r#"{{"ok":false,"error":"{word}"}}"#))
    }

    #[test]
    fn web_api_errors_retry_pause_the_region_or_dead_letter() {
        let post = Method::PostMessage;
        assert_eq!(
            classify_web_api(post, &api(r#"{"ok":true,"ts":"1.2"}"#), false),
            RetryAction::Delivered
        );
        for word in [
            "invalid_auth",
            "account_inactive",
            "token_revoked",
            "channel_not_found",
            "not_in_channel",
            "is_archived",
        ] {
            assert_eq!(
                classify_web_api(post, &error(word), false),
                RetryAction::PauseRegion {
                    reason: format!("Slack answered chat.postMessage with {word}")
                },
                "{word}"
            );
        }
        for word in ["msg_too_long", "invalid_blocks", "no_text", "something_new"] {
            assert!(
                matches!(
                    classify_web_api(post, &error(word), false),
                    RetryAction::Permanent { .. }
                ),
                "{word}"
            );
        }
        // A channel named by the record is that message's problem, not the region's.
        assert!(matches!(
            classify_web_api(post, &error("channel_not_found"), true),
            RetryAction::Permanent { .. }
        ));
        assert!(matches!(
            classify_web_api(post, &error("internal_error"), false),
            RetryAction::Retry { .. }
        ));
        assert!(matches!(
            classify_web_api(post, &status(503, "", None), false),
            RetryAction::Retry { .. }
        ));
        // A proxy's page with status 200 is not Slack's answer.
        assert!(matches!(
            classify_web_api(post, &api("<html>login</html>"), false),
            RetryAction::Retry { .. }
        ));
        // A pin without pins:write fails alone; a post without chat:write pauses the region.
        assert!(matches!(
            classify_web_api(Method::PinsAdd, &error("missing_scope"), false),
            RetryAction::Permanent { .. }
        ));
        assert!(matches!(
            classify_web_api(post, &error("missing_scope"), false),
            RetryAction::PauseRegion { .. }
        ));
    }

    #[test]
    fn web_api_rate_limits_wait_as_slack_says() {
        let post = Method::PostMessage;
        assert_eq!(
            classify_web_api(post, &status(429, "", Some(9)), false),
            RetryAction::RateLimited {
                wait: Duration::from_secs(9)
            }
        );
        assert_eq!(
            classify_web_api(
                post,
                &api(r#"{"ok":false,"error":"ratelimited","retry_after":4}"#),
                false
            ),
            RetryAction::RateLimited {
                wait: Duration::from_secs(4)
            }
        );
    }

    #[test]
    fn what_is_already_done_counts_as_done() {
        assert_eq!(
            classify_web_api(Method::ReactionsAdd, &error("already_reacted"), false),
            RetryAction::Delivered
        );
        assert_eq!(
            classify_web_api(Method::PinsAdd, &error("already_pinned"), false),
            RetryAction::Delivered
        );
        assert_eq!(
            classify_web_api(Method::Delete, &error("message_not_found"), false),
            RetryAction::Delivered
        );
        // An edit of a message that is gone cannot succeed by retrying.
        assert!(matches!(
            classify_web_api(Method::Update, &error("message_not_found"), false),
            RetryAction::Permanent { .. }
        ));
    }
}
