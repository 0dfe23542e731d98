//! Probe load (issue 3, acceptance 3): what probing costs the signpost process.
//!
//! Starts PROBE_LOAD_SERVERS (default 10) HTTP servers on 127.0.0.1 in this process, runs
//! the real binary with PROBE_LOAD_ENDPOINTS (default 1000) endpoints spread over them, each
//! its own probe target (distinct path), at a 1 s interval, lets it warm up, then samples
//! the signpost process's CPU time (utime + stime from /proc/PID/stat) and memory (VmRSS,
//! VmHWM from /proc/PID/status) over PROBE_LOAD_SECONDS (default 20). The servers' own CPU
//! is not counted: they run in this process. PROBE_LOAD_PROTOCOL=https probes over TLS
//! with a CA made for the run. PROBE_LOAD_REUSE=false sets `reuse_connection = false` (a new
//! connection, and for HTTPS a full handshake, per probe); by default probes reuse
//! kept-alive connections as the server does.
//!
//!     cargo bench --bench probe_load
//!     PROBE_LOAD_ENDPOINTS=10000 PROBE_LOAD_PROTOCOL=https cargo bench --bench probe_load
//!     SIGNPOST_UNDER_TEST=path/to/another/signpost cargo bench --bench probe_load
//!
//! Not a timed test: it reports figures for bench/RESULTS.md and fails only if probing
//! plainly did not happen.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::ingress::{HttpServer, Reply, TestCa, always};
use common::{Setup, Signpost};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (utime, stime) of `pid`, in seconds.
fn cpu_split(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let secs = |i: usize| f[i].parse::<u64>().unwrap() as f64 / hz;
    (secs(11), secs(12))
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let (u, s) = cpu_split(pid);
    u + s
}

/// A `Vm…:` line of /proc/PID/status, in MiB.
fn vm_mib(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    let kb: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024.0
}

fn main() {
    let endpoints = env("PROBE_LOAD_ENDPOINTS", 1000);
    let servers_n = env("PROBE_LOAD_SERVERS", 10);
    let seconds = env("PROBE_LOAD_SECONDS", 20);
    let protocol = std::env::var("PROBE_LOAD_PROTOCOL").unwrap_or_else(|_| "http".into());
    let https = protocol == "https";
    let reuse = std::env::var("PROBE_LOAD_REUSE").map_or(true, |v| v != "false");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let ca_file = dir.path().join("ca.pem");
        ca.write(&ca_file);
        let mut servers = Vec::new();
        for _ in 0..servers_n {
            let handler = always(Reply::Status(200, "ok"));
            servers.push(if https {
                HttpServer::start_tls(handler, ca.acceptor(&["app.corp.example"])).await
            } else {
                HttpServer::start(handler).await
            });
        }
        let mut cfg = format!(
            "[monitors.ingress]\nprotocol = \"{}\"\nport = {}\nhost = \"app.corp.example\"\ninterval = \"1s\"\ntimeout = \"2s\"\ntolerated_failures = 1\nrise = 1\nreuse_connection = {}\ntls = {{ ca_file = {:?} }}\n",
            protocol,
            servers[0].addr.port(),
            reuse,
            ca_file.display().to_string(),
        );
        // 100 endpoints per profile.
        for i in 0..endpoints {
            let profile = format!("p{}.gslb.example", i / 100);
            if i % 100 == 0 {
                cfg.push_str(&format!("\n[profiles.\"{profile}\"]\nmonitor = \"ingress\"\n"));
            }
            let port = servers[i % servers_n].addr.port();
            cfg.push_str(&format!(
                "[[profiles.\"{profile}\".endpoints]]\nname = \"e{i}\"\naddress = \"10.{}.{}.{}\"\nprobe_address = \"127.0.0.1\"\nmonitor = {{ port = {port}, path = \"/health/{i}\" }}\n",
                i / 65536 % 256,
                i / 256 % 256,
                i % 256,
            ));
        }
        let mut sp = Signpost::start(&Setup::gslb(&cfg).json_log());
        let pid = sp.pid();
        let hits = |s: &[HttpServer]| s.iter().map(HttpServer::hits).sum::<usize>();

        // Warm up: every first probe has happened (they are spread over the interval).
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (cpu0, hits0, t0) = (cpu_seconds(pid), hits(&servers), Instant::now());
        let split0 = cpu_split(pid);
        let mut rss_max: f64 = 0.0;
        for _ in 0..seconds {
            tokio::time::sleep(Duration::from_secs(1)).await;
            rss_max = rss_max.max(vm_mib(pid, "VmRSS:"));
        }
        let (cpu1, hits1, window) = (cpu_seconds(pid), hits(&servers), t0.elapsed().as_secs_f64());
        let split1 = cpu_split(pid);
        // A tcp monitor never reaches the HTTP handler; count one probe per target per second.
        let (hits0, hits1) = if protocol == "tcp" { (0, (window * endpoints as f64) as usize) } else { (hits0, hits1) };
        let probes_per_s = (hits1 - hits0) as f64 / window;
        let cpu_share = (cpu1 - cpu0) / window;
        let degraded = sp.log_lines("→ Degraded").len();
        println!("probe load: {endpoints} endpoints ({endpoints} targets) over {servers_n} local {} servers, interval 1s, reuse_connection = {reuse}",
            protocol.to_uppercase());
        println!("  window            {window:.1} s");
        println!("  probes/s          {probes_per_s:.0}");
        println!("  signpost CPU      {:.1} % of one core ({:.2} s CPU in {window:.1} s)", cpu_share * 100.0, cpu1 - cpu0);
        println!("  user / system     {:.2} s / {:.2} s", split1.0 - split0.0, split1.1 - split0.1);
        println!("  CPU per probe     {:.1} µs", (cpu1 - cpu0) / (hits1 - hits0).max(1) as f64 * 1e6);
        println!("  RSS               {:.1} MiB now, {rss_max:.1} MiB max in window, {:.1} MiB high-water", vm_mib(pid, "VmRSS:"), vm_mib(pid, "VmHWM:"));
        println!("  Degraded transitions during the run: {degraded}");
        if probes_per_s < endpoints as f64 * 0.95 {
            println!("  note: {probes_per_s:.0} probes/s is behind the {endpoints}/s schedule (probes wait for slots or the servers)");
        }
        assert!(probes_per_s > endpoints as f64 * 0.5, "probing did not keep up at all: {probes_per_s:.0}/s");
    });
}
