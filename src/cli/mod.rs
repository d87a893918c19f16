//! Command line: `hookrelay [serve] [--config F]`, `hookrelay check-config [--config F]`, and
//! the operator commands that talk to a running relay's admin API (`status`, `notifications`,
//! `dead-letters`, `regions`, `send-test`, `export`; see [`crate::admin_client`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

pub mod admin_client;

use admin_client::{query, AdminClient, ClientError};

use crate::config::Settings;
use crate::service;
use crate::sources::SourceKind;
use crate::startup::Application;

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

/// How the operator commands reach the relay.
#[derive(Debug, Args)]
pub struct Remote {
    /// The relay's address [env: HOOKRELAY_URL] [default: http://127.0.0.1:8080].
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// A file holding an admin token; without it the token comes from HOOKRELAY_TOKEN.
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Check the write-ahead log: the checkpoint, what a start would replay, a torn tail, and
    /// any damage that stops the relay from starting (exit status 1).
    Check,
    /// Print every key of the store as a JSON line, its value decoded (the relay must be
    /// stopped: sled lets one process open the store).
    Dump {
        /// Only keys starting with this (`n` notifications, `d` deliveries, `q` the queue, ...).
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Give back the disk space sled keeps after retention purged (the relay must be stopped;
    /// it also runs at start when the retention pass asked for it).
    Compact,
}

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
            Ok(output(&remote, &v, admin_client::render_status))
        }),
        Command::Notifications { remote, command } => remote_command(&remote, |c| {
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
                    return Ok(output(&remote, &v, admin_client::render_notification));
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
            Ok(output(&remote, &v, admin_client::render_notifications))
        }),
        Command::DeadLetters { remote, command } => {
            remote_command(&remote, |c| dead_letters(c, &remote, command))
        }
        Command::Regions { remote, command } => remote_command(&remote, |c| {
            let (name, action, done) = match &command {
                RegionsCommand::Pause { name } => (
                    name,
                    "pause",
                    "paused: its messages queue until `hookrelay regions resume`",
                ),
                RegionsCommand::Resume { name } => (name, "resume", "resumed"),
            };
            let v = c.post(&format!("/v1/regions/{}/{action}", segment(name)))?;
            Ok(output(&remote, &v, |_| format!("Region {name} {done}.\n")))
        }),
        Command::SendTest { remote, region } => remote_command(&remote, |c| {
            let v = c.post(&format!("/v1/regions/{}/test", segment(&region)))?;
            Ok(output(&remote, &v, |v| {
                format!(
                    "Test message queued for region {region} (notification {}); `hookrelay notifications show {}` follows it.\n",
                    v["id"].as_str().unwrap_or("?"),
                    v["id"].as_str().unwrap_or("?")
                )
            }))
        }),
        Command::Export { remote, since } => remote_command(&remote, |c| {
            let path = format!(
                "/v1/export{}",
                query(&[("since", since.map(|s| s.to_string()))])
            );
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            c.get_to(&path, &mut lock)?;
            Ok(String::new())
        }),
    }
}

/// Resolves the URL and token, runs `f`, prints what it returns; errors go to stderr, exit 1.
fn remote_command(
    remote: &Remote,
    f: impl FnOnce(&AdminClient) -> Result<String, ClientError>,
) -> ExitCode {
    let result = admin_client::resolve_token(remote.token_file.as_deref()).and_then(|token| {
        let client = AdminClient::new(&admin_client::resolve_url(remote.url.as_deref()), token);
        f(&client)
    });
    match result {
        Ok(text) => {
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The API's JSON with `--json`, else the human rendering.
fn output(remote: &Remote, v: &Value, human: impl FnOnce(&Value) -> String) -> String {
    if remote.json {
        format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default())
    } else {
        human(v)
    }
}

/// A value for one path segment, percent-encoded.
fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn dead_letters(
    c: &AdminClient,
    remote: &Remote,
    command: DeadLettersCommand,
) -> Result<String, ClientError> {
    match command {
        DeadLettersCommand::List => {
            let v = c.get("/v1/dead-letters")?;
            Ok(output(remote, &v, admin_client::render_dead_letters))
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

/// `--since`: a duration back from now (`7d`, `24h`) or an RFC 3339 date, as ms since the epoch.
fn parse_since(s: &str) -> Result<u64, String> {
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

fn serve(path: &std::path::Path) -> ExitCode {
    let mut settings = match Settings::load(path) {
        Ok(s) => s,
        Err(e) => {
            service::init_logging("info");
            log::error!("The configuration is not valid: {e}");
            return ExitCode::FAILURE;
        }
    };
    service::init_logging(&settings.log_level);
    ignore_sighup();
    // Before actix starts: its accept loop takes the limit as it is then.
    settings.server.max_connections =
        crate::connections::fit_open_file_limit(settings.server.max_connections);
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).map_err(|e| e.to_string())?;
        service::spawn_watchdog(app.heartbeat());
        service::ready(&format!("listening on port {}", app.port()));
        app.run_until_stopped().await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("hookrelay could not run: {e}.");
            ExitCode::FAILURE
        }
    }
}

/// The config of a `store` command, or `None` once the reason was printed.
fn settings_for_store(path: &std::path::Path) -> Option<Settings> {
    Settings::load(path)
        .map_err(|e| eprintln!("The configuration is not valid: {e}"))
        .ok()
}

fn store_check(path: &std::path::Path) -> ExitCode {
    let Some(settings) = settings_for_store(path) else {
        return ExitCode::FAILURE;
    };
    let report = crate::store::check::check(&settings.store.path);
    print!("{}", report.text);
    if report.damaged {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn store_compact(path: &std::path::Path) -> ExitCode {
    use crate::store::compact::{self, NotCompacted};
    let Some(settings) = settings_for_store(path) else {
        return ExitCode::FAILURE;
    };
    let store = &settings.store.path;
    if !store.join("conf").exists() {
        eprintln!("There is no store at {}.", store.display());
        return ExitCode::FAILURE;
    }
    let result = compact::compact(store, &mut |_| {});
    if let Err(e) = compact::give_to_owner(store) {
        eprintln!("Could not give the store's files back to its directory's owner: {e}.");
        return ExitCode::FAILURE;
    }
    match result {
        Ok(c) => {
            println!(
                "Compacted {}: sled's files went from {} to {} ({} keys).",
                store.display(),
                crate::store::space::human(c.before),
                crate::store::space::human(c.after),
                c.keys
            );
            ExitCode::SUCCESS
        }
        Err(NotCompacted::Store(e)) if crate::store::is_locked(&e) => {
            eprintln!("The store at {} is open in a running relay; stop it first (systemctl stop hookrelay).", store.display());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("Cannot compact the store: {e}.");
            ExitCode::FAILURE
        }
    }
}

fn store_dump(path: &std::path::Path, prefix: &str) -> ExitCode {
    let Some(settings) = settings_for_store(path) else {
        return ExitCode::FAILURE;
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mask = |url: &str| match crate::slack::target::WebhookUrl::parse(url) {
        Ok(u) => u.masked(),
        Err(_) => "***".to_string(),
    };
    let result = crate::store::dump::dump(&settings.store.path, prefix.as_bytes(), &mask, &mut out);
    // Opening sled may write (its snapshot): those files must stay the relay user's.
    let _ = crate::store::compact::give_to_owner(&settings.store.path);
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Cannot dump the store: {e}.");
            ExitCode::FAILURE
        }
    }
}

/// `systemctl reload` is not offered (the unit has no ExecReload): the regions' queues, rate
/// limits and 429 pauses live in the running scheduler, and a restart is graceful and loses
/// nothing. A stray SIGHUP would otherwise end the process, so it only logs how to apply changes.
fn ignore_sighup() {
    match signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]) {
        Ok(mut signals) => {
            let spawned = std::thread::Builder::new().name("sighup".into()).spawn(move || {
                for _ in signals.forever() {
                    log::warn!("SIGHUP received: configuration changes take effect on restart (systemctl restart hookrelay), which loses nothing.");
                }
            });
            if let Err(e) = spawned {
                log::warn!("Could not watch for SIGHUP: {e}.");
            }
        }
        Err(e) => log::warn!("Could not watch for SIGHUP: {e}."),
    }
}

fn check_config(path: &std::path::Path, online: bool) -> ExitCode {
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
