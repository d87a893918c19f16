//! `hookrelay check-config`: validates the config and prints what it sets up (each source and its
//! routing steps, each region, unmapped values), and with `--online` asks Slack about each bot.

use std::process::ExitCode;

use crate::config::Settings;
use crate::sources::SourceKind;

pub(super) fn check_config(path: &std::path::Path, online: bool) -> ExitCode {
    // Written once at the end, and a closed pipe (`| head`) is not an error worth a panic.
    let mut out = String::new();
    macro_rules! outln {
        ($buf:expr, $($arg:tt)*) => {{
            use std::fmt::Write as _;
            let _ = writeln!($buf, $($arg)*);
        }};
    }
    match Settings::load(path) {
        Ok(s) => {
            outln!(out, "{}: valid", path.display());
            outln!(
                out,
                "listen {} · store {} · {} workers",
                s.server.listen,
                s.store.path.display(),
                s.delivery.workers
            );
            if !tls_lines(&s, &mut out) {
                use std::io::Write as _;
                let _ = std::io::stdout().write_all(out.as_bytes());
                return ExitCode::FAILURE;
            }
            for (name, src) in &s.sources {
                let auth = if src.token.is_some() {
                    "bearer token required"
                } else {
                    "no token"
                };
                let path = match src.kind {
                    SourceKind::Rainforest => "POST /events, GET /integrations".to_string(),
                    _ => format!("POST /hooks/{name}"),
                };
                outln!(
                    out,
                    "source {name}: {path}, kind {}, {auth}",
                    src.kind.as_str()
                );
                for (i, step) in crate::routing::describe(&s, name).iter().enumerate() {
                    outln!(out, "  {}. {step}", i + 1);
                }
            }
            for (name, r) in &s.regions {
                let mut countries: Vec<&str> = s
                    .routing
                    .countries
                    .iter()
                    .filter(|(_, reg)| *reg == name)
                    .map(|(c, _)| c.as_str())
                    .collect();
                countries.sort_unstable();
                let placeholder = if r.target.is_placeholder() {
                    " (placeholder: messages are queued, not sent, until a real URL is set)"
                } else {
                    ""
                };
                outln!(
                    out,
                    "region {name}: {}{placeholder} · {}/{:?} burst {} · countries {}",
                    r.target,
                    r.rate.count,
                    r.rate.per,
                    r.burst,
                    countries.join(", ")
                );
            }
            match &s.routing.default_region {
                Some(d) => outln!(out, "unmapped {} values go to region {d}", s.routing.field),
                None => outln!(
                    out,
                    "unmapped {} values are refused with 422",
                    s.routing.field
                ),
            }
            let mut code = ExitCode::SUCCESS;
            if online {
                match crate::slack::online_check::check(&s) {
                    Ok(report) => {
                        for line in &report.lines {
                            outln!(out, "{line}");
                        }
                        if !report.ok {
                            outln!(out, "online check: some regions cannot post (see above)");
                            code = ExitCode::FAILURE;
                        }
                    }
                    Err(e) => {
                        outln!(out, "online check: {e}");
                        code = ExitCode::FAILURE;
                    }
                }
            }
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(out.as_bytes());
            code
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The TLS part: the certificate and its dates, or why plain HTTP is a risk here. False when the
/// files cannot be served (the relay would not start).
fn tls_lines(s: &Settings, out: &mut String) -> bool {
    use std::fmt::Write as _;
    let Some(tls) = &s.server.tls else {
        if !s.server.listens_on_loopback() {
            let _ = writeln!(
                out,
                "warning: listen {} is reachable from the network over plain HTTP (no server.tls_cert); webhooks cross it unencrypted",
                s.server.listen
            );
        }
        return true;
    };
    match crate::tls::check(tls, crate::tls::unix_now()) {
        Ok((info, warnings)) => {
            let _ = writeln!(
                out,
                "tls: {} for {} · issued by {} · valid until {} · {} certificate(s) in {}",
                info.subject,
                info.names.join(", "),
                info.issuer,
                info.not_after_text(),
                info.chain_len,
                tls.cert.display()
            );
            if let Some(ca) = &tls.client_ca {
                let _ = writeln!(
                    out,
                    "tls: webhooks need a client certificate from {} (403 without one; Slack's signed Request URL, health checks and the admin API need none)",
                    ca.display()
                );
            }
            for w in warnings {
                let _ = writeln!(out, "warning: {w}");
            }
            true
        }
        Err(e) => {
            let _ = writeln!(out, "error: TLS: {e}");
            false
        }
    }
}
