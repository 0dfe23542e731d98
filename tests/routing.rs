//! Routing end to end (issue 4, acceptance 2): the real binary on a loopback port,
//! queried over UDP, with EDNS Client Subnet where the client's location matters.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
#[cfg(feature = "interop")]
use std::process::Command;

use common::{GSLB_ZONE, Setup, Signpost};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{RData, RecordType};

/// Starts the binary with `profiles` (TOML) and zone `gslb.example.` with an in-zone
/// `ingress` name.
fn start(profiles: &str) -> Signpost {
    let zone = format!("{GSLB_ZONE}ingress IN A   192.0.2.99\n");
    Signpost::start(&Setup::new(&[("gslb.example.zone", &zone)]).extra(profiles))
}

/// What came back, in words.
#[derive(Debug)]
struct Answer {
    rcode: ResponseCode,
    aa: bool,
    /// `A 192.0.2.1`, `CNAME ingress.gslb.example.`, in order.
    records: Vec<String>,
    /// Types in the authority section.
    authority: Vec<RecordType>,
    /// Echoed ECS: address, source prefix, scope prefix.
    ecs: Option<(IpAddr, u8, u8)>,
}

/// A query with EDNS (payload 1232) and, optionally, ECS `addr/prefix`, over UDP.
fn ask(s: &Signpost, name: &str, qtype: RecordType, ecs: Option<&str>) -> Answer {
    let q = common::query(name, qtype);
    let q = match ecs.map(|e| e.split_once('/').unwrap()) {
        Some((a, p)) => common::with_ecs(q, a.parse().unwrap(), p.parse().unwrap()),
        None => common::with_edns(q, 0, 1232),
    };
    let m = Message::from_vec(&s.udp(&q.to_vec().unwrap())).expect("a parsable answer");
    let records = m
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => format!("A {}", a.0),
            RData::AAAA(a) => format!("AAAA {}", a.0),
            RData::CNAME(c) => format!("CNAME {}", c.0),
            other => format!("{} {other}", r.record_type()),
        })
        .collect();
    let ecs = m.edns.as_ref().and_then(|e| {
        e.options()
            .options
            .iter()
            .find_map(|(code, opt)| match (code, opt) {
                (EdnsCode::Subnet, EdnsOption::Subnet(cs)) => {
                    Some((cs.addr(), cs.source_prefix(), cs.scope_prefix()))
                }
                _ => None,
            })
    });
    Answer {
        rcode: m.metadata.response_code,
        aa: m.metadata.authoritative,
        records,
        authority: m.authorities.iter().map(|r| r.record_type()).collect(),
        ecs,
    }
}

fn endpoints(profile: &str, list: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (name, keys) in list {
        s += &format!("[[profiles.\"{profile}\".endpoints]]\nname = \"{name}\"\n{keys}\n");
    }
    s
}

/// Regions corp-emea and corp-amer, each with an endpoint, and a WORLD endpoint.
fn regions_config() -> String {
    format!(
        "[geo.regions]\ncorp-emea = [\"10.20.0.0/16\"]\ncorp-amer = [\"10.10.0.0/16\"]\n\
         [profiles.\"app.gslb.example\"]\nmethod = \"geographic\"\n{}",
        endpoints(
            "app.gslb.example",
            &[
                ("emea", "address = \"192.0.2.1\"\nregions = [\"corp-emea\"]"),
                ("amer", "address = \"192.0.2.2\"\nregions = [\"corp-amer\"]"),
                ("world", "address = \"192.0.2.3\"\nregions = [\"WORLD\"]"),
            ]
        )
    )
}

#[test]
fn ecs_in_a_configured_region_picks_its_endpoint_and_scope_is_the_regions_prefix() {
    let s = start(&regions_config());
    let a = ask(&s, "app.gslb.example.", RecordType::A, Some("10.20.1.0/24"));
    assert_eq!((a.rcode, a.aa), (ResponseCode::NoError, true));
    assert_eq!(a.records, ["A 192.0.2.1"]);
    assert_eq!(a.ecs, Some(("10.20.1.0".parse().unwrap(), 24, 16)));
    let a = ask(&s, "app.gslb.example.", RecordType::A, Some("10.10.7.0/24"));
    assert_eq!(a.records, ["A 192.0.2.2"]);
    assert_eq!(a.ecs, Some(("10.10.7.0".parse().unwrap(), 24, 16)));
    // 10.16.0.0/12 holds corp-emea but is not in it: WORLD, valid for /14 (what sets it
    // apart from 10.20.0.0/16), echoed as no more than the source prefix, 12.
    let a = ask(&s, "app.gslb.example.", RecordType::A, Some("10.16.0.0/12"));
    assert_eq!(a.records, ["A 192.0.2.3"]);
    assert_eq!(a.ecs, Some(("10.16.0.0".parse().unwrap(), 12, 12)));
    // Without ECS the packet source (127.0.0.1) is the client: WORLD, no ECS echoed.
    let a = ask(&s, "app.gslb.example.", RecordType::A, None);
    assert_eq!(a.records, ["A 192.0.2.3"]);
    assert_eq!(a.ecs, None);
}

#[test]
fn geoip_country_from_maxminds_test_database() {
    let mmdb: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/geoip/GeoLite2-Country-Test.mmdb");
    assert!(mmdb.exists(), "{} is missing", mmdb.display());
    let s = start(&format!(
        "[geo]\nmmdb = {:?}\n[profiles.\"app.gslb.example\"]\nmethod = \"geographic\"\n{}",
        mmdb.display().to_string(),
        endpoints(
            "app.gslb.example",
            &[
                ("uk", "address = \"192.0.2.1\"\nregions = [\"GB\"]"),
                ("europe", "address = \"192.0.2.2\"\nregions = [\"EU\"]"),
                ("world", "address = \"192.0.2.3\"\nregions = [\"WORLD\"]"),
            ]
        )
    ));
    // MaxMind's test data: 81.2.69.142 is GB (network /31), 89.160.20.112 SE, Europe
    // (/28), 216.160.83.56 US (scope not checked).
    for (client, record, scope) in [
        ("81.2.69.142/32", "A 192.0.2.1", Some(31)),
        ("89.160.20.112/32", "A 192.0.2.2", Some(28)),
        ("216.160.83.56/32", "A 192.0.2.3", None),
    ] {
        let a = ask(&s, "app.gslb.example.", RecordType::A, Some(client));
        assert_eq!(a.records, [record], "{client}");
        if scope.is_some() {
            assert_eq!(a.ecs.map(|e| e.2), scope, "{client}");
        }
    }
}

#[test]
fn multivalue_never_answers_more_than_max_answers() {
    let mut list: Vec<(String, String)> = (1..=6)
        .map(|i| (format!("e{i}"), format!("address = \"192.0.2.{i}\"")))
        .collect();
    list.push((
        "off".into(),
        "address = \"192.0.2.66\"\nenabled = false".into(),
    ));
    let list: Vec<(&str, &str)> = list.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let s = start(&format!(
        "[profiles.\"mv.gslb.example\"]\nmethod = \"multivalue\"\nmax_answers = 3\n{}",
        endpoints("mv.gslb.example", &list)
    ));
    let mut seen = BTreeSet::new();
    let mut orders = BTreeSet::new();
    for _ in 0..60 {
        let a = ask(&s, "mv.gslb.example.", RecordType::A, None);
        assert_eq!(a.records.len(), 3, "{a:?}");
        let distinct: BTreeSet<&String> = a.records.iter().collect();
        assert_eq!(distinct.len(), 3, "duplicates in {a:?}");
        assert!(
            !a.records.contains(&"A 192.0.2.66".to_owned()),
            "a disabled endpoint: {a:?}"
        );
        seen.extend(a.records.iter().cloned());
        orders.insert(a.records.clone());
    }
    assert_eq!(seen.len(), 6, "every enabled address is sampled: {seen:?}");
    assert!(orders.len() > 10, "answers are shuffled: {orders:?}");
}

#[test]
fn nested_child_below_min_child_endpoints_hands_over_to_the_next_endpoint() {
    let child = endpoints(
        "eu.gslb.example",
        &[
            ("dublin", "address = \"192.0.2.21\""),
            ("paris", "address = \"192.0.2.22\"\nenabled = false"),
        ],
    );
    let parent = |name: &str, min: u32| {
        format!(
            "[profiles.\"{name}\"]\nmethod = \"priority\"\n{}",
            endpoints(
                name,
                &[
                    (
                        "eu",
                        &format!("profile = \"eu.gslb.example\"\nmin_child_endpoints = {min}"),
                    ),
                    ("backup", "address = \"192.0.2.9\"\npriority = 2"),
                ]
            )
        )
    };
    let s = start(&format!(
        "[profiles.\"eu.gslb.example\"]\n{child}{}{}",
        parent("strict.gslb.example", 2),
        parent("lenient.gslb.example", 1)
    ));
    // One of eu's two endpoints is disabled: below 2, the next endpoint answers.
    let a = ask(&s, "strict.gslb.example.", RecordType::A, None);
    assert_eq!(a.records, ["A 192.0.2.9"]);
    // With a minimum of 1 the child answers, with its enabled endpoint only.
    for _ in 0..10 {
        let a = ask(&s, "lenient.gslb.example.", RecordType::A, None);
        assert_eq!(a.records, ["A 192.0.2.21"]);
    }
}

#[test]
fn aaaa_only_profile_gives_nodata_to_a() {
    let s = start(
        r#"[profiles."v6.gslb.example"]
endpoints = [{ name = "v6", addresses = ["2001:db8::1", "2001:db8::2"] }]"#,
    );
    let a = ask(&s, "v6.gslb.example.", RecordType::A, None);
    assert_eq!((a.rcode, a.aa), (ResponseCode::NoError, true));
    assert!(a.records.is_empty(), "{a:?}");
    assert_eq!(a.authority, [RecordType::SOA]);
    let a = ask(&s, "v6.gslb.example.", RecordType::AAAA, None);
    assert_eq!(a.records, ["AAAA 2001:db8::1", "AAAA 2001:db8::2"]);
}

#[test]
fn cname_endpoint_answers_cname_and_in_zone_targets_are_chased() {
    let s = start(
        r#"[profiles."in.gslb.example"]
endpoints = [{ name = "c", target = "ingress.gslb.example." }]
[profiles."out.gslb.example"]
endpoints = [{ name = "c", target = "app.corp.example." }]"#,
    );
    let a = ask(&s, "in.gslb.example.", RecordType::A, None);
    assert_eq!(a.records, ["CNAME ingress.gslb.example.", "A 192.0.2.99"]);
    let a = ask(&s, "out.gslb.example.", RecordType::A, None);
    assert_eq!(a.records, ["CNAME app.corp.example."]);
    let a = ask(&s, "out.gslb.example.", RecordType::CNAME, None);
    assert_eq!(a.records, ["CNAME app.corp.example."]);
}

/// Issue 4 acceptance 2 as written: `dig +subnet` shows the echoed scope.
#[cfg(feature = "interop")]
#[test]
fn dig_shows_client_subnet_with_the_regions_scope() {
    let s = start(&regions_config());
    let out = Command::new(common::tool("dig"))
        .arg(format!("@{}", s.addr.ip()))
        .args(["-p", &s.addr.port().to_string()])
        .args(["app.gslb.example.", "A", "+subnet=10.20.1.0/24"])
        .args(["+norecurse", "+time=2", "+tries=2"])
        .output()
        .expect("run dig (package dnsutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CLIENT-SUBNET: 10.20.1.0/24/16"), "{text}");
    assert!(text.contains("192.0.2.1"), "{text}");
    assert!(text.contains("flags: qr aa"), "{text}");
}
