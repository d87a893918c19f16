//! `GET /v1/notifications/{id}` and `GET /v1/notifications?…`: what the relay holds.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::title::title;
use super::{caller, not_found, path_id, target_label, AdminError, Caller};
use crate::http::hooks::IntakeState;
use crate::sources::Record;
use crate::sources::SourceKind;
use crate::store::index::{ListState, MINUTE_MS};
use crate::store::listing::{self, first_id_from};
use crate::store::records::{Delivery, DeliveryState, MessageKind, Notification};
use crate::store::{Store, StoreError};

/// Most items one list call returns.
const MAX_LIMIT: usize = 500;

pub async fn show(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    let who = caller(&req, &state)?;
    let id = path_id(&id, "notification")?;
    let missing = || not_found("notification", &id.to_string());
    let n = state.store.notification(id)?.ok_or_else(missing)?;
    // A source's token sees only its own; others look absent rather than forbidden.
    if matches!(&who, Caller::Source(s) if *s != n.source) {
        return Err(missing());
    }
    let deliveries = deliveries(&state.store, &n)?;
    let mut out = detail(&n, &deliveries, &state.settings.sources);
    out["digest"] = digest_json(&state.store, &deliveries)?;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize)]
pub struct ListQuery {
    source: Option<String>,
    /// The sender's id (with `source`, or across the sources the caller may read).
    external_id: Option<String>,
    owner_email: Option<String>,
    state: Option<String>,
    /// Approval requests only: `undecided`, `approved` or `rejected`.
    decision: Option<String>,
    /// First arrived at or after this (ms since the epoch).
    since: Option<u64>,
    /// First arrived before this (ms since the epoch).
    until: Option<u64>,
    limit: Option<usize>,
    cursor: Option<u64>,
}

/// Ids and arrival times can disagree by the few milliseconds between a request's clock
/// reading and its turn in the writer; the time index is read this much wider, and the exact
/// time checked on each notification. It keys minutes, so `until` reads one more minute on.
const TIME_SLACK_MS: u64 = 60_000;

/// Candidates one list call examines at most (see `list`).
const MAX_EXAMINED: usize = 5000;

/// `GET /v1/sources/{source}/notifications/{external_id}`: a notification by the sender's id.
pub async fn show_external(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    let who = caller(&req, &state)?;
    let (source, external_id) = path.into_inner();
    let missing = || not_found("notification", &format!("{source}/{external_id}"));
    if matches!(&who, Caller::Source(s) if *s != source) {
        return Err(missing());
    }
    // A source without ids of its own (Tray, a generic source without `id`) is known by the
    // relay's id, which is what its lists show as the sender's id.
    let id = match state.store.find_external(&source, &external_id)? {
        Some(id) => id,
        None => external_id.parse::<u64>().map_err(|_| missing())?,
    };
    let n = state
        .store
        .notification(id)?
        .filter(|n| n.source == source && n.external_id == external_id)
        .ok_or_else(missing)?;
    let deliveries = deliveries(&state.store, &n)?;
    let mut out = detail(&n, &deliveries, &state.settings.sources);
    out["digest"] = digest_json(&state.store, &deliveries)?;
    Ok(HttpResponse::Ok().json(out))
}

pub async fn list(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    let who = caller(&req, &state)?;
    let q = query.into_inner();
    let source = match (&who, &q.source) {
        (Caller::Source(own), Some(asked)) if asked != own => return Err(AdminError::Forbidden),
        (Caller::Source(own), _) => Some(own.clone()),
        (Caller::Admin, s) => s.clone(),
    };
    let wanted = match q.state.as_deref() {
        None => None,
        Some(s) => Some(ListState::parse(s).ok_or_else(|| {
            AdminError::BadRequest(format!("state {s:?} is not pending, delivered or dead"))
        })?),
    };
    if let Some(d) = q.decision.as_deref() {
        if !["undecided", "approved", "rejected"].contains(&d) {
            return Err(AdminError::BadRequest(format!(
                "decision {d:?} is not undecided, approved or rejected"
            )));
        }
    }
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let store = &state.store;
    if !store.sync_lists()? {
        return Err(AdminError::Store(
            "its list indexes are being brought to this release's format, once after an upgrade"
                .into(),
        ));
    }
    let db = store.db();
    // Ids below this cannot have arrived since `since`, and ids from this on arrived after
    // `until` (see TIME_SLACK_MS).
    let lowest = match q.since {
        None => 0,
        Some(since) => first_id_from(db, since.saturating_sub(TIME_SLACK_MS))?.unwrap_or(u64::MAX),
    };
    let highest = match q.until {
        None => q.cursor.unwrap_or(u64::MAX),
        Some(until) => first_id_from(db, until.saturating_add(TIME_SLACK_MS + MINUTE_MS))?
            .unwrap_or(u64::MAX)
            .min(q.cursor.unwrap_or(u64::MAX)),
    };
    let candidates: Box<dyn Iterator<Item = Result<u64, StoreError>>> = match &q.external_id {
        // The sender's id: the idempotency index, per source.
        Some(ext) => {
            let sources: Vec<String> = match &source {
                Some(s) => vec![s.clone()],
                None => state.settings.sources.keys().cloned().collect(),
            };
            let mut ids = Vec::new();
            for s in sources {
                ids.extend(store.find_external(&s, ext)?);
            }
            ids.sort_unstable_by(|a, b| b.cmp(a));
            Box::new(
                ids.into_iter()
                    .filter(move |id| (lowest..highest).contains(id))
                    .map(Ok),
            )
        }
        None => listing::candidates(db, source.as_deref(), wanted, lowest, highest)?,
    };
    let mut items = Vec::new();
    let mut next_cursor = None;
    // A filter the indexes cannot answer (owner_email, decision) reads item by item; one call
    // reads at most this many, then answers the page so far with a cursor to go on.
    let mut examined = 0usize;
    for id in candidates {
        let id = id?;
        examined += 1;
        if examined > MAX_EXAMINED {
            next_cursor = Some(id + 1);
            break;
        }
        let Some(n) = store.notification_as_applied(id)? else {
            continue;
        };
        // What the index could not say: the exact time, the owner, the decision.
        let first = n
            .earlier
            .first()
            .map_or(n.received_at_ms, |v| v.received_at_ms);
        if q.since.is_some_and(|t| first < t) || q.until.is_some_and(|t| first >= t) {
            continue;
        }
        if source.as_deref().is_some_and(|s| s != n.source) {
            continue;
        }
        if let Some(owner) = &q.owner_email {
            let matches = matches!(Record::parse(n.kind, n.raw.as_bytes()), Ok(Record::Opportunity(o)) if o.owner_email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(owner)));
            if !matches {
                continue;
            }
        }
        let decision = decision_word(&n);
        if q.decision.is_some() && q.decision.as_deref() != decision {
            continue;
        }
        let ds = deliveries(store, &n)?;
        let overall = overall_state(&ds);
        if wanted.is_some_and(|w| w.as_str() != overall) {
            continue;
        }
        if items.len() == limit {
            next_cursor = Some(n.id + 1);
            break;
        }
        let mut item = json!({
            "id": n.id.to_string(),
            "source": n.source,
            "external_id": n.external_id,
            "title": title(&n, &state.settings.sources),
            "received_at_ms": n.received_at_ms,
            "state": overall,
        });
        if let Some(d) = decision {
            item["decision"] = json!(d);
        }
        items.push(item);
    }
    Ok(HttpResponse::Ok()
        .json(json!({"items": items, "next_cursor": next_cursor.map(|c: u64| c.to_string())})))
}

/// An approval request's decision as one word; `None` for other kinds.
fn decision_word(n: &Notification) -> Option<&'static str> {
    (n.kind == SourceKind::Approval).then(|| {
        n.decision
            .as_ref()
            .map_or("undecided", |d| d.verdict.as_str())
    })
}

fn deliveries(store: &Store, n: &Notification) -> Result<Vec<Delivery>, AdminError> {
    let mut out = Vec::new();
    for id in &n.deliveries {
        if let Some(d) = store.delivery_as_applied(*id)? {
            out.push(d);
        }
    }
    Ok(out)
}

/// `pending` while anything waits, else `dead` if anything died (and was not replayed), else
/// `delivered`.
fn overall_state(ds: &[Delivery]) -> &'static str {
    if ds.iter().any(|d| d.due_ms().is_some()) {
        "pending"
    } else if ds
        .iter()
        .any(|d| matches!(d.state, DeliveryState::Dead { .. }) && d.replayed_as.is_none())
    {
        "dead"
    } else {
        "delivered"
    }
}

fn detail(
    n: &Notification,
    ds: &[Delivery],
    sources: &std::collections::BTreeMap<String, crate::config::SourceSettings>,
) -> Value {
    let versions: Vec<Value> = (0..=n.latest_version())
        .filter_map(|v| n.version(v).map(|raw| (v, raw)))
        .map(|(v, raw)| {
            let received = n
                .earlier
                .get(v as usize)
                .map_or(n.received_at_ms, |e| e.received_at_ms);
            let parsed: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
            json!({"version": v, "received_at_ms": received, "raw": raw, "parsed": parsed})
        })
        .collect();
    let mut out = json!({
        "id": n.id.to_string(),
        "source": n.source,
        "kind": n.kind.as_str(),
        "external_id": n.external_id,
        "title": title(n, sources),
        "received_at_ms": n.received_at_ms,
        "count": n.count,
        "state": overall_state(ds),
        "versions": versions,
        "deliveries": ds.iter().map(delivery_json).collect::<Vec<_>>(),
    });
    // An approval request's decision (null while undecided) and every click on it.
    if n.kind == SourceKind::Approval {
        out["decision"] = json!(n.decision);
        out["events"] = json!(n.events);
    }
    out
}

/// The digest that delivered (or is to deliver) this notification, `null` when it went out on
/// its own: the digest's delivery id, how many it listed, this one's place in it, its state.
/// Only counts: the other members may be another source's, which a source's token must not see.
fn digest_json(store: &Store, ds: &[Delivery]) -> Result<Value, AdminError> {
    let Some((member, digest_id)) = ds.iter().rev().find_map(|d| d.digest.map(|g| (d.id, g)))
    else {
        return Ok(Value::Null);
    };
    let Some(digest) = store.delivery_as_applied(digest_id)? else {
        return Ok(json!({"delivery": digest_id.to_string()}));
    };
    let MessageKind::Digest { members, .. } = &digest.message else {
        return Ok(json!({"delivery": digest_id.to_string()}));
    };
    let position = if member == digest_id {
        1
    } else {
        members
            .iter()
            .position(|m| *m == member)
            .map_or(0, |p| p + 2)
    };
    let (state, at_ms) = match &digest.state {
        DeliveryState::Pending { .. } => ("pending", None),
        DeliveryState::Delivered { at_ms } => ("delivered", Some(*at_ms)),
        DeliveryState::Dead { at_ms, .. } => ("dead", Some(*at_ms)),
    };
    Ok(json!({
        "delivery": digest_id.to_string(),
        "size": members.len() + 1,
        "position": position,
        "state": state,
        "at_ms": at_ms,
        "posted": digest.posted,
    }))
}

pub fn delivery_json(d: &Delivery) -> Value {
    let (state, next_try_ms, reason) = match &d.state {
        DeliveryState::Pending { next_at_ms } => ("pending", Some(*next_at_ms), None),
        DeliveryState::Delivered { .. } => ("delivered", None, None),
        DeliveryState::Dead { reason, .. } => ("dead", None, Some(reason.clone())),
    };
    json!({
        "id": d.id.to_string(),
        "target": target_label(&d.region, d.url.as_deref()),
        "message": d.message,
        "state": state,
        "attempts": d.attempts,
        "next_try_ms": next_try_ms,
        "reason": reason,
        "history": d.history,
        "posted": d.posted,
        "digest": d.digest.map(|g| g.to_string()),
    })
}
