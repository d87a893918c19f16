//! `POST /slack/interactions`: the Slack app's Request URL. Every request must carry Slack's
//! `v0` signature over its raw body, no more than 5 minutes old; anything else gets 401 and
//! changes nothing. The click is stored before the answer (see `interactivity`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::Value;

use super::body::read_body;
use super::error::json_error;
use super::hooks::{HookError, IntakeState};
use super::sender::sender_addr;
use crate::slack::signature::SignatureError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum InteractionError {
    #[error("interactivity through the Request URL is off: set slack.signing_secret")]
    Off,
    #[error("{0}")]
    Signature(SignatureError),
    #[error("{0}")]
    Body(HookError),
    #[error("the body has no `payload` field holding JSON, as Slack sends it")]
    Payload,
    #[error(
        "the click could not be stored ({0}); Slack shows an error and it can be clicked again"
    )]
    Store(StoreError),
}

impl ResponseError for InteractionError {
    fn status_code(&self) -> StatusCode {
        match self {
            InteractionError::Off => StatusCode::NOT_FOUND,
            InteractionError::Signature(_) => StatusCode::UNAUTHORIZED,
            InteractionError::Body(e) => e.status_code(),
            InteractionError::Payload => StatusCode::BAD_REQUEST,
            InteractionError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let InteractionError::Body(e) = self {
            // Intake's answer as it is: its headers too (a timeout closes the connection).
            return e.error_response();
        }
        let kind = match self {
            InteractionError::Off => "interactivity_off",
            InteractionError::Signature(_) => "bad_signature",
            InteractionError::Body(e) => e.kind(),
            InteractionError::Payload => "invalid_payload",
            InteractionError::Store(_) => "store_unavailable",
        };
        json_error(self.status_code(), kind, &self.to_string())
    }
}

pub async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, InteractionError> {
    let secret = state
        .settings
        .slack
        .signing_secret
        .as_ref()
        .ok_or(InteractionError::Off)?;
    let body = read_body(&req, payload, &state.settings.server)
        .await
        .map_err(|e| InteractionError::Body(e.into()))?;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let now_secs = state.clock.now_ms() / 1000;
    secret
        .verify(
            header("x-slack-request-timestamp"),
            header("x-slack-signature"),
            &body,
            now_secs,
        )
        .map_err(|e| {
            let from = super::senders::Address(sender_addr(&req, &state.settings.server));
            log::warn!("Refused a request to /slack/interactions from {from}: {e}.");
            InteractionError::Signature(e)
        })?;
    let payload: Value = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "payload")
        .and_then(|(_, v)| serde_json::from_str(&v).ok())
        .ok_or(InteractionError::Payload)?;
    let ctx = state.interactivity.clone();
    let reply = web::block(move || ctx.handle(&payload))
        .await
        .map_err(|_| InteractionError::Store(StoreError::Closed))?
        .map_err(InteractionError::Store)?;
    Ok(match reply.body() {
        Some(body) => HttpResponse::Ok().json(body),
        None => HttpResponse::Ok().finish(),
    })
}
