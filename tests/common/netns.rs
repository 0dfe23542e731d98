//! Network namespaces for the end-to-end tests: a corporate network of one router (`corp`,
//! which also runs BIND), one client and one namespace per site, each site with a signpost
//! and an ingress. Names are `spe2e-<pid>-<n>-<role>`, deleted on drop (even on panic),
//! and namespaces of earlier runs whose process is gone are reaped at the first start.
//!
//! Every address is inside 198.18.0.0/15 (RFC 2544's benchmark range) and exists only
//! inside those namespaces:
//!
//! ```text
//!   client   eth0 198.18.1.10   (its resolv.conf names 198.18.1.1)
//!      │
//!   corp     to-client 198.18.1.1   the corporate resolver
//!            lo        198.18.0.53  BIND, authoritative for corp.example (+ a private root)
//!            routes between its links
//!      └── to-<x> 198.18.<n>.1 ── site-<x>  eth0 198.18.<n>.53  signpost :53, admin :8053
//!                                               198.18.<n>.80  ingress :80
//! ```
//!
//! corp.example delegates gslb.corp.example to every site's signpost (ns-<x>, with glue).
//! Every command runs with a time limit.

use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use super::ingress::{self, HttpServer, always};
use super::run_bounded;

/// The delegated zone.
pub(crate) const ZONE: &str = "gslb.corp.example";
/// The app name the tests resolve.
pub(crate) const APP: &str = "app.gslb.corp.example";
/// The corporate resolver, as the client sees it.
pub(crate) const RESOLVER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
pub(crate) const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
/// BIND's authoritative address (on corp's loopback): corp.example and the private root.
pub(crate) const CORP_AUTH: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 53);
/// The admin API's bearer token.
pub(crate) const TOKEN: &str = "e2e-operator-token";

// The probe settings of the end-to-end tests; docs/deploy.md records the failover times
// measured with them.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_millis(800);
pub(crate) const TOLERATED_FAILURES: u32 = 1;
pub(crate) const RISE: u32 = 1;

/// Worst-case detection: `interval × (tolerated_failures + 1) + timeout`.
pub(crate) fn detection_worst() -> Duration {
    INTERVAL * (TOLERATED_FAILURES + 1) + PROBE_TIMEOUT
}

/// `[monitors.ingress]`: HTTP on port 80 with the settings above.
pub(crate) fn monitor_toml() -> String {
    format!(
        "[monitors.ingress]\nprotocol = \"http\"\nport = 80\npath = \"/\"\n\
         interval = \"{}\"\ntimeout = \"{}\"\ntolerated_failures = {TOLERATED_FAILURES}\n\
         rise = {RISE}\n\n",
        humantime::format_duration(INTERVAL),
        humantime::format_duration(PROBE_TIMEOUT),
    )
}

/// A site's addresses: `198.18.<octet>.x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SiteNet {
    /// `site-a`, …: also the site's name in signpost's config and its namespace's role.
    pub(crate) name: &'static str,
    pub(crate) octet: u8,
}

impl SiteNet {
    pub(crate) fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.octet, 1)
    }

    /// The site's signpost (DNS on :53, admin API on :8053).
    pub(crate) fn ns(self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.octet, 53)
    }

    /// The site's ingress: the answer for the app name.
    pub(crate) fn ingress(self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.octet, 80)
    }

    /// `ns-a` for `site-a`: the signpost's name server name in the zone.
    pub(crate) fn ns_label(self) -> String {
        format!("ns-{}", self.short())
    }

    /// `a` for `site-a`.
    pub(crate) fn short(self) -> &'static str {
        self.name.strip_prefix("site-").unwrap_or(self.name)
    }
}

// ---------------------------------------------------------------------------------------
// Preflight: root, tools, leftovers of killed runs.

pub(crate) struct Tools {
    pub(crate) ip: PathBuf,
    pub(crate) named: PathBuf,
    pub(crate) rndc: PathBuf,
    pub(crate) dig: PathBuf,
    pub(crate) curl: PathBuf,
}

pub(crate) fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| Tools {
        ip: super::tool("ip"),
        named: super::tool("named"),
        rndc: super::tool("rndc"),
        dig: super::tool("dig"),
        curl: super::tool("curl"),
    })
}

/// Whether to run: false only when `SIGNPOST_SKIP_NETNS=1`. Panics when not root.
pub(crate) fn preflight() -> bool {
    if std::env::var("SIGNPOST_SKIP_NETNS").is_ok_and(|v| v == "1") {
        eprintln!("SIGNPOST_SKIP_NETNS=1: skipping the network-namespace end-to-end test");
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "the end-to-end test needs root (ip netns, veth pairs, DNS on port 53), but runs as \
         uid {euid}; run it as root, or set SIGNPOST_SKIP_NETNS=1 to skip it explicitly"
    );
    tools();
    static REAP: Once = Once::new();
    REAP.call_once(reap_stale_namespaces);
    true
}

/// Deletes namespaces left by runs of these tests that were killed before their cleanup
/// ran (`spe2e-<pid>-…` whose pid is gone), with whatever still runs inside them.
fn reap_stale_namespaces() {
    let Ok(out) = run_bounded(
        Command::new(&tools().ip).args(["netns", "list"]),
        Duration::from_secs(10),
    ) else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines().take(1000) {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix("spe2e-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("removing network namespace {name} left by an earlier run (pid {pid})");
        delete_namespace(name);
    }
}

fn delete_namespace(name: &str) {
    if let Ok(out) = run_bounded(
        Command::new(&tools().ip).args(["netns", "pids", name]),
        Duration::from_secs(10),
    ) {
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .take(100)
        {
            // SAFETY: kill has no memory-safety preconditions; these pids run inside a
            // namespace this test created.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = run_bounded(
        Command::new(&tools().ip).args(["netns", "del", name]),
        Duration::from_secs(10),
    );
    let _ = fs::remove_dir_all(Path::new("/etc/netns").join(name));
}

// ---------------------------------------------------------------------------------------
// Small process helpers: every command runs with a time limit.

/// Runs `ip` with whitespace-separated arguments, panicking with ip's message on failure.
pub(crate) fn ip(args: &str) {
    let out = run_bounded(
        Command::new(&tools().ip).args(args.split_whitespace()),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Moves the calling thread into a network namespace created by `ip netns add`.
fn enter_netns(name: &str) -> io::Result<()> {
    let f = File::open(Path::new("/run/netns").join(name))?;
    // SAFETY: setns on a valid namespace fd; it changes only this thread's network namespace.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` on a thread inside namespace `netns` (sockets it makes live there).
pub(crate) fn within_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_netns(netns).unwrap_or_else(|e| panic!("entering {netns}: {e}"));
            f()
        })
        .join()
        .expect("the thread in the namespace")
    })
}

/// A listener on `addr` in namespace `netns`.
pub(crate) fn bind_in(netns: &str, addr: SocketAddrV4) -> TcpListener {
    within_netns(netns, || TcpListener::bind(addr))
        .unwrap_or_else(|e| panic!("ingress {addr} in {netns}: {e}"))
}

/// The sites' apps: an HTTP server on each site's ingress address, port 80, answering
/// `200 <site name>`.
pub(crate) struct Ingresses {
    servers: Vec<(SiteNet, HttpServer)>,
    /// Runs the servers.
    runtime: tokio::runtime::Runtime,
}

impl Ingresses {
    pub(crate) fn new() -> Ingresses {
        Ingresses {
            servers: Vec::new(),
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("tokio runtime"),
        }
    }

    /// Starts (or restarts) `site`'s app, in `net`'s namespace for the site.
    pub(crate) fn start(&mut self, net: &Net, site: SiteNet) {
        let listener = bind_in(&net.netns(site.name), SocketAddrV4::new(site.ingress(), 80));
        let server = self.runtime.block_on(HttpServer::start_on(
            listener,
            always(ingress::Reply::Status(200, site.name)),
        ));
        self.servers.push((site, server));
    }

    /// Stops `site`'s app: its port refuses connections from now on.
    pub(crate) fn stop(&mut self, site: SiteNet) {
        self.servers.retain(|(s, _)| *s != site);
    }
}

// ---------------------------------------------------------------------------------------
// DNS answers as dig shows them.

#[derive(Clone, Debug)]
pub(crate) struct Reply {
    /// NOERROR, SERVFAIL, …, or TIMEOUT when dig got no answer.
    pub(crate) status: String,
    /// (TTL, address) of each A record in the answer section.
    pub(crate) answers: Vec<(u32, Ipv4Addr)>,
}

impl Reply {
    fn parse(out: &Output) -> Reply {
        let text = String::from_utf8_lossy(&out.stdout);
        let status = text
            .split("status: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .map(str::to_owned)
            .unwrap_or_else(|| "TIMEOUT".to_owned());
        let answers = text
            .lines()
            .filter(|l| !l.starts_with(';'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                match f.as_slice() {
                    [_, ttl, "IN", "A", addr] => Some((ttl.parse().ok()?, addr.parse().ok()?)),
                    _ => None,
                }
            })
            .collect();
        Reply { status, answers }
    }

    /// The addresses of the answer, sorted.
    pub(crate) fn addrs(&self) -> Vec<Ipv4Addr> {
        let mut a: Vec<Ipv4Addr> = self.answers.iter().map(|(_, a)| *a).collect();
        a.sort();
        a
    }
}

// ---------------------------------------------------------------------------------------
// The network, its processes and the corporate DNS.

pub(crate) struct Proc {
    pub(crate) label: String,
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

/// The namespaces and processes of one test; everything goes on drop.
pub(crate) struct Net {
    prefix: String,
    namespaces: Vec<String>,
    pub(crate) dir: tempfile::TempDir,
    procs: Vec<Proc>,
}

impl Net {
    /// Builds the network (corp, client, one namespace per site) and writes BIND's files
    /// delegating [`ZONE`] to the sites' signposts; `None` when skipped explicitly.
    /// `recursion` says whether BIND also resolves for the client on [`RESOLVER`] (else
    /// another resolver does).
    pub(crate) fn start(sites: &[SiteNet], recursion: bool) -> Option<Net> {
        if !preflight() {
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut net = Net {
            prefix: format!("spe2e-{}-{n}", std::process::id()),
            namespaces: Vec::new(),
            dir: tempfile::Builder::new()
                .prefix("signpost-e2e-")
                .tempdir()
                .expect("temp dir"),
            procs: Vec::new(),
        };
        net.build(sites);
        net.write_bind(sites, recursion);
        fs::write(net.path("admin.token"), format!("{TOKEN}\n")).expect("token");
        Some(net)
    }

    pub(crate) fn netns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn build(&mut self, sites: &[SiteNet]) {
        let roles = ["corp", "client"]
            .into_iter()
            .chain(sites.iter().map(|s| s.name));
        for role in roles {
            let ns = self.netns(role);
            ip(&format!("netns add {ns}"));
            self.namespaces.push(ns.clone());
            ip(&format!("-n {ns} link set lo up"));
        }
        let corp = self.netns("corp");
        let client = self.netns("client");
        // Each veth pair is created straight between two namespaces: nothing in the host's.
        ip(&format!(
            "-n {corp} link add to-client type veth peer name eth0 netns {client}"
        ));
        ip(&format!("-n {corp} addr add {RESOLVER}/24 dev to-client"));
        ip(&format!("-n {corp} link set to-client up"));
        ip(&format!("-n {corp} addr add {CORP_AUTH}/32 dev lo"));
        ip(&format!("-n {client} addr add {CLIENT}/24 dev eth0"));
        ip(&format!("-n {client} link set eth0 up"));
        ip(&format!("-n {client} route add default via {RESOLVER}"));
        for site in sites {
            let ns = self.netns(site.name);
            let (dev, gw) = (format!("to-{}", site.short()), site.gateway());
            ip(&format!(
                "-n {corp} link add {dev} type veth peer name eth0 netns {ns}"
            ));
            ip(&format!("-n {corp} addr add {gw}/24 dev {dev}"));
            ip(&format!("-n {corp} link set {dev} up"));
            for addr in [site.ns(), site.ingress()] {
                ip(&format!("-n {ns} addr add {addr}/24 dev eth0"));
            }
            ip(&format!("-n {ns} link set eth0 up"));
            ip(&format!("-n {ns} route add default via {gw}"));
        }
        // corp routes between the client and the sites.
        let out = run_bounded(
            Command::new(&tools().ip).args([
                "netns",
                "exec",
                &corp,
                "sh",
                "-c",
                "echo 1 > /proc/sys/net/ipv4/ip_forward",
            ]),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.success(), "cannot enable forwarding in {corp}");
        // The client's stub resolver (curl, getaddrinfo) asks the corporate resolver;
        // `ip netns exec` bind-mounts this file over /etc/resolv.conf.
        let etc = Path::new("/etc/netns").join(&client);
        fs::create_dir_all(&etc).expect("/etc/netns/<client>");
        fs::write(
            etc.join("resolv.conf"),
            format!("nameserver {RESOLVER}\noptions timeout:4 attempts:2\n"),
        )
        .expect("client resolv.conf");
    }

    /// The start of every signpost's config: DNS and admin on loopback (each instance
    /// moves them to its site's address with `SIGNPOST__…` variables), the bearer token,
    /// the zones, a state dir (moved the same way).
    pub(crate) fn config_head(&self) -> String {
        let d = self.dir.path().display();
        format!(
            "[dns]\nlisten = [\"127.0.0.1:5300\"]\nudp_sockets = 1\n\n\
             [admin]\nlisten = \"127.0.0.1:8053\"\ntoken_file = \"{d}/admin.token\"\n\n\
             [zones]\ndir = \"{d}/zones\"\n\n[state]\ndir = \"{d}/state\"\n\n"
        )
    }

    /// The zone the signposts serve: [`ZONE`]'s SOA and one NS (with its address) per site.
    pub(crate) fn write_signpost_zone(&self, sites: &[SiteNet]) {
        fs::create_dir_all(self.path("zones")).expect("zones dir");
        let mut zone = format!(
            "$ORIGIN {ZONE}.\n$TTL 300\n@    IN SOA {} hostmaster.corp.example. 1 3600 600 86400 5\n",
            sites[0].ns_label()
        );
        for s in sites {
            zone.push_str(&format!("     IN NS  {}\n", s.ns_label()));
        }
        for s in sites {
            zone.push_str(&format!("{} IN A   {}\n", s.ns_label(), s.ns()));
        }
        fs::write(self.path(&format!("zones/{ZONE}.zone")), zone).expect("zone");
    }

    /// BIND: a private root (so nothing is ever asked outside these namespaces) and
    /// corp.example with the delegation of [`ZONE`], NS + glue.
    fn write_bind(&self, sites: &[SiteNet], recursion: bool) {
        let d = self.dir.path().display().to_string();
        fs::write(
            self.path("root.zone"),
            format!(
                "$TTL 3600\n\
                 .                IN SOA ns.corp.example. hostmaster.corp.example. 1 3600 600 86400 60\n\
                 .                IN NS  ns.corp.example.\n\
                 corp.example.    IN NS  ns.corp.example.\n\
                 ns.corp.example. IN A   {CORP_AUTH}\n"
            ),
        )
        .expect("root zone");
        let mut corp = format!(
            "$ORIGIN corp.example.\n$TTL 3600\n\
             @         IN SOA ns hostmaster 1 3600 600 86400 60\n\
             \x20         IN NS  ns\n\
             ns        IN A   {CORP_AUTH}\n\
             ; the delegation to one signpost per site, with glue\n"
        );
        for s in sites {
            corp.push_str(&format!("gslb      IN NS  {}.gslb\n", s.ns_label()));
        }
        for s in sites {
            corp.push_str(&format!("{}.gslb IN A   {}\n", s.ns_label(), s.ns()));
        }
        fs::write(self.path("corp.example.zone"), corp).expect("corp.example zone");
        let (listen, recursion) = if recursion {
            (
                format!("{CORP_AUTH}; {RESOLVER};"),
                "recursion yes;\n    allow-recursion { 198.18.1.0/24; };".to_owned(),
            )
        } else {
            (format!("{CORP_AUTH};"), "recursion no;".to_owned())
        };
        let secret = "c2lnbnBvc3QtZTJlLXRlc3Qtcm5kYy1rZXktb25seQ==";
        fs::write(
            self.path("named.conf"),
            format!(
                "options {{\n    directory \"{d}\";\n    pid-file \"{d}/named.pid\";\n\
                 \x20   session-keyfile \"{d}/session.key\";\n\
                 \x20   managed-keys-directory \"{d}\";\n\
                 \x20   listen-on port 53 {{ {listen} }};\n    listen-on-v6 {{ none; }};\n\
                 \x20   {recursion}\n    forwarders {{ }};\n    dnssec-validation no;\n\
                 \x20   stale-answer-enable no;\n    stale-cache-enable no;\n\
                 \x20   notify no;\n}};\n\
                 key \"e2e\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n\
                 controls {{ inet 127.0.0.1 port 953 allow {{ 127.0.0.1; }} keys {{ \"e2e\"; }}; }};\n\
                 zone \".\" {{ type primary; file \"{d}/root.zone\"; }};\n\
                 zone \"corp.example\" {{ type primary; file \"{d}/corp.example.zone\"; }};\n"
            ),
        )
        .expect("named.conf");
        fs::write(
            self.path("rndc.conf"),
            format!(
                "key \"e2e\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n\
                 options {{ default-key \"e2e\"; default-server 127.0.0.1; default-port 953; }};\n"
            ),
        )
        .expect("rndc.conf");
    }

    /// Starts BIND in corp.
    pub(crate) fn start_named(&mut self) {
        let named_conf = self.path("named.conf").display().to_string();
        let named = self.in_netns(
            "corp",
            &tools().named,
            &["-g", "-4", "-n", "1", "-c", &named_conf],
        );
        self.spawn("named", named);
    }

    /// Drops `name` from BIND's cache, so the next query reaches signpost.
    pub(crate) fn flush_bind(&self, name: &str) {
        let mut cmd = self.in_netns("corp", &tools().rndc, &[]);
        cmd.arg("-c")
            .arg(self.path("rndc.conf"))
            .args(["flushname", name]);
        self.run_ok("flushing BIND's cache", &mut cmd);
    }

    /// Runs a short command (10 s at most), panicking with its stderr when it fails.
    pub(crate) fn run_ok(&self, what: &str, cmd: &mut Command) {
        let out = run_bounded(cmd, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }

    /// `program ARGS` inside `role`'s namespace.
    pub(crate) fn in_netns(&self, role: &str, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&tools().ip);
        cmd.args(["netns", "exec", &self.netns(role)])
            .arg(program)
            .args(args);
        cmd
    }

    /// `signpost serve --config CONFIG` in `role`'s namespace, from the test's directory.
    pub(crate) fn signpost(&self, role: &str, config: &Path) -> Command {
        let config = config.display().to_string();
        super::command_in_netns(
            &tools().ip,
            &self.netns(role),
            self.dir.path(),
            &["serve", "--config", &config],
        )
    }

    /// Starts a long-running process (inside a namespace), its output appended to
    /// `<label>.log`.
    pub(crate) fn spawn(&mut self, label: &str, mut cmd: Command) {
        let log = self.path(&format!("{label}.log"));
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        cmd.env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        // SAFETY: prctl is async-signal-safe. The process (ip execs into the program) gets
        // SIGTERM if the test thread dies without running Drop.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        self.procs.push(Proc {
            label: label.to_owned(),
            child,
            log,
        });
    }

    /// Sends `signal` to the process `label` and waits (10 s at most) until it is gone.
    pub(crate) fn stop(&mut self, label: &str, signal: i32) {
        let i = self
            .procs
            .iter()
            .position(|p| p.label == label)
            .unwrap_or_else(|| panic!("no process {label}"));
        let mut p = self.procs.remove(i);
        // SAFETY: a signal to a child this test started.
        unsafe { libc::kill(p.child.id() as i32, signal) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(p.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(p.child.try_wait(), Ok(None)) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// Polls `ready` until it succeeds, for at most 20 s; fails early if a process died.
    pub(crate) fn wait_for(&self, what: &str, mut ready: impl FnMut() -> Result<(), String>) {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < Duration::from_secs(20) {
            match ready() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            self.assert_running();
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("{what} not ready within 20 s; last: {last}");
    }

    pub(crate) fn assert_running(&self) {
        for p in &self.procs {
            // try_wait needs &mut; a zero-signal kill tells whether the pid still exists.
            // SAFETY: signal 0 only checks for existence.
            let alive = unsafe { libc::kill(p.child.id() as i32, 0) } == 0
                && !fs::read_to_string(format!("/proc/{}/stat", p.child.id()))
                    .unwrap_or_default()
                    .contains(") Z ");
            assert!(alive, "{} exited; its log follows", p.label);
        }
    }

    /// `dig` from a namespace.
    pub(crate) fn dig(
        &self,
        role: &str,
        server: Ipv4Addr,
        name: &str,
        qtype: &str,
        extra: &[&str],
    ) -> Reply {
        let mut cmd = self.in_netns(role, &tools().dig, &[]);
        cmd.arg(format!("@{server}"))
            .args([
                name,
                qtype,
                "+noall",
                "+comments",
                "+answer",
                "+tries=1",
                "+timeout=4",
            ])
            .args(extra);
        match run_bounded(&mut cmd, Duration::from_secs(15)) {
            Ok(out) => Reply::parse(&out),
            Err(e) => Reply {
                status: format!("TIMEOUT ({e})"),
                answers: Vec::new(),
            },
        }
    }

    /// Takes `role`'s only link (eth0) down or up, inside its namespace.
    pub(crate) fn link(&self, role: &str, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&format!("-n {} link set eth0 {state}", self.netns(role)));
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for p in &self.procs {
            // SAFETY: SIGTERM to a child this test started.
            unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for p in &mut self.procs {
            while matches!(p.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(p.child.try_wait(), Ok(None)) {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
        if std::thread::panicking() {
            for p in &self.procs {
                let log = fs::read_to_string(&p.log).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                eprintln!(
                    "---- {} (last lines of {}) ----\n{}",
                    p.label,
                    p.log.display(),
                    lines[lines.len().saturating_sub(40)..].join("\n")
                );
            }
        }
        for ns in &self.namespaces {
            delete_namespace(ns);
        }
    }
}
