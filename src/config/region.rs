//! `[regions.NAME]`: where a region's messages go. An incoming webhook (the default, and all an
//! office without a Slack app has), or a bot token and a channel for offices whose Slack app
//! lets the relay edit, thread, react to, pin and delete what it posted.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::raw::RawRegion;
use super::tokens::BotToken;
use super::values::{json_pointers, parse_duration, valid_name};
use super::webhook_url::WebhookUrl;
use super::{ConfigError, Rate};

const DEFAULT_BURST: u32 = 3;
/// A burst that cannot be sent within this at the region's rate goes out as digests: half a
/// minute is about as late as a "new opportunity" can arrive and still feel live.
const DEFAULT_DIGEST_AFTER: Duration = Duration::from_secs(30);
/// Twenty lines are one screen of Slack; a digest is one header, one block per line and one
/// footer, so Slack's 50 blocks allow at most [`MAX_DIGEST`].
const DEFAULT_DIGEST_MAX: u32 = 20;
/// Header, footer and one block per line stay within Slack's 50 blocks per message.
pub const MAX_DIGEST: u32 = 48;

/// A region, validated.
#[derive(Debug, Clone)]
pub struct RegionSettings {
    /// Where this region's messages go.
    pub target: RegionTarget,
    /// Sustained rate allowed towards this webhook or channel.
    pub rate: Rate,
    /// Messages that may go out back to back before `rate` applies.
    pub burst: u32,
    /// When a burst of new notifications goes out as digests instead of one post each.
    pub digest: DigestRule,
}

/// `digest_after` and `digest_max`: a region whose waiting new notifications would take longer
/// than `after` to post one by one at its rate posts them as digests of up to `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DigestRule {
    /// The longest a burst may take to drain one post at a time; zero turns digests off.
    pub after: Duration,
    /// Notifications listed in one digest (2 to [`MAX_DIGEST`]).
    pub max: u32,
}

impl DigestRule {
    /// No digests: every notification is its own post.
    pub const OFF: DigestRule = DigestRule {
        after: Duration::ZERO,
        max: DEFAULT_DIGEST_MAX,
    };

    /// How many waiting new notifications the region can post one by one within `after` at
    /// `rate`; more than that and they go as digests. `None` when digests are off.
    pub fn threshold(&self, rate: Rate) -> Option<u64> {
        if self.after.is_zero() {
            return None;
        }
        let per_ms = rate.per.as_millis().max(1);
        Some((self.after.as_millis() * u128::from(rate.count) / per_ms) as u64)
    }
}

/// How a region reaches Slack.
#[derive(Clone, PartialEq)]
pub enum RegionTarget {
    /// An incoming webhook (or a `file://` outbox): post only.
    Webhook(WebhookUrl),
    /// The Web API with a bot token: post, then update, reply in thread, react, pin, delete.
    WebApi(WebApiRegion),
}

/// A bot-token region's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WebApiRegion {
    /// The bot token (`xoxb-…`); a secret, shown masked.
    pub token: BotToken,
    /// The region's channel id (`C…`) or name: where messages go unless the record names one.
    pub channel: String,
    /// JSON pointer to a channel in the record (an owner's or recipient's channel); the
    /// region's `channel` is the fallback when the record has none.
    pub channel_field: Option<String>,
}

impl RegionTarget {
    /// A shipped config's stand-in: the region queues but sends nothing until it is set.
    pub fn is_placeholder(&self) -> bool {
        match self {
            RegionTarget::Webhook(url) => url.is_placeholder(),
            RegionTarget::WebApi(api) => api.token.is_placeholder(),
        }
    }

    /// The Web API settings, for a bot-token region.
    pub fn web_api(&self) -> Option<&WebApiRegion> {
        match self {
            RegionTarget::WebApi(api) => Some(api),
            RegionTarget::Webhook(_) => None,
        }
    }

    /// The key an operator fixes when Slack refuses the region's credentials or channel.
    pub fn setting_name(&self) -> &'static str {
        match self {
            RegionTarget::Webhook(_) => "webhook_url",
            RegionTarget::WebApi(_) => "bot_token or channel",
        }
    }
}

/// Shown masked: the webhook's secret path, or `channel C… via bot xoxb-***`.
impl fmt::Display for RegionTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionTarget::Webhook(url) => write!(f, "{url}"),
            RegionTarget::WebApi(api) => {
                write!(f, "channel {} via bot token {}", api.channel, api.token)?;
                if let Some(p) = &api.channel_field {
                    write!(f, " (or the record's {p})")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for RegionTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionTarget({self})")
    }
}

/// Validates one `[regions.NAME]` table (countries are the caller's: they span regions).
pub fn region_settings(name: &str, r: &RawRegion) -> Result<RegionSettings, ConfigError> {
    let key = |field: &str| format!("regions.{name}.{field}");
    let target = match (&r.webhook_url, &r.bot_token, &r.bot_token_file) {
        (Some(url), None, None) => {
            for (field, set) in [
                ("channel", r.channel.is_some()),
                ("channel_field", r.channel_field.is_some()),
            ] {
                if set {
                    return Err(ConfigError::invalid(
                        &key(field),
                        "(set)",
                        "needs a bot token: an incoming webhook always posts to the channel it was made for",
                        "bot_token_file = \"/etc/hookrelay/slack-bot-token\" with channel = \"C0123456789\", instead of webhook_url",
                    ));
                }
            }
            RegionTarget::Webhook(webhook_url(&key("webhook_url"), url)?)
        }
        (None, Some(t), None) => web_api_region(name, bot_token(&key("bot_token"), t)?, r)?,
        (None, None, Some(path)) => web_api_region(
            name,
            bot_token_file(&key("bot_token_file"), Path::new(path))?,
            r,
        )?,
        (None, None, None) => {
            return Err(ConfigError::invalid(
                &key("webhook_url"),
                "(missing)",
                "is required unless the region has a bot token",
                "\"https://hooks.slack.com/services/T…/B…/…\" or \"file://outbox/uk.jsonl\"",
            ))
        }
        _ => {
            return Err(ConfigError::invalid(
                &format!("regions.{name}"),
                "(webhook_url, bot_token, bot_token_file)",
                "sets more than one of them; a region posts one way",
                "either webhook_url = \"https://hooks.slack.com/services/…\" or bot_token_file = \"…\" with channel = \"C…\"",
            ))
        }
    };
    let rate = match &r.rate {
        Some(text) => Rate::parse(&key("rate"), text)?,
        None => Rate::SLACK_DEFAULT,
    };
    let burst = r.burst.unwrap_or(DEFAULT_BURST);
    if burst == 0 {
        return Err(ConfigError::invalid(
            &key("burst"),
            "0",
            "must be at least 1",
            "3",
        ));
    }
    let digest = digest_rule(name, r)?;
    Ok(RegionSettings {
        target,
        rate,
        burst,
        digest,
    })
}

/// `digest_after` (a duration, `"0s"` for off) and `digest_max`.
fn digest_rule(name: &str, r: &RawRegion) -> Result<DigestRule, ConfigError> {
    let key = |field: &str| format!("regions.{name}.{field}");
    let after = match &r.digest_after {
        Some(text) => parse_duration(&key("digest_after"), text)?,
        None => DEFAULT_DIGEST_AFTER,
    };
    let max = r.digest_max.unwrap_or(DEFAULT_DIGEST_MAX);
    if !(2..=MAX_DIGEST).contains(&max) {
        return Err(ConfigError::invalid(
            &key("digest_max"),
            max.to_string(),
            &format!("must be from 2 to {MAX_DIGEST}: a digest lists at least two notifications, and one block per line must fit Slack's 50 blocks"),
            "20",
        ));
    }
    Ok(DigestRule { after, max })
}

/// The channel settings of a bot-token region.
fn web_api_region(name: &str, token: BotToken, r: &RawRegion) -> Result<RegionTarget, ConfigError> {
    let key = |field: &str| format!("regions.{name}.{field}");
    let channel = r.channel.as_deref().map(str::trim).unwrap_or("");
    if channel.is_empty() || channel.chars().any(char::is_whitespace) {
        return Err(ConfigError::invalid(
            &key("channel"),
            channel,
            "must name the channel the bot posts to (its id, from the channel's details)",
            "\"C0123456789\"",
        ));
    }
    json_pointers(
        &key("channel_field"),
        r.channel_field.as_deref(),
        "\"/owner/slack_channel\"",
    )?;
    Ok(RegionTarget::WebApi(WebApiRegion {
        token,
        channel: channel.to_string(),
        channel_field: r.channel_field.clone(),
    }))
}

pub(super) fn webhook_url(key: &str, raw: &str) -> Result<WebhookUrl, ConfigError> {
    WebhookUrl::parse(raw).map_err(|why| {
        // Only the masked form goes into the message: the URL is a secret.
        let shown = WebhookUrl::Http(raw.to_string()).masked();
        ConfigError::invalid(
            key,
            shown,
            &why.to_string(),
            "\"https://hooks.slack.com/services/T…/B…/…\" or \"file://outbox/uk.jsonl\"",
        )
    })
}

fn bot_token(key: &str, raw: &str) -> Result<BotToken, ConfigError> {
    BotToken::parse(raw).map_err(|why| {
        // Never echo a token, even a malformed one: it may be a real secret pasted wrongly.
        ConfigError::invalid(
            key,
            "(hidden)",
            &why.to_string(),
            "\"xoxb-…\" from the app's OAuth & Permissions page",
        )
    })
}

fn bot_token_file(key: &str, path: &Path) -> Result<BotToken, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::invalid(
            key,
            path.display().to_string(),
            &format!("cannot be read ({e})"),
            "\"/etc/hookrelay/slack-bot-token\", readable by the hookrelay user only",
        )
    })?;
    BotToken::parse(&text).map_err(|why| {
        ConfigError::invalid(
            key,
            path.display().to_string(),
            &format!("does not hold a bot token: its text {why}"),
            "a file whose only line is the xoxb-… token",
        )
    })
}

/// Lower-cased country → the region that claims it.
pub(super) type Countries = HashMap<String, String>;

/// Every `[regions.NAME]` table, checked, and the country table they claim (lower-cased
/// country → region name).
pub(super) fn regions(
    raw: &BTreeMap<String, RawRegion>,
) -> Result<(BTreeMap<String, RegionSettings>, Countries), ConfigError> {
    let mut regions = BTreeMap::new();
    let mut countries: HashMap<String, String> = HashMap::new();
    for (name, r) in raw {
        if !valid_name(name) {
            return Err(ConfigError::invalid(
                &format!("regions.{name}"),
                name,
                "is not a usable region name (letters, digits, '-' and '_')",
                "[regions.UK]",
            ));
        }
        let key = |field: &str| format!("regions.{name}.{field}");
        let settings = region_settings(name, r)?;
        let list = r.countries.clone().unwrap_or_else(|| vec![name.clone()]);
        for country in list {
            let folded = country.trim().to_lowercase();
            if folded.is_empty() {
                return Err(ConfigError::invalid(
                    &key("countries"),
                    country,
                    "contains an empty country",
                    "[\"UK\", \"GB\"]",
                ));
            }
            if let Some(other) = countries.insert(folded, name.clone()) {
                if other != *name {
                    return Err(ConfigError::invalid(
                        &key("countries"),
                        country,
                        &format!("is already claimed by region {other}"),
                        "each country in one region only",
                    ));
                }
            }
        }
        regions.insert(name.clone(), settings);
    }
    Ok((regions, countries))
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    fn region(body: &str) -> Result<super::RegionSettings, String> {
        Settings::parse(&format!("[regions.UK]\n{body}\n"))
            .map(|s| s.regions["UK"].clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_bot_region_needs_a_channel_and_shows_its_token_masked() {
        let r = region("bot_token = \"xoxb-1-2-SECRET\"\nchannel = \"C0SALES\"").unwrap();
        let api = r.target.web_api().unwrap();
        assert_eq!(api.channel, "C0SALES");
        assert_eq!(
            r.target.to_string(),
            "channel C0SALES via bot token xoxb-***"
        );
        let err = region("bot_token = \"xoxb-1-2-SECRET\"").unwrap_err();
        assert!(err.contains("regions.UK.channel"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn the_token_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "xoxb-9-9-FROMFILE\n").unwrap();
        let r = region(&format!(
            "bot_token_file = {:?}\nchannel = \"C1\"\nchannel_field = \"/owner/channel\"",
            path.display().to_string()
        ))
        .unwrap();
        let api = r.target.web_api().unwrap();
        assert_eq!(api.token.expose(), "xoxb-9-9-FROMFILE");
        assert_eq!(api.channel_field.as_deref(), Some("/owner/channel"));
        std::fs::write(&path, "not a token").unwrap();
        let err = region(&format!(
            "bot_token_file = {:?}\nchannel = \"C1\"",
            path.display().to_string()
        ))
        .unwrap_err();
        assert!(err.contains("does not hold a bot token"), "{err}");
        assert!(!err.contains("not a token"), "{err}");
    }

    #[test]
    fn a_region_posts_one_way_and_says_which_keys_clash() {
        let err = region(
            "webhook_url = \"https://hooks.slack.com/services/A/B/C\"\nbot_token = \"xoxb-1\"\nchannel = \"C1\"",
        )
        .unwrap_err();
        assert!(err.contains("more than one"), "{err}");
        let err = region("webhook_url = \"file://x.jsonl\"\nchannel = \"C1\"").unwrap_err();
        assert!(err.contains("needs a bot token"), "{err}");
        let err = region("rate = \"1/s\"").unwrap_err();
        assert!(err.contains("webhook_url"), "{err}");
        let err = region("bot_token = \"xoxp-user-token\"\nchannel = \"C1\"").unwrap_err();
        assert!(
            err.contains("xoxb-") && !err.contains("user-token"),
            "{err}"
        );
        let err = region("bot_token = \"xoxb-1\"\nchannel = \"C1\"\nchannel_field = \"owner\"")
            .unwrap_err();
        assert!(err.contains("JSON pointer"), "{err}");
    }
}

#[cfg(test)]
mod digest_tests {
    use std::time::Duration;

    use crate::config::{DigestRule, Rate, Settings};

    fn uk(lines: &str) -> Result<Settings, String> {
        Settings::parse(&format!(
            "[regions.UK]\nwebhook_url = \"file://outbox/uk.jsonl\"\n{lines}\n"
        ))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn digests_are_on_by_default_after_30_seconds_of_the_rate() {
        let rule = uk("").unwrap().regions["UK"].digest;
        assert_eq!(rule.after, Duration::from_secs(30));
        assert_eq!(rule.max, 20);
        assert_eq!(rule.threshold(Rate::SLACK_DEFAULT), Some(30));
        let per_minute = Rate::parse("k", "20/m").unwrap();
        assert_eq!(rule.threshold(per_minute), Some(10));
        let off = uk("digest_after = \"0s\"").unwrap().regions["UK"].digest;
        assert_eq!(off.threshold(Rate::SLACK_DEFAULT), None);
        assert_eq!(DigestRule::OFF.threshold(Rate::SLACK_DEFAULT), None);
    }

    #[test]
    fn bad_digest_settings_name_the_key_the_value_and_an_example() {
        for (line, key, value, example) in [
            ("digest_max = 1", "regions.UK.digest_max", "1", "20"),
            (
                "digest_max = 49",
                "regions.UK.digest_max",
                "49",
                "50 blocks",
            ),
            (
                "digest_after = \"soon\"",
                "regions.UK.digest_after",
                "soon",
                "30s",
            ),
        ] {
            let err = uk(line).unwrap_err();
            assert!(
                err.contains(key) && err.contains(value) && err.contains(example),
                "{line}: {err}"
            );
        }
    }
}
