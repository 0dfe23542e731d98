//! Malformed messages never crash or stall the server (DESIGN "DNS semantics": FORMERR
//! when an ID can be read, else dropped). Every packet that has a readable ID (at least a
//! header, QR clear, opcode QUERY) must get FORMERR with that ID; shorter packets and
//! responses get nothing. Afterwards ordinary queries are still answered over UDP and TCP.
//!
//! Counts are fixed and every wait is bounded; the random packets come from a seeded RNG
//! so a failure reproduces.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, UdpSocket};
use std::time::{Duration, Instant};

use common::{AN, Header, NS, QD, Setup, Signpost};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const FORMERR: u8 = 1;
const ZONE: &str = "gslb.example.";
const ZONE_TEXT: &str = "$TTL 300
@   IN SOA ns1 hostmaster 1 3600 600 1209600 60
    IN NS  ns1
ns1 IN A   192.0.2.1
web IN A   192.0.2.80
";
/// Whole-test budget: the server must never make a test wait longer.
const BUDGET: Duration = Duration::from_secs(60);

fn start() -> Signpost {
    Signpost::start(&Setup::new(&[("gslb.example.zone", ZONE_TEXT)]).tcp_idle_timeout("1s"))
}

/// What the server must do with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// FORMERR with the packet's ID.
    FormErr,
    /// Nothing at all.
    Drop,
}

/// A valid query, as bytes.
fn valid(name: &str, rtype: RecordType) -> Vec<u8> {
    common::query(name, rtype).to_vec().unwrap()
}

/// Header with ID 0xBEEF, RD, and the given counts.
fn header(qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    let mut h = vec![0xBE, 0xEF, 0x01, 0x00];
    for c in [qd, an, ns, ar] {
        h.extend_from_slice(&c.to_be_bytes());
    }
    h
}

/// Header + question for `web.gslb.example. A IN` + an OPT whose RDATA is `opt_rdata`.
fn with_opt(opt_rdata: &[u8]) -> Vec<u8> {
    let mut p = header(1, 0, 0, 1);
    p.extend_from_slice(b"\x03web\x04gslb\x07example\x00\x00\x01\x00\x01");
    p.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0]);
    p.extend_from_slice(&u16::try_from(opt_rdata.len()).unwrap().to_be_bytes());
    p.extend_from_slice(opt_rdata);
    p
}

/// ECS option (code 8) with the given body.
fn ecs(body: &[u8]) -> Vec<u8> {
    let mut o = vec![0, 8];
    o.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    o.extend_from_slice(body);
    o
}

/// Hand-made malformed packets: (what, bytes, expected).
fn crafted() -> Vec<(String, Vec<u8>, Want)> {
    let mut v: Vec<(String, Vec<u8>, Want)> = Vec::new();
    let mut add = |what: &str, p: Vec<u8>, want: Want| v.push((what.to_owned(), p, want));

    // Question counts (DESIGN: more than one question is FORMERR).
    let mut two = Message::query();
    for n in ["web.gslb.example.", "ns1.gslb.example."] {
        two.add_query(Query::query(Name::from_ascii(n).unwrap(), RecordType::A));
    }
    add("two questions", two.to_vec().unwrap(), Want::FormErr);
    add("zero questions", header(0, 0, 0, 0), Want::FormErr);
    add(
        "zero questions, trailing bytes",
        [header(0, 0, 0, 0), vec![0; 20]].concat(),
        Want::FormErr,
    );
    add(
        "QDCOUNT 65535",
        [
            header(65535, 0, 0, 0),
            b"\x01a\x00\x00\x01\x00\x01".to_vec(),
        ]
        .concat(),
        Want::FormErr,
    );

    // Compression pointers in the question.
    add(
        "pointer to itself",
        [header(1, 0, 0, 0), vec![0xC0, 12, 0, 1, 0, 1]].concat(),
        Want::FormErr,
    );
    add(
        "two pointers to each other",
        [header(1, 0, 0, 0), vec![0xC0, 14, 0xC0, 12, 0, 1, 0, 1]].concat(),
        Want::FormErr,
    );
    add(
        "label then a pointer back to it (loop)",
        [header(1, 0, 0, 0), vec![1, b'a', 0xC0, 12, 0, 1, 0, 1]].concat(),
        Want::FormErr,
    );
    add(
        "pointer past the end",
        [header(1, 0, 0, 0), vec![0xC0, 0xFF, 0, 1, 0, 1]].concat(),
        Want::FormErr,
    );
    add(
        "pointer cut in half",
        [header(1, 0, 0, 0), vec![0xC0]].concat(),
        Want::FormErr,
    );
    add(
        "extended label type 0x40",
        [header(1, 0, 0, 0), vec![0x41, b'a', 0, 0, 1, 0, 1]].concat(),
        Want::FormErr,
    );
    add(
        "reserved label type 0x80",
        [header(1, 0, 0, 0), vec![0x81, b'a', 0, 0, 1, 0, 1]].concat(),
        Want::FormErr,
    );
    let mut long = header(1, 0, 0, 0);
    for _ in 0..5 {
        long.push(63);
        long.extend_from_slice(&[b'x'; 63]);
    }
    long.extend_from_slice(&[0, 0, 1, 0, 1]);
    add("name longer than 255 octets", long, Want::FormErr);

    // Truncations: every cut of a valid query. Below 12 bytes there is no header (drop);
    // from 12 on, the ID is readable (FORMERR).
    let q = valid("web.gslb.example.", RecordType::A);
    for cut in 1..q.len() {
        let want = if cut < 12 { Want::Drop } else { Want::FormErr };
        add(
            &format!("valid query cut at {cut}"),
            q[..cut].to_vec(),
            want,
        );
    }
    add("empty datagram", Vec::new(), Want::Drop);

    // Counts that promise more than is there.
    let mut p = valid("web.gslb.example.", RecordType::A);
    p[7] = 1;
    add("ANCOUNT 1, no answer", p, Want::FormErr);
    let mut p = valid("web.gslb.example.", RecordType::A);
    p[11] = 3;
    add("ARCOUNT 3, no records", p, Want::FormErr);

    // Oversize: a valid question followed by 4 KiB of garbage.
    let mut rng = SmallRng::seed_from_u64(4096);
    let mut p = valid("web.gslb.example.", RecordType::A);
    p.extend((0..4096).map(|_| rng.random::<u8>()));
    add("valid question + 4 KiB garbage", p, Want::FormErr);
    let mut p = valid("web.gslb.example.", RecordType::A);
    p.extend(std::iter::repeat_n(0u8, 60_000));
    add("valid question + 60 000 zero bytes", p, Want::FormErr);

    // OPT and ECS (RFC 6891 §6.1.1, RFC 7871 §6).
    add(
        "ECS family 3",
        with_opt(&ecs(&[0, 3, 24, 0, 10, 0, 0])),
        Want::FormErr,
    );
    add(
        "ECS IPv4 source prefix 33",
        with_opt(&ecs(&[0, 1, 33, 0, 10, 0, 0, 0, 0])),
        Want::FormErr,
    );
    add(
        "ECS address longer than the prefix needs",
        with_opt(&ecs(&[0, 1, 8, 0, 10, 0, 0, 0])),
        Want::FormErr,
    );
    add(
        "ECS address bits set beyond the prefix",
        with_opt(&ecs(&[0, 1, 20, 0, 10, 20, 1])),
        Want::FormErr,
    );
    add(
        "ECS scope non-zero in a query",
        with_opt(&ecs(&[0, 1, 24, 24, 10, 20, 1])),
        Want::FormErr,
    );
    add(
        "ECS shorter than its fixed part",
        with_opt(&ecs(&[0, 1])),
        Want::FormErr,
    );
    add(
        "option length past the OPT RDATA",
        with_opt(&[0, 8, 0, 40, 0, 1, 24, 0]),
        Want::FormErr,
    );
    add(
        "OPT RDLENGTH past the end",
        {
            let mut p = with_opt(&[]);
            let n = p.len();
            p[n - 1] = 200;
            p
        },
        Want::FormErr,
    );
    let mut two_opt = with_opt(&[]);
    two_opt[11] = 2;
    two_opt.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
    add("two OPT records", two_opt, Want::FormErr);
    let mut p = header(1, 0, 0, 1);
    p.extend_from_slice(b"\x03web\x04gslb\x07example\x00\x00\x01\x00\x01");
    p.extend_from_slice(b"\x01x\x00\x00\x29\x04\xD0\x00\x00\x00\x00\x00\x00");
    add("OPT not owned by the root", p, Want::FormErr);

    // A response (QR set) must never be answered: no reflection loops.
    let mut p = valid("web.gslb.example.", RecordType::A);
    p[2] |= 0x80;
    add("a response (QR set)", p, Want::Drop);
    v
}

/// Random packets of many lengths: for each length, two with QR clear and opcode QUERY
/// (FORMERR expected once a header is there) and one with QR set (dropped).
fn random_packets() -> Vec<(String, Vec<u8>, Want)> {
    let mut rng = SmallRng::seed_from_u64(0x5167_9057);
    let mut lengths: Vec<usize> = (0..=80).collect();
    lengths.extend([
        100, 255, 256, 300, 511, 512, 513, 1000, 1232, 1233, 1500, 4096, 8192, 65_000,
    ]);
    let mut v = Vec::new();
    for len in lengths {
        for variant in 0..3 {
            let mut p: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let want = if len < 12 {
                Want::Drop
            } else if variant < 2 {
                p[2] &= 0x07; // QR clear, opcode QUERY
                Want::FormErr
            } else {
                p[2] |= 0x80;
                Want::Drop
            };
            v.push((format!("random {len} bytes #{variant}"), p, want));
        }
    }
    v
}

/// Sends every packet over one UDP socket and checks each answer; a packet that must be
/// dropped is proven dropped by the next answer (or the final probe) arriving in its place.
fn send_all_udp(server: &Signpost, packets: &[(String, Vec<u8>, Want)]) {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    s.connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = vec![0u8; 65535];
    for (what, p, want) in packets {
        s.send(p).unwrap();
        if *want == Want::Drop {
            continue;
        }
        let n = s
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{what}: no FORMERR ({e}) to {p:02x?}:\n{}", server.log()));
        check_formerr(what, p, &buf[..n]);
    }
    // Nothing is pending: the next datagram is the answer to this probe.
    let probe = common::query(ZONE, RecordType::SOA);
    s.send(&probe.to_vec().unwrap()).unwrap();
    let n = s.recv(&mut buf).expect("an answer to the final probe");
    let h = Header::read(&buf[..n]);
    assert_eq!(
        h.id, probe.metadata.id,
        "an answer to a dropped packet arrived"
    );
    assert_eq!(h.rcode_low, 0);
}

fn check_formerr(what: &str, query: &[u8], answer: &[u8]) {
    let h = Header::read(answer);
    let id = u16::from_be_bytes([query[0], query[1]]);
    assert_eq!(h.id, id, "{what}: ID");
    assert!(h.qr, "{what}: QR");
    assert!(!h.ra && !h.aa && !h.tc, "{what}: flags {h:?}");
    assert_eq!(h.rcode_low, FORMERR, "{what}: rcode {h:?}");
    assert_eq!(h.opcode, 0, "{what}: opcode");
    assert!(
        h.counts[AN] == 0 && h.counts[NS] == 0,
        "{what}: records in a FORMERR: {h:?}"
    );
    assert!(h.counts[QD] <= 1, "{what}: {h:?}");
}

#[test]
fn malformed_udp_never_crashes_or_stalls() {
    let t0 = Instant::now();
    let mut server = start();
    let crafted = crafted();
    let random = random_packets();
    send_all_udp(&server, &crafted);
    send_all_udp(&server, &random);
    server.assert_answers(ZONE);
    // Sanity of the test itself: both kinds were exercised.
    for set in [&crafted, &random] {
        assert!(set.iter().any(|(_, _, w)| *w == Want::Drop));
        assert!(set.iter().any(|(_, _, w)| *w == Want::FormErr));
    }
    assert!(t0.elapsed() < BUDGET, "took {:?}", t0.elapsed());
}

#[test]
fn malformed_tcp_never_crashes_or_stalls() {
    let t0 = Instant::now();
    let mut server = start();

    // FORMERR over TCP, then the same connection still answers (RFC 7766 §6.2.1).
    let mut s = common::tcp_connect(server.addr).unwrap();
    for (what, p, want) in crafted() {
        if want != Want::FormErr || p.len() > usize::from(u16::MAX) {
            continue;
        }
        common::tcp_send(&mut s, &p).unwrap();
        let a = common::tcp_recv(&mut s)
            .unwrap_or_else(|e| panic!("{what} over TCP: no FORMERR ({e}):\n{}", server.log()));
        check_formerr(&what, &p, &a);
    }
    let q = common::query(ZONE, RecordType::SOA);
    common::tcp_send(&mut s, &q.to_vec().unwrap()).unwrap();
    let a = common::tcp_recv(&mut s).unwrap();
    assert_eq!(Header::read(&a).id, q.metadata.id);
    drop(s);

    // A length prefix larger than what follows, then the client closes its side: the
    // server gives up on the message and closes, without answering.
    let mut s = common::tcp_connect(server.addr).unwrap();
    let p = valid("web.gslb.example.", RecordType::A);
    let mut framed = 1000u16.to_be_bytes().to_vec();
    framed.extend_from_slice(&p);
    s.write_all(&framed).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_closed_without_answer(&mut s, "short message then EOF");

    // A zero-length message, and a response (QR set): nothing to answer; closed.
    for (what, p) in [
        ("zero-length message", Vec::new()),
        ("a response", {
            let mut p = valid("web.gslb.example.", RecordType::A);
            p[2] |= 0x80;
            p
        }),
        ("4 bytes", vec![1, 2, 3, 4]),
    ] {
        let mut s = common::tcp_connect(server.addr).unwrap();
        common::tcp_send(&mut s, &p).unwrap();
        assert_closed_without_answer(&mut s, what);
    }

    // Stalled clients (half a length prefix; a message cut short) hold nothing up: others
    // are served meanwhile, and the stalled connections are closed after the idle timeout.
    let mut half_prefix = common::tcp_connect(server.addr).unwrap();
    half_prefix.write_all(&[0]).unwrap();
    let mut half_message = common::tcp_connect(server.addr).unwrap();
    let mut framed = u16::try_from(p.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&p[..10]);
    half_message.write_all(&framed).unwrap();
    server.assert_answers(ZONE);
    let stalled_at = Instant::now();
    assert_closed_without_answer(&mut half_prefix, "half a length prefix");
    assert_closed_without_answer(&mut half_message, "a message cut short");
    assert!(stalled_at.elapsed() < Duration::from_secs(4));

    // Random bytes as TCP messages, each on its own connection: FORMERR or closed.
    let mut rng = SmallRng::seed_from_u64(7766);
    for len in [12usize, 13, 17, 29, 100, 512, 4000, 65_535] {
        let mut p: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        p[2] &= 0x07; // QR clear, opcode QUERY
        let mut s = common::tcp_connect(server.addr).unwrap();
        common::tcp_send(&mut s, &p).unwrap();
        let a = common::tcp_recv(&mut s)
            .unwrap_or_else(|e| panic!("random {len} bytes over TCP: no FORMERR ({e})"));
        check_formerr(&format!("random {len} bytes over TCP"), &p, &a);
    }

    server.assert_answers(ZONE);
    assert!(t0.elapsed() < BUDGET, "took {:?}", t0.elapsed());
}

/// The server closes `s` (EOF) within the IO timeout and sends nothing first.
fn assert_closed_without_answer(s: &mut std::net::TcpStream, what: &str) {
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{what}: {n} bytes came back, expected a close"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{what}: not closed ({e})"),
    }
}
