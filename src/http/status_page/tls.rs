//! The status page's word on HTTPS, from `/v1/status`'s `tls`: the certificate served and when
//! it expires, with an alert when it expires within 14 days or a renewed one was refused.

use std::fmt::Write as _;

use serde_json::Value;

use super::html_escape;

/// Days left under which the page warns, as `check-config` does.
const WARN_DAYS: i64 = 14;

/// Appends the notes to `h`; nothing for a relay serving plain HTTP.
pub(super) fn render(h: &mut String, status: &Value) {
    let tls = &status["tls"];
    if tls.is_null() {
        return;
    }
    let days = tls["days_left"].as_i64().unwrap_or(0);
    if let Some(why) = tls["reload_refused"]["error"].as_str() {
        let _ = write!(
            h,
            "<p class=\"note problem\" role=\"alert\" id=\"tls-refused\"><span class=\"badge bad\">tls</span> \
             The renewed certificate was refused, so the previous one is still served: {}</p>",
            html_escape(why)
        );
    }
    let class = if days < WARN_DAYS {
        "note problem"
    } else {
        "note"
    };
    let _ = write!(
        h,
        "<p class=\"{class}\" id=\"tls\"><span class=\"badge{badge}\">https</span> {subject} \
         <span class=\"muted\">issued by</span> {issuer} · valid until <time>{until}</time> ({days} days left)</p>",
        badge = if days < WARN_DAYS { " bad" } else { "" },
        subject = html_escape(tls["subject"].as_str().unwrap_or("")),
        issuer = html_escape(tls["issuer"].as_str().unwrap_or("")),
        until = html_escape(tls["not_after"].as_str().unwrap_or("")),
    );
}
