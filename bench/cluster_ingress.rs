//! The ingresses of `bench/cluster.sh`'s load run: one HTTP/1.1 server (keep-alive) that
//! stands for N ingresses at the loopback addresses 127.1.0.1, 127.1.0.2, … (target i at
//! 127.1.(i / 250).(i % 250 + 1)), all on one port, and flips a share of them between
//! 200 and 503 every second.
//!
//! It listens on 0.0.0.0 and tells the targets apart by the address each connection was
//! made to, so it runs only inside a network namespace whose only interface is `lo`
//! (bench/cluster.sh makes one): it checks /sys/class/net and refuses otherwise.
//!
//! Usage: cluster_ingress PORT TARGETS FLIP_PER_MILLE_PER_SECOND SECONDS
//! Prints one line per second: `flips=N down=N requests=N open=N`. Exits after SECONDS.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The address of target `i`.
fn target_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// The target an address stands for.
fn target_of(addr: IpAddr, n: usize) -> Option<usize> {
    let IpAddr::V4(v4) = addr else { return None };
    let [a, b, c, d] = v4.octets();
    if a != 127 || b != 1 || d == 0 || d > 250 {
        return None;
    }
    let i = usize::from(c) * 250 + usize::from(d) - 1;
    (i < n).then_some(i)
}

/// Only `lo` in this namespace: listening on 0.0.0.0 reaches loopback alone.
fn only_loopback() -> bool {
    std::fs::read_dir("/sys/class/net")
        .map(|d| d.flatten().all(|e| e.file_name() == "lo"))
        .unwrap_or(false)
}

struct State {
    down: Vec<AtomicBool>,
    requests: AtomicU64,
    /// Connections open now, and how many may stay open after a response.
    open: AtomicUsize,
    keep: usize,
}

/// Counts its connection as closed when dropped.
struct Open(Arc<State>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Connections kept alive at most: every node keeps one per target (three nodes × 10,000
/// targets), more than the descriptors a process may have. Past this many, a response
/// closes its connection (`Connection: close`), and that node's next probe of the target
/// connects again, rather than the listener running out of descriptors and leaving new
/// connections unanswered (probes timing out instead of measuring the nodes).
fn keep_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let soft = if ok { lim.rlim_cur as usize } else { 1024 };
    soft.saturating_sub(1024).max(64)
}

async fn serve(mut s: TcpStream, target: usize, state: Arc<State>) {
    state.open.fetch_add(1, Ordering::Relaxed);
    let _open = Open(state.clone());
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.len() > 16 * 1024 {
                return;
            }
        };
        let asked = String::from_utf8_lossy(&buf[..end])
            .to_ascii_lowercase()
            .contains("connection: close");
        let close = asked || state.open.load(Ordering::Relaxed) > state.keep;
        buf.drain(..end);
        state.requests.fetch_add(1, Ordering::Relaxed);
        let reply: &[u8] = match (state.down[target].load(Ordering::Relaxed), close) {
            (true, false) => {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\ndown\n"
            }
            (true, true) => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nConnection: close\r\n\r\ndown\n",
            (false, false) => b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
            (false, true) => {
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
            }
        };
        if s.write_all(reply).await.is_err() || close {
            return;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: cluster_ingress PORT TARGETS FLIP_PER_MILLE_PER_SECOND SECONDS";
    let [_, port, n, per_mille, seconds] = args.as_slice() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let (Ok(port), Ok(n), Ok(per_mille), Ok(seconds)) = (
        port.parse::<u16>(),
        n.parse::<usize>(),
        per_mille.parse::<usize>(),
        seconds.parse::<u64>(),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    if !only_loopback() {
        eprintln!(
            "cluster_ingress: this network namespace has interfaces other than lo; run it \
             inside the namespace bench/cluster.sh makes"
        );
        std::process::exit(2);
    }
    assert!(n <= 250 * 256, "at most {} targets", 250 * 256);
    let state = Arc::new(State {
        down: (0..n).map(|_| AtomicBool::new(false)).collect(),
        requests: AtomicU64::new(0),
        open: AtomicUsize::new(0),
        keep: keep_limit(),
    });
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
        .await
        .expect("bind");
    eprintln!(
        "cluster_ingress: {n} targets {}..{} port {port}",
        target_addr(0),
        target_addr(n - 1)
    );
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                // Out of descriptors (or another passing error): do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let Some(target) = s.local_addr().ok().and_then(|a| target_of(a.ip(), n)) else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(serve(s, target, st.clone()));
        }
    });
    // Flips per second: n × per_mille / 1000, spread over ten steps a second.
    let per_second = n * per_mille / 1000;
    let mut rng = rand::rng();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let (mut flips, mut carry) = (0u64, 0usize);
    for step in 0..seconds * 10 {
        tick.tick().await;
        carry += per_second;
        while carry >= 10 {
            carry -= 10;
            let i = rng.random_range(0..n);
            state.down[i].fetch_xor(true, Ordering::Relaxed);
            flips += 1;
        }
        if step % 10 == 9 {
            let down = state
                .down
                .iter()
                .filter(|d| d.load(Ordering::Relaxed))
                .count();
            println!(
                "flips={flips} down={down} requests={} open={}",
                state.requests.load(Ordering::Relaxed),
                state.open.load(Ordering::Relaxed)
            );
        }
    }
}
