//! `kind = "approval"` sources: where the request's fields are, where the decision goes, and
//! who may decide.

use std::collections::HashSet;
use std::fmt;

use super::raw::RawSource;
use super::slack::secret;
use super::values::json_pointers;
use super::ConfigError;
use crate::model::approval::Choice;

/// Slack's limit for a static select's options.
pub const MAX_CHOICES: usize = 100;

/// Where the sender's fields are, and the fixed parts of a source's requests.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFields {
    /// Pointer to the request id (required in every request).
    pub id: String,
    /// Pointer to the requester.
    pub requester: String,
    /// Pointer to the message.
    pub message: String,
    /// Pointer to the link.
    pub link: String,
    /// Pointer to the choices: an array of strings or of `{value, label}` objects.
    pub choices: String,
    /// Used when a request carries no choices.
    pub choice_list: Vec<Choice>,
    /// Pointer to a per-request decision URL; the configured one is the fallback.
    pub decision_url_field: Option<String>,
    /// The configured decision URL.
    pub decision_url: Option<String>,
    /// Hosts a decision URL may point at, lower-cased.
    pub allowed_hosts: Vec<String>,
}

/// An approval source, validated.
#[derive(Debug, Clone)]
pub struct ApprovalSettings {
    /// Where the sender's fields are, and where decisions may go.
    pub fields: RequestFields,
    /// The message's header, "Access request" unless `title` says otherwise.
    pub title: String,
    /// Sent as `Authorization: Bearer …` with each decision; a secret.
    pub decision_token: Option<DecisionToken>,
    /// Who may decide.
    pub approvers: Approvers,
}

/// The requesting system's token for decisions; `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct DecisionToken(String);

impl DecisionToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DecisionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DecisionToken(***)")
    }
}

/// The allow-list: Slack user ids, and emails (checked with `users.info`, which needs a bot
/// token in the request's region).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approvers {
    /// `U…` ids, as written.
    pub ids: HashSet<String>,
    /// Lower-cased emails.
    pub emails: HashSet<String>,
}

impl Approvers {
    /// Whether a user id is listed as such.
    pub fn has_id(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Whether an email is listed (case-insensitive).
    pub fn has_email(&self, email: &str) -> bool {
        self.emails.contains(&email.trim().to_lowercase())
    }
}

/// The keys only an approval source takes, and whether each is set.
pub fn approval_keys(s: &RawSource) -> [(&'static str, bool); 11] {
    [
        ("requester", s.requester.is_some()),
        ("message", s.message.is_some()),
        ("link", s.link.is_some()),
        ("choices", s.choices.is_some()),
        ("choice_list", s.choice_list.is_some()),
        ("decision_url", s.decision_url.is_some()),
        ("decision_url_field", s.decision_url_field.is_some()),
        ("allowed_decision_hosts", s.allowed_decision_hosts.is_some()),
        ("decision_token", s.decision_token.is_some()),
        ("decision_token_file", s.decision_token_file.is_some()),
        ("approvers", s.approvers.is_some()),
    ]
}

pub fn approval_settings(name: &str, s: &RawSource) -> Result<ApprovalSettings, ConfigError> {
    let key = |field: &str| format!("sources.{name}.{field}");
    let pointer =
        |field: &str, value: Option<&String>, default: &str| -> Result<String, ConfigError> {
            let p = value.cloned().unwrap_or_else(|| default.to_string());
            json_pointers(&key(field), [p.as_str()], &format!("\"{default}\""))?;
            Ok(p)
        };
    let id = pointer("id", s.id.as_ref(), "/id")?;
    let requester = pointer("requester", s.requester.as_ref(), "/requester")?;
    let message = pointer("message", s.message.as_ref(), "/message")?;
    let link = pointer("link", s.link.as_ref(), "/link")?;
    let choices = pointer("choices", s.choices.as_ref(), "/choices")?;
    let decision_url_field = s
        .decision_url_field
        .as_ref()
        .map(|p| pointer("decision_url_field", Some(p), "/callback_url"))
        .transpose()?;
    let choice_list: Vec<Choice> = s
        .choice_list
        .iter()
        .flatten()
        .map(|c| Choice {
            value: c.trim().to_string(),
            label: c.trim().to_string(),
        })
        .collect();
    if choice_list.len() > MAX_CHOICES || choice_list.iter().any(|c| c.value.is_empty()) {
        return Err(ConfigError::invalid(
            &key("choice_list"),
            format!("{} choices", choice_list.len()),
            "must hold 1 to 100 non-empty names",
            "[\"Viewer\", \"Editor\"]",
        ));
    }
    let decision_url = s.decision_url.clone();
    if let Some(url) = &decision_url {
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.chars().any(char::is_whitespace)
        {
            return Err(ConfigError::invalid(
                &key("decision_url"),
                url,
                "is not an http(s) URL",
                "\"https://conveyor.example.com/api/decisions\"",
            ));
        }
    }
    if decision_url.is_none() && decision_url_field.is_none() {
        return Err(ConfigError::invalid(
            &key("decision_url"),
            "(missing)",
            "is required (or decision_url_field): decisions must go somewhere",
            "\"https://conveyor.example.com/api/decisions\"",
        ));
    }
    // By default a per-request URL may only point where the configured one does.
    let allowed_hosts: Vec<String> = match &s.allowed_decision_hosts {
        Some(hosts) => hosts.iter().map(|h| h.trim().to_lowercase()).collect(),
        None => decision_url
            .as_deref()
            .and_then(|u| u.split_once("://"))
            .and_then(|(_, rest)| rest.split(['/', '?', '#', ':']).next())
            .map(|h| vec![h.to_lowercase()])
            .unwrap_or_default(),
    };
    if decision_url_field.is_some() && allowed_hosts.is_empty() {
        return Err(ConfigError::invalid(
            &key("allowed_decision_hosts"),
            "[]",
            "is empty, so no request's decision URL could be used",
            "[\"conveyor.example.com\"]",
        ));
    }
    let decision_token = secret(
        &key("decision_token"),
        &s.decision_token,
        &s.decision_token_file,
    )?
    .map(|(_, text)| DecisionToken(text));
    let mut approvers = Approvers::default();
    for who in s.approvers.iter().flatten() {
        let who = who.trim();
        if who.contains('@') {
            approvers.emails.insert(who.to_lowercase());
        } else if who.starts_with('U') || who.starts_with('W') {
            approvers.ids.insert(who.to_string());
        } else {
            return Err(ConfigError::invalid(
                &key("approvers"),
                who,
                "is neither a Slack user id (U…) nor an email",
                "[\"U0123ABCD\", \"alice@example.com\"]",
            ));
        }
    }
    if approvers.ids.is_empty() && approvers.emails.is_empty() {
        return Err(ConfigError::invalid(
            &key("approvers"),
            "(none)",
            "must name who may approve or reject",
            "[\"U0123ABCD\", \"alice@example.com\"]",
        ));
    }
    Ok(ApprovalSettings {
        fields: RequestFields {
            id,
            requester,
            message,
            link,
            choices,
            choice_list,
            decision_url_field,
            decision_url,
            allowed_hosts,
        },
        title: s
            .title
            .clone()
            .unwrap_or_else(|| "Access request".to_string()),
        decision_token,
        approvers,
    })
}
