//! What the store must know about a body that only the sources can say, given to it by the
//! layer above (`crate::bodies`) so that `store/` does not depend on `sources/`.

use crate::model::SourceKind;

pub trait Bodies: Send + Sync {
    /// Whether two bodies of `kind` from `source` say the same: a repeat, not a new version.
    fn same(&self, source: &str, kind: SourceKind, old: &str, new: &str) -> bool;
    /// Whether `new`, a version with other content than `old`, starts a new notification under
    /// the same key because `old` closed its message (a resolved alert that fires again).
    fn starts_anew(&self, _source: &str, _kind: SourceKind, _old: &str, _new: &str) -> bool {
        false
    }
    /// The coalescing key a stored body was filed under (Tray's), for the purge.
    fn coalesce_key(&self, kind: SourceKind, raw: &str) -> Option<String>;
}

/// Byte for byte, and no coalescing: for a store opened without the sources (tools, benches,
/// the store's own tests).
pub struct Plain;

impl Bodies for Plain {
    fn same(&self, _: &str, _: SourceKind, old: &str, new: &str) -> bool {
        old == new
    }

    fn coalesce_key(&self, _: SourceKind, _: &str) -> Option<String> {
        None
    }
}
