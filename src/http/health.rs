//! `GET /healthz` (the process serves HTTP), `GET /readyz` (it can take and deliver webhooks)
//! and `GET /metrics` (Prometheus text format).

use std::sync::atomic::Ordering;

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::hooks::IntakeState;
use crate::store::now_ms;

/// The scheduler loops at least every second; this much silence means it is stuck.
const SCHEDULER_STALE_MS: u64 = 5_000;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready: the store takes writes and the delivery scheduler is running. 503 with the reasons
/// otherwise, so a load balancer or monitor sees why.
pub async fn readyz(state: web::Data<IntakeState>) -> HttpResponse {
    let mut problems = Vec::new();
    if !state.journal.is_open() {
        problems.push("the store is closed (stopping)".to_string());
    } else if state.journal.failing() && state.store.space().broken().is_none() {
        problems.push(
            "the store refuses writes after a disk error; see the log and restart hookrelay"
                .to_string(),
        );
    }
    problems.extend(state.store.space().problems());
    let silent = now_ms().saturating_sub(state.heartbeat.load(Ordering::Relaxed));
    if silent > SCHEDULER_STALE_MS {
        problems.push(format!(
            "the delivery scheduler has not run for {silent} ms"
        ));
    }
    if problems.is_empty() {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(json!({"status": "not_ready", "problems": problems}))
    }
}

pub async fn metrics(state: web::Data<IntakeState>) -> HttpResponse {
    let regions = state.settings.regions.keys().cloned();
    if let Some(tls) = &state.tls {
        let info = tls.info();
        state.metrics.set_tls_expiry(&info.subject, info.not_after);
    }
    let body = state.metrics.render(&state.store, &state.journal, regions);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
