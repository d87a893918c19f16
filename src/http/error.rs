//! The error body every route answers with: `{"error": "<what and why>", "type": "<machine word>"}`.
//!
//! actix's extractors (`web::Query`, `web::Path`, `web::Json`, `web::Form`) answer their own
//! failures in plain text unless told otherwise; the configs here, registered once for the whole
//! app in `startup.rs`, make those failures the same JSON shape as every other error.

use actix_web::error::{InternalError, JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

pub fn json_error(status: StatusCode, kind: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message, "type": kind }))
}

/// A query string that does not fit the route's parameters (`?limit=-1`, `?since=abc`): 400
/// `invalid_query`, with the query string and what was wrong with it.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, req| {
        let why = match &err {
            QueryPayloadError::Deserialize(e) => e.to_string(),
            other => other.to_string(),
        };
        let message = format!(
            "the query string {:?} is not valid: {why}",
            req.query_string()
        );
        json_failure(err, StatusCode::BAD_REQUEST, "invalid_query", &message)
    })
}

/// A path segment that does not fit the route's parameters: 400 `bad_request`.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, req| {
        let why = match &err {
            PathError::Deserialize(e) => e.to_string(),
            other => other.to_string(),
        };
        let message = format!("the path {:?} is not valid: {why}", req.path());
        json_failure(err, StatusCode::BAD_REQUEST, "bad_request", &message)
    })
}

/// A JSON body refused by `web::Json` (no route uses it yet; intake reads bodies by hand), with
/// the same size limit as intake.
pub fn json_config(max_body_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(max_body_bytes)
        .error_handler(|err, _req: &HttpRequest| {
            let message = match &err {
                JsonPayloadError::Deserialize(e) => format!("the body is not valid JSON: {e}"),
                other => other.to_string(),
            };
            let status = err.status_code();
            json_failure(err, status, body_kind(status), &message)
        })
}

/// A form body refused by `web::Form` (no route uses it yet), with intake's size limit.
pub fn form_config(max_body_bytes: usize) -> web::FormConfig {
    web::FormConfig::default()
        .limit(max_body_bytes)
        .error_handler(|err, _req| {
            let status = err.status_code();
            let message = format!("the form body is not valid: {err}");
            json_failure(err, status, body_kind(status), &message)
        })
}

/// The type word intake uses for the same status, so a client sees one vocabulary.
fn body_kind(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "bad_request",
    }
}

/// actix wants an `Error` from these handlers; `InternalError` keeps the cause for its logs and
/// answers with our response.
fn json_failure<E>(err: E, status: StatusCode, kind: &str, message: &str) -> actix_web::Error
where
    E: std::fmt::Debug + std::fmt::Display + 'static,
{
    InternalError::from_response(err, json_error(status, kind, message)).into()
}
