//! Loading everything a server needs (config, zones) into a snapshot, and running it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tracing::{error, info};

use crate::config::{Config, Problems};
use crate::dns::server;
use crate::snapshot::{Shared, Snapshot};
use crate::zone;

/// Exit status for configuration errors (EX_USAGE).
pub const EXIT_CONFIG: i32 = 64;

/// A validated config and the snapshot compiled from it.
pub struct Loaded {
    pub config: Config,
    pub snapshot: Snapshot,
}

/// Reads and validates the config and every zone file; every problem is reported.
pub fn load(path: &Path, generation: u64) -> Result<Loaded, Problems> {
    let (config, mut problems) = Config::read(path, None);
    let zones = zone::load_dir(&config.zones.dir, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    let model = crate::model::compile(&config, zones, generation)?;
    let snapshot = Snapshot::initial(Arc::new(model));
    Ok(Loaded { config, snapshot })
}

/// `signpost check`: prints every problem; returns the exit status.
pub fn check(path: &Path) -> i32 {
    match load(path, 1) {
        Ok(l) => {
            println!(
                "{}: OK ({} zone(s), {} profile(s))",
                path.display(),
                l.snapshot.zones().len(),
                l.config.profiles.len()
            );
            0
        }
        Err(problems) => {
            eprintln!("{problems}");
            eprintln!("{}: {} error(s)", path.display(), problems.len());
            EXIT_CONFIG
        }
    }
}

/// `signpost serve`: validates, binds, serves until SIGTERM/SIGINT. Returns the exit status.
pub fn serve(path: &Path) -> i32 {
    let loaded = match load(path, 1) {
        Ok(l) => l,
        Err(problems) => {
            eprintln!("{problems}");
            eprintln!(
                "{}: {} error(s); not starting",
                path.display(),
                problems.len()
            );
            return EXIT_CONFIG;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("signpost-rt")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(run(loaded))
}

async fn run(loaded: Loaded) -> i32 {
    let Loaded { config, snapshot } = loaded;
    let config = release_parsed_profiles(config);
    for z in snapshot.zones() {
        info!(zone = %z.origin, file = %z.file.display(), names = z.nodes.len(), "zone loaded");
    }
    let shared: Shared = Arc::new(ArcSwap::from_pointee(snapshot));
    let stop = Arc::new(AtomicBool::new(false));
    let per_addr = match config.dns.udp_sockets {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };

    // Bind everything first, so a busy port fails the start before anything serves.
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for &addr in &config.dns_listen {
        match server::bind_udp(addr, per_addr) {
            Ok(socks) => {
                let bound = socks[0].local_addr().unwrap_or(addr);
                server::log_listen("udp", bound, socks.len());
                udp.extend(socks);
            }
            Err(e) => {
                error!(%addr, error = %e, "cannot bind UDP (dns.listen); is another server on that port?");
                return 1;
            }
        }
        match server::bind_tcp(addr).and_then(tokio::net::TcpListener::from_std) {
            Ok(l) => {
                server::log_listen("tcp", l.local_addr().unwrap_or(addr), 1);
                tcp.push(l);
            }
            Err(e) => {
                error!(%addr, error = %e, "cannot bind TCP (dns.listen); is another server on that port?");
                return 1;
            }
        }
    }

    let mut threads = Vec::new();
    for (i, sock) in udp.into_iter().enumerate() {
        let (s, st) = (shared.clone(), stop.clone());
        let t = std::thread::Builder::new()
            .name(format!("signpost-udp-{i}"))
            .spawn(move || server::udp_loop(sock, s, st));
        match t {
            Ok(t) => threads.push(t),
            Err(e) => {
                error!(error = %e, "cannot start a UDP thread");
                return 1;
            }
        }
    }
    let mut tasks = Vec::new();
    for l in tcp {
        tasks.push(tokio::spawn(server::tcp_accept_loop(
            l,
            shared.clone(),
            config.dns.tcp_idle_timeout.0,
            config.dns.tcp_max_connections,
        )));
    }
    info!(generation = shared.load().generation(), "signpost serving");

    wait_for_shutdown().await;
    info!("shutting down");
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    for t in threads {
        while !t.is_finished() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    info!("stopped");
    0
}

/// The compiled model holds everything serving needs from profiles and monitors; their
/// parsed form is large (about 20 MB at 10,000 profiles × 3 endpoints) and parsing peaked
/// far higher. Drops it and hands the freed heap back to the system (issue 6: RSS).
fn release_parsed_profiles(mut config: Config) -> Config {
    config.profiles = Default::default();
    config.monitors = Default::default();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; no pointer changes.
    unsafe {
        libc::malloc_trim(0);
    }
    config
}

async fn wait_for_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
