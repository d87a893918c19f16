//! `hookrelay serve` (the default): loads the config, fits the connection limit, runs the relay
//! until it is stopped, and turns SIGHUP (`systemctl reload hookrelay`) into a reload of the TLS
//! files.

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use crate::config::Settings;
use crate::service;
use crate::startup::Application;

pub(super) fn serve(path: &std::path::Path) -> ExitCode {
    let mut settings = match Settings::load(path) {
        Ok(s) => s,
        Err(e) => {
            service::init_logging("info");
            log::error!("The configuration is not valid: {e}");
            return ExitCode::FAILURE;
        }
    };
    service::init_logging(&settings.log_level);
    // Watched from the start, so that a SIGHUP during start-up does not end the process.
    let reloader = Arc::new(OnceLock::new());
    watch_sighup(Arc::clone(&reloader));
    // Before actix starts: its accept loop takes the limit as it is then.
    settings.server.max_connections =
        crate::connections::fit_open_file_limit(settings.server.max_connections);
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).map_err(|e| e.to_string())?;
        if let Some(r) = app.tls_reloader() {
            let _ = reloader.set(r);
        }
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

/// `systemctl reload` reads the TLS certificate and key again. Everything else in the config
/// takes effect on restart: the regions' queues, rate limits and 429 pauses live in the running
/// scheduler, and a restart is graceful and loses nothing. Without the handler a SIGHUP would
/// end the process.
fn watch_sighup(reloader: Arc<OnceLock<crate::tls::watch::Reloader>>) {
    match signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]) {
        Ok(mut signals) => {
            let spawned = std::thread::Builder::new().name("sighup".into()).spawn(move || {
                for _ in signals.forever() {
                    match reloader.get() {
                        Some(r) => {
                            log::info!("SIGHUP received: reading the TLS certificate and key again; other configuration changes take effect on restart (systemctl restart hookrelay), which loses nothing.");
                            r.reload();
                        }
                        None => log::warn!("SIGHUP received: there is no TLS certificate to reload; configuration changes take effect on restart (systemctl restart hookrelay), which loses nothing."),
                    }
                }
            });
            if let Err(e) = spawned {
                log::warn!("Could not watch for SIGHUP: {e}.");
            }
        }
        Err(e) => log::warn!("Could not watch for SIGHUP: {e}."),
    }
}
