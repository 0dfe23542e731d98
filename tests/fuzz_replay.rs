//! The fuzz targets' inputs, replayed without a fuzzer: every file the targets keep in
//! their corpus (`fuzz/corpus/<target>/`) and every input that once made one fail
//! (`fuzz/regressions/<target>/`, kept after the fix) goes through the same checks the
//! targets run (`signpost::fuzzing`), so a regression fails `cargo test`. The checks
//! themselves are shown to catch what they are meant to.
//!
//! `write_seeds` (ignored; `scripts/fuzz.sh seed` runs it) writes the hand-made inputs
//! the corpora started from: queries of every kind, the repository's zone files and
//! configs, and variations of each.

use std::fs;
use std::path::{Path, PathBuf};

use signpost::base::{Rtype, Transport};
use signpost::dns::engine::{Scratch, respond};
use signpost::fuzzing::{self, Failure};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Runs `check` on every file of the target's corpus and regressions; the corpus must not
/// be empty. Every failure is reported, not only the first.
fn replay(target: &str, check: fn(&[u8]) -> Result<(), Failure>) {
    let mut failures = Vec::new();
    let mut corpus = 0;
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            if kind == "corpus" {
                corpus += 1;
            }
            let data = fs::read(&p).unwrap();
            match std::panic::catch_unwind(|| check(&data)) {
                Ok(Ok(())) => {}
                Ok(Err(f)) => failures.push(format!("{}: {f}", p.display())),
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("?");
                    failures.push(format!("{}: panicked: {what}", p.display()));
                }
            }
        }
    }
    assert!(corpus > 0, "fuzz/corpus/{target} is empty");
    assert!(
        failures.is_empty(),
        "{} of the {target} inputs fail:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn request_corpus_and_regressions_pass() {
    replay("request", fuzzing::request);
}

#[test]
fn zone_file_corpus_and_regressions_pass() {
    replay("zone_file", fuzzing::zone_file);
}

#[test]
fn config_corpus_and_regressions_pass() {
    replay("config", fuzzing::config);
}

fn answer(query: &[u8], transport: Transport) -> Vec<u8> {
    let mut out = Vec::new();
    let outcome = respond(
        fuzzing::model(),
        query,
        &mut Scratch::default(),
        "192.0.2.200".parse().unwrap(),
        transport,
        &mut out,
    );
    assert!(outcome.respond);
    out
}

/// A good answer passes `check_answer`, and each kind of damage is caught.
#[test]
fn answer_checks_catch_what_they_are_for() {
    let www = b"\x03www\x04fuzz\x07example\x00";
    let q = fuzzing::query(0x1234, www, Rtype::A, None);
    let good = answer(&q, Transport::Udp);
    let check = |a: &[u8]| fuzzing::check_answer(&q, Transport::Udp, Some(a));
    let m = check(&good).unwrap().unwrap();
    assert_eq!(m.answers.len(), 3, "www CNAME web, web A ×2");

    let fails = |what: &str, a: &[u8], why: &str| {
        let e = check(a).expect_err(what);
        assert!(e.contains(why), "{what}: {e}");
    };
    let mut a = good.clone();
    a[1] ^= 1;
    fails("other ID", &a, "ID");
    let mut a = good.clone();
    a[2] &= 0x7F;
    fails("QR clear", &a, "QR");
    let mut a = good.clone();
    a[2] ^= 1;
    fails("RD not copied", &a, "RD");
    let mut a = good.clone();
    a.push(0);
    fails("trailing byte", &a, "after the answer");
    fails("cut short", &good[..good.len() - 1], "does not parse");
    let mut a = good.clone();
    a[2] |= 0x02;
    fails("TC with records", &a, "TC with records");
    // The question of another name (same length: the rest still parses).
    let mut a = good.clone();
    a[13] = b'x';
    fails("other question", &a, "question");
    assert!(fuzzing::check_answer(&q, Transport::Udp, None).is_err());
    // A response or a runt must not be answered.
    let mut resp = q.clone();
    resp[2] |= 0x80;
    assert!(fuzzing::check_answer(&resp, Transport::Udp, Some(&good)).is_err());
    assert!(fuzzing::check_answer(&resp, Transport::Udp, None).is_ok());

    // Size: `mx` (40 MX, their AAAA glue) is about 2 KB. Over UDP the answer is truncated to
    // fit 512 bytes; the TCP answer passes over TCP and is over every UDP limit.
    let mx = b"\x02mx\x04fuzz\x07example\x00";
    let q = fuzzing::query(7, mx, Rtype::MX, None);
    let udp = answer(&q, Transport::Udp);
    let tcp = answer(&q, Transport::Tcp);
    assert!(
        udp.len() <= 512 && tcp.len() > 1232,
        "{} {}",
        udp.len(),
        tcp.len()
    );
    fuzzing::check_answer(&q, Transport::Udp, Some(&udp)).unwrap();
    fuzzing::check_answer(&q, Transport::Tcp, Some(&tcp)).unwrap();
    let e = fuzzing::check_answer(&q, Transport::Udp, Some(&tcp)).unwrap_err();
    assert!(e.contains("over the limit of 512"), "{e}");
    let q = fuzzing::query(7, mx, Rtype::MX, Some(4096));
    let e = fuzzing::check_answer(&q, Transport::Udp, Some(&tcp)).unwrap_err();
    assert!(e.contains("over the limit of 1232"), "{e}");
    // The answer to a query with an OPT has one; one without, none.
    let no_opt = answer(&fuzzing::query(7, www, Rtype::A, None), Transport::Udp);
    let q = fuzzing::query(7, www, Rtype::A, Some(1232));
    let e = fuzzing::check_answer(&q, Transport::Udp, Some(&no_opt)).unwrap_err();
    assert!(e.contains("OPT"), "{e}");
}

/// The repository's file `rel`, with gslb.example renamed fuzz.example.
fn repo_file_in_fuzz_example(rel: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap()
        .replace("gslb.example", "fuzz.example")
}

/// The zone and config checks fail on what they are for, and pass the repository's files.
#[test]
fn zone_and_config_checks() {
    let zone = repo_file_in_fuzz_example("zones/gslb.example.zone");
    fuzzing::zone_file(zone.as_bytes()).unwrap();
    // Bad zones are fine as long as they are reported.
    fuzzing::zone_file(b"").unwrap();
    fuzzing::zone_file(b"@ SOA x").unwrap();
    let config = repo_file_in_fuzz_example("config/signpost.toml");
    fuzzing::config(config.as_bytes()).unwrap();
    fuzzing::config(b"[dns]\nlisten = 5\n").unwrap();
}

// ----- Seeds -----

/// A DNS message built byte by byte (any field may be wrong on purpose).
#[derive(Clone)]
struct Msg {
    id: u16,
    flags: u16,
    /// Explicit counts (None: the number of entries written).
    counts: Option<[u16; 4]>,
    question: Vec<u8>,
    /// Answer and authority records, written as they are.
    records: Vec<u8>,
    an_ns: (u16, u16),
    additional: Vec<Vec<u8>>,
}

impl Msg {
    fn new(name: &[u8], qtype: u16, qclass: u16) -> Msg {
        let mut question = name.to_vec();
        question.extend_from_slice(&qtype.to_be_bytes());
        question.extend_from_slice(&qclass.to_be_bytes());
        Msg {
            id: 0xABCD,
            flags: 0x0100,
            counts: None,
            question,
            records: Vec::new(),
            an_ns: (0, 0),
            additional: Vec::new(),
        }
    }
    fn bytes(&self) -> Vec<u8> {
        let qd = u16::from(!self.question.is_empty());
        let counts =
            self.counts
                .unwrap_or([qd, self.an_ns.0, self.an_ns.1, self.additional.len() as u16]);
        let mut p = self.id.to_be_bytes().to_vec();
        p.extend_from_slice(&self.flags.to_be_bytes());
        for c in counts {
            p.extend_from_slice(&c.to_be_bytes());
        }
        p.extend_from_slice(&self.question);
        p.extend_from_slice(&self.records);
        for r in &self.additional {
            p.extend_from_slice(r);
        }
        p
    }
    fn opt(mut self, opt: Vec<u8>) -> Msg {
        self.additional.push(opt);
        self
    }
}

/// An OPT record: root owner, `payload`, extended RCODE 0, `version`, DO, `options`.
fn opt(payload: u16, version: u8, dnssec: bool, options: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = options.concat();
    let mut r = vec![0, 0, 41];
    r.extend_from_slice(&payload.to_be_bytes());
    r.extend_from_slice(&[0, version, if dnssec { 0x80 } else { 0 }, 0]);
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(&body);
    r
}

fn option(code: u16, data: &[u8]) -> Vec<u8> {
    let mut o = code.to_be_bytes().to_vec();
    o.extend_from_slice(&(data.len() as u16).to_be_bytes());
    o.extend_from_slice(data);
    o
}

fn ecs(family: u16, source: u8, scope: u8, addr: &[u8]) -> Vec<u8> {
    let mut d = family.to_be_bytes().to_vec();
    d.push(source);
    d.push(scope);
    d.extend_from_slice(addr);
    option(8, &d)
}

/// Wire form of a text name (`www.fuzz.example.`, `.` for the root).
fn wire(name: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        w.push(label.len() as u8);
        w.extend_from_slice(label.as_bytes());
    }
    w.push(0);
    w
}

/// The EDNS variants a query is sent with (None: no OPT).
fn edns_variants() -> Vec<Option<Vec<u8>>> {
    let cookie = option(10, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let server_cookie = option(10, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    vec![
        None,
        Some(opt(1232, 0, false, &[])),
        Some(opt(4096, 0, true, &[])),
        Some(opt(512, 0, false, &[])),
        Some(opt(0, 0, false, &[])),
        Some(opt(65535, 0, true, &[])),
        Some(opt(1232, 1, false, &[])),
        Some(opt(1232, 0, false, &[ecs(1, 24, 0, &[10, 20, 1])])),
        Some(opt(1232, 0, false, &[ecs(1, 16, 0, &[10, 10])])),
        Some(opt(
            1232,
            0,
            false,
            &[ecs(2, 48, 0, &[0xfd, 0, 0, 0x20, 0, 0])],
        )),
        Some(opt(1232, 0, false, &[ecs(1, 0, 0, &[])])),
        Some(opt(1232, 0, false, &[ecs(1, 32, 0, &[198, 51, 100, 1])])),
        Some(opt(1232, 0, true, std::slice::from_ref(&cookie))),
        Some(opt(1232, 0, false, &[server_cookie])),
        Some(opt(1232, 0, false, &[option(3, &[])])),
        Some(opt(1232, 0, false, &[option(100, &[1, 2, 3])])),
        Some(opt(1232, 0, false, &[option(12, &[0; 200])])),
        Some(opt(
            4096,
            0,
            false,
            &[cookie, option(3, &[]), ecs(1, 24, 0, &[10, 20, 1])],
        )),
    ]
}

/// Every name of the fuzz model worth asking for, with the types asked.
fn model_names() -> Vec<String> {
    let long = format!("{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63));
    let mut names: Vec<String> = [
        "",
        "ns1",
        "ns2",
        "web",
        "www",
        "WwW",
        "alias",
        "dangling",
        "out",
        "toapp",
        "tocname",
        "togslb",
        "deleg",
        "loop1",
        "mail",
        "_sip._tcp",
        "sip",
        "a.b.c",
        "b.c",
        "c",
        "sub",
        "host.sub",
        "ns.sub",
        "unsigned",
        "x.unsigned",
        "x.wild",
        "exists.wild",
        "ent.wild",
        "host.ent.wild",
        "a.b.wild",
        "a.wc",
        "a.wd",
        "caa",
        "ptr",
        "hinfo",
        "sshfp",
        "tlsa._443._tcp",
        "naptr",
        "svcb",
        "https",
        "private",
        "empty",
        "dn",
        "x.dn",
        "host.dn",
        "a.host.dn",
        "a.dnout",
        "dnself",
        "a.dnself",
        "a.dnloop",
        "big",
        "mx",
        "chain0",
        "chain5",
        "huge",
        "nothere",
        "app",
        "prio",
        "multi",
        "v6",
        "cname",
        "nested",
        "geo",
        "subnet",
        "perf",
        "down",
        "nodata",
        "x.wild",
    ]
    .iter()
    .map(|n| {
        if n.is_empty() {
            "fuzz.example.".to_owned()
        } else {
            format!("{n}.fuzz.example.")
        }
    })
    .collect();
    names.push(format!("{long}.fuzz.example."));
    names.push(format!("x.{long}.fuzz.example."));
    names.push(format!("{}.dnlong.fuzz.example.", "d".repeat(50)));
    names.push(format!("{}.dnlong.fuzz.example.", "d".repeat(10)));
    for n in [
        "gslb.example.",
        "app.gslb.example.",
        "www.gslb.example.",
        "_sip._tcp.gslb.example.",
        "nothere.gslb.example.",
        "example.org.",
        ".",
        "example.",
    ] {
        names.push(n.to_owned());
    }
    names
}

fn seeds_request() -> Vec<Vec<u8>> {
    let types: [u16; 22] = [
        1, 28, 255, 16, 15, 2, 6, 43, 5, 39, 33, 257, 12, 65, 64, 65280, 13, 35, 44, 52, 99, 0,
    ];
    let edns = edns_variants();
    let mut out = Vec::new();
    let mut k = 0usize;
    for name in model_names() {
        for &t in &types {
            let e = &edns[k % edns.len()];
            k += 1;
            let mut m = Msg::new(&wire(&name), t, 1);
            if let Some(o) = e {
                m = m.opt(o.clone());
            }
            out.push(m.bytes());
        }
    }
    let www = wire("www.fuzz.example.");
    let base = || Msg::new(&www, 1, 1);
    let o = || opt(1232, 0, false, &[]);
    // Meta and zone-transfer types, classes.
    for t in [251u16, 252, 253, 254, 41, 250, 249] {
        out.push(Msg::new(&www, t, 1).bytes());
        out.push(Msg::new(&www, t, 1).opt(o()).bytes());
    }
    for (name, class) in [
        ("id.server.", 3u16),
        ("hostname.bind.", 3),
        ("version.bind.", 3),
        ("ID.SERVER.", 3),
        ("www.fuzz.example.", 3),
        ("www.fuzz.example.", 4),
        ("www.fuzz.example.", 255),
        ("www.fuzz.example.", 254),
        ("www.fuzz.example.", 0),
        ("app.fuzz.example.", 255),
    ] {
        for t in [16u16, 255, 1] {
            out.push(Msg::new(&wire(name), t, class).bytes());
            out.push(
                Msg::new(&wire(name), t, class)
                    .opt(opt(1232, 0, false, &[option(3, &[])]))
                    .bytes(),
            );
        }
    }
    // Opcodes and header flags.
    for opcode in 0..16u16 {
        for (flags, with_opt) in [
            (0x0100u16, false),
            (0x0110, true),
            (0x0020, false),
            (0x0040, true),
        ] {
            let mut m = base();
            m.flags = flags | opcode << 11;
            if with_opt {
                m = m.opt(o());
            }
            out.push(m.bytes());
        }
    }
    for flags in [
        0x0000u16, 0x0200, 0x0400, 0x0080, 0x000F, 0x8000, 0x8400, 0xFFFF,
    ] {
        let mut m = base();
        m.flags = flags;
        out.push(m.bytes());
    }
    // Counts and sections.
    let mut m = base();
    m.question.clear();
    out.push(m.clone().bytes());
    out.push(m.clone().opt(o()).bytes());
    let mut m = base();
    m.question = [m.question.clone(), m.question.clone()].concat();
    m.counts = Some([2, 0, 0, 0]);
    out.push(m.bytes());
    let rr = |name: &[u8], t: u16, class: u16, ttl: u32, rdata: &[u8]| {
        let mut r = name.to_vec();
        r.extend_from_slice(&t.to_be_bytes());
        r.extend_from_slice(&class.to_be_bytes());
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
        r
    };
    let mut m = base();
    m.records = rr(&[0xC0, 12], 1, 1, 300, &[192, 0, 2, 1]);
    m.an_ns = (1, 0);
    out.push(m.bytes());
    let mut m = base();
    m.records = rr(&[0xC0, 12], 2, 1, 300, &wire("ns1.fuzz.example."));
    m.an_ns = (0, 1);
    out.push(m.clone().opt(o()).bytes());
    let mut m = base();
    m.records = o();
    m.an_ns = (1, 0);
    out.push(m.bytes());
    out.push(base().opt(o()).opt(o()).bytes());
    out.push(base().opt(rr(&[0xC0, 12], 41, 1232, 0, &[])).bytes());
    out.push(base().opt(rr(&wire("x."), 41, 1232, 0, &[])).bytes());
    // TSIG: well-formed (last, class ANY, TTL 0) and not.
    let mut tsig = wire("hmac-sha256.");
    tsig.extend_from_slice(&[0, 0, 0x65, 0x4F, 0x1A, 0x00, 0x01, 0x2C, 0, 32]);
    tsig.extend_from_slice(&[0xAA; 32]);
    tsig.extend_from_slice(&[0xAB, 0xCD, 0, 0, 0, 0]);
    let key = wire("key.fuzz.example.");
    out.push(base().opt(rr(&key, 250, 255, 0, &tsig)).bytes());
    out.push(base().opt(o()).opt(rr(&key, 250, 255, 0, &tsig)).bytes());
    out.push(base().opt(rr(&key, 250, 255, 0, &tsig)).opt(o()).bytes());
    out.push(base().opt(rr(&key, 250, 1, 0, &tsig)).bytes());
    out.push(base().opt(rr(&key, 250, 255, 0, &tsig[..20])).bytes());
    out.push(base().opt(rr(&wire("x."), 1, 1, 0, &[1, 2, 3, 4])).bytes());
    // Malformed EDNS options.
    for bad in [
        ecs(0, 24, 0, &[10, 20, 1]),
        ecs(3, 24, 0, &[10, 20, 1]),
        ecs(1, 24, 8, &[10, 20, 1]),
        ecs(1, 24, 0, &[10, 20, 1, 0]),
        ecs(1, 20, 0, &[10, 20, 1]),
        ecs(1, 33, 0, &[10, 20, 1, 0, 0]),
        ecs(2, 129, 0, &[0; 17]),
        option(8, &[0, 1]),
        option(3, &[1]),
        vec![0, 10, 0, 8, 1, 2],
        vec![0],
    ] {
        out.push(base().opt(opt(1232, 0, false, &[bad])).bytes());
    }
    // Names: compression in the question, case, long labels, runts, garbage.
    let mut m = base();
    m.question = vec![0xC0, 12, 0, 1, 0, 1];
    out.push(m.bytes());
    let mut m = base();
    m.question = vec![0xC0, 14, 0, 1, 0, 1];
    out.push(m.bytes());
    let mut m = base();
    m.question = vec![1, b'a', 0xC0, 12, 0, 1, 0, 1];
    out.push(m.bytes());
    let mut m = base();
    m.question = vec![0x40, 0, 1, 0, 1];
    out.push(m.bytes());
    let mut m = base();
    m.question = vec![0x80, 0, 0, 1, 0, 1];
    out.push(m.bytes());
    let mut long = Vec::new();
    while long.len() < 250 {
        long.push(61);
        long.extend_from_slice(&[b'q'; 61]);
    }
    long.push(0);
    out.push(Msg::new(&long, 1, 1).bytes());
    out.push(Msg::new(&wire("WWW.FUZZ.EXAMPLE."), 1, 1).opt(o()).bytes());
    out.push(Msg::new(&wire("W\\x.f\"uzz.example."), 1, 1).bytes());
    let mut q = base().bytes();
    q.push(0);
    out.push(q);
    let q = base().bytes();
    out.push(q[..q.len() - 1].to_vec());
    out.push(q[..12].to_vec());
    out.push(q[..11].to_vec());
    out.push(Vec::new());
    // Large queries (TCP-sized): padding up to 1232 bytes and beyond, many records.
    for pad in [400usize, 1100, 3000, 16000] {
        out.push(
            base()
                .opt(opt(1232, 0, false, &[option(12, &vec![0; pad])]))
                .bytes(),
        );
    }
    let mut m = base();
    for _ in 0..200 {
        m.records
            .extend_from_slice(&rr(&[0xC0, 12], 1, 1, 0, &[192, 0, 2, 1]));
    }
    m.an_ns = (200, 0);
    out.push(m.bytes());
    out
}

fn seeds_zone() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fuzzed = |t: &str| t.replace("gslb.example", "fuzz.example").into_bytes();
    let mut out = vec![fuzzed(
        &fs::read_to_string(root.join("zones/gslb.example.zone")).unwrap(),
    )];
    let fuzz_zone = fs::read_to_string(root.join("src/fuzzing/fuzz.example.zone")).unwrap();
    out.push(fuzz_zone.clone().into_bytes());
    // The model zone in pieces: its head with each group of lines.
    let lines: Vec<&str> = fuzz_zone.lines().collect();
    let head = lines[..10].join("\n");
    for chunk in lines[10..].chunks(6) {
        out.push(format!("{head}\n{}\n", chunk.join("\n")).into_bytes());
    }
    let soa = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n";
    for body in [
        "www CNAME ns1\nwww A 192.0.2.9\n",
        "a.b.c A 192.0.2.2\nsub NS ns.sub\nns.sub A 192.0.2.3\n*.w TXT hi\n",
        "txt TXT \"a ; not a comment\" \"b\" ( \"c\"\n  \"d\" )\n",
        "$INCLUDE inc.db\n",
        "$INCLUDE inc.db sub\n$ORIGIN other.fuzz.example.\nx A 192.0.2.8\n",
        "$INCLUDE \"inc.db\" deep.sub\n",
        "$INCLUDE missing.db\n",
        "$ORIGIN x.fuzz.example.\n@ A 192.0.2.1\n$ORIGIN fuzz.example.\n",
        "ds DS 60485 8 2 D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A\nds NS ns1\n",
        "dn DNAME target\nx.target A 192.0.2.4\n",
        "g TYPE65280 \\# 4 0A000001\ng2 A \\# 4 C0000201\ng3 TYPE1 \\# 4 C0 00 02 01\n",
        "e TYPE65281 \\# 0\n",
        "mx MX 10 mail\nmail A 192.0.2.5\nmail AAAA 2001:db8::5\n",
        "srv._tcp SRV 0 5 443 web\nweb A 192.0.2.6\n",
        "caa CAA 0 issue \"ca.example\"\ncaa CAA 128 iodef \"mailto:x@fuzz.example\"\n",
        "p PTR web\nh HINFO \"PC\" \"Linux\"\n",
        "n NAPTR 100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp\n",
        "s SSHFP 4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789\n",
        "_443._tcp TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
        "svc SVCB 1 web alpn=h2,h3 port=8443 ipv4hint=192.0.2.1\nh HTTPS 0 web\n",
        "x 3600 IN A 192.0.2.1\ny IN 1h A 192.0.2.2\nz 1w2d3h4m5s A 192.0.2.3\n",
        "  A 192.0.2.10\n\tAAAA 2001:db8::10\n",
        "\\@weird\\.name\\032x A 192.0.2.11\n",
        "x CH A 192.0.2.1\n",
        "x A 300.1.1.1\n",
        "x BOGUS 1\n$NOPE\n",
        "x NSEC3 1 0 0 - ABC\n",
        "x TYPE41 \\# 0\n",
        "outside.example.org. A 192.0.2.1\n",
        "@ SOA ns2 h 2 1 1 1 1\n",
        ") A 192.0.2.1\n",
        "x TXT \"unterminated\n",
    ] {
        out.push(format!("{soa}{body}").into_bytes());
    }
    for text in [
        "@ IN SOA ns1 hostmaster (\n  1 ; serial\n  7200 3600 1209600 60 )\n  NS ns1\nns1 600 A 192.0.2.1\n",
        "@ 30 SOA ns1 hostmaster 1 7200 3600 1209600 600\n@ NS ns1\n",
        "$TTL 300\n@ NS ns1\n",
        "@ SOA ns1 hostmaster 1 7200 3600 1209600 90\n@ NS ns1\n",
        "www A 192.0.2.1\n",
        "$TTL 1h\n@ SOA a. b. 1 2 3 4 5\n NS a.\n",
        "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\n\u{e9}t\u{e9} A 192.0.2.1\n",
    ] {
        out.push(text.as_bytes().to_vec());
    }
    out.push(b"$TTL 300\n@ SOA ns1 hostmaster 1 2 3 4 5\n@ NS ns1\nx TXT \"\xff\xfe\"\n".to_vec());
    out
}

fn seeds_config() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let default = fs::read_to_string(root.join("config/signpost.toml")).unwrap();
    let fuzz = fs::read_to_string(root.join("src/fuzzing/fuzz.toml")).unwrap();
    let mut out = vec![
        default.clone().into_bytes(),
        format!("{default}\n{fuzz}").into_bytes(),
    ];
    // fuzz.toml one profile at a time, after the default config.
    let (geo, profiles) = fuzz.split_at(fuzz.find("[profiles.").unwrap());
    for p in profiles.split("\n\n") {
        out.push(format!("{default}\n{geo}\n{p}\n").into_bytes());
    }
    // Every TOML example of the documentation.
    for doc in fs::read_dir(root.join("docs")).unwrap() {
        let text = fs::read_to_string(doc.unwrap().path()).unwrap();
        for block in text.split("```toml").skip(1) {
            out.push(block.split("```").next().unwrap().as_bytes().to_vec());
        }
    }
    for text in [
        "",
        "[dns]\nlisten = \"127.0.0.1:5300, [::1]:5300\"\nudp_sockets = 4\ntcp_idle_timeout = \"1m\"\ntcp_max_connections = 10\n",
        "[dns]\nlisten = []\nudp_sockets = 999\ntcp_max_connections = 0\ntcp_idle_timeout = \"0s\"\n",
        "[admin]\nlisten = \"0.0.0.0:8053\"\ntoken_file = \"admin.token\"\n",
        "[monitors.web]\nprotocol = \"https\"\nport = 443\npath = \"/healthz\"\nhost = \"app.example\"\nheaders = { \"X-Probe\" = \"signpost\" }\nexpected_status = [\"200\", \"300-399\"]\nbody_contains = \"ok\"\ninterval = \"5s\"\ntimeout = \"2s\"\ntolerated_failures = 2\nrise = 3\nretry_interval = \"500ms\"\nreuse_connection = false\ntls = { insecure_skip_verify = true }\n",
        "[monitors.tcp]\nprotocol = \"tcp\"\ninterval = \"50ms\"\nrise = 0\nexpected_status = [\"99\", \"600\", \"300-200\"]\n",
        "[cluster]\nnode = \"hub-a\"\nlisten = \"10.1.0.53:7946\"\npeers = [\"10.2.0.53:7946\"]\nkey_file = \"cluster.key\"\nhealth = \"majority\"\n",
        "[cluster]\nlisten = \"0.0.0.0:0\"\npeers = [\"nope\"]\n",
        "[profiles.\"app.gslb.example\"]\nmethod = \"priorty\"\n[[profiles.\"app.gslb.example\".endpoints]]\nname = \"a\"\nwieght = 3\n",
        "[profiles.\"app.gslb.example\"]\nmonitor = \"web\"\n[monitors.web]\n[[profiles.\"app.gslb.example\".endpoints]]\nname = \"a\"\naddress = \"192.0.2.1\"\nprobe_address = \"192.0.2.2\"\nmonitor = { port = 8080, path = \"/x\" }\n",
        "[profiles.\"www.gslb.example\"]\n[[profiles.\"www.gslb.example\".endpoints]]\nname = \"a\"\naddress = \"192.0.2.1\"\n",
        "[profiles.\"app.other.example\"]\n[[profiles.\"app.other.example\".endpoints]]\nname = \"a\"\naddress = \"192.0.2.1\"\n",
        "sites = 5\nprofiles = []\n[nonsense]\nx = 1\n",
        "[dns\n",
    ] {
        out.push(text.as_bytes().to_vec());
    }
    out
}

/// Writes the seed inputs to `$SIGNPOST_FUZZ_SEEDS/<target>/` (`scripts/fuzz.sh seed`).
#[test]
#[ignore = "writes files; run by scripts/fuzz.sh seed"]
fn write_seeds() {
    let dir = PathBuf::from(std::env::var("SIGNPOST_FUZZ_SEEDS").expect("SIGNPOST_FUZZ_SEEDS"));
    for (target, seeds) in [
        ("request", seeds_request()),
        ("zone_file", seeds_zone()),
        ("config", seeds_config()),
    ] {
        let d = dir.join(target);
        fs::create_dir_all(&d).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            fs::write(d.join(format!("seed-{i:04}")), s).unwrap();
        }
        println!("{target}: {} seeds", seeds.len());
    }
}
