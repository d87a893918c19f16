//! The HTTP receiver: one file per route, plus the JSON error shape they share.

pub mod error;
pub mod fallback;
pub mod health;
pub mod hooks;
pub mod rainforest;

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
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/metrics", web::get().to(health::metrics))
    .default_service(web::to(fallback::not_found));
}
