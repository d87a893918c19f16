//! `POST /hooks/{source}`: validate, normalise, store durably, then answer.
//!
//! Checks run from the cheapest to the dearest (source, token, content type, size, JSON, fields,
//! route) so nothing is read or stored for a request that will be refused; the answer comes only
//! after the journal has the notification on disk.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::error::json_error;
use crate::clock::Clock;
use crate::config::{ServerSettings, Settings, SourceSettings};
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
    #[error("Content-Encoding {0:?} is not supported; send the body uncompressed, or as gzip or deflate")]
    Encoding(String),
    #[error("the body did not arrive within {} (server.client_body_timeout); nothing was kept, send it again", humantime::format_duration(*.0))]
    BodyTimeout(std::time::Duration),
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(InvalidRecord),
    #[error("no region takes this notification: no source region, no [[routes]] match, and {field} {value:?} is in no region's countries with no routing.default_region set")]
    Unroutable { field: String, value: String },
    #[error("{0}")]
    BadForm(String),
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
            HookError::MediaType(_) => "unsupported_media_type",
            HookError::TooLarge(_) => "payload_too_large",
            HookError::Read(_) => "bad_request",
            HookError::Encoding(_) => "unsupported_encoding",
            HookError::BodyTimeout(_) => "request_timeout",
            HookError::Malformed(_) => "malformed_json",
            HookError::Invalid(_) => "invalid_record",
            HookError::Unroutable { .. } => "unroutable",
            HookError::BadForm(_) => "invalid_request",
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
            HookError::WrongToken => StatusCode::FORBIDDEN,
            HookError::MediaType(_) | HookError::Encoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HookError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            HookError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            HookError::Read(_) | HookError::Malformed(_) | HookError::BadForm(_) => {
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
        if matches!(self, HookError::BodyTimeout(_)) {
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
    let result = receive_webhook(req, source.clone(), payload, state.clone()).await;
    match &result {
        Ok((_, outcome)) => state.metrics.received(&source, outcome),
        // Any path can be asked for: unknown names share one label, so the set stays bounded.
        Err(HookError::UnknownSource(_)) => state.metrics.received("unknown", "unknown_source"),
        Err(e) => state.metrics.received(&source, e.kind()),
    }
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
    authorise(&req, settings)?;
    check_backlog(&state)?;
    let content_type = content_type(&req);
    if settings.kind != SourceKind::TrayCommerce {
        require_json(&content_type)?;
    }
    let body = read_body(&req, payload, &state.settings.server).await?;
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
            let fallback = GenericSettings {
                id_pointer: None,
                title: String::new(),
                fields: Vec::new(),
            };
            let key = generic::parse(&doc, settings.generic.as_ref().unwrap_or(&fallback))
                .map_err(HookError::Invalid)?;
            let raw = String::from_utf8_lossy(body).into_owned();
            (doc, raw, key.map_or(Idempotency::None, Idempotency::Dedupe))
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

/// How a request body is encoded (`Content-Encoding`). Some senders compress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BodyEncoding {
    Identity,
    Gzip,
    /// HTTP's `deflate`: zlib-wrapped (RFC 9110).
    Deflate,
}

/// Reads `Content-Encoding`. `identity` (or none) is the body as sent; `gzip`, `x-gzip` and
/// `deflate` are decoded; anything else is refused before the body is read, since the relay
/// could not read it.
pub fn body_encoding(req: &HttpRequest) -> Result<BodyEncoding, HookError> {
    let header = req
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let mut found = BodyEncoding::Identity;
    for coding in header.split(',').map(str::trim) {
        let this = if coding.is_empty() || coding.eq_ignore_ascii_case("identity") {
            continue;
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            BodyEncoding::Gzip
        } else if coding.eq_ignore_ascii_case("deflate") {
            BodyEncoding::Deflate
        } else {
            return Err(HookError::Encoding(coding.to_string()));
        };
        if found != BodyEncoding::Identity {
            // Two codings stacked: no sender does this, and each layer multiplies the size.
            return Err(HookError::Encoding(header));
        }
        found = this;
    }
    Ok(found)
}

/// Reads the body within `server.client_body_timeout`, decoding it (see [`body_encoding`]) and
/// refusing more than `server.max_body_bytes`, received or decoded, before holding more.
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    server: &ServerSettings,
) -> Result<web::BytesMut, HookError> {
    let encoding = body_encoding(req)?;
    let limit = server.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A compressed body decodes to hardly less than was sent, so the declared size is refused
    // early for both.
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(HookError::TooLarge(limit));
    }
    let capacity = declared.unwrap_or(1024).min(limit as u64) as usize;
    let reading = read_decoded(payload, encoding, limit, capacity);
    match tokio::time::timeout(server.client_body_timeout, reading).await {
        Ok(body) => body,
        Err(_) => Err(HookError::BodyTimeout(server.client_body_timeout)),
    }
}

async fn read_decoded(
    mut payload: web::Payload,
    encoding: BodyEncoding,
    limit: usize,
    capacity: usize,
) -> Result<web::BytesMut, HookError> {
    let mut body = Decoder::new(encoding, limit, capacity);
    let mut received = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| HookError::Read(e.to_string()))?;
        // The bytes sent count too: a stream of empty deflate blocks decodes to nothing at all.
        received += chunk.len();
        if received > limit {
            return Err(HookError::TooLarge(limit));
        }
        body.feed(&chunk)?;
    }
    body.finish()
}

/// Decodes into a buffer that refuses to grow past the limit, so a small compressed body that
/// expands enormously (a "gzip bomb") costs at most `limit` bytes and a 413. (actix's own
/// decoder hands over each chunk's whole output at once: a 64 KiB chunk of zeros is 64 MiB.)
enum Decoder {
    Identity(Capped),
    Gzip(flate2::write::MultiGzDecoder<Capped>),
    Deflate(flate2::write::ZlibDecoder<Capped>),
}

impl Decoder {
    fn new(encoding: BodyEncoding, limit: usize, capacity: usize) -> Decoder {
        let out = Capped {
            buf: web::BytesMut::with_capacity(capacity),
            limit,
            over: false,
        };
        match encoding {
            BodyEncoding::Identity => Decoder::Identity(out),
            BodyEncoding::Gzip => Decoder::Gzip(flate2::write::MultiGzDecoder::new(out)),
            BodyEncoding::Deflate => Decoder::Deflate(flate2::write::ZlibDecoder::new(out)),
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), HookError> {
        use std::io::Write as _;
        let written = match self {
            Decoder::Identity(out) => out.write_all(chunk),
            Decoder::Gzip(d) => d.write_all(chunk),
            Decoder::Deflate(d) => d.write_all(chunk),
        };
        written.map_err(|e| self.out().refusal(e))
    }

    /// The whole body, once the sender has sent it all (a truncated stream is an error).
    fn finish(mut self) -> Result<web::BytesMut, HookError> {
        let finished = match &mut self {
            Decoder::Identity(_) => Ok(()),
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Deflate(d) => d.try_finish(),
        };
        finished.map_err(|e| self.out().refusal(e))?;
        let out = match &mut self {
            Decoder::Identity(out) => out,
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Deflate(d) => d.get_mut(),
        };
        Ok(std::mem::take(&mut out.buf))
    }

    fn out(&self) -> &Capped {
        match self {
            Decoder::Identity(out) => out,
            Decoder::Gzip(d) => d.get_ref(),
            Decoder::Deflate(d) => d.get_ref(),
        }
    }
}

/// The decoder's output, refusing to grow past `limit`.
struct Capped {
    /// The decoded body so far.
    buf: web::BytesMut,
    /// `server.max_body_bytes`.
    limit: usize,
    /// Set when a write was refused for size, to tell a 413 from damaged data.
    over: bool,
}

impl Capped {
    /// Why a write failed: over the limit, or data the decoder could not read.
    fn refusal(&self, e: std::io::Error) -> HookError {
        if self.over {
            HookError::TooLarge(self.limit)
        } else {
            HookError::Read(format!("it is not valid compressed data ({e})"))
        }
    }
}

impl std::io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.over = true;
            return Err(std::io::Error::other("the decoded body is over the limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn parse_json(body: &[u8]) -> Result<Value, HookError> {
    serde_json::from_slice(body).map_err(|e| HookError::Malformed(e.to_string()))
}

pub fn authorise(req: &HttpRequest, settings: &SourceSettings) -> Result<(), HookError> {
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

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Feeds `data` in chunks of `chunk` bytes, as the network would.
    fn decode(
        encoding: BodyEncoding,
        limit: usize,
        data: &[u8],
        chunk: usize,
    ) -> Result<Vec<u8>, HookError> {
        let mut d = Decoder::new(encoding, limit, 16);
        for part in data.chunks(chunk) {
            d.feed(part)?;
        }
        d.finish().map(|b| b.to_vec())
    }

    #[test]
    fn gzip_and_deflate_bodies_decode_whatever_the_chunking() {
        let json = br#"{"id":"006","country":"UK"}"#.repeat(50);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&json).unwrap();
        let deflated = z.finish().unwrap();
        for chunk in [1, 7, 4096] {
            assert_eq!(
                decode(BodyEncoding::Gzip, 4096, &gzip(&json), chunk).unwrap(),
                json
            );
            assert_eq!(
                decode(BodyEncoding::Deflate, 4096, &deflated, chunk).unwrap(),
                json
            );
        }
    }

    #[test]
    fn a_body_that_decodes_past_the_limit_is_refused_without_holding_it() {
        // 64 MiB of zeros are about 64 KiB of gzip: refused after `limit` decoded bytes.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        let err = decode(BodyEncoding::Gzip, 4096, &bomb, 16 * 1024).unwrap_err();
        assert!(matches!(err, HookError::TooLarge(4096)), "{err}");
        let err = decode(BodyEncoding::Identity, 10, b"01234567890", 4).unwrap_err();
        assert!(matches!(err, HookError::TooLarge(10)), "{err}");
    }

    #[test]
    fn damaged_or_cut_compressed_bodies_are_bad_requests() {
        let err = decode(BodyEncoding::Gzip, 4096, b"not gzip at all", 4).unwrap_err();
        assert!(matches!(err, HookError::Read(_)), "{err}");
        let whole = gzip(br#"{"id":"006"}"#);
        let err = decode(BodyEncoding::Gzip, 4096, &whole[..whole.len() - 6], 4).unwrap_err();
        assert!(matches!(err, HookError::Read(_)), "{err}");
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
    }
}
