//! The lists Rainforest's seed documents: the event names with their payload keys, and the schema
//! of the one integration this service offers (served at `GET /integrations`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The only integration this service offers.
pub(super) const SLACK_KEY: &str = "slack";

/// The events the seed documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    RunCompletion,
    RunError,
    RunWebhookTimeout,
    RunTestFailure,
}

impl EventName {
    pub const ALL: [EventName; 4] = [
        EventName::RunCompletion,
        EventName::RunError,
        EventName::RunWebhookTimeout,
        EventName::RunTestFailure,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            EventName::RunCompletion => "run_completion",
            EventName::RunError => "run_error",
            EventName::RunWebhookTimeout => "run_webhook_timeout",
            EventName::RunTestFailure => "run_test_failure",
        }
    }

    pub fn parse(text: &str) -> Option<EventName> {
        EventName::ALL.into_iter().find(|e| e.as_str() == text)
    }

    /// Payload keys the seed documents: run_completion: run, failed_tests; run_error: run;
    /// run_webhook_timeout: run; run_test_failure: run, failed_test.
    pub fn required_keys(&self) -> &'static [&'static str] {
        match self {
            EventName::RunCompletion => &["run", "failed_tests"],
            EventName::RunError | EventName::RunWebhookTimeout => &["run"],
            EventName::RunTestFailure => &["run", "failed_test"],
        }
    }
}

/// The schema of the one supported integration.
fn slack_schema() -> Value {
    json!({
        "key": SLACK_KEY,
        "title": "Slack",
        "settings": [{"key": "url", "title": "Slack incoming webhook URL", "required": true}]
    })
}

/// GET /integrations body: a JSON list with the one supported schema.
pub fn integrations() -> Value {
    json!([slack_schema()])
}

/// GET /integrations/{key} body, None for unknown keys.
pub fn integration(key: &str) -> Option<Value> {
    (key == SLACK_KEY).then(slack_schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::rainforest::RainforestError;

    #[test]
    fn integration_schemas_follow_the_seed() {
        let schema = json!({
            "key": "slack", "title": "Slack",
            "settings": [{"key": "url", "title": "Slack incoming webhook URL", "required": true}]
        });
        assert_eq!(integrations(), json!([schema.clone()]));
        assert_eq!(integration("slack"), Some(schema));
        assert_eq!(integration("jira"), None);
        assert_eq!(integration("Slack"), None);
    }

    #[test]
    fn event_names_round_trip() {
        for e in EventName::ALL {
            assert_eq!(EventName::parse(e.as_str()), Some(e));
            assert_eq!(serde_json::to_value(e).unwrap(), json!(e.as_str()));
            let back: EventName = serde_json::from_value(json!(e.as_str())).unwrap();
            assert_eq!(back, e);
        }
        assert_eq!(
            RainforestError::InvalidRequest(String::new()).kind(),
            "invalid_request"
        );
    }
}
