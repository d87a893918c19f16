//! `GET /v1/notifications/{id}` and `GET /v1/notifications?…`: what the relay holds.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{caller, not_found, path_id, target_label, AdminError, Caller};
use crate::http::hooks::IntakeState;
use crate::sources::SourceKind;
use crate::store::records::{Delivery, DeliveryState, Notification, Record};
use crate::store::{decode, keys, Store};

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
    Ok(HttpResponse::Ok().json(detail(&n, &deliveries)))
}

#[derive(Deserialize)]
pub struct ListQuery {
    source: Option<String>,
    owner_email: Option<String>,
    state: Option<String>,
    /// Approval requests only: `undecided`, `approved` or `rejected`.
    decision: Option<String>,
    limit: Option<usize>,
    cursor: Option<u64>,
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
    if let Some(s) = q.state.as_deref() {
        if !["pending", "delivered", "dead"].contains(&s) {
            return Err(AdminError::BadRequest(format!(
                "state {s:?} is not pending, delivered or dead"
            )));
        }
    }
    if let Some(d) = q.decision.as_deref() {
        if !["undecided", "approved", "rejected"].contains(&d) {
            return Err(AdminError::BadRequest(format!(
                "decision {d:?} is not undecided, approved or rejected"
            )));
        }
    }
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    let end = keys::notification(q.cursor.unwrap_or(u64::MAX));
    let mut items = Vec::new();
    let mut next_cursor = None;
    state.store.sync_reads()?;
    // Newest first: ids grow with time.
    for entry in state.store.db().range(keys::notification(0)..end).rev() {
        let (_, value) = entry.map_err(crate::store::StoreError::from)?;
        let n: Notification = decode(&value)?;
        if source.as_deref().is_some_and(|s| s != n.source) {
            continue;
        }
        if let Some(owner) = &q.owner_email {
            let matches = matches!(n.record(), Ok(Record::Opportunity(o)) if o.owner_email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(owner)));
            if !matches {
                continue;
            }
        }
        let decision = decision_word(&n);
        if q.decision.is_some() && q.decision.as_deref() != decision {
            continue;
        }
        let ds = deliveries(&state.store, &n)?;
        let overall = overall_state(&ds);
        if q.state.as_deref().is_some_and(|s| s != overall) {
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
        if let Some(d) = store.delivery(*id)? {
            out.push(d);
        }
    }
    Ok(out)
}

/// `pending` while anything waits, else `dead` if anything died, else `delivered`.
fn overall_state(ds: &[Delivery]) -> &'static str {
    if ds.iter().any(|d| d.due_ms().is_some()) {
        "pending"
    } else if ds
        .iter()
        .any(|d| matches!(d.state, DeliveryState::Dead { .. }))
    {
        "dead"
    } else {
        "delivered"
    }
}

fn detail(n: &Notification, ds: &[Delivery]) -> Value {
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
    })
}
