//! `[server]`: the HTTP receiver's address, limits and timeouts.

use std::time::Duration;

use super::raw::RawServer;
use super::values::{self, parse_duration, positive_duration};
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// `host:port` to bind; port 0 picks a free port (tests).
    pub listen: String,
    /// Bodies above this are refused with 413 before they are read whole.
    pub max_body_bytes: usize,
    /// How long a stop waits for in-flight requests and Slack posts before giving up on them.
    pub shutdown_timeout: Duration,
    /// A connection's request head must arrive within this of its opening (actix answers 408),
    /// so a client that opens connections and sends nothing cannot hold them.
    pub client_request_timeout: Duration,
    /// A request's whole body must arrive within this once its head is in (else 408 and the
    /// connection is closed): a client that stalls inside its body cannot hold a connection.
    pub client_body_timeout: Duration,
    /// Open connections across all HTTP workers; more wait in the kernel's accept queue. Keeps
    /// the relay below its open-file limit, where `accept` would fail for everyone.
    pub max_connections: usize,
}

/// `[server]`, checked.
pub(super) fn server_settings(raw: &RawServer) -> Result<ServerSettings, ConfigError> {
    let server = ServerSettings {
        listen: raw.listen.clone(),
        max_body_bytes: values::positive_count(
            "server.max_body_bytes",
            raw.max_body_bytes,
            "bytes",
            "1048576",
        )?,
        shutdown_timeout: parse_duration("server.shutdown_timeout", &raw.shutdown_timeout)?,
        client_request_timeout: positive_duration(
            "server.client_request_timeout",
            &raw.client_request_timeout,
            "\"5s\"",
        )?,
        client_body_timeout: positive_duration(
            "server.client_body_timeout",
            &raw.client_body_timeout,
            "\"10s\"",
        )?,
        max_connections: values::positive_count(
            "server.max_connections",
            raw.max_connections,
            "connections",
            "4096",
        )?,
    };
    if !raw.listen.contains(':') {
        return Err(ConfigError::invalid(
            "server.listen",
            &raw.listen,
            "is not host:port",
            "\"127.0.0.1:8080\"",
        ));
    }
    Ok(server)
}
