//! The plain tables the operator commands print from the admin API's JSON (`status`,
//! `notifications show|list`, `dead-letters list`), and the cell formats they share.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

/// Plain columns, each as wide as its widest cell, separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            l.push_str(cell);
            l.extend(std::iter::repeat(' ').take(pad));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, &mut headers.iter().copied());
    for row in rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) if s.is_empty() => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A millisecond timestamp as an RFC 3339 time (UTC, seconds).
pub fn when(ms: &Value) -> String {
    match ms.as_u64() {
        Some(ms) => {
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms))
                .to_string()
        }
        None => "-".to_string(),
    }
}

/// A millisecond timestamp as "3m ago".
pub fn ago(ms: &Value) -> String {
    match ms.as_u64() {
        Some(ms) => format!("{} ago", seconds(now_ms().saturating_sub(ms) / 1000)),
        None => "-".to_string(),
    }
}

/// Seconds, coarsely: "45s", "3m", "2h", "4d".
pub fn seconds(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn items(v: &Value) -> &[Value] {
    v["items"].as_array().map_or(&[], Vec::as_slice)
}

/// `GET /v1/status` as a table of regions and a summary line.
pub fn render_status(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["regions"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|r| {
            let paused = if r["paused"].as_bool() == Some(true) {
                match r["pause_reason"].as_str() {
                    Some(why) => format!("yes ({why})"),
                    None => "yes".to_string(),
                }
            } else {
                "no".to_string()
            };
            let webhook = if r["placeholder"].as_bool() == Some(true) {
                "(placeholder)".to_string()
            } else {
                text(&r["webhook"])
            };
            vec![
                text(&r["name"]),
                paused,
                text(&r["queue_depth"]),
                r["oldest_pending_seconds"]
                    .as_u64()
                    .map_or("-".to_string(), seconds),
                ago(&r["last_success_ms"]),
                match r["last_error_ms"].as_u64() {
                    Some(_) => format!("{}: {}", ago(&r["last_error_ms"]), text(&r["last_error"])),
                    None => "-".to_string(),
                },
                webhook,
            ]
        })
        .collect();
    let mut out = table(
        &[
            "REGION",
            "PAUSED",
            "QUEUED",
            "OLDEST",
            "LAST SUCCESS",
            "LAST ERROR",
            "WEBHOOK",
        ],
        &rows,
    );
    let _ = writeln!(
        out,
        "\npending {} · dead letters {} · one-off webhooks queued {} · hookrelay {}",
        text(&v["pending"]),
        text(&v["dead_letters"]),
        text(&v["one_off_queue_depth"]),
        text(&v["version"]),
    );
    out
}

/// `GET /v1/notifications/{id}`: the notification, then its deliveries.
pub fn render_notification(v: &Value) -> String {
    let mut out = String::new();
    let versions = v["versions"].as_array().map_or(0, Vec::len);
    let _ = writeln!(out, "notification {}", text(&v["id"]));
    let _ = writeln!(
        out,
        "  source       {} ({})",
        text(&v["source"]),
        text(&v["kind"])
    );
    let _ = writeln!(out, "  external id  {}", text(&v["external_id"]));
    let _ = writeln!(out, "  title        {}", text(&v["title"]));
    let _ = writeln!(out, "  received     {}", when(&v["received_at_ms"]));
    let _ = writeln!(out, "  state        {}", text(&v["state"]));
    let _ = writeln!(
        out,
        "  received     {} time(s), {versions} version(s)",
        text(&v["count"])
    );
    if let Some(events) = v["events"].as_array() {
        let decision = &v["decision"];
        if decision.is_null() {
            let _ = writeln!(out, "  decision     none yet");
        } else {
            let mut line = format!(
                "{} by {} ({}) at {}",
                text(&decision["verdict"]),
                text(&decision["by"]["name"]),
                text(&decision["by"]["id"]),
                when(&decision["at_ms"])
            );
            if let Some(choice) = decision["choice"]["label"].as_str() {
                line.push_str(&format!(", choice {choice}"));
            }
            if let Some(reason) = decision["reason"].as_str() {
                line.push_str(&format!(", reason: {reason}"));
            }
            let _ = writeln!(out, "  decision     {line}");
        }
        for e in events {
            let _ = writeln!(
                out,
                "  clicked      {} {} ({}): {}",
                when(&e["at_ms"]),
                text(&e["user"]["name"]),
                text(&e["user"]["id"]),
                text(&e["what"])
            );
        }
    }
    let deliveries = v["deliveries"].as_array().map_or(&[][..], Vec::as_slice);
    if deliveries.is_empty() {
        out.push_str("\nno deliveries\n");
        return out;
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = deliveries
        .iter()
        .map(|d| {
            let detail = match (d["reason"].as_str(), d["next_try_ms"].as_u64()) {
                (Some(reason), _) => reason.to_string(),
                (None, Some(_)) => format!("next try {}", when(&d["next_try_ms"])),
                (None, None) => "-".to_string(),
            };
            vec![
                text(&d["id"]),
                text(&d["message"]["message"]),
                text(&d["target"]),
                text(&d["state"]),
                text(&d["attempts"]),
                detail,
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "DELIVERY",
            "WHAT",
            "TARGET",
            "STATE",
            "ATTEMPTS",
            "NEXT TRY / REASON",
        ],
        &rows,
    ));
    out
}

/// `GET /v1/notifications?…` as a table, with the cursor for the next page.
pub fn render_notifications(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v)
        .iter()
        .map(|n| {
            vec![
                text(&n["id"]),
                when(&n["received_at_ms"]),
                text(&n["source"]),
                text(&n["external_id"]),
                match n["decision"].as_str() {
                    Some(d) => format!("{} · {d}", text(&n["state"])),
                    None => text(&n["state"]),
                },
                short(&n["title"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no notifications\n".to_string();
    }
    let mut out = table(
        &["ID", "RECEIVED", "SOURCE", "EXTERNAL ID", "STATE", "TITLE"],
        &rows,
    );
    if let Some(next) = v["next_cursor"].as_str() {
        let _ = writeln!(out, "\nmore: --cursor {next}");
    }
    out
}

/// `GET /v1/dead-letters` as a table.
pub fn render_dead_letters(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v)
        .iter()
        .map(|d| {
            vec![
                text(&d["id"]),
                text(&d["source"]),
                text(&d["external_id"]),
                short(&d["title"]),
                text(&d["target"]),
                text(&d["attempts"]),
                text(&d["reason"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no dead letters\n".to_string();
    }
    table(
        &[
            "ID",
            "SOURCE",
            "SENDER ID",
            "TITLE",
            "TARGET",
            "ATTEMPTS",
            "REASON",
        ],
        &rows,
    )
}

/// A title cut for a table column.
fn short(v: &Value) -> String {
    let t = text(v);
    if t.chars().count() > 48 {
        format!("{}…", t.chars().take(47).collect::<String>())
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let t = table(
            &["A", "LONGER"],
            &[
                vec!["xyz".into(), "1".into()],
                vec!["q".into(), "22".into()],
            ],
        );
        assert_eq!(t, "A    LONGER\nxyz  1\nq    22\n");
    }
}
