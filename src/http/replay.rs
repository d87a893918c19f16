//! Remembers the `webhook-id`s of signed requests already taken, so a captured request sent
//! again inside the signature's 5-minute window is refused. Outside the window the timestamp
//! check refuses it, so ids are kept only twice that long and memory stays bounded.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::sources::signature::TOLERANCE_SECS;

/// How long an id is remembered: longer than any timestamp the check lets through.
const KEEP_MS: u64 = 2 * TOLERANCE_SECS * 1000;
/// Expired ids are swept once the map holds this many, at most once per `SWEEP_EVERY_MS`, so a
/// busy sender does not make every request walk the map.
const SWEEP_AT: usize = 4096;
const SWEEP_EVERY_MS: u64 = 10_000;

#[derive(Default)]
pub struct ReplayGuard {
    /// The ids and when the map was last swept.
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// (source, webhook-id) → forget after (ms).
    ids: HashMap<(String, String), u64>,
    /// When expired ids were last swept (ms).
    swept_ms: u64,
}

impl ReplayGuard {
    /// Claims an id before its request is stored; `false` if it was taken already.
    pub fn claim(&self, source: &str, id: &str, now_ms: u64) -> bool {
        let Ok(mut guard) = self.seen.lock() else {
            return true; // a poisoned lock must not refuse every sender
        };
        let Seen {
            ids: seen,
            swept_ms,
        } = &mut *guard;
        if seen.len() >= SWEEP_AT && now_ms >= *swept_ms + SWEEP_EVERY_MS {
            seen.retain(|_, until| *until > now_ms);
            *swept_ms = now_ms;
        }
        let key = (source.to_string(), id.to_string());
        match seen.get(&key) {
            Some(until) if *until > now_ms => false,
            _ => {
                seen.insert(key, now_ms + KEEP_MS);
                true
            }
        }
    }

    /// Gives an id back when its request was not stored, so the sender's retry is taken.
    pub fn release(&self, source: &str, id: &str) {
        if let Ok(mut guard) = self.seen.lock() {
            guard.ids.remove(&(source.to_string(), id.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_taken_once_until_it_expires_or_is_released() {
        let g = ReplayGuard::default();
        assert!(g.claim("crm", "msg_1", 0));
        assert!(!g.claim("crm", "msg_1", 1000));
        assert!(g.claim("other", "msg_1", 1000), "ids are per source");
        assert!(g.claim("crm", "msg_1", KEEP_MS + 1));
        g.release("crm", "msg_1");
        assert!(g.claim("crm", "msg_1", KEEP_MS + 2));
    }
}
