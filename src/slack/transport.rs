//! Sends one payload to one target and reports what came back, without judging it: whether an
//! answer means "done", "retry" or "give up" is `delivery::policy`'s call.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::web_api::Method;
use crate::config::tokens::BotToken;
use crate::config::{DeliverySettings, WebhookUrl};

/// Slack's answers are a word or a small JSON object; anything longer is cut for the record.
const MAX_ANSWER_BYTES: u64 = 1024;
/// A Web API answer repeats the posted message (blocks and all) before the `ts` the relay
/// needs, so it is read whole up to a size no real answer reaches.
const MAX_API_ANSWER_BYTES: u64 = 256 * 1024;

/// What happened to one POST.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The target answered with a status.
    Status {
        /// HTTP status.
        code: u16,
        /// The body, shortened to `MAX_ANSWER_BYTES`.
        body: String,
        /// `Retry-After` in seconds, when the header held a number.
        retry_after: Option<Duration>,
    },
    /// No answer: refused, reset, timed out, TLS failure. A timeout may still have posted.
    NoAnswer(String),
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot read delivery.ca_file {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("delivery.ca_file {0} holds no PEM certificate")]
    NoCertificates(String),
}

/// The one HTTP agent all workers share: one connection pool, one TLS configuration.
pub struct Transport {
    /// ureq 3 agent, configured once: timeouts, no redirects, statuses returned as answers.
    agent: ureq::Agent,
}

impl Transport {
    pub fn new(settings: &DeliverySettings) -> Result<Transport, TransportError> {
        use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

        let roots = match &settings.ca_file {
            None => RootCerts::PlatformVerifier,
            Some(path) => {
                let shown = path.display().to_string();
                let pem = std::fs::read(path).map_err(|source| TransportError::CaFile {
                    path: shown.clone(),
                    source,
                })?;
                let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    return Err(TransportError::NoCertificates(shown));
                }
                RootCerts::new_with_certs(&certs)
            }
        };
        let config = ureq::Agent::config_builder()
            // ureq has no timeout by default; a hung Slack must not hold a worker forever.
            .timeout_global(Some(settings.timeout))
            // Slack's error word and Retry-After are in 4xx/5xx answers: read them, don't raise.
            .http_status_as_error(false)
            // A webhook never redirects; following one could lead the relay to internal hosts.
            .max_redirects(0)
            .max_idle_connections(settings.workers.max(1) * 2)
            .max_idle_connections_per_host(settings.workers.max(1))
            .proxy(ureq::Proxy::try_from_env())
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .user_agent(concat!("hookrelay/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Transport {
            agent: config.into(),
        })
    }

    /// POSTs (or, for a file target, appends) one JSON payload.
    pub fn send(&self, target: &WebhookUrl, payload: &[u8]) -> Answer {
        self.send_with_headers(target, payload, &[])
    }

    /// [`Transport::send`] with extra request headers (a requesting system's bearer token,
    /// an idempotency key); a file target has no headers.
    pub fn send_with_headers(
        &self,
        target: &WebhookUrl,
        payload: &[u8],
        headers: &[(&str, String)],
    ) -> Answer {
        match target {
            WebhookUrl::File(path) => append_line(path, payload),
            WebhookUrl::Http(_) => self.post(target, payload, headers),
        }
    }

    fn post(&self, target: &WebhookUrl, payload: &[u8], headers: &[(&str, String)]) -> Answer {
        let mut request = self.agent.post(target.expose());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        // ureq's error text can include the URL; replace it with the masked form.
        self.exchange(request, payload, MAX_ANSWER_BYTES)
            .map_err(|e| e.replace(target.expose(), &target.masked()))
            .unwrap_or_else(Answer::NoAnswer)
    }

    /// Calls a Web API method (`base` + method name) with JSON arguments and the bot token.
    pub fn call_api(&self, base: &str, method: Method, token: &BotToken, args: &Value) -> Answer {
        let request = self
            .agent
            .post(format!("{base}{}", method.name()))
            .header("Authorization", format!("Bearer {}", token.expose()));
        let payload = args.to_string();
        self.exchange(request, payload.as_bytes(), MAX_API_ANSWER_BYTES)
            .unwrap_or_else(Answer::NoAnswer)
    }

    /// Calls a read method (`auth.test`, `conversations.info`) with form fields: Slack takes
    /// JSON bodies only for its write methods.
    /// `bearer` is a bot token's or (for `apps.connections.open`) an app token's value;
    /// `timeout` shortens `delivery.timeout` for a call someone waits for.
    pub fn call_api_form(
        &self,
        base: &str,
        method: Method,
        bearer: &str,
        fields: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request = self.agent.post(format!("{base}{}", method.name()));
        if let Some(t) = timeout {
            request = request.config().timeout_global(Some(t)).build();
        }
        let sent = request
            .header("Authorization", format!("Bearer {bearer}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(body.as_bytes());
        match sent {
            Ok(response) => read_response(response, MAX_API_ANSWER_BYTES),
            Err(e) => Answer::NoAnswer(e.to_string()),
        }
    }

    /// Sends a JSON body and reads the answer: status, body (at most `limit` bytes) and
    /// Retry-After; `Err` with the client's error text when nothing came back.
    fn exchange(
        &self,
        request: ureq::RequestBuilder<ureq::typestate::WithBody>,
        payload: &[u8],
        limit: u64,
    ) -> Result<Answer, String> {
        let response = request
            .header("Content-Type", "application/json; charset=utf-8")
            .send(payload)
            .map_err(|e| e.to_string())?;
        Ok(read_response(response, limit))
    }
}

/// Status, Retry-After and the body (at most `limit` bytes) of an answer.
fn read_response(mut response: ureq::http::Response<ureq::Body>, limit: u64) -> Answer {
    let code = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut body = Vec::new();
    let _ = response
        .body_mut()
        .as_reader()
        .take(limit)
        .read_to_end(&mut body);
    Answer::Status {
        code,
        body: String::from_utf8_lossy(&body).trim().to_string(),
        retry_after,
    }
}

fn append_line(path: &Path, payload: &[u8]) -> Answer {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        let mut line = Vec::with_capacity(payload.len() + 1);
        line.extend_from_slice(payload);
        line.push(b'\n');
        // One write of the whole line so concurrent appends never interleave.
        file.write_all(&line)?;
        file.sync_data()
    };
    match write() {
        Ok(()) => Answer::Status {
            code: 200,
            body: "ok".into(),
            retry_after: None,
        },
        Err(e) => Answer::NoAnswer(format!("cannot append to {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn settings(extra: &str) -> DeliverySettings {
        let text = format!("[delivery]\ntimeout = \"2s\"\n{extra}\n");
        Settings::parse(&text).expect("valid").delivery
    }

    #[test]
    fn a_file_target_gets_one_json_line_per_payload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/uk.jsonl");
        let target = WebhookUrl::File(path.clone());
        let t = Transport::new(&settings("")).unwrap();
        for i in 0..2 {
            let answer = t.send(&target, format!("{{\"n\":{i}}}").as_bytes());
            assert_eq!(
                answer,
                Answer::Status {
                    code: 200,
                    body: "ok".into(),
                    retry_after: None
                }
            );
        }
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            "{\"n\":0}\n{\"n\":1}\n"
        );
    }

    #[test]
    fn an_unreachable_webhook_is_no_answer_and_the_error_hides_the_secret() {
        // Bind and drop a listener so the port is very likely closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target = WebhookUrl::parse(&format!(
            "http://127.0.0.1:{port}/services/T1/B1/SECRETPART"
        ))
        .unwrap();
        let answer = Transport::new(&settings("")).unwrap().send(&target, b"{}");
        match answer {
            Answer::NoAnswer(e) => assert!(!e.contains("SECRETPART"), "{e}"),
            other => panic!("expected no answer, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = Transport::new(&settings(&format!(
            "ca_file = {:?}",
            missing.display().to_string()
        )))
        .err()
        .expect("error");
        assert!(err.to_string().contains("nope.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let err = Transport::new(&settings(&format!(
            "ca_file = {:?}",
            empty.display().to_string()
        )))
        .err()
        .expect("error");
        assert!(matches!(err, TransportError::NoCertificates(_)), "{err}");
    }
}
