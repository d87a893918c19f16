//! The TOML file as written by the operator, before validation.
//!
//! Every table refuses unknown keys, so a typo (`max_attemps`) is an error instead of a silently
//! ignored setting. Values that need parsing (durations, rates, URLs) stay strings here and are
//! checked in `config::Settings::from_raw`, where the key path is known for the error message.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub delivery: RawDelivery,
    #[serde(default)]
    pub routing: RawRouting,
    #[serde(default)]
    pub sources: BTreeMap<String, RawSource>,
    #[serde(default)]
    pub regions: BTreeMap<String, RawRegion>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub slack: RawSlack,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSlack {
    pub api_url: String,
    pub signing_secret: Option<String>,
    pub signing_secret_file: Option<String>,
    pub app_token: Option<String>,
    pub app_token_file: Option<String>,
    pub response_url_hosts: Vec<String>,
}

impl Default for RawSlack {
    fn default() -> Self {
        RawSlack {
            api_url: "https://slack.com/api/".into(),
            signing_secret: None,
            signing_secret_file: None,
            app_token: None,
            app_token_file: None,
            response_url_hosts: vec!["hooks.slack.com".into()],
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    pub tokens: Vec<String>,
    pub local_status_page: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: "info".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub source: Option<String>,
    #[serde(rename = "match", default)]
    pub matches: BTreeMap<String, String>,
    pub region: Option<String>,
    pub webhook_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: String,
    pub max_body_bytes: u64,
    pub shutdown_timeout: String,
    pub client_request_timeout: String,
    pub client_body_timeout: String,
    pub max_connections: u64,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub tls_client_ca: Option<String>,
    pub trusted_proxies: Vec<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 1_048_576,
            shutdown_timeout: "15s".into(),
            client_request_timeout: "5s".into(),
            client_body_timeout: "10s".into(),
            max_connections: 4096,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    pub path: String,
    pub retention: String,
    pub dead_letter_retention: String,
    pub purge_interval: String,
    pub max_pending: u64,
    pub cache_size: String,
    pub checkpoint_interval: String,
    pub checkpoint_size: String,
    /// `"256MiB"`, `"5%"`, or `"default"` (the smaller of the two).
    pub min_free: String,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            path: "data".into(),
            retention: "30d".into(),
            dead_letter_retention: "90d".into(),
            purge_interval: "10m".into(),
            max_pending: 1_000_000,
            cache_size: "64MiB".into(),
            checkpoint_interval: "30s".into(),
            checkpoint_size: "64MiB".into(),
            min_free: "default".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDelivery {
    pub workers: u32,
    pub max_attempts: u32,
    pub initial_backoff: String,
    pub max_backoff: String,
    pub timeout: String,
    pub ca_file: Option<String>,
}

impl Default for RawDelivery {
    fn default() -> Self {
        RawDelivery {
            workers: 4,
            max_attempts: 10,
            initial_backoff: "1s".into(),
            max_backoff: "1h".into(),
            timeout: "10s".into(),
            ca_file: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRouting {
    pub field: String,
    pub default_region: Option<String>,
}

impl Default for RawRouting {
    fn default() -> Self {
        RawRouting {
            field: "country".into(),
            default_region: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub kind: String,
    pub token: Option<String>,
    pub region: Option<String>,
    pub sellers: Option<BTreeMap<String, String>>,
    pub coalesce_window: Option<String>,
    pub allowed_webhook_hosts: Option<Vec<String>>,
    pub id: Option<String>,
    pub on_repeat: Option<String>,
    pub ignore: Option<Vec<String>>,
    pub marks: Option<BTreeMap<String, BTreeMap<String, String>>>,
    pub closed_when: Option<BTreeMap<String, String>>,
    pub title: Option<String>,
    pub fields: Option<Vec<(String, String)>>,
    pub status_field: Option<String>,
    pub on_status: Option<BTreeMap<String, RawStatusAction>>,
    pub requester: Option<String>,
    pub message: Option<String>,
    pub link: Option<String>,
    pub choices: Option<String>,
    pub choice_list: Option<Vec<String>>,
    pub decision_url: Option<String>,
    pub decision_url_field: Option<String>,
    pub allowed_decision_hosts: Option<Vec<String>>,
    pub decision_token: Option<String>,
    pub decision_token_file: Option<String>,
    pub approvers: Option<Vec<String>>,
    pub verify: Option<String>,
    pub signing_secrets: Option<Vec<String>>,
    pub signing_secrets_file: Option<String>,
    pub client_cert_subject: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatusAction {
    pub react: Option<String>,
    #[serde(default)]
    pub pin: bool,
    #[serde(default)]
    pub delete: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegion {
    pub webhook_url: Option<String>,
    pub bot_token: Option<String>,
    pub bot_token_file: Option<String>,
    pub channel: Option<String>,
    pub channel_field: Option<String>,
    pub countries: Option<Vec<String>>,
    pub rate: Option<String>,
    pub burst: Option<u32>,
    pub digest_after: Option<String>,
    pub digest_max: Option<u32>,
}
