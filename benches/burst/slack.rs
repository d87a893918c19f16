//! The Slack stand-in: an HTTP/1.1 server on `127.0.0.1:0` (keep-alive, a thread per
//! connection) that answers every request `200 ok` and records each POST's arrival time and the
//! opportunities its message announces, in arrival order.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

/// One message Slack received.
pub(super) struct Message {
    /// When its body had been read.
    pub(super) at: Instant,
    /// The opportunities it announces, in its order.
    pub(super) names: Vec<String>,
    /// A digest ("N new opportunities for UK"), not a single card.
    pub(super) digest: bool,
    /// Its header's text.
    pub(super) header: String,
}

#[derive(Default)]
pub(super) struct Received {
    /// Every POST, in arrival order.
    pub(super) messages: Mutex<Vec<Message>>,
    /// What the stand-in could not read (a chunked body, a body that is not a message).
    pub(super) errors: Mutex<Vec<String>>,
}

impl Received {
    /// Opportunities announced so far, and when the last message arrived.
    pub(super) fn progress(&self) -> (usize, Option<Instant>) {
        let messages = self.messages.lock().unwrap();
        (
            messages.iter().map(|m| m.names.len()).sum(),
            messages.last().map(|m| m.at),
        )
    }
}

pub(super) fn start() -> (SocketAddr, Arc<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the Slack stand-in");
    let addr = listener
        .local_addr()
        .expect("the Slack stand-in has no address");
    let received = Arc::new(Received::default());
    let shared = Arc::clone(&received);
    std::thread::Builder::new()
        .name("slack-accept".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let received = Arc::clone(&shared);
                let _ = std::thread::Builder::new()
                    .name("slack-conn".into())
                    .spawn(move || serve(stream, &received));
            }
        })
        .expect("cannot start the Slack stand-in");
    (addr, received)
}

/// Serves one connection until it closes.
fn serve(stream: TcpStream, received: &Received) {
    const ANSWER: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(16 * 1024, read_half);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let is_post = line.starts_with("POST ");
        let mut length = 0usize;
        let mut close = false;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                let why = format!("a body with transfer-encoding {value:?}");
                received.errors.lock().unwrap().push(why);
                return;
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let at = Instant::now();
        if writer.write_all(ANSWER).is_err() {
            return;
        }
        if is_post {
            match serde_json::from_slice::<Value>(&body) {
                Ok(message) => received.messages.lock().unwrap().push(read(at, &message)),
                Err(e) => received
                    .errors
                    .lock()
                    .unwrap()
                    .push(format!("a body that is not JSON: {e}")),
            }
        }
        if close {
            return;
        }
    }
}

/// What a message announces: a digest's lines (each begins with the name in bold), or a single
/// card's header (the opportunity's name).
fn read(at: Instant, message: &Value) -> Message {
    let header = message["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let digest = header.contains(" new opportunit");
    let names = if digest {
        message["blocks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["type"] == "section")
            .filter_map(|b| {
                let text = b["text"]["text"].as_str()?;
                Some(text.strip_prefix('*')?.split('*').next()?.to_string())
            })
            .collect()
    } else {
        vec![header.clone()]
    };
    Message {
        at,
        names,
        digest,
        header,
    }
}
