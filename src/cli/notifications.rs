//! `hookrelay notifications show|list` and `hookrelay export`: what the relay holds, looked up,
//! listed or exported as JSON lines, and the `--since` they take.

use clap::Subcommand;

use super::admin_client::{query, AdminClient, ClientError};
use super::remote::{output, segment, Remote};
use super::tables;

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Show one notification: every version and each delivery.
    Show {
        /// The relay's id, or SOURCE/SENDER-ID (the CRM's id, say: salesforce/006DLQ1).
        id: String,
    },
    /// List notifications, newest first.
    List {
        /// Only this source's.
        #[arg(long)]
        source: Option<String>,
        /// Only opportunities with this owner email.
        #[arg(long)]
        owner_email: Option<String>,
        /// Only the one with this sender's id (the CRM's id).
        #[arg(long)]
        external_id: Option<String>,
        /// Only those first received since (7d, 24h, 2026-11-30).
        #[arg(long, value_parser = parse_since)]
        since: Option<u64>,
        /// Only those in this state.
        #[arg(long, value_parser = ["pending", "delivered", "dead"])]
        state: Option<String>,
        /// Approval requests with this decision.
        #[arg(long, value_parser = ["undecided", "approved", "rejected"])]
        decision: Option<String>,
        /// At most this many (1 to 500; 50 when left out).
        #[arg(long)]
        limit: Option<usize>,
        /// Continue from a previous page's cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
}

/// `notifications show` and `notifications list`.
pub(super) fn notifications(
    c: &AdminClient,
    remote: &Remote,
    command: NotificationsCommand,
) -> Result<String, ClientError> {
    let v = match command {
        NotificationsCommand::Show { id } => {
            // SOURCE/SENDER-ID looks the notification up by the sender's id.
            let path = match id.split_once('/') {
                Some((source, external)) => format!(
                    "/v1/sources/{}/notifications/{}",
                    segment(source),
                    segment(external)
                ),
                None => format!("/v1/notifications/{}", segment(&id)),
            };
            let v = c.get(&path)?;
            return Ok(output(remote, &v, tables::render_notification));
        }
        NotificationsCommand::List {
            source,
            owner_email,
            external_id,
            since,
            state,
            decision,
            limit,
            cursor,
        } => c.get(&format!(
            "/v1/notifications{}",
            query(&[
                ("source", source),
                ("owner_email", owner_email),
                ("external_id", external_id),
                ("since", since.map(|ms| ms.to_string())),
                ("state", state),
                ("decision", decision),
                ("limit", limit.map(|l| l.to_string())),
                ("cursor", cursor),
            ])
        ))?,
    };
    Ok(output(remote, &v, tables::render_notifications))
}

/// `export`: the relay's JSON lines are copied to stdout as they arrive.
pub(super) fn export(c: &AdminClient, since: Option<u64>) -> Result<String, ClientError> {
    let path = format!(
        "/v1/export{}",
        query(&[("since", since.map(|s| s.to_string()))])
    );
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    c.get_to(&path, &mut lock)?;
    Ok(String::new())
}

/// `--since`: a duration back from now (`7d`, `24h`) or an RFC 3339 date, as ms since the epoch.
pub(super) fn parse_since(s: &str) -> Result<u64, String> {
    let at = match humantime::parse_duration(s) {
        Ok(d) => std::time::SystemTime::now()
            .checked_sub(d)
            .ok_or_else(|| format!("{s} goes back before 1970"))?,
        // A bare date means its midnight, UTC.
        Err(_) if s.len() == 10 => humantime::parse_rfc3339_weak(&format!("{s}T00:00:00Z"))
            .map_err(|_| format!("{s:?} is not a date such as 2026-01-31"))?,
        Err(_) => humantime::parse_rfc3339_weak(s).map_err(|_| {
            format!("{s:?} is neither a duration such as 7d or 24h nor a date such as 2026-01-31 or 2026-01-31T12:00:00Z")
        })?,
    };
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .map_err(|_| format!("{s} is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_dates() {
        // `now` read after parsing, so it is never earlier than the clock parse_since used.
        let day = parse_since("24h").unwrap();
        let now = crate::store::now_ms();
        assert!(now - day >= 86_400_000 && now - day < 86_460_000);
        assert_eq!(parse_since("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_since("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert!(parse_since("yesterday").is_err());
    }
}
