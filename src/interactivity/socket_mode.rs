//! Socket Mode: interactions over an outbound WebSocket, so a box behind a firewall needs no
//! inbound port. `apps.connections.open` (with the app-level token) gives a `wss://` URL; Slack
//! sends `hello`, then envelopes, each acknowledged with its `envelope_id` once the click is
//! stored. A click that could not be stored is not acknowledged: Slack shows the clicker an
//! error and the click can be made again. A `disconnect` message, a closed, silent or broken
//! link, or a failed open leads to a new connection, with backoff after failures. The WebSocket
//! connects directly (it does not use `HTTPS_PROXY`).

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::Interactivity;
use crate::config::tokens::AppToken;
use crate::slack::web_api::{fields, Method};

/// How often the reader wakes to answer pings and see a stop.
const POLL: Duration = Duration::from_millis(250);
/// Limits for opening a connection: TCP connect, then the TLS and WebSocket handshakes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence after which the relay pings Slack, and after which it gives the link up.
const PING_AFTER: Duration = Duration::from_secs(30);
const DEAD_AFTER: Duration = Duration::from_secs(90);
/// Backoff between failed connection attempts: from the first to the last.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// Why a connection ended.
#[derive(Debug, PartialEq)]
enum End {
    /// Slack asked for a new connection, or closed this one: reconnect at once.
    Reconnect,
    /// The link broke or could not be made: reconnect after a backoff.
    Failed(String),
    /// The relay is stopping.
    Stop,
}

/// Starts the Socket Mode thread; it runs until `stop` is set.
pub fn spawn(
    interactivity: Arc<Interactivity>,
    token: AppToken,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("socket-mode".into())
        .spawn(move || run(&interactivity, &token, &stop))
}

fn run(ctx: &Interactivity, token: &AppToken, stop: &AtomicBool) {
    let mut wait = RETRY_FIRST;
    while !stop.load(Ordering::SeqCst) {
        let end = match open(ctx, token) {
            Ok(mut socket) => {
                let end = serve(ctx, &mut socket, stop, &mut wait);
                let _ = socket.close(None);
                let _ = socket.flush();
                end
            }
            Err(e) => End::Failed(e),
        };
        match end {
            End::Stop => break,
            End::Reconnect => log::info!("Slack asked Socket Mode to reconnect; reconnecting."),
            End::Failed(why) => {
                log::warn!("Socket Mode connection failed ({why}); trying again in {wait:?}. Button clicks wait at Slack meanwhile.");
                let until = Instant::now() + wait;
                while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
                }
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
}

/// `apps.connections.open`, then the WebSocket handshake.
fn open(ctx: &Interactivity, token: &AppToken) -> Result<Socket, String> {
    let answer = ctx.transport.call_api_form(
        &ctx.settings.slack.api_url,
        Method::AppsConnectionsOpen,
        token.expose(),
        &[],
        None,
    );
    let url = fields(&answer).map_err(|e| format!("apps.connections.open: {e}"))?["url"]
        .as_str()
        .map(str::to_string)
        .ok_or("apps.connections.open gave no url")?;
    // The URL carries a ticket: errors say where, never the URL itself.
    let uri: tungstenite::http::Uri = url
        .parse()
        .map_err(|_| "apps.connections.open gave an unusable url".to_string())?;
    let host = uri.host().unwrap_or("").to_string();
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("ws") {
        80
    } else {
        443
    });
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let timeouts = |s: &TcpStream, t: Duration| {
        s.set_read_timeout(Some(t))
            .and_then(|()| s.set_write_timeout(Some(t)))
            .map_err(|e| format!("cannot set timeouts: {e}"))
    };
    timeouts(&stream, HANDSHAKE_TIMEOUT)?;
    let (socket, _) = tungstenite::client_tls(url.as_str(), stream).map_err(|e| {
        format!(
            "the WebSocket handshake with {host} failed: {}",
            handshake_error(&e)
        )
    })?;
    let tcp = match socket.get_ref() {
        MaybeTlsStream::Plain(s) => s,
        MaybeTlsStream::Rustls(s) => s.get_ref(),
        _ => return Err("unexpected WebSocket stream".into()),
    };
    timeouts(tcp, POLL)?;
    Ok(socket)
}

/// What a handshake error says, without the URL (it holds the connection's ticket).
fn handshake_error<R: tungstenite::handshake::HandshakeRole>(
    e: &tungstenite::handshake::HandshakeError<R>,
) -> String {
    match e {
        tungstenite::handshake::HandshakeError::Failure(tungstenite::Error::Http(r)) => {
            format!("HTTP {}", r.status())
        }
        tungstenite::handshake::HandshakeError::Failure(tungstenite::Error::Io(e)) => e.to_string(),
        tungstenite::handshake::HandshakeError::Failure(tungstenite::Error::Tls(e)) => {
            e.to_string()
        }
        tungstenite::handshake::HandshakeError::Failure(_) => "protocol error".into(),
        tungstenite::handshake::HandshakeError::Interrupted(_) => "timed out".into(),
    }
}

/// Reads frames until the connection ends.
fn serve(ctx: &Interactivity, socket: &mut Socket, stop: &AtomicBool, wait: &mut Duration) -> End {
    let mut heard = Instant::now();
    let mut pinged = false;
    loop {
        if stop.load(Ordering::SeqCst) {
            return End::Stop;
        }
        let frame = match socket.read() {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) => return End::Failed("Slack closed the connection".into()),
            Ok(_) => {
                // Pings, pongs: the link is alive (tungstenite answers pings on the next flush).
                heard = Instant::now();
                pinged = false;
                continue;
            }
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // A half-open link shows as silence: ping it, then give it up.
                let quiet = heard.elapsed();
                if quiet > DEAD_AFTER {
                    return End::Failed(format!("no frame from Slack for {quiet:?}"));
                }
                if quiet > PING_AFTER && !pinged {
                    pinged = true;
                    if let Err(e) = socket.send(Message::Ping(Default::default())) {
                        return End::Failed(e.to_string());
                    }
                }
                if let Err(e) = socket.flush() {
                    return End::Failed(e.to_string());
                }
                continue;
            }
            Err(e) => return End::Failed(e.to_string()),
        };
        heard = Instant::now();
        pinged = false;
        let Ok(message) = serde_json::from_str::<Value>(frame.as_str()) else {
            log::warn!("Socket Mode sent a frame that is not JSON; ignored.");
            continue;
        };
        match message["type"].as_str() {
            Some("hello") => {
                *wait = RETRY_FIRST;
                log::info!(
                    "Socket Mode is connected: button clicks arrive without an inbound port."
                );
                continue;
            }
            Some("disconnect") => return End::Reconnect,
            _ => {}
        }
        let Some(envelope_id) = message["envelope_id"].as_str() else {
            continue;
        };
        let mut ack = json!({"envelope_id": envelope_id});
        if message["type"] == "interactive" {
            match ctx.handle(&message["payload"]) {
                Ok(reply) => {
                    if let Some(body) = reply.body() {
                        ack["payload"] = body;
                    }
                }
                Err(e) => {
                    // Not acknowledged: Slack sends it again, and the click is not lost.
                    log::error!(
                        "A Socket Mode click could not be stored ({e}); Slack will send it again."
                    );
                    continue;
                }
            }
        }
        if let Err(e) = socket.send(Message::text(ack.to_string())) {
            return End::Failed(format!("cannot acknowledge an envelope: {e}"));
        }
    }
}
