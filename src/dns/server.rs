//! UDP and TCP listeners. UDP: several SO_REUSEPORT sockets per address, each with its own
//! blocking receive loop on a dedicated thread (no task per query). TCP (RFC 7766): tokio,
//! pipelined queries answered in order, idle connections closed; when the connection limit
//! (overall or of one source) is reached, the longest-idle connection makes room for the
//! new one, and a client that does not take its answers is reset at the write deadline.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tracing::{debug, info};

use super::engine::{Outcome, Scratch, Transport, respond};
use super::ratelimit::{RateLimiter, Slip, Verdict};
use crate::base::Rtype;
use crate::metrics::Limited;
use crate::snapshot::Shared;

/// Binds `count` UDP sockets on `addr` with SO_REUSEPORT (the kernel spreads datagrams
/// over them).
pub fn bind_udp(addr: SocketAddr, count: usize) -> io::Result<Vec<UdpSocket>> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
        dont_fragment(&s, addr.is_ipv6());
        s.bind(&addr.into())?;
        // A bound port of 0 is resolved by the first socket; the rest share it.
        let sock: UdpSocket = s.into();
        if addr.port() == 0 && out.is_empty() && count > 1 {
            let real = sock.local_addr()?;
            out.push(sock);
            for _ in 1..count {
                out.push(bind_udp(real, 1)?.pop().expect("one socket"));
            }
            return Ok(out);
        }
        out.push(sock);
    }
    Ok(out)
}

/// Answers go out with the DF bit set and without path-MTU discovery
/// (`IP_PMTUDISC_PROBE` / `IPV6_PMTUDISC_PROBE`): never fragmented, as RFC 9715 §3.1
/// recommends for DNS responders (BIND sets DF too), and a forged ICMP "fragmentation
/// needed" cannot change how answers are sent, since no path MTU is learnt or kept.
/// Answers are at most 1232 bytes with EDNS (512 without), so they fit any path of the
/// IPv6 minimum MTU; on a narrower path the answer is lost rather than fragmented, and the
/// resolver retries (over TCP if need be). A DF datagram also needs no IP identification,
/// which spares the kernel a hash and a shared atomic per answer (`__ip_select_ident`,
/// about 1 % of a query's CPU at 30k queries/s). Not fatal where the option does not
/// exist.
fn dont_fragment(s: &Socket, v6: bool) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (level, name, value) = if v6 {
            (
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IPV6_PMTUDISC_PROBE,
            )
        } else {
            (
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_PROBE,
            )
        };
        // SAFETY: a valid socket and a c_int option value of the right size.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                level,
                name,
                (&raw const value).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            debug!(error = %io::Error::last_os_error(), "cannot set DF without path MTU discovery");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (s, v6);
}

/// Binds a TCP listener (SO_REUSEADDR, so restarts do not wait for TIME_WAIT).
pub fn bind_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Serves one UDP socket on the current thread until `stop` is set (checked at least
/// every 200 ms), with answers limited by `limit` (`dns.rate_limit`) when there is one.
pub fn udp_loop(
    sock: UdpSocket,
    snapshot: Shared,
    stop: Arc<AtomicBool>,
    limit: Option<Arc<RateLimiter>>,
) {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    #[cfg(target_os = "linux")]
    udp_loop_batched(sock, snapshot, stop, limit.as_deref());
    #[cfg(not(target_os = "linux"))]
    udp_loop_single(sock, snapshot, stop, limit.as_deref());
}

/// Answers one UDP query into `out`, unless the rate limit says otherwise: then every
/// second one gets an empty TC=1 answer ([`super::engine::slip`]) and the others none
/// (`None`; counted in `tally` as rate-limited, not as queries).
#[inline]
#[allow(clippy::too_many_arguments)]
fn answer_udp(
    snap: &crate::snapshot::Snapshot,
    packet: &[u8],
    q: &mut Scratch,
    peer: std::net::IpAddr,
    out: &mut Vec<u8>,
    limit: Option<(&RateLimiter, u64)>,
    slip: &mut Slip,
    tally: &mut crate::metrics::QueryTally,
) -> Option<Outcome> {
    if let Some((rl, now)) = limit
        && rl.check(peer, now) == Verdict::Limited
    {
        if slip.slips() {
            let outcome = super::engine::slip(packet, q, out);
            if outcome.respond {
                tally.limited(Limited::Slip);
                return Some(outcome);
            }
        }
        tally.limited(Limited::Drop);
        return None;
    }
    Some(respond(snap, packet, q, peer, Transport::Udp, out))
}

/// Linux: `recvmmsg`/`sendmmsg`, every queued datagram per system call (see
/// [`super::batch`]).
#[cfg(target_os = "linux")]
fn udp_loop_batched(
    sock: UdpSocket,
    snapshot: Shared,
    stop: Arc<AtomicBool>,
    limit: Option<&RateLimiter>,
) {
    use std::os::fd::AsRawFd;

    use super::batch::Batch;

    let fd = sock.as_raw_fd();
    let mut batch = Box::new(Batch::new());
    let mut q = Box::<Scratch>::default();
    let mut tally = crate::metrics::QueryTally::default();
    let mut slip = Slip::default();
    while !stop.load(Ordering::Relaxed) {
        let n = match batch.recv(fd) {
            Ok(n) => n,
            Err(e) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) {
                    // ICMP errors from earlier sends surface here; keep going.
                    debug!(error = %e, "udp receive error");
                }
                continue;
            }
        };
        // One snapshot for the whole batch: answers within a batch are consistent.
        let snap = snapshot.load();
        let limit = limit.map(|rl| (rl, rl.now()));
        for i in 0..n {
            let Some((packet, peer, out)) = batch.slot(i) else {
                tally.add(Transport::Udp, Rtype(0), None);
                continue;
            };
            let Some(outcome) = answer_udp(
                &snap, packet, &mut q, peer, out, limit, &mut slip, &mut tally,
            ) else {
                continue;
            };
            tally.add(
                Transport::Udp,
                outcome.qtype,
                outcome.respond.then_some(outcome.rcode),
            );
            if outcome.respond {
                batch.answer(i);
            }
        }
        drop(snap);
        tally.flush();
        let (failed, err) = batch.send(fd);
        if let Some(e) = err {
            debug!(error = %e, failed, "udp send error");
        }
    }
}

/// One `recvfrom` and one `sendto` per query.
#[cfg(not(target_os = "linux"))]
fn udp_loop_single(
    sock: UdpSocket,
    snapshot: Shared,
    stop: Arc<AtomicBool>,
    limit: Option<&RateLimiter>,
) {
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    let mut q = Box::<Scratch>::default();
    let mut tally = crate::metrics::QueryTally::default();
    let mut slip = Slip::default();
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep going.
                debug!(error = %e, "udp receive error");
                continue;
            }
        };
        let snap = snapshot.load();
        let limit = limit.map(|rl| (rl, rl.now()));
        let outcome = answer_udp(
            &snap,
            &buf[..n],
            &mut q,
            peer.ip(),
            &mut out,
            limit,
            &mut slip,
            &mut tally,
        );
        drop(snap);
        let Some(outcome) = outcome else { continue };
        tally.add(
            Transport::Udp,
            outcome.qtype,
            outcome.respond.then_some(outcome.rcode),
        );
        tally.flush();
        if outcome.respond
            && let Err(e) = sock.send_to(&out, peer)
        {
            debug!(error = %e, %peer, "udp send error");
        }
    }
}

/// TCP limits (`[dns]` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    /// A connection with no complete query for this long is closed (RFC 7766 §6.2.3).
    pub idle: Duration,
    /// Answers the client has not taken within this long close the connection.
    pub write: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one source ([`SourceKey`]).
    pub max_per_source: usize,
}

impl TcpLimits {
    pub fn from_config(dns: &crate::config::DnsSpec) -> Self {
        Self {
            idle: dns.tcp_idle_timeout.0,
            write: dns.tcp_write_timeout(),
            max_connections: dns.tcp_max_connections.max(1),
            max_per_source: dns.tcp_max_per_source.max(1),
        }
    }
}

/// At most this many answers are held before they are written: a client that pipelines
/// queries gets its answers in batches of this size at most, and the server reads no
/// further queries of a client that does not take its answers.
pub const MAX_PIPELINE: usize = 32;
/// Or this many bytes of answers.
const MAX_PENDING: usize = 16 * 1024;

/// Who a connection is from, for `tcp_max_per_source`: an IPv4 address, or the /64 of an
/// IPv6 address (what one host usually holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKey {
    V4(u32),
    V6(u64),
}

impl SourceKey {
    pub fn of(ip: std::net::IpAddr) -> Self {
        match ip {
            std::net::IpAddr::V4(a) => Self::V4(u32::from(a)),
            std::net::IpAddr::V6(a) => Self::V6((u128::from(a) >> 64) as u64),
        }
    }
}

/// One open connection, as the table sees it.
struct Conn {
    /// When it last completed a query or a write, in ms since the table's epoch.
    last_active: AtomicU64,
    /// Told to close (the table made room with it).
    close: Notify,
}

struct Entry {
    source: SourceKey,
    /// Tells an entry from a later one in the same slot.
    serial: u64,
    conn: Arc<Conn>,
}

/// The open TCP connections of every listener: who they are from and how long each has
/// been idle, so that a new connection can take the place of the longest-idle one when
/// the limit (overall, or of its source) is reached. A client holding every slot with
/// idle connections cannot keep others out: theirs are the first to go (Knot and
/// Unbound do the same). Touched at accept and close only; a query costs one relaxed
/// store of its connection's time.
pub struct TcpTable {
    limits: TcpLimits,
    epoch: tokio::time::Instant,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    per_source: HashMap<SourceKey, usize>,
    open: usize,
    serial: u64,
}

/// Why a connection was closed to make room for a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    /// `tcp_max_connections` was reached.
    Limit,
    /// `tcp_max_per_source` of the new connection's source was reached.
    Source,
}

impl Slots {
    fn remove(&mut self, i: usize) -> Option<Entry> {
        let e = self.entries[i].take()?;
        self.free.push(i);
        self.open -= 1;
        if let Some(n) = self.per_source.get_mut(&e.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&e.source);
            }
        }
        Some(e)
    }

    /// The slot of the connection idle longest, among those from `source` when given.
    fn longest_idle(&self, source: Option<SourceKey>) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for (i, e) in self.entries.iter().enumerate() {
            let Some(e) = e else { continue };
            if source.is_some_and(|s| s != e.source) {
                continue;
            }
            let t = e.conn.last_active.load(Ordering::Relaxed);
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, i));
            }
        }
        best.map(|(_, i)| i)
    }
}

/// A connection admitted to the table; [`TcpTable::release`] it when it ends.
pub struct Admitted {
    slot: usize,
    serial: u64,
    conn: Arc<Conn>,
}

impl TcpTable {
    pub fn new(limits: TcpLimits) -> Self {
        Self {
            limits,
            epoch: tokio::time::Instant::now(),
            slots: Mutex::new(Slots::default()),
        }
    }

    pub fn limits(&self) -> TcpLimits {
        self.limits
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Makes room for a connection from `source` (closing the longest-idle connection of
    /// that source when it has `max_per_source`, then the longest-idle of all when
    /// `max_connections` are open) and admits it. Returns the connection and the
    /// evictions made.
    pub fn admit(&self, source: SourceKey) -> (Admitted, [Option<Eviction>; 2]) {
        let now = self.now_ms();
        let mut evicted = [None, None];
        let mut s = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let close = |s: &mut Slots, i: usize| {
            if let Some(e) = s.remove(i) {
                e.conn.close.notify_one();
            }
        };
        if s.per_source.get(&source).copied().unwrap_or(0) >= self.limits.max_per_source
            && let Some(i) = s.longest_idle(Some(source))
        {
            close(&mut s, i);
            evicted[0] = Some(Eviction::Source);
        }
        if s.open >= self.limits.max_connections
            && let Some(i) = s.longest_idle(None)
        {
            close(&mut s, i);
            evicted[1] = Some(Eviction::Limit);
        }
        s.serial += 1;
        let serial = s.serial;
        let conn = Arc::new(Conn {
            last_active: AtomicU64::new(now),
            close: Notify::new(),
        });
        let entry = Entry {
            source,
            serial,
            conn: conn.clone(),
        };
        let slot = match s.free.pop() {
            Some(i) => {
                s.entries[i] = Some(entry);
                i
            }
            None => {
                s.entries.push(Some(entry));
                s.entries.len() - 1
            }
        };
        s.open += 1;
        *s.per_source.entry(source).or_insert(0) += 1;
        crate::metrics::tcp_open(s.open);
        (Admitted { slot, serial, conn }, evicted)
    }

    /// Notes that `c` completed a query or a write just now.
    fn touch(&self, c: &Admitted) {
        c.conn.last_active.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Removes `c` from the table (unless it was closed to make room, which removed it).
    pub fn release(&self, c: Admitted) {
        let mut s = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if s.entries[c.slot]
            .as_ref()
            .is_some_and(|e| e.serial == c.serial)
        {
            s.remove(c.slot);
        }
        crate::metrics::tcp_open(s.open);
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).open
    }
}

/// Accepts TCP connections until the task is dropped. Every listener of a server shares
/// one `table`, so its limits hold across listen addresses.
pub async fn tcp_accept_loop(listener: TcpListener, snapshot: Shared, table: Arc<TcpTable>) {
    loop {
        let (stream, peer) = crate::base::net::accept(&listener, "tcp").await;
        let (conn, evicted) = table.admit(SourceKey::of(peer.ip()));
        for e in evicted.into_iter().flatten() {
            debug!(%peer, ?e, "tcp connection limit reached; closed the longest-idle connection");
            crate::metrics::tcp_closed(match e {
                Eviction::Limit => crate::metrics::TcpClose::Limit,
                Eviction::Source => crate::metrics::TcpClose::SourceLimit,
            });
        }
        let snapshot = snapshot.clone();
        let table = table.clone();
        tokio::spawn(async move {
            let result = tokio::select! {
                biased;
                // Closed to make room for a newer connection.
                () = conn.conn.close.notified() => Ok(()),
                r = tcp_conn(stream, peer, snapshot, &table, &conn) => r,
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "tcp connection ended");
            }
            table.release(conn);
        });
    }
}

async fn tcp_conn(
    stream: TcpStream,
    peer: SocketAddr,
    snapshot: Shared,
    table: &TcpTable,
    me: &Admitted,
) -> io::Result<()> {
    let TcpLimits { idle, write, .. } = table.limits();
    let _ = stream.set_nodelay(true);
    let (r, mut w) = stream.into_split();
    // Dropped before the halves (declared after them).
    let mut unread = ResetUnread::new(w.as_ref());
    let mut r = BufReader::new(r);
    let mut msg = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(4096);
    // Answers not yet written, each with its length (RFC 1035 §4.2.2).
    let mut pending = Vec::with_capacity(4096);
    let mut held = 0usize;
    let mut q = Box::<Scratch>::default();
    loop {
        // Pipelining: answers go out once no further query is already buffered, or once
        // MAX_PIPELINE of them are held.
        if !pending.is_empty() && (r.buffer().is_empty() || held >= MAX_PIPELINE) {
            flush(&mut w, &mut pending, write).await?;
            held = 0;
            table.touch(me);
            // One connection's pipeline does not hold a runtime thread for long.
            tokio::task::coop::consume_budget().await;
        }
        let mut len = [0u8; 2];
        // Idle timeout: no new query within `idle` closes the connection (RFC 7766 §6.2.3).
        match tokio::time::timeout(idle, r.read_exact(&mut len)).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                // The client closed its side; answers still on their way are delivered.
                unread.disarm();
                return Ok(());
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(_)) => {}
        }
        let len = usize::from(u16::from_be_bytes(len));
        msg.resize(len, 0);
        tokio::time::timeout(idle, r.read_exact(&mut msg))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "message not completed in time")
            })??;
        table.touch(me);
        let outcome = {
            let snap = snapshot.load();
            respond(&snap, &msg, &mut q, peer.ip(), Transport::Tcp, &mut out)
        };
        crate::metrics::count_query(
            Transport::Tcp,
            outcome.qtype,
            outcome.respond.then_some(outcome.rcode),
        );
        if !outcome.respond {
            if !pending.is_empty() {
                flush(&mut w, &mut pending, write).await?;
            }
            unread.disarm();
            return Ok(());
        }
        pending.extend_from_slice(&(out.len() as u16).to_be_bytes());
        pending.extend_from_slice(&out);
        held += 1;
        if pending.len() >= MAX_PENDING {
            held = MAX_PIPELINE;
        }
    }
}

/// Writes `pending` within `deadline`; an error when the client has not taken it by then
/// (the connection is then reset, see [`ResetUnread`]).
async fn flush(
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    pending: &mut Vec<u8>,
    deadline: Duration,
) -> io::Result<()> {
    match tokio::time::timeout(deadline, w.write_all(pending)).await {
        Ok(r) => {
            pending.clear();
            r
        }
        Err(_) => {
            crate::metrics::tcp_closed(crate::metrics::TcpClose::WriteTimeout);
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "answers not taken by the client in time",
            ))
        }
    }
}

/// Resets a connection that the server closes (idle timeout, write deadline, room for a
/// new one) while answers it sent are still unread by the client. A graceful close would
/// queue the FIN behind them, so a client that never reads would keep the socket and its
/// buffers in the kernel for minutes after the server let go of it.
struct ResetUnread {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
    armed: bool,
}

impl ResetUnread {
    fn new(s: &TcpStream) -> Self {
        Self {
            #[cfg(unix)]
            fd: std::os::fd::AsRawFd::as_raw_fd(s),
            armed: true,
        }
    }

    /// The client closed its side, or the server ends the connection in order: close
    /// gracefully whatever is unread.
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for ResetUnread {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if self.armed {
            let mut unsent: libc::c_int = 0;
            // SAFETY: the socket is open (its halves are dropped after this guard);
            // TIOCOUTQ (SIOCOUTQ) writes one int: bytes sent but not yet acknowledged.
            let r = unsafe { libc::ioctl(self.fd, libc::TIOCOUTQ, &raw mut unsent) };
            if r == 0 && unsent > 0 {
                // SAFETY: as above; borrowed only for this call.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.fd) };
                let _ = socket2::SockRef::from(&fd).set_linger(Some(Duration::ZERO));
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = self.armed;
    }
}

/// Logs a bound address.
pub fn log_listen(proto: &str, addr: SocketAddr, sockets: usize) {
    info!(%addr, proto, sockets, "listening for DNS");
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    fn int_option(sock: &UdpSocket, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = -1;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a valid socket and a c_int-sized out value.
        let r = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                level,
                name,
                (&raw mut value).cast(),
                &raw mut len,
            )
        };
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        value
    }

    fn limits(max_connections: usize, max_per_source: usize) -> TcpLimits {
        TcpLimits {
            idle: Duration::from_secs(10),
            write: Duration::from_secs(10),
            max_connections,
            max_per_source,
        }
    }

    fn src(last: u8) -> SourceKey {
        SourceKey::of(std::net::IpAddr::from([192, 0, 2, last]))
    }

    /// Admits a connection from each of `sources` in turn, then lets a second pass after
    /// each (paused time).
    async fn admit_a_second_apart<const N: usize>(t: &TcpTable, sources: [u8; N]) -> [Admitted; N] {
        let mut got = Vec::new();
        for s in sources {
            got.push(t.admit(src(s)).0);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        got.try_into()
            .unwrap_or_else(|_| unreachable!("N admitted"))
    }

    /// Whether `c` was told to close.
    async fn told_to_close(c: &Admitted) -> bool {
        tokio::time::timeout(Duration::ZERO, c.conn.close.notified())
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_table_closes_the_longest_idle_connection() {
        let t = TcpTable::new(limits(3, 10));
        let [a, b, c] = admit_a_second_apart(&t, [1, 2, 3]).await;
        // b answers a query: a, then c, are now the longest idle.
        t.touch(&b);
        tokio::time::advance(Duration::from_secs(1)).await;
        let (d, ev) = t.admit(src(4));
        assert_eq!(ev, [None, Some(Eviction::Limit)]);
        assert!(told_to_close(&a).await);
        assert!(!told_to_close(&b).await && !told_to_close(&c).await);
        let (e, ev) = t.admit(src(5));
        assert_eq!(ev, [None, Some(Eviction::Limit)]);
        assert!(told_to_close(&c).await && !told_to_close(&b).await);
        assert_eq!(t.open(), 3);
        // The closed ones end later; their release leaves the others alone.
        t.release(a);
        t.release(c);
        assert_eq!(t.open(), 3);
        for x in [b, d, e] {
            assert!(!told_to_close(&x).await);
            t.release(x);
        }
        assert_eq!(t.open(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_at_its_cap_gives_up_its_own_longest_idle_connection() {
        let t = TcpTable::new(limits(10, 2));
        let [other, x1, x2] = admit_a_second_apart(&t, [9, 1, 1]).await;
        let (x3, ev) = t.admit(src(1));
        assert_eq!(ev, [Some(Eviction::Source), None]);
        assert!(told_to_close(&x1).await, "the source's oldest");
        assert!(!told_to_close(&other).await, "older, but another source's");
        assert!(!told_to_close(&x2).await);
        t.release(x1);
        assert_eq!(t.open(), 3);
        // IPv6: one /64 is one source.
        let v6 = |s: &str| SourceKey::of(s.parse().unwrap());
        assert_eq!(v6("2001:db8::1"), v6("2001:db8::ffff:1"));
        assert_ne!(v6("2001:db8::1"), v6("2001:db8:0:1::1"));
        for x in [other, x2, x3] {
            t.release(x);
        }
        assert_eq!(t.open(), 0);
    }

    #[test]
    fn udp_sockets_set_df_without_path_mtu_discovery() {
        for s in bind_udp("127.0.0.1:0".parse().unwrap(), 2).unwrap() {
            let v = int_option(&s, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER);
            assert_eq!(v, libc::IP_PMTUDISC_PROBE);
        }
        // IPv6 loopback may be missing in some sandboxes.
        if let Ok(socks) = bind_udp("[::1]:0".parse().unwrap(), 1) {
            let v = int_option(&socks[0], libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER);
            assert_eq!(v, libc::IPV6_PMTUDISC_PROBE);
        }
    }
}
