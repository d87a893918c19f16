//! The Slack stand-in: the shared one (`common/sink.rs`), recording each POST's arrival time and
//! the opportunities its message announces, in arrival order.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

use super::common;

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
    /// What the stand-in could not read (a body that is not a message).
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
    let received = Arc::new(Received::default());
    let shared = Arc::clone(&received);
    let addr = common::sink::start(
        "slack",
        Arc::new(
            move |_path: &str, body: &[u8], at| match serde_json::from_slice::<Value>(body) {
                Ok(message) => shared.messages.lock().unwrap().push(read(at, &message)),
                Err(e) => shared
                    .errors
                    .lock()
                    .unwrap()
                    .push(format!("a body that is not JSON: {e}")),
            },
        ),
    );
    (addr, received)
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
