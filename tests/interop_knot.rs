//! Differential test: signpost and Knot DNS (Debian `knot`) serve the same zone on
//! loopback and answer the same generated queries (names × types × EDNS variants × UDP
//! and TCP, plus classes and header flags); the answers must agree on RCODE, flags
//! (AA, TC, RD, CD), every section as a set and the OPT (present, version, DO), every
//! opcode (RCODE and flags), except
//! for the short list of intended differences below, each with its reason.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Daemon, Setup, Signpost};
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, Name, RecordType};

/// [`common::DNS_ZONE`] with the kinds of records only this comparison covers.
const EXTRA: &str = r#"ns2            IN AAAA 2001:db8::2
web            IN A   192.0.2.81
deleg          IN CNAME host.sub
sub            IN NS  ns.elsewhere.example.
sub            IN DS  60485 8 2 D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A
unsigned       IN NS  ns1
caa            IN CAA 0 issue "ca.example"
ptr            IN PTR web
private        IN TYPE65280 \# 4 0A000001
"#;

fn big() -> String {
    let mut z = String::new();
    for i in 0..12 {
        z += &format!("big IN TXT \"big-{i:02}-{}\"\n", "x".repeat(33));
    }
    for i in 0..40 {
        z += &format!("mx IN MX 10 m{i}\nm{i} IN AAAA 2001:db8::{i}\n");
    }
    z
}

struct Knot {
    daemon: Daemon,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Knot {
    fn start(zone: &str) -> Knot {
        let bin = common::tool("knotd");
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = common::free_port();
            std::fs::write(dir.path().join("gslb.example.zone"), zone).unwrap();
            let d = dir.path().display();
            let conf = format!(
                "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\n\
                 log:\n  - target: stderr\n    any: error\n\
                 database:\n    storage: {d}/db\n\
                 template:\n  - id: default\n    storage: {d}\n    semantic-checks: off\n\
                 zone:\n  - domain: gslb.example\n    file: gslb.example.zone\n"
            );
            let conf_path = dir.path().join("knot.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let mut k = Knot {
                daemon: Daemon::spawn(Command::new(&bin).arg("-c").arg(&conf_path)),
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if k.daemon.exited() {
                    break;
                }
                let q = common::query("gslb.example.", RecordType::SOA);
                if let Ok(a) =
                    common::udp_exchange(k.addr, &q.to_vec().unwrap(), Duration::from_millis(300))
                    && Message::from_vec(&a).is_ok_and(|m| !m.answers.is_empty())
                {
                    return k;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("knotd did not start");
    }
}

#[derive(Clone, Copy, Debug)]
enum EdnsVariant {
    None,
    V0,
    V0Do,
    V0Small,
    V1,
    UnknownOption,
}

fn build(
    name: &str,
    rtype: RecordType,
    class: DNSClass,
    e: EdnsVariant,
    rd: bool,
    cd: bool,
) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x4242;
    m.metadata.recursion_desired = rd;
    m.metadata.checking_disabled = cd;
    let mut q = Query::query(Name::from_ascii(name).unwrap(), rtype);
    q.set_query_class(class);
    m.add_query(q);
    let edns = |version: u8, payload: u16, dnssec: bool| {
        let mut x = Edns::new();
        x.set_version(version);
        x.set_max_payload(payload);
        x.set_dnssec_ok(dnssec);
        x
    };
    m.edns = match e {
        EdnsVariant::None => None,
        EdnsVariant::V0 => Some(edns(0, 1232, false)),
        EdnsVariant::V0Do => Some(edns(0, 4096, true)),
        EdnsVariant::V0Small => Some(edns(0, 512, false)),
        EdnsVariant::V1 => Some(edns(1, 1232, false)),
        EdnsVariant::UnknownOption => {
            let mut x = edns(0, 1232, false);
            x.options_mut()
                .insert(EdnsOption::Unknown(100, vec![1, 2, 3]));
            Some(x)
        }
    };
    m.to_vec().unwrap()
}

/// What is compared of an answer.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    rcode: u16,
    aa: bool,
    tc: bool,
    rd: bool,
    cd: bool,
    answer: BTreeSet<String>,
    authority: BTreeSet<String>,
    additional: BTreeSet<String>,
    /// (version, DO) of the OPT.
    opt: Option<(u8, bool)>,
}

fn seen(a: &[u8], sections: bool) -> Seen {
    let m = Message::from_vec(a).unwrap();
    let set = |rs: &[hickory_proto::rr::Record]| -> BTreeSet<String> {
        if sections {
            rs.iter()
                .map(|r| r.to_string().to_ascii_lowercase())
                .collect()
        } else {
            BTreeSet::new()
        }
    };
    let ext = m
        .edns
        .as_ref()
        .map_or(0, |e| u16::from(e.rcode_high()) << 4);
    Seen {
        rcode: u16::from(m.metadata.response_code) & 0xF | ext,
        aa: m.metadata.authoritative,
        tc: m.metadata.truncation,
        rd: m.metadata.recursion_desired,
        cd: m.metadata.checking_disabled,
        answer: set(&m.answers),
        authority: set(&m.authorities),
        additional: set(&m.additionals),
        opt: m.edns.as_ref().map(|e| (e.version(), e.flags().dnssec_ok)),
    }
}

#[test]
fn signpost_answers_like_knot() {
    let zone = format!("{}{EXTRA}{}", common::DNS_ZONE, big());
    let sp = Signpost::start(&Setup::new(&[("gslb.example.zone", &zone)]));
    let knot = Knot::start(&zone);

    let names = [
        "gslb.example.",
        "GSLB.Example.",
        "ns1.gslb.example.",
        "ns2.gslb.example.",
        "web.gslb.example.",
        "www.gslb.example.",
        "alias.gslb.example.",
        "dangling.gslb.example.",
        "out.gslb.example.",
        "deleg.gslb.example.",
        "mail.gslb.example.",
        "_sip._tcp.gslb.example.",
        "_tcp.gslb.example.",
        "a.b.c.gslb.example.",
        "b.c.gslb.example.",
        "c.gslb.example.",
        "nx.gslb.example.",
        "deep.nx.gslb.example.",
        "sub.gslb.example.",
        "x.sub.gslb.example.",
        "ns.sub.gslb.example.",
        "unsigned.gslb.example.",
        "any.wild.gslb.example.",
        "exists.wild.gslb.example.",
        "ent.wild.gslb.example.",
        "a.b.wild.gslb.example.",
        "x.wc.gslb.example.",
        "big.gslb.example.",
        "mx.gslb.example.",
        "caa.gslb.example.",
        "ptr.gslb.example.",
        "private.gslb.example.",
        "www.example.org.",
        "example.",
    ];
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::NS,
        RecordType::SOA,
        RecordType::MX,
        RecordType::TXT,
        RecordType::SRV,
        RecordType::CNAME,
        RecordType::PTR,
        RecordType::CAA,
        RecordType::DS,
        RecordType::Unknown(65280),
        RecordType::Unknown(1000),
        RecordType::ANY,
    ];
    let variants = [
        EdnsVariant::None,
        EdnsVariant::V0,
        EdnsVariant::V0Do,
        EdnsVariant::V0Small,
        EdnsVariant::V1,
        EdnsVariant::UnknownOption,
    ];
    let mut queries = Vec::new();
    for name in names {
        for rtype in types {
            for e in variants {
                queries.push((name, rtype, DNSClass::IN, e, false, false));
            }
        }
        for class in [DNSClass::ANY, DNSClass::CH, DNSClass::HS] {
            queries.push((name, RecordType::A, class, EdnsVariant::V0, false, false));
        }
        for (rd, cd) in [(true, false), (false, true), (true, true)] {
            queries.push((name, RecordType::A, DNSClass::IN, EdnsVariant::None, rd, cd));
        }
    }
    let mut compared = 0usize;
    let mut differences = Vec::new();
    for &(name, rtype, class, e, rd, cd) in &queries {
        let wire = build(name, rtype, class, e, rd, cd);
        for tcp in [false, true] {
            let (a, b) = if tcp {
                (
                    sp.tcp(&wire),
                    common::tcp_exchange(knot.addr, &wire).unwrap(),
                )
            } else {
                (
                    sp.udp(&wire),
                    common::udp_exchange(knot.addr, &wire, Duration::from_secs(2)).unwrap(),
                )
            };
            // Intended differences (each reviewed):
            // 1. ANY: RFC 8482 §4.1 lets each server pick the RRset(s) it answers; only
            //    RCODE and flags are compared.
            // 2. Truncated answers: what a server leaves in a TC answer is its choice
            //    (RFC 2181 §9); only RCODE and flags are compared.
            // 3. Class ANY: signpost answers it as IN without AA (RFC 1034 §3.7.1); Knot
            //    refuses it. Class CH: signpost serves only id.server./hostname.bind.
            let mut sections = rtype != RecordType::ANY;
            let sa = seen(&a, true);
            if sa.tc {
                sections = false;
            }
            if class == DNSClass::ANY || class == DNSClass::CH {
                continue;
            }
            let (sa, mut sb) = (seen(&a, sections), seen(&b, sections));
            // 4. CD: signpost copies it (RFC 6895 §2: "copied from the query to the
            //    response"); Knot clears it. Checked against the query instead.
            assert_eq!(sa.cd, cd, "{name}: CD copied");
            sb.cd = sa.cd;
            compared += 1;
            if sa != sb {
                differences.push(format!(
                    "{name} {rtype} {class} {e:?} rd={rd} cd={cd} tcp={tcp}\n  signpost: {sa:?}\n  knot:     {sb:?}"
                ));
            }
        }
    }
    // Every other opcode, with and without EDNS: header only, RCODE and flags.
    for opcode in 1u8..16 {
        for e in [EdnsVariant::None, EdnsVariant::V0] {
            let mut wire = build(
                "gslb.example.",
                RecordType::SOA,
                DNSClass::IN,
                e,
                true,
                true,
            );
            wire[2] = (wire[2] & 0x87) | (opcode << 3);
            let a = sp.udp(&wire);
            let b = common::udp_exchange(knot.addr, &wire, Duration::from_secs(2)).unwrap();
            compared += 1;
            // 5. NOTIFY and UPDATE: Knot answers NOTAUTH (it has no ACL allowing them);
            //    signpost implements neither opcode: NOTIMP (RFC 1035 §4.1.1).
            // 6. The unknown opcodes' answers: signpost sends the header alone with RD
            //    and CD copied (genreport's opcodeflg); Knot echoes the question and OPT
            //    and clears CD. Only the RCODE and AA/TC/RD are compared for them.
            let head = |p: &[u8]| (p[2], p[3] & 0x0F);
            let (ha, hb) = (head(&a), head(&b));
            let expected_apart = matches!(opcode, 4 | 5) && ha.1 == 4 && hb.1 == 9;
            if ha != hb && !expected_apart {
                differences.push(format!(
                    "opcode {opcode} {e:?}\n  signpost: {a:02x?}\n  knot:     {b:02x?}"
                ));
            }
        }
    }
    eprintln!(
        "{compared} exchanges compared, {} differ",
        differences.len()
    );
    assert!(
        differences.is_empty(),
        "{} of {compared} differ:\n{}",
        differences.len(),
        differences[..differences.len().min(30)].join("\n")
    );
}
