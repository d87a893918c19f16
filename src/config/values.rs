//! Parsers for the small value languages used in `config.toml`: durations and rates.
//!
//! They live apart from the TOML structs so that the error messages (key, bad value, example) are
//! written once and unit-tested here.

use std::collections::BTreeMap;
use std::time::Duration;

use super::region::RegionSettings;
use super::ConfigError;

/// Parses `"200ms"`, `"30s"`, `"5m"`, `"1h"`, `"30d"` into a [`Duration`].
pub fn parse_duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|_| {
        ConfigError::invalid(
            key,
            value,
            "is not a duration",
            "\"200ms\", \"30s\", \"5m\" or \"1h\"",
        )
    })
}

/// A duration that must not be zero (a timeout of zero would refuse everything, or in actix
/// turn the timer off), with `example` shown when it is.
pub fn positive_duration(key: &str, value: &str, example: &str) -> Result<Duration, ConfigError> {
    let d = parse_duration(key, value)?;
    if d.is_zero() {
        return Err(ConfigError::invalid(
            key,
            value,
            "must be longer than zero",
            example,
        ));
    }
    Ok(d)
}

/// Every one of `pointers` must be a JSON pointer (`/a/b`); the first that is not is the error,
/// shown with `example`.
pub fn json_pointers<'a>(
    key: &str,
    pointers: impl IntoIterator<Item = &'a str>,
    example: &str,
) -> Result<(), ConfigError> {
    match pointers.into_iter().find(|p| !p.starts_with('/')) {
        Some(p) => Err(ConfigError::invalid(
            key,
            p,
            "is not a JSON pointer",
            example,
        )),
        None => Ok(()),
    }
}

/// Parses `"64MiB"`, `"512 MB"` or a plain number of bytes.
pub fn parse_size(key: &str, value: &str) -> Result<u64, ConfigError> {
    value
        .trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| ConfigError::invalid(key, value, "is not a size", "\"64MiB\" or \"1GiB\""))
}

/// Parses `store.min_free`: `"256MiB"`, `"5%"`, `"0"` (no reserve) or `"default"` (the
/// smaller of 256 MiB and 5% of the filesystem).
pub fn parse_reserve(key: &str, value: &str) -> Result<super::store::Reserve, ConfigError> {
    use super::store::Reserve;
    let v = value.trim();
    if v.eq_ignore_ascii_case("default") {
        return Ok(Reserve::Default);
    }
    if let Some(p) = v.strip_suffix('%') {
        return match p.trim().parse::<f64>() {
            Ok(p) if (0.0..=50.0).contains(&p) => Ok(Reserve::Percent(p)),
            _ => Err(ConfigError::invalid(
                key,
                value,
                "is not a share of the disk between 0% and 50%",
                "\"5%\" or \"256MiB\"",
            )),
        };
    }
    parse_size(key, value).map(Reserve::Bytes).map_err(|_| {
        ConfigError::invalid(
            key,
            value,
            "is neither a size nor a share of the disk",
            "\"256MiB\" or \"5%\"",
        )
    })
}

/// A whole number above zero that must fit a `usize` (`what` says what it counts).
pub fn positive_count(
    key: &str,
    value: u64,
    what: &str,
    example: &str,
) -> Result<usize, ConfigError> {
    usize::try_from(value)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ConfigError::invalid(
                key,
                value.to_string(),
                &format!("must be a positive number of {what}"),
                example,
            )
        })
}

/// A sustained message rate for one Slack webhook, as in `"1/s"` or `"50/h"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// How many messages may be sent per `per`.
    pub count: u32,
    /// The period `count` applies to.
    pub per: Duration,
}

impl Rate {
    /// Slack allows about one message per second per incoming webhook.
    pub const SLACK_DEFAULT: Rate = Rate {
        count: 1,
        per: Duration::from_secs(1),
    };

    pub fn parse(key: &str, value: &str) -> Result<Rate, ConfigError> {
        let bad =
            || ConfigError::invalid(key, value, "is not a rate", "\"1/s\", \"20/m\" or \"50/h\"");
        let (count, unit) = value.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(bad());
        }
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            _ => return Err(bad()),
        };
        Ok(Rate { count, per })
    }

    /// Time between two tokens of the bucket.
    pub fn interval(&self) -> Duration {
        self.per / self.count
    }
}

/// A region or source name: it appears in URLs, store keys and metric labels.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An example for an error about a region name: one the config has, else `"US"`.
pub(super) fn example_region(regions: &BTreeMap<String, RegionSettings>) -> String {
    regions
        .keys()
        .next()
        .map(|r| format!("\"{r}\""))
        .unwrap_or_else(|| "\"US\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_documented_unit_parse() {
        assert_eq!(
            parse_duration("k", "200ms").unwrap(),
            Duration::from_millis(200)
        );
        assert_eq!(parse_duration("k", "30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("k", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_duration("k", "1h").unwrap(),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn a_bad_duration_names_key_value_and_example() {
        let err = parse_duration("delivery.timeout", "ten seconds")
            .unwrap_err()
            .to_string();
        assert!(err.contains("delivery.timeout"), "{err}");
        assert!(err.contains("ten seconds"), "{err}");
        assert!(err.contains("\"30s\""), "{err}");
    }

    #[test]
    fn a_zero_timeout_names_key_value_and_example() {
        let err = positive_duration("server.client_body_timeout", "0s", "\"10s\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.client_body_timeout"), "{err}");
        assert!(err.contains("\"0s\""), "{err}");
        assert!(err.contains("longer than zero"), "{err}");
        assert!(err.contains("\"10s\""), "{err}");
        assert_eq!(
            positive_duration("k", "2s", "\"10s\"").unwrap(),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn rates_parse_and_give_the_token_interval() {
        let r = Rate::parse("k", "50/h").unwrap();
        assert_eq!(r.count, 50);
        assert_eq!(r.interval(), Duration::from_secs(72));
        assert_eq!(Rate::parse("k", "1/s").unwrap(), Rate::SLACK_DEFAULT);
    }

    #[test]
    fn zero_and_malformed_rates_are_rejected() {
        for bad in ["0/s", "1/week", "fast", "1s", "-1/s"] {
            let err = Rate::parse("regions.UK.rate", bad).unwrap_err().to_string();
            assert!(
                err.contains("regions.UK.rate") && err.contains(bad),
                "{err}"
            );
        }
    }

    #[test]
    fn the_disk_reserve_is_a_size_a_share_or_the_default() {
        use crate::config::store::Reserve;
        assert_eq!(parse_reserve("k", "default").unwrap(), Reserve::Default);
        assert_eq!(parse_reserve("k", "5%").unwrap(), Reserve::Percent(5.0));
        assert_eq!(
            parse_reserve("k", "256MiB").unwrap(),
            Reserve::Bytes(256 << 20)
        );
        assert_eq!(parse_reserve("k", "0").unwrap(), Reserve::Bytes(0));
        for bad in ["lots", "90%", "-1%"] {
            let err = parse_reserve("store.min_free", bad)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("store.min_free") && err.contains(bad) && err.contains("256MiB"),
                "{err}"
            );
        }
    }
}
