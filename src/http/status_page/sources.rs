//! The status page's "Sources" table: per source the last webhook taken and the last refused,
//! when and from which address, from `/v1/status`'s `sources`.

use std::fmt::Write as _;

use serde_json::Value;

use super::{html_escape, when};

/// Appends the section to `h`; `status` is `/v1/status`'s JSON, `now` the page's time (ms).
pub(super) fn render(h: &mut String, status: &Value, now: u64) {
    h.push_str("<section><h2>Sources</h2>");
    let sources = status["sources"].as_object().filter(|s| !s.is_empty());
    let Some(sources) = sources else {
        h.push_str("<p class=\"muted\">No sources are configured.</p></section>");
        return;
    };
    h.push_str(
        "<table id=\"sources\"><thead><tr><th>Source</th><th>Last accepted</th>\
         <th>Last refused</th></tr></thead><tbody>",
    );
    for (name, s) in sources {
        let accepted = seen(&s["last_accepted"], now);
        let mut refused = seen(&s["last_refused"], now);
        if let Some(code) = s["last_refused"]["status"].as_u64() {
            let _ = write!(refused, " <span class=\"badge bad\">{code}</span>");
        }
        let _ = write!(
            h,
            "<tr data-source=\"{name}\"><td><b>{name}</b></td><td class=\"accepted\">{accepted}</td>\
             <td class=\"refused\">{refused}</td></tr>",
            name = html_escape(name),
        );
    }
    h.push_str("</tbody></table></section>");
}

/// `3m 12s ago from 203.0.113.7`, or "never".
fn seen(v: &Value, now: u64) -> String {
    let mut cell = when(v["at_ms"].as_u64(), now);
    if let Some(from) = v["from"].as_str() {
        let _ = write!(
            cell,
            " <span class=\"muted\">from</span> <code class=\"from\">{}</code>",
            html_escape(from)
        );
    }
    cell
}
