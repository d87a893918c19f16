//! The sink: a fast stand-in for Slack's incoming webhooks. Every request is answered `200 ok`
//! at once (keep-alive, a thread per connection) and every POST is counted, per path too.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub(super) struct SinkCounts {
    /// POSTs answered 200.
    pub(super) received: AtomicU64,
    /// Per path, for the summary.
    pub(super) by_path: Mutex<BTreeMap<String, u64>>,
}

pub(super) fn start_sink() -> (SocketAddr, Arc<SinkCounts>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the sink");
    let addr = listener.local_addr().expect("the sink has no address");
    let counts = Arc::new(SinkCounts::default());
    let shared = Arc::clone(&counts);
    std::thread::Builder::new()
        .name("sink-accept".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let counts = Arc::clone(&shared);
                let _ = std::thread::Builder::new()
                    .name("sink-conn".into())
                    .spawn(move || sink_serve(stream, &counts));
            }
        })
        .expect("cannot start the sink");
    (addr, counts)
}

/// Serves one connection: every request is answered `200 ok`, POSTs are counted.
fn sink_serve(stream: TcpStream, counts: &SinkCounts) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(16 * 1024, read_half);
    let mut writer = stream;
    let mut line = String::new();
    let mut body = Vec::new();
    const ANSWER: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
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
        if chunked {
            if skip_chunked(&mut reader, &mut line).is_err() {
                return;
            }
        } else {
            body.resize(length, 0);
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        }
        if writer.write_all(ANSWER).is_err() {
            return;
        }
        if is_post {
            counts.received.fetch_add(1, Ordering::Relaxed);
            *counts.by_path.lock().unwrap().entry(path).or_insert(0) += 1;
        }
        if close {
            return;
        }
    }
}

/// Reads and discards a chunked body, trailers included.
fn skip_chunked(reader: &mut BufReader<TcpStream>, line: &mut String) -> std::io::Result<()> {
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
        let mut chunk = vec![0u8; size + 2];
        reader.read_exact(&mut chunk)?;
    }
}
