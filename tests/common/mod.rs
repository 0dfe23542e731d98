//! Shared by the integration tests: starts the real `signpost` binary on free loopback
//! ports with a config and zone directory in a temp dir, waits until it answers, kills it
//! on drop (or restarts it on the same state); runs its CLI against it; and sends DNS
//! messages to it over UDP and TCP (blocking, or async for tokio tests) and HTTP requests
//! to its admin API ([`http`]); serves the HTTP(S)/TCP ingresses it probes ([`ingress`]);
//! builds the network namespaces of the end-to-end tests ([`netns`]).
//! Benches include it with `#[path]`.
//!
//! Every wait here is bounded: a server that does not answer fails the test, it never
//! hangs it.

// Each test crate uses a different part of this module.
#![allow(dead_code, unreachable_pub)]

pub(crate) mod dns;
pub(crate) mod http;
pub(crate) mod ingress;
#[cfg(target_os = "linux")]
pub(crate) mod netns;

pub(crate) use dns::*;

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

/// The binary under test: this build's, or the one `SIGNPOST_UNDER_TEST` names (for the
/// benches that compare builds, e.g. `bench/probe_load.rs` against an older release).
pub(crate) fn bin() -> &'static str {
    static BIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        std::env::var("SIGNPOST_UNDER_TEST")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_signpost").to_owned())
    });
    &BIN
}

/// How long a server may take to answer its first query: 30 s, or
/// `SIGNPOST_TEST_START_TIMEOUT` seconds (for a measurement with a very large config).
fn start_timeout() -> Duration {
    std::env::var("SIGNPOST_TEST_START_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(30), Duration::from_secs)
}
/// How long any single exchange may take.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// `gslb.example`: SOA, NS and the name server's address; profiles go in the config.
pub(crate) const GSLB_ZONE: &str = "$ORIGIN gslb.example.
$TTL 300
@   IN SOA ns1 hostmaster 1 3600 600 86400 60
@   IN NS  ns1
ns1 IN A   127.0.0.1
";

/// `gslb.example` with a name of each kind the DNS semantics tests ask about: records at
/// the apex, addresses, CNAME chains (to a name that does not exist, out of the zone), a
/// delegation with glue, SRV, wildcards with an empty non-terminal beneath. SOA TTL 3600
/// and MINIMUM 60: negative answers carry TTL 60. Tests append their own records.
pub(crate) const DNS_ZONE: &str = r#"$ORIGIN gslb.example.
$TTL 300
@         3600 IN SOA ns1 hostmaster 2026112101 3600 600 1209600 60
               IN NS  ns1
               IN NS  ns2
               IN MX  10 mail
               IN TXT "v=spf1 mx -all"
ns1            IN A   192.0.2.1
ns2            IN A   192.0.2.2
web            IN A   192.0.2.80
               IN AAAA 2001:db8::80
www            IN CNAME web
alias          IN CNAME www
dangling       IN CNAME nothere
out            IN CNAME www.example.org.
mail           IN A   192.0.2.25
               IN AAAA 2001:db8::25
_sip._tcp      IN SRV 10 60 5060 sip
sip            IN A   192.0.2.50
a.b.c          IN A   192.0.2.3
sub            IN NS  ns.sub
ns.sub         IN A   192.0.2.53
*.wild         IN A   192.0.2.99
*.wild         IN TXT "wild"
exists.wild    IN A   192.0.2.98
host.ent.wild  IN A   192.0.2.97
*.wc           IN CNAME web
"#;

/// Config for [`GSLB_ZONE`]: sites hub-a and hub-b; profiles `app.gslb.example`
/// (app-a 192.0.2.1 in hub-a, app-b 192.0.2.2 in hub-b) and `api.gslb.example` (api-a
/// 192.0.2.11, api-b 192.0.2.12), weighted with equal (default) weights, no monitor (so
/// Online), TTL `ttl`.
pub(crate) fn two_sites(ttl: u32) -> String {
    let mut t = String::from("[[sites]]\nname = \"hub-a\"\n[[sites]]\nname = \"hub-b\"\n");
    for (profile, a, b) in [("app", 1, 2), ("api", 11, 12)] {
        t.push_str(&format!(
            "\n[profiles.\"{profile}.gslb.example\"]\nmethod = \"weighted\"\nttl = {ttl}\n\
             [[profiles.\"{profile}.gslb.example\".endpoints]]\nname = \"{profile}-a\"\nsite = \"hub-a\"\naddress = \"192.0.2.{a}\"\n\
             [[profiles.\"{profile}.gslb.example\".endpoints]]\nname = \"{profile}-b\"\nsite = \"hub-b\"\naddress = \"192.0.2.{b}\"\n"
        ));
    }
    t
}

/// What to serve.
pub(crate) struct Setup {
    /// Zone files: (file name, e.g. `gslb.example.zone`, text).
    pub(crate) zones: Vec<(String, String)>,
    /// `dns.tcp_idle_timeout`.
    pub(crate) tcp_idle_timeout: String,
    /// `dns.udp_sockets`.
    pub(crate) udp_sockets: usize,
    /// TOML appended to the generated config: sites, monitors, profiles.
    pub(crate) extra: String,
    /// When set, written to `config/admin.token` and named by `admin.token_file`.
    pub(crate) token: Option<String>,
    /// Logs as JSON lines (`--log-format json`), read back by [`Signpost::log_lines`].
    pub(crate) json_log: bool,
    /// More `[dns]` keys, one `key = value` per line.
    pub(crate) dns: String,
    /// How long the server may take to answer its first query (a very large config).
    pub(crate) start_timeout: Duration,
}

impl Setup {
    pub(crate) fn new(zones: &[(&str, &str)]) -> Self {
        Self {
            zones: zones
                .iter()
                .map(|(f, t)| ((*f).to_owned(), (*t).to_owned()))
                .collect(),
            tcp_idle_timeout: "10s".to_owned(),
            udp_sockets: 2,
            extra: String::new(),
            token: None,
            json_log: false,
            dns: String::new(),
            start_timeout: start_timeout(),
        }
    }

    /// Serves [`GSLB_ZONE`] with `toml` (sites, monitors, profiles) in the config.
    pub(crate) fn gslb(toml: &str) -> Self {
        Self::new(&[("gslb.example.zone", GSLB_ZONE)]).extra(toml)
    }

    pub(crate) fn udp_sockets(mut self, n: usize) -> Self {
        self.udp_sockets = n;
        self
    }

    /// Allows `t` (at least; `SIGNPOST_TEST_START_TIMEOUT` may allow more) for the start.
    pub(crate) fn start_timeout(mut self, t: Duration) -> Self {
        self.start_timeout = self.start_timeout.max(t);
        self
    }

    /// Logs JSON lines, for [`Signpost::log_lines`].
    pub(crate) fn json_log(mut self) -> Self {
        self.json_log = true;
        self
    }

    pub(crate) fn tcp_idle_timeout(mut self, t: &str) -> Self {
        self.tcp_idle_timeout = t.to_owned();
        self
    }

    /// Adds `[dns]` keys (`key = value` lines), e.g. `rate_limit = 50`.
    pub(crate) fn dns(mut self, toml: &str) -> Self {
        self.dns.push_str(toml);
        if !self.dns.ends_with('\n') {
            self.dns.push('\n');
        }
        self
    }

    /// Appends `toml` (sites, monitors, profiles) to the config.
    pub(crate) fn extra(mut self, toml: &str) -> Self {
        self.extra = toml.to_owned();
        self
    }

    /// Requires `token` for mutating admin calls.
    pub(crate) fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// The config file's text for a server on DNS `port` and admin API `admin` (both
    /// loopback), with zones in `zones/` and state in `state/` (relative to its directory).
    pub(crate) fn config_text(&self, port: u16, admin: u16) -> String {
        let token = match self.token {
            Some(_) => "token_file = \"config/admin.token\"\n",
            None => "",
        };
        format!(
            "[dns]\nlisten = [\"127.0.0.1:{port}\"]\nudp_sockets = {}\ntcp_idle_timeout = \"{}\"\n{}\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n{token}\n\
             [zones]\ndir = \"zones\"\n\n[state]\ndir = \"state\"\n\n{}",
            self.udp_sockets, self.tcp_idle_timeout, self.dns, self.extra
        )
    }
}

/// A running `signpost serve`, killed when dropped.
pub(crate) struct Signpost {
    /// The process, once launched.
    child: Option<Child>,
    /// Where it serves DNS (UDP and TCP).
    pub(crate) addr: SocketAddr,
    /// Where it serves the admin API.
    pub(crate) admin: SocketAddr,
    /// The bearer token of the admin API, if one is configured.
    pub(crate) token: Option<String>,
    /// Holds the config, zones, state and log.
    pub(crate) dir: tempfile::TempDir,
    log: PathBuf,
    /// How it is started (arguments, working directory, environment on top of
    /// [`command`]'s) and the zone whose SOA says it is up, for restarts.
    args: Vec<String>,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    zone: String,
    /// How long [`Signpost::launch`] waits for the first answer.
    start_limit: Duration,
}

impl Signpost {
    /// Writes the config and zones into a temp dir and starts the server on free loopback
    /// ports (retrying with other ports if one was taken meanwhile).
    pub(crate) fn start(setup: &Setup) -> Signpost {
        let first_zone = setup
            .zones
            .first()
            .map(|(f, _)| f.trim_end_matches(".zone").to_owned())
            .expect("at least one zone");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let zones = dir.path().join("zones");
            fs::create_dir(&zones).unwrap();
            for (file, text) in &setup.zones {
                fs::write(zones.join(file), text).unwrap();
            }
            fs::create_dir(dir.path().join("config")).unwrap();
            if let Some(t) = &setup.token {
                fs::write(dir.path().join("config/admin.token"), format!("{t}\n")).unwrap();
            }
            let port = free_port();
            let admin = free_tcp_port();
            fs::write(
                dir.path().join("config/signpost.toml"),
                setup.config_text(port, admin),
            )
            .unwrap();
            let json: &[&str] = if setup.json_log {
                &["--log-format", "json"]
            } else {
                &[]
            };
            let args: Vec<String> = json
                .iter()
                .chain(&["serve", "--config", "config/signpost.toml"])
                .map(|a| (*a).to_owned())
                .collect();
            let mut s = Signpost::new(dir, &args, port, admin, &first_zone);
            s.token = setup.token.clone();
            s.start_limit = setup.start_timeout;
            match s.launch() {
                Ok(()) => return s,
                Err(log) => last_log = log,
            }
        }
        panic!("signpost did not start in 5 attempts; last log:\n{last_log}");
    }

    /// A server to be started with `signpost ARGS` in `dir` (not started yet), logging to
    /// `dir/signpost.log`.
    fn new(dir: tempfile::TempDir, args: &[String], port: u16, admin: u16, zone: &str) -> Self {
        let log = dir.path().join("signpost.log");
        Signpost {
            child: None,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            admin: SocketAddr::from((Ipv4Addr::LOCALHOST, admin)),
            token: None,
            cwd: dir.path().to_owned(),
            dir,
            log,
            args: args.to_vec(),
            env: Vec::new(),
            zone: zone.to_owned(),
            start_limit: start_timeout(),
        }
    }

    /// Starts the process (its output appended to the log) and waits until it answers an
    /// SOA query for its zone. `Err` carries the log when it exited because a port was
    /// taken.
    fn launch(&mut self) -> Result<(), String> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut cmd = command(&self.cwd, &args);
        cmd.envs(self.env.iter().cloned());
        cmd.stdout(out.try_clone().unwrap()).stderr(out);
        let child = self.child.insert(cmd.spawn().expect("start signpost"));
        let probe = query(&self.zone, RecordType::SOA);
        let deadline = Instant::now() + self.start_limit;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                let log = self.log();
                // A port taken between free_port() and the bind: try other ports.
                if log.contains("cannot bind") || log.contains("in use") {
                    return Err(log);
                }
                panic!("signpost exited at start ({status}):\n{log}");
            }
            let wire = probe.to_vec().unwrap();
            if udp_exchange(self.addr, &wire, Duration::from_millis(200)).is_ok()
                && TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "signpost did not answer within {:?}:\n{}",
            self.start_limit,
            self.log()
        );
    }

    /// Stops the server (SIGTERM) and starts it again in the same directory, on the same
    /// ports, config and state; waits until it answers.
    pub(crate) fn restart(&mut self) {
        let status = self.terminate(Duration::from_secs(10));
        assert!(status.success(), "signpost exited with {status} on SIGTERM");
        if let Err(log) = self.launch() {
            panic!("signpost did not restart on its ports:\n{log}");
        }
    }

    /// The config file it serves (rewrite it, then reload).
    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("config/signpost.toml")
    }

    /// `http://ADMIN`, for the CLI's `--admin`.
    pub(crate) fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// Runs the CLI against this server: `signpost ARGS --admin URL`, with its token in
    /// `SIGNPOST_TOKEN` when one is configured.
    pub(crate) fn cli(&self, args: &[&str]) -> Ran {
        let mut cmd = command(self.dir.path(), args);
        cmd.args(["--admin", &self.admin_url()]);
        if let Some(t) = &self.token {
            cmd.env("SIGNPOST_TOKEN", t);
        }
        run(cmd)
    }

    /// One admin API request, with the bearer token when `auth` and one is configured.
    pub(crate) fn api(&self, method: &str, path: &str, body: &str, auth: bool) -> http::Response {
        let bearer = self
            .token
            .as_ref()
            .filter(|_| auth)
            .map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(b) = &bearer {
            headers.push(("Authorization", b));
        }
        http::request(self.admin, method, path, &headers, body)
            .unwrap_or_else(|e| panic!("admin {method} {path}: {e}\n{}", self.log()))
    }

    /// `GET path` without the token, answered 200.
    pub(crate) fn get_ok(&self, path: &str) -> http::Response {
        let r = self.api("GET", path, "", false);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r
    }

    /// `POST path` with `body` and the token, answered 200.
    pub(crate) fn post_ok(&self, path: &str, body: &str) -> http::Response {
        let r = self.api("POST", path, body, true);
        assert_eq!(r.status, 200, "POST {path}: {}", r.body);
        r
    }

    /// `GET /api/v1/status` as JSON.
    pub(crate) fn status(&self) -> serde_json::Value {
        let r = self.api("GET", "/api/v1/status", "", false);
        assert_eq!(r.status, 200, "status: {}", r.body);
        r.json()
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("signpost was launched")
    }

    /// Everything the server logged so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON log lines (with [`Setup::json_log`]) whose `fields.message` contains
    /// `text`.
    pub(crate) fn log_lines(&self, text: &str) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(text))
            })
            .collect()
    }

    /// Waits (bounded by `limit`) until [`Signpost::log_lines`] finds `n` lines with
    /// `text`; panics with the log when it does not.
    pub(crate) async fn wait_for_log(&self, text: &str, n: usize, limit: Duration) {
        let seen = ingress::wait_for(limit, async || self.log_lines(text).len() >= n).await;
        assert!(
            seen.is_some(),
            "fewer than {n} log lines with {text:?} after {limit:?}:\n{}",
            self.log()
        );
    }

    /// The process id.
    pub(crate) fn pid(&mut self) -> u32 {
        self.child().id()
    }

    /// Panics (with the log) when the process has exited.
    pub(crate) fn assert_running(&mut self) {
        if let Some(status) = self.child().try_wait().unwrap() {
            panic!("signpost exited ({status}):\n{}", self.log());
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub(crate) fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = libc::pid_t::try_from(self.child().id()).unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child().try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "signpost did not exit within {within:?} of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One UDP exchange; panics (with the log) on a timeout.
    pub(crate) fn udp(&self, wire: &[u8]) -> Vec<u8> {
        udp_exchange(self.addr, wire, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("no UDP answer ({e}):\n{}", self.log()))
    }

    /// One TCP exchange on a new connection; panics (with the log) on a failure.
    pub(crate) fn tcp(&self, wire: &[u8]) -> Vec<u8> {
        tcp_exchange(self.addr, wire)
            .unwrap_or_else(|e| panic!("no TCP answer ({e}):\n{}", self.log()))
    }

    /// Checks that ordinary queries are still answered over UDP and TCP.
    pub(crate) fn assert_answers(&mut self, zone: &str) {
        self.assert_running();
        for tcp in [false, true] {
            let q = query(zone, RecordType::SOA);
            let wire = q.to_vec().unwrap();
            let a = if tcp {
                self.tcp(&wire)
            } else {
                self.udp(&wire)
            };
            let m = Message::from_vec(&a).expect("a parsable answer");
            assert_eq!(m.metadata.id, q.metadata.id, "tcp={tcp}");
            assert_eq!(u16::from(m.metadata.response_code), 0, "tcp={tcp}: {m}");
            assert_eq!(m.answers.len(), 1, "tcp={tcp}: {m}");
        }
    }
}

impl Drop for Signpost {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Another server a test runs beside signpost (a reference implementation, a resolver),
/// without stdio; killed and reaped when dropped.
pub(crate) struct Daemon(pub(crate) Child);

impl Daemon {
    pub(crate) fn spawn(cmd: &mut Command) -> Daemon {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Daemon(child)
    }

    /// Whether it has exited.
    pub(crate) fn exited(&mut self) -> bool {
        self.0.try_wait().unwrap().is_some()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `signpost serve` exactly as the README's first command does: from the repo,
/// on the repo's `config/signpost.toml` and `zones/`, with only the listen addresses and
/// the state dir moved (by the documented `SIGNPOST__…` overrides) so that tests do not
/// collide with each other or with a developer's running server.
pub(crate) fn start_default_config() -> Signpost {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let (port, admin) = (free_port(), free_tcp_port());
        let state = dir.path().join("state").display().to_string();
        let mut s = Signpost::new(dir, &["serve".to_owned()], port, admin, "gslb.example.");
        s.cwd = repo.to_owned();
        s.env = [
            ("SIGNPOST__DNS__LISTEN", format!("127.0.0.1:{port}")),
            ("SIGNPOST__ADMIN__LISTEN", format!("127.0.0.1:{admin}")),
            ("SIGNPOST__STATE__DIR", state),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec();
        if s.launch().is_ok() {
            return s;
        }
    }
    panic!("signpost did not start on the default config in 5 attempts");
}

/// `signpost ARGS` run in `dir`, with no `SIGNPOST…` variables from the caller's
/// environment (they would override the test's config).
pub(crate) fn command(dir: &Path, args: &[&str]) -> Command {
    with_test_env(Command::new(bin()), dir, args)
}

/// [`command`] inside network namespace `netns`: `IP netns exec NETNS signpost ARGS`.
pub(crate) fn command_in_netns(ip: &Path, netns: &str, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(ip);
    cmd.args(["netns", "exec", netns, bin()]);
    with_test_env(cmd, dir, args)
}

/// `cmd ARGS` in `dir`, stdin closed, logging at info, without the caller's `SIGNPOST…`
/// variables.
fn with_test_env(mut cmd: Command, dir: &Path, args: &[&str]) -> Command {
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("SIGNPOST_LOG", "info");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SIGNPOST") && k != "SIGNPOST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Asserts that `text` (a command's output, a log, a page) holds each of `wants`.
pub(crate) fn assert_has(text: &str, wants: &[&str]) {
    for w in wants {
        assert!(text.contains(w), "no {w:?} in:\n{text}");
    }
}

/// Calls `f` every 10 ms until it returns true; the time that took, or `None` once
/// `limit` has passed.
pub(crate) fn poll(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a finished command printed, and how it exited.
#[derive(Debug)]
pub(crate) struct Ran {
    /// The exit code (`None` when killed by a signal).
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Ran {
    /// stdout then stderr, for assertions on either and for failure messages.
    pub(crate) fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` to completion, bounded in time (killed and failed after 30 s).
pub(crate) fn run(mut cmd: Command) -> Ran {
    let out = run_bounded(&mut cmd, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a command to completion within `limit` (killed after it), capturing its output.
pub(crate) fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    // Read both pipes while it runs, so a large output cannot block it.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{cmd:?} did not finish within {limit:?}; killed"));
            }
            Err(e) => return Err(format!("waiting for {cmd:?}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// A loopback port free for both UDP and TCP at the time of the call.
pub(crate) fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

/// A loopback TCP port free at the time of the call.
pub(crate) fn free_tcp_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// Asks `server` for [`query`] `name`/`rtype` over UDP from a tokio socket (for async
/// tests, whose runtime must keep serving the ingresses meanwhile); `Err` on a timeout or
/// a bad answer.
pub(crate) async fn ask_async(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let sock = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| err(&e))?;
    let msg = query(name, rtype);
    let id = msg.metadata.id;
    sock.send_to(&msg.to_vec().map_err(|e| err(&e))?, server)
        .await
        .map_err(|e| err(&e))?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))?
            .map_err(|e| err(&e))?;
        let reply = Message::from_vec(&buf[..n]).map_err(|e| err(&e))?;
        if reply.metadata.id == id {
            return Ok(reply);
        }
    }
}

/// The A records of `name` from `server` ([`ask_async`]).
pub(crate) async fn query_a(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<Vec<Ipv4Addr>, String> {
    Ok(a_records(
        &ask_async(server, name, RecordType::A, timeout).await?,
    ))
}

/// The distinct addresses seen in `n` answers for `name`, sorted.
pub(crate) async fn answers(server: SocketAddr, name: &str, n: usize) -> Vec<Ipv4Addr> {
    let mut seen = Vec::new();
    for _ in 0..n {
        if let Ok(addrs) = query_a(server, name, Duration::from_millis(500)).await {
            for a in addrs {
                if !seen.contains(&a) {
                    seen.push(a);
                }
            }
        }
    }
    seen.sort();
    seen
}

/// Sends one datagram from a new socket and returns the first datagram that comes back.
pub(crate) fn udp_exchange(
    addr: SocketAddr,
    wire: &[u8],
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    s.connect(addr)?;
    s.set_read_timeout(Some(timeout))?;
    s.send(wire)?;
    let mut buf = vec![0u8; 65535];
    let n = s.recv(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// A TCP connection to `addr` with the IO timeout set.
pub(crate) fn tcp_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Writes one length-prefixed message (RFC 1035 §4.2.2).
pub(crate) fn tcp_send(s: &mut TcpStream, wire: &[u8]) -> io::Result<()> {
    let mut framed = u16::try_from(wire.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(wire);
    s.write_all(&framed)
}

/// Reads one length-prefixed message.
pub(crate) fn tcp_recv(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// One query on a new TCP connection.
pub(crate) fn tcp_exchange(addr: SocketAddr, wire: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = tcp_connect(addr)?;
    tcp_send(&mut s, wire)?;
    tcp_recv(&mut s)
}

/// The path of an external tool (searched in PATH, then /usr/sbin and /sbin). The interop
/// tests call this and fail, never skip, when it is missing.
pub(crate) fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs =
        std::env::split_paths(&path).chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{name}` is not installed, and this test needs it (cargo feature `interop`). \
         Run scripts/test.sh as root on Debian: it installs the packages (bind9-dnsutils, \
         unbound, bind9, bind9-utils, ...) and runs every test."
    );
}
