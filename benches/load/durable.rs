//! The durable server: the release binary ([`RelayProcess`]), started on a temporary config and
//! store, loaded, then stopped with SIGTERM; its CPU per webhook and store size go into the report.

use std::net::SocketAddr;
use std::time::Duration;

use super::common::relay::RelayProcess;
use super::common::{self, dir_size, free_port, healthz, Client, Conn};
use super::config_text;
use super::generator::{run_load_with, Report};

pub(super) fn run_durable(conns: u64, warmup: Duration, measure: Duration) -> Report {
    run_durable_as("durable (binary)", conns, warmup, measure, false, false)
}

/// The durable server over plain HTTP or TLS, loaded with keep-alive connections or with one
/// request per connection.
pub(super) fn run_durable_as(
    name: &str,
    conns: u64,
    warmup: Duration,
    measure: Duration,
    tls: bool,
    close_each: bool,
) -> Report {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let port = free_port();
    let config = dir.path().join("config.toml");
    let mut text = config_text(dir.path(), port);
    let mut client = Client {
        tls: None,
        close_each,
    };
    if tls {
        let (lines, config) = super::tls::setup(dir.path());
        text = text.replacen("[server]\n", &format!("[server]\n{lines}"), 1);
        client.tls = Some(config);
    }
    std::fs::write(&config, text).expect("cannot write the temp config");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();

    let mut relay = RelayProcess::spawn(dir.path(), &config, "warn");
    if tls {
        // Any answer over TLS (405 for a POST to /healthz) means the listener is up.
        let probe = Client {
            tls: client.tls.clone(),
            close_each: true,
        };
        relay.wait_ready(|| {
            Conn::open_with(addr, &probe).is_ok_and(|mut c| c.post("/healthz", "{}").is_ok())
        });
    } else {
        relay.wait_ready(|| healthz(addr));
    }
    let pid = relay.pid();
    let before = common::cpu::by_group(pid);
    let mut report = run_load_with(name, addr, conns, warmup, measure, &client);
    // The work the load left behind (the applier catching up) belongs to those requests.
    common::cpu::settle(pid, Duration::from_secs(10));
    let after = common::cpu::by_group(pid);
    report.cpu = Some(common::cpu::per_request(&before, &after, report.answered));
    let stopped = match relay.stop() {
        Ok(status) => format!("exited with {status}"),
        Err(why) => why,
    };
    let store_mb = dir_size(&dir.path().join("store")) as f64 / 1e6;
    report.extra = Some(format!("relay {stopped}; store {store_mb:.1} MB"));
    report
}
