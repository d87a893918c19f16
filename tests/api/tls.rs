//! HTTPS on the listener: a real TLS client gets 202, plain HTTP and TLS 1.1 are refused, client
//! certificates are checked, and a renewed certificate reaches new connections while an open
//! request on the old one completes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::binary::wait_until;
use crate::fake_slack::FakeSlack;
use crate::helpers::{config, opportunity, spawn_with, TestApp, ADMIN_TOKEN};
use crate::tls_support::{agent, install, server_lines, write_atomically, Ca, Issued, RawTls};

/// A relay serving `issued` (from files in its temp dir), with `extra` appended to the config.
struct TlsApp {
    app: TestApp,
    port: u16,
    dir: Arc<tempfile::TempDir>,
}

fn spawn_tls(issued: &Issued, client_ca: Option<&Ca>, edits: &[(&str, &str)]) -> TlsApp {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let (cert, key) = install(dir.path(), issued);
    let ca_path = client_ca.map(|ca| {
        let path = dir.path().join("client-ca.pem");
        std::fs::write(&path, ca.pem()).expect("write client CA");
        path
    });
    let mut text = config(&slack, &dir.path().join("store"));
    text = text.replacen(
        "[server]\n",
        &format!(
            "[server]\n{}client_body_timeout = \"30s\"\n",
            server_lines(&cert, &key, ca_path.as_deref())
        ),
        1,
    );
    for (from, to) in edits {
        assert!(text.contains(from), "the config has no {from:?}");
        text = text.replacen(from, to, 1);
    }
    let app = spawn_with(&text, slack, Arc::clone(&dir));
    let port = app
        .address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port in the address");
    TlsApp { app, port, dir }
}

impl TlsApp {
    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// POSTs an opportunity over HTTPS; returns the status and JSON answer.
    fn post(
        &self,
        agent: &ureq::Agent,
        source: &str,
        id: &str,
    ) -> Result<(u16, Value), ureq::Error> {
        let mut resp = agent
            .post(&self.url(&format!("/hooks/{source}")))
            .header("Content-Type", "application/json")
            .send(opportunity(id, "UK").to_string())?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// The status page's HTML, with the admin token.
    fn page(&self, agent: &ureq::Agent) -> String {
        agent
            .get(&self.url("/"))
            .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
            .call()
            .expect("the page answers")
            .body_mut()
            .read_to_string()
            .expect("the page's HTML")
    }

    fn status(&self, agent: &ureq::Agent) -> Value {
        let text = agent
            .get(&self.url("/v1/status"))
            .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
            .call()
            .expect("status answers")
            .body_mut()
            .read_to_string()
            .expect("status body");
        serde_json::from_str(&text).expect("status is JSON")
    }
}

#[test]
fn a_webhook_over_https_is_accepted_and_the_certificate_is_reported() {
    let ca = Ca::new("Test Office CA");
    let issued = ca.server("relay.example.com");
    let t = spawn_tls(&issued, None, &[]);
    let https = agent(&ca, None);
    let (status, body) = t.post(&https, "salesforce", "006A").expect("HTTPS works");
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    let got = t.app.slack.wait_for("uk", 1);
    assert_eq!(got[0].crm_id().as_deref(), Some("006A"));

    let status = t.status(&https);
    assert_eq!(status["tls"]["subject"], "CN=relay.example.com");
    assert_eq!(status["tls"]["issuer"], "CN=Test Office CA");
    assert_eq!(
        status["tls"]["names"],
        serde_json::json!(["localhost", "127.0.0.1"])
    );
    assert!(status["tls"]["reload_refused"].is_null());
    let page = t.page(&https);
    assert!(
        page.contains("<span class=\"badge\">https</span> CN=relay.example.com"),
        "{page}"
    );
    assert!(!page.contains("tls-refused"));
    let not_after = status["tls"]["not_after_unix"]
        .as_i64()
        .expect("expiry as a number");

    let metrics = https
        .get(&t.url("/metrics"))
        .call()
        .expect("metrics answer")
        .body_mut()
        .read_to_string()
        .expect("metrics text");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("hookrelay_tls_cert_expiry_timestamp_seconds{"))
        .unwrap_or_else(|| panic!("no expiry metric in:\n{metrics}"));
    assert!(line.ends_with(&format!(" {not_after}")), "{line}");
    t.app.stop();
}

#[test]
fn plain_http_to_the_tls_port_is_refused_and_nothing_is_stored() {
    let ca = Ca::new("Test Office CA");
    let t = spawn_tls(&ca.server("relay"), None, &[]);
    let body = opportunity("006PLAIN", "UK").to_string();
    let mut tcp = TcpStream::connect(("127.0.0.1", t.port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        tcp,
        "POST /hooks/salesforce HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send plain HTTP");
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "a plain HTTP request was answered: {}",
        String::from_utf8_lossy(&got)
    );
    // The next webhook, over HTTPS, is the first one stored.
    let (status, answer) = t
        .post(&agent(&ca, None), "salesforce", "006TLS")
        .expect("HTTPS works");
    assert_eq!(status, 202);
    assert_eq!(
        answer["id"], "1",
        "the plain request left something behind: {answer}"
    );
    t.app.stop();
}

/// A ClientHello offering only `version` (no supported_versions extension, so nothing later),
/// with everything else a TLS 1.2 server needs to answer it: an ECDHE-ECDSA-GCM suite for the
/// test's P-256 certificate, groups, signature schemes, extended master secret.
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut hello = version.to_vec();
    hello.extend([0x42u8; 32]);
    hello.push(0);
    hello.extend([0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2f]);
    hello.extend([0x01, 0x00]);
    let extensions: Vec<u8> = [
        &[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17][..],
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00],
        &[
            0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,
        ],
        &[0x00, 0x17, 0x00, 0x00],
        &[0xff, 0x01, 0x00, 0x01, 0x00],
    ]
    .concat();
    hello.extend(
        u16::try_from(extensions.len())
            .expect("small")
            .to_be_bytes(),
    );
    hello.extend(extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend(u16::try_from(hello.len()).expect("small").to_be_bytes());
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(u16::try_from(handshake.len()).expect("small").to_be_bytes());
    record.extend(handshake);
    record
}

/// Sends a ClientHello and returns the first bytes the server answers with.
fn answer_to(port: u16, hello: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    tcp.write_all(hello).expect("send the hello");
    let mut got = vec![0u8; 7];
    let n = tcp.read(&mut got).unwrap_or(0);
    got.truncate(n);
    got
}

#[test]
fn tls_1_1_is_refused_while_1_2_and_1_3_are_served() {
    let ca = Ca::new("Test Office CA");
    let issued = ca.server("relay");
    let t = spawn_tls(&issued, None, &[]);
    // The same hello as TLS 1.2 gets a ServerHello: the version alone makes the difference.
    let tls12 = answer_to(t.port, &client_hello([0x03, 0x03]));
    assert_eq!(
        tls12.first(),
        Some(&0x16),
        "no ServerHello for TLS 1.2: {tls12:?}"
    );
    let tls11 = answer_to(t.port, &client_hello([0x03, 0x02]));
    assert_ne!(
        tls11.first(),
        Some(&0x16),
        "the server answered TLS 1.1 with a handshake: {tls11:?}"
    );
    if !tls11.is_empty() {
        // A fatal alert (level 2); rustls says protocol_version (70).
        assert_eq!(
            (tls11[0], tls11.get(5)),
            (0x15, Some(&2)),
            "expected a fatal alert: {tls11:?}"
        );
    }
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let conn = RawTls::connect_with(t.port, &ca, &[version]).expect("handshake");
        assert_eq!(conn.served(), Some(issued.der.clone()));
        assert_eq!(conn.stream.conn.protocol_version(), Some(version.version));
    }
    t.app.stop();
}

#[test]
fn webhooks_need_a_client_certificate_from_the_configured_ca_naming_the_source_s_sender() {
    let ca = Ca::new("Test Office CA");
    let clients = Ca::new("CRM Client CA");
    let other = Ca::new("Somebody Else CA");
    let t = spawn_tls(
        &ca.server("relay"),
        Some(&clients),
        &[(
            "[sources.secured]\n",
            "[sources.secured]\nclient_cert_subject = \"CN=crm.example.com, O=Example CRM\"\n",
        )],
    );
    let crm = clients.client("crm.example.com", "Example CRM");
    let (status, _) = t
        .post(&agent(&ca, Some(&crm)), "salesforce", "006C1")
        .expect("accepted");
    assert_eq!(status, 202);

    let foreign = other.client("crm.example.com", "Example CRM");
    assert!(
        t.post(&agent(&ca, Some(&foreign)), "salesforce", "006C2")
            .is_err(),
        "a certificate from another CA was let in"
    );
    // Without a certificate: webhooks get 403 with the reason; what needs none still answers.
    let (status, body) = t
        .post(&agent(&ca, None), "salesforce", "006C3")
        .expect("answered");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "client_certificate");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("server.tls_client_ca"),
        "{body}"
    );
    let health = agent(&ca, None)
        .get(&t.url("/healthz"))
        .call()
        .expect("health answers");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        t.status(&agent(&ca, None))["tls"]["client_certificates"],
        true
    );

    // The right CA, but not the sender this source names: 403 with a JSON reason.
    let intruder = clients.client("shop.example.com", "Example Shop");
    let mut resp = agent(&ca, Some(&intruder))
        .post(&t.url("/hooks/secured"))
        .header(
            "Authorization",
            &format!("Bearer {}", crate::helpers::TOKEN),
        )
        .header("Content-Type", "application/json")
        .send(opportunity("006C4", "UK").to_string())
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 403);
    let text = resp.body_mut().read_to_string().expect("body");
    let body: Value = serde_json::from_str(&text).expect("JSON error");
    assert_eq!(body["type"], "client_certificate", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("CN=shop.example.com"),
        "{body}"
    );
    let mut resp = agent(&ca, Some(&crm))
        .post(&t.url("/hooks/secured"))
        .header(
            "Authorization",
            &format!("Bearer {}", crate::helpers::TOKEN),
        )
        .header("Content-Type", "application/json")
        .send(opportunity("006C5", "UK").to_string())
        .expect("answered");
    assert_eq!(
        resp.status().as_u16(),
        202,
        "{:?}",
        resp.body_mut().read_to_string()
    );
    t.app.stop();
}

#[test]
fn a_renewed_certificate_reaches_new_connections_while_an_open_request_completes() {
    let ca = Ca::new("Test Office CA");
    let old = ca.server("relay (old)");
    let t = spawn_tls(&old, None, &[]);
    let body = opportunity("006SLOW", "UK").to_string();
    let (first, rest) = body.as_bytes().split_at(10);
    let mut slow = RawTls::connect(t.port, &ca).expect("handshake");
    assert_eq!(slow.served(), Some(old.der.clone()));
    slow.send(
        format!(
            "POST /hooks/salesforce HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    slow.send(first);

    let renewed = ca.server("relay (renewed)");
    install(t.dir.path(), &renewed);
    wait_until(
        "a new connection to get the renewed certificate",
        Duration::from_secs(20),
        || RawTls::connect(t.port, &ca).ok().and_then(|c| c.served()) == Some(renewed.der.clone()),
    );
    slow.send(rest);
    let answer = slow.read_answer();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert_eq!(
        t.status(&agent(&ca, None))["tls"]["subject"],
        "CN=relay (renewed)"
    );
    t.app.stop();
}

#[test]
fn a_broken_new_pair_is_refused_and_the_old_one_stays_in_use() {
    let ca = Ca::new("Test Office CA");
    let old = ca.server("relay");
    let t = spawn_tls(&old, None, &[]);
    // A new certificate with the old key: the pair does not match.
    let renewed = ca.server("relay (renewed)");
    write_atomically(
        &t.dir.path().join("fullchain.pem"),
        renewed.cert_pem.as_bytes(),
    );
    let https = agent(&ca, None);
    let mut status = Value::Null;
    wait_until(
        "the status to report the refused reload",
        Duration::from_secs(20),
        || {
            status = t.status(&https);
            !status["tls"]["reload_refused"].is_null()
        },
    );
    let why = status["tls"]["reload_refused"]["error"]
        .as_str()
        .unwrap_or("");
    assert!(why.contains("does not belong to the certificate"), "{why}");
    assert_eq!(status["tls"]["subject"], "CN=relay");
    let page = t.page(&https);
    assert!(page.contains("id=\"tls-refused\""), "{page}");
    assert!(
        page.contains("does not belong to the certificate"),
        "{page}"
    );
    let conn = RawTls::connect(t.port, &ca).expect("handshake");
    assert_eq!(conn.served(), Some(old.der.clone()));
    let (code, _) = t.post(&https, "salesforce", "006B").expect("still served");
    assert_eq!(code, 202);

    // The matching key arrives: the renewed pair is served and the refusal is gone.
    write_atomically(
        &t.dir.path().join("privkey.pem"),
        renewed.key_pem.as_bytes(),
    );
    wait_until(
        "the renewed pair to be served",
        Duration::from_secs(20),
        || RawTls::connect(t.port, &ca).ok().and_then(|c| c.served()) == Some(renewed.der.clone()),
    );
    assert!(t.status(&https)["tls"]["reload_refused"].is_null());
    t.app.stop();
}
