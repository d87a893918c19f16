//! Versions of a generic notification: a repeat of its key is a new version when anything but
//! the `ignore`d pointers differs, and the follow-up names what changed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{scalar_text, GenericSettings};
use crate::config::generic::template_pointers;

/// One shown value that changed between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The field's label, or the pointer for a value of the title.
    pub label: String,
    /// The earlier value ("—" when it had none).
    pub old: String,
    /// The new value ("—" when it has none).
    pub new: String,
}

/// Whether two bodies say the same once the ignored pointers are left out.
pub fn same(old: &Value, new: &Value, ignore: &[String]) -> bool {
    stripped(old, ignore) == stripped(new, ignore)
}

/// What changed from `old` to `new`: the shown values (title pointers and fields) that differ,
/// and how many other values differ (ignored pointers left out).
pub fn changes(old: &Value, new: &Value, settings: &GenericSettings) -> (Vec<Changed>, usize) {
    let (old, new) = (
        stripped(old, &settings.ignore),
        stripped(new, &settings.ignore),
    );
    let mut shown: Vec<(String, String)> = template_pointers(&settings.title)
        .into_iter()
        .chain(settings.marks.iter().map(|(p, _)| p.as_str()))
        .map(|p| (field_label(p, settings), p.to_string()))
        .collect();
    for (label, pointer) in &settings.fields {
        if !shown.iter().any(|(_, p)| p == pointer) {
            shown.push((label.clone(), pointer.clone()));
        }
    }
    let text = |doc: &Value, p: &str| doc.pointer(p).and_then(scalar_text);
    let mut changed = Vec::new();
    for (label, pointer) in &shown {
        let (a, b) = (text(&old, pointer), text(&new, pointer));
        if a != b && !changed.iter().any(|c: &Changed| c.label == *label) {
            changed.push(Changed {
                label: label.clone(),
                old: a.unwrap_or_else(|| "—".into()),
                new: b.unwrap_or_else(|| "—".into()),
            });
        }
    }
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves(&old, String::new(), &mut a);
    leaves(&new, String::new(), &mut b);
    let is_shown = |p: &str| shown.iter().any(|(_, s)| s == p);
    let others = a
        .keys()
        .chain(b.keys().filter(|k| !a.contains_key(*k)))
        .filter(|k| !is_shown(k) && a.get(*k) != b.get(*k))
        .count();
    (changed, others)
}

/// The label a pointer has among the fields, else the pointer's last segment.
fn field_label(pointer: &str, settings: &GenericSettings) -> String {
    settings
        .fields
        .iter()
        .find(|(_, p)| p == pointer)
        .map(|(l, _)| l.clone())
        .unwrap_or_else(|| {
            let last = pointer.rsplit('/').next().unwrap_or(pointer);
            let mut c = last.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
}

/// Every scalar leaf of a document by its pointer.
fn leaves(v: &Value, at: String, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                leaves(child, format!("{at}/{}", escape(k)), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                leaves(child, format!("{at}/{i}"), out);
            }
        }
        scalar => {
            out.insert(at, scalar.clone());
        }
    }
}

/// A document with the values at the ignored pointers removed.
fn stripped(doc: &Value, ignore: &[String]) -> Value {
    let mut doc = doc.clone();
    for pattern in ignore {
        let segments: Vec<String> = pattern.split('/').skip(1).map(unescape).collect();
        remove(&mut doc, &segments);
    }
    doc
}

/// Removes what `segments` points at (`*` = every key or index there). An array element is
/// replaced by null rather than removed, so the indexes after it still mean the same element.
fn remove(v: &mut Value, segments: &[String]) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    match v {
        Value::Object(map) => {
            if rest.is_empty() {
                if first == "*" {
                    map.clear();
                } else {
                    map.remove(first);
                }
            } else if first == "*" {
                map.values_mut().for_each(|c| remove(c, rest));
            } else if let Some(c) = map.get_mut(first) {
                remove(c, rest);
            }
        }
        Value::Array(items) => {
            let chosen: Vec<usize> = if first == "*" {
                (0..items.len()).collect()
            } else {
                first
                    .parse()
                    .ok()
                    .filter(|i| *i < items.len())
                    .into_iter()
                    .collect()
            };
            for i in chosen {
                if rest.is_empty() {
                    items[i] = Value::Null;
                } else {
                    remove(&mut items[i], rest);
                }
            }
        }
        _ => {}
    }
}

/// A key as a pointer segment (RFC 6901: `~` → `~0`, `/` → `~1`).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}
