//! `[sources.NAME]`: what each source sends and how it is shown, routed and checked.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::cert_subject::CertSubject;
use super::generic::{generic_settings, GenericSettings};
use super::raw::RawSource;
use super::region::RegionSettings;
use super::signature::{inbound_signature, InboundSignature};
use super::values::{self, example_region, json_pointers, valid_name};
use super::{approval, ConfigError};
use crate::model::status::{self, StatusAction, StatusRules};
use crate::model::SourceKind;

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
    /// If set, requests must come over TLS with a client certificate whose subject has these
    /// attributes (`server.tls_client_ca` must be set); others get 403.
    pub client_cert_subject: Option<CertSubject>,
}

/// Tray's seed advises grouping identical notifications; 10 s catches a burst of edits.
const DEFAULT_COALESCE_WINDOW: Duration = Duration::from_secs(10);

/// Every `[sources.NAME]` table, checked.
pub(super) fn sources(
    raw: &BTreeMap<String, RawSource>,
    regions: &BTreeMap<String, RegionSettings>,
) -> Result<BTreeMap<String, SourceSettings>, ConfigError> {
    let mut sources = BTreeMap::new();
    for (name, s) in raw {
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
        sources.insert(name.clone(), source_settings(name, s, kind, regions)?);
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
    Ok(sources)
}

fn source_settings(
    name: &str,
    s: &RawSource,
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
    only_for("on_repeat", s.on_repeat.is_some(), SourceKind::Generic)?;
    only_for("ignore", s.ignore.is_some(), SourceKind::Generic)?;
    only_for("marks", s.marks.is_some(), SourceKind::Generic)?;
    only_for("closed_when", s.closed_when.is_some(), SourceKind::Generic)?;
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
        client_cert_subject: s
            .client_cert_subject
            .as_deref()
            .map(|text| {
                CertSubject::parse(text).ok_or_else(|| {
                    ConfigError::invalid(
                        &key("client_cert_subject"),
                        text,
                        "is not a certificate subject (ATTR=value, separated by commas)",
                        "\"CN=crm.example.com\"",
                    )
                })
            })
            .transpose()?,
    })
}

/// `[sources.NAME.on_status]` and `status_field`, checked.
fn status_rules(name: &str, s: &RawSource) -> Result<Option<StatusRules>, ConfigError> {
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
    json_pointers(&key("status_field"), [pointer.as_str()], "\"/status\"")?;
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
