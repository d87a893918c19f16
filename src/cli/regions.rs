//! `hookrelay regions pause|resume` and `hookrelay send-test`: acting on one region through the
//! admin API.

use clap::Subcommand;

use super::admin_client::{AdminClient, ClientError};
use super::remote::{output, segment, Remote};

#[derive(Debug, Subcommand)]
pub enum RegionsCommand {
    /// Stop sending to a region; its messages queue until it is resumed.
    Pause {
        /// The region, as named in the config.
        name: String,
    },
    /// Send a paused region's queue again.
    Resume {
        /// The region, as named in the config.
        name: String,
    },
}

/// `regions pause` and `regions resume`.
pub(super) fn regions(
    c: &AdminClient,
    remote: &Remote,
    command: RegionsCommand,
) -> Result<String, ClientError> {
    let (name, action, done) = match &command {
        RegionsCommand::Pause { name } => (
            name,
            "pause",
            "paused: its messages queue until `hookrelay regions resume`",
        ),
        RegionsCommand::Resume { name } => (name, "resume", "resumed"),
    };
    let v = c.post(&format!("/v1/regions/{}/{action}", segment(name)))?;
    Ok(output(remote, &v, |_| format!("Region {name} {done}.\n")))
}

/// `send-test`: queues the test message and says how to follow it.
pub(super) fn send_test(
    c: &AdminClient,
    remote: &Remote,
    region: &str,
) -> Result<String, ClientError> {
    let v = c.post(&format!("/v1/regions/{}/test", segment(region)))?;
    Ok(output(remote, &v, |v| {
        format!(
            "Test message queued for region {region} (notification {}); `hookrelay notifications show {}` follows it.\n",
            v["id"].as_str().unwrap_or("?"),
            v["id"].as_str().unwrap_or("?")
        )
    }))
}
