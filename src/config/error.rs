//! Why a configuration was refused, and how TOML's own errors are kept from showing a secret.

use std::path::PathBuf;

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

/// TOML's errors quote the offending line, which may hold a token, a signing secret or a
/// webhook URL (a typo in the key's name is enough): every quoted value on a line that looks
/// like one is replaced by `***`.
pub(super) fn mask_secrets(message: &str) -> String {
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
