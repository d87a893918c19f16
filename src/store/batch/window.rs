//! An open coalescing window as stored under its `c` key: the notification repeats count into,
//! its one delivery, and until when.

/// An open coalescing window, as stored under its `c` key.
#[derive(Debug, Clone, Copy)]
pub(in crate::store) struct Window {
    pub(super) notification_id: u64,
    /// The one delivery that posts the count.
    pub(super) delivery_id: u64,
    /// Repeats received before this (ms) are counted in; fixed when the window opens, so a
    /// later config change does not reopen a window whose message is out.
    pub(super) ends_ms: u64,
}

impl Window {
    pub fn encode(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.notification_id.to_be_bytes());
        out[8..16].copy_from_slice(&self.delivery_id.to_be_bytes());
        out[16..].copy_from_slice(&self.ends_ms.to_be_bytes());
        out
    }

    pub(super) fn decode(v: &[u8]) -> Option<Window> {
        let n = |r: std::ops::Range<usize>| {
            v.get(r)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
        };
        Some(Window {
            notification_id: n(0..8)?,
            delivery_id: n(8..16)?,
            ends_ms: n(16..24)?,
        })
    }
}
