//! The error body every route answers with: `{"error": "<what and why>", "type": "<machine word>"}`.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

pub fn json_error(status: StatusCode, kind: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message, "type": kind }))
}
