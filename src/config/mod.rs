//! Configuration: `config.toml` read into typed, validated [`Settings`] once at start-up.
//!
//! Nothing downstream parses strings again: durations are `Duration`s, URLs are `WebhookUrl`s and
//! the country table is already folded to lower case. Every error names the key, the bad value and
//! an example of a good one.

pub mod approval;
mod raw;
pub mod region;
pub mod slack;
pub mod store;
pub mod values;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::slack::target::WebhookUrl;
use crate::sources::generic::{GenericSettings, MAX_FIELDS};
use crate::sources::signature::{self, InboundSignature};
use crate::sources::status::{self, StatusAction, StatusRules};
use crate::sources::SourceKind;
use raw::RawConfig;
pub use region::{RegionSettings, RegionTarget, WebApiRegion};
pub use slack::SlackSettings;
pub use values::Rate;

/// A configuration that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{key} = {value:?} {why}; for example {example}")]
    Invalid {
        key: String,
        value: String,
        why: String,
        example: String,
    },
}

impl ConfigError {
    pub fn invalid(key: &str, value: impl Into<String>, why: &str, example: &str) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_string(),
            value: value.into(),
            why: why.to_string(),
            example: example.to_string(),
        }
    }
}

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

/// An admin token as configured: plain, or `sha256:<hex>` so the file need not hold the token.
#[derive(Clone, PartialEq)]
pub enum AdminToken {
    Plain(String),
    Sha256([u8; 32]),
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

impl AdminToken {
    pub fn parse(text: &str) -> Option<AdminToken> {
        match text.strip_prefix("sha256:") {
            Some(hex) => {
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|b| u8::from_str_radix(b, 16).ok())
                    })
                    .collect::<Option<_>>()?;
                Some(AdminToken::Sha256(bytes.try_into().ok()?))
            }
            None if text.len() >= 16 => Some(AdminToken::Plain(text.to_string())),
            None => None,
        }
    }

    /// Constant-time comparison with a presented token.
    pub fn matches(&self, presented: &str) -> bool {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        match self {
            AdminToken::Plain(t) => bool::from(t.as_bytes().ct_eq(presented.as_bytes())),
            AdminToken::Sha256(h) => {
                let digest = Sha256::digest(presented.as_bytes());
                bool::from(h.as_slice().ct_eq(digest.as_slice()))
            }
        }
    }
}

/// Where a matching route sends a notification.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteTarget {
    /// A configured region, with its rate limit.
    Region(String),
    /// A one-off webhook, with the default rate limit.
    Url(WebhookUrl),
}

/// One `[[routes]]` table.
#[derive(Debug, Clone)]
pub struct Route {
    /// Only notifications of this source; `None`: any source.
    pub source: Option<String>,
    /// JSON pointer → expected value, compared as lower-cased strings; all must hold.
    pub matches: Vec<(String, String)>,
    /// Where it sends.
    pub target: RouteTarget,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// `host:port` to bind; port 0 picks a free port (tests).
    pub listen: String,
    /// Bodies above this are refused with 413 before they are read whole.
    pub max_body_bytes: usize,
    /// How long a stop waits for in-flight requests and Slack posts before giving up on them.
    pub shutdown_timeout: Duration,
    /// A connection's request head must arrive within this of its opening (actix answers 408),
    /// so a client that opens connections and sends nothing cannot hold them.
    pub client_request_timeout: Duration,
    /// A request's whole body must arrive within this once its head is in (else 408 and the
    /// connection is closed): a client that stalls inside its body cannot hold a connection.
    pub client_body_timeout: Duration,
    /// Open connections across all HTTP workers; more wait in the kernel's accept queue. Keeps
    /// the relay below its open-file limit, where `accept` would fail for everyone.
    pub max_connections: usize,
}

#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The sled directory; created if missing.
    pub path: PathBuf,
    /// Delivered notifications are purged this long after their last delivery.
    pub retention: Duration,
    /// Dead letters are purged this long after they died.
    pub dead_letter_retention: Duration,
    /// How often the background purge runs.
    pub purge_interval: Duration,
    /// Undelivered deliveries above which intake answers 503 instead of filling the disk; 0: no limit.
    pub max_pending: u64,
    /// sled's cache, checkpoints and log segments.
    pub options: store::StoreOptions,
}

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

#[derive(Debug, Clone)]
pub struct RoutingSettings {
    /// The top-level field of the webhook that holds the region key (a country).
    pub field: String,
    /// Region for keys no region claims; `None` makes such a webhook a 422.
    pub default_region: Option<String>,
    /// Lower-cased country → region name.
    pub countries: HashMap<String, String>,
}

impl RoutingSettings {
    /// The region for a country, case-insensitively, falling back to `default_region`.
    pub fn region_for(&self, country: &str) -> Option<&str> {
        self.countries
            .get(&country.trim().to_lowercase())
            .or(self.default_region.as_ref())
            .map(String::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// What format the source sends.
    pub kind: SourceKind,
    /// If set, requests must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// The source's own region, tried before `[[routes]]` and the country table.
    pub region: Option<String>,
    /// tray-commerce: seller id → region, tried first.
    pub sellers: HashMap<String, String>,
    /// tray-commerce: identical notifications within this window make one message.
    pub coalesce_window: Duration,
    /// rainforest: hosts an event's webhook URL may point at.
    pub allowed_webhook_hosts: Vec<String>,
    /// generic: idempotency pointer, title template and fields.
    pub generic: Option<GenericSettings>,
    /// `on_status`: reactions, pins and deletes by the record's status (bot-token regions).
    pub on_status: Option<std::sync::Arc<StatusRules>>,
    /// approval: the request's fields, the decision URL and token, the approvers.
    pub approval: Option<approval::ApprovalSettings>,
    /// If set, every request must be signed (Standard Webhooks or X-Hub-Signature-256).
    pub signature: Option<InboundSignature>,
}

/// Tray's seed advises grouping identical notifications; 10 s catches a burst of edits.
const DEFAULT_COALESCE_WINDOW: Duration = Duration::from_secs(10);

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
            message: mask_secrets(&e.to_string()),
        })?;
        Settings::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Settings, ConfigError> {
        use values::{parse_duration, positive_duration};

        let server = ServerSettings {
            listen: raw.server.listen.clone(),
            max_body_bytes: values::positive_count(
                "server.max_body_bytes",
                raw.server.max_body_bytes,
                "bytes",
                "1048576",
            )?,
            shutdown_timeout: parse_duration(
                "server.shutdown_timeout",
                &raw.server.shutdown_timeout,
            )?,
            client_request_timeout: positive_duration(
                "server.client_request_timeout",
                &raw.server.client_request_timeout,
                "\"5s\"",
            )?,
            client_body_timeout: positive_duration(
                "server.client_body_timeout",
                &raw.server.client_body_timeout,
                "\"10s\"",
            )?,
            max_connections: values::positive_count(
                "server.max_connections",
                raw.server.max_connections,
                "connections",
                "4096",
            )?,
        };
        if !raw.server.listen.contains(':') {
            return Err(ConfigError::invalid(
                "server.listen",
                &raw.server.listen,
                "is not host:port",
                "\"127.0.0.1:8080\"",
            ));
        }
        if raw.store.path.trim().is_empty() {
            return Err(ConfigError::invalid(
                "store.path",
                "",
                "must name a directory",
                "\"data\"",
            ));
        }

        let d = &raw.delivery;
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

        let mut regions = BTreeMap::new();
        let mut countries: HashMap<String, String> = HashMap::new();
        for (name, r) in &raw.regions {
            if !valid_name(name) {
                return Err(ConfigError::invalid(
                    &format!("regions.{name}"),
                    name,
                    "is not a usable region name (letters, digits, '-' and '_')",
                    "[regions.UK]",
                ));
            }
            let key = |field: &str| format!("regions.{name}.{field}");
            let settings = region::region_settings(name, r)?;
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

        if let Some(default) = &raw.routing.default_region {
            if !regions.contains_key(default) {
                return Err(ConfigError::invalid(
                    "routing.default_region",
                    default,
                    "names no [regions.…] table",
                    &example_region(&regions),
                ));
            }
        }
        if raw.routing.field.trim().is_empty() {
            return Err(ConfigError::invalid(
                "routing.field",
                "",
                "must name a field",
                "\"country\"",
            ));
        }
        let routing = RoutingSettings {
            field: raw.routing.field.clone(),
            default_region: raw.routing.default_region.clone(),
            countries,
        };

        let mut sources = BTreeMap::new();
        for (name, s) in &raw.sources {
            if !valid_name(name) {
                return Err(ConfigError::invalid(
                    &format!("sources.{name}"),
                    name,
                    "is not usable in a URL path (letters, digits, '-' and '_')",
                    "[sources.salesforce]",
                ));
            }
            let kind = SourceKind::parse(&s.kind).ok_or_else(|| {
                ConfigError::invalid(
                    &format!("sources.{name}.kind"),
                    &s.kind,
                    "is not a known source kind",
                    "\"opportunity\"",
                )
            })?;
            sources.insert(name.clone(), source_settings(name, s, kind, &regions)?);
        }
        if sources
            .values()
            .filter(|s| s.kind == SourceKind::Rainforest)
            .count()
            > 1
        {
            return Err(ConfigError::invalid(
                "sources",
                "(two rainforest sources)",
                "has more than one rainforest source, but Rainforest's paths (/events) are fixed",
                "one [sources.rainforest] table",
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
        let admin_tokens = raw
            .admin
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                AdminToken::parse(t).ok_or_else(|| {
                    ConfigError::invalid(
                        &format!("admin.tokens[{i}]"),
                        "(hidden)",
                        "is neither a token of 16+ characters nor sha256:<64 hex digits>",
                        "\"sha256:\" + the output of `printf %s TOKEN | sha256sum`",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let log_level = raw.log.level.trim().to_lowercase();
        if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
            return Err(ConfigError::invalid(
                "log.level",
                &raw.log.level,
                "is not a log level",
                "\"info\" (or error, warn, debug, trace)",
            ));
        }
        let routes = raw
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| route(i, r, &regions, &sources))
            .collect::<Result<Vec<_>, _>>()?;
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
            store: StoreSettings {
                path: PathBuf::from(&raw.store.path),
                retention: parse_duration("store.retention", &raw.store.retention)?,
                dead_letter_retention: parse_duration(
                    "store.dead_letter_retention",
                    &raw.store.dead_letter_retention,
                )?,
                purge_interval: parse_duration("store.purge_interval", &raw.store.purge_interval)?,
                max_pending: raw.store.max_pending,
                options: store_options(&raw.store)?,
            },
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

/// TOML's errors quote the offending line, which may hold a token, a signing secret or a
/// webhook URL (a typo in the key's name is enough): every quoted value on a line that looks
/// like one is replaced by `***`.
fn mask_secrets(message: &str) -> String {
    const SECRET_HINTS: &[&str] = &[
        "token",
        "secret",
        "webhook_url",
        "xoxb-",
        "xoxp-",
        "xapp-",
        "whsec_",
        "hooks.slack.com",
    ];
    message
        .lines()
        .map(|line| {
            let lower = line.to_lowercase();
            if !SECRET_HINTS.iter().any(|h| lower.contains(h)) {
                return line.to_string();
            }
            // Keep the text outside quotes (the key, TOML's pointer), hide what is inside.
            let mut out = String::with_capacity(line.len());
            let mut quoted = false;
            let mut hidden = false;
            for c in line.chars() {
                if c == '"' || c == '\'' {
                    quoted = !quoted;
                    hidden = false;
                    out.push(c);
                } else if quoted {
                    if !hidden {
                        out.push_str("***");
                        hidden = true;
                    }
                } else {
                    out.push(c);
                }
            }
            // An unclosed quote (the error itself) leaves the rest hidden too.
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn source_settings(
    name: &str,
    s: &raw::RawSource,
    kind: SourceKind,
    regions: &BTreeMap<String, RegionSettings>,
) -> Result<SourceSettings, ConfigError> {
    let key = |field: &str| format!("sources.{name}.{field}");
    let only_for = |field: &str, present: bool, wanted: SourceKind| {
        if present && kind != wanted {
            Err(ConfigError::invalid(
                &key(field),
                "(set)",
                &format!("applies only to kind = \"{}\"", wanted.as_str()),
                &format!("remove it, or use kind = \"{}\"", wanted.as_str()),
            ))
        } else {
            Ok(())
        }
    };
    only_for("sellers", s.sellers.is_some(), SourceKind::TrayCommerce)?;
    only_for(
        "coalesce_window",
        s.coalesce_window.is_some(),
        SourceKind::TrayCommerce,
    )?;
    only_for(
        "allowed_webhook_hosts",
        s.allowed_webhook_hosts.is_some(),
        SourceKind::Rainforest,
    )?;
    if kind != SourceKind::Approval {
        only_for("id", s.id.is_some(), SourceKind::Generic)?;
        only_for("title", s.title.is_some(), SourceKind::Generic)?;
    }
    only_for("fields", s.fields.is_some(), SourceKind::Generic)?;
    for (field, set) in approval::approval_keys(s) {
        only_for(field, set, SourceKind::Approval)?;
    }

    let known_region = |field: &str, region: &str| {
        if regions.contains_key(region) {
            Ok(region.to_string())
        } else {
            Err(ConfigError::invalid(
                &key(field),
                region,
                "names no [regions.…] table",
                &example_region(regions),
            ))
        }
    };
    let region = s
        .region
        .as_deref()
        .map(|r| known_region("region", r))
        .transpose()?;
    let mut sellers = HashMap::new();
    for (seller, region) in s.sellers.iter().flatten() {
        let region = known_region(&format!("sellers.{seller}"), region)?;
        sellers.insert(seller.trim().to_string(), region);
    }
    let coalesce_window = match &s.coalesce_window {
        Some(text) => values::parse_duration(&key("coalesce_window"), text)?,
        None => DEFAULT_COALESCE_WINDOW,
    };
    let allowed_webhook_hosts = s
        .allowed_webhook_hosts
        .clone()
        .unwrap_or_else(|| vec!["hooks.slack.com".to_string()])
        .into_iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let generic = match kind {
        SourceKind::Generic => Some(generic_settings(name, s)?),
        _ => None,
    };
    let approval = match kind {
        SourceKind::Approval => Some(approval::approval_settings(name, s)?),
        _ => None,
    };
    if let (Some(a), Some(r)) = (&approval, region.as_ref().and_then(|r| regions.get(r))) {
        if !a.approvers.emails.is_empty() && r.target.web_api().is_none() {
            return Err(ConfigError::invalid(
                &key("approvers"),
                "(emails)",
                "lists emails, but its region has no bot token to look up who clicked (users.info)",
                "Slack user ids such as \"U0123ABCD\", or a bot token for the region",
            ));
        }
    }
    if let Some(token) = &s.token {
        if token.len() < 16 {
            return Err(ConfigError::invalid(
                &key("token"),
                "(hidden)",
                "is shorter than 16 characters",
                "a random string such as the output of `openssl rand -hex 24`",
            ));
        }
    }
    Ok(SourceSettings {
        kind,
        token: s.token.clone(),
        region,
        sellers,
        coalesce_window,
        allowed_webhook_hosts,
        generic,
        approval,
        on_status: status_rules(name, s)?.map(std::sync::Arc::new),
        signature: inbound_signature(name, s)?,
    })
}

/// `verify` and its secrets (inline or one per line in a file; several allow rotation).
fn inbound_signature(
    name: &str,
    s: &raw::RawSource,
) -> Result<Option<InboundSignature>, ConfigError> {
    let key = |field: &str| format!("sources.{name}.{field}");
    let secrets: Vec<String> = match (&s.signing_secrets, &s.signing_secrets_file) {
        (Some(list), None) => list.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| {
                ConfigError::invalid(
                    &key("signing_secrets_file"),
                    path,
                    &format!("cannot be read ({e})"),
                    "a file readable by the hookrelay user only, one secret per line",
                )
            })?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
        (None, None) => Vec::new(),
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                &key("signing_secrets"),
                "(and signing_secrets_file)",
                "is set twice",
                "one of them",
            ))
        }
    };
    if s.kind == "rainforest" && (s.verify.is_some() || !secrets.is_empty()) {
        return Err(ConfigError::invalid(
            &key("verify"),
            s.verify.as_deref().unwrap_or("(signing_secrets)"),
            "is not available for rainforest, whose events arrive unsigned at /events",
            "a token = \"…\" on the source, or no verify",
        ));
    }
    let scheme = match s.verify.as_deref() {
        None if secrets.is_empty() => return Ok(None),
        None => {
            return Err(ConfigError::invalid(
                &key("signing_secrets"),
                "(hidden)",
                "needs verify = \"standard-webhooks\" or \"hub-signature-256\" to say how requests are signed",
                "verify = \"standard-webhooks\"",
            ))
        }
        Some(v) => v,
    };
    if secrets.is_empty() {
        return Err(ConfigError::invalid(
            &key("signing_secrets"),
            "(none)",
            "must hold at least one secret when verify is set",
            "[\"whsec_…\"]",
        ));
    }
    match scheme {
        "standard-webhooks" => {
            let keys = secrets
                .iter()
                .enumerate()
                .map(|(i, secret)| {
                    signature::standard_key(secret).ok_or_else(|| {
                        ConfigError::invalid(
                            &key(&format!("signing_secrets[{i}]")),
                            "(hidden)",
                            "is not a Standard Webhooks secret (whsec_ + base64)",
                            "\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(InboundSignature::StandardWebhooks(keys)))
        }
        "hub-signature-256" => Ok(Some(InboundSignature::HubSha256(
            secrets.into_iter().map(String::into_bytes).collect(),
        ))),
        other => Err(ConfigError::invalid(
            &key("verify"),
            other,
            "is not a known signature scheme",
            "\"standard-webhooks\" or \"hub-signature-256\"",
        )),
    }
}

/// `[sources.NAME.on_status]` and `status_field`, checked.
fn status_rules(name: &str, s: &raw::RawSource) -> Result<Option<StatusRules>, ConfigError> {
    let key = |field: &str| format!("sources.{name}.{field}");
    let Some(table) = &s.on_status else {
        if s.status_field.is_some() {
            return Err(ConfigError::invalid(
                &key("status_field"),
                s.status_field.as_deref().unwrap_or(""),
                "does nothing without an on_status table",
                &format!("[sources.{name}.on_status] \"Closed Won\" = {{ react = \"tada\", pin = true }}"),
            ));
        }
        return Ok(None);
    };
    let pointer = s.status_field.clone().unwrap_or_else(|| "/status".into());
    if !pointer.starts_with('/') {
        return Err(ConfigError::invalid(
            &key("status_field"),
            &pointer,
            "is not a JSON pointer",
            "\"/status\"",
        ));
    }
    let mut actions = HashMap::new();
    for (value, a) in table {
        let k = key(&format!("on_status.{value:?}"));
        let react = match &a.react {
            None => None,
            Some(raw) => Some(status::emoji_name(raw).ok_or_else(|| {
                ConfigError::invalid(
                    &format!("{k}.react"),
                    raw,
                    "is not an emoji name (lower-case letters, digits, _ + -)",
                    "\"tada\"",
                )
            })?),
        };
        let action = StatusAction {
            react,
            pin: a.pin,
            delete: a.delete,
        };
        if action.is_empty() {
            return Err(ConfigError::invalid(
                &k,
                "{}",
                "asks for nothing",
                "{ react = \"tada\", pin = true } or { delete = true }",
            ));
        }
        if action.delete && (action.pin || action.react.is_some()) {
            return Err(ConfigError::invalid(
                &k,
                "(delete with react or pin)",
                "would react to or pin a message it deletes",
                "{ delete = true }",
            ));
        }
        if actions
            .insert(value.trim().to_lowercase(), action)
            .is_some()
        {
            return Err(ConfigError::invalid(
                &k,
                value,
                "names a status another key names too (values compare without case)",
                "one key per status",
            ));
        }
    }
    Ok(Some(StatusRules { pointer, actions }))
}

fn generic_settings(name: &str, s: &raw::RawSource) -> Result<GenericSettings, ConfigError> {
    let key = |field: &str| format!("sources.{name}.{field}");
    if let Some(p) = s.id.as_deref().filter(|p| !p.starts_with('/')) {
        return Err(ConfigError::invalid(
            &key("id"),
            p,
            "is not a JSON pointer",
            "\"/order/id\"",
        ));
    }
    let fields = s.fields.clone().unwrap_or_default();
    if fields.len() > MAX_FIELDS {
        return Err(ConfigError::invalid(
            &key("fields"),
            format!("{} fields", fields.len()),
            "has more than Slack's 10 fields per message",
            "[[\"Amount\", \"/amount\"]]",
        ));
    }
    if let Some((_, p)) = fields.iter().find(|(_, p)| !p.starts_with('/')) {
        return Err(ConfigError::invalid(
            &key("fields"),
            p,
            "is not a JSON pointer",
            "[[\"Amount\", \"/amount\"]]",
        ));
    }
    Ok(GenericSettings {
        id_pointer: s.id.clone(),
        title: s
            .title
            .clone()
            .unwrap_or_else(|| format!("Notification from {name}")),
        fields,
    })
}

fn route(
    i: usize,
    r: &raw::RawRoute,
    regions: &BTreeMap<String, RegionSettings>,
    sources: &BTreeMap<String, SourceSettings>,
) -> Result<Route, ConfigError> {
    let key = |field: &str| format!("routes[{i}].{field}");
    if let Some(source) = &r.source {
        let Some(own) = sources.get(source) else {
            return Err(ConfigError::invalid(
                &key("source"),
                source,
                "names no [sources.…] table",
                "\"salesforce\"",
            ));
        };
        // A route that can never apply is a mistake worth refusing, not a silent no-op.
        if own.kind == SourceKind::Rainforest {
            return Err(ConfigError::invalid(
                &key("source"),
                source,
                "is a rainforest source, whose events name their own webhook URL",
                "a route for another source",
            ));
        }
        if own.region.is_some() {
            return Err(ConfigError::invalid(
                &key("source"),
                source,
                "has its own region, which is tried first, so this route would never apply",
                "remove sources.NAME.region to route it",
            ));
        }
    }
    if let Some((p, _)) = r.matches.iter().find(|(p, _)| !p.starts_with('/')) {
        return Err(ConfigError::invalid(
            &key("match"),
            p,
            "is not a JSON pointer",
            "{ \"/owner_email\" = \"andrew@tray.io\" }",
        ));
    }
    let target = match (&r.region, &r.webhook_url) {
        (Some(region), None) if regions.contains_key(region) => RouteTarget::Region(region.clone()),
        (Some(region), None) => {
            return Err(ConfigError::invalid(
                &key("region"),
                region,
                "names no [regions.…] table",
                &example_region(regions),
            ))
        }
        (None, Some(url)) => RouteTarget::Url(region::webhook_url(&key("webhook_url"), url)?),
        _ => {
            return Err(ConfigError::invalid(
                &key("region"),
                "(region and webhook_url)",
                "needs exactly one of region or webhook_url",
                "region = \"UK\"",
            ))
        }
    };
    Ok(Route {
        source: r.source.clone(),
        matches: r
            .matches
            .iter()
            .map(|(p, v)| (p.clone(), v.trim().to_lowercase()))
            .collect(),
        target,
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn example_region(regions: &BTreeMap<String, RegionSettings>) -> String {
    regions
        .keys()
        .next()
        .map(|r| format!("\"{r}\""))
        .unwrap_or_else(|| "\"US\"".into())
}

/// The `[store]` sizes and intervals, checked.
fn store_options(raw: &raw::RawStore) -> Result<store::StoreOptions, ConfigError> {
    let cache_bytes = values::parse_size("store.cache_size", &raw.cache_size)?;
    if cache_bytes < 1 << 20 {
        return Err(ConfigError::invalid(
            "store.cache_size",
            &raw.cache_size,
            "is below 1MiB, too small for sled to hold its index",
            "\"64MiB\"",
        ));
    }
    let checkpoint_interval =
        values::parse_duration("store.checkpoint_interval", &raw.checkpoint_interval)?;
    if checkpoint_interval < std::time::Duration::from_millis(10) {
        return Err(ConfigError::invalid(
            "store.checkpoint_interval",
            &raw.checkpoint_interval,
            "is shorter than 10ms",
            "\"30s\"",
        ));
    }
    let checkpoint_bytes = values::parse_size("store.checkpoint_size", &raw.checkpoint_size)?;
    let min_free = values::parse_reserve("store.min_free", &raw.min_free)?;
    Ok(store::StoreOptions {
        min_free,
        cache_bytes,
        checkpoint_interval,
        checkpoint_bytes,
        // A quarter of the checkpoint size, so a checkpoint deletes whole files, at least 1 MiB.
        segment_bytes: (checkpoint_bytes / 4).max(1 << 20),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [sources.salesforce]
        kind = "opportunity"
        [regions.UK]
        webhook_url = "https://hooks.slack.com/services/T/B/SECRET"
        countries = ["UK", "gb"]
        rate = "50/h"
        [regions.US]
        webhook_url = "file://outbox/us.jsonl"
        [routing]
        default_region = "US"
    "#;

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let s = Settings::parse(GOOD).unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:8080");
        assert_eq!(s.server.max_body_bytes, 1_048_576);
        assert_eq!(s.server.client_request_timeout, Duration::from_secs(5));
        assert_eq!(s.server.client_body_timeout, Duration::from_secs(10));
        assert_eq!(s.server.max_connections, 4096);
        assert_eq!(s.delivery.workers, 4);
        assert_eq!(s.delivery.max_attempts, 10);
        assert_eq!(s.delivery.timeout, Duration::from_secs(10));
        assert_eq!(s.regions["US"].rate, Rate::SLACK_DEFAULT);
        assert_eq!(s.regions["US"].burst, 3);
        assert_eq!(s.routing.field, "country");
    }

    #[test]
    fn bad_front_door_limits_name_the_key_the_value_and_an_example() {
        for (line, key, value, example) in [
            (
                "client_body_timeout = \"soon\"",
                "server.client_body_timeout",
                "soon",
                "\"30s\"",
            ),
            (
                "client_request_timeout = \"0s\"",
                "server.client_request_timeout",
                "0s",
                "\"5s\"",
            ),
            ("max_connections = 0", "server.max_connections", "0", "4096"),
        ] {
            let text = format!("[server]\n{line}\n{GOOD}");
            let err = Settings::parse(&text).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains(value) && err.contains(example),
                "{line}: {err}"
            );
        }
    }

    #[test]
    fn countries_match_case_insensitively_and_region_names_are_their_own_country() {
        let s = Settings::parse(GOOD).unwrap();
        assert_eq!(s.routing.region_for("GB"), Some("UK"));
        assert_eq!(s.routing.region_for("uk"), Some("UK"));
        assert_eq!(s.routing.region_for("us"), Some("US"));
        assert_eq!(s.routing.region_for("DE"), Some("US"), "default region");
    }

    #[test]
    fn store_sizes_parse_with_units_and_bad_ones_name_key_value_and_example() {
        let s = Settings::parse(GOOD).unwrap();
        assert_eq!(s.store.options, store::StoreOptions::default());
        let text =
            format!("{GOOD}\n[store]\ncache_size = \"128 MiB\"\ncheckpoint_size = \"8MiB\"\n");
        let s = Settings::parse(&text).unwrap();
        assert_eq!(s.store.options.cache_bytes, 128 << 20);
        assert_eq!(s.store.options.segment_bytes, 2 << 20);
        let text = format!("{GOOD}\n[store]\ncache_size = \"lots\"\n");
        let err = Settings::parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("store.cache_size") && err.contains("lots") && err.contains("64MiB"),
            "{err}"
        );
        let text = format!("{GOOD}\n[store]\ncache_size = \"100KiB\"\n");
        let err = Settings::parse(&text).unwrap_err().to_string();
        assert!(err.contains("below 1MiB"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Settings::parse("[delivery]\nmax_attemps = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_attemps"), "{err}");
    }

    #[test]
    fn a_default_region_must_exist() {
        let text = GOOD.replace("default_region = \"US\"", "default_region = \"APAC\"");
        let err = Settings::parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("routing.default_region") && err.contains("APAC"),
            "{err}"
        );
    }

    #[test]
    fn a_country_in_two_regions_is_an_error() {
        let text = GOOD.replace("[\"UK\", \"gb\"]", "[\"UK\", \"us\"]");
        let err = Settings::parse(&text).unwrap_err().to_string();
        assert!(err.contains("already claimed"), "{err}");
    }

    #[test]
    fn a_bad_webhook_url_is_reported_without_the_secret() {
        let text = GOOD.replace(
            "https://hooks.slack.com/services/T/B/SECRET",
            "ftp://x/T/B/SECRET",
        );
        let err = Settings::parse(&text).unwrap_err().to_string();
        assert!(err.contains("regions.UK.webhook_url"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn an_unknown_source_kind_is_an_error() {
        let text = GOOD.replace("kind = \"opportunity\"", "kind = \"fax\"");
        let err = Settings::parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("sources.salesforce.kind") && err.contains("fax"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_config_is_valid() {
        let text = include_str!("../../config.toml");
        let s = Settings::parse(text).unwrap();
        assert!(s.sources.contains_key("salesforce"));
        for region in ["UK", "US", "EU"] {
            assert!(s.regions.contains_key(region), "{region}");
        }
    }

    #[test]
    fn the_shipped_configs_commented_slack_app_examples_work_when_uncommented() {
        for text in [
            include_str!("../../config.toml"),
            include_str!("../../packaging/config.toml"),
        ] {
            // The on_status table as shipped, uncommented.
            let text = text
                .lines()
                .map(|l| match l.strip_prefix("# ") {
                    Some(rest) if rest.starts_with("[sources.salesforce.on_status]") => rest,
                    Some(rest)
                        if rest.starts_with("\"Closed") || rest.starts_with("\"Withdrawn") =>
                    {
                        rest
                    }
                    _ => l,
                })
                .collect::<Vec<_>>()
                .join("\n");
            let s = Settings::parse(&text).unwrap();
            let rules = s.sources["salesforce"]
                .on_status
                .as_ref()
                .expect("on_status");
            assert_eq!(
                rules.for_value("closed won").unwrap().react.as_deref(),
                Some("tada")
            );
            assert!(rules.for_value("Withdrawn").unwrap().delete);
        }
    }

    #[test]
    fn a_syntax_error_on_a_secrets_line_does_not_show_the_secret() {
        for line in [
            "bot_tokn = \"xoxb-111-222-TOPSECRET\"",
            "bot_token = \"xoxb-111-222-TOPSECRET",
            "webhook_url = \"https://hooks.slack.com/services/T/B/TOPSECRET\"\nwebhook_url = \"x\"",
            "signing_secret = 'TOPSECRET' x",
        ] {
            let err = Settings::parse(&format!("[regions.UK]\n{line}\n"))
                .unwrap_err()
                .to_string();
            assert!(!err.contains("TOPSECRET"), "{err}");
            assert!(err.contains("***"), "{err}");
        }
    }

    #[test]
    fn the_shipped_configs_commented_approval_source_works_when_uncommented() {
        for text in [
            include_str!("../../config.toml"),
            include_str!("../../packaging/config.toml"),
        ] {
            let start = text.find("# [sources.dataroom]").expect("the example");
            let block: String = text[start..]
                .lines()
                .take_while(|l| l.starts_with('#'))
                .filter_map(|l| l.strip_prefix("# ").or(l.strip_prefix('#')))
                // Files the test machine lacks: the same secrets inline.
                .map(|l| {
                    if l.starts_with("decision_token_file") {
                        "decision_token = \"0123456789abcdef\"".to_string()
                    } else if l.starts_with("signing_secret_file") {
                        "signing_secret = \"0123456789abcdef0123\"".to_string()
                    } else if l.starts_with("app_token_file") {
                        String::new()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            let s = Settings::parse(&format!("{text}\n{block}\n")).unwrap();
            let approval = s.sources["dataroom"].approval.as_ref().expect("approval");
            assert_eq!(approval.fields.requester, "/request/email");
            assert!(approval.approvers.has_id("U0456EFGH"));
            assert!(s.slack.signing_secret.is_some());
        }
    }

    #[test]
    fn an_approval_source_needs_interactivity_and_approvers() {
        let base = format!(
            "{GOOD}\n[sources.dataroom]\nkind = \"approval\"\ndecision_url = \"https://c.example/d\"\nregion = \"UK\"\n"
        );
        let err = Settings::parse(&format!("{base}approvers = [\"U1\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("signing_secret") && err.contains("app_token"),
            "{err}"
        );
        let slack = "[slack]\nsigning_secret = \"0123456789abcdef0123\"\n";
        let err = Settings::parse(&format!("{base}{slack}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("approvers"), "{err}");
        let err = Settings::parse(&format!("{base}approvers = [\"bob\"]\n{slack}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bob") && err.contains("user id"), "{err}");
        let err = Settings::parse(&format!(
            "{base}approvers = [\"U1\"]\nrequester = \"email\"\n{slack}"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("sources.dataroom.requester") && err.contains("JSON pointer"),
            "{err}"
        );
        assert!(Settings::parse(&format!("{base}approvers = [\"U1\"]\n{slack}")).is_ok());
    }

    #[test]
    fn signed_sources_are_checked() {
        let with = |source: &str| {
            Settings::parse(&format!("{GOOD}\n[sources.signed]\n{source}\n"))
                .map_err(|e| e.to_string())
        };
        assert!(with("kind = \"opportunity\"\nverify = \"standard-webhooks\"\nsigning_secrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]").is_ok());
        let err = with("kind = \"opportunity\"\nverify = \"standard-webhooks\"\nsigning_secrets = [\"not base64 !\"]").unwrap_err();
        assert!(
            err.contains("signing_secrets[0]") && !err.contains("not base64"),
            "{err}"
        );
        let err = with("kind = \"opportunity\"\nverify = \"standard-webhooks\"").unwrap_err();
        assert!(err.contains("at least one secret"), "{err}");
        let err = with("kind = \"opportunity\"\nverify = \"pgp\"\nsigning_secrets = [\"x\"]")
            .unwrap_err();
        assert!(err.contains("pgp"), "{err}");
        let err = with(
            "kind = \"rainforest\"\nverify = \"hub-signature-256\"\nsigning_secrets = [\"x\"]",
        )
        .unwrap_err();
        assert!(err.contains("rainforest"), "{err}");
    }

    #[test]
    fn on_status_rules_are_checked() {
        let with = |table: &str| {
            Settings::parse(&format!(
                "{GOOD}\n[sources.salesforce.on_status]\n{table}\n"
            ))
            .map_err(|e| e.to_string())
        };
        let err = with("\"Won\" = { react = \"Party Popper\" }").unwrap_err();
        assert!(
            err.contains("react") && err.contains("Party Popper"),
            "{err}"
        );
        let err = with("\"Won\" = {}").unwrap_err();
        assert!(err.contains("asks for nothing"), "{err}");
        let err = with("\"Won\" = { delete = true, pin = true }").unwrap_err();
        assert!(err.contains("deletes"), "{err}");
        let err = with("\"Won\" = { pinn = true }").unwrap_err();
        assert!(err.contains("pinn"), "{err}");
    }

    #[test]
    fn routes_naming_unknown_regions_or_sources_are_rejected() {
        let bad_region =
            format!("{GOOD}\n[[routes]]\nmatch = {{ \"/type\" = \"x\" }}\nregion = \"APAC\"\n");
        let err = Settings::parse(&bad_region).unwrap_err().to_string();
        assert!(
            err.contains("routes[0].region") && err.contains("APAC"),
            "{err}"
        );
        let bad_source = format!("{GOOD}\n[[routes]]\nsource = \"erp\"\nregion = \"UK\"\n");
        let err = Settings::parse(&bad_source).unwrap_err().to_string();
        assert!(
            err.contains("routes[0].source") && err.contains("erp"),
            "{err}"
        );
        let both = format!("{GOOD}\n[[routes]]\nregion = \"UK\"\nwebhook_url = \"file://x\"\n");
        assert!(Settings::parse(&both)
            .unwrap_err()
            .to_string()
            .contains("exactly one"));
    }

    #[test]
    fn kind_specific_keys_are_refused_on_other_kinds() {
        let text = GOOD.replace(
            "kind = \"opportunity\"",
            "kind = \"opportunity\"\nsellers = { \"1\" = \"UK\" }",
        );
        let err = Settings::parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("sources.salesforce.sellers") && err.contains("tray-commerce"),
            "{err}"
        );
    }

    #[test]
    fn a_route_that_could_never_apply_is_refused() {
        let text = format!("{GOOD}\n[sources.rf]\nkind = \"rainforest\"\n[[routes]]\nsource = \"rf\"\nregion = \"UK\"\n");
        assert!(Settings::parse(&text)
            .unwrap_err()
            .to_string()
            .contains("rainforest"));
        let text = format!("{GOOD}\n[sources.shop]\nkind = \"tray-commerce\"\nregion = \"US\"\n[[routes]]\nsource = \"shop\"\nregion = \"UK\"\n");
        assert!(Settings::parse(&text)
            .unwrap_err()
            .to_string()
            .contains("never apply"));
    }
}
