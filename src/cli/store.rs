//! `hookrelay store check|dump|compact`: the store on disk, read or compacted directly rather
//! than through a running relay.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;

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

/// The config of a `store` command, or `None` once the reason was printed.
fn settings_for_store(path: &std::path::Path) -> Option<Settings> {
    Settings::load(path)
        .map_err(|e| eprintln!("The configuration is not valid: {e}"))
        .ok()
}

pub(super) fn store_check(path: &std::path::Path) -> ExitCode {
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

pub(super) fn store_compact(path: &std::path::Path) -> ExitCode {
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

pub(super) fn store_dump(path: &std::path::Path, prefix: &str) -> ExitCode {
    let Some(settings) = settings_for_store(path) else {
        return ExitCode::FAILURE;
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mask = |url: &str| match crate::config::WebhookUrl::parse(url) {
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
