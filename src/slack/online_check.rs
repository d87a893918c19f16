//! `hookrelay check-config --online`: asks Slack about each bot-token region before the relay
//! depends on it: whether the token works (`auth.test`: team and bot user) and whether the bot
//! can post in the channel (`conversations.info`). Incoming webhooks cannot be checked without
//! posting; `hookrelay send-test REGION` does that.

use serde_json::Value;

use super::transport::{Transport, TransportError};
use super::web_api::{self, ApiError, Method};
use crate::config::{RegionTarget, Settings};

/// What the check found: one line per finding, and whether every region can post.
pub struct Report {
    /// Human-readable lines, one or more per region.
    pub lines: Vec<String>,
    /// `false` when some region's token or channel would not work.
    pub ok: bool,
}

/// Runs the check for every region of `settings`.
pub fn check(settings: &Settings) -> Result<Report, TransportError> {
    let transport = Transport::new(&settings.delivery)?;
    let mut report = Report {
        lines: Vec::new(),
        ok: true,
    };
    for (name, region) in &settings.regions {
        let api = match &region.target {
            RegionTarget::Webhook(url) => {
                report.lines.push(format!(
                    "region {name}: incoming webhook {url}: not checked online (only a post tests it: hookrelay send-test {name})"
                ));
                continue;
            }
            RegionTarget::WebApi(api) if api.token.is_placeholder() => {
                report.ok = false;
                report.lines.push(format!(
                    "region {name}: the bot token is the shipped placeholder; set regions.{name}.bot_token_file"
                ));
                continue;
            }
            RegionTarget::WebApi(api) => api,
        };
        let call = |method, fields: &[(&str, &str)]| {
            web_api::fields(&transport.call_api_form(
                &settings.slack.api_url,
                method,
                api.token.expose(),
                fields,
                None,
            ))
        };
        // api.test first: an unreachable API (proxy, firewall) is not a bad token. Any JSON
        // answer proves Slack is reached; the token is auth.test's business.
        if let Err(ApiError::Unreached(e)) = call(Method::ApiTest, &[]) {
            report.ok = false;
            report.lines.push(format!(
                "region {name}: Slack's Web API at {} does not answer api.test: {e}",
                settings.slack.api_url
            ));
            continue;
        }
        match call(Method::AuthTest, &[]) {
            Ok(who) => report.lines.push(format!(
                "region {name}: token {} works: team {}, bot user {} ({})",
                api.token,
                text(&who, "team"),
                text(&who, "user"),
                text(&who, "user_id")
            )),
            Err(e) => {
                report.ok = false;
                report.lines.push(format!(
                    "region {name}: auth.test refused token {}: {e}; check regions.{name}.bot_token",
                    api.token
                ));
                continue;
            }
        }
        let channel = api.channel.as_str();
        let (line, ok) = match call(Method::ConversationsInfo, &[("channel", channel)]) {
            Ok(info) => {
                let c = &info["channel"];
                let shown = format!("#{} ({channel})", text(c, "name"));
                if c["is_archived"].as_bool() == Some(true) {
                    (format!("channel {shown} is archived: the bot cannot post"), false)
                } else if c["is_member"].as_bool() == Some(true) {
                    (format!("the bot can post in {shown}"), true)
                } else {
                    (format!(
                        "the bot is not a member of {shown}: it can post there only with the chat:write.public scope (public channels); otherwise /invite it"
                    ), true)
                }
            }
            Err(ApiError::Slack(e)) if e == "missing_scope" => (format!(
                "cannot tell whether the bot may post in {channel}: conversations.info needs the channels:read scope"
            ), true),
            Err(e) => (format!("the bot cannot use channel {channel}: {e}"), false),
        };
        report.ok &= ok;
        report.lines.push(format!("region {name}: {line}"));
        if let Some(p) = &api.channel_field {
            report.lines.push(format!(
                "region {name}: records naming a channel in {p} post there instead; those channels are checked as messages arrive"
            ));
        }
    }
    Ok(report)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("?")
}
