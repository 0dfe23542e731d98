//! Issue 5's acceptance points against the real binary, over loopback: site drains through
//! the CLI (at once, in every profile, across a restart), ramped drains, the token and the
//! audit log, the API's errors, `/metrics`, reloads under load, and readiness.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::ingress::{HttpServer, Reply, always};
use common::{GSLB_ZONE, Setup, Signpost, a_records, poll, two_sites};
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde_json::Value;

const TOKEN: &str = "t0ken-for-the-admin-tests";

const APP: &str = "app.gslb.example.";
const API: &str = "api.gslb.example.";

/// app-a and api-a.
const HUB_A: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 11)];
/// app-b and api-b.
const HUB_B: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 2), Ipv4Addr::new(192, 0, 2, 12)];

fn setup(extra: &str) -> Setup {
    Setup::new(&[("gslb.example.zone", GSLB_ZONE)])
        .token(TOKEN)
        .extra(&format!("{}{extra}", two_sites(5)))
}

/// One answer for `name`: its A records and their TTL (panics unless NOERROR).
fn answer(sp: &Signpost, name: &str) -> (Vec<Ipv4Addr>, Option<u32>) {
    let wire = common::query(name, RecordType::A).to_vec().unwrap();
    let m = Message::from_vec(&sp.udp(&wire)).unwrap();
    assert_eq!(u16::from(m.metadata.response_code), 0, "{name}: {m}");
    (a_records(&m), m.answers.first().map(|r| r.ttl))
}

/// Every address in `n` answers for each of app and api.
fn seen(sp: &Signpost, n: usize) -> BTreeSet<Ipv4Addr> {
    let mut s = BTreeSet::new();
    for _ in 0..n {
        for name in [APP, API] {
            s.extend(answer(sp, name).0);
        }
    }
    s
}

fn set(addrs: &[Ipv4Addr]) -> BTreeSet<Ipv4Addr> {
    addrs.iter().copied().collect()
}

/// The endpoint `name` of profile `profile` in a status document.
fn endpoint<'a>(status: &'a Value, profile: &str, name: &str) -> &'a Value {
    status["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == profile)
        .flat_map(|p| p["endpoints"].as_array().unwrap())
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no endpoint {profile}/{name} in {status:#}"))
}

/// The table row of `signpost status` for an endpoint.
fn row<'a>(table: &'a str, endpoint: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(endpoint))
        .unwrap_or_else(|| panic!("no row for {endpoint} in:\n{table}"))
}

/// The audit log's lines, parsed.
fn audit(sp: &Signpost) -> Vec<Value> {
    let path = sp.dir.path().join("state/audit.log");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

/// `/metrics`, checked line by line as Prometheus text and parsed with `prometheus-parse`.
fn metrics(sp: &Signpost) -> Vec<prometheus_parse::Sample> {
    use prometheus_parse::{LineInfo, Scrape};
    let r = sp.get_ok("/metrics");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{}",
        r.head
    );
    for line in r.body.lines() {
        match LineInfo::parse(line) {
            LineInfo::Sample { value, .. } => assert!(
                value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
                "bad value in {line:?}"
            ),
            LineInfo::Doc { .. } | LineInfo::Type { .. } | LineInfo::Empty => {}
            LineInfo::Ignored => panic!("not Prometheus text: {line:?}"),
        }
    }
    Scrape::parse(r.body.lines().map(|l| Ok(l.to_owned())))
        .unwrap()
        .samples
}

/// The value of the sample `metric` whose labels include `labels` (counters, gauges).
/// `signpost_reloads_total` by result: (ok, error).
fn reloads(samples: &[prometheus_parse::Sample]) -> (f64, f64) {
    let by = |result| value(samples, "signpost_reloads_total", &[("result", result)]);
    (by("ok"), by("error"))
}

fn value(samples: &[prometheus_parse::Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    use prometheus_parse::Value as V;
    let s = samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {metric}{labels:?}"));
    match s.value {
        V::Counter(v) | V::Gauge(v) | V::Untyped(v) => v,
        ref other => panic!("{metric} is {other:?}"),
    }
}

// --- Acceptance 1 -------------------------------------------------------------------

/// Runs the CLI with `args` (it must succeed and print `says`), then polls answers in
/// batches of 10 per profile until one batch satisfies `done`. Returns how long the CLI
/// took and how long until `done`, both from just before the CLI started.
fn cli_until(
    sp: &Signpost,
    args: &[&str],
    says: &str,
    done: impl Fn(&BTreeSet<Ipv4Addr>) -> bool,
) -> (Duration, Duration) {
    let t0 = Instant::now();
    let ran = sp.cli(args);
    assert_eq!(ran.code, Some(0), "{}", ran.text());
    assert!(ran.stdout.contains(says), "{}", ran.text());
    let cli = t0.elapsed();
    poll(Duration::from_secs(5), || done(&seen(sp, 10)))
        .unwrap_or_else(|| panic!("{args:?}: answers not as expected 5 s later"));
    (cli, t0.elapsed())
}

#[test]
fn a_drained_site_leaves_every_profile_within_a_second_stays_drained_across_a_restart_and_comes_back()
 {
    let mut sp = Signpost::start(&setup(""));
    let everything: BTreeSet<_> = HUB_A.iter().chain(&HUB_B).copied().collect();
    assert_eq!(seen(&sp, 30), everything, "both sites answered at first");

    let (cli, gone) = cli_until(
        &sp,
        &["drain", "--site", "hub-a", "--reason", "maintenance"],
        "site hub-a drained",
        |seen| seen.is_disjoint(&set(&HUB_A)),
    );
    assert!(
        gone <= Duration::from_secs(1),
        "hub-a answered until {gone:?}"
    );
    assert_eq!(
        seen(&sp, 200),
        set(&HUB_B),
        "hub-a answered after the drain"
    );
    eprintln!("drain: CLI returned after {cli:?}; hub-a out of every answer after {gone:?}");

    // The table and the JSON say so, with the reason.
    let ran = sp.cli(&["status"]);
    assert_eq!(ran.code, Some(0), "{}", ran.text());
    for ep in ["app-a", "api-a"] {
        let r = row(&ran.stdout, ep);
        assert!(r.contains(" Disabled "), "{r}");
        assert!(r.ends_with("drained: maintenance"), "{r}");
    }
    for ep in ["app-b", "api-b"] {
        let r = row(&ran.stdout, ep);
        assert!(r.contains(" Online ") && !r.contains("drained"), "{r}");
    }
    assert!(
        ran.stdout
            .contains("sites: hub-a (drained: maintenance), hub-b (active)"),
        "{}",
        ran.stdout
    );
    let drained_in_json = |sp: &Signpost| {
        let st = sp.status();
        let e = endpoint(&st, APP, "app-a");
        e["status"] == "Disabled" && e["drain"]["reason"] == "maintenance"
    };
    assert!(drained_in_json(&sp));
    // explain agrees: app-a is a candidate, Disabled and not eligible; app-b answers.
    let ran = sp.cli(&["explain", "app.gslb.example", "--client", "10.1.2.3"]);
    assert_eq!(ran.code, Some(0), "{}", ran.text());
    // Readable by default: the answer, and app-a not eligible.
    assert!(ran.stdout.contains("answer: NOERROR"), "{}", ran.stdout);
    let row = ran.stdout.lines().find(|l| l.contains("app-a")).unwrap();
    assert!(
        row.contains("Disabled") && row.contains(" no "),
        "{}",
        ran.stdout
    );
    let ran = sp.cli(&[
        "explain",
        "app.gslb.example",
        "--client",
        "10.1.2.3",
        "--json",
    ]);
    assert_eq!(ran.code, Some(0), "{}", ran.text());
    let v: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(
        v["answer"]["endpoints"][0], "app.gslb.example./app-b",
        "{v:#}"
    );
    let a = v["steps"][0]["candidates"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["endpoint"] == "app-a"))
        .unwrap_or_else(|| panic!("no app-a candidate: {v:#}"));
    assert_eq!(
        (&a["status"], &a["eligible"]),
        (&"Disabled".into(), &false.into()),
        "{v:#}"
    );

    // A restart on the same state keeps the drain.
    sp.restart();
    assert!(sp.log().contains("drains restored"), "{}", sp.log());
    assert_eq!(
        seen(&sp, 100),
        set(&HUB_B),
        "hub-a answered after the restart"
    );
    assert!(drained_in_json(&sp));

    let (_, back) = cli_until(
        &sp,
        &["undrain", "--site", "hub-a"],
        "site hub-a undrained",
        |seen| seen.is_superset(&set(&HUB_A)),
    );
    assert!(
        back <= Duration::from_secs(2),
        "hub-a back only after {back:?}"
    );
    assert_eq!(seen(&sp, 30), everything);
    let st = sp.status();
    assert_eq!(st["drains_active"], 0, "{st:#}");
    assert_eq!(endpoint(&st, API, "api-a")["status"], "Online");
    assert_eq!(st["sites"][0]["drain"], Value::Null, "{st:#}");
    eprintln!("undrain: hub-a back in the answers after {back:?}");
}

// --- Acceptance 2 -------------------------------------------------------------------

#[test]
fn a_ramped_drain_answers_about_a_third_mid_ramp_and_none_after() {
    let sp = Signpost::start(&setup(""));
    let a = HUB_A[0];
    let t0 = Instant::now();
    let ran = sp.cli(&[
        "drain", "--site", "hub-a", "--ramp", "6s", "--reason", "ramp",
    ]);
    assert_eq!(ran.code, Some(0), "{}", ran.text());
    assert!(ran.stdout.contains("draining over 6s"), "{}", ran.text());

    // (seconds since the drain, answered hub-a?) for app, until 7.5 s: bounded by time
    // and by count (one query about every 4 ms).
    let mut samples = Vec::new();
    while t0.elapsed() < Duration::from_millis(7500) && samples.len() < 5000 {
        let (addrs, _) = answer(&sp, APP);
        assert_eq!(addrs.len(), 1, "{addrs:?}");
        samples.push((t0.elapsed().as_secs_f64(), addrs[0] == a));
        std::thread::sleep(Duration::from_millis(3));
    }
    let share = |from: f64, to: f64| {
        let w: Vec<bool> = samples
            .iter()
            .filter(|(t, _)| (from..to).contains(t))
            .map(|&(_, a)| a)
            .collect();
        assert!(w.len() >= 50, "only {} answers in {from}..{to} s", w.len());
        (
            w.iter().filter(|&&a| a).count() as f64 / w.len() as f64,
            w.len(),
        )
    };
    // Expected: the drained weight is (1 − t/6) of the other's, so its share is
    // (1 − t/6) / (2 − t/6): 47 % at 0..1 s, 33 % at 3 s, 20 % at 4..5 s, 0 after 6 s.
    let (early, _) = share(0.0, 1.0);
    let (mid, n_mid) = share(2.5, 3.5);
    let (late, _) = share(4.0, 5.0);
    let (after, n_after) = share(6.5, 7.5);
    eprintln!(
        "ramp 6s: hub-a share {:.1} % at 0–1 s, {:.1} % at 2.5–3.5 s ({n_mid} answers), {:.1} % at 4–5 s, {:.1} % after 6.5 s ({n_after} answers); {} answers",
        early * 100.0,
        mid * 100.0,
        late * 100.0,
        after * 100.0,
        samples.len()
    );
    assert!((0.20..=0.45).contains(&mid), "mid-ramp share {mid}");
    assert!(early > 0.38, "share at the start {early}");
    assert!(late < mid && mid < early, "{early} {mid} {late}");
    assert_eq!(after, 0.0, "hub-a answered after the ramp ended");

    let st = sp.status();
    let e = endpoint(&st, APP, "app-a");
    assert_eq!(e["status"], "Disabled", "{e:#}");
    assert_eq!(e["drain"]["ramp_seconds"], 6.0, "{e:#}");
}

// --- Acceptance 3 -------------------------------------------------------------------

#[test]
fn mutations_need_the_token_and_each_is_audited() {
    let sp = Signpost::start(&setup(""));
    let before = sp.status();
    let body = r#"{"reason": "maintenance"}"#;

    for (auth, want) in [
        (None, "missing bearer token"),
        (Some("Bearer wrong-token"), "wrong bearer token"),
        (Some(TOKEN), "missing bearer token"), // no "Bearer " scheme
    ] {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        for path in ["/api/v1/sites/hub-a/drain", "/api/v1/reload"] {
            let r = common::http::request(sp.admin, "POST", path, &headers, body).unwrap();
            assert_eq!(r.status, 401, "{auth:?} {path}: {}", r.body);
            assert!(
                r.json()["error"].as_str().unwrap().contains(want),
                "{}",
                r.body
            );
        }
    }
    // The CLI without a token: non-zero, with the server's message.
    let mut cmd = common::command(sp.dir.path(), &["drain", "--site", "hub-a"]);
    cmd.args(["--admin", &sp.admin_url()]);
    let ran = common::run(cmd);
    assert_eq!(ran.code, Some(1), "{}", ran.text());
    assert!(
        ran.stderr
            .contains("401 Unauthorized: missing bearer token"),
        "{}",
        ran.text()
    );
    // Nothing changed, nothing was audited.
    assert_eq!(sp.status(), before);
    assert_eq!(
        seen(&sp, 30),
        set(&HUB_A).union(&set(&HUB_B)).copied().collect()
    );
    assert!(audit(&sp).is_empty(), "{:?}", audit(&sp));

    let r = sp.post_ok("/api/v1/sites/hub-a/drain", body);
    assert_eq!(r.json()["drains_active"], 1);
    sp.post_ok(
        "/api/v1/profiles/api.gslb.example/endpoints/api-b/drain",
        "",
    );
    sp.post_ok("/api/v1/sites/hub-a/undrain", "");
    let lines = audit(&sp);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let now = SystemTime::now();
    for (line, (action, target, reason)) in lines.iter().zip([
        ("drain", "site hub-a", "maintenance"),
        ("drain", "endpoint api.gslb.example/api-b", ""),
        ("undrain", "site hub-a", ""),
    ]) {
        let time = humantime::parse_rfc3339(line["time"].as_str().unwrap()).unwrap();
        let age = now.duration_since(time).unwrap_or_default();
        assert!(age < Duration::from_secs(60), "{line}");
        let caller: SocketAddr = line["caller"].as_str().unwrap().parse().unwrap();
        assert!(caller.ip().is_loopback(), "{line}");
        assert_eq!(line["action"], action, "{line}");
        assert_eq!(line["target"], target, "{line}");
        assert_eq!(line["reason"], reason, "{line}");
        assert_eq!(line["result"], "ok", "{line}");
    }
}

#[test]
fn the_api_answers_json_errors_for_wrong_methods_paths_and_bodies() {
    let sp = Signpost::start(&setup(""));
    let drain = "/api/v1/sites/hub-a/drain";
    for (method, path, body, status, message) in [
        (
            "GET",
            drain,
            "",
            405,
            "GET is not allowed on /api/v1/sites/hub-a/drain",
        ),
        ("DELETE", "/api/v1/status", "", 405, "DELETE is not allowed"),
        ("POST", "/api/v1/status", "", 405, "POST is not allowed"),
        ("PUT", "/api/v1/reload", "", 405, "PUT is not allowed"),
        ("POST", "/metrics", "", 405, "POST is not allowed"),
        (
            "GET",
            "/api/v1/nothing",
            "",
            404,
            "no such API path: /api/v1/nothing",
        ),
        ("GET", "/nothing", "", 404, "not found: /nothing"),
        (
            "POST",
            "/api/v1/sites/hub-a/evict",
            "",
            404,
            "no such API path",
        ),
        (
            "POST",
            drain,
            "{\"reason\": ",
            400,
            "body must be JSON like",
        ),
        ("POST", drain, "[1, 2]", 400, "body must be JSON like"),
        (
            "POST",
            drain,
            r#"{"reasn": "typo"}"#,
            400,
            "unknown field `reasn`",
        ),
        ("POST", drain, r#"{"ramp": "soon"}"#, 400, "ramp: "),
        (
            "POST",
            drain,
            r#"{"ramp": "30d"}"#,
            400,
            "ramp: at most 7 days",
        ),
        (
            "POST",
            "/api/v1/sites/hub-z/drain",
            "",
            404,
            "no site named \"hub-z\"; the sites are: hub-a, hub-b",
        ),
        (
            "POST",
            "/api/v1/profiles/app.gslb.example/endpoints/nope/drain",
            "",
            404,
            "has no endpoint named \"nope\"",
        ),
        (
            "POST",
            "/api/v1/profiles/nope.gslb.example/endpoints/app-a/undrain",
            "",
            404,
            "no profile named",
        ),
        (
            "GET",
            "/api/v1/explain?name=app.gslb.example",
            "",
            400,
            "client is required",
        ),
        (
            "GET",
            "/api/v1/explain?name=nope.gslb.example&client=10.0.0.1",
            "",
            404,
            "no profile named",
        ),
    ] {
        let r = sp.api(method, path, body, true);
        assert_eq!(r.status, status, "{method} {path} {body}: {}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{}",
            r.head
        );
        let v = r.json();
        assert_eq!(v["status"], status, "{v}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains(message), "{method} {path} {body}: {error}");
    }
    let st = sp.status();
    assert_eq!(st["drains_active"], 0, "{st:#}");
    assert_eq!(st["generation"], 1, "{st:#}");
    assert_eq!(sp.api("GET", "/healthz", "", false).status, 200);
}

#[test]
fn a_non_loopback_admin_listener_without_a_token_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/gslb.example.zone"), GSLB_ZONE).unwrap();
    // Only the admin listener would be reachable from elsewhere; it is never bound.
    let config = format!(
        "[dns]\nlisten = [\"127.0.0.1:{}\"]\n\n[admin]\nlisten = \"0.0.0.0:{}\"\n\n[state]\ndir = \"state\"\n",
        common::free_port(),
        common::free_tcp_port()
    );
    std::fs::write(dir.path().join("signpost.toml"), config).unwrap();
    for cmd in ["serve", "check"] {
        let ran = common::run(common::command(
            dir.path(),
            &[cmd, "--config", "signpost.toml"],
        ));
        assert_eq!(ran.code, Some(64), "{cmd}: {}", ran.text());
        assert!(
            ran.stderr.contains("signpost.toml: admin.token_file:")
                && ran
                    .stderr
                    .contains("is reachable from other hosts but admin.token_file is not set"),
            "{cmd}: {}",
            ran.text()
        );
        assert!(!ran.text().contains("listening"), "{}", ran.text());
    }
}

// --- Acceptance 4 -------------------------------------------------------------------

#[test]
fn metrics_parse_as_prometheus_text_and_hold_every_family() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ingress = rt.block_on(HttpServer::start(always(Reply::Status(200, "ok"))));
    let probed = format!(
        "\n[monitors.web]\nport = {}\ninterval = \"500ms\"\ntimeout = \"1s\"\n\n\
         [profiles.\"web.gslb.example\"]\nmonitor = \"web\"\n\
         [[profiles.\"web.gslb.example\".endpoints]]\nname = \"web-a\"\nsite = \"hub-a\"\naddress = \"192.0.2.21\"\nprobe_address = \"127.0.0.1\"\n\n\
         [profiles.\"multi.gslb.example\"]\nmethod = \"multivalue\"\nmax_answers = 4\n\
         [[profiles.\"multi.gslb.example\".endpoints]]\nname = \"multi-a\"\naddresses = [\"192.0.2.51\", \"192.0.2.52\"]\n\
         [[profiles.\"multi.gslb.example\".endpoints]]\nname = \"multi-b\"\naddress = \"192.0.2.53\"\n",
        ingress.addr.port()
    );
    let mut sp = Signpost::start(&setup(&probed));
    poll(Duration::from_secs(5), || {
        endpoint(&sp.status(), "web.gslb.example.", "web-a")["status"] == "Online"
    })
    .expect("web-a did not come Online");

    for _ in 0..20 {
        answer(&sp, APP);
    }
    // Multivalue: three addresses from two endpoints in each answer.
    for _ in 0..5 {
        assert_eq!(answer(&sp, "multi.gslb.example.").0.len(), 3);
    }
    let nx = common::query("nothing.gslb.example.", RecordType::A);
    let nx = Message::from_vec(&sp.udp(&nx.to_vec().unwrap())).unwrap();
    assert_eq!(u16::from(nx.metadata.response_code), 3, "{nx}");
    assert_eq!(
        sp.api("POST", "/api/v1/sites/hub-a/drain", "", true).status,
        200
    );
    assert_eq!(sp.api("POST", "/api/v1/reload", "", true).status, 200);
    std::fs::write(sp.config_path(), "[dns\n").unwrap();
    assert_eq!(sp.api("POST", "/api/v1/reload", "", true).status, 422);

    let m = metrics(&sp);
    for family in [
        "signpost_dns_queries_total",
        "signpost_answers_total",
        "signpost_endpoint_status",
        "signpost_probe_duration_seconds",
        "signpost_probe_results_total",
        "signpost_status_transitions_total",
        "signpost_reloads_total",
        "signpost_config_generation",
        "signpost_drains_active",
    ] {
        assert!(
            m.iter().any(|s| s.metric == family),
            "no {family} in /metrics:\n{}",
            sp.api("GET", "/metrics", "", false).body
        );
    }
    let q = value(
        &m,
        "signpost_dns_queries_total",
        &[("protocol", "udp"), ("qtype", "A"), ("rcode", "NOERROR")],
    );
    assert!(q >= 20.0, "{q}");
    let nx = [("protocol", "udp"), ("qtype", "A"), ("rcode", "NXDOMAIN")];
    assert_eq!(value(&m, "signpost_dns_queries_total", &nx), 1.0);
    let answered: f64 = ["app-a", "app-b"]
        .iter()
        .map(|e| {
            value(
                &m,
                "signpost_answers_total",
                &[("profile", "app.gslb.example"), ("endpoint", e)],
            )
        })
        .sum();
    assert_eq!(answered, 20.0);
    // An endpoint counts once per answer, however many of its addresses it holds.
    for e in ["multi-a", "multi-b"] {
        let labels = [("profile", "multi.gslb.example"), ("endpoint", e)];
        assert_eq!(value(&m, "signpost_answers_total", &labels), 5.0, "{e}");
    }
    // Every endpoint has its current status at 1 (and no other at 1).
    for (profile, ep, site, status) in [
        ("app.gslb.example", "app-a", "hub-a", "disabled"),
        ("app.gslb.example", "app-b", "hub-b", "online"),
        ("api.gslb.example", "api-a", "hub-a", "disabled"),
        ("api.gslb.example", "api-b", "hub-b", "online"),
        ("web.gslb.example", "web-a", "hub-a", "disabled"),
    ] {
        let ones: Vec<&str> = m
            .iter()
            .filter(|s| {
                s.metric == "signpost_endpoint_status"
                    && s.labels.get("profile") == Some(profile)
                    && s.labels.get("endpoint") == Some(ep)
                    && s.value == prometheus_parse::Value::Gauge(1.0)
            })
            .map(|s| {
                assert_eq!(s.labels.get("site"), Some(site));
                s.labels.get("status").unwrap()
            })
            .collect();
        assert_eq!(ones, [status], "{profile}/{ep}");
    }
    let probe = m
        .iter()
        .find(|s| s.metric == "signpost_probe_duration_seconds")
        .unwrap();
    match &probe.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert!(buckets.iter().any(|b| b.count >= 1.0), "{buckets:?}")
        }
        other => panic!("signpost_probe_duration_seconds is {other:?}"),
    }
    assert!(value(&m, "signpost_probe_results_total", &[("outcome", "ok")]) >= 1.0);
    assert!(value(&m, "signpost_status_transitions_total", &[("to", "online")]) >= 1.0);
    assert!(
        value(
            &m,
            "signpost_status_transitions_total",
            &[("to", "disabled")]
        ) >= 3.0
    );
    assert_eq!(reloads(&m), (1.0, 1.0), "signpost_reloads_total: ok, error");
    assert_eq!(value(&m, "signpost_config_generation", &[]), 2.0);
    assert_eq!(value(&m, "signpost_drains_active", &[]), 1.0);
    sp.assert_running();
}

// --- Acceptance 5 -------------------------------------------------------------------

/// What a load run saw.
#[derive(Debug, Default)]
struct LoadReport {
    sent: usize,
    answered: usize,
    servfail: usize,
    /// Answers that were not NOERROR with one address of the profile.
    wrong: Vec<String>,
    worst: Duration,
    elapsed: Duration,
}

/// Queries `server` over one UDP socket at `rate` per second (app and api in turn) until
/// `stop` is set, at most `max` queries or `limit` long; then waits up to `timeout` for the
/// last answers. Every query has its own ID; there are no retries.
fn load(
    server: SocketAddr,
    rate: u32,
    max: usize,
    limit: Duration,
    timeout: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<LoadReport> {
    assert!(max <= usize::from(u16::MAX));
    std::thread::spawn(move || {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        sock.connect(server).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let sent_at: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        let recv = {
            let (sock, sent_at, done) = (sock.try_clone().unwrap(), sent_at.clone(), done.clone());
            std::thread::spawn(move || {
                let mut r = LoadReport::default();
                let mut seen = vec![false; max];
                let mut buf = [0u8; 4096];
                let mut last_send = None;
                loop {
                    if done.load(Ordering::Acquire) {
                        let sent = sent_at.lock().unwrap().len();
                        let last = *last_send.get_or_insert_with(Instant::now);
                        if r.answered == sent || last.elapsed() > timeout {
                            return r;
                        }
                    }
                    let Ok(n) = sock.recv(&mut buf) else { continue };
                    let m = Message::from_vec(&buf[..n]).unwrap();
                    let id = usize::from(m.metadata.id);
                    let Some(at) = sent_at.lock().unwrap().get(id).copied() else {
                        continue;
                    };
                    if std::mem::replace(&mut seen[id], true) {
                        r.wrong.push(format!("a second answer to {id}"));
                        continue;
                    }
                    r.answered += 1;
                    r.worst = r.worst.max(at.elapsed());
                    let rcode = u16::from(m.metadata.response_code);
                    let want = if id % 2 == 0 {
                        [HUB_A[0], HUB_B[0]]
                    } else {
                        [HUB_A[1], HUB_B[1]]
                    };
                    let addrs = a_records(&m);
                    if rcode == 2 {
                        r.servfail += 1;
                    } else if rcode != 0 || addrs.len() != 1 || !want.contains(&addrs[0]) {
                        r.wrong.push(format!("{id}: {m}"));
                    }
                }
            })
        };
        let queries: Vec<Vec<u8>> = [APP, API]
            .iter()
            .map(|n| common::query(n, RecordType::A).to_vec().unwrap())
            .collect();
        let start = Instant::now();
        let every = Duration::from_secs(1) / rate;
        let mut i = 0;
        while !stop.load(Ordering::Acquire) && i < max && start.elapsed() < limit {
            // A steady rate: query i goes out at start + i × every.
            let due = start + every * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let mut q = queries[i % 2].clone();
            q[..2].copy_from_slice(&(i as u16).to_be_bytes());
            sent_at.lock().unwrap().push(Instant::now());
            sock.send(&q).unwrap();
            i += 1;
        }
        let elapsed = start.elapsed();
        done.store(true, Ordering::Release);
        let mut r = recv.join().unwrap();
        r.sent = i;
        r.elapsed = elapsed;
        r
    })
}

#[test]
fn reloads_under_load_lose_no_answer_and_only_valid_ones_move_the_generation() {
    let base = setup("");
    let mut sp = Signpost::start(&base);
    let port = sp.addr.port();
    let admin = sp.admin.port();
    let valid = |ttl: u32| {
        Setup::new(&[])
            .token(TOKEN)
            .extra(&two_sites(ttl))
            .config_text(port, admin)
    };
    let good = valid(5);
    // Three kinds of broken config, in turn: TOML syntax, an unknown site, a bad value.
    let invalid = [
        format!("{good}\n[profiles.\"broken"),
        good.replace("site = \"hub-b\"", "site = \"hub-z\""),
        format!("{good}\n[monitors.web]\nprotocol = \"smtp\"\n"),
    ];

    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(
        sp.addr,
        500,
        10_000,
        Duration::from_secs(15),
        Duration::from_secs(2),
        stop.clone(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut generation = 1;
    for i in 0..20 {
        let ok = i % 2 == 0;
        let text = if ok {
            valid(10 + i)
        } else {
            invalid[(i as usize / 2) % invalid.len()].clone()
        };
        std::fs::write(sp.config_path(), text).unwrap();
        let r = sp.api("POST", "/api/v1/reload", "", true);
        // With the token: a failed reload's details are shown to it only.
        let st = sp.api("GET", "/api/v1/status", "", true).json();
        if ok {
            generation += 1;
            assert_eq!(r.status, 200, "reload {i}: {}", r.body);
            assert_eq!(r.json()["generation"], generation, "{}", r.body);
            assert_eq!(st["last_reload"]["ok"], true, "{st:#}");
        } else {
            assert_eq!(r.status, 422, "reload {i}: {}", r.body);
            let e = r.json()["error"].as_str().unwrap().to_owned();
            assert!(
                e.contains(&format!("still serving generation {generation}")),
                "{e}"
            );
            assert_eq!(st["last_reload"]["ok"], false, "{st:#}");
            assert!(
                st["last_reload"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("signpost.toml")),
                "{st:#}"
            );
        }
        assert_eq!(st["generation"], generation, "after reload {i}");
        assert_eq!(st["last_reload"]["generation"], generation, "{st:#}");
        // About ten reloads a second.
        std::thread::sleep(Duration::from_millis(100));
    }
    let reloading = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Release);
    let r = loader.join().unwrap();
    eprintln!(
        "reload under load: 20 reloads (10 invalid) in {reloading:?}; {} queries sent over {:?} ({:.0} qps), {} answered, {} SERVFAIL, worst latency {:?}",
        r.sent,
        r.elapsed,
        r.sent as f64 / r.elapsed.as_secs_f64(),
        r.answered,
        r.servfail,
        r.worst
    );
    assert!(r.sent >= 1000, "only {} queries sent", r.sent);
    assert_eq!(r.answered, r.sent, "lost {} answers", r.sent - r.answered);
    assert_eq!(r.servfail, 0);
    assert!(r.wrong.is_empty(), "{:#?}", r.wrong);

    // The last good config (reload 18, TTL 28) is what DNS serves; the metrics agree.
    assert_eq!(generation, 11);
    assert_eq!(answer(&sp, APP).1, Some(28));
    let m = metrics(&sp);
    assert_eq!(value(&m, "signpost_config_generation", &[]), 11.0);
    assert_eq!(
        reloads(&m),
        (10.0, 10.0),
        "signpost_reloads_total: ok, error"
    );
    let reloads = audit(&sp)
        .into_iter()
        .filter(|l| l["action"] == "reload")
        .count();
    assert_eq!(reloads, 20);
    sp.assert_running();
}

// --- Readiness ----------------------------------------------------------------------

#[test]
fn readyz_waits_for_the_first_probe_round_and_healthz_does_not() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hung = rt.block_on(HttpServer::start(always(Reply::Hang)));
    let monitored = format!(
        "\n[monitors.slow]\nport = {}\ninterval = \"5s\"\ntimeout = \"2s\"\n\n\
         [profiles.\"slow.gslb.example\"]\nmonitor = \"slow\"\n\
         [[profiles.\"slow.gslb.example\".endpoints]]\nname = \"slow-a\"\naddress = \"192.0.2.41\"\nprobe_address = \"127.0.0.1\"\n",
        hung.addr.port()
    );
    let sp = Signpost::start(&setup(&monitored));
    let t0 = Instant::now();
    assert_eq!(sp.api("GET", "/healthz", "", false).status, 200);
    let r = sp.api("GET", "/readyz", "", false);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("first probe round")
    );
    assert_eq!(sp.status()["ready"], false);
    // The probe is out, hanging: still not ready.
    poll(Duration::from_secs(5), || hung.hits() >= 1).expect("no probe reached the hung server");
    assert_eq!(sp.api("GET", "/readyz", "", false).status, 503);

    let ready = poll(Duration::from_secs(6), || {
        sp.api("GET", "/readyz", "", false).status == 200
    })
    .map(|_| t0.elapsed())
    .expect("not ready 6 s after the start");
    eprintln!("ready {ready:?} after the server answered DNS (probe timeout 2 s)");
    // Ready because the first probe finished (by timing out), not before.
    let st = sp.status();
    assert_eq!(st["ready"], true);
    let probe = &endpoint(&st, "slow.gslb.example.", "slow-a")["last_probe"];
    assert!(
        probe["reason"]
            .as_str()
            .is_some_and(|r| r.contains("timeout")),
        "{probe:#}"
    );
    assert_eq!(sp.api("GET", "/healthz", "", false).status, 200);

    // Ready stays ready: a reload that adds a target (still hanging) does not take the
    // server out of service.
    let more = format!(
        "{monitored}\n[profiles.\"slower.gslb.example\"]\nmonitor = \"slow\"\n\
         [[profiles.\"slower.gslb.example\".endpoints]]\nname = \"slower-a\"\naddress = \"192.0.2.42\"\nprobe_address = \"127.0.0.1\"\nmonitor = {{ path = \"/other\" }}\n"
    );
    let text = setup(&more).config_text(sp.addr.port(), sp.admin.port());
    std::fs::write(sp.config_path(), text).unwrap();
    sp.post_ok("/api/v1/reload", "");
    let st = sp.status();
    assert_eq!(
        endpoint(&st, "slower.gslb.example.", "slower-a")["last_probe"],
        Value::Null
    );
    assert_eq!(st["ready"], true, "{st:#}");
    assert_eq!(sp.api("GET", "/readyz", "", false).status, 200);
}

/// Issue 5, acceptance 6: `explain` (API and CLI) for a client in a configured region
/// returns the decision trace, and the answer it explains is the one DNS gives that
/// client's resolver with ECS.
#[test]
fn explain_for_a_client_in_a_region_matches_the_dns_answer_via_ecs() {
    use hickory_proto::op::Edns;
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};

    let geo = "[geo.regions]\ncorp-emea = [\"10.20.0.0/16\"]\ncorp-amer = [\"10.10.0.0/16\"]\n\
        [profiles.\"geo.gslb.example\"]\nmethod = \"geographic\"\nttl = 5\n\
        [[profiles.\"geo.gslb.example\".endpoints]]\nname = \"emea\"\nsite = \"hub-a\"\naddress = \"192.0.2.31\"\nregions = [\"corp-emea\"]\n\
        [[profiles.\"geo.gslb.example\".endpoints]]\nname = \"amer\"\nsite = \"hub-b\"\naddress = \"192.0.2.32\"\nregions = [\"corp-amer\"]\n\
        [[profiles.\"geo.gslb.example\".endpoints]]\nname = \"world\"\nsite = \"hub-b\"\naddress = \"192.0.2.33\"\nregions = [\"WORLD\"]\n";
    let sp = Signpost::start(&setup(geo));

    // What DNS answers a resolver that sends ECS for the client's /24.
    let dns = |subnet: &str| -> (Vec<Ipv4Addr>, Option<u8>) {
        let (addr, prefix) = subnet.split_once('/').unwrap();
        let mut m = common::query("geo.gslb.example.", RecordType::A);
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
            addr.parse().unwrap(),
            prefix.parse().unwrap(),
            0,
        )));
        m.set_edns(e);
        let reply = Message::from_vec(&sp.udp(&m.to_vec().unwrap())).unwrap();
        let scope = reply
            .edns
            .as_ref()
            .and_then(|e| match e.options().get(EdnsCode::Subnet) {
                Some(EdnsOption::Subnet(cs)) => Some(cs.scope_prefix()),
                _ => None,
            });
        (a_records(&reply), scope)
    };

    for (subnet, want, want_region, want_scope) in [
        (
            "10.20.1.0/24",
            Ipv4Addr::new(192, 0, 2, 31),
            Some("corp-emea"),
            Some(16),
        ),
        (
            "10.10.7.0/24",
            Ipv4Addr::new(192, 0, 2, 32),
            Some("corp-amer"),
            Some(16),
        ),
        ("172.16.5.0/24", Ipv4Addr::new(192, 0, 2, 33), None, None),
    ] {
        let (answer, scope) = dns(subnet);
        assert_eq!(answer, [want], "DNS answer for {subnet}");
        if let Some(w) = want_scope {
            assert_eq!(scope, Some(w), "ECS scope for {subnet}");
        }

        // The API: the trace names the client's region and the rule, and its answer is DNS's.
        let path = format!(
            "/api/v1/explain?name=geo.gslb.example&type=A&client={}",
            subnet.replace('/', "%2F")
        );
        let r = sp.get_ok(&path);
        let trace = r.json();
        let text = trace.to_string();
        assert!(
            text.contains(&format!("A {want}")),
            "explain for {subnet} does not answer {want}: {trace:#}"
        );
        for other in [31, 32, 33]
            .map(|o| Ipv4Addr::new(192, 0, 2, o))
            .into_iter()
            .filter(|o| *o != want)
        {
            assert!(
                !text.contains(&format!("A {other}\"")),
                "explain for {subnet} answers {other}: {trace:#}"
            );
        }
        if let Some(region) = want_region {
            assert!(
                text.contains(region),
                "the trace names the client's region {region}: {trace:#}"
            );
        }
        // The scope the trace says is echoed is the one DNS echoed.
        assert_eq!(
            trace["echoed_scope"].as_u64(),
            scope.map(u64::from),
            "{trace:#}"
        );

        // The CLI prints the same trace.
        let cli = sp.cli(&[
            "explain",
            "geo.gslb.example",
            "--type",
            "A",
            "--client",
            subnet,
        ]);
        assert_eq!(cli.code, Some(0), "{}", cli.text());
        assert!(cli.stdout.contains(&format!("A {want}")), "{}", cli.text());
    }
}

#[test]
fn drains_that_outlive_their_site_or_endpoint_are_shown_and_can_be_cleared() {
    let sp = Signpost::start(&setup(""));
    for args in [
        &["drain", "--site", "hub-b", "--reason", "decommissioning"][..],
        &[
            "drain",
            "--endpoint",
            "api.gslb.example/api-a",
            "--reason",
            "old api",
        ],
    ] {
        let ran = sp.cli(args);
        assert_eq!(ran.code, Some(0), "{}", ran.text());
    }
    // A config without hub-b and without the api profile.
    let cfg = std::fs::read_to_string(sp.config_path()).unwrap();
    let base = &cfg[..cfg.find("[[sites]]").unwrap()];
    std::fs::write(
        sp.config_path(),
        format!(
            "{base}[[sites]]\nname = \"hub-a\"\n\n[profiles.\"app.gslb.example\"]\nttl = 5\n\
             [[profiles.\"app.gslb.example\".endpoints]]\nname = \"app-a\"\nsite = \"hub-a\"\naddress = \"192.0.2.1\"\n"
        ),
    )
    .unwrap();
    sp.post_ok("/api/v1/reload", "");

    let st = sp.status();
    assert_eq!(st["drains_active"], 2, "{st:#}");
    let stale = st["stale_drains"].as_array().unwrap();
    assert_eq!(stale.len(), 2, "{st:#}");
    assert!(
        stale
            .iter()
            .any(|d| d["site"] == "hub-b" && d["drain"]["reason"] == "decommissioning"),
        "{st:#}"
    );
    assert!(
        stale
            .iter()
            .any(|d| d["profile"] == "api.gslb.example" && d["endpoint"] == "api-a"),
        "{st:#}"
    );
    let table = sp.cli(&["status"]);
    assert!(
        table.stdout.contains(
            "stale drain: site hub-b is not in the config (decommissioning); it applies again if it comes back; clear it with: signpost undrain --site hub-b"
        ),
        "{}",
        table.text()
    );

    // The status page lists them, each with an undrain button.
    let page = sp.api("GET", "/", "", false).body;
    assert!(page.contains("<table id=stale-drains>"), "{page}");
    assert!(
        page.contains("<td>site hub-b</td><td class=drain>drained (decommissioning)</td>"),
        "{page}"
    );
    assert!(
        page.contains("data-url='/api/v1/sites/hub-b/undrain'"),
        "{page}"
    );
    assert!(
        page.contains("data-url='/api/v1/profiles/api.gslb.example/endpoints/api-a/undrain'"),
        "{page}"
    );

    // Draining a name the config lacks is still an error; undraining a stale drain is not.
    let ran = sp.cli(&["drain", "--site", "hub-b"]);
    assert_ne!(ran.code, Some(0), "{}", ran.text());
    assert!(
        ran.text().contains("no site named \"hub-b\""),
        "{}",
        ran.text()
    );
    let ran = sp.cli(&["undrain", "--site", "hub-zzz"]);
    assert_ne!(ran.code, Some(0), "{}", ran.text());
    for (args, said) in [
        (&["undrain", "--site", "hub-b"][..], "site hub-b undrained"),
        (
            &["undrain", "--endpoint", "API.gslb.example./api-a"],
            "undrained",
        ),
    ] {
        let ran = sp.cli(args);
        assert_eq!(ran.code, Some(0), "{}", ran.text());
        assert!(ran.text().contains(said), "{}", ran.text());
    }
    let st = sp.status();
    assert_eq!(st["drains_active"], 0, "{st:#}");
    assert_eq!(st["stale_drains"], serde_json::json!([]), "{st:#}");
    let page = sp.api("GET", "/", "", false).body;
    assert!(!page.contains("stale-drains"), "{page}");
    let state = std::fs::read_to_string(sp.dir.path().join("state/drains.json")).unwrap();
    assert!(
        !state.contains("hub-b") && !state.contains("api-a"),
        "{state}"
    );
}

/// Issue 18: a profile whose endpoint failed its latest probe is unstable. DNS answers with
/// `ttl_unstable`, the status document and `explain` say why, `signpost status` lists it,
/// and `signpost_short_ttl_answers_total` counts the short answers.
#[test]
fn an_unstable_profile_answers_with_ttl_unstable_and_says_why() {
    // Nothing listens on `dead`: the first probe (at start) is refused. A target that
    // never succeeded is Degraded on its first failure (issue 16), so the profile is
    // unstable twice over: a status change less than one ttl ago, and the all-down
    // fallback answering (serve_all) for the whole test.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let shaky = format!(
        "[monitors.dead]\nport = {dead}\ninterval = \"60s\"\nretry_interval = \"60s\"\ntolerated_failures = 3\n\
         [profiles.\"shaky.gslb.example\"]\nttl = 60\nttl_unstable = 7\nmonitor = \"dead\"\n\
         [[profiles.\"shaky.gslb.example\".endpoints]]\nname = \"lone\"\naddress = \"192.0.2.77\"\nprobe_address = \"127.0.0.1\"\n"
    );
    let sp = Signpost::start(&setup(&shaky));
    let name = "shaky.gslb.example.";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let r = sp.api("GET", "/api/v1/status", "", false);
        let v = r.json();
        let p = v["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone();
        if p["unstable"] == true || std::time::Instant::now() > deadline {
            break p;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["unstable"], true, "{status:#}");
    assert_eq!(
        (status["ttl"].as_u64(), status["ttl_now"].as_u64()),
        (Some(60), Some(7))
    );
    let reasons = status["unstable_reasons"].to_string();
    assert!(
        reasons.contains("endpoint lone became Degraded")
            && reasons.contains("answers with every enabled endpoint"),
        "{status:#}"
    );
    assert_eq!(status["endpoints"][0]["status"], "Degraded", "{status:#}");

    // DNS: the short TTL, counted.
    for _ in 0..3 {
        assert_eq!(
            answer(&sp, name),
            (vec![Ipv4Addr::new(192, 0, 2, 77)], Some(7))
        );
    }
    let m = metrics(&sp);
    assert_eq!(
        value(
            &m,
            "signpost_short_ttl_answers_total",
            &[("profile", "shaky.gslb.example")]
        ),
        3.0
    );
    // A stable profile answers with its ttl and is not counted.
    let (_, ttl) = answer(&sp, APP);
    assert!(ttl.is_some());
    assert!(
        !m.iter()
            .any(|s| s.metric == "signpost_short_ttl_answers_total"
                && s.labels.get("profile") == Some("app.gslb.example")),
    );

    // explain: the step says why, the answer carries the short TTL.
    let r = sp.get_ok("/api/v1/explain?name=shaky.gslb.example&client=10.1.2.3");
    let t = r.json();
    assert_eq!(t["answer"]["ttl"], 7, "{t:#}");
    assert_eq!(
        (
            t["steps"][0]["ttl"].as_u64(),
            t["steps"][0]["ttl_now"].as_u64()
        ),
        (Some(60), Some(7))
    );
    assert!(
        t["steps"][0]["unstable"]
            .to_string()
            .contains("became Degraded"),
        "{t:#}"
    );

    // signpost status lists it.
    let cli = sp.cli(&["status"]);
    assert_eq!(cli.code, Some(0), "{}", cli.text());
    assert!(
        cli.stdout.contains("unstable: shaky.gslb.example. answers with ttl 7 (not 60): endpoint lone became Degraded"),
        "{}",
        cli.text()
    );
}
