//! API tests: the real `Application` on port 0 against an in-process fake Slack (incoming
//! webhooks and the Web API).

mod fake_slack;
mod fake_web_api;
mod helpers;

mod admin;
mod any_input;
mod approvals;
mod binary;
mod cli;
mod compaction;
mod compressed;
mod crash;
mod delivery;
mod disk;
mod intake;
mod lookup;
mod ops;
mod recovery;
mod service;
mod signed;
mod slow_clients;
mod sources;
mod status_page;
mod upgrade;
mod web_api;
