//! `GET /`: the status page.

use actix_web::HttpResponse;

pub async fn page() -> HttpResponse {
    HttpResponse::NotFound().finish()
}
