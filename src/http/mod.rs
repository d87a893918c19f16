//! The HTTP receiver: one file per route, plus the JSON error shape they share.
//!
//! - `hooks.rs`: `POST /hooks/{source}`, with `HookError` mapped to status codes;
//! - `authorise.rs`: a source's bearer token and client certificate subject;
//! - `rainforest.rs`: Rainforest's `/events` and `/integrations`;
//! - `interactions.rs`: Slack's Request URL `/slack/interactions`, its signature checked first;
//! - `replay.rs`: the `webhook-id`s of signed requests already taken (a replay is refused);
//! - `sender.rs`: the sender's address, `X-Forwarded-For` believed only from a trusted proxy;
//! - `senders.rs`: per source the last webhook taken and refused, and the refusals' log line;
//! - `health.rs` (`/healthz`, `/readyz`, `/metrics`), `fallback.rs` (JSON 404 and 405);
//! - `body.rs`: reading a body within its time and size limits, gzip and deflate decoded;
//! - `error.rs`: the JSON error shape, also for actix's extractor errors;
//! - `admin/`: the admin API under `/v1`; `status_page/`: the HTML page at `/`.

pub mod admin;
pub mod authorise;
pub mod body;
pub mod error;
pub mod fallback;
pub mod health;
pub mod hooks;
pub mod interactions;
pub mod rainforest;
pub mod replay;
pub mod sender;
pub mod senders;
pub mod status_page;

use actix_web::web;

/// Registers every route. Unknown paths and methods get JSON errors, never an HTML page.
/// Rainforest's paths exist only when a rainforest source is configured.
pub fn routes(cfg: &mut web::ServiceConfig, rainforest: bool) {
    if rainforest {
        cfg.service(
            web::resource("/events")
                .route(web::post().to(rainforest::events))
                .default_service(web::to(fallback::method_not_allowed)),
        )
        .route("/integrations", web::get().to(rainforest::integrations))
        .route(
            "/integrations/{key}",
            web::get().to(rainforest::integration),
        );
    }
    cfg.service(
        web::resource("/hooks/{source}")
            .route(web::post().to(hooks::receive))
            .default_service(web::to(fallback::method_not_allowed)),
    )
    .service(
        web::resource("/slack/interactions")
            .route(web::post().to(interactions::receive))
            .default_service(web::to(fallback::method_not_allowed)),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/", web::get().to(status_page::page))
    .route(
        "/v1/notifications",
        web::get().to(admin::notifications::list),
    )
    .route(
        "/v1/notifications/{id}",
        web::get().to(admin::notifications::show),
    )
    .route(
        "/v1/sources/{source}/notifications/{external_id:.*}",
        web::get().to(admin::notifications::show_external),
    )
    .route("/v1/dead-letters", web::get().to(admin::dead_letters::list))
    .route(
        "/v1/dead-letters/replay",
        web::post().to(admin::dead_letters::replay_all),
    )
    .route(
        "/v1/dead-letters/{id}/replay",
        web::post().to(admin::dead_letters::replay_one),
    )
    .route(
        "/v1/dead-letters/{id}",
        web::delete().to(admin::dead_letters::drop),
    )
    .route(
        "/v1/regions/{name}/pause",
        web::post().to(admin::regions::pause),
    )
    .route(
        "/v1/regions/{name}/resume",
        web::post().to(admin::regions::resume),
    )
    .route(
        "/v1/regions/{name}/test",
        web::post().to(admin::regions::send_test),
    )
    .route("/v1/status", web::get().to(admin::status::status))
    .route("/v1/export", web::get().to(admin::export::export))
    .route("/metrics", web::get().to(health::metrics))
    .default_service(web::to(fallback::not_found));
}
