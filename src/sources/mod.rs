//! Webhook formats the relay understands, one file per kind.
//!
//! A source kind turns a request body into a validated, normalised record. It knows nothing of
//! HTTP status codes or storage: the `http` layer maps its errors, the `store` keeps its output.

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
