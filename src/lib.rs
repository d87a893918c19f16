//! # hookrelay
//!
//! Takes business webhooks, stores each one durably before answering, and delivers it as a Slack
//! message to the right regional incoming webhook, retrying until Slack has it.
//!
//! # Layout
//! Each layer uses only those above it (ARCHITECTURE.md, "Layers"):
//! - [`model`]: plain values every layer shares (a source's kind, approval records, `on_status`).
//! - [`config`]: `config.toml` → validated [`config::Settings`], with the values it holds
//!   (webhook URLs, tokens, secrets); uses no subsystem.
//! - [`sources`]: webhook formats → validated records, and their Slack messages.
//! - [`slack`]: escaping, request signing, the Web API's methods and answers, the transport.
//! - [`store`]: the write-ahead log and sled; [`store::journal`] is the single group-commit writer.
//! - [`delivery`]: scheduler, worker pool, retry policy, backoff, rate limits.
//! - [`http`]: the actix-web receiver, one file per route.
//! - [`interactivity`]: button clicks from Slack (Request URL or Socket Mode) → the journal.
//! - [`routing`]: source default, `[[routes]]`, country table → target.
//! - [`bodies`]: what only the sources can tell the store about a body.
//! - [`clock`]: "now" for intake, replaceable in tests.
//! - [`startup`]: [`startup::Application`] wires it all together.
//! - [`tls`]: HTTPS on the listener: the certificate, its reload, client certificates.
//! - [`connections`]: the connection limit, within the open-file limit and per actix worker.
//! - [`metrics`]: Prometheus registry and `/metrics` rendering.
//! - [`service`]: systemd readiness, watchdog, journald-friendly logs.
//! - [`cli`]: the command line; [`cli::admin_client`] talks to a running relay's admin API.

pub mod bodies;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod delivery;
pub mod http;
pub mod interactivity;
pub mod metrics;
pub mod model;
pub mod routing;
pub mod service;
pub mod slack;
pub mod sources;
pub mod startup;
pub mod store;
pub mod tls;
