//! Configuration: `config.toml` read into typed, validated [`Settings`] once at start-up.
//!
//! Nothing downstream parses strings again: durations are `Duration`s, URLs are `WebhookUrl`s and
//! the country table is already folded to lower case. Every error names the key, the bad value and
//! an example of a good one.
//!
//! `raw.rs` is the TOML as written (unknown keys refused); `mod.rs` checks the sections in file
//! order, each in its own file (`server.rs`, `store.rs`, `delivery.rs`, `region.rs`,
//! `routing.rs`, `source.rs` with `approval.rs` and `signature.rs`, `slack.rs`, `admin.rs`);
//! `values.rs` parses durations, sizes and rates. The values the settings hold that other layers
//! act on live here too, so `config/` uses no subsystem: `webhook_url.rs`, `tokens.rs` (bot and
//! app tokens, the signing secret, always shown masked) and `generic.rs`.

mod admin;
pub mod approval;
pub mod cert_subject;
mod delivery;
mod error;
pub mod generic;
mod raw;
pub mod region;
mod routing;
mod server;
pub mod signature;
pub mod slack;
mod source;
pub mod store;
pub mod tokens;
pub mod values;
pub mod webhook_url;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::model::SourceKind;
pub use admin::AdminToken;
pub use delivery::DeliverySettings;
pub use error::ConfigError;
use raw::RawConfig;
pub use region::{DigestRule, RegionSettings, RegionTarget, WebApiRegion};
pub use routing::{Route, RouteTarget, RoutingSettings};
pub use server::{ServerSettings, TlsSettings};
pub use slack::SlackSettings;
pub use source::SourceSettings;
pub use store::StoreSettings;
pub use values::Rate;
pub use webhook_url::WebhookUrl;

/// Everything the relay needs to run, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The HTTP receiver.
    pub server: ServerSettings,
    /// The sled directory.
    pub store: StoreSettings,
    /// Worker pool, retry policy and HTTP client settings.
    pub delivery: DeliverySettings,
    /// How a record's region key becomes a region.
    pub routing: RoutingSettings,
    /// The webhook sources, by the name in `/hooks/{name}`.
    pub sources: BTreeMap<String, SourceSettings>,
    /// The Slack targets, by region name.
    pub regions: BTreeMap<String, RegionSettings>,
    /// `[[routes]]`, in file order: the first that matches wins.
    pub routes: Vec<Route>,
    /// Log level (`error` … `trace`); `RUST_LOG` overrides it.
    pub log_level: String,
    /// Admin API bearer tokens; empty: the admin API is off.
    pub admin_tokens: Vec<AdminToken>,
    /// Serve the status page at `/` to requests from this machine without a token.
    pub local_status_page: bool,
    /// `[slack]`: the Web API's address, the signing secret and the Socket Mode token.
    pub slack: SlackSettings,
}

impl Settings {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Settings::parse(&text).map_err(|e| match e {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Validates config text (the path in errors is left empty; `load` fills it).
    pub fn parse(text: &str) -> Result<Settings, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: PathBuf::new(),
            message: error::mask_secrets(&e.to_string()),
        })?;
        Settings::from_raw(raw)
    }
    /// Checks each section in the order a reader meets them in the file; the first mistake is
    /// the one reported.
    fn from_raw(raw: RawConfig) -> Result<Settings, ConfigError> {
        let server = server::server_settings(&raw.server)?;
        if raw.store.path.trim().is_empty() {
            return Err(ConfigError::invalid(
                "store.path",
                "",
                "must name a directory",
                "\"data\"",
            ));
        }

        let delivery = delivery::delivery_settings(&raw.delivery)?;
        let (regions, countries) = region::regions(&raw.regions)?;
        let routing = routing::routing_settings(&raw.routing, countries, &regions)?;
        let sources = source::sources(&raw.sources, &regions)?;
        let asks_for_client_certs = server.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
        if let Some((name, s)) = sources
            .iter()
            .find(|(_, s)| s.client_cert_subject.is_some())
            .filter(|_| !asks_for_client_certs)
        {
            return Err(ConfigError::invalid(
                &format!("sources.{name}.client_cert_subject"),
                s.client_cert_subject
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                "needs the relay to ask for client certificates: set server.tls_client_ca",
                "[server] tls_client_ca = \"/etc/hookrelay/tls/client-ca.pem\"",
            ));
        }
        let slack = slack::slack_settings(&raw.slack)?;
        if let Some((name, _)) = sources
            .iter()
            .find(|(_, s)| s.kind == SourceKind::Approval)
            .filter(|_| !slack.interactive())
        {
            return Err(ConfigError::invalid(
                &format!("sources.{name}.kind"),
                "approval",
                "needs Slack to reach the relay with button clicks: set slack.signing_secret (Request URL) or slack.app_token (Socket Mode)",
                "[slack] app_token_file = \"/etc/hookrelay/slack-app-token\"",
            ));
        }
        let admin_tokens = admin::admin_tokens(&raw.admin.tokens)?;
        let log_level = raw.log.level.trim().to_lowercase();
        if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
            return Err(ConfigError::invalid(
                "log.level",
                &raw.log.level,
                "is not a log level",
                "\"info\" (or error, warn, debug, trace)",
            ));
        }
        let routes = routing::routes(&raw.routes, &regions, &sources)?;
        if sources.values().any(|s| s.kind == SourceKind::Opportunity) && regions.is_empty() {
            return Err(ConfigError::invalid(
                "regions",
                "(none)",
                "is empty, so no opportunity could be delivered",
                "[regions.UK] webhook_url = \"file://outbox/uk.jsonl\"",
            ));
        }

        Ok(Settings {
            server,
            store: store::store_settings(&raw.store)?,
            delivery,
            routing,
            sources,
            regions,
            routes,
            log_level,
            admin_tokens,
            local_status_page: raw.admin.local_status_page,
            slack,
        })
    }
}

#[cfg(test)]
mod tests;
