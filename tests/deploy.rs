//! What `deploy/` relies on, against the real binary: every metric the Grafana dashboard
//! and the Prometheus rules (and their unit tests) name is on a live `/metrics`, with the
//! labels the rules' tests give it; and `signpost healthcheck`, the container's
//! HEALTHCHECK, exits 0 only when the admin listener answers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use common::{GSLB_ZONE, Setup, Signpost, poll, two_sites};
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

const TOKEN: &str = "deploy-test-token";

/// The files under `deploy/` that name metrics.
const NAMING: [&str; 3] = [
    "deploy/grafana/signpost-dashboard.json",
    "deploy/prometheus/alerts.yaml",
    "deploy/prometheus/alerts.test.yaml",
];

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every `signpost_…` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("signpost_") {
        let before = rest[..i].chars().next_back();
        let tail = &rest[i..];
        let end = tail.find(|c: char| !is_name(c)).unwrap_or(tail.len());
        if !before.is_some_and(is_name) {
            out.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    out
}

/// The series of `alerts.test.yaml`'s `input_series`: (metric, label names).
fn test_series(text: &str) -> Vec<(String, BTreeSet<String>)> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- series: '"))
        .map(|s| {
            let (name, labels) = s.split_once('{').expect("series with labels");
            let labels = labels.split_once('}').expect("closing brace").0;
            let keys = labels
                .split(',')
                .map(|kv| kv.split_once('=').expect("label=value").0.trim().to_owned())
                .collect();
            (name.to_owned(), keys)
        })
        .collect()
}

/// Sample name -> the label names it has, from a Prometheus text page.
fn scraped(page: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..end].to_owned()).or_default();
        if let Some(inside) = line[end..]
            .strip_prefix('{')
            .and_then(|r| r.split_once('}'))
        {
            labels.extend(
                inside
                    .0
                    .split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, _)| k.to_owned()),
            );
        }
    }
    out
}

#[test]
fn every_metric_the_dashboard_and_alerts_name_is_on_a_live_metrics_page() {
    // An ingress that accepts TCP connections (probes succeed) and a port that refuses
    // them (probes fail, the endpoint goes Degraded).
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in open.incoming().take(1000) {
            drop(conn);
        }
    });
    let closed_port = common::free_tcp_port();
    let extra = format!(
        "{}\n[monitors.up]\nprotocol = \"tcp\"\nport = {open_port}\ninterval = \"500ms\"\ntimeout = \"1s\"\n\
         tolerated_failures = 0\nrise = 1\n\n\
         [monitors.down]\nprotocol = \"tcp\"\nport = {closed_port}\ninterval = \"500ms\"\ntimeout = \"1s\"\n\
         tolerated_failures = 0\nrise = 1\n\n\
         [profiles.\"web.gslb.example\"]\nmonitor = \"up\"\n\
         [[profiles.\"web.gslb.example\".endpoints]]\nname = \"web-a\"\nsite = \"hub-a\"\naddress = \"192.0.2.21\"\nprobe_address = \"127.0.0.1\"\n\n\
         [profiles.\"gone.gslb.example\"]\nmonitor = \"down\"\n\
         [[profiles.\"gone.gslb.example\".endpoints]]\nname = \"gone-a\"\nsite = \"hub-b\"\naddress = \"192.0.2.31\"\nprobe_address = \"127.0.0.1\"\n",
        two_sites(5)
    );
    let setup = Setup::new(&[("gslb.example.zone", GSLB_ZONE)])
        .token(TOKEN)
        .extra(&extra);
    let sp = Signpost::start(&setup);

    let status_of = |profile: &str, endpoint: &str| {
        let st = sp.status();
        st["profiles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["name"] == profile)
            .flat_map(|p| p["endpoints"].as_array().cloned().unwrap_or_default())
            .find(|e| e["name"] == endpoint)
            .map(|e| e["status"].clone())
    };
    poll(Duration::from_secs(10), || {
        status_of("web.gslb.example.", "web-a").is_some_and(|s| s == "Online")
            && status_of("gone.gslb.example.", "gone-a").is_some_and(|s| s == "Degraded")
    })
    .unwrap_or_else(|| panic!("probes did not settle:\n{:#}", sp.status()));

    // Answers, a drain, a good and a bad reload: every family gets its series.
    for _ in 0..10 {
        let wire = common::query("app.gslb.example.", RecordType::A)
            .to_vec()
            .unwrap();
        let m = Message::from_vec(&sp.udp(&wire)).unwrap();
        assert_eq!(u16::from(m.metadata.response_code), 0, "{m}");
    }
    let drain = sp.api("POST", "/api/v1/sites/hub-b/drain", "", true);
    assert_eq!(drain.status, 200, "{}", drain.body);
    assert_eq!(sp.api("POST", "/api/v1/reload", "", true).status, 200);
    let good = std::fs::read_to_string(sp.config_path()).unwrap();
    std::fs::write(sp.config_path(), "[dns\n").unwrap();
    assert_eq!(sp.api("POST", "/api/v1/reload", "", true).status, 422);
    std::fs::write(sp.config_path(), good).unwrap();

    let page = sp.api("GET", "/metrics", "", false);
    assert_eq!(page.status, 200, "{}", page.body);
    let live = scraped(&page.body);

    let mut named = BTreeSet::new();
    for file in NAMING {
        let names = metric_names(&read(file));
        assert!(!names.is_empty(), "{file} names no signpost_ metric");
        named.extend(names.into_iter().map(|n| (n, file)));
    }
    // Not a vacuous pass: the dashboard and rules cover the families signpost exports.
    let families: BTreeSet<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    assert!(families.len() >= 9, "{families:?}");
    let missing: Vec<String> = named
        .iter()
        .filter(|(n, _)| !live.contains_key(n))
        .map(|(n, f)| format!("{n} ({f})"))
        .collect();
    assert!(
        missing.is_empty(),
        "named in deploy/ but not on /metrics: {missing:?}\n/metrics:\n{}",
        page.body
    );

    // The rules' unit tests feed series with the labels signpost puts on them (plus the
    // job and instance labels Prometheus adds).
    let series = test_series(&read("deploy/prometheus/alerts.test.yaml"));
    assert!(series.len() >= 10, "{series:?}");
    for (name, labels) in series.iter().filter(|(n, _)| n != "up") {
        let have = &live[name];
        let extra: Vec<&String> = labels
            .iter()
            .filter(|l| *l != "job" && *l != "instance" && !have.contains(*l))
            .collect();
        assert!(
            extra.is_empty(),
            "alerts.test.yaml gives {name} labels {extra:?} that /metrics does not have ({have:?})"
        );
    }
}

#[test]
fn metric_names_are_found_whole() {
    let names = metric_names(
        r#"rate(signpost_dns_queries_total{job="signpost"}[5m]) / x_signpost_not_this signpost_up"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["signpost_dns_queries_total", "signpost_up"]
    );
}

#[test]
fn healthcheck_exits_0_only_while_the_admin_listener_answers() {
    let setup = Setup::new(&[("gslb.example.zone", GSLB_ZONE)]).extra(&two_sites(30));
    let mut sp = Signpost::start(&setup);

    let ran = sp.cli(&["healthcheck"]);
    assert_eq!(ran.code, Some(0), "{}", ran.text());
    assert_eq!(ran.stdout, "ok\n");
    // No monitors: ready as soon as it serves.
    poll(Duration::from_secs(5), || {
        sp.cli(&["healthcheck", "--ready"]).code == Some(0)
    })
    .expect("healthcheck --ready never passed");

    let admin = sp.admin_url();
    let status = sp.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let mut cmd = common::command(sp.dir.path(), &["healthcheck", "--admin", &admin]);
    cmd.env("SIGNPOST_LOG", "off");
    let ran = common::run(cmd);
    assert_eq!(ran.code, Some(1), "{}", ran.text());
    assert!(
        ran.stderr.contains("cannot reach the admin API"),
        "{}",
        ran.text()
    );
}
