//! Interop: a real Unbound (Debian's package) with a stub zone pointing at signpost
//! resolves static names, CNAME chains, wildcards, NODATA and NXDOMAIN through it, and
//! falls back to TCP when signpost truncates. This is what corporate DNS does when it
//! delegates or conditionally forwards a subdomain. Needs `--features interop`.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Daemon, Setup, Signpost};
use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};

const ZONE: &str = r#"$ORIGIN gslb.example.
$TTL 300
@     3600 IN SOA ns1 hostmaster 2026112101 3600 600 1209600 60
           IN NS  ns1
ns1        IN A   127.0.0.1
web        IN A   192.0.2.80
           IN AAAA 2001:db8::80
www        IN CNAME web
alias      IN CNAME www
*.wild     IN A   192.0.2.99
"#;

/// 30 TXT strings of 40 octets: about 1600 bytes, more than signpost sends over UDP.
fn huge_txt() -> Vec<String> {
    (0..30)
        .map(|i| format!("huge-{i:02}-{}", "y".repeat(32)))
        .collect()
}

/// A running unbound, killed when dropped.
struct Unbound {
    daemon: Daemon,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Unbound {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("unbound.log")).unwrap_or_default()
    }

    /// One query with RD set, over UDP (EDNS 1232) or TCP.
    fn ask(&self, name: &str, rtype: RecordType, tcp: bool) -> Message {
        let mut q = common::with_edns(common::query(name, rtype), 0, 1232);
        q.metadata.recursion_desired = true;
        let wire = q.to_vec().unwrap();
        let a = if tcp {
            common::tcp_exchange(self.addr, &wire)
        } else {
            common::udp_exchange(self.addr, &wire, common::IO_TIMEOUT)
        }
        .unwrap_or_else(|e| panic!("unbound did not answer {name} {rtype}: {e}\n{}", self.log()));
        let m = Message::from_vec(&a).unwrap();
        assert_eq!(m.metadata.id, q.metadata.id);
        m
    }
}

/// Starts unbound on a free loopback port, with gslb.example stubbed to `signpost`.
fn start_unbound(signpost: SocketAddr) -> Unbound {
    let bin = common::tool("unbound");
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let conf = include_str!("../bench/lib/unbound-stub.conf.in")
            .replace("@PORT@", &port.to_string())
            .replace("@DIR@", &dir.path().display().to_string())
            .replace("@ZONE@", "gslb.example")
            .replace("@STUB@", &format!("127.0.0.1@{}", signpost.port()));
        let conf_path = dir.path().join("unbound.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let checkconf = common::tool("unbound-checkconf");
        let out = Command::new(checkconf).arg(&conf_path).output().unwrap();
        assert!(
            out.status.success(),
            "unbound-checkconf rejects the generated config:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut u = Unbound {
            daemon: Daemon::spawn(Command::new(&bin).arg("-d").arg("-c").arg(&conf_path)),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            dir,
        };
        // Ready once it answers anything (REFUSED would mean a config mistake: checked
        // by the caller's assertions).
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut exited = false;
        while Instant::now() < deadline {
            if u.daemon.exited() {
                exited = true;
                break;
            }
            let q = common::query("gslb.example.", RecordType::SOA);
            if common::udp_exchange(u.addr, &q.to_vec().unwrap(), Duration::from_millis(300))
                .is_ok()
            {
                return u;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = u.log();
        if exited && log.contains("could not open ports") {
            continue; // the port was taken meanwhile: another one
        }
        panic!("unbound did not start:\n{log}");
    }
    panic!("unbound did not start in 5 attempts");
}

fn rcode(m: &Message) -> u16 {
    u16::from(m.metadata.response_code)
}

#[test]
fn unbound_resolves_through_signpost() {
    let mut zone = ZONE.to_owned();
    for t in huge_txt() {
        zone.push_str(&format!("huge IN TXT \"{t}\"\n"));
    }
    let mut signpost = Signpost::start(&Setup::new(&[("gslb.example.zone", &zone)]));
    let unbound = start_unbound(signpost.addr);
    let ctx = |m: &Message| format!("{m}\nunbound log:\n{}", unbound.log());

    // A static name.
    let m = unbound.ask("web.gslb.example.", RecordType::A, false);
    assert_eq!(rcode(&m), 0, "{}", ctx(&m));
    assert!(m.metadata.recursion_available, "{}", ctx(&m));
    let a: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(a, ["192.0.2.80"], "{}", ctx(&m));

    // AAAA at the same name, and a wildcard: one record each.
    for (name, rtype, want) in [
        ("web.gslb.example.", RecordType::AAAA, "2001:db8::80"),
        ("anything.wild.gslb.example.", RecordType::A, "192.0.2.99"),
    ] {
        let m = unbound.ask(name, rtype, false);
        assert_eq!(rcode(&m), 0, "{}", ctx(&m));
        assert_eq!(m.answers.len(), 1, "{}", ctx(&m));
        assert_eq!(m.answers[0].data.to_string(), want);
    }

    // A CNAME chain, in order: alias -> www -> web -> A.
    let m = unbound.ask("alias.gslb.example.", RecordType::A, false);
    assert_eq!(rcode(&m), 0, "{}", ctx(&m));
    let chain: Vec<(String, String)> = m
        .answers
        .iter()
        .map(|r| (r.name.to_string(), r.data.to_string()))
        .collect();
    assert_eq!(
        chain,
        [
            ("alias.gslb.example.".into(), "www.gslb.example.".into()),
            ("www.gslb.example.".into(), "web.gslb.example.".into()),
            ("web.gslb.example.".into(), "192.0.2.80".into()),
        ],
        "{}",
        ctx(&m)
    );

    // NXDOMAIN, with the zone's SOA (TTL at most the negative TTL, 60).
    let m = unbound.ask("nosuch.gslb.example.", RecordType::A, false);
    assert_eq!(rcode(&m), 3, "{}", ctx(&m));
    assert!(m.answers.is_empty(), "{}", ctx(&m));
    match &m.authorities[..] {
        [soa] => {
            assert!(matches!(soa.data, RData::SOA(_)), "{}", ctx(&m));
            assert!(soa.ttl <= 60, "{}", ctx(&m));
        }
        _ => panic!("one SOA in authority expected: {}", ctx(&m)),
    }

    // NODATA.
    let m = unbound.ask("web.gslb.example.", RecordType::MX, false);
    assert_eq!(rcode(&m), 0, "{}", ctx(&m));
    assert!(m.answers.is_empty(), "{}", ctx(&m));
    assert!(
        m.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA),
        "{}",
        ctx(&m)
    );

    // An answer larger than 1232 bytes: signpost truncates over UDP, unbound retries
    // over TCP and gets all 30 records (asked over TCP here, so it can pass them on).
    let m = unbound.ask("huge.gslb.example.", RecordType::TXT, true);
    assert_eq!(rcode(&m), 0, "{}", ctx(&m));
    let mut got: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    got.sort();
    assert_eq!(got, huge_txt(), "{}", ctx(&m));

    signpost.assert_running();
}
