//! Command line: `hookrelay [serve] [--config F]`, `hookrelay check-config [--config F]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    CheckConfig,
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config),
        Command::CheckConfig => check_config(&cli.config),
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
    }
}

fn serve(path: &std::path::Path) -> ExitCode {
    let settings = match Settings::load(path) {
        Ok(s) => s,
        Err(e) => {
            service::init_logging("info");
            log::error!("The configuration is not valid: {e}");
            return ExitCode::FAILURE;
        }
    };
    service::init_logging(&settings.log_level);
    ignore_sighup();
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

fn check_config(path: &std::path::Path) -> ExitCode {
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
                let placeholder = if r.webhook_url.is_placeholder() {
                    " (placeholder: messages are queued, not sent, until a real URL is set)"
                } else {
                    ""
                };
                outln!(
                    out,
                    "region {name}: {}{placeholder} · {}/{:?} burst {} · countries {}",
                    r.webhook_url,
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
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
