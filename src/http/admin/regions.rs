//! `POST /v1/regions/{name}/pause` and `/resume`: a paused region queues but does not send.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{admin, AdminError};
use crate::delivery::scheduler::Event;
use crate::http::hooks::IntakeState;
use crate::sources::SourceKind;
use crate::store::journal::{Accepted, Idempotency, NewNotification};

pub async fn pause(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    set(req, name.into_inner(), state, true).await
}

pub async fn resume(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    set(req, name.into_inner(), state, false).await
}

async fn set(
    req: HttpRequest,
    region: String,
    state: web::Data<IntakeState>,
    paused: bool,
) -> Result<HttpResponse, AdminError> {
    admin(&req, &state)?;
    if !state.settings.regions.contains_key(&region) {
        return Err(AdminError::NotFound(format!(
            "no region {region:?} in the config"
        )));
    }
    let journal = state.journal.clone();
    let r = region.clone();
    web::block(move || {
        if paused {
            journal.pause(&r, "paused by an operator")
        } else {
            journal.resume(&r)
        }
    })
    .await
    .map_err(|e| AdminError::Store(e.to_string()))??;
    let _ = state.scheduler.send(Event::Pause {
        region: region.clone(),
        paused,
    });
    log::warn!(
        "Region {region} was {} through the admin API.",
        if paused { "paused" } else { "resumed" }
    );
    Ok(HttpResponse::Ok().json(json!({"region": region, "paused": paused})))
}

/// `POST /v1/regions/{name}/test`: queues a clearly marked test message for the region, stored
/// and delivered like any other (so it proves the whole path).
pub async fn send_test(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    admin(&req, &state)?;
    let region = name.into_inner();
    if !state.settings.regions.contains_key(&region) {
        return Err(AdminError::NotFound(format!(
            "no region {region:?} in the config"
        )));
    }
    let title = format!("Test message from hookrelay for region {region}: this channel is set up");
    let new = NewNotification {
        source: "send-test".into(),
        kind: SourceKind::Generic,
        idempotency: Idempotency::None,
        raw: json!({ "title": title }).to_string(),
        region: region.clone(),
        url: None,
        also: Vec::new(),
        web_api: false,
        on_status: None,
        received_at_ms: state.clock.now_ms(),
    };
    let accepted = state.journal.accept(new).await?;
    let id = match accepted {
        Accepted::New(id)
        | Accepted::Duplicate(id)
        | Accepted::Updated(id)
        | Accepted::Coalesced(id) => id,
    };
    Ok(HttpResponse::Accepted()
        .json(json!({"status": "accepted", "id": id.to_string(), "region": region})))
}
