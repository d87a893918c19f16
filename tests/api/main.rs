//! API tests: the real `Application` on port 0 against an in-process fake Slack.

mod fake_slack;
mod helpers;

mod admin;
mod any_input;
mod binary;
mod cli;
mod crash;
mod delivery;
mod intake;
mod ops;
mod recovery;
mod service;
mod sources;
mod status_page;
