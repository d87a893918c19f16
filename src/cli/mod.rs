//! Command line: `hookrelay [serve] [--config F]`, `hookrelay check-config [--config F]`, and
//! the operator commands that talk to a running relay's admin API (`status`, `notifications`,
//! `dead-letters`, `regions`, `send-test`, `export`; see [`admin_client`]).
//!
//! This file holds the top-level arguments and hands each command to its file, which holds that
//! group's arguments and code: `serve.rs`, `check_config.rs`, `store.rs`, and for the operator
//! commands `notifications.rs` (with `export`), `dead_letters.rs` and `regions.rs` (with
//! `send-test`). Those share `remote.rs`, the [`admin_client`] and the [`tables`] they print.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod admin_client;
mod check_config;
mod dead_letters;
mod notifications;
mod regions;
mod remote;
mod serve;
mod store;
pub mod tables;

pub use dead_letters::DeadLettersCommand;
pub use notifications::NotificationsCommand;
pub use regions::RegionsCommand;
pub use remote::Remote;
pub use store::StoreCommand;

use check_config::check_config;
use dead_letters::dead_letters;
use notifications::{export, notifications, parse_since};
use regions::{regions, send_test};
use remote::{output, remote_command};
use serve::serve;
use store::{store_check, store_compact, store_dump};

#[derive(Debug, Parser)]
#[command(name = "hookrelay", version, about = "Durable webhook-to-Slack relay")]
pub struct Cli {
    /// The configuration file.
    #[arg(long, short, global = true, default_value = "config.toml")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay (the default).
    Serve,
    /// Validate the configuration file and show what it sets up.
    CheckConfig {
        /// Also ask Slack whether each bot token works and its bot can post in its channel.
        #[arg(long)]
        online: bool,
    },
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// Inspect the store on disk (works while the relay runs).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Show each region's queue, last success and error, and whether it is paused.
    Status {
        #[command(flatten)]
        remote: Remote,
    },
    /// Look at what the relay holds.
    Notifications {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: NotificationsCommand,
    },
    /// List, replay or drop deliveries that failed for good.
    DeadLetters {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: DeadLettersCommand,
    },
    /// Pause or resume a region's deliveries (a paused region queues but does not send).
    Regions {
        #[command(flatten)]
        remote: Remote,
        #[command(subcommand)]
        command: RegionsCommand,
    },
    /// Queue a clearly marked test message for a region, delivered like any other.
    SendTest {
        #[command(flatten)]
        remote: Remote,
        /// The region, as named in the config.
        region: String,
    },
    /// Print every notification received since a time, as JSON lines (for audits).
    Export {
        #[command(flatten)]
        remote: Remote,
        /// How far back: a duration such as `7d` or `24h`, or an RFC 3339 date such as
        /// `2026-01-31` or `2026-01-31T12:00:00Z`. Everything when left out.
        #[arg(long, value_parser = parse_since)]
        since: Option<u64>,
    },
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config),
        Command::CheckConfig { online } => check_config(&cli.config, online),
        Command::Store {
            command: StoreCommand::Check,
        } => store_check(&cli.config),
        Command::Store {
            command: StoreCommand::Dump { prefix },
        } => store_dump(&cli.config, &prefix),
        Command::Store {
            command: StoreCommand::Compact,
        } => store_compact(&cli.config),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "hookrelay",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Man => {
            use clap::CommandFactory;
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the man page: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Status { remote } => remote_command(&remote, |c| {
            let v = c.get("/v1/status")?;
            Ok(output(&remote, &v, tables::render_status))
        }),
        Command::Notifications { remote, command } => {
            remote_command(&remote, |c| notifications(c, &remote, command))
        }
        Command::DeadLetters { remote, command } => {
            remote_command(&remote, |c| dead_letters(c, &remote, command))
        }
        Command::Regions { remote, command } => {
            remote_command(&remote, |c| regions(c, &remote, command))
        }
        Command::SendTest { remote, region } => {
            remote_command(&remote, |c| send_test(c, &remote, &region))
        }
        Command::Export { remote, since } => remote_command(&remote, |c| export(c, since)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_takes_an_id_or_all() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|_| ());
        assert!(parse(&["hookrelay", "dead-letters", "replay", "7"]).is_ok());
        assert!(parse(&["hookrelay", "dead-letters", "replay", "--region", "EU"]).is_err());
        assert!(parse(&[
            "hookrelay",
            "dead-letters",
            "replay",
            "--all",
            "--region",
            "EU"
        ])
        .is_ok());
        assert!(parse(&["hookrelay", "dead-letters", "replay"]).is_err());
        assert!(parse(&["hookrelay", "dead-letters", "replay", "7", "--all"]).is_err());
        assert!(parse(&["hookrelay", "dead-letters", "replay", "7", "--region", "EU"]).is_err());
        assert!(parse(&["hookrelay", "status", "--json", "--url", "http://x"]).is_ok());
        assert!(parse(&["hookrelay", "status", "--token", "t"]).is_err());
    }
}
