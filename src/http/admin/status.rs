//! `GET /v1/status`: per region what waits, how old the oldest is, the last success and error,
//! and whether it is paused; per source the last webhook taken and refused, and from which
//! address (`http::senders`). Shared with the status page.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{admin, AdminError};
use crate::http::hooks::IntakeState;
use crate::http::senders;
use crate::store::now_ms;

pub async fn status(
    req: HttpRequest,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, AdminError> {
    admin(&req, &state)?;
    Ok(HttpResponse::Ok().json(status_json(&state)?))
}

pub fn status_json(state: &IntakeState) -> Result<Value, AdminError> {
    let pending = state.journal.pending_by_target();
    let paused = state.store.manual_pauses()?;
    let now = now_ms();
    let mut regions = Vec::new();
    for (name, region) in &state.settings.regions {
        let oldest_pending_seconds = match state.store.first_due(name)? {
            // As applied: the status must answer while the applier waits for disk space.
            Some((_, id)) => state
                .store
                .delivery_as_applied(id)?
                .map(|d| now.saturating_sub(d.created_at_ms) / 1000),
            None => None,
        };
        let news = state.metrics.news(name);
        regions.push(json!({
            "name": name,
            "webhook": region.target.to_string(),
            "placeholder": region.target.is_placeholder(),
            "queue_depth": pending.get(name).copied().unwrap_or(0),
            "oldest_pending_seconds": oldest_pending_seconds,
            "last_success_ms": news.last_success_ms,
            "last_error_ms": news.last_error_ms,
            "last_error": news.last_error,
            "digests": news.digests,
            "digested": news.digested,
            "last_digest_ms": news.last_digest_ms,
            "last_digest_size": news.last_digest_size,
            "digest_after_ms": region.digest.after.as_millis() as u64,
            "digest_max": region.digest.max,
            "paused": paused.contains_key(name),
            "pause_reason": paused.get(name),
        }));
    }
    let one_off: u64 = pending
        .iter()
        .filter(|(k, _)| k.starts_with("url."))
        .map(|(_, v)| *v)
        .sum();
    let space = state.store.space();
    let store = json!({
        "free_bytes": space.free(),
        "min_free_bytes": space.reserve_bytes(),
        "accepting_webhooks": space.accepts_webhooks(),
        "delivering": space.takes_writes(),
        "problems": space.problems(),
    });
    let tls = state.tls.as_ref().map(|t| {
        let info = t.info();
        json!({
            "subject": info.subject,
            "issuer": info.issuer,
            "names": info.names,
            "not_after": info.not_after_text(),
            "not_after_unix": info.not_after,
            "days_left": info.seconds_left(crate::tls::unix_now()) / 86_400,
            "client_certificates": state.settings.server.requires_client_cert(),
            "reload_refused": t.refused().map(|(at, why)| json!({
                "at": crate::tls::pair::rfc3339(at),
                "error": why,
            })),
        })
    });
    // Every configured source, by name; `null`s until its first webhook.
    let sources: serde_json::Map<String, Value> = state
        .settings
        .sources
        .keys()
        .map(|name| (name.clone(), senders::status_json(state.senders.last(name))))
        .collect();
    Ok(json!({
        "store": store,
        "tls": tls,
        "regions": regions,
        "sources": sources,
        "one_off_queue_depth": one_off,
        "pending": state.journal.pending(),
        "dead_letters": state.journal.dead_letters(),
        "recent": state.metrics.recent(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
