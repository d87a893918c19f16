//! `POST /hooks/{source}`: validate, normalise, store durably, then answer.
//!
//! Checks run from the cheapest to the dearest (source, token, content type, size, JSON, fields,
//! route) so nothing is read or stored for a request that will be refused; the answer comes only
//! after the journal has the notification on disk.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};

pub use super::authorise::authorise;
use super::error::json_error;
use crate::clock::Clock;
use crate::config::{Settings, SourceSettings};
use crate::metrics::Metrics;
use crate::routing;
use crate::sources::approval::ApprovalRequest;
use crate::sources::generic::{self, GenericSettings};
use crate::sources::opportunity::Opportunity;
use crate::sources::signature::{Headers as SignatureHeaders, InboundSignatureError};
use crate::sources::tray_commerce::{TrayError, TrayNotification};
use crate::sources::{InvalidRecord, SourceKind};
use crate::store::journal::{Accepted, Idempotency, Journal, NewNotification};
use crate::store::{Store, StoreError};
use std::sync::atomic::AtomicU64;

/// Seconds a sender is asked to wait when the backlog is full: Slack drains about one message a
/// second per region, so a minute frees room for a useful number.
const BACKLOG_RETRY_AFTER_SECS: u32 = 60;

/// Refuses intake while the queue holds `store.max_pending` deliveries (0: no limit).
/// Also refuses it while free space on the store's disk is below `store.min_free` (or the disk
/// is full), before the body is read: the writer would refuse it anyway.
pub fn check_backlog(state: &IntakeState) -> Result<(), HookError> {
    let space = state.journal.space();
    if !space.accepts_webhooks() {
        space.refused_writes.inc();
        return Err(HookError::Store(StoreError::DiskFull(format!(
            "{} free, below store.min_free ({})",
            crate::store::space::human(space.free()),
            crate::store::space::human(space.reserve_bytes())
        ))));
    }
    let limit = state.settings.store.max_pending;
    let pending = state.journal.pending();
    if limit > 0 && pending >= limit {
        return Err(HookError::Backlog(pending));
    }
    Ok(())
}

/// Seconds a sender is asked to wait after a 503 from the store.
const STORE_RETRY_AFTER_SECS: u32 = 5;
/// ... and when the store's disk is full: freeing space takes an operator a while, and a
/// sender's retries should not pile up meanwhile.
const DISK_FULL_RETRY_AFTER_SECS: u32 = 30;

/// What the intake routes need; shared by all HTTP workers.
pub struct IntakeState {
    /// Sources, regions, routes.
    pub settings: Arc<Settings>,
    /// The group-commit writer.
    pub journal: Journal,
    /// Receipt time and coalescing windows.
    pub clock: Arc<dyn Clock>,
    /// Counters and `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Read access, for `/metrics` and `/readyz`.
    pub store: Store,
    /// The scheduler's last loop (ms), for `/readyz`.
    pub heartbeat: Arc<AtomicU64>,
    /// To tell the scheduler about pauses and replays.
    pub scheduler: crossbeam_channel::Sender<crate::delivery::scheduler::Event>,
    /// Button clicks from Slack, shared with the Socket Mode thread.
    pub interactivity: Arc<crate::interactivity::Interactivity>,
    /// `webhook-id`s of signed requests already taken.
    pub replays: super::replay::ReplayGuard,
    /// The certificate served, for `/v1/status` and `/metrics`; `None` for plain HTTP.
    pub tls: Option<Arc<crate::tls::Tls>>,
    /// Per source, the last webhook taken and refused and their senders, for the status.
    pub senders: super::senders::Senders,
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("no source named {0:?} is configured; see [sources.*] in the config")]
    UnknownSource(String),
    #[error("this source requires an `Authorization: Bearer <token>` header")]
    MissingToken,
    #[error("the bearer token is not valid for this source")]
    WrongToken,
    #[error("{0}")]
    ClientCert(String),
    #[error("Content-Type must be application/json, not {0:?}")]
    MediaType(String),
    #[error(transparent)]
    Body(#[from] super::body::BodyError),
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(InvalidRecord),
    #[error("no region takes this notification: no source region, no [[routes]] match, and {field} {value:?} is in no region's countries with no routing.default_region set")]
    Unroutable { field: String, value: String },
    #[error("{0}")]
    BadForm(String),
    /// A Rainforest event its parser refused, with the parser's type word.
    #[error("{message}")]
    BadEvent {
        /// The parser's type word, answered as `type` and counted as the outcome.
        kind: &'static str,
        /// What was wrong, as the sender is told it.
        message: String,
    },
    #[error("the relay already holds {0} undelivered messages (store.max_pending); nothing was kept, send it again later")]
    Backlog(u64),
    #[error("{0}")]
    Signature(InboundSignatureError),
    #[error("the notification could not be stored durably ({0}); send it again later (a repeat of one that was kept after all is answered as a duplicate)")]
    Store(StoreError),
}

impl HookError {
    pub fn kind(&self) -> &'static str {
        match self {
            HookError::UnknownSource(_) => "unknown_source",
            HookError::MissingToken => "missing_token",
            HookError::WrongToken => "invalid_token",
            HookError::ClientCert(_) => "client_certificate",
            HookError::MediaType(_) => "unsupported_media_type",
            HookError::Body(e) => e.kind(),
            HookError::Malformed(_) => "malformed_json",
            HookError::Invalid(_) => "invalid_record",
            HookError::Unroutable { .. } => "unroutable",
            HookError::BadForm(_) => "invalid_request",
            HookError::BadEvent { kind, .. } => kind,
            HookError::Store(StoreError::DiskFull(_)) => "disk_full",
            HookError::Store(_) => "store_unavailable",
            HookError::Backlog(_) => "backlog_full",
            HookError::Signature(e) => e.kind(),
        }
    }
}

impl ResponseError for HookError {
    fn status_code(&self) -> StatusCode {
        match self {
            HookError::UnknownSource(_) => StatusCode::NOT_FOUND,
            HookError::MissingToken | HookError::Signature(_) => StatusCode::UNAUTHORIZED,
            HookError::WrongToken | HookError::ClientCert(_) => StatusCode::FORBIDDEN,
            HookError::MediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HookError::Body(e) => e.status_code(),
            HookError::Malformed(_) | HookError::BadForm(_) | HookError::BadEvent { .. } => {
                StatusCode::BAD_REQUEST
            }
            HookError::Invalid(_) | HookError::Unroutable { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            HookError::Store(_) | HookError::Backlog(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = json_error(self.status_code(), self.kind(), &self.to_string());
        let headers = response.headers_mut();
        match self {
            HookError::MissingToken => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            HookError::Store(StoreError::DiskFull(_)) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(DISK_FULL_RETRY_AFTER_SECS),
                );
            }
            HookError::Store(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(STORE_RETRY_AFTER_SECS),
                );
            }
            HookError::Backlog(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(BACKLOG_RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        if matches!(self, HookError::Body(super::body::BodyError::Timeout(_))) {
            // The rest of the body may still come; the connection is of no further use, and
            // closing it frees its file for other senders.
            response
                .head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
        }
        response
    }
}

pub async fn receive(
    req: HttpRequest,
    source: web::Path<String>,
    payload: web::Payload,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, HookError> {
    let source = source.into_inner();
    let result = receive_webhook(req.clone(), source.clone(), payload, state.clone()).await;
    match &result {
        Ok((_, outcome)) => state.metrics.received(&source, outcome),
        // Any path can be asked for: unknown names share one label, so the set stays bounded.
        Err(HookError::UnknownSource(_)) => state.metrics.received("unknown", "unknown_source"),
        Err(e) => state.metrics.received(&source, e.kind()),
    }
    super::senders::note(&state, &req, &source, result.as_ref().err());
    result.map(|(response, _)| response)
}

async fn receive_webhook(
    req: HttpRequest,
    source: String,
    payload: web::Payload,
    state: web::Data<IntakeState>,
) -> Result<(HttpResponse, &'static str), HookError> {
    let settings = state
        .settings
        .sources
        .get(&source)
        .filter(|s| s.kind != SourceKind::Rainforest)
        .ok_or_else(|| HookError::UnknownSource(source.clone()))?;
    authorise(&req, settings, state.settings.server.requires_client_cert())?;
    check_backlog(&state)?;
    let content_type = content_type(&req);
    if settings.kind != SourceKind::TrayCommerce {
        require_json(&content_type)?;
    }
    let body = super::body::read_body(&req, payload, &state.settings.server).await?;
    let webhook_id = verify_signature(&req, settings, &body, &state, &source)?;
    let result = store_webhook(&source, settings, &body, &content_type, &state).await;
    if let (Err(_), Some(id)) = (&result, &webhook_id) {
        // Not stored: the sender's retry (same webhook-id) must be taken.
        state.replays.release(&source, id);
    }
    result
}

/// Checks a signed source's signature and claims its `webhook-id`; returns the id to give back
/// if the request is not stored after all.
fn verify_signature(
    req: &HttpRequest,
    settings: &SourceSettings,
    body: &[u8],
    state: &IntakeState,
    source: &str,
) -> Result<Option<String>, HookError> {
    let Some(scheme) = &settings.signature else {
        return Ok(None);
    };
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let headers = SignatureHeaders {
        webhook_id: header("webhook-id"),
        webhook_timestamp: header("webhook-timestamp"),
        webhook_signature: header("webhook-signature"),
        hub_signature_256: header("x-hub-signature-256"),
    };
    let now_ms = state.clock.now_ms();
    let id = scheme
        .verify(&headers, body, now_ms / 1000)
        .map_err(HookError::Signature)?;
    match id {
        Some(id) if !state.replays.claim(source, id, now_ms) => {
            Err(HookError::Signature(InboundSignatureError::Replayed))
        }
        id => Ok(id.map(str::to_string)),
    }
}

async fn store_webhook(
    source: &str,
    settings: &SourceSettings,
    body: &[u8],
    content_type: &str,
    state: &web::Data<IntakeState>,
) -> Result<(HttpResponse, &'static str), HookError> {
    let source = source.to_string();
    let (doc, raw, idempotency) = match settings.kind {
        SourceKind::Opportunity => {
            let doc = parse_json(body)?;
            let o = Opportunity::parse(&doc).map_err(HookError::Invalid)?;
            let raw = String::from_utf8_lossy(body).into_owned();
            (doc, raw, Idempotency::Versioned(o.id))
        }
        SourceKind::Generic => {
            let doc = parse_json(body)?;
            let fallback = GenericSettings::default();
            let generic = settings.generic.as_ref().unwrap_or(&fallback);
            let key = generic::parse(&doc, generic).map_err(HookError::Invalid)?;
            let raw = String::from_utf8_lossy(body).into_owned();
            let idempotency = match (key, generic.on_repeat) {
                (None, _) => Idempotency::None,
                (Some(k), generic::OnRepeat::Duplicate) => Idempotency::Dedupe(k),
                (Some(k), generic::OnRepeat::Update) => Idempotency::Versioned(k),
            };
            (doc, raw, idempotency)
        }
        SourceKind::TrayCommerce => {
            let n = TrayNotification::parse(body, content_type).map_err(|e| match e {
                TrayError::MediaType(m) => HookError::MediaType(m),
                other => HookError::BadForm(other.to_string()),
            })?;
            let doc = serde_json::to_value(&n).map_err(|e| HookError::BadForm(e.to_string()))?;
            let window_ms = settings.coalesce_window.as_millis() as u64;
            (
                doc.clone(),
                doc.to_string(),
                Idempotency::Coalesce {
                    key: n.coalesce_key(),
                    window_ms,
                },
            )
        }
        SourceKind::Approval => {
            let doc = parse_json(body)?;
            let fields = settings
                .approval
                .as_ref()
                .map(|a| &a.fields)
                .ok_or_else(|| HookError::UnknownSource(source.clone()))?;
            let request =
                ApprovalRequest::from_document(&doc, fields).map_err(HookError::Invalid)?;
            let raw = request.to_stored(&doc);
            (doc, raw, Idempotency::Dedupe(request.id))
        }
        SourceKind::Rainforest => return Err(HookError::UnknownSource(source)),
    };
    let destination =
        routing::destination(&state.settings, &source, settings, &doc).ok_or_else(|| {
            let field = state.settings.routing.field.clone();
            let value = doc
                .get(&field)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            HookError::Unroutable { field, value }
        })?;

    // A region with a bot token remembers its post, so later versions edit it in place.
    let web_api = destination.url.is_none()
        && state
            .settings
            .regions
            .get(&destination.region)
            .is_some_and(|r| r.target.web_api().is_some());
    let new = NewNotification {
        source,
        kind: settings.kind,
        idempotency,
        raw,
        region: destination.region,
        url: destination.url.map(|u| u.original()),
        also: Vec::new(),
        received_at_ms: state.clock.now_ms(),
        web_api,
        on_status: settings.on_status.clone(),
    };
    let accepted = state.journal.accept(new).await.map_err(HookError::Store)?;
    let (status, id) = match accepted {
        Accepted::New(id) => ("accepted", id),
        Accepted::Duplicate(id) => ("duplicate", id),
        Accepted::Updated(id) => ("updated", id),
        Accepted::Coalesced(id) => ("coalesced", id),
    };
    let body = json!({"status": status, "id": id.to_string()});
    let response = match (settings.kind, accepted) {
        // Tray counts anything but exactly 200 as a failure and retries for 20 days.
        (SourceKind::TrayCommerce, _) => HttpResponse::Ok().json(body),
        (_, Accepted::Duplicate(_)) => HttpResponse::Ok().json(body),
        _ => HttpResponse::Accepted().json(body),
    };
    Ok((response, status))
}

fn parse_json(body: &[u8]) -> Result<Value, HookError> {
    serde_json::from_slice(body).map_err(|e| HookError::Malformed(e.to_string()))
}

fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

fn require_json(value: &str) -> Result<(), HookError> {
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(HookError::MediaType(value.to_string()))
    }
}
