//! An in-process HTTP server standing in for Slack's incoming webhooks.
//!
//! Each webhook path answers from a script (200 `ok` once the script is used up). Every request
//! is recorded with its arrival time; tests wait on a condition variable, not on sleeps.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How the fake answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 `ok`.
    Ok,
    /// Any status with a plain-text body, like Slack's errors.
    Status(u16, &'static str),
    /// 429 `rate_limited` with `Retry-After: secs`.
    RateLimited(u64),
    /// Read the request, then close the connection without answering.
    Drop,
    /// Take the message (recorded as a 200: Slack has it) but hold the answer until
    /// [`FakeSlack::release`]: the window between Slack's 200 and the relay's record of it.
    Hold,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The webhook path, e.g. `/services/T0/B0/uk`.
    pub path: String,
    /// The JSON payload.
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// How the fake answered it.
    pub reply: String,
    /// The `Authorization` header, for a requesting system's bearer token.
    pub authorization: Option<String>,
}

impl Received {
    /// The CRM id shown in the message's context line.
    pub fn crm_id(&self) -> Option<String> {
        let context = self.body["blocks"]
            .as_array()?
            .iter()
            .find(|b| b["type"] == "context")?;
        let text = context["elements"][0]["text"].as_str()?;
        let rest = text.strip_prefix("CRM id ")?;
        Some(rest.split(" · ").next()?.to_string())
    }

    pub fn delivered(&self) -> bool {
        self.reply == "200"
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    scripts: HashMap<String, VecDeque<Reply>>,
    /// Held answers go out once this is set.
    released: bool,
}

pub struct FakeSlack {
    /// `127.0.0.1:port`.
    addr: String,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl FakeSlack {
    pub fn start() -> FakeSlack {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake slack");
        let addr = listener.local_addr().expect("addr").to_string();
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        FakeSlack { addr, state }
    }

    /// The webhook URL for a channel name.
    pub fn url(&self, channel: &str) -> String {
        format!("http://{}{}", self.addr, Self::path(channel))
    }

    pub fn path(channel: &str) -> String {
        format!("/services/T0/B0/{channel}")
    }

    /// Queues answers for a channel's next requests.
    pub fn script(&self, channel: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut state = self.state.0.lock().unwrap();
        state
            .scripts
            .entry(Self::path(channel))
            .or_default()
            .extend(replies);
    }

    /// Every request a channel received so far.
    pub fn received(&self, channel: &str) -> Vec<Received> {
        let path = Self::path(channel);
        self.state
            .0
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Every request on any channel.
    pub fn all(&self) -> Vec<Received> {
        self.state.0.lock().unwrap().received.clone()
    }

    /// Sends the answers of every [`Reply::Hold`], now and from now on.
    pub fn release(&self) {
        let (lock, cvar) = &*self.state;
        lock.lock().unwrap().released = true;
        cvar.notify_all();
    }

    /// Waits until `pred` holds for all requests received so far, or panics after `timeout`.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.state;
        let mut state = lock.lock().unwrap();
        loop {
            if pred(&state.received) {
                return state.received.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; received: {:#?}",
                    state.received
                );
            }
            state = cvar.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Waits until a channel has received `n` requests (answered any way).
    pub fn wait_for(&self, channel: &str, n: usize) -> Vec<Received> {
        let path = Self::path(channel);
        self.wait_until(
            Duration::from_secs(20),
            &format!("{n} requests on {channel}"),
            |all| all.iter().filter(|r| r.path == path).count() >= n,
        )
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
    }

    /// Waits until a channel has accepted (200) `n` messages.
    pub fn wait_delivered(&self, channel: &str, n: usize) -> Vec<Received> {
        let path = Self::path(channel);
        self.wait_until(
            Duration::from_secs(20),
            &format!("{n} deliveries on {channel}"),
            |all| {
                all.iter()
                    .filter(|r| r.path == path && r.delivered())
                    .count()
                    >= n
            },
        )
        .into_iter()
        .filter(|r| r.path == path && r.delivered())
        .collect()
    }
}

fn serve(stream: TcpStream, shared: &(Mutex<State>, Condvar)) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let mut length = 0usize;
        let mut authorization = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if name.eq_ignore_ascii_case("authorization") {
                    authorization = Some(value.trim().to_string());
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = {
            let (lock, _) = shared;
            let mut state = lock.lock().unwrap();
            state
                .scripts
                .get_mut(&path)
                .and_then(VecDeque::pop_front)
                .unwrap_or(Reply::Ok)
        };
        let (label, response) = match &reply {
            Reply::Ok => ("200".to_string(), Some(response(200, "OK", "ok", None))),
            Reply::Status(code, text) => {
                (code.to_string(), Some(response(*code, "Error", text, None)))
            }
            Reply::RateLimited(secs) => (
                "429".to_string(),
                Some(response(
                    429,
                    "Too Many Requests",
                    "rate_limited",
                    Some(*secs),
                )),
            ),
            Reply::Drop => ("dropped".to_string(), None),
            Reply::Hold => ("200".to_string(), Some(response(200, "OK", "ok", None))),
        };
        {
            let (lock, cvar) = shared;
            let mut state = lock.lock().unwrap();
            state.received.push(Received {
                path: path.clone(),
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                at: Instant::now(),
                reply: label,
                authorization,
            });
            cvar.notify_all();
        }
        if matches!(reply, Reply::Hold) {
            let (lock, cvar) = shared;
            let state = lock.lock().unwrap();
            let _held = cvar
                .wait_timeout_while(state, Duration::from_secs(120), |s| !s.released)
                .unwrap();
        }
        match response {
            Some(bytes) => {
                if writer.write_all(&bytes).is_err() {
                    return;
                }
            }
            None => {
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }
}

fn response(code: u16, reason: &str, body: &str, retry_after: Option<u64>) -> Vec<u8> {
    let extra = retry_after
        .map(|s| format!("retry-after: {s}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}
