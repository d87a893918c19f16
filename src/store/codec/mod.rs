//! How stored values are encoded: notifications and deliveries, the values every webhook
//! writes, in a compact binary form; everything else as JSON.
//!
//! The compact form starts with [`COMPACT`], JSON with `{` (or another JSON start), so both
//! decode: a store written before the compact form (format 3) reads as it is, and its values
//! become compact as they are rewritten. Numbers are LEB128 varints and text is
//! length-prefixed, so a raw body is stored as received, not escaped into a JSON string. Fields
//! that are rare or deep (a decision, its events, a Web API message's reference, a message
//! other than the full post) are embedded as JSON: they cost little where they are rare and
//! keep one definition of their shape. `hookrelay store dump` prints either form as JSON.
//!
//! A field added to a record needs a new tag here (the compact form has no field names), with
//! the decoder of the old tag kept.
//!
//! This file holds the [`Stored`] trait and the JSON form; `primitives.rs` the compact form's
//! varints and text, `records.rs` the layouts of notifications and deliveries.

mod primitives;
mod records;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// The first byte of a compact value (version 1 of the compact form). JSON never starts with it.
pub const COMPACT: u8 = 0x01;
/// The first byte of a compact delivery that was listed in a digest: version 1's fields, then
/// the digest's id. Only such deliveries use it, so every other value stays as it was.
pub const COMPACT_DIGEST: u8 = 0x02;

/// A value the store keeps.
pub trait Stored: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError>;
}

/// Values kept as JSON: small, or written rarely.
macro_rules! json_stored {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::store::codec::Stored for $t {
            fn to_bytes(&self) -> Vec<u8> {
                $crate::store::codec::json_bytes(self)
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, $crate::store::StoreError> {
                $crate::store::codec::from_json(bytes)
            }
        }
    )*};
}
pub(crate) use json_stored;

pub fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail: no maps with non-string keys, no I/O.
    serde_json::to_vec(value).unwrap_or_default()
}

pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

json_stored!(serde_json::Value);

#[cfg(test)]
mod tests;
