//! Reading a request body: within `server.client_body_timeout`, no more than
//! `server.max_body_bytes` received or decoded, and decoded when the sender compressed it
//! (`Content-Encoding: gzip`, `x-gzip` or `deflate`; anything else is refused before reading).
//! Shared by every intake route.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use crate::config::ServerSettings;

/// Why a body could not be read; each route maps it to its own error (same status and type).
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than the {0} bytes this relay accepts")]
    TooLarge(usize),
    #[error("the body could not be read: {0}")]
    Read(String),
    #[error("Content-Encoding {0:?} is not supported; send the body uncompressed, or as gzip or deflate")]
    Encoding(String),
    #[error("the body did not arrive within {} (server.client_body_timeout); nothing was kept, send it again", humantime::format_duration(*.0))]
    Timeout(std::time::Duration),
}

impl BodyError {
    /// The machine word of the JSON error.
    pub fn kind(&self) -> &'static str {
        match self {
            BodyError::TooLarge(_) => "payload_too_large",
            BodyError::Read(_) => "bad_request",
            BodyError::Encoding(_) => "unsupported_encoding",
            BodyError::Timeout(_) => "request_timeout",
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Read(_) => StatusCode::BAD_REQUEST,
            BodyError::Encoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }
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
pub fn body_encoding(req: &HttpRequest) -> Result<BodyEncoding, BodyError> {
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
            return Err(BodyError::Encoding(coding.to_string()));
        };
        if found != BodyEncoding::Identity {
            // Two codings stacked: no sender does this, and each layer multiplies the size.
            return Err(BodyError::Encoding(header));
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
) -> Result<web::BytesMut, BodyError> {
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
        return Err(BodyError::TooLarge(limit));
    }
    let capacity = declared.unwrap_or(1024).min(limit as u64) as usize;
    let reading = read_decoded(payload, encoding, limit, capacity);
    match tokio::time::timeout(server.client_body_timeout, reading).await {
        Ok(body) => body,
        Err(_) => Err(BodyError::Timeout(server.client_body_timeout)),
    }
}

async fn read_decoded(
    mut payload: web::Payload,
    encoding: BodyEncoding,
    limit: usize,
    capacity: usize,
) -> Result<web::BytesMut, BodyError> {
    let mut body = Decoder::new(encoding, limit, capacity);
    let mut received = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        // The bytes sent count too: a stream of empty deflate blocks decodes to nothing at all.
        received += chunk.len();
        if received > limit {
            return Err(BodyError::TooLarge(limit));
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
    /// HTTP's `deflate` is zlib-wrapped, but some senders send the raw stream: the first two
    /// bytes tell which (a zlib header is a multiple of 31 with method 8).
    DeflateUnsure(Vec<u8>, Capped),
    Zlib(flate2::write::ZlibDecoder<Capped>),
    RawDeflate(flate2::write::DeflateDecoder<Capped>),
}

/// Whether a deflate body starts with a zlib header (RFC 1950).
fn is_zlib(first: u8, second: u8) -> bool {
    first & 0x0F == 8 && (u16::from(first) << 8 | u16::from(second)) % 31 == 0
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
            BodyEncoding::Deflate => Decoder::DeflateUnsure(Vec::with_capacity(2), out),
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        use std::io::Write as _;
        if let Decoder::DeflateUnsure(start, _) = self {
            start.extend_from_slice(chunk);
            if start.len() < 2 {
                return Ok(());
            }
            // Feeds what was held back to the decoder it picks.
            return self.decide();
        }
        let written = match self {
            Decoder::Identity(out) => out.write_all(chunk),
            Decoder::Gzip(d) => d.write_all(chunk),
            Decoder::Zlib(d) => d.write_all(chunk),
            Decoder::RawDeflate(d) => d.write_all(chunk),
            Decoder::DeflateUnsure(..) => Ok(()),
        };
        written.map_err(|e| self.out().refusal(e))
    }

    /// Picks the deflate decoder from the first bytes and feeds them to it.
    fn decide(&mut self) -> Result<(), BodyError> {
        use std::io::Write as _;
        let Decoder::DeflateUnsure(start, out) = self else {
            return Ok(());
        };
        let start = std::mem::take(start);
        let out = std::mem::replace(
            out,
            Capped {
                buf: web::BytesMut::new(),
                limit: 0,
                over: false,
            },
        );
        let (next, written) = if start.len() >= 2 && is_zlib(start[0], start[1]) {
            let mut d = flate2::write::ZlibDecoder::new(out);
            let w = d.write_all(&start);
            (Decoder::Zlib(d), w)
        } else {
            let mut d = flate2::write::DeflateDecoder::new(out);
            let w = d.write_all(&start);
            (Decoder::RawDeflate(d), w)
        };
        *self = next;
        written.map_err(|e| self.out().refusal(e))
    }

    /// The whole body, once the sender has sent it all (a truncated stream is an error).
    fn finish(mut self) -> Result<web::BytesMut, BodyError> {
        self.decide()?;
        let finished = match &mut self {
            Decoder::Identity(_) | Decoder::DeflateUnsure(..) => Ok(()),
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Zlib(d) => d.try_finish(),
            Decoder::RawDeflate(d) => d.try_finish(),
        };
        finished.map_err(|e| self.out().refusal(e))?;
        let out = match &mut self {
            Decoder::Identity(out) | Decoder::DeflateUnsure(_, out) => out,
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Zlib(d) => d.get_mut(),
            Decoder::RawDeflate(d) => d.get_mut(),
        };
        Ok(std::mem::take(&mut out.buf))
    }

    fn out(&self) -> &Capped {
        match self {
            Decoder::Identity(out) | Decoder::DeflateUnsure(_, out) => out,
            Decoder::Gzip(d) => d.get_ref(),
            Decoder::Zlib(d) => d.get_ref(),
            Decoder::RawDeflate(d) => d.get_ref(),
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
    fn refusal(&self, e: std::io::Error) -> BodyError {
        if self.over {
            BodyError::TooLarge(self.limit)
        } else {
            BodyError::Read(format!("it is not valid compressed data ({e})"))
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
    ) -> Result<Vec<u8>, BodyError> {
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
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        r.write_all(&json).unwrap();
        let raw = r.finish().unwrap();
        for chunk in [1, 7, 4096] {
            assert_eq!(
                decode(BodyEncoding::Gzip, 4096, &gzip(&json), chunk).unwrap(),
                json
            );
            assert_eq!(
                decode(BodyEncoding::Deflate, 4096, &deflated, chunk).unwrap(),
                json
            );
            // Some senders send `deflate` without the zlib wrapper.
            assert_eq!(
                decode(BodyEncoding::Deflate, 4096, &raw, chunk).unwrap(),
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
        assert!(matches!(err, BodyError::TooLarge(4096)), "{err}");
        let err = decode(BodyEncoding::Identity, 10, b"01234567890", 4).unwrap_err();
        assert!(matches!(err, BodyError::TooLarge(10)), "{err}");
    }

    #[test]
    fn damaged_or_cut_compressed_bodies_are_bad_requests() {
        let err = decode(BodyEncoding::Gzip, 4096, b"not gzip at all", 4).unwrap_err();
        assert!(matches!(err, BodyError::Read(_)), "{err}");
        let whole = gzip(br#"{"id":"006"}"#);
        let err = decode(BodyEncoding::Gzip, 4096, &whole[..whole.len() - 6], 4).unwrap_err();
        assert!(matches!(err, BodyError::Read(_)), "{err}");
    }
}
