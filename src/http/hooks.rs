//! `POST /hooks/{source}`: validate, normalise, store durably, then answer.
//!
//! Checks run from the cheapest to the dearest (source, token, content type, size, JSON, fields,
//! route) so nothing is read or stored for a request that will be refused; the answer comes only
//! after the journal has the notification on disk.

use std::collections::BTreeMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::error::json_error;
use crate::config::{RoutingSettings, SourceSettings};
use crate::sources::opportunity::Opportunity;
use crate::sources::{InvalidRecord, SourceKind};
use crate::store::journal::{Accepted, Journal, NewNotification};
use crate::store::records::Record;
use crate::store::StoreError;

/// Seconds a sender is asked to wait after a 503 from the store.
const STORE_RETRY_AFTER_SECS: u32 = 5;

/// What the intake route needs; shared by all HTTP workers.
pub struct IntakeState {
    /// `[sources.*]`, by name.
    pub sources: BTreeMap<String, SourceSettings>,
    /// Country → region.
    pub routing: RoutingSettings,
    /// 413 above this.
    pub max_body_bytes: usize,
    /// The group-commit writer.
    pub journal: Journal,
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("no source named {0:?} is configured; see [sources.*] in the config")]
    UnknownSource(String),
    #[error("this source requires an `Authorization: Bearer <token>` header")]
    MissingToken,
    #[error("the bearer token is not valid for this source")]
    WrongToken,
    #[error("Content-Type must be application/json, not {0:?}")]
    MediaType(String),
    #[error("the body is larger than the {0} bytes this relay accepts")]
    TooLarge(usize),
    #[error("the body could not be read: {0}")]
    Read(String),
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(InvalidRecord),
    #[error("{field} {value:?} is not mapped to a region and no routing.default_region is set")]
    Unroutable { field: String, value: String },
    #[error("the notification could not be stored durably ({0}); send it again later (a repeat of one that was kept after all is answered as a duplicate)")]
    Store(StoreError),
}

impl HookError {
    fn kind(&self) -> &'static str {
        match self {
            HookError::UnknownSource(_) => "unknown_source",
            HookError::MissingToken => "missing_token",
            HookError::WrongToken => "invalid_token",
            HookError::MediaType(_) => "unsupported_media_type",
            HookError::TooLarge(_) => "payload_too_large",
            HookError::Read(_) => "bad_request",
            HookError::Malformed(_) => "malformed_json",
            HookError::Invalid(_) => "invalid_record",
            HookError::Unroutable { .. } => "unroutable",
            HookError::Store(_) => "store_unavailable",
        }
    }
}

impl ResponseError for HookError {
    fn status_code(&self) -> StatusCode {
        match self {
            HookError::UnknownSource(_) => StatusCode::NOT_FOUND,
            HookError::MissingToken => StatusCode::UNAUTHORIZED,
            HookError::WrongToken => StatusCode::FORBIDDEN,
            HookError::MediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HookError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            HookError::Read(_) | HookError::Malformed(_) => StatusCode::BAD_REQUEST,
            HookError::Invalid(_) | HookError::Unroutable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            HookError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = json_error(self.status_code(), self.kind(), &self.to_string());
        let headers = response.headers_mut();
        match self {
            HookError::MissingToken => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            HookError::Store(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(STORE_RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        response
    }
}

pub async fn receive(
    req: HttpRequest,
    source: web::Path<String>,
    mut payload: web::Payload,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, HookError> {
    let source = source.into_inner();
    let settings = state
        .sources
        .get(&source)
        .ok_or_else(|| HookError::UnknownSource(source.clone()))?;
    authorise(&req, settings)?;
    check_content_type(&req)?;

    let limit = state.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(HookError::TooLarge(limit));
    }
    let mut body =
        web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit as u64) as usize);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| HookError::Read(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(HookError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }

    let doc: Value =
        serde_json::from_slice(&body).map_err(|e| HookError::Malformed(e.to_string()))?;
    let (external_id, record) = match settings.kind {
        SourceKind::Opportunity => {
            let o = Opportunity::parse(&doc).map_err(HookError::Invalid)?;
            (o.id.clone(), Record::Opportunity(o))
        }
    };
    let region = route(&state.routing, &doc)?;
    // serde_json accepted the body, so it is UTF-8.
    let raw = String::from_utf8_lossy(&body).into_owned();

    let new = NewNotification {
        source,
        external_id,
        raw,
        record,
        region,
    };
    match state.journal.accept(new).await.map_err(HookError::Store)? {
        Accepted::New(id) => {
            Ok(HttpResponse::Accepted().json(json!({"status": "accepted", "id": id.to_string()})))
        }
        Accepted::Duplicate(id) => {
            Ok(HttpResponse::Ok().json(json!({"status": "duplicate", "id": id.to_string()})))
        }
    }
}

fn authorise(req: &HttpRequest, settings: &SourceSettings) -> Result<(), HookError> {
    let Some(expected) = &settings.token else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .ok_or(HookError::MissingToken)?;
    if bool::from(given.trim().as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(HookError::WrongToken)
    }
}

fn check_content_type(req: &HttpRequest) -> Result<(), HookError> {
    let value = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(HookError::MediaType(value))
    }
}

fn route(routing: &RoutingSettings, doc: &Value) -> Result<String, HookError> {
    let key = doc
        .get(&routing.field)
        .and_then(Value::as_str)
        .unwrap_or("");
    routing
        .region_for(key)
        .map(str::to_string)
        .ok_or_else(|| HookError::Unroutable {
            field: routing.field.clone(),
            value: key.to_string(),
        })
}
