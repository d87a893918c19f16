//! Rainforest's Integrations API (seed 004), at the paths it defines: `POST /events`,
//! `GET /integrations`, `GET /integrations/{key}`, with exactly its request and response shapes.
//!
//! The destination URL comes in each event's settings, so it is checked against the source's
//! `allowed_webhook_hosts` (the relay must not be made to call internal addresses) and stored
//! apart from the event, masked everywhere it is shown.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::body::read_body;
use super::error::json_error;
use super::hooks::{authorise, check_backlog, HookError, IntakeState};
use crate::routing::Destination;
use crate::sources::rainforest::{self, RainforestEvent};
use crate::sources::SourceKind;
use crate::store::journal::{Idempotency, NewNotification};

/// `POST /events`: 201 `{"status":"ok"}` once every target's delivery is on disk. Every
/// answer is counted in `hookrelay_received_total`, as for `/hooks/{source}`.
pub async fn events(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, HookError> {
    let result = accept_event(req.clone(), payload, state.clone()).await;
    let source = rainforest_source(&state).map_or("rainforest", |(name, _)| name.as_str());
    let outcome = match &result {
        Ok((_, outcome)) => *outcome,
        Err(e) => e.kind(),
    };
    state.metrics.received(source, outcome);
    super::senders::note(&state, &req, source, result.as_ref().err());
    result.map(|(response, _)| response)
}

fn rainforest_source(state: &IntakeState) -> Option<(&String, &crate::config::SourceSettings)> {
    state
        .settings
        .sources
        .iter()
        .find(|(_, s)| s.kind == SourceKind::Rainforest)
}

async fn accept_event(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IntakeState>,
) -> Result<(HttpResponse, &'static str), HookError> {
    let Some((source, settings)) = rainforest_source(&state) else {
        return Err(HookError::UnknownSource("rainforest".into()));
    };
    authorise(&req, settings, state.settings.server.requires_client_cert())?;
    check_backlog(&state)?;
    let body = read_body(&req, payload, &state.settings.server).await?;
    let event = RainforestEvent::parse(&body, &settings.allowed_webhook_hosts).map_err(|e| {
        HookError::BadEvent {
            kind: e.kind(),
            message: e.to_string(),
        }
    })?;

    // One notification with a delivery per target, stored in one batch: all or none. The URLs
    // (secrets) are kept in the deliveries, not in the stored body.
    let raw = json!({"event_name": event.event_name, "payload": event.payload}).to_string();
    let mut targets = event.targets.iter().map(|url| {
        let d = Destination::url(url.clone());
        (d.region, Some(url.original()))
    });
    let Some((region, url)) = targets.next() else {
        return Err(HookError::BadEvent {
            kind: "invalid_request",
            message: "the event names no slack integration".into(),
        });
    };
    let new = NewNotification {
        source: source.clone(),
        kind: SourceKind::Rainforest,
        idempotency: event
            .dedupe_key()
            .map_or(Idempotency::None, Idempotency::Dedupe),
        raw,
        region,
        url,
        also: targets.collect(),
        web_api: false,
        on_status: None,
        received_at_ms: state.clock.now_ms(),
    };
    let accepted = state.journal.accept(new).await.map_err(HookError::Store)?;
    let outcome = match accepted {
        crate::store::journal::Accepted::Duplicate(_) => "duplicate",
        _ => "accepted",
    };
    Ok((
        HttpResponse::Created().json(json!({"status": "ok"})),
        outcome,
    ))
}

/// `GET /integrations`: the schemas of every supported integration.
pub async fn integrations() -> HttpResponse {
    HttpResponse::Ok().json(rainforest::integrations())
}

/// `GET /integrations/{key}`: one schema, 404 for unknown keys.
pub async fn integration(key: web::Path<String>) -> HttpResponse {
    match rainforest::integration(&key) {
        Some(schema) => HttpResponse::Ok().json(schema),
        None => json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!(
                "no integration with key {:?}; GET /integrations lists them",
                key.as_str()
            ),
        ),
    }
}
