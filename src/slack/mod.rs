//! Everything Slack-specific: the target URL, the message, escaping, the Web API's methods and
//! answers, and the HTTP transport.

pub mod escape;
pub mod message;
pub mod online_check;
pub mod signature;
pub mod target;
pub mod transport;
pub mod web_api;
