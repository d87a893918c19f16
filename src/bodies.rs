//! The sources' answers to the store's questions about bodies (`store::bodies::Bodies`): a
//! repeat is a body whose parsed fields are the same (for a generic source, once its `ignore`d
//! pointers are left out), and Tray's notifications are coalesced under their seller, scope and
//! act.

use std::collections::HashMap;

use crate::config::Settings;
use crate::model::SourceKind;
use crate::sources::Record;
use crate::store::bodies::Bodies;

pub struct SourceBodies {
    /// Per generic source, the pointers whose changes are not a new version.
    ignore: HashMap<String, Vec<String>>,
    /// Per generic source, the values that close a message (`closed_when`).
    closed_when: HashMap<String, Vec<(String, String)>>,
}

impl SourceBodies {
    pub fn new(settings: &Settings) -> SourceBodies {
        let ignore = settings
            .sources
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), s.generic.as_ref()?.ignore.clone())))
            .filter(|(_, ignore)| !ignore.is_empty())
            .collect();
        let closed_when = settings
            .sources
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), s.generic.as_ref()?.closed_when.clone())))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        SourceBodies {
            ignore,
            closed_when,
        }
    }
}

impl Bodies for SourceBodies {
    fn same(&self, source: &str, kind: SourceKind, old: &str, new: &str) -> bool {
        match (
            Record::parse(kind, old.as_bytes()),
            Record::parse(kind, new.as_bytes()),
        ) {
            (Ok(Record::Generic(a)), Ok(Record::Generic(b))) => match self.ignore.get(source) {
                Some(ignore) => crate::sources::generic::same(&a, &b, ignore),
                None => a == b,
            },
            (Ok(a), Ok(b)) => a == b,
            _ => old == new,
        }
    }

    fn starts_anew(&self, source: &str, kind: SourceKind, old: &str, new: &str) -> bool {
        let Some(closing) = self.closed_when.get(source) else {
            return false;
        };
        match (
            Record::parse(kind, old.as_bytes()),
            Record::parse(kind, new.as_bytes()),
        ) {
            (Ok(Record::Generic(a)), Ok(Record::Generic(b))) => {
                crate::sources::generic::closes(&a, closing)
                    && !crate::sources::generic::closes(&b, closing)
            }
            _ => false,
        }
    }

    fn coalesce_key(&self, kind: SourceKind, raw: &str) -> Option<String> {
        match Record::parse(kind, raw.as_bytes()) {
            Ok(Record::TrayCommerce(t)) => Some(t.coalesce_key()),
            _ => None,
        }
    }
}
