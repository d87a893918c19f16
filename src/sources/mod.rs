//! Webhook formats the relay understands, one file or folder per kind.
//!
//! A source kind turns a request body into a validated, normalised record and renders its Slack
//! messages. It knows nothing of HTTP status codes or storage: the `http` layer maps its errors,
//! the `store` keeps its output.
//!
//! - `opportunity/`: the CRM's new opportunity (`mod.rs` parses, `message.rs` renders);
//! - `tray_commerce/`: Tray's commerce notifications, form or JSON, with Tray's lists;
//! - `rainforest/`: Rainforest's integration events, their schema and allowed webhook hosts;
//! - `generic.rs`: any JSON object, shown through `{/pointer}` templates;
//! - `approval/`: approval requests and their Slack payloads;
//! - `record.rs`: a stored body parsed again (`Record`), with the parser intake used;
//! - `signature.rs`: Standard Webhooks and `X-Hub-Signature-256` checks.

pub mod approval;
pub mod generic;
pub mod opportunity;
pub mod rainforest;
mod record;
pub mod signature;
pub mod tray_commerce;

pub use crate::model::status;
pub use crate::model::{InvalidRecord, SourceKind};
pub use record::Record;
