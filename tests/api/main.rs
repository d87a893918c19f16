//! API tests: the real `Application` on port 0 against an in-process fake Slack.

mod fake_slack;
mod helpers;

mod crash;
mod delivery;
mod intake;
