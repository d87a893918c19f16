//! Client for a running relay's admin API, used by the CLI's operator commands (the tables they
//! print are [`super::tables`]). The token only ever goes into the `Authorization` header: it is
//! never printed, logged or shown by `Debug`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// Where the CLI looks for the relay when neither `--url` nor `HOOKRELAY_URL` says.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// The environment variable holding the relay's address.
pub const URL_ENV: &str = "HOOKRELAY_URL";
/// The environment variable holding an admin token.
pub const TOKEN_ENV: &str = "HOOKRELAY_TOKEN";
/// The environment variable naming a PEM file of CA certificates to trust for an `https://` URL.
pub const CACERT_ENV: &str = "HOOKRELAY_CACERT";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no admin token: set {TOKEN_ENV} or pass --token-file PATH (a file holding one of the config's [admin] tokens)")]
    MissingToken,
    #[error("cannot read the token file {}: {source}", path.display())]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file {} is empty", .0.display())]
    EmptyTokenFile(PathBuf),
    #[error("could not reach the relay at {url} ({reason}); is it running there? Point at it with --url or {URL_ENV}")]
    Unreachable { url: String, reason: String },
    #[error("the relay refused the admin token ({status}: {message}); check {TOKEN_ENV} or --token-file")]
    Token { status: u16, message: String },
    #[error("the relay answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("the relay at {url} sent an answer that is not JSON: {reason}")]
    BadAnswer { url: String, reason: String },
    #[error("{0}")]
    Incomplete(String),
    #[error("cannot use {} as the CA to trust: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

/// Reads the admin token from `file` if given, else from `HOOKRELAY_TOKEN`.
pub fn resolve_token(file: Option<&Path>) -> Result<String, ClientError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ClientError::TokenFile {
            path: path.to_path_buf(),
            source,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(ClientError::EmptyTokenFile(path.to_path_buf()));
        }
        return Ok(token.to_string());
    }
    match std::env::var(TOKEN_ENV) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ => Err(ClientError::MissingToken),
    }
}

/// `--url` if given, else `HOOKRELAY_URL`, else [`DEFAULT_URL`]; without a trailing slash.
pub fn resolve_url(flag: Option<&str>) -> String {
    let url = match flag {
        Some(u) => u.to_string(),
        None => std::env::var(URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_URL.to_string()),
    };
    url.trim().trim_end_matches('/').to_string()
}

/// Talks to one relay with one admin token.
pub struct AdminClient {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.base)
            .field("token", &"***")
            .finish()
    }
}

enum Method {
    Get,
    Post,
    Delete,
}

/// `--cacert` if given, else `HOOKRELAY_CACERT`.
pub fn resolve_cacert(flag: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf).or_else(|| {
        std::env::var_os(CACERT_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

impl AdminClient {
    pub fn new(base: &str, token: String) -> AdminClient {
        AdminClient::with_roots(base, token, ureq::tls::RootCerts::PlatformVerifier)
    }

    /// A client that trusts only the CA certificates in `cacert` for HTTPS, as `curl --cacert`
    /// does: for a relay whose certificate comes from the office's own CA.
    pub fn with_cacert(
        base: &str,
        token: String,
        cacert: &Path,
    ) -> Result<AdminClient, ClientError> {
        let bad = |reason: String| ClientError::CaFile {
            path: cacert.to_path_buf(),
            reason,
        };
        let pem = std::fs::read(cacert).map_err(|e| bad(e.to_string()))?;
        let certs = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("it holds no PEM certificate".into()));
        }
        Ok(AdminClient::with_roots(
            base,
            token,
            ureq::tls::RootCerts::new_with_certs(&certs),
        ))
    }

    fn with_roots(base: &str, token: String, roots: ureq::tls::RootCerts) -> AdminClient {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(roots)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        AdminClient {
            agent,
            base: base.trim_end_matches('/').to_string(),
            token,
        }
    }

    /// The relay's address, for messages.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.json(Method::Get, path)
    }

    pub fn post(&self, path: &str) -> Result<Value, ClientError> {
        self.json(Method::Post, path)
    }

    pub fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.json(Method::Delete, path)
    }

    /// GETs `path` and copies the answer's body as it arrives into `out` (for JSON lines).
    pub fn get_to(&self, path: &str, out: &mut dyn std::io::Write) -> Result<(), ClientError> {
        let mut resp = self.send(Method::Get, path)?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let text = read_text(&mut resp, &self.url(path))?;
            return Err(api_error(status, &text));
        }
        let mut reader = resp.body_mut().as_reader();
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ClientError::Unreachable {
                        url: self.url(path),
                        reason: e.to_string(),
                    })
                }
            };
            out.write_all(&buf[..n]).map_err(ClientError::Output)?;
        }
        out.flush().map_err(ClientError::Output)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn send(
        &self,
        method: Method,
        path: &str,
    ) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        let url = self.url(path);
        let auth = format!("Bearer {}", self.token);
        let result = match method {
            Method::Get => self.agent.get(&url).header("Authorization", &auth).call(),
            Method::Delete => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            Method::Post => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_empty(),
        };
        result.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        })
    }

    fn json(&self, method: Method, path: &str) -> Result<Value, ClientError> {
        let mut resp = self.send(method, path)?;
        let status = resp.status().as_u16();
        let text = read_text(&mut resp, &self.url(path))?;
        if status >= 400 {
            return Err(api_error(status, &text));
        }
        serde_json::from_str(&text).map_err(|e| ClientError::BadAnswer {
            url: self.url(path),
            reason: e.to_string(),
        })
    }
}

fn read_text(
    resp: &mut ureq::http::Response<ureq::Body>,
    url: &str,
) -> Result<String, ClientError> {
    resp.body_mut()
        .with_config()
        .limit(1 << 30)
        .lossy_utf8(true)
        .read_to_string()
        .map_err(|e| ClientError::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
        })
}

/// The server's `{"error","type"}` as a [`ClientError`]; token trouble gets a hint.
fn api_error(status: u16, text: &str) -> ClientError {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let message = match body["error"].as_str() {
        Some(m) => m.to_string(),
        None if text.trim().is_empty() => "(no message)".to_string(),
        None => text.trim().chars().take(300).collect(),
    };
    let kind = body["type"].as_str().unwrap_or("");
    if matches!(kind, "missing_token" | "invalid_token" | "forbidden") || status == 401 {
        ClientError::Token { status, message }
    } else {
        ClientError::Api { status, message }
    }
}

/// Builds a query string (with the leading `?`) from the pairs that have a value.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        if let Some(v) = v {
            s.append_pair(k, v);
            any = true;
        }
    }
    if any {
        format!("?{}", s.finish())
    } else {
        String::new()
    }
}

/// Whether a dead letter from `GET /v1/dead-letters` passes `--region` and `--reason` the way
/// the bulk replay endpoint filters (region exact, reason a case-insensitive substring).
pub fn dead_letter_matches(d: &Value, region: Option<&str>, reason: Option<&str>) -> bool {
    let region_ok = region.map_or(true, |r| {
        d["target"].as_str() == Some(&format!("region {r}"))
    });
    let reason_ok = reason.map_or(true, |want| {
        d["reason"]
            .as_str()
            .is_some_and(|got| got.to_lowercase().contains(&want.to_lowercase()))
    });
    region_ok && reason_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries_skip_missing_values_and_escape() {
        assert_eq!(query(&[("a", None)]), "");
        assert_eq!(
            query(&[("a", Some("x y&z".into())), ("b", None)]),
            "?a=x+y%26z"
        );
    }

    #[test]
    fn token_errors_get_a_hint_and_others_show_the_message() {
        let e = api_error(
            403,
            r#"{"error":"the bearer token is not valid here","type":"invalid_token"}"#,
        );
        assert!(e.to_string().contains(TOKEN_ENV), "{e}");
        let e = api_error(404, r#"{"error":"no dead letter 7","type":"not_found"}"#);
        assert_eq!(e.to_string(), "the relay answered 404: no dead letter 7");
    }

    #[test]
    fn the_debug_form_hides_the_token() {
        let c = AdminClient::new("http://x", "sekrit".into());
        assert!(!format!("{c:?}").contains("sekrit"));
    }

    #[test]
    fn dead_letters_filter_like_the_bulk_endpoint() {
        let d = json!({"target": "region EU", "reason": "Slack said 400 invalid_blocks"});
        assert!(dead_letter_matches(&d, Some("EU"), Some("INVALID_BLOCKS")));
        assert!(!dead_letter_matches(&d, Some("UK"), None));
        assert!(!dead_letter_matches(&d, None, Some("rate")));
    }
}
