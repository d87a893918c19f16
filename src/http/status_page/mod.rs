//! `GET /`: the status page. One server-rendered HTML page with inline CSS and no external
//! assets: per region the queue depth, oldest pending age, last success and error and whether it is
//! paused; per source the last webhook taken and refused and their senders; the last 50
//! deliveries; the dead letters, each with a replay button.
//!
//! Access: an admin bearer token, or (with `[admin] local_status_page = true`) any request whose
//! sender is this machine. The sender is the peer, or, when the peer is one of
//! `server.trusted_proxies`, the address its `X-Forwarded-For` names (`http::sender`): a browser
//! on the same machine, straight or through a trusted proxy, is local; an outside browser
//! forwarded by a trusted proxy on this machine is not. A request that carries `Forwarded`, or
//! `X-Forwarded-For` from a peer that is not trusted, is never local: it came through a proxy
//! the relay was not told about (say an nginx on the same machine, left out of
//! `trusted_proxies`), which would otherwise make every visitor local.
//!
//! Replay: a browser opening the page from localhost sends no `Authorization` header, and the
//! replay endpoint (`POST /v1/dead-letters/{id}/replay`) stays admin-only, so a plain HTML form
//! posting there would be refused with 401. Each button therefore calls that endpoint with a small
//! inline script that sends the admin token: taken from the page's fragment (`/#token=…`, never sent
//! to the server or logged), else from this tab's session storage, else asked for once with a prompt.
//!
//! The page's fixed parts (the head with its CSS, the replay script) are in `assets.rs`; who counts
//! as local in `access.rs`; the Sources table in `sources.rs`; the HTTPS notes in `tls.rs`.

mod assets;

mod access;
mod sources;
mod tls;

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::admin::{admin, target_label, AdminError};
use super::hooks::IntakeState;
use crate::store::now_ms;
use crate::store::records::{Delivery, DeliveryState};
use assets::{HEAD, SCRIPT};

/// Dead letters listed on the page, newest first; the rest are counted and left to the API.
const MAX_DEAD_SHOWN: usize = 200;

/// Only inline styles and the inline replay script; fetches only to this relay.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

pub async fn page(
    req: HttpRequest,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    if let Err(e) = admin(&req, &state) {
        if !(state.settings.local_status_page && access::is_local(&req, &state.settings.server)) {
            return Err(e);
        }
    }
    let html = render(&state)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(html))
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A duration in seconds as people say it: `45s`, `3m 12s`, `2h 5m`, `3d 4h`.
fn human_age(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if secs >= 3600 {
        format!("{h}h {m}m")
    } else if secs >= 60 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// An epoch-milliseconds time in UTC, seconds precision: `2026-05-01 12:00:00 UTC`.
fn utc(ms: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}

/// `<time>` with the age as text and the UTC time as its tooltip, or a dash.
/// A region's digests since the start: how many, what they listed, the last one's size.
fn digests_cell(r: &Value, now: u64) -> String {
    let sent = r["digests"].as_u64().unwrap_or(0);
    if sent == 0 {
        let title = if r["digest_after_ms"].as_u64() == Some(0) {
            "Digests are off for this region (digest_after = \"0s\")"
        } else {
            "A burst the channel cannot post one by one within digest_after goes out as digests"
        };
        return format!("<span class=\"muted\" title=\"{title}\">none</span>");
    }
    format!(
        "{sent} <div class=\"muted\">{} notifications; last: {} {}</div>",
        r["digested"].as_u64().unwrap_or(0),
        r["last_digest_size"].as_u64().unwrap_or(0),
        when(r["last_digest_ms"].as_u64(), now)
    )
}

fn when(ms: Option<u64>, now: u64) -> String {
    match ms {
        Some(ms) => format!(
            "<time title=\"{t}\">{age} ago</time>",
            t = html_escape(&utc(ms)),
            age = human_age(now.saturating_sub(ms) / 1000)
        ),
        None => "<span class=\"muted\">never</span>".to_string(),
    }
}

/// `source/sender-id` and the one-line title of a notification, for the dead-letter table.
fn sender_label(state: &IntakeState, id: u64) -> Option<(String, String)> {
    let n = state.store.notification_as_applied(id).ok().flatten()?;
    let title = super::admin::title::title(&n, &state.settings.sources);
    Some(if n.external_id.is_empty() {
        (n.source, title)
    } else {
        (format!("{}/{}", n.source, n.external_id), title)
    })
}

fn render(state: &IntakeState) -> Result<String, AdminError> {
    // The recent attempts first: an attempt is listed only after its outcome reached the
    // queue counters and the region's news, so everything read after it includes it (read the
    // other way round, a page could list a delivery its region row does not count yet).
    let recent = state.metrics.recent();
    let status = super::admin::status::status_json(state)?;
    let now = now_ms();
    let admin_on = !state.settings.admin_tokens.is_empty();
    // Everything acknowledged, unless the applier waits for disk space: then what sled has,
    // since the page must render exactly then.
    let _ = state.store.sync_reads();
    let mut dead: Vec<Delivery> = state.store.dead_letters_as_applied()?;
    dead.sort_by_key(|d| {
        std::cmp::Reverse(match d.state {
            DeliveryState::Dead { at_ms, .. } => at_ms,
            _ => d.created_at_ms,
        })
    });
    let regions = status["regions"].as_array().cloned().unwrap_or_default();
    let num = |v: &Value| v.as_u64().unwrap_or(0);

    let mut h = String::with_capacity(16 * 1024);
    h.push_str(HEAD);
    let _ = write!(
        h,
        "<header><h1>hookrelay <span class=\"muted\">{version}</span></h1>\
         <p class=\"totals\"><span><b id=\"total-pending\">{pending}</b> pending</span>\
         <span><b id=\"total-dead\">{dead}</b> dead letters</span>\
         <span><b>{one_off}</b> queued for one-off webhooks</span>\
         <span class=\"muted\">as of <time>{at}</time> · <a href=\"\">refresh</a></span></p></header>",
        version = html_escape(status["version"].as_str().unwrap_or("")),
        pending = num(&status["pending"]),
        dead = dead.len(),
        one_off = num(&status["one_off_queue_depth"]),
        at = html_escape(&utc(now)),
    );

    // What stops intake or delivery (a full disk), first, where a passing operator sees it.
    for problem in status["store"]["problems"].as_array().into_iter().flatten() {
        let _ = write!(
            h,
            "<p class=\"note problem\" role=\"alert\"><span class=\"badge bad\">store</span> {}</p>",
            html_escape(problem.as_str().unwrap_or(""))
        );
    }

    tls::render(&mut h, &status);

    // Regions.
    h.push_str("<section><h2>Regions</h2>");
    if regions.is_empty() {
        h.push_str("<p class=\"muted\">No regions are configured.</p>");
    } else {
        h.push_str(
            "<table id=\"regions\"><thead><tr><th>Region</th><th>Webhook</th><th class=\"n\">Queue</th>\
             <th>Oldest pending</th><th>Last success</th><th class=\"n\">Digests</th><th>Last error</th><th>State</th></tr></thead><tbody>",
        );
        for r in &regions {
            let name = r["name"].as_str().unwrap_or("");
            let mut webhook = format!(
                "<code>{}</code>",
                html_escape(r["webhook"].as_str().unwrap_or(""))
            );
            if r["placeholder"].as_bool().unwrap_or(false) {
                webhook.push_str(
                    " <span class=\"badge warn\" title=\"Messages queue but nothing is sent until a real webhook URL is configured\">placeholder URL</span>",
                );
            }
            let oldest = match r["oldest_pending_seconds"].as_u64() {
                Some(s) => human_age(s),
                None => "<span class=\"muted\">–</span>".to_string(),
            };
            let error = match r["last_error"].as_str() {
                Some(e) => format!(
                    "{} <div class=\"err\">{}</div>",
                    when(r["last_error_ms"].as_u64(), now),
                    html_escape(e)
                ),
                None => when(r["last_error_ms"].as_u64(), now),
            };
            let paused = if r["paused"].as_bool().unwrap_or(false) {
                format!(
                    "<span class=\"badge bad\">paused</span> <div class=\"err\">{}</div>",
                    html_escape(r["pause_reason"].as_str().unwrap_or(""))
                )
            } else {
                "<span class=\"badge ok\">active</span>".to_string()
            };
            let _ = write!(
                h,
                "<tr data-region=\"{name}\"><td><b>{name}</b></td><td>{webhook}</td>\
                 <td class=\"n queue\">{depth}</td><td>{oldest}</td><td>{success}</td>\
                 <td class=\"n digests\">{digests}</td><td>{error}</td><td>{paused}</td></tr>",
                name = html_escape(name),
                depth = num(&r["queue_depth"]),
                success = when(r["last_success_ms"].as_u64(), now),
                digests = digests_cell(r, now),
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>");
    sources::render(&mut h, &status, now);

    // Dead letters.
    let _ = write!(
        h,
        "<section><h2>Dead letters <span class=\"muted\">({})</span></h2>",
        dead.len()
    );
    if dead.is_empty() {
        h.push_str(
            "<p class=\"muted\">None: every message was delivered or is still being tried.</p>",
        );
    } else {
        if !admin_on {
            h.push_str(
                "<p class=\"note\">Replay needs the admin API: set <code>[admin] tokens</code> in the config.</p>",
            );
        }
        h.push_str(
            "<table id=\"dead-letters\"><thead><tr><th>Died</th><th>Target</th><th>Notification</th>\
             <th class=\"n\">Attempts</th><th>Reason</th><th></th></tr></thead><tbody>",
        );
        for d in dead.iter().take(MAX_DEAD_SHOWN) {
            let (died, reason) = match &d.state {
                DeliveryState::Dead { at_ms, reason } => (Some(*at_ms), reason.as_str()),
                _ => (None, ""),
            };
            let (sender, title) = sender_label(state, d.notification_id).unwrap_or_default();
            let _ = write!(
                h,
                "<tr data-id=\"{id}\"><td>{died}</td><td>{target}</td>\
                 <td><code>{nid}</code> <span class=\"muted\">{sender}</span><br>{title}</td><td class=\"n\">{attempts}</td>\
                 <td class=\"err reason\">{reason}</td><td><button type=\"button\" class=\"replay\" \
                 data-id=\"{id}\"{disabled}>Replay</button> <span class=\"result\"></span></td></tr>",
                id = d.id,
                died = when(died, now),
                target = html_escape(&target_label(&d.region, d.url.as_deref())),
                nid = d.notification_id,
                sender = html_escape(&sender),
                title = html_escape(&title),
                attempts = d.attempts,
                reason = html_escape(reason),
                disabled = if admin_on { "" } else { " disabled" },
            );
        }
        h.push_str("</tbody></table>");
        if dead.len() > MAX_DEAD_SHOWN {
            let _ = write!(
                h,
                "<p class=\"muted\">{} older dead letters are not shown; see <code>GET /v1/dead-letters</code>.</p>",
                dead.len() - MAX_DEAD_SHOWN
            );
        }
        h.push_str(
            "<noscript><p class=\"note\">Replay buttons need JavaScript; without it use \
             <code>curl -X POST -H 'Authorization: Bearer TOKEN' http://HOST/v1/dead-letters/ID/replay</code>.</p></noscript>",
        );
    }
    h.push_str("</section>");

    // Recent deliveries.
    let _ = write!(
        h,
        "<section><h2>Last deliveries <span class=\"muted\">({} latest attempts, newest first)</span></h2>",
        recent.len()
    );
    if recent.is_empty() {
        h.push_str("<p class=\"muted\">No delivery attempts since the relay started.</p>");
    } else {
        h.push_str(
            "<table id=\"recent\"><thead><tr><th>When</th><th>Region</th><th>Notification</th>\
             <th>Outcome</th></tr></thead><tbody>",
        );
        for r in &recent {
            let sender = r
                .notification_id
                .parse::<u64>()
                .ok()
                .and_then(|id| sender_label(state, id))
                .map(|(sender, _)| sender)
                .unwrap_or_default();
            let class = match r.outcome.as_str() {
                "delivered" => "ok",
                "dead" | "region_paused" => "bad",
                _ => "warn",
            };
            let _ = write!(
                h,
                "<tr><td>{when}</td><td>{region}</td><td><code>{nid}</code> <span class=\"muted\">{sender}</span></td>\
                 <td><span class=\"badge {class}\">{outcome}</span></td></tr>",
                when = when(Some(r.at_ms), now),
                region = html_escape(&r.region),
                nid = html_escape(&r.notification_id),
                sender = html_escape(&sender),
                outcome = html_escape(&r.outcome),
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>");
    h.push_str(SCRIPT);
    h.push_str("</body></html>\n");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_five_characters() {
        assert_eq!(
            html_escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn ages_and_times_read_well() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(192), "3m 12s");
        assert_eq!(human_age(7500), "2h 5m");
        assert_eq!(human_age(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20 UTC");
    }
}
