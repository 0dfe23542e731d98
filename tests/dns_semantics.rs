//! DESIGN.md "DNS semantics", point by point, against the real binary over loopback.
//!
//! One table of cases: a query (name, type, class, flags, EDNS, opcode, transport) and the
//! answer it must get (rcode, AA, TC, every section), each with the RFC section it comes
//! from. Every exchange is also checked for what holds of every answer: the ID, QR and
//! opcode echoed, RD echoed and RA never set, the question echoed byte for byte (so the
//! QNAME's case too), an OPT iff the query had one, advertising 1232, version 0, and CNAME
//! chains in order. The exchanges that a table cannot express (pipelining, idle timeout,
//! truncation against TCP) follow the table.

mod common;

use std::io::Read;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{AN, AR, Header, NS, QD, Setup, Signpost};
use hickory_proto::op::{Edns, Message};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, RecordType};

const NOERROR: u16 = 0;
const FORMERR: u16 = 1;
const NXDOMAIN: u16 = 3;
const NOTIMP: u16 = 4;
const REFUSED: u16 = 5;
const BADVERS: u16 = 16;

/// Largest UDP payload signpost advertises and uses (DESIGN: min(client, 1232)).
const PAYLOAD: u16 = 1232;

/// The main test zone. SOA TTL 3600 and MINIMUM 60: negative answers carry TTL 60.
fn main_zone() -> String {
    let mut z = String::from(common::DNS_ZONE);
    z.push_str(
        "across         IN CNAME host.neg.example.
loop1          IN CNAME loop2
loop2          IN CNAME loop1
*.e            IN A   192.0.2.96
",
    );
    for t in big_txt() {
        z.push_str(&format!("big IN TXT \"{t}\"\n"));
    }
    for t in huge_txt() {
        z.push_str(&format!("huge IN TXT \"{t}\"\n"));
    }
    z
}

/// 12 TXT strings of 40 octets: an answer of about 670 bytes (> 512, < 1232).
fn big_txt() -> Vec<String> {
    (0..12)
        .map(|i| format!("big-{i:02}-{}", "x".repeat(33)))
        .collect()
}

/// 30 TXT strings of 40 octets: an answer of about 1600 bytes (> 1232).
fn huge_txt() -> Vec<String> {
    (0..30)
        .map(|i| format!("huge-{i:02}-{}", "y".repeat(32)))
        .collect()
}

/// A second zone whose SOA TTL (30) is below its MINIMUM (600): negative TTL 30.
const NEG_ZONE: &str = "$ORIGIN neg.example.
@    30 IN SOA ns1.gslb.example. hostmaster.gslb.example. 1 3600 600 1209600 600
    300 IN NS  ns1.gslb.example.
host 300 IN A 192.0.2.7
";

/// A zone without any TTL before its SOA: the SOA takes its MINIMUM (120).
const NOTTL_ZONE: &str = "$ORIGIN nottl.example.
@ IN SOA ns1.gslb.example. hostmaster.gslb.example. 1 3600 600 1209600 120
  IN NS ns1.gslb.example.
";

fn zones() -> Vec<(String, String)> {
    vec![
        ("gslb.example.zone".into(), main_zone()),
        ("neg.example.zone".into(), NEG_ZONE.into()),
        ("nottl.example.zone".into(), NOTTL_ZONE.into()),
    ]
}

fn start(idle: &str) -> Signpost {
    let zones = zones();
    let zones: Vec<(&str, &str)> = zones.iter().map(|(f, t)| (&f[..], &t[..])).collect();
    Signpost::start(&Setup::new(&zones).tcp_idle_timeout(idle))
}

/// `"web 300 A 192.0.2.80"` → `"web.gslb.example. 300 IN A 192.0.2.80"`: owners relative
/// to gslb.example (`@` is the apex; a trailing dot makes them absolute).
fn rr(text: &str) -> String {
    let (owner, rest) = text.split_once(' ').unwrap();
    let owner = match owner {
        "@" => "gslb.example.".to_owned(),
        o if o.ends_with('.') => o.to_owned(),
        o => format!("{o}.gslb.example."),
    };
    let (ttl, rest) = rest.split_once(' ').unwrap();
    format!("{owner} {ttl} IN {rest}")
}

fn rrs(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| rr(t)).collect()
}

/// The TXT records `owner 300 TXT t` for each string.
fn txt_rrs(owner: &str, strings: Vec<String>) -> Vec<String> {
    strings
        .iter()
        .map(|t| rr(&format!("{owner} 300 TXT {t}")))
        .collect()
}

const SOA_MAIN: &str =
    "@ 3600 SOA ns1.gslb.example. hostmaster.gslb.example. 2026112101 3600 600 1209600 60";
/// The main zone's SOA as negative answers carry it: TTL min(3600, 60).
const NEG_MAIN: &str =
    "@ 60 SOA ns1.gslb.example. hostmaster.gslb.example. 2026112101 3600 600 1209600 60";
const NEG_NEG: &str =
    "neg.example. 30 SOA ns1.gslb.example. hostmaster.gslb.example. 1 3600 600 1209600 600";
const SOA_NOTTL: &str =
    "nottl.example. 120 SOA ns1.gslb.example. hostmaster.gslb.example. 1 3600 600 1209600 120";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Udp,
    Tcp,
    Both,
}

/// What a section must hold.
#[derive(Clone, Debug)]
enum Sec {
    /// Exactly these records, in any order (compared case-insensitively).
    Is(Vec<String>),
    /// Exactly one of these record lists (RFC 8482: any one RRset).
    OneOf(Vec<Vec<String>>),
}

impl Sec {
    fn empty() -> Sec {
        Sec::Is(Vec::new())
    }
}

#[derive(Clone, Debug)]
struct Case {
    what: &'static str,
    rfc: &'static str,
    qname: &'static str,
    qtype: RecordType,
    qclass: DNSClass,
    rd: bool,
    /// (version, payload, DO)
    edns: Option<(u8, u16, bool)>,
    ecs: Option<(&'static str, u8)>,
    opcode: u8,
    via: Via,
    rcode: u16,
    aa: bool,
    tc: bool,
    answer: Sec,
    authority: Sec,
    additional: Sec,
}

fn case(what: &'static str, rfc: &'static str, qname: &'static str, qtype: RecordType) -> Case {
    Case {
        what,
        rfc,
        qname,
        qtype,
        qclass: DNSClass::IN,
        rd: false,
        edns: None,
        ecs: None,
        opcode: 0,
        via: Via::Both,
        rcode: NOERROR,
        aa: false,
        tc: false,
        answer: Sec::empty(),
        authority: Sec::empty(),
        additional: Sec::empty(),
    }
}

impl Case {
    fn aa(mut self) -> Self {
        self.aa = true;
        self
    }
    fn rd(mut self) -> Self {
        self.rd = true;
        self
    }
    fn rcode(mut self, rcode: u16) -> Self {
        self.rcode = rcode;
        self
    }
    fn class(mut self, c: DNSClass) -> Self {
        self.qclass = c;
        self
    }
    fn edns(mut self, payload: u16) -> Self {
        self.edns = Some((0, payload, false));
        self
    }
    fn edns_do(mut self, payload: u16) -> Self {
        self.edns = Some((0, payload, true));
        self
    }
    fn edns_version(mut self, version: u8) -> Self {
        self.edns = Some((version, 1232, false));
        self
    }
    fn ecs(mut self, addr: &'static str, prefix: u8) -> Self {
        self.ecs = Some((addr, prefix));
        self
    }
    fn opcode(mut self, op: u8) -> Self {
        self.opcode = op;
        self
    }
    fn udp(mut self) -> Self {
        self.via = Via::Udp;
        self
    }
    fn tcp(mut self) -> Self {
        self.via = Via::Tcp;
        self
    }
    fn tc(mut self) -> Self {
        self.tc = true;
        self
    }
    fn answer(mut self, r: &[&str]) -> Self {
        self.answer = Sec::Is(rrs(r));
        self
    }
    fn answer_records(mut self, r: Vec<String>) -> Self {
        self.answer = Sec::Is(r);
        self
    }
    fn answer_one_of(mut self, sets: &[&[&str]]) -> Self {
        self.answer = Sec::OneOf(sets.iter().map(|s| rrs(s)).collect());
        self
    }
    fn authority(mut self, r: &[&str]) -> Self {
        self.authority = Sec::Is(rrs(r));
        self
    }
    fn additional(mut self, r: &[&str]) -> Self {
        self.additional = Sec::Is(rrs(r));
        self
    }

    /// The query on the wire.
    fn wire(&self) -> Vec<u8> {
        let mut m = common::query(self.qname, self.qtype);
        m.metadata.recursion_desired = self.rd;
        m.queries[0].set_query_class(self.qclass);
        if let Some((version, payload, dnssec_ok)) = self.edns {
            let mut e = Edns::new();
            e.set_version(version);
            e.set_max_payload(payload);
            e.set_dnssec_ok(dnssec_ok);
            if let Some((addr, prefix)) = self.ecs {
                let addr: IpAddr = addr.parse().unwrap();
                e.options_mut()
                    .insert(EdnsOption::Subnet(ClientSubnet::new(addr, prefix, 0)));
            }
            m.set_edns(e);
        }
        let mut wire = m.to_vec().unwrap();
        wire[2] = (wire[2] & 0x87) | (self.opcode << 3);
        wire
    }
}

#[rustfmt::skip] // a table: one case per line
fn the_table() -> Vec<Case> {
    use RecordType::*;
    vec![
        // --- Authority and zones -----------------------------------------------------
        case("apex SOA is authoritative", "RFC 1035 §4.1.1 (AA)", "gslb.example.", SOA).aa().answer(&[SOA_MAIN]),
        case("apex NS with in-zone addresses in additional", "RFC 1034 §4.3.2 step 6", "gslb.example.", NS).aa().answer(&["@ 300 NS ns1.gslb.example.", "@ 300 NS ns2.gslb.example."]).additional(&["ns1 300 A 192.0.2.1", "ns2 300 A 192.0.2.2"]),
        case("A with RD set: RD echoed, RA still clear", "RFC 1035 §4.1.1 (RA)", "web.gslb.example.", A).rd().aa().answer(&["web 300 A 192.0.2.80"]),
        case("AAAA", "RFC 3596 §2", "web.gslb.example.", AAAA).aa().answer(&["web 300 AAAA 2001:db8::80"]),
        case("second served zone", "RFC 1034 §4.3.2 step 2", "host.neg.example.", A).aa().answer(&["host.neg.example. 300 A 192.0.2.7"]),
        case("name outside every served zone", "RFC 1034 §4.3.2; DESIGN: REFUSED", "example.org.", A).rcode(REFUSED),
        case("parent of a served zone", "RFC 1034 §4.3.2; DESIGN: REFUSED", "example.", SOA).rd().rcode(REFUSED),
        case("class CH is not served", "RFC 1035 §3.2.4", "version.bind.", TXT).class(DNSClass::CH).rcode(REFUSED),
        case("QNAME case echoed as sent", "RFC 1034 §3.1, RFC 4343 §4", "GsLb.ExAmPlE.", SOA).aa().answer(&[SOA_MAIN]),
        // --- Negative answers ---------------------------------------------------------
        case("NXDOMAIN with SOA, TTL min(SOA TTL, MINIMUM)", "RFC 2308 §2.1, §3, §5", "nosuch.gslb.example.", A).aa().rcode(NXDOMAIN).authority(&[NEG_MAIN]),
        case("NXDOMAIN below an existing leaf", "RFC 2308 §2.1", "x.web.gslb.example.", A).aa().rcode(NXDOMAIN).authority(&[NEG_MAIN]),
        case("NODATA with SOA", "RFC 2308 §2.2", "web.gslb.example.", MX).aa().authority(&[NEG_MAIN]),
        case("NODATA for a type no server knows", "RFC 3597 §2, RFC 2308 §2.2", "web.gslb.example.", Unknown(65400)).aa().authority(&[NEG_MAIN]),
        case("negative TTL when SOA TTL < MINIMUM", "RFC 2308 §5", "nosuch.neg.example.", A).aa().rcode(NXDOMAIN).authority(&[NEG_NEG]),
        case("SOA with no TTL and no $TTL takes MINIMUM", "RFC 2308 §4", "nottl.example.", SOA).aa().answer(&[SOA_NOTTL]),
        case("empty non-terminal is NODATA", "RFC 8020 §2, RFC 4592 §2.2.2", "b.c.gslb.example.", A).aa().authority(&[NEG_MAIN]),
        case("empty non-terminal, two levels up", "RFC 8020 §2", "c.gslb.example.", TXT).aa().authority(&[NEG_MAIN]),
        case("name below the ENT's child exists", "RFC 1034 §4.3.2", "a.b.c.gslb.example.", A).aa().answer(&["a.b.c 300 A 192.0.2.3"]),
        // --- CNAME ------------------------------------------------------------------
        case("CNAME followed in zone", "RFC 1034 §4.3.2 step 3a", "www.gslb.example.", A).aa().answer(&["www 300 CNAME web.gslb.example.", "web 300 A 192.0.2.80"]),
        case("CNAME chain of two", "RFC 1034 §3.6.2, §4.3.2", "alias.gslb.example.", AAAA).aa().answer(&[
                "alias 300 CNAME www.gslb.example.",
                "www 300 CNAME web.gslb.example.",
                "web 300 AAAA 2001:db8::80",
            ]),
        case("CNAME query returns the CNAME only", "RFC 1034 §4.3.2 step 3a", "alias.gslb.example.", CNAME).aa().answer(&["alias 300 CNAME www.gslb.example."]),
        case("CNAME to a nonexistent in-zone name: NXDOMAIN, chain kept", "RFC 6604 §3, RFC 2308 §2.1", "dangling.gslb.example.", A).aa().rcode(NXDOMAIN).answer(&["dangling 300 CNAME nothere.gslb.example."]).authority(&[NEG_MAIN]),
        case("CNAME then NODATA at the target", "RFC 2308 §2.2", "www.gslb.example.", MX).aa().answer(&["www 300 CNAME web.gslb.example."]).authority(&[NEG_MAIN]),
        case("CNAME out of every served zone is not chased", "RFC 1034 §4.3.2 step 3a", "out.gslb.example.", A).aa().answer(&["out 300 CNAME www.example.org."]),
        case("CNAME into another served zone", "RFC 1034 §4.3.2 step 3a", "across.gslb.example.", A).aa().answer(&[
                "across 300 CNAME host.neg.example.",
                "host.neg.example. 300 A 192.0.2.7",
            ]),
        case("CNAME loop: each CNAME once, then stop", "RFC 1034 §3.6.2 (loops)", "loop1.gslb.example.", A).aa().answer(&[
                "loop1 300 CNAME loop2.gslb.example.",
                "loop2 300 CNAME loop1.gslb.example.",
            ]),
        // --- Additional-section processing ------------------------------------------
        case("MX with the exchange's addresses", "RFC 1035 §3.3.9, RFC 1034 §4.3.2 step 6", "gslb.example.", MX).aa().answer(&["@ 300 MX 10 mail.gslb.example."]).additional(&["mail 300 A 192.0.2.25", "mail 300 AAAA 2001:db8::25"]),
        case("SRV with the target's address", "RFC 2782 (Usage rules)", "_sip._tcp.gslb.example.", SRV).aa().answer(&["_sip._tcp 300 SRV 10 60 5060 sip.gslb.example."]).additional(&["sip 300 A 192.0.2.50"]),
        case("TXT", "RFC 1035 §3.3.14", "gslb.example.", TXT).aa().answer(&["@ 300 TXT v=spf1 mx -all"]),
        // --- Delegation -------------------------------------------------------------
        case("referral below a cut: NS in authority, glue, AA clear", "RFC 1034 §4.3.2 step 3b", "www.sub.gslb.example.", A).authority(&["sub 300 NS ns.sub.gslb.example."]).additional(&["ns.sub 300 A 192.0.2.53"]),
        case("NS at the cut is a referral too", "RFC 1034 §4.3.2 step 3b, RFC 2181 §6.1", "sub.gslb.example.", NS).authority(&["sub 300 NS ns.sub.gslb.example."]).additional(&["ns.sub 300 A 192.0.2.53"]),
        case("glue itself is behind the cut", "RFC 1034 §4.2.1", "ns.sub.gslb.example.", A).authority(&["sub 300 NS ns.sub.gslb.example."]).additional(&["ns.sub 300 A 192.0.2.53"]),
        case("DS at the cut is the parent's: NODATA", "RFC 4035 §3.1.4.1", "sub.gslb.example.", DS).aa().authority(&[NEG_MAIN]),
        // --- Wildcards (RFC 4592) ---------------------------------------------------
        case("wildcard synthesis, owner is the QNAME", "RFC 4592 §3.3.1, §4", "anything.wild.gslb.example.", A).aa().answer(&["anything.wild 300 A 192.0.2.99"]),
        case("wildcard synthesis two labels below", "RFC 4592 §3.3.1", "x.y.wild.gslb.example.", TXT).aa().answer(&["x.y.wild 300 TXT wild"]),
        case("wildcard, type it lacks: NODATA", "RFC 4592 §3.3.1, §4.1", "anything.wild.gslb.example.", MX).aa().authority(&[NEG_MAIN]),
        case("no synthesis when the name exists", "RFC 4592 §2.2.1", "exists.wild.gslb.example.", TXT).aa().authority(&[NEG_MAIN]),
        case("existing name under a wildcard answers its own data", "RFC 4592 §2.2.1", "exists.wild.gslb.example.", A).aa().answer(&["exists.wild 300 A 192.0.2.98"]),
        case("ENT blocks the wildcard above it", "RFC 4592 §2.2.2, §3.3.1", "other.ent.wild.gslb.example.", A).aa().rcode(NXDOMAIN).authority(&[NEG_MAIN]),
        case("the ENT itself is NODATA, not synthesised", "RFC 4592 §2.2.2", "ent.wild.gslb.example.", A).aa().authority(&[NEG_MAIN]),
        case("wildcard below an ENT synthesises", "RFC 4592 §2.2.2", "x.e.gslb.example.", A).aa().answer(&["x.e 300 A 192.0.2.96"]),
        case("the wildcard's ENT parent is NODATA", "RFC 4592 §2.2.2", "e.gslb.example.", A).aa().authority(&[NEG_MAIN]),
        case("wildcard CNAME is followed", "RFC 4592 §4.3", "x.wc.gslb.example.", A).aa().answer(&["x.wc 300 CNAME web.gslb.example.", "web 300 A 192.0.2.80"]),
        case("a query for the wildcard owner itself", "RFC 4592 §2.3", "*.wild.gslb.example.", A).aa().answer(&["*.wild 300 A 192.0.2.99"]),
        // --- ANY (RFC 8482) -----------------------------------------------------------
        case("ANY: one RRset", "RFC 8482 §4.1", "web.gslb.example.", ANY).aa().answer_one_of(&[&["web 300 A 192.0.2.80"], &["web 300 AAAA 2001:db8::80"]]),
        case("ANY over TCP: still one RRset", "RFC 8482 §4.1", "mail.gslb.example.", ANY).tcp().aa().answer_one_of(&[&["mail 300 A 192.0.2.25"], &["mail 300 AAAA 2001:db8::25"]]),
        case("ANY at a CNAME: the CNAME, not chased", "RFC 1034 §4.3.2 step 3a", "alias.gslb.example.", ANY).aa().answer(&["alias 300 CNAME www.gslb.example."]),
        case("ANY at an ENT: NODATA", "RFC 8482 §4.1, RFC 8020 §2", "b.c.gslb.example.", ANY).aa().authority(&[NEG_MAIN]),
        case("ANY at no name: NXDOMAIN", "RFC 2308 §2.1", "nosuch.gslb.example.", ANY).aa().rcode(NXDOMAIN).authority(&[NEG_MAIN]),
        // --- EDNS (RFC 6891) ----------------------------------------------------------
        case("OPT answered with 1232 to bufsize 4096", "RFC 6891 §6.1.1, §6.2.5", "web.gslb.example.", A).edns(4096).aa().answer(&["web 300 A 192.0.2.80"]),
        case("OPT answered with 1232 to bufsize 512", "RFC 6891 §6.2.3", "web.gslb.example.", A).edns(512).aa().answer(&["web 300 A 192.0.2.80"]),
        case("OPT on a negative answer", "RFC 6891 §6.1.1", "nosuch.gslb.example.", A).edns(1232).aa().rcode(NXDOMAIN).authority(&[NEG_MAIN]),
        case("OPT on REFUSED", "RFC 6891 §6.1.1", "example.org.", A).edns(1232).rcode(REFUSED),
        case("DO bit copied into the answer's OPT", "RFC 3225 §3", "web.gslb.example.", A).edns_do(1232).aa().answer(&["web 300 A 192.0.2.80"]),
        case("EDNS version 1: BADVERS with OPT", "RFC 6891 §6.1.3", "web.gslb.example.", A).edns_version(1).rcode(BADVERS),
        case("ECS on a static name: answered, scope 0", "RFC 7871 §7.2.1", "web.gslb.example.", A).edns(1232).ecs("198.51.100.0", 24).aa().answer(&["web 300 A 192.0.2.80"]),
        // --- Size and transport (RFC 1035 §4.2.1, RFC 6891 §7, RFC 7766) ---------------
        case("over 512 without EDNS: TC over UDP", "RFC 1035 §4.2.1, RFC 2181 §9", "big.gslb.example.", TXT).udp().aa().tc(),
        case("the same over TCP: complete", "RFC 7766 §5", "big.gslb.example.", TXT).tcp().aa().answer_records(txt_rrs("big", big_txt())),
        case("the same with EDNS 1232 over UDP: complete", "RFC 6891 §7", "big.gslb.example.", TXT).udp().edns(1232).aa().answer_records(txt_rrs("big", big_txt())),
        case("EDNS 512 over UDP: TC", "RFC 6891 §6.2.5", "big.gslb.example.", TXT).udp().edns(512).aa().tc(),
        case("over 1232 with bufsize 4096: TC (payload used is 1232)", "RFC 6891 §6.2.5; DESIGN", "huge.gslb.example.", TXT).udp().edns(4096).aa().tc(),
        case("over 1232 over TCP: complete", "RFC 7766 §5", "huge.gslb.example.", TXT).tcp().edns(4096).aa().answer_records(txt_rrs("huge", huge_txt())),
        // --- Transfers and opcodes --------------------------------------------------
        case("AXFR refused", "RFC 5936 §4.2; DESIGN", "gslb.example.", AXFR).rcode(REFUSED),
        case("IXFR refused", "RFC 1995 §2; DESIGN", "gslb.example.", IXFR).rcode(REFUSED),
        case("opcode IQUERY (1): NOTIMP", "RFC 3425 §3, RFC 1035 §4.1.1", "gslb.example.", SOA).opcode(1).rcode(NOTIMP),
        case("opcode STATUS (2): NOTIMP", "RFC 1035 §4.1.1", "gslb.example.", SOA).opcode(2).rcode(NOTIMP),
        case("opcode NOTIFY (4) to a primary: NOTIMP", "RFC 1996 §3; RFC 1035 §4.1.1", "gslb.example.", SOA).opcode(4).rcode(NOTIMP),
        case("opcode UPDATE (5): NOTIMP", "RFC 2136 §3; RFC 1035 §4.1.1", "gslb.example.", SOA).opcode(5).rcode(NOTIMP),
        case("unassigned opcode 15: NOTIMP", "RFC 1035 §4.1.1", "gslb.example.", SOA).opcode(15).rcode(NOTIMP),
        case("QTYPE OPT is not a question: FORMERR", "RFC 6891 §6.1.1", "gslb.example.", OPT).rcode(FORMERR),
    ]
}

/// A record in comparable form.
fn text(r: &hickory_proto::rr::Record) -> String {
    r.to_string().to_ascii_lowercase()
}

fn texts(rs: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut v: Vec<String> = rs.iter().map(text).collect();
    v.sort();
    v
}

fn check_section(c: &Case, via: &str, name: &str, want: &Sec, got: &[hickory_proto::rr::Record]) {
    let got = texts(got);
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
        v.sort();
        v
    };
    match want {
        Sec::Is(want) => assert_eq!(
            got,
            norm(want),
            "{} [{}] over {via}: {name} section",
            c.what,
            c.rfc
        ),
        Sec::OneOf(sets) => assert!(
            sets.iter().any(|s| norm(s) == got),
            "{} [{}] over {via}: {name} section {got:?} is none of {sets:?}",
            c.what,
            c.rfc
        ),
    }
}

/// Checks one answer against the case and against what holds of every answer.
fn check(c: &Case, via: &str, query: &[u8], answer: &[u8]) {
    let ctx = format!("{} [{}] over {via}", c.what, c.rfc);
    let q = Header::read(query);
    let h = Header::read(answer);
    // RFC 1035 §4.1.1: ID, opcode and RD are copied; QR set; RA clear (DESIGN: no recursion).
    assert_eq!(h.id, q.id, "{ctx}: ID");
    assert!(h.qr, "{ctx}: QR");
    assert_eq!(h.opcode, q.opcode, "{ctx}: opcode");
    assert_eq!(h.rd, q.rd, "{ctx}: RD");
    assert!(!h.ra, "{ctx}: RA must never be set");
    assert_eq!(h.aa, c.aa, "{ctx}: AA");
    assert_eq!(h.tc, c.tc, "{ctx}: TC");
    if via == "tcp" {
        assert!(!h.tc, "{ctx}: TC over TCP");
    }
    // The question is echoed exactly as sent, case included (RFC 1034 §3.1, RFC 4343 §4).
    if c.rcode != NOTIMP {
        assert_eq!(h.counts[QD], 1, "{ctx}: QDCOUNT");
        assert_eq!(
            common::question_bytes(answer),
            common::question_bytes(query),
            "{ctx}: question not echoed as sent"
        );
    } else {
        assert!(h.counts[QD] <= 1, "{ctx}: QDCOUNT");
        if h.counts[QD] == 1 {
            assert_eq!(
                common::question_bytes(answer),
                common::question_bytes(query)
            );
        }
    }

    let m = Message::from_vec(answer).unwrap_or_else(|e| panic!("{ctx}: unparsable answer: {e}"));
    let rcode =
        u16::from(m.edns.as_ref().map_or(0, |e| e.rcode_high())) << 4 | u16::from(h.rcode_low);
    assert_eq!(rcode, c.rcode, "{ctx}: rcode\n{m}");

    // RFC 6891 §6.1.1: OPT iff the query had one; we advertise 1232 and speak version 0.
    match (&c.edns, &m.edns) {
        (None, None) => {}
        (None, Some(_)) => panic!("{ctx}: OPT in the answer to a query without one"),
        (Some(_), None) => panic!("{ctx}: no OPT in the answer to a query with one"),
        (Some((_, _, dnssec_ok)), Some(e)) => {
            assert_eq!(e.max_payload(), PAYLOAD, "{ctx}: advertised payload");
            assert_eq!(e.version(), 0, "{ctx}: EDNS version");
            assert_eq!(
                e.flags().dnssec_ok,
                *dnssec_ok,
                "{ctx}: DO copied (RFC 3225 §3)"
            );
            match (c.ecs, e.option(EdnsCode::Subnet)) {
                (None, None) => {}
                (Some((addr, prefix)), Some(EdnsOption::Subnet(cs))) => {
                    assert_eq!(
                        cs.addr(),
                        addr.parse::<IpAddr>().unwrap(),
                        "{ctx}: ECS address"
                    );
                    assert_eq!(cs.source_prefix(), prefix, "{ctx}: ECS source prefix");
                    assert_eq!(cs.scope_prefix(), 0, "{ctx}: ECS scope of a static answer");
                }
                (want, got) => panic!("{ctx}: ECS {want:?} answered with {got:?}"),
            }
        }
    }
    // RFC 6891 §7: a UDP answer fits what was allowed.
    if via == "udp" {
        let limit = c.edns.map_or(512, |(_, p, _)| p.clamp(512, PAYLOAD));
        assert!(
            answer.len() <= usize::from(limit),
            "{ctx}: {} bytes > {limit}",
            answer.len()
        );
    }

    check_section(c, via, "answer", &c.answer, &m.answers);
    check_section(c, via, "authority", &c.authority, &m.authorities);
    check_section(c, via, "additional", &c.additional, &m.additionals);
    // Header counts agree with what was parsed (the OPT is counted in ARCOUNT).
    assert_eq!(usize::from(h.counts[AN]), m.answers.len(), "{ctx}: ANCOUNT");
    assert_eq!(
        usize::from(h.counts[NS]),
        m.authorities.len(),
        "{ctx}: NSCOUNT"
    );
    assert_eq!(
        usize::from(h.counts[AR]),
        m.additionals.len() + usize::from(m.edns.is_some()),
        "{ctx}: ARCOUNT"
    );

    // RFC 1034 §4.3.2: the answer starts at the QNAME and follows CNAMEs in order.
    if c.qtype != RecordType::ANY && !m.queries.is_empty() {
        let mut owners = vec![m.queries[0].name().to_lowercase()];
        for r in &m.answers {
            assert!(
                owners.contains(&r.name.to_lowercase()),
                "{ctx}: {r} is not at the QNAME or a CNAME target before it"
            );
            if let hickory_proto::rr::RData::CNAME(t) = &r.data {
                owners.push(t.0.to_lowercase());
            }
        }
    }
}

#[test]
fn dns_semantics_table() {
    let mut server = start("10s");
    let table = the_table();
    // Every case runs, and every failure is listed at the end (each one's panic message is
    // printed as it happens).
    let mut failed = Vec::new();
    for c in &table {
        let wire = c.wire();
        for via in ["udp", "tcp"] {
            let wanted = match c.via {
                Via::Both => true,
                Via::Udp => via == "udp",
                Via::Tcp => via == "tcp",
            };
            if !wanted {
                continue;
            }
            let a = if via == "udp" {
                server.udp(&wire)
            } else {
                server.tcp(&wire)
            };
            let r = std::panic::catch_unwind(|| check(c, via, &wire, &a));
            if r.is_err() {
                failed.push(format!("{} [{}] over {via}", c.what, c.rfc));
            }
        }
    }
    server.assert_running();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        table.len(),
        failed.join("\n")
    );
}

/// RFC 7766 §6.2.1.1: several queries in one write are all answered, on one connection.
#[test]
fn tcp_pipelining() {
    let server = start("10s");
    let queries = [
        (
            common::query("web.gslb.example.", RecordType::A),
            NOERROR,
            1,
        ),
        (
            common::query("alias.gslb.example.", RecordType::A),
            NOERROR,
            3,
        ),
        (
            common::query("nosuch.gslb.example.", RecordType::A),
            NXDOMAIN,
            0,
        ),
    ];
    let mut bytes = Vec::new();
    for (q, _, _) in &queries {
        let w = q.to_vec().unwrap();
        bytes.extend_from_slice(&u16::try_from(w.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(&w);
    }
    let mut s = common::tcp_connect(server.addr).unwrap();
    std::io::Write::write_all(&mut s, &bytes).unwrap();
    let mut ids = Vec::new();
    for _ in &queries {
        let a = common::tcp_recv(&mut s).expect("an answer for each pipelined query");
        let m = Message::from_vec(&a).unwrap();
        let (q, rcode, answers) = queries
            .iter()
            .find(|(q, _, _)| q.metadata.id == m.metadata.id)
            .unwrap_or_else(|| panic!("an answer to no query sent: {m}"));
        assert_eq!(u16::from(m.metadata.response_code), *rcode, "{m}");
        assert_eq!(m.answers.len(), *answers, "{m}");
        assert_eq!(m.queries, q.queries);
        ids.push(m.metadata.id);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct answers");
    // The connection stays open for more.
    let q = common::query("gslb.example.", RecordType::SOA);
    common::tcp_send(&mut s, &q.to_vec().unwrap()).unwrap();
    let a = Message::from_vec(&common::tcp_recv(&mut s).unwrap()).unwrap();
    assert_eq!(a.metadata.id, q.metadata.id);
}

/// RFC 7766 §6.2.3: an idle connection is closed by the server after dns.tcp_idle_timeout.
#[test]
fn tcp_idle_connection_is_closed() {
    let server = start("1s");
    let mut s = common::tcp_connect(server.addr).unwrap();
    // A query first: the timeout counts from the last complete query, not from the accept.
    let q = common::query("web.gslb.example.", RecordType::A);
    common::tcp_send(&mut s, &q.to_vec().unwrap()).unwrap();
    common::tcp_recv(&mut s).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 1];
    let n = s
        .read(&mut buf)
        .expect("the server closes, the read does not time out");
    let waited = t0.elapsed();
    assert_eq!(n, 0, "EOF, not data");
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(4),
        "closed after {waited:?}; configured 1s"
    );
    // A new connection is served as before.
    let a = server.tcp(&q.to_vec().unwrap());
    assert_eq!(Header::read(&a).id, q.metadata.id);
}

/// The README's first command: the repo's own config and zone, as a fresh clone has them.
#[test]
fn default_config_serves_the_readme_example() {
    let mut server = common::start_default_config();

    // RFC 2308 §5: the negative TTL follows from the served SOA: min(its TTL, MINIMUM).
    let soa = Message::from_vec(
        &server.udp(
            &common::query("gslb.example.", RecordType::SOA)
                .to_vec()
                .unwrap(),
        ),
    )
    .unwrap();
    let neg_ttl = match &soa.answers[..] {
        [r] => match &r.data {
            hickory_proto::rr::RData::SOA(s) => r.ttl.min(s.minimum),
            other => panic!("not an SOA: {other}"),
        },
        other => panic!("one SOA expected: {other:?}"),
    };

    for tcp in [false, true] {
        let x = |q: Message| {
            let w = q.to_vec().unwrap();
            let a = if tcp { server.tcp(&w) } else { server.udp(&w) };
            (Header::read(&a), Message::from_vec(&a).unwrap(), a, w)
        };
        let (h, m, a, w) = x(common::query("GsLb.ExAmPlE.", RecordType::SOA));
        assert!(h.aa && !h.ra && h.rcode_low == 0, "{m}");
        assert_eq!(m.answers.len(), 1);
        assert_eq!(common::question_bytes(&a), common::question_bytes(&w));
        let (h, m, _, _) = x(common::query("nosuch.gslb.example.", RecordType::A));
        assert!(h.aa && u16::from(h.rcode_low) == NXDOMAIN, "{m}");
        assert_eq!(m.authorities.len(), 1);
        assert_eq!(m.authorities[0].ttl, neg_ttl, "{m}");
        let (h, _, _, _) = x(common::query("example.org.", RecordType::A));
        assert_eq!(u16::from(h.rcode_low), REFUSED);
        let (h, m, _, _) = x(common::with_edns(
            common::query("www.gslb.example.", RecordType::A),
            0,
            4096,
        ));
        assert!(h.aa, "{m}");
        assert_eq!(m.edns.as_ref().map(Edns::max_payload), Some(PAYLOAD));
        assert_eq!(m.answers[0].record_type(), RecordType::CNAME, "{m}");
        assert!(
            m.answers.iter().any(|r| r.record_type() == RecordType::A),
            "{m}"
        );
    }
    assert!(
        server.log().contains("listening for DNS"),
        "{}",
        server.log()
    );
    let status = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM: {status}");
}
