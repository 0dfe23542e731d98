//! RFC 8906 §8: the DNS and EDNS compliance checks an authoritative server must pass (the
//! checks ISC's genreport runs), one table against the real binary over loopback.
//!
//! Each case is written from the RFC's `dig` line and its expectations; the answers are
//! read from the raw bytes, so flags and EDNS fields no library hides are checked too.

mod common;

use common::{Setup, Signpost};

const ZONE: &str = "$ORIGIN gslb.example.
$TTL 300
@    IN SOA ns1 hostmaster 1 3600 600 86400 60
     IN NS  ns1
ns1  IN A   192.0.2.1
";

/// 14 TXT strings of 40 octets: more than 512 bytes, less than 1232.
fn big() -> String {
    (0..14)
        .map(|i| format!("big IN TXT \"big-{i:02}-{}\"\n", "x".repeat(33)))
        .collect()
}

const SOA: u16 = 6;
const TXT: u16 = 16;
const OPT: u16 = 41;

/// EDNS options: (code, data).
type Options = Vec<(u16, Vec<u8>)>;

/// A query, as `dig` would send it for the RFC's command line.
#[derive(Clone)]
struct Q {
    name: &'static str,
    qtype: u16,
    opcode: u8,
    rd: bool,
    cd: bool,
    ad: bool,
    z: bool,
    /// (version, EDNS flags, payload, options).
    edns: Option<(u8, u16, u16, Options)>,
    tcp: bool,
}

/// What the answer must be.
#[derive(Clone, Default)]
struct Want {
    /// The full RCODE (with the OPT's upper bits).
    rcode: u16,
    aa: bool,
    /// The zone's SOA in the answer section.
    soa_answer: bool,
    /// An empty answer section.
    empty_answer: bool,
    /// An OPT (version 0); otherwise none.
    opt: bool,
    /// The DO bit in the answer's OPT.
    do_bit: bool,
    /// The answer fits 512 bytes (with TC when it had to be cut).
    fits_512: bool,
    /// No question section (header only).
    header_only: bool,
}

fn q(name: &'static str, qtype: u16) -> Q {
    Q {
        name,
        qtype,
        opcode: 0,
        rd: false,
        cd: false,
        ad: false,
        z: false,
        edns: None,
        tcp: false,
    }
}

impl Q {
    fn edns(mut self, version: u8, flags: u16, payload: u16, opts: Options) -> Q {
        self.edns = Some((version, flags, payload, opts));
        self
    }

    /// The query with dig's header and transport options set, as the RFC's command lines
    /// write them: `+rec`, `+cd`, `+ad`, `+zflag`, `+opcode=N`, `+tcp`.
    fn dig(mut self, options: &str) -> Q {
        for o in options.split_whitespace() {
            match o {
                "+rec" => self.rd = true,
                "+cd" => self.cd = true,
                "+ad" => self.ad = true,
                "+zflag" => self.z = true,
                "+tcp" => self.tcp = true,
                _ => match o.strip_prefix("+opcode=") {
                    Some(n) => self.opcode = n.parse().unwrap(),
                    None => panic!("dig option {o} not known here"),
                },
            }
        }
        self
    }

    fn wire(&self) -> Vec<u8> {
        let mut p = vec![0x5A, 0x17];
        let mut hi = self.opcode << 3;
        if self.rd {
            hi |= 0x01;
        }
        let mut lo = 0u8;
        if self.z {
            lo |= 0x40;
        }
        if self.ad {
            lo |= 0x20;
        }
        if self.cd {
            lo |= 0x10;
        }
        p.extend_from_slice(&[hi, lo, 0, 1, 0, 0, 0, 0, 0, u8::from(self.edns.is_some())]);
        for label in self.name.trim_end_matches('.').split('.') {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&self.qtype.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        if let Some((version, flags, payload, opts)) = &self.edns {
            p.push(0);
            p.extend_from_slice(&OPT.to_be_bytes());
            p.extend_from_slice(&payload.to_be_bytes());
            p.extend_from_slice(&[0, *version]);
            p.extend_from_slice(&flags.to_be_bytes());
            let rdata: Vec<u8> = opts
                .iter()
                .flat_map(|(code, data)| {
                    let mut o = code.to_be_bytes().to_vec();
                    o.extend_from_slice(&(data.len() as u16).to_be_bytes());
                    o.extend_from_slice(data);
                    o
                })
                .collect();
            p.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            p.extend_from_slice(&rdata);
        }
        p
    }
}

/// One record of an answer: section index, type, class, TTL, RDATA.
struct Rr {
    section: usize,
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: Vec<u8>,
}

fn skip_name(p: &[u8], mut at: usize) -> usize {
    loop {
        let len = p[at];
        if len & 0xC0 == 0xC0 {
            return at + 2;
        }
        at += 1 + usize::from(len);
        if len == 0 {
            return at;
        }
    }
}

/// Every record of `p`, read by hand (no library in between).
fn records(p: &[u8]) -> Vec<Rr> {
    let count = |i: usize| usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
    let mut at = 12;
    for _ in 0..count(4) {
        at = skip_name(p, at) + 4;
    }
    let mut out = Vec::new();
    for (section, n) in [count(6), count(8), count(10)].into_iter().enumerate() {
        for _ in 0..n {
            at = skip_name(p, at);
            let u16_at = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
            let rtype = u16_at(at);
            let class = u16_at(at + 2);
            let ttl = u32::from_be_bytes([p[at + 4], p[at + 5], p[at + 6], p[at + 7]]);
            let len = usize::from(u16_at(at + 8));
            out.push(Rr {
                section,
                rtype,
                class,
                ttl,
                rdata: p[at + 10..at + 10 + len].to_vec(),
            });
            at += 10 + len;
        }
    }
    assert_eq!(at, p.len(), "trailing bytes");
    out
}

fn check(what: &str, query: &Q, want: &Want, a: &[u8]) {
    let ctx = format!("{what}: answer {a:02x?}");
    assert_eq!(&a[..2], &[0x5A, 0x17], "{ctx}: ID");
    assert_eq!(a[2] & 0x80, 0x80, "{ctx}: QR");
    assert_eq!((a[2] >> 3) & 0xF, query.opcode, "{ctx}: opcode echoed");
    assert_eq!(a[2] & 0x01 != 0, query.rd, "{ctx}: RD copied");
    assert_eq!(a[2] & 0x04 != 0, want.aa, "{ctx}: AA");
    assert_eq!(a[3] & 0x80, 0, "{ctx}: RA never set");
    assert_eq!(a[3] & 0x40, 0, "{ctx}: Z (MBZ) clear");
    assert_eq!(a[3] & 0x20, 0, "{ctx}: AD clear (no DNSSEC data)");
    assert_eq!(a[3] & 0x10 != 0, query.cd, "{ctx}: CD copied");
    let qd = u16::from_be_bytes([a[4], a[5]]);
    assert_eq!(qd, u16::from(!want.header_only), "{ctx}: QDCOUNT");
    let rrs = records(a);
    let opt: Vec<&Rr> = rrs.iter().filter(|r| r.rtype == OPT).collect();
    let mut rcode = u16::from(a[3] & 0xF);
    if want.opt {
        assert_eq!(opt.len(), 1, "{ctx}: one OPT");
        let o = opt[0];
        assert_eq!(o.section, 2, "{ctx}: OPT in additional");
        rcode |= ((o.ttl >> 24) as u16) << 4;
        assert_eq!((o.ttl >> 16) & 0xFF, 0, "{ctx}: EDNS version 0");
        assert_eq!(o.ttl & 0x8000 != 0, want.do_bit, "{ctx}: DO");
        assert_eq!(o.ttl & 0x7FFF, 0, "{ctx}: unknown EDNS flags (MBZ) clear");
        assert!(o.class >= 512, "{ctx}: payload advertised");
        // Options: no unknown option echoed (RFC 6891 §6.1.2).
        let mut at = 0;
        while at < o.rdata.len() {
            let code = u16::from_be_bytes([o.rdata[at], o.rdata[at + 1]]);
            let len = usize::from(u16::from_be_bytes([o.rdata[at + 2], o.rdata[at + 3]]));
            assert_ne!(code, 100, "{ctx}: unknown option echoed");
            at += 4 + len;
        }
    } else {
        assert!(opt.is_empty(), "{ctx}: no OPT");
    }
    assert_eq!(rcode, want.rcode, "{ctx}: RCODE");
    let answers: Vec<&Rr> = rrs.iter().filter(|r| r.section == 0).collect();
    if want.soa_answer {
        assert_eq!(answers.len(), 1, "{ctx}: the SOA");
        assert_eq!(answers[0].rtype, SOA, "{ctx}: the SOA");
    } else {
        assert!(
            answers.iter().all(|r| r.rtype != SOA),
            "{ctx}: no SOA in answer"
        );
    }
    if want.empty_answer {
        assert!(answers.is_empty(), "{ctx}: empty answer section");
    }
    if want.fits_512 {
        assert!(a.len() <= 512, "{ctx}: {} bytes", a.len());
    }
}

#[test]
fn rfc8906_section_8_checks() {
    let zone = format!("{ZONE}{}", big());
    let sp = Signpost::start(&Setup::new(&[("gslb.example.zone", &zone)]));
    let apex = "gslb.example.";
    let soa_ok = Want {
        aa: true,
        soa_answer: true,
        ..Want::default()
    };
    let soa_edns = Want {
        opt: true,
        ..soa_ok.clone()
    };
    let badvers = Want {
        rcode: 16,
        opt: true,
        ..Want::default()
    };
    let notimp = Want {
        rcode: 4,
        header_only: true,
        ..Want::default()
    };
    let unknown_opt = || vec![(100u16, Vec::new())];
    // The apex SOA asked with EDNS: `+edns=version +ednsflags=flags +ednsopt=...`.
    let edns = |version, flags, opts| q(apex, SOA).edns(version, flags, 4096, opts);
    let cases: Vec<(&str, Q, Want)> = vec![
        // §8.1.1 dig +norec +noedns soa zone
        ("8.1.1 plain DNS", q(apex, SOA), soa_ok.clone()),
        // §8.1.2 dig +norec +noedns type1000 zone
        (
            "8.1.2 unknown type",
            q(apex, 1000),
            Want {
                aa: true,
                empty_answer: true,
                ..Want::default()
            },
        ),
        // §8.1.3.1 dig +norec +noedns +cd soa zone
        ("8.1.3.1 CD=1", q(apex, SOA).dig("+cd"), soa_ok.clone()),
        // §8.1.3.2 dig +norec +noedns +ad soa zone
        ("8.1.3.2 AD=1", q(apex, SOA).dig("+ad"), soa_ok.clone()),
        // §8.1.3.3 dig +norec +noedns +zflag soa zone
        ("8.1.3.3 Z=1", q(apex, SOA).dig("+zflag"), soa_ok.clone()),
        // §8.1.4 dig +noedns +opcode=15 +norec +header-only zone
        (
            "8.1.4 unknown opcode",
            q(apex, SOA).dig("+opcode=15"),
            notimp.clone(),
        ),
        // genreport opcodeflg: the unknown opcode with RD, CD and AD set: RD and CD
        // copied, nothing else.
        (
            "opcodeflg",
            q(apex, SOA).dig("+opcode=15 +rec +cd +ad"),
            notimp.clone(),
        ),
        // §8.1.5 dig +norec +noedns +tcp soa zone
        ("8.1.5 TCP", q(apex, SOA).dig("+tcp"), soa_ok.clone()),
        // §8.2.1 dig +norec +edns=0 soa zone
        ("8.2.1 EDNS 0", edns(0, 0, vec![]), soa_edns.clone()),
        // §8.2.2 dig +norec +edns=1 +noednsneg soa zone
        ("8.2.2 EDNS 1", edns(1, 0, vec![]), badvers.clone()),
        // §8.2.3 dig +norec +ednsopt=100 soa zone
        (
            "8.2.3 unknown option",
            edns(0, 0, unknown_opt()),
            soa_edns.clone(),
        ),
        // §8.2.4 dig +norec +ednsflags=0x80 soa zone
        (
            "8.2.4 unknown EDNS flag",
            edns(0, 0x0080, vec![]),
            soa_edns.clone(),
        ),
        // §8.2.5 dig +norec +edns=1 +noednsneg +ednsflags=0x80 soa zone
        (
            "8.2.5 EDNS 1 with an unknown flag",
            edns(1, 0x0080, vec![]),
            badvers.clone(),
        ),
        // §8.2.6 dig +norec +edns=1 +noednsneg +ednsopt=100 soa zone
        (
            "8.2.6 EDNS 1 with an unknown option",
            edns(1, 0, unknown_opt()),
            badvers.clone(),
        ),
        // §8.2.7 dig +norec +dnssec +bufsize=512 +ignore dnskey zone (here: an RRset
        // larger than 512 bytes): within 512 bytes, TC when cut.
        (
            "8.2.7 edns@512",
            q("big.gslb.example.", TXT).edns(0, 0x8000, 512, vec![]),
            Want {
                aa: true,
                opt: true,
                do_bit: true,
                fits_512: true,
                ..Want::default()
            },
        ),
        // §8.2.8 dig +norec +dnssec soa zone: DO copied (RFC 3225 §3).
        (
            "8.2.8 DO=1",
            edns(0, 0x8000, vec![]),
            Want {
                do_bit: true,
                ..soa_edns.clone()
            },
        ),
        // §8.2.9 dig +norec +edns=0 +tcp soa zone
        (
            "8.2.9 EDNS over TCP",
            edns(0, 0, vec![]).dig("+tcp"),
            soa_edns.clone(),
        ),
        // The unknown opcode with an OPT: NOTIMP, header only (nothing past the header of
        // an unknown opcode is interpreted).
        (
            "unknown opcode with EDNS",
            edns(0, 0, vec![]).dig("+opcode=15"),
            notimp.clone(),
        ),
    ];
    for (what, query, want) in &cases {
        let wire = query.wire();
        let answer = if query.tcp {
            sp.tcp(&wire)
        } else {
            sp.udp(&wire)
        };
        check(what, query, want, &answer);
    }
    // The truncated answer of §8.2.7 is complete over TCP.
    let big = q("big.gslb.example.", TXT).edns(0, 0x8000, 512, vec![]);
    let udp = sp.udp(&big.wire());
    assert_ne!(udp[2] & 0x02, 0, "TC on the cut answer");
    let tcp = sp.tcp(&big.wire());
    assert_eq!(tcp[2] & 0x02, 0);
    assert_eq!(records(&tcp).iter().filter(|r| r.rtype == TXT).count(), 14);
}
