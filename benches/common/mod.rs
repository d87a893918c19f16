//! Shared by the load, soak and burst harnesses: a keep-alive HTTP/1.1 client connection (plain
//! or TLS), the request body, and small helpers to start and watch a relay.

#![allow(dead_code)]

pub mod cpu;
pub mod relay;
pub mod sink;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;

use serde_json::json;
use std::time::Duration;

/// A byte stream a connection runs over: a `TcpStream`, or rustls over one.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// How the load's connections are made.
#[derive(Clone, Default)]
pub struct Client {
    /// TLS with this client config (trusting the bench's CA); plain HTTP when `None`.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// One request per connection (`Connection: close`), as senders that do not keep
    /// connections alive do: each request then pays the TCP (and TLS) handshake.
    pub close_each: bool,
}

/// A keep-alive HTTP/1.1 connection that sends one request at a time.
pub struct Conn {
    addr: SocketAddr,
    reader: BufReader<Box<dyn Stream>>,
    /// Sends `Connection: close` with each request.
    close_each: bool,
    request: Vec<u8>,
    line: String,
    pub body: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        Conn::open_with(addr, &Client::default())
    }

    /// A connection as `client` says; a TLS handshake happens with the first request.
    pub fn open_with(addr: SocketAddr, client: &Client) -> std::io::Result<Conn> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        let stream: Box<dyn Stream> = match &client.tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from("localhost")
                    .map_err(std::io::Error::other)?;
                let conn = rustls::ClientConnection::new(std::sync::Arc::clone(config), name)
                    .map_err(std::io::Error::other)?;
                Box::new(rustls::StreamOwned::new(conn, tcp))
            }
            None => Box::new(tcp),
        };
        Ok(Conn {
            addr,
            reader: BufReader::with_capacity(16 * 1024, stream),
            close_each: client.close_each,
            request: Vec::with_capacity(1024),
            line: String::new(),
            body: Vec::new(),
        })
    }

    /// POSTs `body`; returns the status and whether the server keeps the connection open.
    pub fn post(&mut self, path: &str, body: &str) -> std::io::Result<(u16, bool)> {
        use std::io::{Error, ErrorKind};
        self.request.clear();
        write!(
            self.request,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
            self.addr,
            body.len(),
            if self.close_each { "Connection: close\r\n" } else { "" }
        )?;
        self.reader.get_mut().write_all(&self.request)?;
        self.reader.get_mut().flush()?;

        self.line.clear();
        if self.reader.read_line(&mut self.line)? == 0 {
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidData,
                    format!("bad status line {:?}", self.line),
                )
            })?;
        let mut length: Option<usize> = None;
        let mut keep_alive = true;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                return Err(Error::new(
                    ErrorKind::UnexpectedEof,
                    "the answer's headers were cut",
                ));
            }
            let line = self.line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().ok();
                } else if name.eq_ignore_ascii_case("connection")
                    && value.eq_ignore_ascii_case("close")
                {
                    keep_alive = false;
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(Error::new(
                        ErrorKind::InvalidData,
                        "chunked answers are not expected",
                    ));
                }
            }
        }
        let length = length.ok_or_else(|| {
            Error::new(ErrorKind::InvalidData, "the answer has no Content-Length")
        })?;
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body)?;
        Ok((status, keep_alive && !self.close_each))
    }
}

/// The brief's example opportunity with the given id and country, as a request body.
pub fn body(id: &str, country: &str) -> String {
    json!({
        "id": id,
        "name": "Sample02",
        "status": "Qualification",
        "account": "Andrew Test",
        "close_date": "2017-03-16",
        "type": "New Business",
        "country": country,
        "owner_name": "Andrew",
        "owner_email": "andrew@tray.io",
        "amount": 4500
    })
    .to_string()
}

pub fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("cannot find a free local port")
        .port()
}

/// One `GET /healthz` on a fresh connection: true on a 200.
pub fn healthz(addr: SocketAddr) -> bool {
    get_ok(addr, "/healthz")
}

/// One `GET path` on a fresh connection: true on a 200.
pub fn get_ok(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = BufReader::new(stream).read_line(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}
