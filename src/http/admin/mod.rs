//! The admin API under `/v1`, for the people who run the box (seed 000: access by the
//! notification's id and owner). Off unless `[admin] tokens` is set. An admin token may do
//! everything; a source's own token may only read what that source sent.

pub mod dead_letters;
pub mod export;
pub mod notifications;
pub mod regions;
pub mod status;
pub mod title;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use subtle::ConstantTimeEq;

use super::error::json_error;
use super::hooks::IntakeState;

/// Who is asking.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    Admin,
    /// A source's token: reads of that source's notifications only.
    Source(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the admin API is off; set [admin] tokens in the config to use it")]
    Disabled,
    #[error("this needs an `Authorization: Bearer <token>` header")]
    MissingToken,
    #[error("the bearer token is not valid here")]
    WrongToken,
    #[error("a source's token may only read that source's notifications")]
    Forbidden,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the store could not do it ({0}); try again")]
    Store(String),
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::Disabled | AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::MissingToken => StatusCode::UNAUTHORIZED,
            AdminError::WrongToken | AdminError::Forbidden => StatusCode::FORBIDDEN,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let kind = match self {
            AdminError::Disabled => "admin_disabled",
            AdminError::MissingToken => "missing_token",
            AdminError::WrongToken => "invalid_token",
            AdminError::Forbidden => "forbidden",
            AdminError::NotFound(_) => "not_found",
            AdminError::BadRequest(_) => "bad_request",
            AdminError::Store(_) => "store_unavailable",
        };
        let mut response = json_error(self.status_code(), kind, &self.to_string());
        if matches!(self, AdminError::MissingToken) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<crate::store::StoreError> for AdminError {
    fn from(e: crate::store::StoreError) -> Self {
        AdminError::Store(e.to_string())
    }
}

/// "No such thing": the 404 for an id that names nothing.
pub fn not_found(what: &str, id: &str) -> AdminError {
    AdminError::NotFound(format!("no {what} {id}"))
}

/// An id from the path. One that is not a number names nothing either, so it is the same 404.
pub fn path_id(raw: &str, what: &str) -> Result<u64, AdminError> {
    raw.parse().map_err(|_| not_found(what, raw))
}

/// Identifies the caller from its bearer token.
pub fn caller(req: &HttpRequest, state: &IntakeState) -> Result<Caller, AdminError> {
    if state.settings.admin_tokens.is_empty() {
        return Err(AdminError::Disabled);
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or(AdminError::MissingToken)?;
    if state.settings.admin_tokens.iter().any(|t| t.matches(token)) {
        return Ok(Caller::Admin);
    }
    for (name, source) in &state.settings.sources {
        if let Some(own) = &source.token {
            if bool::from(own.as_bytes().ct_eq(token.as_bytes())) {
                return Ok(Caller::Source(name.clone()));
            }
        }
    }
    Err(AdminError::WrongToken)
}

/// Like [`caller`], but only an admin token will do.
pub fn admin(req: &HttpRequest, state: &IntakeState) -> Result<(), AdminError> {
    match caller(req, state)? {
        Caller::Admin => Ok(()),
        Caller::Source(_) => Err(AdminError::Forbidden),
    }
}

/// How a delivery's target is shown: a region by name, a one-off webhook masked.
pub fn target_label(region: &str, url: Option<&str>) -> String {
    match url.map(crate::config::WebhookUrl::parse) {
        Some(Ok(u)) => u.masked(),
        Some(Err(_)) => "(invalid one-off webhook)".to_string(),
        None => format!("region {region}"),
    }
}
