//! Everything Slack-specific: escaping for mrkdwn and plain text, the Web API's methods and
//! answers, request signing, the online check and the HTTP transport. It knows no source kind:
//! each source renders its own messages (`sources/`) with `escape`.

pub mod escape;
pub mod online_check;
pub mod signature;
pub mod transport;
pub mod web_api;
