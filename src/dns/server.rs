//! UDP and TCP listeners. UDP: several SO_REUSEPORT sockets per address, each with its own
//! blocking receive loop on a dedicated thread (no task per query). TCP (RFC 7766): tokio,
//! pipelined queries answered in order, idle connections closed.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::engine::{Scratch, Transport, respond};
use crate::base::Rtype;
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
/// every 200 ms).
pub fn udp_loop(sock: UdpSocket, snapshot: Shared, stop: Arc<AtomicBool>) {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    #[cfg(target_os = "linux")]
    udp_loop_batched(sock, snapshot, stop);
    #[cfg(not(target_os = "linux"))]
    udp_loop_single(sock, snapshot, stop);
}

/// Linux: `recvmmsg`/`sendmmsg`, every queued datagram per system call (see
/// [`super::batch`]).
#[cfg(target_os = "linux")]
fn udp_loop_batched(sock: UdpSocket, snapshot: Shared, stop: Arc<AtomicBool>) {
    use std::os::fd::AsRawFd;

    use super::batch::Batch;

    let fd = sock.as_raw_fd();
    let mut batch = Box::new(Batch::new());
    let mut q = Box::<Scratch>::default();
    let mut tally = crate::metrics::QueryTally::default();
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
        for i in 0..n {
            let Some((packet, peer, out)) = batch.slot(i) else {
                tally.add(Transport::Udp, Rtype(0), None);
                continue;
            };
            let outcome = respond(&snap, packet, &mut q, peer, Transport::Udp, out);
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
fn udp_loop_single(sock: UdpSocket, snapshot: Shared, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    let mut q = Box::<Scratch>::default();
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
        let outcome = respond(
            &snap,
            &buf[..n],
            &mut q,
            peer.ip(),
            Transport::Udp,
            &mut out,
        );
        drop(snap);
        crate::metrics::count_query(
            Transport::Udp,
            outcome.qtype,
            outcome.respond.then_some(outcome.rcode),
        );
        if outcome.respond
            && let Err(e) = sock.send_to(&out, peer)
        {
            debug!(error = %e, %peer, "udp send error");
        }
    }
}

/// Accepts TCP connections until the task is dropped.
pub async fn tcp_accept_loop(
    listener: TcpListener,
    snapshot: Shared,
    idle: Duration,
    max_conns: usize,
) {
    let permits = Arc::new(Semaphore::new(max_conns));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "tcp accept error");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            debug!(%peer, "tcp connection limit reached; closing");
            drop(stream);
            continue;
        };
        let snapshot = snapshot.clone();
        tokio::spawn(async move {
            if let Err(e) = tcp_conn(stream, peer, snapshot, idle).await {
                debug!(%peer, error = %e, "tcp connection ended");
            }
            drop(permit);
        });
    }
}

async fn tcp_conn(
    stream: TcpStream,
    peer: SocketAddr,
    snapshot: Shared,
    idle: Duration,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut w = BufWriter::new(w);
    let mut msg = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(4096);
    let mut q = Box::<Scratch>::default();
    loop {
        let mut len = [0u8; 2];
        // Idle timeout: no new query within `idle` closes the connection (RFC 7766 §6.2.3).
        match tokio::time::timeout(idle, r.read_exact(&mut len)).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
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
            return Ok(());
        }
        w.write_all(&(out.len() as u16).to_be_bytes()).await?;
        w.write_all(&out).await?;
        // Pipelining: flush once no further query is already buffered.
        if r.buffer().is_empty() {
            w.flush().await?;
        }
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
