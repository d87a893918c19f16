//! Kept for callers of the old path while the tree is being rearranged: a webhook URL is a
//! configured value, in `config::webhook_url`.

pub use crate::config::webhook_url::{WebhookUrl, WebhookUrlError};
