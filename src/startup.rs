//! Wires the parts together: store, journal, dispatcher, HTTP server.
//!
//! `Application::build` binds its own listener, so tests ask for port 0 and read the real port.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::connections;
use crate::delivery::scheduler::Event;
use crate::delivery::worker::Worker;
use crate::delivery::Dispatcher;
use crate::http::error;
use crate::http::hooks::IntakeState;
use crate::interactivity::{socket_mode, Interactivity};
use crate::slack::transport::TransportError;
use crate::sources::SourceKind;
use crate::store::journal::{Journal, Waker};
use crate::store::retention::{self, Retention};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("cannot start a thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("cannot serve HTTPS: {0}")]
    Tls(#[from] crate::tls::StartError),
}

/// A built relay, listening but not yet serving.
pub struct Application {
    /// The bound port (the real one when the config said 0).
    port: u16,
    /// The actix server future; polling it serves requests.
    server: Server,
    /// Scheduler and workers.
    dispatcher: Dispatcher,
    /// The writer, closed last so every outcome is recorded.
    journal: Journal,
    /// Read access, for tests that await a state in the store.
    store: Store,
    /// The retention purge, stopped before the journal closes.
    retention: (crossbeam_channel::Sender<()>, JoinHandle<()>),
    /// The Socket Mode thread (with an app token) and its stop flag; stopped before the
    /// journal closes, so a click it is storing is stored.
    socket_mode: (Arc<AtomicBool>, Option<JoinHandle<()>>),
    /// Joined at stop so the store is closed when `run_until_stopped` returns.
    journal_thread: JoinHandle<()>,
    /// Grace period for attempts under way at stop.
    shutdown_timeout: Duration,
    /// The TLS state (for `tls_reloader`) and its reload thread, stopped at stop; `None` for
    /// plain HTTP.
    tls: Option<(Arc<crate::tls::Tls>, crate::tls::watch::Watcher)>,
    /// Stops the relay when the store's disk failed beyond retrying (a failed `fdatasync`),
    /// so that it exits non-zero and systemd restarts it; its flag ends the thread at stop.
    disk_guard: (Arc<AtomicBool>, JoinHandle<()>),
}

impl Application {
    pub fn build(settings: Settings) -> Result<Application, StartupError> {
        Application::build_with_clock(settings, Arc::new(SystemClock))
    }

    /// `build` with another clock for intake decisions (tests move it by hand).
    pub fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Application, StartupError> {
        let addr = settings.server.listen.clone();
        let listener = crate::connections::listen(&addr)
            .map_err(|source| StartupError::Listen { addr, source })?;
        let port = listener.local_addr()?.port();
        // Before the store opens: a bad certificate is found without a store to close again.
        let tls = crate::tls::start(&settings.server)?;

        // The sources tell the store what makes a repeat and what Tray coalesces under.
        let store = open_when_room(&settings)?
            .with_bodies(Arc::new(crate::bodies::SourceBodies::new(&settings)));

        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let scheduler_tx = events_tx.clone();
        let wake_tx = events_tx.clone();
        let waker: Waker = Arc::new(move |targets| {
            let _ = wake_tx.send(Event::Wake(targets));
        });
        let tick = Arc::clone(&waker);
        clock.on_advance(Box::new(move || tick(Vec::new())));
        let (journal, journal_thread) = Journal::start(store.clone(), Some(waker))?;
        report_backlog(&journal, &settings);
        let worker = match Worker::new(store.clone(), journal.clone(), &settings) {
            Ok(worker) => worker,
            Err(e) => {
                // Close the store again so a caller may retry in this process.
                journal.close();
                let _ = journal_thread.join();
                return Err(e.into());
            }
        };
        let metrics = Arc::clone(&worker.metrics);
        let settings_arc = Arc::new(settings.clone());
        let interactivity = Arc::new(Interactivity::new(
            Arc::clone(&settings_arc),
            store.clone(),
            journal.clone(),
            Arc::clone(&worker.transport),
            Arc::clone(&clock),
        ));
        let dispatcher = Dispatcher::start(worker, (events_tx, events_rx), Arc::clone(&clock))?;
        let (stop_purge, purge_stopped) = crossbeam_channel::bounded(1);
        let policy = Retention {
            delivered: settings.store.retention,
            dead: settings.store.dead_letter_retention,
        };
        let purge = retention::spawn(
            store.clone(),
            journal.clone(),
            policy,
            settings.store.purge_interval,
            purge_stopped,
        )?;

        let rainforest = settings
            .sources
            .values()
            .any(|s| s.kind == SourceKind::Rainforest);
        let socket_stop = Arc::new(AtomicBool::new(false));
        let socket_mode = match &settings.slack.app_token {
            Some(token) => Some(socket_mode::spawn(
                Arc::clone(&interactivity),
                token.clone(),
                Arc::clone(&socket_stop),
            )?),
            None => None,
        };
        let state = web::Data::new(IntakeState {
            settings: settings_arc,
            journal: journal.clone(),
            clock,
            metrics,
            store: store.clone(),
            heartbeat: dispatcher.heartbeat(),
            scheduler: scheduler_tx,
            interactivity,
            replays: Default::default(),
            tls: tls.as_ref().map(|(t, _)| Arc::clone(t)),
            senders: Default::default(),
        });
        let max_body_bytes = settings.server.max_body_bytes;
        let workers = connections::http_workers();
        let open = connections::OpenConnections::new(settings.server.max_connections);
        let counted = Arc::clone(&open);
        let server = HttpServer::new(move || {
            let open = Arc::clone(&open);
            App::new()
                .wrap_fn(move |req, srv| {
                    use actix_web::dev::Service as _;
                    let crowded = open.crowded();
                    let answer = srv.call(req);
                    async move {
                        let mut res = answer.await?;
                        if crowded {
                            // See `OpenConnections`: a kept-alive connection's next head is
                            // not timed, so none is kept while connections crowd the limit.
                            res.response_mut()
                                .head_mut()
                                .set_connection_type(actix_web::http::ConnectionType::Close);
                        }
                        Ok(res)
                    }
                })
                .app_data(state.clone())
                .app_data(error::query_config())
                .app_data(error::path_config())
                .app_data(error::json_config(max_body_bytes))
                .app_data(error::form_config(max_body_bytes))
                .configure(|cfg| crate::http::routes(cfg, rainforest))
        })
        .workers(workers)
        .max_connections(connections::per_worker(
            settings.server.max_connections,
            workers,
        ))
        // The head only; the body has its own limit (`client_body_timeout`, in `read_body`).
        .client_request_timeout(settings.server.client_request_timeout)
        .on_connect(move |conn, extensions| {
            extensions.insert(counted.opened());
            crate::tls::peer::on_connect(conn, extensions);
        });
        let server = match &tls {
            Some((t, _)) => server.listen_rustls_0_23(
                listener,
                t.server_config().map_err(crate::tls::StartError::from)?,
            )?,
            None => server.listen(listener)?,
        }
        .shutdown_timeout(settings.server.shutdown_timeout.as_secs())
        .run();
        let disk_guard = spawn_disk_guard(Arc::clone(store.space_arc()), server.handle())?;
        log::info!(
            "hookrelay listens on port {port} ({}) with {} sources and {} regions; store at {}.",
            if tls.is_some() { "HTTPS" } else { "HTTP" },
            settings.sources.len(),
            settings.regions.len(),
            settings.store.path.display()
        );
        Ok(Application {
            port,
            server,
            dispatcher,
            journal,
            store,
            retention: (stop_purge, purge),
            socket_mode: (socket_stop, socket_mode),
            journal_thread,
            shutdown_timeout: settings.server.shutdown_timeout,
            tls,
            disk_guard,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from another task or thread (tests; signals are handled by actix).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// The writer, for tests that need to see the store refuse writes.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Milliseconds of the scheduler's last loop, for the systemd watchdog.
    pub fn heartbeat(&self) -> Arc<AtomicU64> {
        self.dispatcher.heartbeat()
    }

    /// Read access to the store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Asks for the TLS files to be read again (SIGHUP); `None` when serving plain HTTP.
    pub fn tls_reloader(&self) -> Option<crate::tls::watch::Reloader> {
        self.tls.as_ref().map(|(_, w)| w.reloader())
    }

    /// Serves until SIGTERM/SIGINT or `handle().stop()`, then stops in order: no new requests,
    /// attempts under way finish (bounded), outcomes are committed, the store is closed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        let (guard_stop, guard) = self.disk_guard;
        guard_stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = guard.join();
        crate::service::stopping();
        log::info!("Stopping: no new webhooks are accepted; letting deliveries under way finish.");
        self.dispatcher.stop(self.shutdown_timeout);
        let (stop_purge, purge) = self.retention;
        let _ = stop_purge.send(());
        let _ = purge.join();
        if let Some((_, watcher)) = self.tls {
            watcher.stop();
        }
        let (stop_socket, socket) = self.socket_mode;
        stop_socket.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(socket) = socket {
            let _ = socket.join();
        }
        self.journal.close();
        if self.journal_thread.join().is_err() {
            log::error!("The journal thread panicked while stopping; the store may need recovery at the next start.");
        }
        if let Some(why) = self.store.space().broken() {
            return Err(std::io::Error::other(format!(
                "the store's disk failed ({why}); start hookrelay again to recover from the log"
            )));
        }
        log::info!("hookrelay stopped.");
        served
    }
}

/// Opens the store, waiting for room if its disk is full: a relay that exited instead would be
/// restarted by systemd onto the same full disk, again and again, until it gave up.
fn open_when_room(settings: &Settings) -> Result<Store, StoreError> {
    let mut told = false;
    // Each batch of keys copied buys another minute: a big store takes longer than the unit's
    // start timeout, and a start that is making progress must not be killed for it.
    let mut extend = |keys: u64| {
        crate::service::extend_start(
            Duration::from_secs(60),
            &format!("compacting the store: {keys} keys copied"),
        )
    };
    if std::fs::create_dir_all(&settings.store.path).is_ok() {
        crate::store::compact::at_start(&settings.store.path, &mut extend)?;
    }
    loop {
        match Store::open_with(&settings.store.path, settings.store.options.clone()) {
            Err(StoreError::DiskFull(why)) => {
                if !told {
                    told = true;
                    log::error!(
                        "The store's disk is full ({why}), so the store cannot be opened; hookrelay starts by itself once there is room on {}.",
                        settings.store.path.display()
                    );
                }
                std::thread::sleep(crate::store::space::WATCH_INTERVAL);
            }
            other => return other,
        }
    }
}

/// Watches for a store that can no longer be trusted and stops the server then: the stop runs
/// as at SIGTERM, and `run_until_stopped` returns the error (a non-zero exit).
fn spawn_disk_guard(
    space: Arc<crate::store::space::Space>,
    server: ServerHandle,
) -> std::io::Result<(Arc<AtomicBool>, JoinHandle<()>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = std::thread::Builder::new()
        .name("disk-guard".into())
        .spawn(move || {
            if space.wait_broken(&flag).is_some() {
                // The future only waits for the stop to finish; the command is already sent.
                drop(server.stop(true));
            }
        })?;
    Ok((stop, handle))
}

/// Logs what waits, from the counts the journal made when it opened the store (one scan).
fn report_backlog(journal: &Journal, settings: &Settings) {
    for (name, region) in &settings.regions {
        if region.target.is_placeholder() {
            log::warn!(
                "Region {name} is not configured yet: its {} is the placeholder from the shipped config. Its messages are accepted and kept in the queue; set regions.{name}.{} and restart hookrelay to send them.",
                region.target.setting_name(),
                region.target.setting_name()
            );
        }
    }
    let counts: std::collections::BTreeMap<String, u64> =
        journal.pending_by_target().into_iter().collect();
    for (region, n) in counts {
        if region.starts_with("url.") {
            log::info!("Resuming {n} pending deliveries for a one-off webhook ({region}).");
        } else if settings.regions.contains_key(&region) {
            log::info!("Resuming {n} pending deliveries for region {region}.");
        } else {
            log::error!(
                "{n} pending deliveries wait for region {region}, which the config no longer has; add [regions.{region}] to send them."
            );
        }
    }
}
