//! What the operator commands share: how they reach the relay (`--url`, `--token-file`), how they
//! print its answer (`--json` or a table), and path segments for its URLs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::admin_client::{self, AdminClient, ClientError};

/// How the operator commands reach the relay.
#[derive(Debug, Args)]
pub struct Remote {
    /// The relay's address [env: HOOKRELAY_URL] [default: http://127.0.0.1:8080].
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// A file holding an admin token; without it the token comes from HOOKRELAY_TOKEN.
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// For an https:// URL: trust only the CA certificates in this PEM file, for a relay whose
    /// certificate comes from the office's own CA [env: HOOKRELAY_CACERT].
    #[arg(long, global = true, value_name = "PATH")]
    pub cacert: Option<PathBuf>,
    /// Print the API's JSON instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Resolves the URL and token, runs `f`, prints what it returns; errors go to stderr, exit 1.
pub(super) fn remote_command(
    remote: &Remote,
    f: impl FnOnce(&AdminClient) -> Result<String, ClientError>,
) -> ExitCode {
    let result = admin_client::resolve_token(remote.token_file.as_deref()).and_then(|token| {
        let url = admin_client::resolve_url(remote.url.as_deref());
        let client = match admin_client::resolve_cacert(remote.cacert.as_deref()) {
            Some(ca) => AdminClient::with_cacert(&url, token, &ca)?,
            None => AdminClient::new(&url, token),
        };
        f(&client)
    });
    match result {
        Ok(text) => {
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The API's JSON with `--json`, else the human rendering.
pub(super) fn output(remote: &Remote, v: &Value, human: impl FnOnce(&Value) -> String) -> String {
    if remote.json {
        format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default())
    } else {
        human(v)
    }
}

/// A value for one path segment, percent-encoded.
pub(super) fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
