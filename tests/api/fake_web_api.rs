//! An in-process HTTP server standing in for Slack's Web API (`https://slack.com/api/`).
//!
//! Every method answers from a script first (queued with [`FakeWebApi::script`]), then from a small
//! model of a workspace: the messages posted so far (with their edits, reactions, pins and
//! deletions), the channels and users a test added, and the bot and app tokens. Every call is
//! recorded with its arguments, token and how it was answered; tests wait on a condition
//! variable, never on sleeps.
//!
//! Like [`super::fake_slack`], it is a std `TcpListener` with a thread per connection speaking
//! HTTP/1.1 with keep-alive. Requests carry `Content-Length` bodies (the relay never sends
//! chunked ones); anything it cannot parse is answered 400 and the connection closed, so a bad
//! request never panics a server thread.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

/// The only bot token the fake accepts.
pub const BOT_TOKEN: &str = "xoxb-test-0000-bot-token-abcdef";
/// The app-level token, accepted only by `apps.connections.open`.
pub const APP_TOKEN: &str = "xapp-test-0000-app-token-abcdef";

/// How long [`FakeWebApi::wait_ok`] waits.
const WAIT: Duration = Duration::from_secs(20);
/// Longest request line or header line accepted, in bytes.
const MAX_LINE: u64 = 16 * 1024;
/// Most header lines accepted in one request.
const MAX_HEADERS: usize = 100;
/// Largest request body accepted, in bytes.
const MAX_BODY: usize = 8 * 1024 * 1024;
/// The seconds part of the first message timestamp.
const TS_EPOCH: u64 = 1_700_000_000;

/// A scripted answer to one call, used before the method's default behaviour.
#[derive(Debug, Clone)]
pub enum ApiReply {
    /// HTTP 200 `{"ok":false,"error":WORD}` — Slack's way of reporting an error.
    Error(&'static str),
    /// HTTP 429 with `Retry-After: secs` and body `{"ok":false,"error":"ratelimited"}`.
    RateLimited(u64),
    /// Any HTTP status with an empty JSON-less body (e.g. 500, 503).
    Status(u16),
    /// Read the request, then close the connection without answering.
    Drop,
}

/// One Web API call as received.
#[derive(Debug, Clone)]
pub struct ApiCall {
    /// The method, e.g. `chat.postMessage` (from the path `/api/chat.postMessage`); a request
    /// outside `/api/` keeps its whole path so a wrong base URL shows up in failure listings.
    pub method: String,
    /// The JSON body, or the form/query fields as a JSON object of strings, so tests can check
    /// what the relay sent whichever encoding it used.
    pub args: Value,
    /// The bearer token presented (`Authorization: Bearer …`), to check which token was used.
    pub token: Option<String>,
    /// The request's `Content-Type` header, `""` if none, to check how the relay encoded it.
    pub content_type: String,
    /// How the fake answered: `"ok"`, the error word, `"429"`, `"500"`, `"dropped"`...
    pub reply: String,
    /// When it arrived, to check retry spacing.
    pub at: Instant,
}

impl ApiCall {
    /// Whether the call was answered `{"ok":true,…}`.
    pub fn ok(&self) -> bool {
        self.reply == "ok"
    }
}

/// A message as the fake workspace holds it now.
#[derive(Debug, Clone)]
pub struct Message {
    /// The channel it was posted to, as the relay named it.
    pub channel: String,
    /// Its timestamp, Slack's id for a message within a channel.
    pub ts: String,
    /// The parent message's ts when it was posted as a thread reply.
    pub thread_ts: Option<String>,
    /// The current text (after any `chat.update`).
    pub text: String,
    /// The current blocks, `Null` if none.
    pub blocks: Value,
    /// How many `chat.update` calls changed it.
    pub edits: u32,
    /// Reaction names added to it, in order.
    pub reactions: Vec<String>,
    /// Whether `pins.add` pinned it.
    pub pinned: bool,
    /// Whether `chat.delete` removed it; deleted messages stay listed so tests can see them.
    pub deleted: bool,
}

/// A channel `conversations.info` knows about.
#[derive(Debug, Clone)]
struct Channel {
    /// Its name without `#`.
    name: String,
    /// Whether the bot is in it.
    is_member: bool,
}

/// Everything the fake remembers, behind one mutex.
#[derive(Default)]
struct State {
    /// Every call in arrival order.
    calls: Vec<ApiCall>,
    /// Scripted answers per method, consumed before the default behaviour.
    scripts: HashMap<String, VecDeque<ApiReply>>,
    /// Every message ever posted, in post order (deleted ones included).
    messages: Vec<Message>,
    /// Channels added by the test, by id.
    channels: HashMap<String, Channel>,
    /// Users added by the test: id to email.
    users: HashMap<String, String>,
    /// How many messages were posted, to make each ts strictly greater than the last.
    posted: u64,
    /// What `apps.connections.open` answers as the WebSocket URL, when a test runs a socket.
    socket_url: Option<String>,
}

/// The shared state and the condition variable notified after each recorded call.
type Shared = (Mutex<State>, Condvar);

/// Locks the state even if a test panicked while holding it, so one failure does not make every
/// server thread panic too.
fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fake Web API, serving until the test process ends.
pub struct FakeWebApi {
    /// `127.0.0.1:port`.
    addr: String,
    /// Shared with the connection threads.
    state: Arc<Shared>,
}

impl FakeWebApi {
    /// Starts the fake on `127.0.0.1:0`.
    pub fn start() -> FakeWebApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake web api");
        let addr = listener.local_addr().expect("addr").to_string();
        let state: Arc<Shared> = Arc::default();
        let shared = Arc::clone(&state);
        let server_addr = addr.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                let addr = server_addr.clone();
                std::thread::spawn(move || serve(stream, &shared, &addr));
            }
        });
        FakeWebApi { addr, state }
    }

    /// `http://127.0.0.1:PORT/api/`; the relay appends the method name.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// Queues answers for a method's next calls, used before its default behaviour (and before
    /// the token check).
    pub fn script(&self, method: &str, replies: impl IntoIterator<Item = ApiReply>) {
        lock(&self.state)
            .scripts
            .entry(method.to_string())
            .or_default()
            .extend(replies);
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<ApiCall> {
        lock(&self.state).calls.clone()
    }

    /// Every call of one method so far.
    pub fn calls_of(&self, method: &str) -> Vec<ApiCall> {
        lock(&self.state)
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Waits until `pred` holds for all calls so far and returns them, or panics after `timeout`
    /// listing the calls received.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[ApiCall]) -> bool,
    ) -> Vec<ApiCall> {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.state);
        loop {
            if pred(&state.calls) {
                return state.calls.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let listing = format!("{:#?}", state.calls);
                drop(state);
                panic!("timed out after {timeout:?} waiting for {what}; calls: {listing}");
            }
            state = self
                .state
                .1
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits (20 s) until `n` calls of `method` were answered ok; returns those calls.
    pub fn wait_ok(&self, method: &str, n: usize) -> Vec<ApiCall> {
        let wanted = |c: &&ApiCall| c.method == method && c.ok();
        self.wait_until(WAIT, &format!("{n} ok calls of {method}"), |all| {
            all.iter().filter(wanted).count() >= n
        })
        .iter()
        .filter(wanted)
        .cloned()
        .collect()
    }

    /// The current state of a posted message, `None` if it was never posted.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Message> {
        lock(&self.state)
            .messages
            .iter()
            .find(|m| m.channel == channel && m.ts == ts)
            .cloned()
    }

    /// Every message ever posted to a channel, in post order, deleted ones included.
    pub fn messages(&self, channel: &str) -> Vec<Message> {
        lock(&self.state)
            .messages
            .iter()
            .filter(|m| m.channel == channel)
            .cloned()
            .collect()
    }

    /// Makes a channel known to `conversations.info`. Channels not added still accept posts (as
    /// with the `chat:write.public` scope).
    pub fn add_channel(&self, id: &str, name: &str, is_member: bool) {
        lock(&self.state).channels.insert(
            id.to_string(),
            Channel {
                name: name.to_string(),
                is_member,
            },
        );
    }

    /// Makes a user known to `users.info`.
    pub fn add_user(&self, id: &str, email: &str) {
        lock(&self.state)
            .users
            .insert(id.to_string(), email.to_string());
    }

    /// Makes `apps.connections.open` answer this WebSocket URL (a test's Socket Mode server).
    pub fn set_socket_url(&self, url: &str) {
        lock(&self.state).socket_url = Some(url.to_string());
    }
}

/// One parsed HTTP request.
struct Request {
    /// The request target, e.g. `/api/chat.postMessage?x=1`.
    target: String,
    /// `Content-Type`, `""` if none.
    content_type: String,
    /// `Authorization`, if sent.
    authorization: Option<String>,
    /// Whether the client asked to close the connection after this request.
    close: bool,
    /// The `Content-Length` body.
    body: Vec<u8>,
}

/// What reading the next request from a connection gave.
enum Incoming {
    /// A complete request.
    Request(Request),
    /// The client closed the connection (or it failed) before a complete request.
    Closed,
    /// A request the fake cannot parse; answered 400, then the connection is closed.
    Bad(&'static str),
}

/// What reading one line gave.
enum Line {
    /// A line without its line ending.
    Text(String),
    /// The connection ended first.
    Eof,
    /// Too long or not UTF-8.
    Bad(&'static str),
}

/// How a call is answered on the wire.
enum Answer {
    /// An HTTP status, a `Retry-After` in seconds, and a JSON body (`None` for an empty body).
    Http(u16, Option<u64>, Option<Value>),
    /// Close the connection without answering.
    Drop,
}

fn serve(stream: TcpStream, shared: &Shared, addr: &str) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        let request = match read_request(&mut reader) {
            Incoming::Request(request) => request,
            Incoming::Closed => return,
            Incoming::Bad(why) => {
                record(shared, bad_request_call(why));
                let _ = writer.write_all(&response(400, None, Some(&json!({"error": why})), true));
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        };
        let close = request.close;
        let answer = handle(shared, addr, request);
        match answer {
            Answer::Http(code, retry_after, body) => {
                let bytes = response(code, retry_after, body.as_ref(), close);
                if writer
                    .write_all(&bytes)
                    .and_then(|()| writer.flush())
                    .is_err()
                    || close
                {
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
            }
            Answer::Drop => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes.
fn read_line(reader: &mut BufReader<TcpStream>) -> Line {
    let mut bytes = Vec::new();
    match reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut bytes) {
        Ok(_) if bytes.last() == Some(&b'\n') => {}
        Ok(_) if bytes.len() as u64 >= MAX_LINE => return Line::Bad("line too long"),
        _ => return Line::Eof,
    }
    bytes.pop();
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    match String::from_utf8(bytes) {
        Ok(text) => Line::Text(text),
        Err(_) => Line::Bad("header not UTF-8"),
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Incoming {
    let request_line = match read_line(reader) {
        Line::Text(text) => text,
        Line::Eof => return Incoming::Closed,
        Line::Bad(why) => return Incoming::Bad(why),
    };
    let parts: Vec<&str> = request_line.split_whitespace().collect();
    let [_verb, target, version] = parts[..] else {
        return Incoming::Bad("malformed request line");
    };
    if !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Incoming::Bad("malformed request line");
    }
    let mut request = Request {
        target: target.to_string(),
        content_type: String::new(),
        authorization: None,
        close: version == "HTTP/1.0",
        body: Vec::new(),
    };
    let mut length: Option<usize> = None;
    for count in 0.. {
        let line = match read_line(reader) {
            Line::Text(text) => text,
            Line::Eof => return Incoming::Closed,
            Line::Bad(why) => return Incoming::Bad(why),
        };
        if line.is_empty() {
            break;
        }
        if count >= MAX_HEADERS {
            return Incoming::Bad("too many headers");
        }
        let Some((name, value)) = line.split_once(':') else {
            return Incoming::Bad("malformed header");
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            let Ok(n) = value.parse::<usize>() else {
                return Incoming::Bad("bad content-length");
            };
            if length.is_some_and(|l| l != n) {
                return Incoming::Bad("conflicting content-length");
            }
            if n > MAX_BODY {
                return Incoming::Bad("body too large");
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Incoming::Bad("transfer-encoding not supported");
        } else if name.eq_ignore_ascii_case("content-type") {
            request.content_type = value.to_string();
        } else if name.eq_ignore_ascii_case("authorization") {
            request.authorization = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("connection") {
            let value = value.to_ascii_lowercase();
            if value.contains("close") {
                request.close = true;
            } else if value.contains("keep-alive") {
                request.close = false;
            }
        }
    }
    request.body = vec![0u8; length.unwrap_or(0)];
    if reader.read_exact(&mut request.body).is_err() {
        return Incoming::Closed;
    }
    Incoming::Request(request)
}

/// Records a call and wakes the waiting tests.
fn record(shared: &Shared, call: ApiCall) {
    lock(shared).calls.push(call);
    shared.1.notify_all();
}

/// The record of a request answered 400, so it shows up in failure listings.
fn bad_request_call(why: &str) -> ApiCall {
    ApiCall {
        method: "(bad request)".to_string(),
        args: json!({ "error": why }),
        token: None,
        content_type: String::new(),
        reply: "400".to_string(),
        at: Instant::now(),
    }
}

/// Decodes `a=1&b=x+y%21` into a JSON object of strings.
fn form_fields(bytes: &[u8], into: &mut Map<String, Value>) {
    for (key, value) in form_urlencoded::parse(bytes) {
        into.insert(key.into_owned(), Value::String(value.into_owned()));
    }
}

/// The call's arguments: the JSON body, or the form body, plus any query-string fields.
fn arguments(request: &Request, query: &str) -> Value {
    let mut fields = Map::new();
    form_fields(query.as_bytes(), &mut fields);
    let media_type = request
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type == "application/json" && !request.body.is_empty() {
        match serde_json::from_slice::<Value>(&request.body) {
            Ok(Value::Object(body)) => fields.extend(body),
            // Not an object: keep it as sent, with no query fields, so the test can see it.
            Ok(other) => return other,
            Err(_) => return Value::String(String::from_utf8_lossy(&request.body).into_owned()),
        }
    } else {
        // Slack reads form fields from any non-JSON body; a JSON body sent as something else
        // therefore arrives without its fields, as it would at Slack.
        form_fields(&request.body, &mut fields);
    }
    Value::Object(fields)
}

/// A non-empty string argument (numbers are accepted and turned into strings).
fn arg(args: &Value, key: &str) -> Option<String> {
    match &args[key] {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A JSON argument such as `blocks` or `view`; form encoding sends it as a JSON string. `Null`
/// when absent or empty.
fn json_arg(args: &Value, key: &str) -> Value {
    let value = match &args[key] {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        other => other.clone(),
    };
    match &value {
        Value::Array(items) if items.is_empty() => Value::Null,
        Value::String(s) if s.is_empty() => Value::Null,
        _ => value,
    }
}

/// The Slack timestamp of the `n`th message: `1700000000.000100`, `1700000000.000200`, …
fn ts_for(n: u64) -> String {
    let micros = n * 100;
    format!(
        "{}.{:06}",
        TS_EPOCH + micros / 1_000_000,
        micros % 1_000_000
    )
}

/// Answers one request and records it, all under the lock so calls are seen atomically.
fn handle(shared: &Shared, addr: &str, request: Request) -> Answer {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    let args = arguments(&request, query);
    let token = request.authorization.as_deref().and_then(|value| {
        let scheme = value.get(..6)?;
        let rest = &value[6..];
        (scheme.eq_ignore_ascii_case("bearer") && (rest.is_empty() || rest.starts_with(' ')))
            .then(|| rest.trim().to_string())
    });
    let mut state = lock(shared);
    let (label, answer) = match path.strip_prefix("/api/") {
        None => ("404".to_string(), Answer::Http(404, None, None)),
        Some(method) => {
            let scripted = state.scripts.get_mut(method).and_then(VecDeque::pop_front);
            match scripted {
                Some(reply) => scripted_answer(reply),
                None => {
                    let expected = if method == "apps.connections.open" {
                        APP_TOKEN
                    } else {
                        BOT_TOKEN
                    };
                    // No header, or `Bearer` with nothing after it, is `not_authed`; any
                    // other header that is not exactly the expected token is `invalid_auth`.
                    let outcome = match (&request.authorization, token.as_deref()) {
                        (None, _) | (Some(_), Some("")) => Err("not_authed"),
                        (Some(_), Some(t)) if t == expected => {
                            default_reply(&mut state, addr, method, &args)
                        }
                        (Some(_), _) => Err("invalid_auth"),
                    };
                    match outcome {
                        Ok(body) => ("ok".to_string(), Answer::Http(200, None, Some(body))),
                        Err(word) => (word.to_string(), error_answer(200, word)),
                    }
                }
            }
        }
    };
    state.calls.push(ApiCall {
        method: path.strip_prefix("/api/").unwrap_or(path).to_string(),
        args,
        token,
        content_type: request.content_type.clone(),
        reply: label,
        at: Instant::now(),
    });
    drop(state);
    shared.1.notify_all();
    answer
}

fn error_answer(code: u16, word: &str) -> Answer {
    Answer::Http(code, None, Some(json!({ "ok": false, "error": word })))
}

/// A scripted reply's label and answer.
fn scripted_answer(reply: ApiReply) -> (String, Answer) {
    match reply {
        ApiReply::Error(word) => (word.to_string(), error_answer(200, word)),
        ApiReply::RateLimited(secs) => (
            "429".to_string(),
            Answer::Http(
                429,
                Some(secs),
                Some(json!({ "ok": false, "error": "ratelimited" })),
            ),
        ),
        ApiReply::Status(code) => (code.to_string(), Answer::Http(code, None, None)),
        ApiReply::Drop => ("dropped".to_string(), Answer::Drop),
    }
}

/// Finds a message that was posted and not deleted.
fn live_message<'a>(state: &'a mut State, args: &Value, ts_key: &str) -> Option<&'a mut Message> {
    let channel = arg(args, "channel")?;
    let ts = arg(args, ts_key)?;
    state
        .messages
        .iter_mut()
        .find(|m| m.channel == channel && m.ts == ts && !m.deleted)
}

/// A method's behaviour once the token was accepted: the `ok` body, or Slack's error word.
fn default_reply(
    state: &mut State,
    addr: &str,
    method: &str,
    args: &Value,
) -> Result<Value, &'static str> {
    match method {
        "api.test" => Ok(json!({ "ok": true, "args": args })),
        "auth.test" => Ok(json!({
            "ok": true,
            "url": "https://fake-team.slack.com/",
            "team": "Fake Team",
            "user": "hookrelay",
            "team_id": "T0FAKE",
            "user_id": "U0BOT",
            "bot_id": "B0BOT",
        })),
        "apps.connections.open" => {
            let url = state
                .socket_url
                .clone()
                .unwrap_or_else(|| format!("ws://{addr}/socket"));
            Ok(json!({ "ok": true, "url": url }))
        }
        "chat.postMessage" => {
            let channel = arg(args, "channel").ok_or("channel_not_found")?;
            let text = arg(args, "text").unwrap_or_default();
            let blocks = json_arg(args, "blocks");
            if text.is_empty() && blocks.is_null() {
                return Err("no_text");
            }
            let thread_ts = arg(args, "thread_ts");
            if let Some(parent) = &thread_ts {
                let exists = state
                    .messages
                    .iter()
                    .any(|m| m.channel == channel && &m.ts == parent && !m.deleted);
                if !exists {
                    return Err("thread_not_found");
                }
            }
            state.posted += 1;
            let ts = ts_for(state.posted);
            let mut message = json!({
                "type": "message",
                "text": text,
                "user": "U0BOT",
                "bot_id": "B0BOT",
                "ts": ts,
            });
            if let Some(parent) = &thread_ts {
                message["thread_ts"] = json!(parent);
            }
            if !blocks.is_null() {
                message["blocks"] = blocks.clone();
            }
            state.messages.push(Message {
                channel: channel.clone(),
                ts: ts.clone(),
                thread_ts,
                text,
                blocks,
                edits: 0,
                reactions: Vec::new(),
                pinned: false,
                deleted: false,
            });
            Ok(json!({ "ok": true, "channel": channel, "ts": ts, "message": message }))
        }
        "chat.update" => {
            let text = arg(args, "text");
            let blocks = json_arg(args, "blocks");
            let message = live_message(state, args, "ts").ok_or("message_not_found")?;
            if text.is_none() && blocks.is_null() {
                return Err("no_text");
            }
            if let Some(text) = text {
                message.text = text;
            }
            if !blocks.is_null() {
                message.blocks = blocks;
            }
            message.edits += 1;
            Ok(json!({
                "ok": true,
                "channel": message.channel,
                "ts": message.ts,
                "text": message.text,
            }))
        }
        "chat.delete" => {
            let message = live_message(state, args, "ts").ok_or("message_not_found")?;
            message.deleted = true;
            Ok(json!({ "ok": true, "channel": message.channel, "ts": message.ts }))
        }
        "pins.add" => {
            let message = live_message(state, args, "timestamp").ok_or("message_not_found")?;
            if message.pinned {
                return Err("already_pinned");
            }
            message.pinned = true;
            Ok(json!({ "ok": true }))
        }
        "reactions.add" => {
            let name = arg(args, "name");
            let message = live_message(state, args, "timestamp").ok_or("message_not_found")?;
            let name = name.ok_or("invalid_name")?;
            if message.reactions.contains(&name) {
                return Err("already_reacted");
            }
            message.reactions.push(name);
            Ok(json!({ "ok": true }))
        }
        "conversations.info" => {
            let id = arg(args, "channel").ok_or("channel_not_found")?;
            let channel = state.channels.get(&id).ok_or("channel_not_found")?;
            Ok(json!({
                "ok": true,
                "channel": {
                    "id": id,
                    "name": channel.name,
                    "is_member": channel.is_member,
                    "is_archived": false,
                },
            }))
        }
        "users.info" => {
            let id = arg(args, "user").ok_or("user_not_found")?;
            let email = state.users.get(&id).ok_or("user_not_found")?;
            let name = email.split('@').next().unwrap_or(email);
            Ok(json!({
                "ok": true,
                "user": { "id": id, "name": name, "profile": { "email": email } },
            }))
        }
        "views.open" => {
            let mut view = match json_arg(args, "view") {
                Value::Object(view) => view,
                _ => Map::new(),
            };
            view.insert("id".to_string(), json!("V1"));
            Ok(json!({ "ok": true, "view": view }))
        }
        _ => Err("unknown_method"),
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn response(code: u16, retry_after: Option<u64>, body: Option<&Value>, close: bool) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {code} {}\r\n", reason(code));
    let body = match body {
        Some(json) => {
            head.push_str("content-type: application/json; charset=utf-8\r\n");
            json.to_string()
        }
        None => String::new(),
    };
    if let Some(secs) = retry_after {
        head.push_str(&format!("retry-after: {secs}\r\n"));
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    head.push_str(&body);
    head.into_bytes()
}

/// Drives the fake the way the relay will, so a broken fake fails here and not in a relay test.
#[test]
fn fake_web_api_self_check() {
    let api = FakeWebApi::start();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let base = api.base_url();
    assert!(base.starts_with("http://127.0.0.1:") && base.ends_with("/api/"));
    let call = |method: &str, token: &str, body: Value| {
        let resp = agent
            .post(format!("{base}{method}"))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json; charset=utf-8")
            .send(body.to_string())
            .expect("fake web api answers");
        let answer = crate::helpers::Answer::read(resp);
        (answer.status, answer.retry_after, answer.json)
    };

    // Post, then update, pin, react twice, delete twice.
    let (status, _, posted) = call(
        "chat.postMessage",
        BOT_TOKEN,
        json!({ "channel": "C1", "text": "hello", "blocks": [{ "type": "divider" }] }),
    );
    assert_eq!(status, 200);
    assert_eq!(posted["ok"], true, "{posted}");
    assert_eq!(posted["channel"], "C1");
    assert_eq!(posted["ts"], "1700000000.000100");
    assert_eq!(posted["message"]["text"], "hello");
    let ts = posted["ts"].as_str().unwrap().to_string();

    let (_, _, reply) = call(
        "chat.postMessage",
        BOT_TOKEN,
        json!({ "channel": "C1", "text": "in thread", "thread_ts": ts }),
    );
    assert_eq!(reply["ts"], "1700000000.000200", "{reply}");
    let (_, _, reply) = call(
        "chat.postMessage",
        BOT_TOKEN,
        json!({ "channel": "C1", "text": "x", "thread_ts": "1.2" }),
    );
    assert_eq!(reply["error"], "thread_not_found");
    let (_, _, reply) = call("chat.postMessage", BOT_TOKEN, json!({ "channel": "C1" }));
    assert_eq!(reply["error"], "no_text");

    let (_, _, updated) = call(
        "chat.update",
        BOT_TOKEN,
        json!({ "channel": "C1", "ts": ts, "text": "edited" }),
    );
    assert_eq!(updated["ok"], true, "{updated}");
    assert_eq!(updated["text"], "edited");
    let (_, _, pinned) = call(
        "pins.add",
        BOT_TOKEN,
        json!({ "channel": "C1", "timestamp": ts }),
    );
    assert_eq!(pinned, json!({ "ok": true }));
    let react = json!({ "channel": "C1", "timestamp": ts, "name": "white_check_mark" });
    assert_eq!(
        call("reactions.add", BOT_TOKEN, react.clone()).2["ok"],
        true
    );
    let (status, _, again) = call("reactions.add", BOT_TOKEN, react);
    assert_eq!(status, 200);
    assert_eq!(again, json!({ "ok": false, "error": "already_reacted" }));

    let message = api.message("C1", &ts).expect("message posted");
    assert_eq!(message.text, "edited");
    assert_eq!(message.blocks, json!([{ "type": "divider" }]));
    assert_eq!(message.edits, 1);
    assert!(message.pinned);
    assert_eq!(message.reactions, ["white_check_mark"]);

    let delete = json!({ "channel": "C1", "ts": ts });
    let (_, _, deleted) = call("chat.delete", BOT_TOKEN, delete.clone());
    assert_eq!(deleted, json!({ "ok": true, "channel": "C1", "ts": ts }));
    let (_, _, again) = call("chat.delete", BOT_TOKEN, delete);
    assert_eq!(again["error"], "message_not_found");
    assert!(api.message("C1", &ts).unwrap().deleted);
    assert_eq!(api.messages("C1").len(), 2);
    assert!(api.message("C1", "9.9").is_none());

    // Scripted answers come first, even before the token check, then the default resumes.
    api.script(
        "chat.postMessage",
        [
            ApiReply::Error("channel_is_archived"),
            ApiReply::RateLimited(7),
        ],
    );
    let post = json!({ "channel": "C2", "text": "scripted" });
    let (status, _, scripted) = call("chat.postMessage", "xoxb-wrong", post.clone());
    assert_eq!(status, 200);
    assert_eq!(
        scripted,
        json!({ "ok": false, "error": "channel_is_archived" })
    );
    let (status, retry_after, limited) = call("chat.postMessage", BOT_TOKEN, post.clone());
    assert_eq!(status, 429);
    assert_eq!(retry_after.as_deref(), Some("7"));
    assert_eq!(limited["error"], "ratelimited");
    assert_eq!(
        call("chat.postMessage", BOT_TOKEN, post.clone()).2["ok"],
        true
    );

    // Tokens: another token, no token, and the app token only where it belongs.
    let (status, _, wrong) = call("auth.test", "xoxb-wrong", json!({}));
    assert_eq!(status, 200);
    assert_eq!(wrong, json!({ "ok": false, "error": "invalid_auth" }));
    assert_eq!(
        call("auth.test", APP_TOKEN, json!({})).2["error"],
        "invalid_auth"
    );
    let mut resp = agent
        .post(format!("{base}auth.test"))
        .send("")
        .expect("answers");
    let body: Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap_or_default();
    assert_eq!(body["error"], "not_authed");
    assert_eq!(
        call("auth.test", BOT_TOKEN, json!({})).2["user_id"],
        "U0BOT"
    );
    let (_, _, socket) = call("apps.connections.open", APP_TOKEN, json!({}));
    assert!(
        socket["url"].as_str().unwrap().ends_with("/socket"),
        "{socket}"
    );
    let (_, _, socket) = call("apps.connections.open", BOT_TOKEN, json!({}));
    assert_eq!(socket["error"], "invalid_auth");

    // Lookups, a form body and a query string.
    api.add_channel("C9", "alerts", true);
    api.add_user("U9", "ana@example.org");
    let (_, _, info) = call("conversations.info", BOT_TOKEN, json!({ "channel": "C9" }));
    assert_eq!(info["channel"]["name"], "alerts", "{info}");
    let mut resp = agent
        .post(format!("{base}users.info"))
        .header("Authorization", format!("Bearer {BOT_TOKEN}"))
        .send_form([("user", "U9")])
        .expect("answers");
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        body["user"]["profile"]["email"], "ana@example.org",
        "{body}"
    );
    let mut resp = agent
        .get(format!("{base}api.test?foo=a+b%21&bar=%E2%9C%93"))
        .header("Authorization", format!("Bearer {BOT_TOKEN}"))
        .call()
        .expect("answers");
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["args"], json!({ "foo": "a b!", "bar": "✓" }));
    assert_eq!(
        call("no.such", BOT_TOKEN, json!({})).2["error"],
        "unknown_method"
    );

    // A bare status, then a dropped connection; the agent's next call still gets through.
    api.script("auth.test", [ApiReply::Status(503), ApiReply::Drop]);
    let (status, _, body) = call("auth.test", BOT_TOKEN, json!({}));
    assert_eq!((status, body), (503, Value::Null));
    let dropped = agent
        .post(format!("{base}auth.test"))
        .header("Authorization", format!("Bearer {BOT_TOKEN}"))
        .send("{}");
    assert!(dropped.is_err(), "a dropped call has no answer");
    assert_eq!(call("auth.test", BOT_TOKEN, json!({})).2["ok"], true);

    // Garbage is answered 400 and recorded, without hurting the server.
    let mut raw = TcpStream::connect(&api.addr).unwrap();
    raw.write_all(b"NONSENSE\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = raw.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");

    // What the tests see.
    let posts = api.calls_of("chat.postMessage");
    assert_eq!(posts.len(), 7);
    assert_eq!(posts[0].token.as_deref(), Some(BOT_TOKEN));
    assert_eq!(posts[0].content_type, "application/json; charset=utf-8");
    assert_eq!(posts[0].args["text"], "hello");
    let labels: Vec<&str> = posts.iter().map(|c| c.reply.as_str()).collect();
    assert_eq!(
        labels,
        [
            "ok",
            "ok",
            "thread_not_found",
            "no_text",
            "channel_is_archived",
            "429",
            "ok"
        ]
    );
    assert_eq!(api.wait_ok("chat.postMessage", 3).len(), 3);
    let auth: Vec<String> = api
        .calls_of("auth.test")
        .into_iter()
        .map(|c| c.reply)
        .collect();
    assert_eq!(
        auth,
        [
            "invalid_auth",
            "invalid_auth",
            "not_authed",
            "ok",
            "503",
            "dropped",
            "ok"
        ]
    );
    let all = api.wait_until(Duration::from_secs(5), "the bad request", |calls| {
        calls.iter().any(|c| c.reply == "400")
    });
    assert!(all.windows(2).all(|w| w[0].at <= w[1].at));
}
