//! `[delivery]`: the worker pool, the retry policy and the HTTP client's limits.

use std::path::PathBuf;
use std::time::Duration;

use super::raw::RawDelivery;
use super::values::parse_duration;
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Threads that POST to Slack.
    pub workers: usize,
    /// Attempts (429s not counted) before a delivery becomes a dead letter.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter.
    pub initial_backoff: Duration,
    /// Ceiling of the retry delay.
    pub max_backoff: Duration,
    /// Whole-request limit for one HTTP attempt (connect, send, answer).
    pub timeout: Duration,
    /// PEM bundle of extra root certificates for TLS-inspecting proxies; `None` uses the
    /// platform's trust store.
    pub ca_file: Option<PathBuf>,
}

/// `[delivery]`, checked.
pub(super) fn delivery_settings(raw: &RawDelivery) -> Result<DeliverySettings, ConfigError> {
    let d = raw;
    if d.workers == 0 || d.workers > 256 {
        return Err(ConfigError::invalid(
            "delivery.workers",
            d.workers.to_string(),
            "must be between 1 and 256",
            "4",
        ));
    }
    if d.max_attempts == 0 {
        return Err(ConfigError::invalid(
            "delivery.max_attempts",
            "0",
            "must be at least 1",
            "10",
        ));
    }
    let delivery = DeliverySettings {
        workers: d.workers as usize,
        max_attempts: d.max_attempts,
        initial_backoff: parse_duration("delivery.initial_backoff", &d.initial_backoff)?,
        max_backoff: parse_duration("delivery.max_backoff", &d.max_backoff)?,
        timeout: parse_duration("delivery.timeout", &d.timeout)?,
        ca_file: d.ca_file.as_ref().map(PathBuf::from),
    };
    if delivery.timeout.is_zero() {
        return Err(ConfigError::invalid(
            "delivery.timeout",
            &d.timeout,
            "must be above zero",
            "\"10s\"",
        ));
    }
    if delivery.max_backoff < delivery.initial_backoff {
        return Err(ConfigError::invalid(
            "delivery.max_backoff",
            &d.max_backoff,
            "is shorter than delivery.initial_backoff",
            "\"1h\"",
        ));
    }
    Ok(delivery)
}
