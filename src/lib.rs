//! # hookrelay
//!
//! Takes business webhooks, stores each one durably before answering, and delivers it as a Slack
//! message to the right regional incoming webhook, retrying until Slack has it.
//!
//! # Layout
//! - [`config`]: `config.toml` → validated [`config::Settings`].
//! - [`http`]: the actix-web receiver, one file per route.
//! - [`sources`]: webhook formats (the opportunity kind) → validated records.
//! - [`store`]: sled behind one module; [`store::journal`] is the single group-commit writer.
//! - [`delivery`]: scheduler, worker pool, retry policy, backoff, rate limits.
//! - [`slack`]: message rendering, escaping, the webhook URL and bot token types, request
//!   signing, the Web API, the HTTP transport.
//! - [`interactivity`]: button clicks from Slack (Request URL or Socket Mode) → the journal.
//! - [`routing`]: source default, `[[routes]]`, country table → target.
//! - [`clock`]: "now" for intake, replaceable in tests.
//! - [`startup`]: [`startup::Application`] wires it all together.
//! - [`connections`]: the connection limit, within the open-file limit and per actix worker.
//! - [`metrics`]: Prometheus registry and `/metrics` rendering.
//! - [`service`]: systemd readiness, watchdog, journald-friendly logs.
//! - [`cli`]: the command line; [`admin_client`] talks to a running relay's admin API.

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

pub use cli::admin_client;
