//! Table-driven tests: each method × endpoint statuses × `all_down`.
//!
//! Every profile has three endpoints a, b, c. A row gives their statuses and the outcome
//! expected under each `all_down`: the set of endpoints that answer over many decisions
//! (every one of them must appear, no other may), or NODATA / SERVFAIL every time.

use std::collections::BTreeSet;
use std::net::IpAddr;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::testutil::{load, outcome, pid, set_rtt, set_status};
use super::{Client, Kind, decide};
use crate::base::Rtype;
use crate::snapshot::Status;
use crate::snapshot::Status::{
    AlwaysServe as ALW, CheckingEndpoint as CHK, Degraded as DEG, Disabled as DIS, Online as ON,
};

const REGIONS: &str = r#"
[geo.regions]
corp-dublin = ["10.20.1.0/24"]
corp-emea = ["10.20.0.0/16", "fd00:20::/32"]
"#;

/// A profile `t.gslb.example.` with endpoints a, b, c; `extra[i]` adds keys to endpoint i.
fn three(method: &str, all_down: &str, profile_keys: &str, extra: [&str; 3]) -> String {
    let mut s = format!(
        "{REGIONS}\n[profiles.\"t.gslb.example\"]\nmethod = \"{method}\"\nall_down = \"{all_down}\"\n{profile_keys}\n"
    );
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        s += &format!(
            "[[profiles.\"t.gslb.example\".endpoints]]\nname = \"{name}\"\naddress = \"192.0.2.{}\"\n{}\n",
            i + 1,
            extra[i]
        );
    }
    s
}

/// One row of a table: the statuses of a, b, c, then `->` and the outcome, the same under
/// every `all_down` (`ON DEG ON -> b c`) or per `all_down` as `serve_all | nodata |
/// servfail` (`DEG DEG DEG -> a b c | NODATA | SERVFAIL`).
struct Row {
    statuses: [Status; 3],
    serve_all: String,
    nodata: String,
    servfail: String,
}

fn parse_rows(table: &str) -> Vec<Row> {
    let status = |s: &str| match s {
        "ON" => ON,
        "DEG" => DEG,
        "DIS" => DIS,
        "CHK" => CHK,
        "ALW" => ALW,
        _ => panic!("unknown status {s}"),
    };
    table
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (left, right) = l.split_once("->").expect("`statuses -> outcome`");
            let statuses: Vec<Status> = left.split_whitespace().map(status).collect();
            let want: Vec<String> = right.split('|').map(|w| w.trim().to_owned()).collect();
            let want = match &want[..] {
                [all] => [all.clone(), all.clone(), all.clone()],
                [s, n, f] => [s.clone(), n.clone(), f.clone()],
                _ => panic!("one outcome, or three: {l}"),
            };
            let [serve_all, nodata, servfail] = want;
            Row {
                statuses: statuses.try_into().expect("three statuses"),
                serve_all,
                nodata,
                servfail,
            }
        })
        .collect()
}

/// [`table_with`] with no profile keys and no RTTs.
fn table(method: &str, extra: [&str; 3], client: &str, rows: &str) {
    table_with(method, "", extra, &[], client, rows);
}

/// Runs `rows` against the method, once per `all_down`, from `client`.
fn table_with(
    method: &str,
    profile_keys: &str,
    extra: [&str; 3],
    rtts: &[Option<u64>],
    client: &str,
    rows: &str,
) {
    let rows = parse_rows(rows);
    assert!(!rows.is_empty());
    for all_down in ["serve_all", "nodata", "servfail"] {
        let mut snap = load(&three(method, all_down, profile_keys, extra));
        let p = pid(&snap, "t.gslb.example");
        set_rtt(&mut snap, p, rtts);
        let client = Client::parse(client).unwrap();
        let mut rng = SmallRng::seed_from_u64(7);
        for r in &rows {
            set_status(&mut snap, p, &r.statuses);
            let want = match all_down {
                "serve_all" => &r.serve_all,
                "nodata" => &r.nodata,
                _ => &r.servfail,
            };
            let mut seen = BTreeSet::new();
            for _ in 0..300 {
                let d = decide(&snap, p, Rtype::A, &client, &mut rng);
                if d.kind == Kind::Answer
                    && d.picks().len() > snap.model.profiles[p as usize].max_answers as usize
                {
                    panic!("{method}: more picks than max_answers: {d:?}");
                }
                seen.extend(outcome(&snap, &d).split(' ').map(str::to_owned));
            }
            let got = seen.into_iter().collect::<Vec<_>>().join(" ");
            assert_eq!(
                &got, want,
                "{method}, all_down = {all_down}, statuses {:?}, client {client:?}",
                r.statuses
            );
        }
    }
}

/// One test per method whose table needs a single client: `test: (method, profile keys,
/// keys of endpoints a b c, RTTs of a b c in ms, client) rows;`.
macro_rules! method_tables {
    ($($test:ident: ($method:expr, $keys:expr, $extra:expr, $rtts:expr, $client:expr) $rows:expr;)*) => {
        $(
            #[test]
            fn $test() {
                table_with($method, $keys, $extra, $rtts, $client, $rows);
            }
        )*
    };
}

method_tables! {
    weighted: ("weighted", "", ["weight = 1", "weight = 2", "weight = 3"], &[], "10.20.1.5") "
        ON  ON  ON  -> a b c
        DEG ON  ON  -> b c
        DIS DEG ON  -> c
        CHK DEG DIS -> a
        ALW DEG DEG -> a
        DEG DEG DEG -> a b c | NODATA | SERVFAIL
        DIS DEG DEG -> b c | NODATA | SERVFAIL
        DIS DIS DIS -> NODATA | NODATA | SERVFAIL
    ";

    priority: ("priority", "", ["priority = 1", "priority = 1", "priority = 2"], &[], "10.20.1.5") "
        ON  ON  ON  -> a b
        DEG ON  ON  -> b
        DEG DIS ON  -> c
        DIS DEG CHK -> c
        DEG DEG ALW -> c
        DEG DEG DEG -> a b | NODATA | SERVFAIL
        DIS DEG DEG -> b | NODATA | SERVFAIL
        DIS DIS DEG -> c | NODATA | SERVFAIL
        DIS DIS DIS -> NODATA | NODATA | SERVFAIL
    ";

    // RTT a 10 ms, b 13 ms, c 40 ms; band max(20 % of best, 5 ms).
    performance: ("performance", "", ["", "", ""], &[Some(10), Some(13), Some(40)], "10.20.1.5") "
        ON  DIS ON  -> a
        ON  ON  ON  -> a b
        DEG ON  ON  -> b
        DEG DEG ON  -> c
        DEG DEG DEG -> a b | NODATA | SERVFAIL
        DIS DEG DEG -> b | NODATA | SERVFAIL
        DIS DIS DIS -> NODATA | NODATA | SERVFAIL
    ";

    multivalue: ("multivalue", "max_answers = 2", ["addresses = [\"192.0.2.11\"]", "", ""], &[], "10.20.1.5") "
        ON  ON  ON  -> a b c
        DEG ON  ON  -> b c
        ON  DEG DIS -> a
        DEG DEG DEG -> a b c | NODATA | SERVFAIL
        DIS DEG DIS -> b | NODATA | SERVFAIL
        DIS DIS DIS -> NODATA | NODATA | SERVFAIL
    ";
}

/// Regions of a, b, c for the geographic tables: corp-dublin inside corp-emea, and WORLD.
const DUBLIN_EMEA_WORLD: [&str; 3] = [
    "regions = [\"corp-dublin\"]",
    "regions = [\"corp-emea\"]",
    "regions = [\"WORLD\"]",
];

const GEO_ROWS: &str = "
        ON  ON  ON  -> a
        DEG ON  ON  -> b
        DIS DEG ON  -> c
        DEG DEG CHK -> c
        DEG ALW DEG -> b
        DEG DEG DEG -> a | NODATA | SERVFAIL
        DIS DEG DEG -> b | NODATA | SERVFAIL
        DIS DIS DEG -> c | NODATA | SERVFAIL
        DIS DIS DIS -> NODATA | NODATA | SERVFAIL
    ";

#[test]
fn geographic() {
    // The client 10.20.1.5 is in corp-dublin (/24) and corp-emea (/16).
    let extra = DUBLIN_EMEA_WORLD;
    table("geographic", extra, "10.20.1.5", GEO_ROWS);
    table("geographic", extra, "10.20.1.0/24", GEO_ROWS);
    // Outside every region only WORLD matches.
    let rows = "
        ON  ON  ON  -> c
        ON  ON  CHK -> c
        ON  ON  DEG -> c | NODATA | SERVFAIL
        ON  ON  DIS -> NODATA | NODATA | SERVFAIL
    ";
    table("geographic", extra, "192.168.1.1", rows);
}

#[test]
fn geographic_unmatched_is_nodata_whatever_all_down_says() {
    let unmatched = "
        ON  ON  ON  -> NODATA
        DEG DEG DEG -> NODATA
        DIS DIS DIS -> NODATA
    ";
    // No WORLD endpoint.
    let extra = [
        "regions = [\"corp-dublin\"]",
        "regions = [\"corp-emea\"]",
        "regions = [\"corp-emea\"]",
    ];
    table("geographic", extra, "192.168.1.1", unmatched);
}

#[test]
fn subnet() {
    let extra = [
        "subnets = [\"10.20.1.0/24\"]",
        "subnets = [\"10.20.0.0/16\", \"10.30.0.0/16\"]",
        "",
    ];
    table("subnet", extra, "10.20.1.5", GEO_ROWS);
    // Last row, serve_all: as if every enabled endpoint were Online, so the subnet decides.
    let rows = "
        ON  ON  ON  -> b
        ON  DEG ON  -> c
        ON  DEG DEG -> b | NODATA | SERVFAIL
    ";
    table("subnet", extra, "10.30.9.9", rows);
    // No fallback endpoint: unmatched clients get NODATA.
    let extra = [
        "subnets = [\"10.20.1.0/24\"]",
        "subnets = [\"10.20.0.0/16\"]",
        "subnets = [\"10.30.0.0/16\"]",
    ];
    let rows = "
        ON  ON  ON  -> NODATA
        DEG DEG DEG -> NODATA
    ";
    table("subnet", extra, "192.168.1.1", rows);
}

/// Runs one decision of `t.gslb.example.` for `client` and `qtype`.
fn once(snap: &crate::snapshot::Snapshot, qtype: Rtype, client: &str) -> super::Decision {
    let p = pid(snap, "t.gslb.example");
    let mut rng = SmallRng::seed_from_u64(1);
    decide(snap, p, qtype, &Client::parse(client).unwrap(), &mut rng)
}

#[test]
fn scope_is_the_deciding_rules_prefix() {
    let geo = load(&three("geographic", "serve_all", "", DUBLIN_EMEA_WORLD));
    assert_eq!(once(&geo, Rtype::A, "10.20.1.0/24").scope, 24);
    // 10.20.128.0/17 holds no more specific region: the whole half answers the same.
    assert_eq!(once(&geo, Rtype::A, "10.20.200.0/24").scope, 17);
    // corp-emea decides for 10.20.9.0, but 10.20.1.0/24 (corp-dublin) sits inside it: the
    // scope must exclude it (10.20.9 and 10.20.1 share 20 bits).
    assert_eq!(once(&geo, Rtype::A, "10.20.9.0/24").scope, 21);
    assert_eq!(once(&geo, Rtype::A, "fd00:20:1::/48").scope, 32);
    // WORLD: long enough to exclude 10.20.0.0/16 (11.x shares 7 bits with 10.x).
    assert_eq!(once(&geo, Rtype::A, "11.0.0.0/8").scope, 8);
    let weighted = load(&three("weighted", "serve_all", "", ["", "", ""]));
    assert_eq!(once(&weighted, Rtype::A, "10.20.1.0/24").scope, 0);
    let subnet = load(&three(
        "subnet",
        "serve_all",
        "",
        [
            "subnets = [\"10.20.1.0/24\"]",
            "subnets = [\"10.20.0.0/16\"]",
            "",
        ],
    ));
    assert_eq!(once(&subnet, Rtype::A, "10.20.1.0/24").scope, 24);
    assert_eq!(once(&subnet, Rtype::A, "10.20.200.0/24").scope, 17);
}

#[test]
fn degraded_region_is_skipped_but_still_scopes_the_answer() {
    let mut snap = load(&three("geographic", "serve_all", "", DUBLIN_EMEA_WORLD));
    let p = pid(&snap, "t.gslb.example");
    set_status(&mut snap, p, &[DEG, ON, ON]);
    let d = once(&snap, Rtype::A, "10.20.1.0/24");
    assert_eq!(outcome(&snap, &d), "b");
    // Answered by corp-emea (/16), but only valid inside the Degraded /24.
    assert_eq!(d.scope, 24);
}

#[test]
fn address_families_and_cname() {
    let mut snap = load(
        r#"
[profiles]
"t.gslb.example" = { method = "priority", endpoints = [
    { name = "v6", addresses = ["2001:db8::1", "2001:db8::2"] },
    { name = "cname", target = "ingress.gslb.example.", priority = 2 },
] }
"#,
    );
    let aaaa = once(&snap, Rtype::AAAA, "10.0.0.1");
    assert_eq!(outcome(&snap, &aaaa), "v6");
    let mut records = Vec::new();
    aaaa.for_each_record(&snap, Rtype::AAAA, |_, r| records.push(r));
    assert_eq!(
        records,
        vec![
            super::Record::Aaaa("2001:db8::1".parse().unwrap()),
            super::Record::Aaaa("2001:db8::2".parse().unwrap())
        ]
    );
    // Priority 1 is eligible but has no A records: NODATA, not the priority-2 endpoint
    // (A and AAAA answers come from the same tier).
    let a = once(&snap, Rtype::A, "10.0.0.1");
    assert_eq!(
        (a.kind, a.rule),
        (Kind::NoData, super::Rule::Priority { priority: 1 })
    );
    assert_eq!(once(&snap, Rtype::CNAME, "10.0.0.1").kind, Kind::NoData);
    // v6 down: the CNAME endpoint answers A (as a CNAME) and CNAME.
    let p = pid(&snap, "t.gslb.example");
    set_status(&mut snap, p, &[DEG, ON]);
    let a = once(&snap, Rtype::A, "10.0.0.1");
    assert_eq!(outcome(&snap, &a), "cname");
    let mut records = Vec::new();
    a.for_each_record(&snap, Rtype::A, |_, r| records.push(r));
    assert!(
        matches!(records[..], [super::Record::Cname(_)]),
        "{records:?}"
    );
    assert_eq!(
        outcome(&snap, &once(&snap, Rtype::CNAME, "10.0.0.1")),
        "cname"
    );
    assert_eq!(
        once(&snap, Rtype::MX, "10.0.0.1").rule,
        super::Rule::OtherType
    );
}

#[test]
fn the_chosen_endpoints_decide_the_address_family() {
    // weighted: the tier is every eligible endpoint; each type picks those that have it.
    let mut snap = load(
        r#"
[profiles]
"t.gslb.example" = { method = "weighted", endpoints = [{ name = "a", address = "192.0.2.1" }, { name = "b", address = "2001:db8::2" }, { name = "c", address = "2001:db8::3" }] }
"#,
    );
    let p = pid(&snap, "t.gslb.example");
    set_status(&mut snap, p, &[ON, ON, DEG]);
    let mut rng = SmallRng::seed_from_u64(5);
    let c = Client::new(IpAddr::from([10, 0, 0, 1]));
    for _ in 0..50 {
        let six = decide(&snap, p, Rtype::AAAA, &c, &mut rng);
        assert_eq!(outcome(&snap, &six), "b");
        let four = decide(&snap, p, Rtype::A, &c, &mut rng);
        assert_eq!(outcome(&snap, &four), "a");
    }
    // geographic: the client's region endpoint has no IPv6: AAAA is NODATA, not WORLD's.
    let snap = load(&format!(
        r#"{REGIONS}
[profiles."t.gslb.example"]
method = "geographic"
endpoints = [
    {{ name = "emea", address = "192.0.2.1", regions = ["corp-emea"] }},
    {{ name = "world", addresses = ["192.0.2.2", "2001:db8::2"], regions = ["WORLD"] }},
]
"#
    ));
    assert_eq!(
        outcome(&snap, &once(&snap, Rtype::A, "10.20.1.0/24")),
        "emea"
    );
    let d = once(&snap, Rtype::AAAA, "10.20.1.0/24");
    assert_eq!((outcome(&snap, &d), d.scope), ("NODATA".into(), 16));
    assert_eq!(
        outcome(&snap, &once(&snap, Rtype::AAAA, "192.168.0.0/16")),
        "world"
    );
}

#[test]
fn eligible_endpoints_without_the_type_are_nodata_not_all_down() {
    let mut snap = load(
        r#"
[profiles."t.gslb.example"]
all_down = "serve_all"
endpoints = [{ name = "v4", address = "192.0.2.1" }, { name = "v6", address = "2001:db8::1" }]
"#,
    );
    let p = pid(&snap, "t.gslb.example");
    set_status(&mut snap, p, &[ON, DEG]);
    let d = once(&snap, Rtype::AAAA, "10.0.0.1");
    assert_eq!((d.kind, d.all_down), (Kind::NoData, false));
    // Both down: serve_all answers as if both were Online.
    set_status(&mut snap, p, &[DEG, DEG]);
    let d = once(&snap, Rtype::AAAA, "10.0.0.1");
    assert_eq!((outcome(&snap, &d), d.all_down), ("v6".into(), true));
}

#[test]
fn a_query_against_ipv6_only_endpoints_is_nodata() {
    let snap = load(
        r#"
[profiles."t.gslb.example"]
all_down = "servfail"
endpoints = [{ name = "v6", address = "2001:db8::1" }]
"#,
    );
    let d = once(&snap, Rtype::A, "10.0.0.1");
    assert_eq!((d.kind, d.rule), (Kind::NoData, super::Rule::NoRecords));
}

#[test]
fn weight_zero_while_draining_is_not_answered() {
    let mut snap = load(&three("weighted", "serve_all", "", ["", "", ""]));
    let p = pid(&snap, "t.gslb.example");
    snap.endpoints[p as usize][0].weight = 0;
    snap.endpoints[p as usize][1].weight = 0;
    let mut rng = SmallRng::seed_from_u64(3);
    let c = Client::new(IpAddr::from([10, 0, 0, 1]));
    for _ in 0..200 {
        assert_eq!(
            outcome(&snap, &decide(&snap, p, Rtype::A, &c, &mut rng)),
            "c"
        );
    }
}

/// A performance profile a, b, c with `profile_keys`, serve_all, and its index.
fn performance_profile(profile_keys: &str) -> (crate::snapshot::Snapshot, u32) {
    let snap = load(&three(
        "performance",
        "serve_all",
        profile_keys,
        ["", "", ""],
    ));
    let p = pid(&snap, "t.gslb.example");
    (snap, p)
}

#[test]
fn performance_without_rtts_weights_all_and_min_band_applies() {
    let (mut snap, p) =
        performance_profile("performance_tolerance_min = \"1ms\"\nperformance_tolerance = 0.0");
    let mut rng = SmallRng::seed_from_u64(3);
    let c = Client::new(IpAddr::from([10, 0, 0, 1]));
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        seen.insert(outcome(&snap, &decide(&snap, p, Rtype::A, &c, &mut rng)));
    }
    assert_eq!(
        seen.len(),
        3,
        "no RTT yet: every endpoint is weighted among"
    );
    set_rtt(&mut snap, p, &[Some(10), Some(11), Some(12)]);
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        seen.insert(outcome(&snap, &decide(&snap, p, Rtype::A, &c, &mut rng)));
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn performance_latency_table_overrides_rtt_for_the_clients_region() {
    let (mut snap, p) = performance_profile(
        "[profiles.\"t.gslb.example\".latency.corp-emea]\nc = \"2ms\"\nb = \"30ms\"",
    );
    set_rtt(&mut snap, p, &[Some(10), Some(20), Some(40)]);
    let emea = once(&snap, Rtype::A, "10.20.1.0/24");
    assert_eq!(outcome(&snap, &emea), "c");
    assert_eq!(emea.scope, 16);
    let elsewhere = once(&snap, Rtype::A, "10.99.0.0/24");
    assert_eq!(outcome(&snap, &elsewhere), "a");
    // 10.99 and 10.20 share their first 9 bits.
    assert_eq!(
        elsewhere.scope, 10,
        "outside corp-emea, scoped to exclude it"
    );
}

#[test]
fn nested_child_below_min_hands_over() {
    let toml = r#"
[profiles]
"t.gslb.example" = { method = "priority", endpoints = [
    { name = "eu", profile = "eu.gslb.example", min_child_endpoints = 2 },
    { name = "backup", address = "192.0.2.9", priority = 2 },
] }
"eu.gslb.example" = { endpoints = [{ name = "dublin", address = "192.0.2.21" }, { name = "paris", address = "192.0.2.22" }] }
"#;
    let mut snap = load(toml);
    let eu = pid(&snap, "eu.gslb.example");
    let d = once(&snap, Rtype::A, "10.0.0.1");
    let got = outcome(&snap, &d);
    assert!(got == "dublin" || got == "paris", "{got}");
    assert_eq!(d.picks()[0].profile, eu);
    set_status(&mut snap, eu, &[ON, DEG]);
    assert_eq!(outcome(&snap, &once(&snap, Rtype::A, "10.0.0.1")), "backup");
    set_status(&mut snap, eu, &[ON, ALW]);
    assert_ne!(outcome(&snap, &once(&snap, Rtype::A, "10.0.0.1")), "backup");
    // Until probed, a CheckingEndpoint child may still make up the minimum: the nested
    // endpoint is CheckingEndpoint and served (as the publisher shows it).
    set_status(&mut snap, eu, &[ON, CHK]);
    assert_ne!(outcome(&snap, &once(&snap, Rtype::A, "10.0.0.1")), "backup");
    set_status(&mut snap, eu, &[CHK, DIS]);
    assert_eq!(outcome(&snap, &once(&snap, Rtype::A, "10.0.0.1")), "backup");
}
