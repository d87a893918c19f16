//! HTTPS on the real binary: `curl --cacert` posts a webhook, SIGHUP (`systemctl reload`) serves
//! a renewed certificate, and `check-config` checks the pair and warns before it expires.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::binary::{wait_until, Harness, Relay, BIN};
use crate::tls_support::{install, server_lines, Ca};

/// `curl` over HTTPS trusting `ca_file`; returns its exit code and what it wrote (the status
/// code last).
fn curl(ca_file: &Path, url: &str, body: Option<&str>) -> (i32, String) {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "10", "--cacert"]).arg(ca_file);
    if let Some(body) = body {
        c.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
    }
    c.args(["-w", "\n%{http_code}", url]);
    let out: Output = c.output().expect("curl runs (install curl)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn tls_harness(dir_edit: impl FnOnce(&Path) -> String) -> Harness {
    let probe = tempfile::tempdir().expect("temp dir");
    let lines = dir_edit(probe.path());
    let mut h = Harness::new(&[]);
    // The files live in the harness's own dir: move them there and point the config at them.
    let lines = lines.replace(
        &probe.path().display().to_string(),
        &h.dir.path().display().to_string(),
    );
    for entry in std::fs::read_dir(probe.path())
        .expect("probe dir")
        .flatten()
    {
        std::fs::copy(entry.path(), h.dir.path().join(entry.file_name())).expect("copy");
    }
    h.edit_config("[server]\n", &format!("[server]\n{lines}"));
    h
}

#[test]
fn curl_posts_over_https_to_the_real_binary_and_sighup_serves_a_renewed_certificate() {
    let ca = Ca::new("Office CA 2026");
    let next_ca = Ca::new("Office CA 2027");
    let h = tls_harness(|dir| {
        let (cert, key) = install(dir, &ca.server("relay.example.com"));
        server_lines(&cert, &key, None)
    });
    let ca_file = h.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write CA");
    let next_ca_file = h.dir.path().join("next-ca.pem");
    std::fs::write(&next_ca_file, next_ca.pem()).expect("write CA");
    let port = h.port();
    let base = format!("https://localhost:{port}");
    let mut relay = Relay::spawn(&h.config_path(), h.dir.path(), 1, port, &[], None);
    wait_until(
        "the relay to answer over HTTPS",
        Duration::from_secs(30),
        || {
            assert!(
                relay.child.try_wait().expect("try_wait").is_none(),
                "{}",
                relay.stderr()
            );
            curl(&ca_file, &format!("{base}/healthz"), None).0 == 0
        },
    );

    let body = crate::helpers::opportunity("006CURL", "UK").to_string();
    let (code, out) = curl(&ca_file, &format!("{base}/hooks/salesforce"), Some(&body));
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("\n202"), "{out}");
    assert!(out.contains("\"status\":\"accepted\""), "{out}");
    let got = h.slack.wait_for("uk", 1);
    assert_eq!(got[0].crm_id().as_deref(), Some("006CURL"));
    // Plain HTTP to the HTTPS port is not answered as HTTP.
    let plain = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "000");

    // The operator commands reach it with --cacert (or HOOKRELAY_CACERT), as curl does.
    let cli = |extra: &[&str]| {
        Command::new(BIN)
            .args(["status", "--url", &base])
            .args(extra)
            .env("HOOKRELAY_TOKEN", crate::helpers::ADMIN_TOKEN)
            .env_remove("HOOKRELAY_CACERT")
            .output()
            .expect("the CLI runs")
    };
    let ca_arg = ca_file.display().to_string();
    let out = cli(&["--cacert", &ca_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("UK"));
    let out = cli(&[]);
    assert!(!out.status.success(), "a CA nobody trusts was accepted");
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not reach the relay"));

    install(h.dir.path(), &next_ca.server("relay.example.com"));
    relay.signal(libc::SIGHUP);
    wait_until(
        "the renewed certificate to be served",
        Duration::from_secs(10),
        || curl(&next_ca_file, &format!("{base}/healthz"), None).0 == 0,
    );
    let (code, out) = curl(&ca_file, &format!("{base}/healthz"), None);
    assert_eq!(code, 60, "the old certificate is still served: {out}");
    let log = relay.stderr();
    assert!(
        log.contains("Serving the renewed TLS certificate on SIGHUP"),
        "{log}"
    );
    assert!(
        relay.child.try_wait().expect("try_wait").is_none(),
        "SIGHUP ended the relay"
    );
    relay.terminate(Duration::from_secs(20));
}

fn check_config(config: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(config)
        .output()
        .expect("check-config runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn check_config_checks_the_pair_and_warns_before_the_certificate_expires() {
    let ca = Ca::new("Office CA");
    let soon = time::OffsetDateTime::now_utc() + time::Duration::hours(5 * 24 + 12);
    let expiring = ca.issue("relay.example.com", &["relay.example.com"], |p| {
        p.not_after = soon
    });
    let h = tls_harness(|dir| {
        let (cert, key) = install(dir, &expiring);
        server_lines(&cert, &key, None)
    });
    let (ok, out) = check_config(&h.config_path());
    assert!(ok, "{out}");
    assert!(
        out.contains("tls: CN=relay.example.com for relay.example.com · issued by CN=Office CA"),
        "{out}"
    );
    assert!(out.contains("expires in 5 days"), "{out}");

    // A key that is not the certificate's: refused by check-config and by serve.
    let other = ca.server("relay.example.com");
    std::fs::write(h.dir.path().join("privkey.pem"), other.key_pem).expect("write key");
    let (ok, out) = check_config(&h.config_path());
    assert!(!ok, "{out}");
    assert!(out.contains("error: TLS: the private key in"), "{out}");
    assert!(out.contains("does not belong to the certificate"), "{out}");
    let served = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(h.config_path())
        .env("RUST_LOG", "info")
        .output()
        .expect("serve runs");
    assert!(!served.status.success());
    let log = String::from_utf8_lossy(&served.stderr);
    assert!(
        log.contains("cannot serve HTTPS: the private key in"),
        "{log}"
    );

    // After the server's certificate, one that did not issue it: out of order.
    let leaf = ca.server("relay.example.com");
    std::fs::write(h.dir.path().join("privkey.pem"), &leaf.key_pem).expect("write key");
    std::fs::write(
        h.dir.path().join("fullchain.pem"),
        format!("{}{}", leaf.cert_pem, Ca::new("Unrelated CA").pem()),
    )
    .expect("write chain");
    let (ok, out) = check_config(&h.config_path());
    assert!(!ok, "{out}");
    assert!(out.contains("is out of order: certificate 1 was issued by CN=Office CA, but the next one is CN=Unrelated CA"), "{out}");
    std::fs::write(
        h.dir.path().join("fullchain.pem"),
        format!("{}{}", leaf.cert_pem, ca.pem()),
    )
    .expect("write chain");
    let (ok, out) = check_config(&h.config_path());
    assert!(ok, "{out}");
    assert!(out.contains("2 certificate(s)"), "{out}");
}

#[test]
fn check_config_warns_about_plain_http_on_the_network() {
    let mut h = Harness::new(&[]);
    let (ok, out) = check_config(&h.config_path());
    assert!(ok, "{out}");
    assert!(!out.contains("plain HTTP"), "loopback is fine: {out}");
    h.edit_config("listen = \"127.0.0.1:", "listen = \"0.0.0.0:");
    let (ok, out) = check_config(&h.config_path());
    assert!(ok, "a warning, not an error: {out}");
    assert!(
        out.contains("over plain HTTP (no server.tls_cert)"),
        "{out}"
    );
}
