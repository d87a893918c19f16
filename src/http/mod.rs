//! The HTTP receiver: one file per route, plus the JSON error shape they share.

pub mod error;
pub mod fallback;
pub mod health;
pub mod hooks;

use actix_web::web;

/// Registers every route. Unknown paths and methods get JSON errors, never an HTML page.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/hooks/{source}")
            .route(web::post().to(hooks::receive))
            .default_service(web::to(fallback::method_not_allowed)),
    )
    .route("/healthz", web::get().to(health::healthz))
    .default_service(web::to(fallback::not_found));
}
