//! `signpost check` and the validation `serve` runs before binding: every problem printed
//! at once with its file and key path (config) or line (zones), exit 64 (EX_USAGE).

mod common;

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;

use common::assert_has;

const EX_CONFIG: i32 = 64;

const GOOD_ZONE: &str = "$TTL 300
@   IN SOA ns1 hostmaster 1 3600 600 1209600 60
    IN NS  ns1
ns1 IN A   192.0.2.1
";

/// A zone whose line 5 is bad (no such IPv4 address).
const BAD_ZONE: &str = "$TTL 300
@   IN SOA ns1 hostmaster 1 3600 600 1209600 60
    IN NS  ns1
ns1 IN A   192.0.2.1
www IN A   300.1.1.1
";

/// Writes `config` and `zones/gslb.example.zone` into a temp dir.
fn setup(config: &str, zone: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/gslb.example.zone"), zone).unwrap();
    std::fs::write(dir.path().join("signpost.toml"), config).unwrap();
    dir
}

/// Runs `signpost ARGS` in `dir` to completion, bounded in time: (exit code, stdout and
/// stderr).
fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let ran = common::run(common::command(dir, args));
    (ran.code, ran.text())
}

fn config(port: u16, dns_extra: &str, admin_extra: &str) -> String {
    format!(
        "[dns]\nlisten = [\"127.0.0.1:{port}\"]\n{dns_extra}\n\
         [admin]\nlisten = \"127.0.0.1:{}\"\n{admin_extra}\n\
         [zones]\ndir = \"zones\"\n\n[state]\ndir = \"state\"\n",
        common::free_tcp_port()
    )
}

/// `signpost check` of `config` and `zone`: exits 64; what it printed.
fn check_fails(config: &str, zone: &str) -> String {
    let dir = setup(config, zone);
    let (code, out) = run(dir.path(), &["check", "--config", "signpost.toml"]);
    assert_eq!(code, Some(EX_CONFIG), "{out}");
    out
}

/// [`check_fails`] of a config with `dns_extra` and `admin_extra` and [`BAD_ZONE`].
fn check_bad(dns_extra: &str, admin_extra: &str) -> String {
    check_fails(
        &config(common::free_port(), dns_extra, admin_extra),
        BAD_ZONE,
    )
}

/// [`check_fails`] of the plain config followed by `more`, and [`GOOD_ZONE`].
fn check_more(more: &str) -> String {
    check_fails(&(config(common::free_port(), "", "") + more), GOOD_ZONE)
}

#[test]
fn check_prints_every_problem_with_where_and_exits_64() {
    // An unknown key, an unparsable duration (in another table), a bad zone line.
    let out = check_bad(
        "tcp_idle_timeout = \"ten seconds\"",
        "tokn_file = \"config/admin.token\"",
    );
    assert_has(
        &out,
        &[
            "signpost.toml: admin.tokn_file: unknown field `tokn_file`",
            "signpost.toml: dns.tcp_idle_timeout: invalid duration \"ten seconds\"",
            "zones/gslb.example.zone: line 5: bad A record data \"300.1.1.1\"",
            "3 error(s)",
        ],
    );
}

#[test]
fn check_reports_two_bad_keys_of_the_same_table() {
    let out = check_bad(
        "tcp_idel_timeout = \"5s\"\ntcp_idle_timeout = \"5 parsecs\"",
        "",
    );
    assert_has(
        &out,
        &[
            "dns.tcp_idel_timeout: unknown field",
            "dns.tcp_idle_timeout: invalid duration",
            "gslb.example.zone: line 5:",
            "3 error(s)",
        ],
    );
}

#[test]
fn check_reports_bad_per_endpoint_monitor_overrides_once_each() {
    // One endpoint overrides the CA file with a missing one, a header with a bad name and
    // the timeout with 0s. Each problem is named where it is; the endpoint that only
    // inherits the monitor has none.
    let profiles = "\n[[sites]]\nname = \"hub-a\"\n\n\
        [monitors.web]\ntimeout = \"2s\"\n\n\
        [profiles.\"app.gslb.example\"]\nmonitor = \"web\"\n\
        [[profiles.\"app.gslb.example\".endpoints]]\nname = \"a\"\nsite = \"hub-a\"\naddress = \"192.0.2.10\"\n\
        monitor = { protocol = \"https\", timeout = \"0s\", tls = { ca_file = \"/nonexistent/ca.pem\" }, headers = { \"Bad Name\" = \"x\" } }\n\
        [[profiles.\"app.gslb.example\".endpoints]]\nname = \"b\"\nsite = \"hub-a\"\naddress = \"192.0.2.11\"\n";
    let out = check_more(profiles);
    let at = "profiles.\"app.gslb.example\".endpoints[0].monitor";
    assert_has(
        &out,
        &[
            &format!("{at}.tls.ca_file: TLS: cannot read ca_file /nonexistent/ca.pem"),
            &format!("{at}.headers: \"Bad Name\" is not a valid HTTP header name"),
            &format!("{at}.timeout: must be longer than 0s"),
            "3 error(s)",
        ],
    );
    assert!(!out.contains("endpoints[1]"), "{out}");
}

#[test]
fn check_names_bad_fast_failover_keys() {
    // retry_interval shorter than 100 ms or longer than the interval.
    let monitors = "\n[monitors.web]\ninterval = \"10s\"\nretry_interval = \"20s\"\n\n\
        [monitors.fast]\nretry_interval = \"10ms\"\n";
    assert_has(
        &check_more(monitors),
        &[
            "signpost.toml: monitors.web.retry_interval: 20s is longer than interval (10s); use at most the interval (equal to it turns fast confirmation off)",
            "signpost.toml: monitors.fast.retry_interval: 10ms is too short; use at least \"100ms\"",
            "2 error(s)",
        ],
    );

    // ttl_unstable out of range; an endpoint's override of the interval below the
    // monitor's retry_interval.
    let profiles = "\n[monitors.web]\nretry_interval = \"1s\"\n\n\
        [profiles.\"app.gslb.example\"]\nmonitor = \"web\"\nttl_unstable = 0\n\
        [[profiles.\"app.gslb.example\".endpoints]]\nname = \"a\"\naddress = \"192.0.2.10\"\n\
        monitor = { interval = \"500ms\" }\n";
    assert_has(
        &check_more(profiles),
        &[
            "signpost.toml: profiles.\"app.gslb.example\".ttl_unstable: 0 is out of range; use 1 to 86400 seconds",
            "signpost.toml: profiles.\"app.gslb.example\".endpoints[0].monitor.retry_interval: 1s is longer than interval (500ms)",
            "2 error(s)",
        ],
    );
}

#[test]
fn check_accepts_a_good_config() {
    let dir = setup(&config(common::free_port(), "", ""), GOOD_ZONE);
    let (code, out) = run(dir.path(), &["check", "--config", "signpost.toml"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("OK (1 zone(s)"), "{out}");
    assert!(!out.contains("error"), "{out}");
}

#[test]
fn check_names_a_missing_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = run(dir.path(), &["check", "--config", "nowhere.toml"]);
    assert_eq!(code, Some(EX_CONFIG), "{out}");
    assert!(
        out.contains("nowhere.toml: cannot read the config file"),
        "{out}"
    );
}

/// `serve` validates before it binds: with its port held by someone else, a bad config
/// still exits 64 (a bind attempt would have failed with 1), and a good config shows what
/// the bind failure looks like, so the two are told apart.
#[test]
fn serve_with_a_bad_config_exits_64_before_binding() {
    let port = common::free_port();
    let _udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    let _tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();

    let bad = setup(&config(port, "", "tokn_file = \"x\""), BAD_ZONE);
    let (code, out) = run(bad.path(), &["serve", "--config", "signpost.toml"]);
    assert_eq!(code, Some(EX_CONFIG), "{out}");
    assert_has(&out, &["admin.tokn_file", "line 5", "not starting"]);
    assert!(!out.contains("listening"), "{out}");
    assert!(!out.contains("cannot bind"), "{out}");

    let good = setup(&config(port, "", ""), GOOD_ZONE);
    let (code, out) = run(good.path(), &["serve", "--config", "signpost.toml"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("cannot bind"), "{out}");
}

// --- Unknown keys in every table of every example config (hickory-dns's habit) ---------

/// One step of a key path.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Tables whose keys are names the operator chooses, not a fixed schema: a new key there
/// is a new entry, not an unknown key. `*` matches any key, `#` any index.
const FREE_FORM: &[&[&str]] = &[
    &["monitors"],
    &["profiles"],
    &["geo", "regions"],
    &["monitors", "*", "headers"],
    &["profiles", "*", "latency"],
    &["profiles", "*", "latency", "*"],
    &["profiles", "*", "endpoints", "#", "monitor", "headers"],
];

fn free_form(path: &[Seg]) -> bool {
    FREE_FORM.iter().any(|pat| {
        pat.len() == path.len()
            && pat.iter().zip(path).all(|(p, s)| match s {
                Seg::Key(k) => *p == "*" || p == k,
                Seg::Index(_) => *p == "#",
            })
    })
}

/// Every fixed-schema table in `t` (the root included), by path.
fn tables(t: &toml::Table, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    if !free_form(path) {
        out.push(path.clone());
    }
    for (k, v) in t {
        path.push(Seg::Key(k.clone()));
        match v {
            toml::Value::Table(t) => tables(t, path, out),
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let toml::Value::Table(t) = item {
                        path.push(Seg::Index(i));
                        tables(t, path, out);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
        path.pop();
    }
}

fn table_at<'a>(mut t: &'a mut toml::Table, path: &[Seg]) -> &'a mut toml::Table {
    let mut it = path.iter().peekable();
    while let Some(seg) = it.next() {
        let Seg::Key(k) = seg else {
            unreachable!("an index follows a key")
        };
        let v = t.get_mut(k).unwrap();
        t = match (v, it.peek()) {
            (toml::Value::Array(items), Some(Seg::Index(i))) => {
                it.next();
                items[*i].as_table_mut().unwrap()
            }
            (toml::Value::Table(t), _) => t,
            (v, _) => panic!("not a table: {v}"),
        };
    }
    t
}

/// The key path as signpost prints it: `dns.x`, `monitors.web.tls.x`,
/// `profiles."app.gslb.example".endpoints[0].x`.
fn key_path(path: &[Seg], key: &str) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                if k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    s.push_str(k);
                } else {
                    s.push_str(&format!("{k:?}"));
                }
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if !s.is_empty() {
        s.push('.');
    }
    s.push_str(key);
    s
}

const KEY: &str = "signpost_test_unknown_key";

/// Injects [`KEY`] into every fixed-schema table of `example` in turn and runs `check` in
/// `cwd` on each result; returns how many tables were tried.
fn inject_everywhere(cwd: &Path, example: &Path) -> usize {
    // As shipped, the example is valid.
    let (code, out) = run(cwd, &["check", "--config", example.to_str().unwrap()]);
    assert_eq!(
        code,
        Some(0),
        "{} is not valid as shipped:\n{out}",
        example.display()
    );

    let tmp = tempfile::tempdir().unwrap();
    let doc: toml::Table = std::fs::read_to_string(example).unwrap().parse().unwrap();
    let mut found = Vec::new();
    tables(&doc, &mut Vec::new(), &mut found);
    for path in &found {
        let mut bad = doc.clone();
        table_at(&mut bad, path).insert(KEY.to_owned(), toml::Value::Integer(1));
        let file = tmp.path().join("injected.toml");
        std::fs::write(&file, toml::to_string(&bad).unwrap()).unwrap();
        let (code, out) = run(cwd, &["check", "--config", file.to_str().unwrap()]);
        let want = key_path(path, KEY);
        assert_eq!(
            code,
            Some(EX_CONFIG),
            "{}: {want} was accepted:\n{out}",
            example.display()
        );
        assert!(
            out.contains(&format!("injected.toml: {want}: ")),
            "{}: the error does not name {want}:\n{out}",
            example.display()
        );
    }
    found.len()
}

#[test]
fn an_unknown_key_in_any_table_of_any_example_config_is_named() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut examples: Vec<_> = std::fs::read_dir(repo.join("config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    examples.sort();
    assert!(
        examples.iter().any(|p| p.ends_with("config/signpost.toml")),
        "{examples:?}"
    );
    let mut checked = 0;
    for example in &examples {
        // Run from the repo, as the README does: relative paths resolve there.
        checked += inject_everywhere(repo, example);
    }
    // The default config alone has the root and [dns], [admin], [zones], [state].
    assert!(checked >= 5, "only {checked} tables found");
}

/// Every table DESIGN.md's config contract has, as one config: monitors with inline
/// tables, sites, profiles with endpoints and per-endpoint monitor overrides.
const FULL_CONFIG: &str = r#"
[dns]
listen = ["127.0.0.1:5300"]
udp_sockets = 0
tcp_idle_timeout = "10s"

[admin]
listen = "127.0.0.1:8053"

[zones]
dir = "zones"

[state]
dir = "state"

[geo.regions]
corp-emea = ["10.20.0.0/16", "fd00:20::/32"]
corp-amer = ["10.10.0.0/16"]

[monitors.web]
protocol = "https"
port = 443
path = "/healthz"
host = "app.corp.example"
headers = { "User-Agent" = "signpost-probe" }
expected_status = ["200-299"]
interval = "10s"
timeout = "5s"
tolerated_failures = 3
rise = 2
tls = { insecure_skip_verify = false }
reuse_connection = true

[[sites]]
name = "hub-seattle"
[[sites]]
name = "hub-dublin"

[profiles."app.gslb.example"]
method = "weighted"
ttl = 30
monitor = "web"
all_down = "serve_all"

[[profiles."app.gslb.example".endpoints]]
name = "seattle"
site = "hub-seattle"
address = "192.0.2.10"
weight = 3
monitor = { port = 8443 }

[[profiles."app.gslb.example".endpoints]]
name = "dublin"
site = "hub-dublin"
address = "192.0.2.20"
"#;

#[test]
fn an_unknown_key_in_any_table_of_the_full_config_is_named() {
    let dir = setup(FULL_CONFIG, GOOD_ZONE);
    let checked = inject_everywhere(dir.path(), &dir.path().join("signpost.toml"));
    // root, dns, admin, zones, state, geo, monitors.web, its tls, 2 sites, the profile,
    // 2 endpoints, the first one's monitor override.
    assert_eq!(checked, 14);
}

/// Issue 16: a bad duration, an unknown monitor, an unknown site and a bad IP address in
/// one config are all reported by one `check`; a misspelt method lists the methods.
#[test]
fn four_mistakes_in_one_config_are_reported_by_one_check() {
    let cfg = format!(
        "{}\n[monitors.web]\ninterval = \"ten seconds\"\n\n[[sites]]\nname = \"hub-a\"\n\n\
         [profiles.\"app.gslb.example\"]\nmonitor = \"nope\"\n\
         [[profiles.\"app.gslb.example\".endpoints]]\nname = \"a\"\nsite = \"hub-x\"\naddress = \"300.1.2.3\"\n\n\
         [profiles.\"api.gslb.example\"]\nmethod = \"priorty\"\n\
         [[profiles.\"api.gslb.example\".endpoints]]\nname = \"b\"\naddress = \"192.0.2.5\"\n",
        config(common::free_port(), "", "")
    );
    let out = check_fails(&cfg, &format!("$ORIGIN gslb.example.\n{GOOD_ZONE}"));
    let at = "signpost.toml: profiles.\"app.gslb.example\"";
    assert_has(
        &out,
        &[
            "signpost.toml: monitors.web.interval: invalid duration \"ten seconds\"",
            &format!("{at}.monitor: no monitor named \"nope\""),
            &format!("{at}.endpoints[0].site: no site named \"hub-x\""),
            &format!("{at}.endpoints[0].address: \"300.1.2.3\" is not an IP address"),
            "signpost.toml: profiles.\"api.gslb.example\".method: \"priorty\" is not one of \
             priority, weighted, performance, geographic, multivalue, subnet",
            "5 error(s)",
        ],
    );
}

/// A bad environment override is blamed on the variable, not the config file.
#[test]
fn a_bad_environment_override_names_the_variable() {
    let dir = setup(
        &config(common::free_port(), "", ""),
        &format!("$ORIGIN gslb.example.\n{GOOD_ZONE}"),
    );
    let mut cmd = common::command(dir.path(), &["check", "--config", "signpost.toml"]);
    cmd.env("SIGNPOST__DNS__LISTN", "127.0.0.1:53")
        .env("SIGNPOST__DNS__UDP_SOCKETS", "many");
    let ran = common::run(cmd);
    let out = ran.text();
    assert_eq!(ran.code, Some(EX_CONFIG), "{out}");
    assert_has(
        &out,
        &[
            "error: environment variable SIGNPOST__DNS__LISTN: dns.listn: unknown field `listn`",
            "error: environment variable SIGNPOST__DNS__UDP_SOCKETS: dns.udp_sockets: ",
            "overrides the config file",
        ],
    );
    assert!(!out.contains("error: signpost.toml"), "{out}");
}

/// `serve --log-format json` with a bad config: every line it writes is JSON, the problems
/// included, each with its file and key; human logs to a pipe carry no colour codes.
#[test]
fn start_up_errors_are_json_from_the_first_line_and_never_coloured_in_a_pipe() {
    let cfg = format!(
        "{}\n[monitors.web]\ninterval = \"ten seconds\"\n",
        config(common::free_port(), "", "")
    );
    let dir = setup(&cfg, &format!("$ORIGIN gslb.example.\n{GOOD_ZONE}"));
    let ran = common::run(common::command(
        dir.path(),
        &["--log-format", "json", "serve", "--config", "signpost.toml"],
    ));
    assert_eq!(ran.code, Some(EX_CONFIG), "{}", ran.text());
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    let lines: Vec<serde_json::Value> = ran
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{}", ran.stderr);
    assert_eq!(lines[0]["level"], "ERROR");
    assert_eq!(lines[0]["fields"]["key"], "monitors.web.interval");
    assert!(
        lines[1]["fields"]["message"]
            .as_str()
            .unwrap()
            .ends_with("1 error(s); not starting"),
        "{}",
        ran.stderr
    );

    let human = common::run(common::command(
        dir.path(),
        &["serve", "--config", "signpost.toml"],
    ));
    assert_eq!(human.code, Some(EX_CONFIG));
    assert!(
        human.stderr.contains("monitors.web.interval"),
        "{}",
        human.stderr
    );
    assert!(
        !human.stderr.contains('\x1b'),
        "colour codes: {:?}",
        human.stderr
    );
}
