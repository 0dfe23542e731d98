//! DESIGN.md "DNS semantics", the conformance points: each test is an exchange through
//! [`respond`](super::respond), the answer read back with hickory-proto.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use super::engine::{Scratch, Transport, respond};
use crate::config::Problems;
use crate::policy::testutil::try_load_zone;
use crate::snapshot::Snapshot;

const HEAD: &str = "$ORIGIN gslb.example.
$TTL 300
@       IN SOA ns1 hostmaster 1 3600 600 86400 60
        IN NS  ns1
ns1     IN A   192.0.2.1
";

/// Serves `gslb.example.` (HEAD then `records`) with the profiles of `toml`.
fn try_load(records: &str, toml: &str) -> Result<Snapshot, Problems> {
    try_load_zone(&format!("{HEAD}{records}"), toml, 1)
}

fn load(records: &str, toml: &str) -> Snapshot {
    try_load(records, toml).unwrap()
}

/// The raw answer to `packet` over `transport`.
fn exchange(snap: &Snapshot, packet: &[u8], transport: Transport) -> Vec<u8> {
    let mut out = Vec::new();
    let source: IpAddr = "127.0.0.1".parse().unwrap();
    let o = respond(
        snap,
        packet,
        &mut Scratch::default(),
        source,
        transport,
        &mut out,
    );
    assert!(o.respond, "no answer");
    out
}

fn query(name: &str, rtype: RecordType, class: DNSClass, edns: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    let mut q = HQuery::query(Name::from_ascii(name).unwrap(), rtype);
    q.set_query_class(class);
    m.add_query(q);
    if edns {
        m.edns = Some(Edns::new());
    }
    m.to_vec().unwrap()
}

/// The answer to `name` `rtype` in `class` over `transport`, read back.
fn ask_in(
    snap: &Snapshot,
    name: &str,
    rtype: RecordType,
    class: DNSClass,
    transport: Transport,
) -> Message {
    let out = exchange(snap, &query(name, rtype, class, false), transport);
    Message::from_vec(&out).unwrap()
}

fn ask(snap: &Snapshot, name: &str, rtype: RecordType) -> Message {
    ask_in(snap, name, rtype, DNSClass::IN, Transport::Udp)
}

fn texts(rs: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut v: Vec<String> = rs.iter().map(|r| r.to_string()).collect();
    v.sort();
    v
}

/// A plain UDP query (512 bytes) for an MX RRset whose exchanges' addresses do not fit:
/// the MX records fit, so they are answered without TC and without the addresses.
#[test]
fn tc_only_when_the_answer_does_not_fit() {
    let mut z = String::new();
    for i in 0..8 {
        z += &format!("mx MX 10 m{i}\n");
        for j in 0..4 {
            z += &format!("m{i} AAAA 2001:db8::{i}:{j}\n");
        }
    }
    let snap = load(&z, "");
    let out = exchange(
        &snap,
        &query("mx.gslb.example.", RecordType::MX, DNSClass::IN, false),
        Transport::Udp,
    );
    assert!(out.len() <= 512);
    let m = Message::from_vec(&out).unwrap();
    assert!(!m.metadata.truncation, "{m}");
    assert_eq!(m.answers.len(), 8, "{m}");
    // As many whole address RRsets as fit, never part of one (RFC 2181 §5, §9).
    assert!(m.additionals.len() < 32, "{m}");
    let mut per_owner = std::collections::BTreeMap::new();
    for r in &m.additionals {
        *per_owner.entry(r.name.to_string()).or_insert(0) += 1;
    }
    assert!(per_owner.values().all(|&n| n == 4), "{m}");
    // Over TCP everything is there.
    let m = ask_in(
        &snap,
        "mx.gslb.example.",
        RecordType::MX,
        DNSClass::IN,
        Transport::Tcp,
    );
    assert_eq!(m.additionals.len(), 32, "{m}");

    // 40 exchanges with EDNS (1232 bytes): the MX records fit once the addresses go.
    let mut z = String::new();
    for i in 0..40 {
        z += &format!("mx MX 10 m{i}\nm{i} AAAA 2001:db8::{i}\n");
    }
    let snap = load(&z, "");
    let mut p = query("mx.gslb.example.", RecordType::MX, DNSClass::IN, false);
    p[11] = 1;
    p.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
    let out = exchange(&snap, &p, Transport::Udp);
    let m = Message::from_vec(&out).unwrap();
    // The MX names are compressed too (RFC 3597 §4): uncompressed they would not fit.
    assert!(!m.metadata.truncation, "{} bytes: {m}", out.len());
    assert_eq!(m.answers.len(), 40, "{m}");
}

#[test]
fn cname_into_a_delegation_ends_in_the_referral() {
    let snap = load(
        "alias CNAME host.sub\nsub NS ns.sub\nns.sub A 192.0.2.53\n",
        "",
    );
    let m = ask(&snap, "alias.gslb.example.", RecordType::A);
    assert_eq!(
        texts(&m.answers),
        ["alias.gslb.example. 300 IN CNAME host.sub.gslb.example."],
        "{m}"
    );
    assert_eq!(
        texts(&m.authorities),
        ["sub.gslb.example. 300 IN NS ns.sub.gslb.example."],
        "{m}"
    );
    assert_eq!(
        texts(&m.additionals),
        ["ns.sub.gslb.example. 300 IN A 192.0.2.53"],
        "{m}"
    );
    assert!(
        m.metadata.authoritative,
        "AA stands for the CNAME (RFC 1035 §4.1.1)"
    );
}

#[test]
fn class_any_is_never_authoritative() {
    let snap = load("", "");
    let m = ask_in(
        &snap,
        "ns1.gslb.example.",
        RecordType::A,
        DNSClass::ANY,
        Transport::Udp,
    );
    assert_eq!(m.answers.len(), 1, "{m}");
    assert!(!m.metadata.authoritative, "{m}");
    // Class IN still is.
    assert!(
        ask(&snap, "ns1.gslb.example.", RecordType::A)
            .metadata
            .authoritative
    );
}

/// A query for `a.gslb.example. A` with an OPT of the given owner and RDATA.
fn with_opt(owner: &[u8], rdata: &[u8]) -> Vec<u8> {
    let mut p = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    p.extend_from_slice(b"\x01a\x04gslb\x07example\x00\x00\x01\x00\x01");
    p.extend_from_slice(owner);
    p.extend_from_slice(&[0, 41, 0x04, 0xD0, 0, 0, 0, 0]);
    p.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    p.extend_from_slice(rdata);
    p
}

/// An ECS option (code 8) with `body` (family, source, scope, address).
fn ecs(body: &[u8]) -> Vec<u8> {
    let mut o = vec![0, 8];
    o.extend_from_slice(&(body.len() as u16).to_be_bytes());
    o.extend_from_slice(body);
    o
}

#[test]
fn formerr_for_malformed_edns_carries_an_opt() {
    let snap = load("", "");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("ECS family 0", with_opt(b"\0", &ecs(&[0, 0, 0, 0]))),
        ("ECS family 3", with_opt(b"\0", &ecs(&[0, 3, 8, 0, 10]))),
        (
            "ECS scope not 0",
            with_opt(b"\0", &ecs(&[0, 1, 24, 8, 10, 1, 2])),
        ),
        (
            "ECS extra address bytes",
            with_opt(b"\0", &ecs(&[0, 1, 8, 0, 10, 1])),
        ),
        (
            "ECS bits past the prefix",
            with_opt(b"\0", &ecs(&[0, 1, 20, 0, 10, 20, 1])),
        ),
        (
            "option longer than the OPT",
            with_opt(b"\0", &[0, 10, 0, 8, 1, 2]),
        ),
        ("OPT not owned by the root", with_opt(b"\x01x\0", &[])),
        ("QDCOUNT 0 with an OPT", {
            let mut p = vec![0xAB, 0xCD, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 1];
            p.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
            p
        }),
    ];
    for (what, packet) in cases {
        let out = exchange(&snap, &packet, Transport::Udp);
        let m = Message::from_vec(&out).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(m.metadata.id, 0xABCD, "{what}");
        assert_eq!(m.metadata.message_type, MessageType::Response, "{what}");
        assert_eq!(u16::from(m.metadata.response_code), 1, "{what}: {m}");
        let opt = m
            .edns
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: no OPT: {m}"));
        assert_eq!(opt.version(), 0, "{what}");
        assert!(m.answers.is_empty(), "{what}");
    }
}

#[test]
fn other_opcodes_get_notimp_without_question_or_opt() {
    let snap = load("", "");
    for opcode in [1u8, 2, 3, 4, 5, 6, 15] {
        for edns in [false, true] {
            let mut p = query("ns1.gslb.example.", RecordType::A, DNSClass::IN, edns);
            p[2] = (opcode << 3) | 0x01; // RD
            p[3] = 0x10 | 0x20; // CD, AD
            let out = exchange(&snap, &p, Transport::Udp);
            let what = format!("opcode {opcode}, EDNS {edns}");
            assert_eq!(&out[..2], &p[..2], "{what}: ID");
            assert_eq!(out.len(), 12, "{what}: header only");
            assert_eq!(
                out[2],
                0x80 | (opcode << 3) | 0x01,
                "{what}: QR, opcode, RD"
            );
            assert_eq!(out[3], 0x10 | 4, "{what}: CD, NOTIMP, no AD");
            assert_eq!(&out[4..], &[0; 8], "{what}: counts");
        }
    }
}

#[test]
fn opt_in_the_answer_section_and_malformed_tsig_are_formerr() {
    let snap = load("", "");
    // ANCOUNT 1: an OPT record there.
    let mut p = vec![0, 7, 0x01, 0x00, 0, 1, 0, 1, 0, 0, 0, 0];
    p.extend_from_slice(b"\x03ns1\x04gslb\x07example\x00\x00\x01\x00\x01");
    p.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
    let out = exchange(&snap, &p, Transport::Udp);
    assert_eq!(out[3] & 0xF, 1, "OPT in the answer section");

    // A TSIG whose RDATA stops after the algorithm name.
    let tsig = |rdata: &[u8], class: u16| {
        let mut p = vec![0, 8, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(b"\x03ns1\x04gslb\x07example\x00\x00\x01\x00\x01");
        p.extend_from_slice(b"\x03key\x00\x00\xFA");
        p.extend_from_slice(&class.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        p.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        p.extend_from_slice(rdata);
        p
    };
    let alg = b"\x0bhmac-sha256\x00";
    let out = exchange(&snap, &tsig(alg, 255), Transport::Udp);
    assert_eq!(out[3] & 0xF, 1, "TSIG RDATA cut short");
    // Well-formed RDATA but class IN.
    let mut good = alg.to_vec();
    good.extend_from_slice(&[
        0, 0, 0x65, 0, 0, 0, 1, 0x2C, 0, 2, 0xAA, 0xBB, 0, 8, 0, 0, 0, 0,
    ]);
    let out = exchange(&snap, &tsig(&good, 1), Transport::Udp);
    assert_eq!(out[3] & 0xF, 1, "TSIG of class IN");
    // Well formed: not FORMERR.
    let out = exchange(&snap, &tsig(&good, 255), Transport::Udp);
    assert_ne!(out[3] & 0xF, 1, "a well-formed TSIG");
}

#[test]
fn negative_answers_compress_the_soa_names() {
    let snap = load("", "");
    let p = query("nx.gslb.example.", RecordType::A, DNSClass::IN, false);
    let out = exchange(&snap, &p, Transport::Udp);
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(u16::from(m.metadata.response_code), 3);
    let RData::SOA(soa) = &m.authorities[0].data else {
        panic!("{m}")
    };
    assert_eq!(soa.mname.to_string(), "ns1.gslb.example.");
    assert_eq!(soa.rname.to_string(), "hostmaster.gslb.example.");
    // Header, question (nx.gslb.example. A IN), SOA owner pointer, type, class, TTL,
    // RDLENGTH, then "ns1"+pointer, "hostmaster"+pointer and the five numbers.
    let rd_at = 12 + (p.len() - 12) + 2 + 8;
    let rdlen = u16::from_be_bytes([out[rd_at], out[rd_at + 1]]);
    assert_eq!(rdlen, (4 + 2) + (11 + 2) + 20, "{out:?}");
}

const V6_ONLY: &str = r#"
[profiles]
"six.gslb.example" = { method = "priority", endpoints = [{ name = "a", address = "2001:db8::6" }] }
"alias.gslb.example" = { method = "priority", endpoints = [{ name = "a", target = "ns1.gslb.example." }] }
"#;

#[test]
fn any_at_an_ipv6_only_profile_answers_aaaa() {
    let snap = load("", V6_ONLY);
    let m = ask(&snap, "six.gslb.example.", RecordType::ANY);
    assert_eq!(m.answers.len(), 1, "{m}");
    assert_eq!(m.answers[0].record_type(), RecordType::AAAA, "{m}");
}

#[test]
fn any_at_a_cname_profile_answers_the_cname_alone() {
    let snap = load("", V6_ONLY);
    let m = ask(&snap, "alias.gslb.example.", RecordType::ANY);
    assert_eq!(
        texts(&m.answers)
            .iter()
            .map(|t| t.split(' ').nth(3).unwrap().to_owned())
            .collect::<Vec<_>>(),
        ["CNAME"],
        "{m}"
    );
    // A is still chased.
    let m = ask(&snap, "alias.gslb.example.", RecordType::A);
    assert_eq!(m.answers.len(), 2, "{m}");
}

#[test]
fn a_profile_below_a_delegation_is_a_config_error() {
    let toml = r#"
[profiles]
"app.sub.gslb.example" = { method = "priority", endpoints = [{ name = "a", address = "192.0.2.9" }] }
"#;
    let e = try_load("sub NS ns.sub\nns.sub A 192.0.2.53\n", toml)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("below the delegation sub.gslb.example."), "{e}");
    // Beside the delegation it is fine.
    try_load("other NS ns.other\nns.other A 192.0.2.53\n", toml).unwrap();
}

#[test]
fn opcode_query_is_unaffected() {
    let snap = load("", "");
    let m = ask(&snap, "ns1.gslb.example.", RecordType::A);
    assert_eq!(m.metadata.op_code, OpCode::Query);
}

const SIGNED_CHILD: &str = "sub NS ns.sub
ns.sub A 192.0.2.53
sub DS 60485 8 2 ( D4B7D520E7BB5F0F67674A0CCEB1E3E0
                   614B93C4F9E99B8383F6A1E4469DA50A )
old DNAME new.gslb.example.
new A 192.0.2.77
x.new A 192.0.2.78
private TYPE65280 \\# 4 0A000001
";

#[test]
fn zone_files_hold_ds_dname_and_the_generic_form() {
    let snap = load(SIGNED_CHILD, "");
    // RFC 4035 §3.1.4.1: DS at a delegation is the parent's, authoritative.
    let m = ask(&snap, "sub.gslb.example.", RecordType::DS);
    assert!(m.metadata.authoritative, "{m}");
    assert_eq!(m.answers.len(), 1, "{m}");
    assert_eq!(m.answers[0].record_type(), RecordType::DS, "{m}");
    let RData::Unknown { rdata, .. } = &m.answers[0].data else {
        // Without DNSSEC support hickory reads DS as unknown data.
        panic!("{m}")
    };
    let bytes = &rdata.anything[..];
    assert_eq!(&bytes[..4], &[0xEC, 0x45, 8, 2], "{m}");
    assert_eq!(bytes.len(), 4 + 32, "{m}");
    // Everything else there is still the referral.
    let m = ask(&snap, "sub.gslb.example.", RecordType::A);
    assert!(!m.metadata.authoritative, "{m}");
    assert_eq!(m.authorities.len(), 1, "{m}");

    // RFC 3597: TYPE65280 with 4 octets of data.
    let m = ask(&snap, "private.gslb.example.", RecordType::Unknown(65280));
    assert_eq!(m.answers.len(), 1, "{m}");
    let RData::Unknown { rdata, .. } = &m.answers[0].data else {
        panic!("{m}")
    };
    assert_eq!(&rdata.anything[..], &[10, 0, 0, 1]);
}

#[test]
fn dname_synthesises_the_cname() {
    let snap = load(SIGNED_CHILD, "");
    let m = ask(&snap, "x.old.gslb.example.", RecordType::A);
    assert_eq!(u16::from(m.metadata.response_code), 0, "{m}");
    assert!(m.metadata.authoritative, "{m}");
    // hickory-proto reads DNAME as unknown data: its RDATA is the target's wire form.
    assert_eq!(m.answers[0].record_type(), RecordType::DNAME, "{m}");
    assert_eq!(m.answers[0].name.to_string(), "old.gslb.example.");
    let RData::Unknown { rdata, .. } = &m.answers[0].data else {
        panic!("{m}")
    };
    assert_eq!(&rdata.anything[..], b"\x03new\x04gslb\x07example\x00");
    let got: Vec<String> = m.answers[1..].iter().map(|r| r.to_string()).collect();
    assert_eq!(
        got,
        [
            "x.old.gslb.example. 300 IN CNAME x.new.gslb.example.",
            "x.new.gslb.example. 300 IN A 192.0.2.78",
        ],
        "{m}"
    );
    // The DNAME's own name is not redirected.
    let m = ask(&snap, "old.gslb.example.", RecordType::DNAME);
    assert_eq!(m.answers.len(), 1, "{m}");
    // A name under the DNAME whose target does not exist: NXDOMAIN after the CNAME.
    let m = ask(&snap, "nothere.old.gslb.example.", RecordType::A);
    assert_eq!(u16::from(m.metadata.response_code), 3, "{m}");
    assert_eq!(m.answers.len(), 2, "{m}");
}

/// The OPT options of an answer, as (code, data).
fn options(out: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let m = Message::from_vec(out).unwrap();
    let opt = m.edns.as_ref().expect("an OPT");
    opt.options()
        .as_ref()
        .iter()
        .map(|(code, o)| {
            let data = Vec::<u8>::try_from(o).unwrap();
            (u16::from(*code), data)
        })
        .collect()
}

/// `query` with an OPT holding the option `code` with `data`.
fn with_option(name: &str, rtype: RecordType, class: DNSClass, code: u16, data: &[u8]) -> Vec<u8> {
    let mut p = query(name, rtype, class, false);
    p[11] = 1;
    p.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0]);
    p.extend_from_slice(&((4 + data.len()) as u16).to_be_bytes());
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(&(data.len() as u16).to_be_bytes());
    p.extend_from_slice(data);
    p
}

const NODE: &str = "[cluster]\nnode = \"edge-7\"\nlisten = \"127.0.0.1:7946\"\n";

#[test]
fn nsid_answers_the_instance_name() {
    let snap = load("", NODE);
    let p = with_option("ns1.gslb.example.", RecordType::A, DNSClass::IN, 3, &[]);
    let out = exchange(&snap, &p, Transport::Udp);
    assert_eq!(options(&out), [(3, b"edge-7".to_vec())]);
    // Not asked: not sent.
    let p = query("ns1.gslb.example.", RecordType::A, DNSClass::IN, true);
    assert_eq!(options(&exchange(&snap, &p, Transport::Udp)), []);
    // Without cluster.node: the host name.
    let snap = load("", "");
    let p = with_option("ns1.gslb.example.", RecordType::A, DNSClass::IN, 3, &[]);
    let host = crate::config::cluster::host_name().unwrap_or_else(|| "signpost".into());
    assert_eq!(
        options(&exchange(&snap, &p, Transport::Udp)),
        [(3, host.into_bytes())]
    );
}

#[test]
fn ch_txt_id_server_and_hostname_bind_answer_the_instance_name() {
    let snap = load("", NODE);
    for name in ["id.server.", "HOSTNAME.bind."] {
        let m = ask_in(&snap, name, RecordType::TXT, DNSClass::CH, Transport::Udp);
        assert_eq!(u16::from(m.metadata.response_code), 0, "{m}");
        assert_eq!(m.answers.len(), 1, "{m}");
        assert_eq!(m.answers[0].dns_class, DNSClass::CH, "{m}");
        let RData::TXT(txt) = &m.answers[0].data else {
            panic!("{m}")
        };
        assert_eq!(txt.to_string(), "edge-7", "{m}");
    }
    // Other CH names are not served.
    let m = ask_in(
        &snap,
        "version.bind.",
        RecordType::TXT,
        DNSClass::CH,
        Transport::Udp,
    );
    assert_eq!(u16::from(m.metadata.response_code), 5, "{m}");
}

#[test]
fn extended_dns_errors_on_refused_and_all_down_servfail() {
    let toml = r#"
[profiles."down.gslb.example"]
method = "priority"
all_down = "servfail"
endpoints = [{ name = "a", address = "192.0.2.9" }]
"#;
    let mut snap = load("", toml);
    let p = query("www.example.org.", RecordType::A, DNSClass::IN, true);
    let out = exchange(&snap, &p, Transport::Udp);
    assert_eq!(out[3] & 0xF, 5);
    assert_eq!(options(&out), [(15, vec![0, 20])], "Not Authoritative");

    let pid = crate::policy::testutil::pid(&snap, "down.gslb.example.");
    crate::policy::testutil::set_status(&mut snap, pid, &[crate::snapshot::Status::Degraded]);
    let p = query("down.gslb.example.", RecordType::A, DNSClass::IN, true);
    let out = exchange(&snap, &p, Transport::Udp);
    assert_eq!(out[3] & 0xF, 2);
    let mut want = vec![0, 0];
    want.extend_from_slice(b"no endpoint is healthy");
    assert_eq!(options(&out), [(15, want)]);
}
