//! The UDP receive loop answers bursts of queued datagrams (taken in batches on Linux),
//! each answer to its own sender, answers an oversized datagram in the middle of a burst
//! with FORMERR without disturbing the others, and stops when asked.

use std::collections::HashSet;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

#[path = "../bench/fixture.rs"]
mod fixture;

fn with_id(mut packet: Vec<u8>, id: u16) -> Vec<u8> {
    packet[..2].copy_from_slice(&id.to_be_bytes());
    packet
}

#[test]
fn answers_bursts_to_each_sender_and_stops() {
    let srv = fixture::UdpServer::start();
    let server = srv.addr;

    let clients: Vec<UdpSocket> = (0..2)
        .map(|_| {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c
        })
        .collect();
    let app = fixture::query("app.bench.example", 1, true, None);
    let stat = fixture::query("static.bench.example", 1, false, None);
    // An oversized datagram (a question with 5 KB of trailing bytes) in the middle of the
    // burst: FORMERR.
    let mut huge = with_id(
        fixture::query("static.bench.example", 1, false, None),
        0x0FFF,
    );
    huge.resize(5000, 0);
    const PER_CLIENT: u16 = 100;
    for id in 0..PER_CLIENT {
        for (c, client) in clients.iter().enumerate() {
            let base = if id % 2 == 0 { &app } else { &stat };
            let qid = (c as u16) << 12 | id;
            client.send_to(&with_id(base.clone(), qid), server).unwrap();
        }
        if id == PER_CLIENT / 2 {
            clients[0].send_to(&huge, server).unwrap();
        }
    }
    for (c, client) in clients.iter().enumerate() {
        let mut seen = HashSet::new();
        let mut formerr = false;
        let mut buf = [0u8; 2048];
        while seen.len() < usize::from(PER_CLIENT) || (c == 0 && !formerr) {
            client.recv(&mut buf).expect("an answer for every query");
            let id = u16::from_be_bytes([buf[0], buf[1]]);
            if c == 0 && id == 0x0FFF {
                assert_eq!(buf[3] & 0xF, 1, "FORMERR for the oversized datagram");
                formerr = true;
                continue;
            }
            assert_eq!(usize::from(id >> 12), c, "answer sent to the wrong client");
            assert!(seen.insert(id & 0xFFF), "answer {id} twice");
            assert_eq!(buf[3] & 0xF, 0, "rcode");
            assert_eq!(u16::from_be_bytes([buf[6], buf[7]]), 1, "one answer record");
        }
    }
    // Nothing else arrives.
    clients[0]
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(clients[0].recv(&mut [0u8; 512]).is_err());

    let asked = Instant::now();
    srv.stop();
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "loop did not stop"
    );
}

/// Answers leave with the IPv4 DF bit set (never fragmented, RFC 9715), seen on the
/// wire: a packet socket on `lo` captures the answer's IP header. Needs root (as CI
/// runs); skipped otherwise.
#[cfg(target_os = "linux")]
#[test]
fn answers_leave_with_dont_fragment_set() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: skipping the packet capture of the DF bit");
        return;
    }
    // SAFETY: plain socket calls on a descriptor this test owns and closes.
    let cap = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM,
            i32::from((libc::ETH_P_IP as u16).to_be()),
        )
    };
    assert!(
        cap >= 0,
        "packet socket: {}",
        std::io::Error::last_os_error()
    );
    let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    assert!(lo > 0, "no lo interface");
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_IP as u16).to_be();
    sll.sll_ifindex = lo as i32;
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 200_000,
    };
    unsafe {
        assert_eq!(
            libc::bind(
                cap,
                (&raw const sll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t
            ),
            0
        );
        libc::setsockopt(
            cap,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        );
    }

    let srv = fixture::UdpServer::start();
    let port = srv.addr.port();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
        .send_to(
            &fixture::query("app.bench.example", 1, true, None),
            ("127.0.0.1", port),
        )
        .unwrap();
    let mut buf = [0u8; 2048];
    client.recv(&mut buf).expect("an answer");

    // The answer's IP header: UDP (17) from the server's port.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut flags = None;
    while flags.is_none() && Instant::now() < deadline {
        let mut pkt = [0u8; 2048];
        // SAFETY: `pkt` is a writable buffer of its length.
        let n = unsafe { libc::recv(cap, pkt.as_mut_ptr().cast(), pkt.len(), 0) };
        if n < 28 {
            continue;
        }
        let ihl = usize::from(pkt[0] & 0x0F) * 4;
        if pkt[0] >> 4 == 4
            && pkt[9] == 17
            && n as usize >= ihl + 8
            && u16::from_be_bytes([pkt[ihl], pkt[ihl + 1]]) == port
        {
            flags = Some(pkt[6]);
        }
    }
    unsafe { libc::close(cap) };
    srv.stop();
    let flags = flags.expect("captured the answer on lo");
    assert_ne!(
        flags & 0x40,
        0,
        "DF is not set on the answer (flags {flags:#04x})"
    );
}
