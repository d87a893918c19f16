//! A stand-in for Slack's incoming webhooks, shared by the harnesses: an HTTP/1.1 server on
//! `127.0.0.1:0` (keep-alive, a thread per connection) that answers every request `200 ok` at
//! once and hands each POST's path, body and arrival time to the harness.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

/// What the harness is told of each POST: its path, its body (de-chunked), when it was read.
pub type OnPost = dyn Fn(&str, &[u8], Instant) + Send + Sync;

/// Starts the server; threads are named `{name}-accept` and `{name}-conn`.
pub fn start(name: &str, on_post: Arc<OnPost>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the Slack stand-in");
    let addr = listener
        .local_addr()
        .expect("the Slack stand-in has no address");
    let conn = format!("{name}-conn");
    std::thread::Builder::new()
        .name(format!("{name}-accept"))
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let on_post = Arc::clone(&on_post);
                let _ = std::thread::Builder::new()
                    .name(conn.clone())
                    .spawn(move || serve(stream, on_post.as_ref()));
            }
        })
        .expect("cannot start the Slack stand-in");
    addr
}

/// Serves one connection until it closes.
fn serve(stream: TcpStream, on_post: &OnPost) {
    const ANSWER: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(16 * 1024, read_half);
    let mut writer = stream;
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let is_post = parts.next() == Some("POST");
        let path = parts.next().unwrap_or("").to_string();
        let mut length = 0usize;
        let mut chunked = false;
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
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.to_ascii_lowercase().contains("chunked");
                } else if name.eq_ignore_ascii_case("connection") {
                    close = value.eq_ignore_ascii_case("close");
                } else if name.eq_ignore_ascii_case("expect")
                    && value.eq_ignore_ascii_case("100-continue")
                    && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
                {
                    return;
                }
            }
        }
        body.clear();
        if chunked {
            if read_chunked(&mut reader, &mut line, &mut body).is_err() {
                return;
            }
        } else {
            body.resize(length, 0);
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        }
        let at = Instant::now();
        if writer.write_all(ANSWER).is_err() {
            return;
        }
        if is_post {
            on_post(&path, &body, at);
        }
        if close {
            return;
        }
    }
}

/// Reads a chunked body into `body`, trailers skipped.
fn read_chunked(
    reader: &mut BufReader<TcpStream>,
    line: &mut String,
    body: &mut Vec<u8>,
) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    loop {
        line.clear();
        if reader.read_line(line)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        let size = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size.trim(), 16)
            .map_err(|_| Error::new(ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            loop {
                line.clear();
                if reader.read_line(line)? == 0 || line.trim_end().is_empty() {
                    return Ok(());
                }
            }
        }
        let start = body.len();
        body.resize(start + size + 2, 0);
        reader.read_exact(&mut body[start..])?;
        body.truncate(start + size);
    }
}
