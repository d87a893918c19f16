//! `GET /v1/dead-letters`, `POST /v1/dead-letters/{id}/replay`, `POST /v1/dead-letters/replay`,
//! `DELETE /v1/dead-letters/{id}`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::notifications::delivery_json;
use super::title::title;
use super::{admin, not_found, path_id, AdminError};
use crate::delivery::scheduler::Event;
use crate::http::hooks::IntakeState;
use crate::store::records::DeliveryState;

#[derive(Deserialize)]
pub struct Page {
    /// At most this many (default 500): after a long outage the list can be long.
    limit: Option<usize>,
}

pub async fn list(
    req: HttpRequest,
    page: web::Query<Page>,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    admin(&req, &state)?;
    let all = state.store.dead_letters()?;
    let total = all.len();
    let limit = page.limit.unwrap_or(500).clamp(1, 10_000);
    let mut items = Vec::new();
    for d in all.into_iter().take(limit) {
        let mut v = delivery_json(&d);
        v["notification_id"] = json!(d.notification_id.to_string());
        // What it is, so one dead letter can be told from another without a second call.
        if let Some(n) = state.store.notification(d.notification_id)? {
            v["source"] = json!(n.source);
            v["external_id"] = json!(n.external_id);
            v["title"] = json!(title(&n, &state.settings.sources));
        }
        items.push(v);
    }
    Ok(HttpResponse::Ok().json(json!({"items": items, "total": total})))
}

pub async fn replay_one(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    admin(&req, &state)?;
    let id = path_id(&id, "dead letter")?;
    let missing = || not_found("dead letter", &id.to_string());
    let new = replay(&state, vec![id]).await?;
    match new.first().copied().flatten() {
        Some(delivery) => Ok(HttpResponse::Ok()
            .json(json!({"replayed": id.to_string(), "delivery": delivery.to_string()}))),
        None => Err(missing()),
    }
}

#[derive(Deserialize)]
pub struct Filter {
    region: Option<String>,
    reason: Option<String>,
}

pub async fn replay_all(
    req: HttpRequest,
    filter: web::Query<Filter>,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    admin(&req, &state)?;
    let ids: Vec<u64> = state
        .store
        .dead_letters()?
        .into_iter()
        .filter(|d| filter.region.as_deref().map_or(true, |r| r == d.region))
        .filter(|d| match (&filter.reason, &d.state) {
            (None, _) => true,
            (Some(want), DeliveryState::Dead { reason, .. }) => {
                reason.to_lowercase().contains(&want.to_lowercase())
            }
            _ => false,
        })
        .map(|d| d.id)
        .collect();
    let replayed = replay(&state, ids).await?.into_iter().flatten().count();
    Ok(HttpResponse::Ok().json(json!({"replayed": replayed})))
}

pub async fn drop(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    admin(&req, &state)?;
    let id = path_id(&id, "dead letter")?;
    let missing = || not_found("dead letter", &id.to_string());
    if !state.store.dead_letters()?.iter().any(|d| d.id == id) {
        return Err(missing());
    }
    let journal = state.journal.clone();
    web::block(move || journal.drop_dead(id))
        .await
        .map_err(|e| AdminError::Store(e.to_string()))??;
    Ok(HttpResponse::Ok().json(json!({"dropped": id.to_string()})))
}

async fn replay(state: &IntakeState, ids: Vec<u64>) -> Result<Vec<Option<u64>>, AdminError> {
    let journal = state.journal.clone();
    let new = web::block(move || journal.replay(ids))
        .await
        .map_err(|e| AdminError::Store(e.to_string()))??;
    // The scheduler learns of the fresh deliveries like of new notifications.
    let _ = state.scheduler.send(Event::Wake(Vec::new()));
    Ok(new)
}
