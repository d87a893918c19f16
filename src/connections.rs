//! How many connections the front door holds: within the process's open-file limit, and split
//! over actix's workers.
//!
//! Every connection is a file descriptor. When the process runs out of them, `accept` fails for
//! everyone, real senders included (issue 15: 1,100 stalled connections under systemd's default
//! soft limit of 1,024 locked every sender out). So at start the soft limit is raised, and the
//! connection limit is kept below what the limit leaves.

/// Files the relay keeps open besides its connections: sled's files and the log segments,
/// the outbound connections to Slack, stdio and the journal socket, the workers' epoll and event
/// descriptors.
pub const RESERVED_FILES: u64 = 64;

/// The soft limit to ask for, if it should change: the hard limit, since the soft one only
/// protects programs that still use `select(2)`, which the relay does not. With no hard limit
/// (`RLIM_INFINITY`, which the kernel refuses as a soft value for open files) just what is
/// needed.
pub fn wanted_soft_limit(soft: u64, hard: u64, needed: u64) -> Option<u64> {
    let target = if hard == libc::RLIM_INFINITY {
        needed
    } else {
        hard
    };
    (target > soft).then_some(target)
}

/// The connections that fit within `open_files` once the reserve is kept: `wanted` if they
/// all do, else as many as fit (at least one, so the relay still answers).
pub fn connections_within(open_files: u64, wanted: usize) -> usize {
    let room = open_files.saturating_sub(RESERVED_FILES).max(1);
    usize::try_from(room).map_or(wanted, |room| wanted.min(room))
}

/// actix counts `max_connections` per worker; the total is split evenly, rounded up so the
/// workers together take at least the configured number.
pub fn per_worker(total: usize, workers: usize) -> usize {
    total.div_ceil(workers.max(1)).max(1)
}

/// The HTTP workers actix would start by default (one per core, at most 512), set explicitly
/// so that [`per_worker`] divides by the same number.
pub fn http_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .min(512)
}

/// Raises the soft open-file limit (before the server is built) and returns how many
/// connections the relay may hold: `max_connections`, or fewer if the limit cannot hold them.
/// A refused raise (EPERM: the systemd unit's seccomp filter forbids `setrlimit`, and sets
/// `LimitNOFILE=` instead) is not an error.
pub fn fit_open_file_limit(max_connections: usize) -> usize {
    let needed = (max_connections as u64).saturating_add(RESERVED_FILES);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        log::warn!(
            "Could not read the open-file limit ({}); keeping server.max_connections = {max_connections}.",
            std::io::Error::last_os_error()
        );
        return max_connections;
    }
    let before = limit.rlim_cur;
    if let Some(wanted) = wanted_soft_limit(limit.rlim_cur, limit.rlim_max, needed) {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = wanted;
            log::info!("Raised the open-file limit from {before} to {wanted} open files.");
        } else {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EPERM) {
                log::warn!("Could not raise the open-file limit from {before} to {wanted}: {e}.");
            }
        }
    }
    let fits = connections_within(limit.rlim_cur, max_connections);
    if fits < max_connections {
        log::warn!(
            "The open-file limit is {}, too low for server.max_connections = {max_connections} plus {RESERVED_FILES} files of the relay's own; hookrelay holds at most {fits} connections at a time. Raise LimitNOFILE= in the systemd unit (or `ulimit -n`) to at least {needed}, or lower server.max_connections.",
            limit.rlim_cur
        );
    }
    fits
}

/// Connections the kernel queues for `accept` before it drops new ones (capped by
/// `net.core.somaxconn`). std's `TcpListener::bind` asks for 128: a burst of senders, or a
/// flood of slow ones, then overflows it and real senders wait a whole SYN retry (1 s or more)
/// before they are even queued.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Binds `addr` (`host:port`, the first address it resolves to that binds) with
/// [`LISTEN_BACKLOG`].
pub fn listen(addr: &str) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::ToSocketAddrs;
    let mut last = std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "the address resolves to nothing",
    );
    for a in addr.to_socket_addrs()? {
        let socket = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
        // As std does: a restart may bind while old connections linger in TIME_WAIT.
        socket.set_reuse_address(true)?;
        match socket
            .bind(&a.into())
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(()) => return Ok(socket.into()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Open connections, counted so that keep-alive stops when they crowd the limit.
///
/// actix-web times out only the head of a connection's *first* request
/// (`server.client_request_timeout`): a client that sends one request and then trickles the
/// next one's head holds its connection for as long as it likes. So once more than half of
/// `server.max_connections` are open, every answer closes its connection: a sender then
/// reconnects, and a new connection's head is timed again. Such clients can hold at most half
/// the connections; the other half keeps serving.
#[derive(Debug)]
pub struct OpenConnections {
    /// Connections open now.
    open: std::sync::atomic::AtomicUsize,
    /// Above this many, answers close their connection.
    crowded_above: usize,
}

impl OpenConnections {
    pub fn new(max_connections: usize) -> std::sync::Arc<OpenConnections> {
        std::sync::Arc::new(OpenConnections {
            open: std::sync::atomic::AtomicUsize::new(0),
            crowded_above: max_connections / 2,
        })
    }

    /// Counts a new connection until the guard, kept with the connection, is dropped.
    pub fn opened(self: &std::sync::Arc<Self>) -> ConnectionGuard {
        self.open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ConnectionGuard(std::sync::Arc::clone(self))
    }

    /// Whether answers should close their connection now.
    pub fn crowded(&self) -> bool {
        self.open.load(std::sync::atomic::Ordering::Relaxed) > self.crowded_above
    }
}

/// Lives in a connection's extensions; its drop counts the connection closed.
pub struct ConnectionGuard(std::sync::Arc<OpenConnections>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_goes_up_to_the_hard_one() {
        // systemd's default: soft 1024, hard 524288.
        assert_eq!(wanted_soft_limit(1024, 524_288, 4160), Some(524_288));
        // Already there: nothing to ask.
        assert_eq!(wanted_soft_limit(524_288, 524_288, 4160), None);
        // No hard limit: what is needed, not infinity (the kernel refuses that).
        assert_eq!(
            wanted_soft_limit(1024, libc::RLIM_INFINITY, 4160),
            Some(4160)
        );
        assert_eq!(wanted_soft_limit(8192, libc::RLIM_INFINITY, 4160), None);
    }

    #[test]
    fn connections_leave_room_for_the_relays_own_files() {
        assert_eq!(connections_within(524_288, 4096), 4096);
        assert_eq!(connections_within(4096 + 64, 4096), 4096);
        assert_eq!(connections_within(4096 + 63, 4096), 4095);
        // A soft limit of 1024 that could not be raised.
        assert_eq!(connections_within(1024, 4096), 960);
        // Absurdly low: still one, so the relay answers at all.
        assert_eq!(connections_within(10, 4096), 1);
    }

    #[test]
    fn the_total_is_split_over_the_workers_rounding_up() {
        assert_eq!(per_worker(4096, 2), 2048);
        assert_eq!(per_worker(4096, 3), 1366);
        assert_eq!(per_worker(960, 1), 960);
        assert_eq!(per_worker(1, 8), 1);
        assert_eq!(per_worker(10, 0), 10);
    }

    #[test]
    fn connections_crowd_above_half_the_limit_and_are_counted_until_closed() {
        let open = OpenConnections::new(4);
        let guards: Vec<_> = (0..3).map(|_| open.opened()).collect();
        assert!(open.crowded(), "3 of 4");
        drop(guards);
        let _two = (open.opened(), open.opened());
        assert!(!open.crowded(), "2 of 4");
    }
}
