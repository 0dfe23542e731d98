//! Issue 16 against the real binary: a restart never answers a target already known to
//! be down once `/readyz` is 200; a rotated token is in force after `signpost reload`;
//! the metrics an on-call engineer checks are on `/metrics` and `promtool` finds the page
//! clean.

mod common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use common::{GSLB_ZONE, Setup, Signpost, poll};
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

const APP: &str = "app.gslb.example.";
const UP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DOWN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// The A records of one answer for `name`.
fn answer(sp: &Signpost, name: &str) -> Vec<Ipv4Addr> {
    let wire = common::query(name, RecordType::A).to_vec().unwrap();
    let m = Message::from_vec(&sp.udp(&wire)).unwrap();
    assert_eq!(u16::from(m.metadata.response_code), 0, "{name}: {m}");
    common::a_records(&m)
}

fn wait_ready(sp: &Signpost) {
    let ready = poll(Duration::from_secs(10), || {
        sp.api("GET", "/readyz", "", false).status == 200
    });
    assert!(ready.is_some(), "not ready within 10 s:\n{}", sp.log());
}

/// With `tolerated_failures = 3` and a 2 s interval, the old rule kept a refusing target
/// CheckingEndpoint, and answered, for 8 s after start. Now its first failure makes it
/// Degraded: from the moment `/readyz` is 200 it is never answered, at start and after a
/// restart.
#[test]
fn a_restart_never_answers_a_refusing_target_once_ready() {
    // Free at the time of the call: nothing listens there, connections are refused.
    let dead = common::free_tcp_port();
    let extra = format!(
        "[monitors.dead]\nport = {dead}\ninterval = \"2s\"\ntimeout = \"1s\"\ntolerated_failures = 3\n\n\
         [profiles.\"app.gslb.example\"]\nmethod = \"weighted\"\nttl = 5\nmonitor = \"dead\"\n\
         [[profiles.\"app.gslb.example\".endpoints]]\nname = \"up\"\naddress = \"{UP}\"\nalways_serve = true\n\
         [[profiles.\"app.gslb.example\".endpoints]]\nname = \"down\"\naddress = \"{DOWN}\"\n\
         probe_address = \"127.0.0.1\"\n"
    );
    let mut sp = Signpost::start(&Setup::new(&[("gslb.example.zone", GSLB_ZONE)]).extra(&extra));
    for round in ["start", "restart"] {
        if round == "restart" {
            sp.restart();
        }
        wait_ready(&sp);
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            seen.extend(answer(&sp, APP));
        }
        assert_eq!(
            seen,
            BTreeSet::from([UP]),
            "{round}: answered a refusing target after /readyz was 200"
        );
        let st = sp.status();
        let down = &st["profiles"][0]["endpoints"][1];
        assert_eq!(down["status"], "Degraded", "{round}: {st:#}");
        assert_eq!(down["transitions"], 1, "{round}: {st:#}");
    }
}

/// The token file is read again on reload: the reload answer says the token changed, the
/// new token drains, the old one gets 401.
#[test]
fn a_rotated_token_works_after_reload_and_the_old_one_gets_401() {
    let extra = "[[sites]]\nname = \"hub-a\"\n\n[profiles.\"app.gslb.example\"]\n\
                 [[profiles.\"app.gslb.example\".endpoints]]\nname = \"a\"\nsite = \"hub-a\"\naddress = \"192.0.2.1\"\n";
    let mut sp = Signpost::start(
        &Setup::new(&[("gslb.example.zone", GSLB_ZONE)])
            .token("old-token-0123456789")
            .extra(extra),
    );
    let drain = |sp: &Signpost| sp.api("POST", "/api/v1/sites/hub-a/undrain", "", true);
    assert_eq!(drain(&sp).status, 200);

    // A reload that does not change the token says nothing about it.
    let ran = sp.cli(&["reload"]);
    assert_eq!(ran.code, Some(0), "{}", ran.text());
    assert!(!ran.text().contains("token"), "{}", ran.text());

    std::fs::write(
        sp.dir.path().join("config/admin.token"),
        "new-token-9876543210\n",
    )
    .unwrap();
    // Until the reload, the old token is in force.
    assert_eq!(drain(&sp).status, 200);
    let ran = sp.cli(&["reload"]);
    assert_eq!(ran.code, Some(0), "{}", ran.text());
    assert!(
        ran.text().contains("the admin token changed"),
        "{}",
        ran.text()
    );
    let old = drain(&sp);
    assert_eq!(old.status, 401, "{}", old.body);
    assert!(old.body.contains("wrong bearer token"), "{}", old.body);
    sp.token = Some("new-token-9876543210".to_owned());
    assert_eq!(drain(&sp).status, 200);
    let ran = sp.cli(&["drain", "--site", "hub-a", "--reason", "rotated"]);
    assert_eq!(ran.code, Some(0), "{}", ran.text());
    assert_eq!(sp.status()["drains_active"], 1);
}

/// Every family an on-call engineer checks is on `/metrics`, with lowercase status
/// values, and `promtool check metrics` finds nothing wrong with the page. Needs
/// `--features interop` (promtool: Debian's `prometheus`).
#[cfg(feature = "interop")]
#[test]
fn the_operator_metrics_are_present_and_promtool_is_clean() {
    // Free at the time of the call: nothing listens there, connections are refused.
    let dead = common::free_tcp_port();
    let ingress = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let live = ingress.local_addr().unwrap().port();
    let extra = format!(
        "[monitors.dead]\nprotocol = \"tcp\"\nport = {dead}\ninterval = \"300ms\"\ntimeout = \"1s\"\n\
         [monitors.live]\nprotocol = \"tcp\"\nport = {live}\ninterval = \"300ms\"\ntimeout = \"1s\"\n\n\
         [profiles.\"app.gslb.example\"]\nmonitor = \"live\"\n\
         [[profiles.\"app.gslb.example\".endpoints]]\nname = \"up\"\naddress = \"{UP}\"\nprobe_address = \"127.0.0.1\"\n\n\
         [profiles.\"gone.gslb.example\"]\nmonitor = \"dead\"\nall_down = \"serve_all\"\n\
         [[profiles.\"gone.gslb.example\".endpoints]]\nname = \"down\"\naddress = \"{DOWN}\"\nprobe_address = \"127.0.0.1\"\n"
    );
    let sp = Signpost::start(&Setup::new(&[("gslb.example.zone", GSLB_ZONE)]).extra(&extra));
    wait_ready(&sp);
    let mut page = String::new();
    let complete = poll(Duration::from_secs(10), || {
        page = sp.api("GET", "/metrics", "", false).body;
        page.contains("signpost_endpoint_rtt_seconds{")
            && page.contains(r#"signpost_profile_all_down{profile="gone.gslb.example"} 1"#)
    });
    assert!(complete.is_some(), "{page}");
    for want in [
        "signpost_build_info{version=\"",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
        r#"signpost_endpoint_rtt_seconds{profile="app.gslb.example",endpoint="up"} "#,
        r#"signpost_probe_last_success_timestamp_seconds{profile="app.gslb.example",endpoint="up"} "#,
        r#"signpost_profile_all_down{profile="app.gslb.example"} 0"#,
        r#"signpost_profile_all_down{profile="gone.gslb.example"} 1"#,
        "signpost_last_reload_success_timestamp_seconds ",
        r#"signpost_endpoint_status{profile="app.gslb.example",endpoint="up",site="",status="online"} 1"#,
        r#"signpost_endpoint_status{profile="app.gslb.example",endpoint="up",site="",status="degraded"} 0"#,
        r#"signpost_endpoint_status{profile="gone.gslb.example",endpoint="down",site="",status="degraded"} 1"#,
        r#"signpost_status_transitions_total{to="degraded"} "#,
    ] {
        assert!(page.contains(want), "no {want:?} in\n{page}");
    }
    // The failing endpoint never succeeded: no last-success series.
    assert!(
        !page.contains(
            r#"signpost_probe_last_success_timestamp_seconds{profile="gone.gslb.example""#
        ),
        "{page}"
    );
    let value = |prefix: &str| -> f64 {
        let line = page.lines().find(|l| l.starts_with(prefix)).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = value("process_start_time_seconds ");
    assert!(
        started > now - 120.0 && started <= now + 1.0,
        "{started} vs {now}"
    );
    let loaded = value("signpost_last_reload_success_timestamp_seconds ");
    assert!(loaded >= started - 1.0 && loaded <= now + 1.0, "{loaded}");
    assert!(value("process_resident_memory_bytes ") > 1e6);

    let mut check = std::process::Command::new(common::tool("promtool"))
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(ingress);
}
