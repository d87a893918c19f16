//! `hookrelay store dump`: every key of the store (or those under a prefix) as one JSON line,
//! the key spelled out and the value decoded, whatever encoding it is stored in, so the store
//! stays inspectable with a text tool.
//!
//! sled lets one process open a store, so this runs on a stopped relay (or on a copy). It reads
//! sled only: records the log holds but sled does not yet (after a crash) are applied at the
//! next start, and `hookrelay store check` counts them.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use super::records::{Delivery, Notification};
use super::{decode, keys, StoreError};

/// Why a dump could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("there is no store at {0}")]
    Missing(String),
    #[error("the store at {0} is open in a running relay; stop it first (systemctl stop hookrelay), or dump a copy of the directory")]
    Locked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the dump failed: {0}")]
    Write(#[from] std::io::Error),
}

/// Writes the dump; returns how many keys it wrote. One-off webhook URLs (`url` of a
/// notification or delivery) are secrets: they are printed through `mask`.
pub fn dump(
    path: &Path,
    prefix: &[u8],
    mask: &dyn Fn(&str) -> String,
    out: &mut impl Write,
) -> Result<u64, DumpError> {
    let shown = || path.display().to_string();
    if !path.join("db").exists() && !path.join("conf").exists() {
        return Err(DumpError::Missing(shown()));
    }
    let db = sled::Config::new()
        .path(path)
        .flush_every_ms(None)
        .open()
        .map_err(|e| {
            // sled says so in an I/O error's text only.
            if super::is_locked(&e) {
                DumpError::Locked(shown())
            } else {
                DumpError::Store(e.into())
            }
        })?;
    let mut count = 0;
    for entry in db.scan_prefix(prefix) {
        let (key, value) = entry.map_err(StoreError::from)?;
        let mut value = value_json(&key, &value);
        if let Some(url) = value.get("url").and_then(Value::as_str) {
            value["url"] = json!(mask(url));
        }
        let line = json!({"key": key_text(&key), "value": value});
        writeln!(out, "{line}")?;
        count += 1;
    }
    Ok(count)
}

fn id_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// `name\0rest` → (name, rest)
fn split_name(bytes: &[u8]) -> Option<(String, &[u8])> {
    let sep = bytes.iter().position(|b| *b == 0)?;
    Some((
        String::from_utf8_lossy(&bytes[..sep]).into_owned(),
        &bytes[sep + 1..],
    ))
}

fn ids_text(bytes: &[u8]) -> String {
    bytes
        .chunks(8)
        .map(|c| match <[u8; 8]>::try_from(c) {
            Ok(a) => u64::from_be_bytes(a).to_string(),
            Err(_) => format!("{c:02x?}"),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The key spelled out: its prefix letter, then its parts separated by `/`.
pub fn key_text(key: &[u8]) -> String {
    let Some((&first, rest)) = key.split_first() else {
        return String::new();
    };
    let p = first as char;
    let text = match first {
        b'm' | b'p' | b'P' => Some(String::from_utf8_lossy(rest).into_owned()),
        b'n' | b'd' | b'x' => Some(ids_text(rest)),
        b't' => Some(ids_text(rest)),
        b'k' | b'c' => split_name(rest)
            .map(|(source, ext)| format!("{source}/{}", String::from_utf8_lossy(ext))),
        b'i' | b'q' => split_name(rest).map(|(name, ids)| format!("{name}/{}", ids_text(ids))),
        b's' => split_name(rest).and_then(|(source, rest)| {
            let (state, ids) = rest.split_first()?;
            Some(format!("{source}/{}/{}", *state as char, ids_text(ids)))
        }),
        _ => None,
    };
    match text {
        Some(t) => format!("{p}/{t}"),
        None => format!("{key:02x?}"),
    }
}

/// The value decoded: records as their JSON, ids and times as numbers, the rest as text.
pub fn value_json(key: &[u8], value: &[u8]) -> Value {
    let record = match key.first() {
        Some(&keys::NOTIFICATION) => decode::<Notification>(value).map(|n| json!(n)),
        Some(&keys::DELIVERY) => decode::<Delivery>(value).map(|d| json!(d)),
        _ => Err(StoreError::Corrupt(String::new())),
    };
    if let Ok(v) = record {
        return v;
    }
    if key == keys::COUNTERS {
        if let Ok(v) = decode::<Value>(value) {
            return v;
        }
    }
    if value.is_empty() {
        return Value::Null;
    }
    if value.len() == 8 {
        if let Some(n) = id_at(value, 0) {
            return json!(n);
        }
    }
    match std::str::from_utf8(value) {
        Ok(text) => json!(text),
        Err(_) => json!(format!("{value:02x?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_spelled_out() {
        assert_eq!(key_text(&keys::notification(7)), "n/7");
        assert_eq!(key_text(&keys::due("UK", 1000, 9)), "q/UK/1000/9");
        assert_eq!(key_text(&keys::external("crm", "006A")), "k/crm/006A");
        assert_eq!(
            key_text(
                &super::super::index::delivery_key(
                    "crm",
                    super::super::index::ListState::Dead,
                    3,
                    4
                )
                .unwrap()
            ),
            "s/crm/d/3/4"
        );
        assert_eq!(key_text(keys::NEXT_ID), "m/next_id");
        assert_eq!(key_text(&[b'z', 1]), "[7a, 01]");
    }
}
