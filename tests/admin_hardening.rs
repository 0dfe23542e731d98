//! Issue 15 (findings 3, 6, 10 and reload errors), admin side, against the real binary
//! over loopback: cross-origin and foreign-`Host` requests are refused and change nothing,
//! mutating calls need `Content-Type: application/json`, every answer forbids framing, 300
//! half-sent requests are closed within 20 s while DNS keeps answering and a normal
//! request is served at once, the status is paged and filtered, status reads of a large
//! config do not stall DNS over TCP, and a failed reload's details need the token.
//! (Chromium, from a page on another origin: `tests/status_page.rs`.)

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Setup, Signpost, a_records, poll, two_sites};
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde_json::Value;

const TOKEN: &str = "hardening-test-token";
const DRAIN: &str = "/api/v1/sites/hub-a/drain";

/// Sends `head` (the request line and headers, CRLF-separated, without the blank line)
/// and `body` as one request on a new connection and reads the answer until the server
/// closes: (status, headers, body).
fn raw(addr: SocketAddr, head: &str, body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "{head}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, headers.to_owned(), body.to_owned())
}

fn error_of(status: u16, body: &str) -> String {
    let v: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("status {status}: not JSON ({e}): {body}"));
    assert_eq!(v["status"], status, "{v}");
    v["error"].as_str().unwrap_or_default().to_owned()
}

/// A header's value in a raw head (case-insensitive name).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn drains(sp: &Signpost) -> u64 {
    sp.status()["drains_active"].as_u64().unwrap()
}

/// Both sites still answer `app.gslb.example` over UDP.
fn both_sites_answer(sp: &Signpost) {
    let wire = common::query("app.gslb.example.", RecordType::A)
        .to_vec()
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        seen.extend(a_records(&Message::from_vec(&sp.udp(&wire)).unwrap()));
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
}

/// Finding 3: with no token (the loopback default), a call from another origin, a form's
/// content type, or a cross-site fetch gets 403 or 415 and drains nothing; a call from the
/// listener's own origin (the status page's) still works.
#[test]
fn cross_origin_and_non_json_mutations_are_refused_and_change_nothing() {
    let sp = Signpost::start(&Setup::gslb(&two_sites(30)));
    let host = format!("Host: {}", sp.admin);
    let post = format!("POST {DRAIN} HTTP/1.1\r\n{host}");
    let json = "Content-Type: application/json";
    let body = r#"{"reason": "attack"}"#;
    let other = format!("http://127.0.0.1:{}", sp.admin.port() + 1);
    for (extra, want, says) in [
        (
            format!("{json}\r\nOrigin: http://attacker.example"),
            403,
            "cross-origin",
        ),
        (format!("{json}\r\nOrigin: {other}"), 403, "cross-origin"),
        (format!("{json}\r\nOrigin: null"), 403, "cross-origin"),
        (
            "Content-Type: text/plain\r\nOrigin: http://attacker.example".to_owned(),
            403,
            "cross-origin",
        ),
        (
            format!("{json}\r\nSec-Fetch-Site: cross-site"),
            403,
            "cross-site",
        ),
        (
            "Content-Type: text/plain".to_owned(),
            415,
            "application/json",
        ),
        (
            "Content-Type: application/x-www-form-urlencoded".to_owned(),
            415,
            "application/json",
        ),
        (
            "Content-Type: multipart/form-data; boundary=x".to_owned(),
            415,
            "application/json",
        ),
        ("X-Nothing: 1".to_owned(), 415, "got none"),
    ] {
        let (status, _, b) = raw(sp.admin, &format!("{post}\r\n{extra}"), body);
        assert_eq!(status, want, "{extra}: {b}");
        let e = error_of(status, &b);
        assert!(e.contains(says), "{extra}: {e}");
        assert_eq!(drains(&sp), 0, "{extra} drained");
    }
    // The same for undrain and reload (no body).
    for path in ["/api/v1/sites/hub-a/undrain", "/api/v1/reload"] {
        let (status, _, b) = raw(
            sp.admin,
            &format!("POST {path} HTTP/1.1\r\n{host}\r\nOrigin: http://attacker.example\r\n{json}"),
            "",
        );
        assert_eq!(status, 403, "{path}: {b}");
        let (status, _, b) = raw(sp.admin, &format!("POST {path} HTTP/1.1\r\n{host}"), "");
        assert_eq!(status, 415, "{path}: {b}");
    }
    assert_eq!(sp.status()["generation"], 1, "a refused reload reloaded");
    both_sites_answer(&sp);
    let log = sp.log();
    assert!(log.contains("admin call refused: cross-origin"), "{log}");

    // The listener's own origin, as the status page sends it: drains.
    let (status, _, b) = raw(
        sp.admin,
        &format!(
            "{post}\r\n{json}\r\nOrigin: http://{}\r\nSec-Fetch-Site: same-origin",
            sp.admin
        ),
        body,
    );
    assert_eq!(status, 200, "{b}");
    assert_eq!(drains(&sp), 1);
    // And the CLI (no Origin; JSON also without a body).
    for args in [
        &["undrain", "--site", "hub-a"][..],
        &["drain", "--site", "hub-b", "--reason", "cli"],
        &["undrain", "--site", "hub-b"],
        &["reload"],
    ] {
        let ran = sp.cli(args);
        assert_eq!(ran.code, Some(0), "{args:?}: {}", ran.text());
    }
    assert_eq!(drains(&sp), 0);
    assert_eq!(sp.status()["generation"], 2);
}

/// GETs every admin route with each `Host`: the status wanted, and a refusal that names
/// `admin.allowed_hosts` and shows nothing of the status.
fn get_with_hosts(sp: &Signpost, hosts: &[(String, u16)]) {
    for (h, want) in hosts {
        for path in ["/api/v1/status", "/", "/metrics", "/api/v1/cluster"] {
            let (status, _, b) = raw(sp.admin, &format!("GET {path} HTTP/1.1\r\nHost: {h}"), "");
            assert_eq!(status, *want, "Host {h} GET {path}: {b}");
            if *want == 403 {
                let e = error_of(403, &b);
                assert!(e.contains("admin.allowed_hosts"), "{e}");
                assert!(
                    !b.contains("hub-a"),
                    "a refused read leaked the status: {b}"
                );
            }
        }
    }
}

/// Finding 3 (DNS rebinding): a `Host` that is not the listener's address, `localhost` or
/// an `admin.allowed_hosts` entry gets 403 on every route, reads included.
#[test]
fn a_foreign_host_is_refused_on_every_route() {
    let mut sp = Signpost::start(&Setup::gslb(&two_sites(30)));
    let port = sp.admin.port();
    get_with_hosts(&sp, &[(format!("attacker.example:{port}"), 403)]);
    // Names the operator configured.
    let text = std::fs::read_to_string(sp.config_path()).unwrap();
    std::fs::write(
        sp.config_path(),
        text.replacen(
            "[admin]\n",
            "[admin]\nallowed_hosts = [\"signpost.example.net\", \"ops.example.net:8443\"]\n",
            1,
        ),
    )
    .unwrap();
    sp.restart();
    get_with_hosts(
        &sp,
        &[
            (format!("attacker.example:{port}"), 403),
            ("attacker.example".to_owned(), 403),
            (format!("127.0.0.2:{port}"), 403),
            (format!("localhost:{}", port + 1), 403),
            (format!("ops.example.net:{port}"), 403),
            (format!("signpost.example.net.attacker.example:{port}"), 403),
            (format!("127.0.0.1:{port}"), 200),
            (format!("localhost:{port}"), 200),
            ("localhost".to_owned(), 200),
            (format!("signpost.example.net:{port}"), 200),
            ("ops.example.net:8443".to_owned(), 200),
        ],
    );
    let (status, _, b) = raw(
        sp.admin,
        &format!(
            "POST {DRAIN} HTTP/1.1\r\nHost: attacker.example:{port}\r\nContent-Type: application/json"
        ),
        "{}",
    );
    assert_eq!(status, 403, "{b}");
    assert_eq!(drains(&sp), 0);
    assert!(
        sp.log().contains("admin request refused: Host"),
        "{}",
        sp.log()
    );
}

/// Finding 3 (framing): the page, the API and errors carry CSP `frame-ancestors 'none'`,
/// `X-Frame-Options: DENY` and `X-Content-Type-Options: nosniff`.
#[test]
fn the_page_and_the_api_forbid_framing_and_sniffing() {
    let sp = Signpost::start(&Setup::gslb(&two_sites(30)));
    for (path, code) in [
        ("/", 200),
        ("/api/v1/status", 200),
        ("/metrics", 200),
        ("/healthz", 200),
        ("/api/v1/nothing", 404),
    ] {
        let (status, head, _) = raw(
            sp.admin,
            &format!("GET {path} HTTP/1.1\r\nHost: {}", sp.admin),
            "",
        );
        assert_eq!(status, code, "{path}");
        let csp = header(&head, "content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP in\n{head}"));
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header(&head, "x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            header(&head, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        if path == "/" {
            assert!(csp.contains("connect-src 'self'"), "{csp}");
            assert!(csp.contains("form-action 'self'"), "{csp}");
        }
    }
    // A request head over 64 KiB is refused, not buffered.
    let big = "x".repeat(100 * 1024);
    let (status, _, _) = raw(
        sp.admin,
        &format!("GET / HTTP/1.1\r\nHost: {}\r\nX-Big: {big}", sp.admin),
        "",
    );
    assert_eq!(status, 431, "a 100 KiB head");
}

/// The server's open file descriptors.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Finding 6: 300 half-sent requests (150 heads cut short, then 150 POSTs whose body never
/// finishes) are closed within 20 s; at most `admin.max_connections` (256) are open at
/// once; DNS over UDP and TCP answers meanwhile; a normal request made while they are
/// held is served at once (it takes the slot of the one that has waited longest); the
/// POSTs still waiting for their body at the deadline get a 408 and drain nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_sent_requests_are_closed_in_time_while_dns_and_admin_keep_serving() {
    let mut sp = Signpost::start(&Setup::gslb(&two_sites(30)));
    let pid = sp.pid();
    let admin = sp.admin;
    let dns = sp.addr;
    let baseline = open_fds(pid);

    // DNS over UDP and TCP, every 50 ms, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let wire = common::query("app.gslb.example.", RecordType::A)
                .to_vec()
                .unwrap();
            let (mut asked, mut failed, mut worst) = (0, Vec::new(), Duration::ZERO);
            while !stop.load(Ordering::Relaxed) {
                for tcp in [false, true] {
                    let t = Instant::now();
                    let r = if tcp {
                        common::tcp_exchange(dns, &wire)
                    } else {
                        common::udp_exchange(dns, &wire, Duration::from_secs(2))
                    };
                    asked += 1;
                    worst = worst.max(t.elapsed());
                    if let Err(e) = r {
                        failed.push(format!("{} {e}", if tcp { "tcp" } else { "udp" }));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (asked, failed, worst)
        })
    };

    let started = Instant::now();
    let mut held = Vec::new();
    for i in 0..300 {
        let mut s = tokio::net::TcpStream::connect(admin).await.unwrap();
        let part = if i < 150 {
            format!("GET /api/v1/status HTTP/1.1\r\nHost: {admin}\r\nX-Slow: ")
        } else {
            format!(
                "POST {DRAIN} HTTP/1.1\r\nHost: {admin}\r\nContent-Type: application/json\r\n\
                 Content-Length: 1000\r\n\r\n{{\"reason\": \"slow"
            )
        };
        tokio::io::AsyncWriteExt::write_all(&mut s, part.as_bytes())
            .await
            .unwrap();
        held.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let r = tokio::time::timeout(
                Duration::from_secs(30),
                tokio::io::AsyncReadExt::read_to_end(&mut s, &mut out),
            )
            .await;
            let closed = r.is_ok();
            (
                i,
                started.elapsed(),
                closed,
                String::from_utf8_lossy(&out).into_owned(),
            )
        }));
    }
    let opened = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fds = open_fds(pid);

    // A normal request while they are held.
    let t = Instant::now();
    let normal = tokio::task::spawn_blocking(move || {
        common::http::request(admin, "GET", "/api/v1/status", &[], "")
    })
    .await
    .unwrap()
    .expect("a normal admin request while 300 half-sent ones are held");
    let normal_took = t.elapsed();
    assert_eq!(normal.status, 200, "{}", normal.body);

    let mut worst = Duration::ZERO;
    let mut not_closed = Vec::new();
    let mut timeouts_408 = 0;
    for h in held {
        let (i, at, closed, text) = h.await.unwrap();
        worst = worst.max(at);
        if !closed || at > Duration::from_secs(20) {
            not_closed.push((i, at));
        }
        if text.starts_with("HTTP/1.1 408") {
            assert!(text.contains("admin.request_timeout"), "{text}");
            timeouts_408 += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (asked, failed, dns_worst) = prober.join().unwrap();
    eprintln!(
        "300 half-sent admin requests opened in {opened:?}; {fds} fds open while held \
         (baseline {baseline}); a normal request took {normal_took:?}; the last was closed \
         after {worst:?}; {timeouts_408} got a 408; DNS: {asked} queries, {} failed, \
         worst {dns_worst:?}",
        failed.len()
    );
    assert!(
        not_closed.is_empty(),
        "{} connections not closed within 20 s: {:?}",
        not_closed.len(),
        &not_closed[..not_closed.len().min(10)]
    );
    assert!(
        fds <= baseline + 256 + 8,
        "{fds} fds open while held (baseline {baseline}): more than admin.max_connections"
    );
    assert!(
        normal_took < Duration::from_secs(2),
        "the normal request waited {normal_took:?}"
    );
    assert!(failed.is_empty(), "DNS failed while held: {failed:?}");
    assert!(asked >= 40, "only {asked} DNS queries");
    // The newest 150 (the POSTs) were not evicted: each got its 408 at the deadline.
    assert!(timeouts_408 >= 140, "only {timeouts_408} answered 408");
    assert_eq!(drains(&sp), 0);
    // Everything closed: back to the baseline.
    poll(Duration::from_secs(5), || open_fds(pid) <= baseline + 2).unwrap_or_else(|| {
        panic!(
            "{} fds open after the test (baseline {baseline})",
            open_fds(pid)
        )
    });
}

/// `count` profiles `p00000.gslb.example`, … with one endpoint each, and sites hub-a and
/// hub-b.
fn many_profiles(count: usize) -> String {
    let mut t = String::from("[[sites]]\nname = \"hub-a\"\n[[sites]]\nname = \"hub-b\"\n");
    for i in 0..count {
        t.push_str(&format!(
            "[profiles.\"p{i:05}.gslb.example\"]\n[[profiles.\"p{i:05}.gslb.example\".endpoints]]\n\
             name = \"e\"\nsite = \"hub-a\"\naddress = \"192.0.2.{}\"\n",
            i % 250 + 1
        ));
    }
    t
}

fn get(sp: &Signpost, path: &str) -> common::http::Response {
    sp.api("GET", path, "", false)
}

/// Finding 10: the status is a page of at most 1,000 profiles (`?offset=&limit=`), or one
/// profile (`?profile=`); the page shows 100 with links; `signpost status` reads every
/// page.
#[test]
fn the_status_is_paged_and_filtered() {
    let sp = Signpost::start(&Setup::gslb(&many_profiles(2_500)));
    let st = get(&sp, "/api/v1/status").json();
    assert_eq!(st["profiles"].as_array().unwrap().len(), 1000);
    assert_eq!(
        st["page"],
        serde_json::json!({"offset": 0, "limit": 1000, "total": 2500, "next_offset": 1000})
    );
    assert_eq!(st["sites"].as_array().unwrap().len(), 2, "sites are whole");
    let mut keys = std::collections::BTreeSet::new();
    let mut offset = Some(0);
    while let Some(o) = offset {
        let st = get(&sp, &format!("/api/v1/status?offset={o}")).json();
        for p in st["profiles"].as_array().unwrap() {
            assert!(keys.insert(p["key"].as_str().unwrap().to_owned()), "{p}");
        }
        offset = st["page"]["next_offset"].as_u64();
    }
    assert_eq!(keys.len(), 2500);

    let st = get(&sp, "/api/v1/status?offset=2000").json();
    assert_eq!(st["profiles"].as_array().unwrap().len(), 500);
    assert!(st["page"]["next_offset"].is_null());
    let st = get(&sp, "/api/v1/status?offset=5&limit=10").json();
    assert_eq!(st["profiles"].as_array().unwrap().len(), 10);
    assert_eq!(st["page"]["next_offset"], 15);
    let st = get(&sp, "/api/v1/status?limit=5000").json();
    assert_eq!(
        st["profiles"].as_array().unwrap().len(),
        1000,
        "limit is capped"
    );
    assert_eq!(
        get(&sp, "/api/v1/status?offset=9999").json()["profiles"],
        serde_json::json!([])
    );
    for name in ["p01234.gslb.example", "p01234.gslb.example."] {
        let st = get(&sp, &format!("/api/v1/status?profile={name}")).json();
        let profiles = st["profiles"].as_array().unwrap();
        assert_eq!(profiles.len(), 1, "{name}");
        assert_eq!(profiles[0]["key"], "p01234.gslb.example");
        assert_eq!(profiles[0]["endpoints"][0]["name"], "e");
        assert_eq!(st["page"]["total"], 1);
    }
    for (q, code, says) in [
        ("profile=nope.gslb.example", 404, "no profile named"),
        ("limit=0", 400, "at least 1"),
        ("limit=many", 400, "not a number"),
        ("offset=-1", 400, "not a number"),
        ("page=2", 400, "unknown parameter"),
    ] {
        let r = get(&sp, &format!("/api/v1/status?{q}"));
        assert_eq!(r.status, code, "{q}: {}", r.body);
        assert!(
            r.json()["error"].as_str().unwrap().contains(says),
            "{q}: {}",
            r.body
        );
    }

    // The page: 100 profiles and links on.
    let page = get(&sp, "/");
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("<table class=profile").count(), 100);
    assert!(page.body.contains("Profiles 1–100 of 2500."), "no pager");
    assert!(page.body.contains("href='/?offset=100'"), "no next link");
    let last = get(&sp, "/?offset=2450");
    assert!(last.body.contains("Profiles 2451–2500 of 2500."));
    assert!(
        last.body.contains("href='/?offset=2350'"),
        "no previous link"
    );
    assert!(!last.body.contains("class=next"));
    let past = get(&sp, "/?offset=5000");
    assert!(
        past.body
            .contains("No profiles from 5001 on; there are 2500.")
    );
    let one = get(&sp, "/?profile=p00007.gslb.example");
    assert_eq!(one.body.matches("<table class=profile").count(), 1);
    assert!(
        one.body
            .contains("Showing profile p00007.gslb.example only.")
    );

    // The CLI reads every page.
    let ran = sp.cli(&["status", "--json"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let v: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(v["profiles"].as_array().unwrap().len(), 2500);
    let ran = sp.cli(&["status"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(ran.stdout.matches(".gslb.example. answers ").count(), 2500);
}

/// Finding 10: eight clients reading the status of a large config over and over (every
/// page, and the status page) do not stall DNS over TCP. The size is
/// `SIGNPOST_TEST_PROFILES` (default 20,000).
#[test]
fn status_reads_of_a_large_config_do_not_stall_dns_over_tcp() {
    let count: usize = std::env::var("SIGNPOST_TEST_PROFILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let t = Instant::now();
    let mut sp = Signpost::start(
        &Setup::gslb(&many_profiles(count)).start_timeout(Duration::from_secs(180)),
    );
    eprintln!("{count} profiles: serving after {:?}", t.elapsed());
    let pid = sp.pid();
    let rss = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0)
            / 1024
    };
    let rss_before = rss();
    let wire = common::query("p00001.gslb.example.", RecordType::A)
        .to_vec()
        .unwrap();
    let dns = sp.addr;
    let admin = sp.admin;
    // (worst, mean, queries not answered within 5 s)
    let tcp_latency = move |n: usize| {
        let mut worst = Duration::ZERO;
        let mut total = Duration::ZERO;
        let mut lost = 0;
        for _ in 0..n {
            let t = Instant::now();
            if common::tcp_exchange(dns, &wire).is_err() {
                lost += 1;
            }
            worst = worst.max(t.elapsed());
            total += t.elapsed();
            std::thread::sleep(Duration::from_millis(20));
        }
        (worst, total / n as u32, lost)
    };
    let (idle_worst, idle_mean, _) = tcp_latency(25);

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..8)
        .map(|r| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut reads, mut bytes, mut failed) = (0usize, 0usize, 0usize);
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if r % 4 == 3 {
                        match common::http::request(admin, "GET", "/", &[], "") {
                            Ok(p) if p.status == 200 => {
                                bytes += p.body.len();
                                reads += 1;
                            }
                            _ => failed += 1,
                        }
                        continue;
                    }
                    // Every page of the status, as `signpost status` reads it.
                    let mut offset = Some(0);
                    while let Some(o) = offset {
                        let Ok(p) = common::http::request(
                            admin,
                            "GET",
                            &format!("/api/v1/status?offset={o}"),
                            &[],
                            "",
                        ) else {
                            failed += 1;
                            break;
                        };
                        assert_eq!(p.status, 200, "{}", p.body);
                        bytes += p.body.len();
                        reads += 1;
                        offset = p.json()["page"]["next_offset"].as_u64();
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                }
                (reads, bytes, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (busy_worst, busy_mean, lost) = tcp_latency(150);
    let rss_busy = rss();
    stop.store(true, Ordering::Relaxed);
    let (mut reads, mut bytes, mut failed) = (0, 0, 0);
    for r in readers {
        let (n, b, f) = r.join().unwrap();
        reads += n;
        bytes += b;
        failed += f;
    }
    eprintln!(
        "{count} profiles; DNS over TCP idle: mean {idle_mean:?}, worst {idle_worst:?}; \
         with 8 status readers ({reads} reads, {failed} failed, {} MB): mean {busy_mean:?}, worst {busy_worst:?}, \
         {lost} of 150 not answered within 5 s; RSS {rss_before} MB before, {rss_busy} MB while read",
        bytes / 1_000_000
    );
    assert_eq!(
        lost, 0,
        "DNS over TCP queries lost while the status was read"
    );
    assert!(reads >= 8, "only {reads} status reads");
    assert_eq!(failed, 0, "status reads failed (no answer within 60 s)");
    assert!(
        busy_worst < Duration::from_millis(750),
        "DNS over TCP stalled for {busy_worst:?} while the status was read"
    );
}

/// Reload errors: the full text only with the token (when one is configured); without it
/// the status, the page and `signpost status` say that a reload failed and where to look.
#[test]
fn a_failed_reloads_details_need_the_token() {
    let mut sp = Signpost::start(&Setup::gslb(&two_sites(30)).token(TOKEN));
    let good = std::fs::read_to_string(sp.config_path()).unwrap();
    let secret = "hub-secret-name-7f3a";
    std::fs::write(
        sp.config_path(),
        good.replacen("site = \"hub-b\"", &format!("site = \"{secret}\""), 1),
    )
    .unwrap();
    let r = sp.api("POST", "/api/v1/reload", "", true);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains(secret),
        "the caller with the token: {}",
        r.body
    );

    let with = sp.api("GET", "/api/v1/status", "", true).json();
    assert_eq!(with["last_reload"]["ok"], false);
    assert!(
        with["last_reload"]["message"]
            .as_str()
            .unwrap()
            .contains(secret),
        "{with:#}"
    );
    assert!(
        with["last_reload"].get("details_hidden").is_none(),
        "{with:#}"
    );

    let without = sp.status();
    let lr = &without["last_reload"];
    assert_eq!(lr["ok"], false);
    assert_eq!(lr["details_hidden"], true);
    let msg = lr["message"].as_str().unwrap();
    assert_eq!(
        msg,
        format!(
            "reload failed at {}; see the log or GET /api/v1/status with the token",
            lr["time"].as_str().unwrap()
        )
    );
    assert!(!without.to_string().contains(secret), "{without:#}");
    // A wrong token is no token.
    let wrong = common::http::request(
        sp.admin,
        "GET",
        "/api/v1/status",
        &[("Authorization", "Bearer not-it")],
        "",
    )
    .unwrap();
    assert!(!wrong.body.contains(secret), "{}", wrong.body);

    // A browser's page load carries no token.
    let page = sp.api("GET", "/", "", false);
    assert!(!page.body.contains(secret), "the page shows the details");
    assert!(
        page.body.contains("Last reload failed at "),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("see the log or GET /api/v1/status with the token")
    );

    // The CLI with the token sees everything; without it, where to look.
    let ran = sp.cli(&["status"]);
    assert!(ran.stdout.contains(secret), "{}", ran.text());
    let mut cmd = common::command(sp.dir.path(), &["status", "--admin", &sp.admin_url()]);
    cmd.env_remove("SIGNPOST_TOKEN");
    let ran = common::run(cmd);
    assert_eq!(ran.code, Some(0), "{}", ran.text());
    assert!(!ran.stdout.contains(secret), "{}", ran.stdout);
    assert!(
        ran.stdout.contains("last reload FAILED at"),
        "{}",
        ran.stdout
    );
    assert!(sp.log().contains(secret), "the log has the details");
    sp.assert_running();
}
