//! API tests: the real `Application` on port 0 against an in-process fake Slack (incoming
//! webhooks and the Web API).
//!
//! `helpers.rs` has `spawn_app`; `binary.rs` runs the real binary in a temp dir, for the tests
//! that kill it (`crash.rs`, `recovery.rs`: kills during a checkpoint and a replay, every cut of
//! the last record), fill its disk (`disk.rs`: a tmpfs that fills up, an injected `fdatasync`
//! failure, a start on a full disk) or starve it (`slow_clients.rs`: stalled bodies under a
//! small open-file limit). `upgrade.rs` opens a store the previous release wrote and crashed
//! (`tests/fixtures/`); `any_input.rs` holds the property tests; `presets.rs` posts the samples of
//! `examples/*/` through their presets, and `alertmanager.rs` runs the real Alertmanager against
//! the relay; the rest are named for what they exercise.

mod fake_slack;
mod fake_web_api;
mod helpers;
mod tls_support;

mod admin;
mod alertmanager;
mod any_input;
mod approvals;
mod binary;
mod cli;
mod compaction;
mod compressed;
mod crash;
mod delivery;
mod digests;
mod disk;
mod generic_versions;
mod intake;
mod layers;
mod lookup;
mod ops;
mod presets;
mod proxy;
mod recovery;
mod service;
mod signed;
mod slow_clients;
mod sources;
mod status_page;
mod tls;
mod tls_binary;
mod upgrade;
mod web_api;
