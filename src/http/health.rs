//! `GET /healthz`: the process is up and serving HTTP.

use actix_web::HttpResponse;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}
