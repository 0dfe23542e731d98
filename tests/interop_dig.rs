//! Interop: issue 2's acceptance checks, literally, with `dig` (Debian's bind9-dnsutils)
//! against signpost on the repo's default config (the README's first command), and the
//! truncation check against a zone with a large answer. Needs `--features interop`.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::{Setup, Signpost};

/// `dig @ADDR -p PORT ARGS`, one try with a short timeout; returns its output.
fn dig(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new(common::tool("dig"))
        .arg(format!("@{}", addr.ip()))
        .arg("-p")
        .arg(addr.port().to_string())
        .args(["+time=3", "+tries=1"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "dig {args:?} failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// dig's status (`NOERROR`, `NXDOMAIN`, …).
fn status(out: &str) -> &str {
    let at = out.find("status: ").expect("a header line") + "status: ".len();
    out[at..].split(',').next().unwrap()
}

/// dig's header flags (`qr aa`, …), as a list.
fn flags(out: &str) -> Vec<&str> {
    let at = out.find(";; flags:").expect("a flags line") + ";; flags:".len();
    out[at..]
        .split(';')
        .next()
        .unwrap()
        .split_whitespace()
        .collect()
}

/// dig's section count, e.g. `count(out, "ANSWER")`.
fn count(out: &str, section: &str) -> u32 {
    let key = format!("{section}: ");
    let at = out.find(&key).unwrap() + key.len();
    out[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The records of a section in dig's output, as whitespace-split fields.
fn records<'a>(out: &'a str, section: &str) -> Vec<Vec<&'a str>> {
    let head = format!(";; {section} SECTION:");
    let Some(at) = out.find(&head) else {
        return Vec::new();
    };
    out[at + head.len()..]
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect()
}

#[test]
fn acceptance_with_dig_on_the_default_config() {
    let mut server = common::start_default_config();
    let at = server.addr;

    // The SOA, from which the negative TTL follows: min(SOA TTL, MINIMUM) (RFC 2308 §5).
    let out = dig(at, &["+norec", "gslb.example", "SOA"]);
    let soa = &records(&out, "ANSWER")[0];
    let soa_ttl: u32 = soa[1].parse().unwrap();
    let minimum: u32 = soa.last().unwrap().parse().unwrap();
    let negative_ttl = soa_ttl.min(minimum);

    for tcp in [&[][..], &["+tcp"][..]] {
        let run = |args: &[&str]| dig(at, &[tcp, &["+norec"], args].concat());

        let out = run(&["gslb.example", "SOA"]);
        assert_eq!(status(&out), "NOERROR", "{out}");
        assert!(flags(&out).contains(&"aa"), "{out}");
        assert!(!flags(&out).contains(&"ra"), "{out}");
        assert_eq!(count(&out, "ANSWER"), 1, "{out}");

        let out = run(&["nosuch.gslb.example", "A"]);
        assert_eq!(status(&out), "NXDOMAIN", "{out}");
        assert!(flags(&out).contains(&"aa"), "{out}");
        let auth = records(&out, "AUTHORITY");
        assert_eq!(auth.len(), 1, "{out}");
        assert_eq!(auth[0][3], "SOA", "{out}");
        assert_eq!(auth[0][1], negative_ttl.to_string(), "{out}");

        let out = run(&["example.org", "A"]);
        assert_eq!(status(&out), "REFUSED", "{out}");

        // NODATA: an existing name, a type it lacks.
        let out = run(&["mail.gslb.example", "AAAA"]);
        assert_eq!(status(&out), "NOERROR", "{out}");
        assert_eq!(count(&out, "ANSWER"), 0, "{out}");
        assert_eq!(records(&out, "AUTHORITY")[0][3], "SOA", "{out}");

        let out = run(&["+bufsize=4096", "gslb.example", "SOA"]);
        assert!(
            out.contains("; EDNS: version: 0, flags:; udp: 1232"),
            "{out}"
        );

        let out = run(&["+edns=1", "+noednsnegotiation", "gslb.example", "SOA"]);
        assert_eq!(status(&out), "BADVERS", "{out}");

        let out = run(&["GsLb.ExAmPlE", "SOA"]);
        assert!(
            out.contains("\n;GsLb.ExAmPlE.\t"),
            "question not echoed as sent:\n{out}"
        );
    }
    server.assert_running();
}

#[test]
fn dig_sees_tc_over_udp_and_the_whole_answer_over_tcp() {
    let mut zone = String::from(
        "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\n",
    );
    for i in 0..12 {
        zone.push_str(&format!("big TXT \"big-{i:02}-{}\"\n", "x".repeat(33)));
    }
    let server = Signpost::start(&Setup::new(&[("gslb.example.zone", &zone)]));

    // Without EDNS the answer (~670 bytes) does not fit 512: TC, nothing in it.
    let out = dig(
        server.addr,
        &["+norec", "+noedns", "+ignore", "big.gslb.example", "TXT"],
    );
    assert!(flags(&out).contains(&"tc"), "{out}");
    assert_eq!(count(&out, "ANSWER"), 0, "{out}");

    // Over TCP, complete.
    let out = dig(
        server.addr,
        &["+norec", "+noedns", "+tcp", "big.gslb.example", "TXT"],
    );
    assert!(!flags(&out).contains(&"tc"), "{out}");
    assert_eq!(count(&out, "ANSWER"), 12, "{out}");

    // dig's default (UDP first, TCP on TC) ends with the whole answer too.
    let out = dig(
        server.addr,
        &["+norec", "+noedns", "big.gslb.example", "TXT"],
    );
    assert_eq!(count(&out, "ANSWER"), 12, "{out}");
}
