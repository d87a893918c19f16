//! Everything Slack-specific: the target URL, the message, escaping and the HTTP transport.

pub mod escape;
pub mod message;
pub mod target;
pub mod transport;
