//! The sources' answers to the store's questions about bodies (`store::bodies::Bodies`): a
//! repeat is a body whose parsed fields are the same, and Tray's notifications are coalesced
//! under their seller, scope and act.

use crate::model::SourceKind;
use crate::sources::Record;
use crate::store::bodies::Bodies;

pub struct SourceBodies;

impl Bodies for SourceBodies {
    fn same(&self, kind: SourceKind, old: &str, new: &str) -> bool {
        match (
            Record::parse(kind, old.as_bytes()),
            Record::parse(kind, new.as_bytes()),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => old == new,
        }
    }

    fn coalesce_key(&self, kind: SourceKind, raw: &str) -> Option<String> {
        match Record::parse(kind, raw.as_bytes()) {
            Ok(Record::TrayCommerce(t)) => Some(t.coalesce_key()),
            _ => None,
        }
    }
}
