//! Shared by the integration tests: starts the real `signpost` binary on free loopback
//! ports with a config and zone directory in a temp dir, waits until it answers, kills it
//! on drop; and sends DNS messages to it over UDP and TCP.
//!
//! Every wait here is bounded: a server that does not answer fails the test, it never
//! hangs it.

// Each test crate uses a different part of this module.
#![allow(dead_code)]

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_signpost");

/// How long a server may take to answer its first query.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long any single exchange may take.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// What to serve.
pub(crate) struct Setup {
    /// Zone files: (file name, e.g. `gslb.example.zone`, text).
    pub(crate) zones: Vec<(String, String)>,
    /// `dns.tcp_idle_timeout`.
    pub(crate) tcp_idle_timeout: String,
    /// `dns.udp_sockets`.
    pub(crate) udp_sockets: usize,
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
        }
    }

    pub(crate) fn tcp_idle_timeout(mut self, t: &str) -> Self {
        self.tcp_idle_timeout = t.to_owned();
        self
    }
}

/// A running `signpost serve`, killed when dropped.
pub(crate) struct Signpost {
    child: Child,
    /// Where it serves DNS (UDP and TCP).
    pub(crate) addr: SocketAddr,
    /// Holds the config, zones, state and log.
    pub(crate) dir: tempfile::TempDir,
    log: PathBuf,
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
            let port = free_port();
            let admin = free_tcp_port();
            let config = format!(
                "[dns]\nlisten = [\"127.0.0.1:{port}\"]\nudp_sockets = {}\ntcp_idle_timeout = \"{}\"\n\n\
                 [admin]\nlisten = \"127.0.0.1:{admin}\"\n\n\
                 [zones]\ndir = \"zones\"\n\n[state]\ndir = \"state\"\n",
                setup.udp_sockets, setup.tcp_idle_timeout
            );
            fs::create_dir(dir.path().join("config")).unwrap();
            fs::write(dir.path().join("config/signpost.toml"), config).unwrap();
            let cmd = command(dir.path(), &["serve", "--config", "config/signpost.toml"]);
            match Self::spawn(cmd, dir, port, &first_zone) {
                Ok(s) => return s,
                Err(log) => last_log = log,
            }
        }
        panic!("signpost did not start in 5 attempts; last log:\n{last_log}");
    }

    /// Starts `cmd` (already given its config) and waits until it answers an SOA query
    /// for `zone` on `port`. `Err` carries the log when it exited because a port was taken.
    pub(crate) fn spawn(
        mut cmd: Command,
        dir: tempfile::TempDir,
        port: u16,
        zone: &str,
    ) -> Result<Signpost, String> {
        let log = dir.path().join("signpost.log");
        let out = fs::File::create(&log).unwrap();
        cmd.stdout(out.try_clone().unwrap()).stderr(out);
        let child = cmd.spawn().expect("start signpost");
        let mut s = Signpost {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            dir,
            log,
        };
        let probe = query(zone, RecordType::SOA);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = s.child.try_wait().unwrap() {
                let log = s.log();
                // A port taken between free_port() and the bind: try other ports.
                if log.contains("cannot bind") || log.contains("in use") {
                    return Err(log);
                }
                panic!("signpost exited at start ({status}):\n{log}");
            }
            let wire = probe.to_vec().unwrap();
            if udp_exchange(s.addr, &wire, Duration::from_millis(200)).is_ok()
                && TcpStream::connect_timeout(&s.addr, Duration::from_millis(200)).is_ok()
            {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "signpost did not answer within {START_TIMEOUT:?}:\n{}",
            s.log()
        );
    }

    /// Everything the server logged so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with the log) when the process has exited.
    pub(crate) fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("signpost exited ({status}):\n{}", self.log());
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub(crate) fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
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
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        let port = free_port();
        let mut cmd = command(repo, &["serve"]);
        cmd.env("SIGNPOST__DNS__LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "SIGNPOST__ADMIN__LISTEN",
                format!("127.0.0.1:{}", free_tcp_port()),
            )
            .env("SIGNPOST__STATE__DIR", dir.path().join("state"));
        if let Ok(s) = Signpost::spawn(cmd, dir, port, "gslb.example.") {
            return s;
        }
    }
    panic!("signpost did not start on the default config in 5 attempts");
}

/// `signpost ARGS` run in `dir`, with no `SIGNPOST…` variables from the caller's
/// environment (they would override the test's config).
pub(crate) fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
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

/// A query for `name` and `rtype`, random ID, RD clear, no EDNS.
pub(crate) fn query(name: &str, rtype: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = false;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m
}

/// `m` with an OPT record: version, UDP payload size.
pub(crate) fn with_edns(mut m: Message, version: u8, payload: u16) -> Message {
    let mut e = Edns::new();
    e.set_version(version);
    e.set_max_payload(payload);
    m.set_edns(e);
    m
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

/// The fixed header of a DNS message, read straight from the bytes (hickory would
/// normalise some of what the tests check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) id: u16,
    pub(crate) qr: bool,
    pub(crate) opcode: u8,
    pub(crate) aa: bool,
    pub(crate) tc: bool,
    pub(crate) rd: bool,
    pub(crate) ra: bool,
    pub(crate) rcode_low: u8,
    pub(crate) qdcount: u16,
    pub(crate) ancount: u16,
    pub(crate) nscount: u16,
    pub(crate) arcount: u16,
}

impl Header {
    pub(crate) fn read(p: &[u8]) -> Header {
        assert!(p.len() >= 12, "message shorter than a header: {p:?}");
        let u16_at = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
        Header {
            id: u16_at(0),
            qr: p[2] & 0x80 != 0,
            opcode: (p[2] >> 3) & 0xF,
            aa: p[2] & 0x04 != 0,
            tc: p[2] & 0x02 != 0,
            rd: p[2] & 0x01 != 0,
            ra: p[3] & 0x80 != 0,
            rcode_low: p[3] & 0xF,
            qdcount: u16_at(4),
            ancount: u16_at(6),
            nscount: u16_at(8),
            arcount: u16_at(10),
        }
    }
}

/// The question section of a message with one question, as bytes.
pub(crate) fn question_bytes(p: &[u8]) -> &[u8] {
    let mut i = 12;
    while p[i] != 0 {
        assert!(p[i] < 64, "compressed or extended label in a question");
        i += 1 + usize::from(p[i]);
    }
    &p[12..i + 1 + 4]
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
