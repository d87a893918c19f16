//! `hookrelay dead-letters list|replay|drop`; `replay --all` replays them one by one with progress
//! (or, with `--json`, in the API's one bulk call).

use clap::Subcommand;

use super::admin_client::{self, query, AdminClient, ClientError};
use super::remote::{output, segment, Remote};
use super::tables;

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List the dead letters.
    List,
    /// Queue dead letters for delivery again: one by id, or `--all` (optionally filtered).
    Replay {
        /// The dead letter's id (as listed), not the notification's.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Replay every dead letter (that matches --region and --reason).
        #[arg(long)]
        all: bool,
        /// With --all: only this region's.
        #[arg(long, conflicts_with = "id")]
        region: Option<String>,
        /// With --all: only those whose reason contains this text (case-insensitive).
        #[arg(long, conflicts_with = "id")]
        reason: Option<String>,
    },
    /// Remove a dead letter for good (its notification and history stay).
    Drop {
        /// The dead letter's id.
        id: String,
    },
}

pub(super) fn dead_letters(
    c: &AdminClient,
    remote: &Remote,
    command: DeadLettersCommand,
) -> Result<String, ClientError> {
    match command {
        DeadLettersCommand::List => {
            let v = c.get("/v1/dead-letters")?;
            Ok(output(remote, &v, tables::render_dead_letters))
        }
        DeadLettersCommand::Drop { id } => {
            let v = c.delete(&format!("/v1/dead-letters/{}", segment(&id)))?;
            Ok(output(remote, &v, |_| {
                format!("Dead letter {id} dropped.\n")
            }))
        }
        DeadLettersCommand::Replay { id: Some(id), .. } => {
            let v = c.post(&format!("/v1/dead-letters/{}/replay", segment(&id)))?;
            Ok(output(remote, &v, |v| {
                format!(
                    "Dead letter {id} queued again as delivery {}.\n",
                    v["delivery"].as_str().unwrap_or("?")
                )
            }))
        }
        DeadLettersCommand::Replay {
            id: None,
            region,
            reason,
            ..
        } => {
            if remote.json {
                // Scripts get the one bulk call and its count.
                let v = c.post(&format!(
                    "/v1/dead-letters/replay{}",
                    query(&[("region", region), ("reason", reason)])
                ))?;
                return Ok(output(remote, &v, |_| String::new()));
            }
            replay_all(c, region.as_deref(), reason.as_deref())
        }
    }
}

/// Lists the matching dead letters and replays them one by one, with progress on stderr.
fn replay_all(
    c: &AdminClient,
    region: Option<&str>,
    reason: Option<&str>,
) -> Result<String, ClientError> {
    // Every one of them (the API lists 500 unless asked for more).
    let listed = c.get("/v1/dead-letters?limit=10000")?;
    let ids: Vec<String> = listed["items"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter(|d| admin_client::dead_letter_matches(d, region, reason))
        .filter_map(|d| d["id"].as_str().map(str::to_string))
        .collect();
    let total = ids.len();
    if total == 0 {
        return Ok("No dead letters to replay.\n".to_string());
    }
    // Every one for a few, about every percent for thousands.
    let every = (total / 100).max(1);
    let (mut replayed, mut gone, mut failed) = (0usize, 0usize, Vec::new());
    for (i, id) in ids.iter().enumerate() {
        match c.post(&format!("/v1/dead-letters/{}/replay", segment(id))) {
            Ok(_) => replayed += 1,
            // Replayed or dropped by someone else meanwhile.
            Err(ClientError::Api { status: 404, .. }) => gone += 1,
            Err(e @ (ClientError::Api { .. } | ClientError::BadAnswer { .. })) => {
                failed.push(format!("{id}: {e}"))
            }
            Err(e) => return Err(e),
        }
        let done = i + 1;
        if done % every == 0 || done == total {
            eprintln!("replayed {replayed}/{total}");
        }
    }
    let mut out = format!("Replayed {replayed} of {total} dead letters.\n");
    if gone > 0 {
        out.push_str(&format!(
            "{gone} were no longer dead letters (replayed or dropped meanwhile).\n"
        ));
    }
    if failed.is_empty() {
        Ok(out)
    } else {
        print!("{out}");
        Err(ClientError::Incomplete(format!(
            "{} could not be replayed:\n  {}",
            failed.len(),
            failed.join("\n  ")
        )))
    }
}
