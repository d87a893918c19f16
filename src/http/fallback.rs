//! JSON answers for paths and methods no route serves.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::error::json_error;

pub async fn not_found(req: HttpRequest) -> HttpResponse {
    json_error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("nothing is served at {}", req.path()),
    )
}

pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut response = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!(
            "{} is not allowed on {}; webhooks are sent with POST",
            req.method(),
            req.path()
        ),
    );
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static("POST"),
    );
    response
}
