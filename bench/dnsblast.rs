//! dnsblast: a UDP DNS load client for measuring signpost's maximum QPS on loopback.
//!
//! One thread, busy-polling several nonblocking UDP sockets (each its own source port,
//! connected to the server). Closed loop by default: at most `--outstanding` queries in
//! flight (split evenly over the sockets); a new query goes out as soon as an answer comes
//! back. Queries leave in batches with `sendmmsg` and answers are read in batches with
//! `recvmmsg`, so a query costs the client a fraction of a system call each way. With
//! `--rate` it sends at a fixed rate instead (open loop), still capped by `--outstanding`.
//!
//! Every query is the same pre-encoded packet (one name and type, optionally an EDNS0 OPT
//! record with a 1232-byte buffer size) with its ID patched per send. Answers are matched
//! by (socket, ID) and checked: QR set, one question equal to the one asked. A query not
//! answered within `--timeout` is forgotten and counted as lost.
//!
//! Bounded: at most `--duration` seconds of sending (≤ 600) and `--max-queries` queries,
//! then at most `--timeout` seconds waiting for the last answers. Only loopback servers
//! (127.0.0.0/8, ::1) are accepted.
//!
//! Output: one `key=value` line on stdout (see [`Report::line`]), a human summary on
//! stderr. Exit status 0 when at least one answer came back, 1 when none did, 2 on bad
//! arguments or a socket error.
//!
//! ```text
//! cargo build --release --example dnsblast
//! taskset -c 1 target/release/examples/dnsblast --server 127.0.0.1:5353 \
//!     --name app.bench.example --type A --duration 10 --outstanding 128 --sockets 8
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;
use std::ptr::null_mut;
use std::time::Instant;

use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};

#[derive(Parser, Debug)]
#[command(
    name = "dnsblast",
    about = "UDP DNS load client for loopback benchmarks: batched, closed loop by default"
)]
struct Args {
    /// Server address; must be a loopback address (127.0.0.0/8 or ::1).
    #[arg(long)]
    server: SocketAddr,
    /// Query name.
    #[arg(long, default_value = "app.bench.example")]
    name: String,
    /// Query type: a mnemonic (A, AAAA, NS, SOA, MX, TXT, CNAME, PTR, SRV, CAA, ANY) or a
    /// number.
    #[arg(long = "type", default_value = "A")]
    qtype: String,
    /// Seconds of sending (at most 600).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Most queries in flight, over all sockets. 128 fit in a receive buffer of the
    /// Linux default size (212,992 bytes); more make a server with that buffer drop
    /// queries, which then count as lost and hold their slot until the timeout.
    #[arg(long, default_value_t = 128)]
    outstanding: usize,
    /// UDP sockets (distinct source ports).
    #[arg(long, default_value_t = 8)]
    sockets: usize,
    /// Most datagrams per sendmmsg / recvmmsg.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Fixed rate in queries per second (open loop) instead of as fast as answers return.
    #[arg(long)]
    rate: Option<u64>,
    /// Seconds after which an unanswered query is counted as lost.
    #[arg(long, default_value_t = 2.0)]
    timeout: f64,
    /// Add an EDNS0 OPT record (UDP payload size 1232).
    #[arg(long)]
    edns: bool,
    /// Clear the RD bit (set by default, as most load clients do).
    #[arg(long)]
    no_rd: bool,
    /// Stop sending after this many queries.
    #[arg(long, default_value_t = 100_000_000)]
    max_queries: u64,
}

/// Longest answer read; a longer one is flagged MSG_TRUNC and counted as mismatched.
const RECV_BUF: usize = 4096;
/// Distance between receive buffers: a little more than a page, so the first bytes of the
/// answers do not all fall in the same cache set.
const RECV_STRIDE: usize = RECV_BUF + 64;
/// Marks a free ID in [`Sock::pos`].
const FREE: u32 = u32::MAX;
/// How often in-flight queries are checked for the timeout, in nanoseconds.
const SWEEP_NS: u64 = 2_000_000;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            report.print_human(&args);
            println!("{}", report.line());
            if report.answered > 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!("dnsblast: no answers");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("dnsblast: {e}");
            ExitCode::from(2)
        }
    }
}

/// Checks the arguments' bounds.
fn validate(a: &Args) -> Result<(), String> {
    if !is_loopback(a.server.ip()) {
        return Err(format!(
            "refusing {}: only loopback servers (127.0.0.0/8, ::1)",
            a.server
        ));
    }
    if a.server.port() == 0 {
        return Err("server port 0".into());
    }
    if !(a.duration > 0.0 && a.duration <= 600.0) {
        return Err("--duration must be in (0, 600] seconds".into());
    }
    if !(a.timeout > 0.0 && a.timeout <= 60.0) {
        return Err("--timeout must be in (0, 60] seconds".into());
    }
    if !(1..=256).contains(&a.sockets) {
        return Err("--sockets must be in 1..=256".into());
    }
    if !(1..=1024).contains(&a.batch) {
        return Err("--batch must be in 1..=1024".into());
    }
    if a.outstanding < 1 || a.outstanding > 65_536 {
        return Err("--outstanding must be in 1..=65536".into());
    }
    if a.outstanding.div_ceil(a.sockets) > 32_768 {
        return Err("--outstanding / --sockets must be at most 32768 (16-bit IDs)".into());
    }
    if let Some(r) = a.rate
        && !(1..=50_000_000).contains(&r)
    {
        return Err("--rate must be in 1..=50000000".into());
    }
    if a.max_queries == 0 {
        return Err("--max-queries must be at least 1".into());
    }
    Ok(())
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

fn parse_qtype(s: &str) -> Result<u16, String> {
    let t = match s.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "CAA" => 257,
        "ANY" => 255,
        other => other
            .strip_prefix("TYPE")
            .unwrap_or(other)
            .parse::<u16>()
            .map_err(|_| format!("unknown query type {s:?}"))?,
    };
    Ok(t)
}

/// The query packet with ID 0, and where its question section ends.
struct Query {
    wire: Vec<u8>,
    question_end: usize,
}

fn encode_query(name: &str, qtype: u16, rd: bool, edns: bool) -> Result<Query, String> {
    let mut w = Vec::with_capacity(300);
    w.extend_from_slice(&[0, 0]); // ID, patched per send
    w.extend_from_slice(&(if rd { 0x0100u16 } else { 0 }).to_be_bytes());
    w.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    w.extend_from_slice(&0u16.to_be_bytes()); // ANCOUNT
    w.extend_from_slice(&0u16.to_be_bytes()); // NSCOUNT
    w.extend_from_slice(&u16::from(edns).to_be_bytes()); // ARCOUNT
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("bad name {name:?}: empty or over-long label"));
            }
            w.push(label.len() as u8);
            w.extend_from_slice(label.as_bytes());
        }
    }
    w.push(0);
    if w.len() - 12 > 255 {
        return Err(format!("bad name {name:?}: longer than 255 octets"));
    }
    w.extend_from_slice(&qtype.to_be_bytes());
    w.extend_from_slice(&1u16.to_be_bytes()); // IN
    let question_end = w.len();
    if edns {
        w.push(0); // root owner
        w.extend_from_slice(&41u16.to_be_bytes()); // OPT
        w.extend_from_slice(&1232u16.to_be_bytes()); // UDP payload size
        w.extend_from_slice(&0u32.to_be_bytes()); // extended RCODE, version, flags
        w.extend_from_slice(&0u16.to_be_bytes()); // RDLENGTH
    }
    Ok(Query {
        wire: w,
        question_end,
    })
}

/// Whether `resp`'s question section is the one asked: the name compared without regard
/// to ASCII case, type and class exactly.
fn same_question(resp: &[u8], q: &Query) -> bool {
    let end = q.question_end;
    if resp.len() < end || resp[4..6] != [0, 1] {
        return false;
    }
    let name_end = end - 4;
    resp[12..name_end].eq_ignore_ascii_case(&q.wire[12..name_end])
        && resp[name_end..end] == q.wire[name_end..end]
}

/// One socket and the queries in flight on it.
struct Sock {
    sock: UdpSocket,
    /// Send time (ns since start) per ID, valid while the ID is in flight.
    sent_ns: Box<[u64]>,
    /// Index into `inflight` per ID, or [`FREE`].
    pos: Box<[u32]>,
    /// IDs in flight, in no particular order.
    inflight: Vec<u16>,
    next_id: u16,
}

impl Sock {
    fn new(server: SocketAddr, seed: u16) -> io::Result<Self> {
        let domain = Domain::for_address(server);
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
        if server.is_ipv4() {
            // Queries are small: set DF (IP_PMTUDISC_PROBE: DF, path MTU ignored). On a
            // connected socket the kernel then numbers IP IDs per socket instead of hashing
            // each packet's addresses, which is cheaper per query.
            let probe: libc::c_int = libc::IP_PMTUDISC_PROBE;
            // SAFETY: a valid socket and a c_int option value of the right size.
            unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_MTU_DISCOVER,
                    (&raw const probe).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
        let local: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::LOCALHOST, 0).into()
        } else {
            (Ipv6Addr::LOCALHOST, 0).into()
        };
        s.bind(&local.into())?;
        s.connect(&server.into())?;
        s.set_nonblocking(true)?;
        Ok(Self {
            sock: s.into(),
            sent_ns: vec![0; 65_536].into_boxed_slice(),
            pos: vec![FREE; 65_536].into_boxed_slice(),
            inflight: Vec::with_capacity(32_768),
            next_id: seed,
        })
    }

    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// The next ID not in flight (there is always one: at most 32768 are).
    fn alloc_id(&mut self) -> u16 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if self.pos[usize::from(id)] == FREE {
                return id;
            }
        }
    }

    fn register(&mut self, id: u16, now: u64) {
        self.pos[usize::from(id)] = self.inflight.len() as u32;
        self.sent_ns[usize::from(id)] = now;
        self.inflight.push(id);
    }

    /// Takes `id` out of flight; returns its send time, or `None` if it was not in flight.
    fn complete(&mut self, id: u16) -> Option<u64> {
        let p = self.pos[usize::from(id)];
        if p == FREE {
            return None;
        }
        self.inflight.swap_remove(p as usize);
        if let Some(&moved) = self.inflight.get(p as usize) {
            self.pos[usize::from(moved)] = p;
        }
        self.pos[usize::from(id)] = FREE;
        Some(self.sent_ns[usize::from(id)])
    }

    /// Forgets every query sent before `deadline`; returns how many.
    fn expire(&mut self, deadline: u64) -> u64 {
        let mut n = 0;
        let mut i = 0;
        while i < self.inflight.len() {
            let id = self.inflight[i];
            if self.sent_ns[usize::from(id)] < deadline {
                self.complete(id);
                n += 1;
            } else {
                i += 1;
            }
        }
        n
    }
}

/// Pre-built `sendmmsg` headers: `batch` copies of the query, each patched with its ID.
struct SendBufs {
    bufs: Vec<Vec<u8>>,
    /// The iovecs `hdrs` point into (kept alive, never resized).
    _iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    ids: Vec<u16>,
}

impl SendBufs {
    fn new(query: &[u8], batch: usize) -> Self {
        let mut bufs: Vec<Vec<u8>> = (0..batch).map(|_| query.to_vec()).collect();
        let mut iov: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let hdrs = mmsghdrs(&mut iov);
        Self {
            bufs,
            _iov: iov,
            hdrs,
            ids: vec![0; batch],
        }
    }
}

/// One `mmsghdr` per entry of `iov`, each pointing at its iovec, with no address (the
/// socket is connected). The iovecs stay in `iov`'s heap buffer, which must not move
/// (be resized) while the headers are in use.
fn mmsghdrs(iov: &mut [libc::iovec]) -> Vec<libc::mmsghdr> {
    iov.iter_mut()
        .map(|v| {
            // SAFETY: all-zero is a valid msghdr (null name, no control data).
            let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
            h.msg_iov = v;
            h.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            }
        })
        .collect()
}

/// `recvmmsg` buffers and headers.
struct RecvBufs {
    data: Vec<u8>,
    /// The iovecs `hdrs` point into (kept alive, never resized).
    _iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl RecvBufs {
    fn new(batch: usize) -> Self {
        let mut data = vec![0u8; batch * RECV_STRIDE];
        let base = data.as_mut_ptr();
        let mut iov: Vec<libc::iovec> = (0..batch)
            .map(|i| libc::iovec {
                // SAFETY: i * RECV_STRIDE + RECV_BUF is within `data`.
                iov_base: unsafe { base.add(i * RECV_STRIDE) }.cast(),
                iov_len: RECV_BUF,
            })
            .collect();
        let hdrs = mmsghdrs(&mut iov);
        Self {
            data,
            _iov: iov,
            hdrs,
        }
    }

    fn datagram(&self, i: usize) -> &[u8] {
        let len = (self.hdrs[i].msg_len as usize).min(RECV_BUF);
        &self.data[i * RECV_STRIDE..i * RECV_STRIDE + len]
    }
}

#[derive(Default)]
struct Report {
    sent: u64,
    answered: u64,
    /// Answers received before the sending window closed (what `qps` counts).
    answered_in_window: u64,
    lost: u64,
    /// Answers with an unknown ID (late, after their query timed out, or never asked).
    unexpected: u64,
    /// Answers with QR clear, a different question, or cut short.
    mismatched: u64,
    truncated_tc: u64,
    rcode_noerror: u64,
    rcode_nxdomain: u64,
    rcode_servfail: u64,
    rcode_refused: u64,
    other_rcode: u64,
    send_full: u64,
    send_errors: u64,
    recv_errors: u64,
    latency_ns_sum: u128,
    latency_ns_max: u64,
    window_s: f64,
    client_cpu_s: f64,
    /// Seconds of the window spent polling without finding anything to do: rounds over
    /// every socket that neither read nor sent a datagram, and in the other rounds the
    /// receive calls that found nothing queued.
    client_idle_s: f64,
}

impl Report {
    fn qps(&self) -> f64 {
        if self.window_s > 0.0 {
            self.answered_in_window as f64 / self.window_s
        } else {
            0.0
        }
    }

    fn avg_latency_us(&self) -> f64 {
        if self.answered > 0 {
            self.latency_ns_sum as f64 / self.answered as f64 / 1000.0
        } else {
            0.0
        }
    }

    /// `s` seconds as a fraction of the window.
    fn fraction(&self, s: f64) -> f64 {
        if self.window_s > 0.0 {
            s / self.window_s
        } else {
            0.0
        }
    }

    /// Share of the window not spent polling empty sockets: near 1 when the client is the
    /// limit (answers wait for it), lower when it waits for the server.
    fn client_busy(&self) -> f64 {
        self.fraction(self.window_s - self.client_idle_s)
    }

    /// The machine-readable line.
    fn line(&self) -> String {
        format!(
            "sent={} answered={} lost={} rcode_noerror={} other_rcode={} rcode_nxdomain={} \
             rcode_servfail={} rcode_refused={} mismatched={} unexpected={} tc={} \
             send_full={} send_errors={} recv_errors={} avg_latency_us={:.1} \
             max_latency_us={:.1} qps={:.0} seconds={:.3} client_cpu={:.3} client_busy={:.3}",
            self.sent,
            self.answered,
            self.lost,
            self.rcode_noerror,
            self.other_rcode + self.rcode_nxdomain + self.rcode_servfail + self.rcode_refused,
            self.rcode_nxdomain,
            self.rcode_servfail,
            self.rcode_refused,
            self.mismatched,
            self.unexpected,
            self.truncated_tc,
            self.send_full,
            self.send_errors,
            self.recv_errors,
            self.avg_latency_us(),
            self.latency_ns_max as f64 / 1000.0,
            self.qps(),
            self.window_s,
            self.fraction(self.client_cpu_s),
            self.client_busy(),
        )
    }

    fn print_human(&self, a: &Args) {
        let mode = match a.rate {
            Some(r) => format!("open loop at {r} qps, at most {} in flight", a.outstanding),
            None => format!("closed loop, {} in flight", a.outstanding),
        };
        eprintln!(
            "dnsblast: {} {} → {}: {mode}, {} sockets, batch {}{}",
            a.name,
            a.qtype,
            a.server,
            a.sockets,
            a.batch,
            if a.edns { ", EDNS 1232" } else { "" }
        );
        eprintln!(
            "  {:.3} s: sent {}, answered {} ({} in the window), lost {}",
            self.window_s, self.sent, self.answered, self.answered_in_window, self.lost
        );
        eprintln!(
            "  {:.0} answers/s; latency avg {:.1} µs, max {:.1} µs; client CPU {:.0} %, \
             busy (not polling empty sockets) {:.0} %",
            self.qps(),
            self.avg_latency_us(),
            self.latency_ns_max as f64 / 1000.0,
            self.fraction(self.client_cpu_s) * 100.0,
            self.client_busy() * 100.0,
        );
        eprintln!(
            "  rcodes: NOERROR {}, NXDOMAIN {}, SERVFAIL {}, REFUSED {}, other {}; TC {}",
            self.rcode_noerror,
            self.rcode_nxdomain,
            self.rcode_servfail,
            self.rcode_refused,
            self.other_rcode,
            self.truncated_tc
        );
        if self.mismatched + self.unexpected + self.send_errors + self.recv_errors > 0 {
            eprintln!(
                "  problems: mismatched {}, unexpected ID {}, send errors {}, receive errors {}",
                self.mismatched, self.unexpected, self.send_errors, self.recv_errors
            );
        }
    }
}

/// Process CPU time (user + system) in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid rusage to write into.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

struct Blaster {
    query: Query,
    socks: Vec<Sock>,
    send: SendBufs,
    recv: RecvBufs,
    report: Report,
    start: Instant,
    /// Nanoseconds spent in receive calls that found nothing queued, since the last
    /// reset by the sending loop.
    empty_ns: u64,
}

impl Blaster {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Reads every answer queued on socket `s` (up to four batches); returns how many
    /// datagrams were read. Time spent in calls that found nothing is added to
    /// `empty_ns`.
    fn drain_socket(&mut self, s: usize, in_window: bool) -> usize {
        let batch = self.recv.hdrs.len();
        let mut read = 0;
        for _ in 0..4 {
            let before = self.now_ns();
            // SAFETY: the headers point into `self.recv`'s buffers, alive and unmoved.
            let n = unsafe {
                libc::recvmmsg(
                    self.socks[s].fd(),
                    self.recv.hdrs.as_mut_ptr(),
                    batch as _,
                    libc::MSG_DONTWAIT as _,
                    null_mut(),
                )
            };
            let now = self.now_ns();
            if n <= 0 {
                if n < 0 {
                    let e = io::Error::last_os_error();
                    match e.kind() {
                        io::ErrorKind::WouldBlock => self.empty_ns += now - before,
                        io::ErrorKind::Interrupted => {}
                        // ECONNREFUSED (ICMP port unreachable) when the server is gone.
                        _ => self.report.recv_errors += 1,
                    }
                }
                return read;
            }
            read += n as usize;
            for i in 0..n as usize {
                self.check_answer(s, i, now, in_window);
            }
            if (n as usize) < batch {
                return read;
            }
        }
        read
    }

    fn check_answer(&mut self, s: usize, i: usize, now: u64, in_window: bool) {
        let flags = self.recv.hdrs[i].msg_hdr.msg_flags;
        let d = self.recv.datagram(i);
        let r = &mut self.report;
        if d.len() < 12 || flags & libc::MSG_TRUNC != 0 {
            r.mismatched += 1;
            return;
        }
        let id = u16::from_be_bytes([d[0], d[1]]);
        let qr = d[2] & 0x80 != 0;
        let tc = d[2] & 0x02 != 0;
        let rcode = d[3] & 0x0f;
        let ok = qr && same_question(d, &self.query);
        // An answer that does not match is still taken out of flight (the ID is known), so
        // the slot is not held until the timeout.
        let Some(sent) = self.socks[s].complete(id) else {
            r.unexpected += 1;
            return;
        };
        if !ok {
            r.mismatched += 1;
            return;
        }
        r.answered += 1;
        if in_window {
            r.answered_in_window += 1;
        }
        if tc {
            r.truncated_tc += 1;
        }
        match rcode {
            0 => r.rcode_noerror += 1,
            2 => r.rcode_servfail += 1,
            3 => r.rcode_nxdomain += 1,
            5 => r.rcode_refused += 1,
            _ => r.other_rcode += 1,
        }
        let lat = now.saturating_sub(sent);
        r.latency_ns_sum += u128::from(lat);
        r.latency_ns_max = r.latency_ns_max.max(lat);
    }

    /// Sends up to `k` queries on socket `s`; returns how many left.
    fn send_batch(&mut self, s: usize, k: usize) -> usize {
        let sock = &mut self.socks[s];
        for j in 0..k {
            let id = sock.alloc_id();
            self.send.ids[j] = id;
            self.send.bufs[j][..2].copy_from_slice(&id.to_be_bytes());
        }
        // SAFETY: the first `k` headers point into `self.send`'s buffers, alive and
        // unmoved; the socket is connected.
        let r = unsafe {
            libc::sendmmsg(
                sock.fd(),
                self.send.hdrs.as_mut_ptr(),
                k as _,
                libc::MSG_DONTWAIT as _,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => self.report.send_full += 1,
                io::ErrorKind::Interrupted => {}
                _ => self.report.send_errors += 1,
            }
            return 0;
        }
        let r = r as usize;
        let now = self.start.elapsed().as_nanos() as u64;
        for j in 0..r {
            sock.register(self.send.ids[j], now);
        }
        self.report.sent += r as u64;
        r
    }

    fn expire_all(&mut self, deadline: u64) {
        for s in &mut self.socks {
            self.report.lost += s.expire(deadline);
        }
    }

    fn in_flight(&self) -> usize {
        self.socks.iter().map(|s| s.inflight.len()).sum()
    }
}

fn run(a: &Args) -> Result<Report, String> {
    validate(a)?;
    let qtype = parse_qtype(&a.qtype)?;
    let query = encode_query(&a.name, qtype, !a.no_rd, a.edns)?;
    let mut socks = Vec::with_capacity(a.sockets);
    for i in 0..a.sockets {
        // Different starting IDs per socket make answers easier to tell apart in captures.
        let seed = (i as u16).wrapping_mul(0x1f3d);
        socks.push(Sock::new(a.server, seed).map_err(|e| format!("socket: {e}"))?);
    }
    let per_sock = a.outstanding.div_ceil(a.sockets);
    let send = SendBufs::new(&query.wire, a.batch);
    let recv = RecvBufs::new(a.batch);
    let duration_ns = (a.duration * 1e9) as u64;
    let timeout_ns = (a.timeout * 1e9) as u64;
    let mut b = Blaster {
        query,
        socks,
        send,
        recv,
        report: Report::default(),
        start: Instant::now(),
        empty_ns: 0,
    };
    let cpu0 = cpu_seconds();
    let mut last_sweep = 0u64;
    let mut first = 0usize;
    let n = b.socks.len();

    // Sending window.
    // Idle time: whole rounds that neither read nor sent anything, and in other rounds the
    // receive calls that found nothing.
    let mut idle_ns = 0u64;
    let mut round: Option<(u64, bool)> = None; // the last round's start and whether it worked
    let window_end = loop {
        let now = b.now_ns();
        if let Some((start, worked)) = round {
            idle_ns += if worked { b.empty_ns } else { now - start };
        }
        b.empty_ns = 0;
        if now >= duration_ns || b.report.sent >= a.max_queries {
            break now;
        }
        let mut work = 0;
        for s in 0..n {
            work += b.drain_socket(s, true);
        }
        if now - last_sweep >= SWEEP_NS {
            b.expire_all(now.saturating_sub(timeout_ns));
            last_sweep = now;
        }
        let mut budget = a.max_queries - b.report.sent;
        if let Some(rate) = a.rate {
            let due = (u128::from(rate) * u128::from(now) / 1_000_000_000) as u64;
            budget = budget.min(due.saturating_sub(b.report.sent));
        }
        // Start at a different socket each round so a limited budget is spread evenly.
        for k in 0..n {
            if budget == 0 {
                break;
            }
            let s = (first + k) % n;
            let room = per_sock.saturating_sub(b.socks[s].inflight.len());
            let want = room
                .min(a.batch)
                .min(budget.min(usize::MAX as u64) as usize);
            if want > 0 {
                let sent = b.send_batch(s, want);
                budget -= sent as u64;
                work += sent;
            }
        }
        first = (first + 1) % n;
        round = Some((now, work > 0));
    };
    let cpu1 = cpu_seconds();
    b.report.window_s = window_end as f64 / 1e9;
    b.report.client_cpu_s = cpu1 - cpu0;
    b.report.client_idle_s = idle_ns as f64 / 1e9;

    // The last answers: wait up to the timeout, without sending.
    let drain_end = window_end + timeout_ns;
    while b.in_flight() > 0 {
        let now = b.now_ns();
        if now >= drain_end {
            break;
        }
        for s in 0..n {
            b.drain_socket(s, false);
        }
        if now - last_sweep >= SWEEP_NS {
            b.expire_all(now.saturating_sub(timeout_ns));
            last_sweep = now;
        }
    }
    b.expire_all(u64::MAX);
    Ok(b.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_query() {
        let q = encode_query("app.bench.example.", 1, true, true).unwrap();
        assert_eq!(&q.wire[..12], &[0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&q.wire[12..16], b"\x03app");
        assert_eq!(q.question_end, 12 + 19 + 4);
        assert_eq!(q.wire.len(), q.question_end + 11);
        let mut resp = q.wire.clone();
        resp[2] |= 0x80;
        resp[14] = b'P';
        assert!(same_question(&resp, &q));
        resp[q.question_end - 3] = 28;
        assert!(!same_question(&resp, &q));
    }

    #[test]
    fn refuses_other_addresses() {
        assert!(is_loopback("127.0.0.9".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("192.0.2.1".parse().unwrap()));
        assert!(!is_loopback("::".parse().unwrap()));
    }

    #[test]
    fn ids_in_flight() {
        let mut s = Sock::new("127.0.0.1:9".parse().unwrap(), 65_535).unwrap();
        let a = s.alloc_id();
        s.register(a, 10);
        let b = s.alloc_id();
        s.register(b, 20);
        assert_eq!((a, b), (65_535, 0));
        assert_eq!(s.complete(a), Some(10));
        assert_eq!(s.complete(a), None);
        assert_eq!(s.expire(21), 1);
        assert!(s.inflight.is_empty());
    }
}
