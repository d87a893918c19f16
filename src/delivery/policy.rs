//! What an answer from Slack means for the delivery: the retry policy, apart from the transport.
//! The table is `../shared/slack-facts.md`'s.

use std::time::Duration;

use crate::slack::transport::Answer;

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
}
