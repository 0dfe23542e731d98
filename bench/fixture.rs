//! A small served zone with a weighted and a geographic profile (both monitored) and a
//! static name, and the query packets the in-process benches and the allocation tests
//! send; [`load`] compiles any config and zone the same way. Shared by
//! `bench/query_path.rs`, `tests/no_alloc.rs`, `tests/decide_no_alloc.rs`,
//! `tests/udp_batch.rs` and `tests/query_metrics.rs` (`#[path]`-included).

#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr};

use signpost::snapshot::Snapshot;

#[path = "../tests/common/dns.rs"]
mod dns;

/// The client every query comes from.
pub const SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

/// `bench.example`, as the shell benches serve it too (they add `app` per server).
const ZONE: &str = include_str!("lib/bench.example.zone");

const CONFIG: &str = r#"
[geo.regions]
corp-emea = ["10.20.0.0/16"]
corp-amer = ["10.10.0.0/16"]

[monitors]
ingress = { protocol = "http", port = 8080, interval = "2s", timeout = "1s", tolerated_failures = 1 }

[profiles."app.bench.example"]
method = "weighted"
ttl = 30
monitor = "ingress"
endpoints = [
    { name = "e0", address = "127.0.0.11", weight = 50 },
    { name = "e1", address = "127.0.0.12", weight = 30 },
    { name = "e2", address = "127.0.0.13", weight = 20 },
]

[profiles."geo.bench.example"]
method = "geographic"
ttl = 30
monitor = "ingress"
endpoints = [
    { name = "emea", address = "127.0.0.21", regions = ["corp-emea"] },
    { name = "amer", address = "127.0.0.22", regions = ["corp-amer"] },
    { name = "rest", address = "127.0.0.23", regions = ["WORLD"] },
]
"#;

/// Loads the fixture through the same path `signpost serve` uses.
pub fn snapshot() -> Snapshot {
    load("bench.example", ZONE, CONFIG)
}

/// Loads `config` (TOML without `[zones]` and `[state]`) serving zone `origin` with text
/// `zone`, from a temp dir, through the same path `signpost serve` uses.
pub fn load(origin: &str, zone: &str, config: &str) -> Snapshot {
    let dir = tempfile::tempdir().expect("temp dir");
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).expect("zones dir");
    std::fs::write(zones.join(format!("{origin}.zone")), zone).expect("zone file");
    let config = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\n[zones]\ndir = {:?}\n[state]\ndir = {:?}\n{config}",
        zones.display().to_string(),
        dir.path().join("state").display().to_string()
    );
    let path = dir.path().join("signpost.toml");
    std::fs::write(&path, config).expect("config file");
    match signpost::app::load(&path, 1) {
        Ok(l) => l.snapshot,
        Err(p) => panic!("fixture config does not load:\n{p}"),
    }
}

/// A query for `name` (dotted) and `qtype`, ID 0xbeef, RD set; with an OPT record
/// (payload 1232) when `edns`, carrying ECS `ecs = (IPv4 address, source prefix)` when
/// given.
pub fn query(name: &str, qtype: u16, edns: bool, ecs: Option<([u8; 4], u8)>) -> Vec<u8> {
    let mut m = dns::query(name, qtype.into());
    m.metadata.id = 0xbeef;
    m.metadata.recursion_desired = true;
    m = match (edns, ecs) {
        (true, Some((addr, prefix))) => dns::with_ecs(m, Ipv4Addr::from(addr).into(), prefix),
        (true, None) => dns::with_edns(m, 0, 1232),
        (false, _) => m,
    };
    m.to_vec().expect("encode the query")
}

/// [`snapshot`] served by one UDP receive loop on 127.0.0.1 (an ephemeral port) in its
/// own thread, as `signpost serve` runs it; stopped and joined by [`UdpServer::stop`].
pub struct UdpServer {
    pub addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl UdpServer {
    pub fn start() -> Self {
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;
        let sock = signpost::dns::server::bind_udp("127.0.0.1:0".parse().unwrap(), 1)
            .expect("bind 127.0.0.1")
            .pop()
            .expect("one socket");
        let addr = sock.local_addr().expect("bound address");
        let shared = Arc::new(arc_swap::ArcSwap::from_pointee(snapshot()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || signpost::dns::server::udp_loop(sock, shared, stop, None))
        };
        Self { addr, stop, thread }
    }

    /// Asks the loop to stop and waits for it (it checks at least every 200 ms).
    pub fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the UDP loop panicked");
    }
}
