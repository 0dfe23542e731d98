//! Issue 3, acceptance 1: the prober and the status machine against real servers on
//! loopback (HTTP, HTTPS with a CA made here, TCP), one behaviour per test.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::ingress::{HttpServer, Reply, TestCa, always, closed_port};
use signpost::config::{Protocol, TlsSpec};
use signpost::health::{ProbeOutcome, Prober, ProberOptions, TargetHealth};
use signpost::model::ProbeTarget;
use signpost::snapshot::Status;

fn target(addr: SocketAddr, protocol: Protocol) -> ProbeTarget {
    ProbeTarget {
        addr: addr.ip(),
        port: addr.port(),
        protocol,
        path: "/health".into(),
        host: None,
        headers: vec![],
        expected_status: vec![(200, 299)],
        body_contains: None,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        tolerated_failures: 2,
        rise: 1,
        retry_interval: Duration::from_secs(1),
        tls: TlsSpec::default(),
        reuse_connection: true,
    }
}

/// Probes `t` `n` times, feeding a fresh status machine; returns each status and outcome.
async fn run(prober: &Prober, t: &ProbeTarget, n: usize) -> Vec<(Status, ProbeOutcome)> {
    let mut health = TargetHealth::new(t.tolerated_failures, t.rise, t.interval);
    let mut out = Vec::new();
    for _ in 0..n {
        let o = prober.probe(t).await;
        health.record(
            SystemTime::now(),
            Instant::now(),
            o.ok,
            o.rtt,
            o.reason.as_deref().map(Arc::from),
        );
        out.push((health.status(), o));
    }
    out
}

async fn once(t: &ProbeTarget) -> ProbeOutcome {
    Prober::new().probe(t).await
}

/// The status after one probe, and the probe's reason.
async fn first(prober: &Prober, t: &ProbeTarget) -> (Status, String) {
    let r = run(prober, t, 1).await;
    (r[0].0, reason(&r[0].1).to_owned())
}

fn tls(ca_file: Option<&std::path::Path>, insecure_skip_verify: bool) -> TlsSpec {
    TlsSpec {
        ca_file: ca_file.map(Into::into),
        insecure_skip_verify,
    }
}

fn reason(o: &ProbeOutcome) -> &str {
    o.reason.as_deref().unwrap_or("")
}

#[tokio::test]
async fn http_200_is_online() {
    let server = HttpServer::start(always(Reply::Status(200, "ok"))).await;
    let t = target(server.addr, Protocol::Http);
    let results = run(&Prober::new(), &t, 2).await;
    assert_eq!(results[0].0, Status::Online, "{:?}", results[0].1);
    assert!(results[0].1.ok && results[0].1.reason.is_none());
    assert!(results[0].1.rtt < t.timeout);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "one request per probe");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", "/health")
    );
    assert_eq!(reqs[0].header("connection"), None, "kept alive");
    assert_eq!(
        server.connections(),
        1,
        "the second probe reused the connection"
    );
    assert!(
        reqs[0]
            .header("user-agent")
            .unwrap()
            .starts_with("signpost-probe/")
    );
}

#[tokio::test]
async fn http_503_is_degraded_after_tolerated_failures_plus_one() {
    let server = HttpServer::start(always(Reply::Status(503, "down"))).await;
    let t = target(server.addr, Protocol::Http); // tolerated_failures = 2
    let results = run(&Prober::new(), &t, 3).await;
    let statuses: Vec<Status> = results.iter().map(|r| r.0).collect();
    // A target that has never succeeded is Degraded on its first failure.
    assert_eq!(statuses, [Status::Degraded; 3]);
    for (_, o) in &results {
        assert_eq!(reason(o), "status 503 not in 200-299");
    }

    // From Online too: the third failure in a row, not the first, takes it out.
    let prober = Prober::new();
    let mut health = TargetHealth::new(2, 1, t.interval);
    let mut seen = Vec::new();
    for (i, status) in [200, 503, 503, 503].into_iter().enumerate() {
        server.set(always(Reply::Status(status, "")));
        let o = prober.probe(&t).await;
        health.record(SystemTime::now(), Instant::now(), o.ok, o.rtt, None);
        seen.push(health.status());
        assert_eq!(o.ok, i == 0);
    }
    assert_eq!(
        seen,
        [
            Status::Online,
            Status::Online,
            Status::Online,
            Status::Degraded
        ]
    );
}

#[tokio::test]
async fn connection_refused_fails_at_once() {
    let t = target(closed_port().await, Protocol::Http);
    let o = once(&t).await;
    assert!(!o.ok);
    assert_eq!(reason(&o), "connection refused");
    assert!(o.rtt < Duration::from_millis(500), "{:?}", o.rtt);
    let t = target(closed_port().await, Protocol::Tcp);
    assert_eq!(reason(&once(&t).await), "connection refused");
}

/// Runs one probe and checks that it failed at `timeout`: not before, and not much later.
async fn fails_at_timeout(t: &ProbeTarget) -> ProbeOutcome {
    let start = Instant::now();
    let o = once(t).await;
    let took = start.elapsed();
    assert!(!o.ok, "{o:?}");
    assert!(
        took >= t.timeout,
        "failed after {took:?}, before the {:?} timeout",
        t.timeout
    );
    assert!(
        took < t.timeout + Duration::from_millis(500),
        "failed only after {took:?}"
    );
    o
}

#[tokio::test]
async fn hung_server_fails_at_timeout() {
    let server = HttpServer::start(always(Reply::Hang)).await;
    let mut t = target(server.addr, Protocol::Http);
    t.timeout = Duration::from_millis(800);
    let o = fails_at_timeout(&t).await;
    assert_eq!(reason(&o), "timeout after 800ms (no response)");
    // The request reached the server; at half the timeout a second one went over a new
    // connection, in case only the kept-alive one was stuck.
    assert_eq!(server.hits(), 2);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn hung_tls_handshake_fails_at_timeout() {
    // Accepts TCP and never speaks TLS.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let mut t = target(addr, Protocol::Https);
    t.timeout = Duration::from_millis(700);
    t.tls.insecure_skip_verify = true;
    let o = fails_at_timeout(&t).await;
    assert_eq!(reason(&o), "timeout after 700ms (no response)");
    hold.abort();
}

#[tokio::test]
async fn trickling_body_fails_at_timeout_and_a_slow_but_timely_one_passes() {
    // 100 bytes at one per 50 ms would take 5 s.
    let server = HttpServer::start(always(Reply::Trickle {
        len: 100,
        every: Duration::from_millis(50),
    }))
    .await;
    let mut t = target(server.addr, Protocol::Http);
    t.timeout = Duration::from_millis(800);
    let o = fails_at_timeout(&t).await;
    assert_eq!(reason(&o), "timeout after 800ms (body incomplete)");

    // 5 bytes: 250 ms, inside the timeout.
    server.set(always(Reply::Trickle {
        len: 5,
        every: Duration::from_millis(50),
    }));
    let o = once(&t).await;
    assert!(o.ok, "{o:?}");
    assert!(
        o.rtt >= Duration::from_millis(250),
        "the whole body was read: {:?}",
        o.rtt
    );
}

#[tokio::test]
async fn closed_without_an_answer() {
    let server = HttpServer::start(always(Reply::Close)).await;
    let o = once(&target(server.addr, Protocol::Http)).await;
    assert!(!o.ok);
    assert_eq!(reason(&o), "connection closed before message completed");
    assert_eq!(server.hits(), 2, "tried again on a new connection");
}

#[tokio::test]
async fn without_reuse_every_probe_opens_a_connection_and_asks_to_close_it() {
    let server = HttpServer::start(always(Reply::Status(200, "ok"))).await;
    let mut t = target(server.addr, Protocol::Http);
    t.reuse_connection = false;
    let results = run(&Prober::new(), &t, 3).await;
    assert!(results.iter().all(|(_, o)| o.ok), "{results:?}");
    assert_eq!(server.connections(), 3);
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.header("connection") == Some("close"))
    );
}

/// Answers the `n`th request (from 0) with `replies[n]`, and 200 after them.
fn script(replies: Vec<Reply>) -> common::ingress::Handler {
    let next = std::sync::atomic::AtomicUsize::new(0);
    Arc::new(move |_: &common::ingress::Request| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        replies.get(n).cloned().unwrap_or(Reply::Status(200, "ok"))
    })
}

#[tokio::test]
async fn a_kept_alive_connection_closed_under_a_probe_is_retried_on_a_new_one() {
    // Request 2 arrives on the kept-alive connection and the server drops it unanswered,
    // as a restarting ingress or an idle-timeout race would: the probe must not fail for
    // that, and must not pass without a real answer either.
    let server = HttpServer::start(script(vec![Reply::Status(200, "ok"), Reply::Close])).await;
    let t = target(server.addr, Protocol::Http);
    let prober = Prober::new();
    assert!(prober.probe(&t).await.ok);
    let o = prober.probe(&t).await;
    assert!(o.ok, "{o:?}");
    assert_eq!(server.hits(), 3, "the dropped request, then a new one");
    assert_eq!(server.connections(), 2);
    let new = &server.requests()[2];
    assert_eq!(new.header("connection"), Some("close"));
}

#[tokio::test]
async fn a_killed_server_fails_the_next_probe_despite_a_kept_connection() {
    let mut server = HttpServer::start(always(Reply::Status(200, "ok"))).await;
    let t = target(server.addr, Protocol::Http);
    let prober = Prober::new();
    assert!(prober.probe(&t).await.ok);
    server.stop();
    let o = prober.probe(&t).await;
    assert!(!o.ok);
    assert_eq!(reason(&o), "connection refused");
    // It listens again: the next probe opens a new connection and passes.
    server.restart().await;
    assert!(prober.probe(&t).await.ok);
}

#[tokio::test]
async fn a_stuck_kept_alive_connection_is_raced_by_a_new_one_at_half_the_timeout() {
    let server = HttpServer::start(script(vec![Reply::Status(200, "ok"), Reply::Hang])).await;
    let t = target(server.addr, Protocol::Http); // timeout 1 s
    let prober = Prober::new();
    assert!(prober.probe(&t).await.ok);
    let o = prober.probe(&t).await;
    assert!(o.ok, "{o:?}");
    assert!(
        o.rtt >= t.timeout / 2 && o.rtt < t.timeout,
        "answered on the new connection after {:?}",
        o.rtt
    );
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn kept_alive_connections_are_replaced_after_the_maximum_age() {
    let server = HttpServer::start(always(Reply::Status(200, "ok"))).await;
    let t = target(server.addr, Protocol::Http);
    let prober = Prober::with_options(ProberOptions {
        max_connection_age: Duration::from_millis(300),
    });
    for _ in 0..3 {
        assert!(prober.probe(&t).await.ok);
    }
    assert_eq!(server.connections(), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    for _ in 0..3 {
        assert!(prober.probe(&t).await.ok);
    }
    assert_eq!(
        server.connections(),
        2,
        "a new connection once the first was too old"
    );
}

#[tokio::test]
async fn body_contains() {
    let server = HttpServer::start(always(Reply::Status(200, "status: ok\n"))).await;
    let mut t = target(server.addr, Protocol::Http);
    t.body_contains = Some("ok".into());
    assert!(once(&t).await.ok);
    server.set(always(Reply::Status(200, "status: failing\n")));
    let o = once(&t).await;
    assert!(!o.ok);
    assert_eq!(reason(&o), "body does not contain \"ok\"");
}

#[tokio::test]
async fn host_header_and_custom_headers_reach_the_server() {
    let server = HttpServer::start(Arc::new(|r: &common::ingress::Request| {
        match (r.header("host"), r.header("x-probe-token")) {
            (Some("app.corp.example"), Some("s3cret")) => Reply::Status(200, "app"),
            (Some("app.corp.example"), _) => Reply::Status(403, ""),
            _ => Reply::Status(404, ""),
        }
    }))
    .await;
    let mut t = target(server.addr, Protocol::Http);
    t.headers = vec![("X-Probe-Token".into(), "s3cret".into())];
    let o = once(&t).await;
    assert_eq!(
        reason(&o),
        "status 404 not in 200-299",
        "without host the address is the Host"
    );

    t.host = Some("app.corp.example".into());
    let o = once(&t).await;
    assert!(o.ok, "{o:?}");
    // The probe still went to the target's address, not to wherever the name resolves.
    assert_eq!(server.hits(), 2);

    t.headers.clear();
    assert_eq!(reason(&once(&t).await), "status 403 not in 200-299");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = HttpServer::start(always(Reply::Redirect(302, "/elsewhere"))).await;
    let mut t = target(server.addr, Protocol::Http);
    let o = once(&t).await;
    assert_eq!(reason(&o), "status 302 not in 200-299");
    t.expected_status = vec![(200, 299), (302, 302)];
    assert!(once(&t).await.ok);
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/health", "/health"]);
}

#[tokio::test]
async fn tcp_monitor_connects() {
    let server = HttpServer::start(always(Reply::Hang)).await;
    let t = target(server.addr, Protocol::Tcp);
    let o = once(&t).await;
    assert!(o.ok, "{o:?}");
    assert!(o.rtt < Duration::from_millis(500));
}

#[tokio::test]
async fn https_trusts_only_the_configured_ca() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    ca.write(&ca_file);
    let other_ca_file = dir.path().join("other-ca.pem");
    TestCa::new().write(&other_ca_file);

    let server = HttpServer::start_tls(
        always(Reply::Status(200, "ok")),
        ca.acceptor(&["app.corp.example"]),
    )
    .await;
    let prober = Prober::new();
    let mut t = target(server.addr, Protocol::Https);
    t.host = Some("app.corp.example".into());
    t.tolerated_failures = 0;

    // Online with ca_file; the server saw the host as SNI.
    t.tls = tls(Some(&ca_file), false);
    let (status, why) = first(&prober, &t).await;
    assert_eq!(status, Status::Online, "{why}");
    let last = server.requests().pop().unwrap();
    assert_eq!(last.sni.as_deref(), Some("app.corp.example"));
    assert_eq!(last.header("host"), Some("app.corp.example"));

    // Degraded without it: the system trust store does not know the test CA.
    t.tls = TlsSpec::default();
    let (status, why) = first(&prober, &t).await;
    assert_eq!(status, Status::Degraded);
    assert!(why.starts_with("TLS: invalid peer certificate"), "{why}");

    // Degraded with a different CA: only the configured bundle is trusted.
    t.tls = tls(Some(&other_ca_file), false);
    let (status, why) = first(&prober, &t).await;
    assert_eq!(status, Status::Degraded);
    assert!(why.starts_with("TLS: "), "{why}");

    // The right CA but the wrong name: the certificate is checked against `host`.
    t.tls = tls(Some(&ca_file), false);
    t.host = Some("other.corp.example".into());
    let (status, why) = first(&prober, &t).await;
    assert_eq!(status, Status::Degraded);
    assert!(
        why.contains("not valid for name \"other.corp.example\""),
        "{why}"
    );

    // Online with insecure_skip_verify, whatever the CA and name.
    t.tls = tls(None, true);
    let (status, why) = first(&prober, &t).await;
    assert_eq!(status, Status::Online, "{why}");
}

#[tokio::test]
async fn plain_http_to_a_tls_port_and_tls_to_a_plain_port_fail() {
    let ca = TestCa::new();
    let tls = HttpServer::start_tls(
        always(Reply::Status(200, "ok")),
        ca.acceptor(&["127.0.0.1"]),
    )
    .await;
    let o = once(&target(tls.addr, Protocol::Http)).await;
    assert!(!o.ok, "{o:?}");
    assert!(o.rtt < Duration::from_millis(500), "{o:?}");
    let plain = HttpServer::start(always(Reply::Status(200, "ok"))).await;
    let mut t = target(plain.addr, Protocol::Https);
    t.tls.insecure_skip_verify = true;
    let o = once(&t).await;
    assert!(reason(&o).starts_with("TLS: "), "{o:?}");
}

/// Set in the child process of [`out_of_file_descriptors_is_not_a_failure_of_the_endpoint`].
const EMFILE_CHILD: &str = "SIGNPOST_TEST_EMFILE_CHILD";

/// Issue 15: a probe this process cannot make because it is out of file descriptors
/// (EMFILE) is a local error, not a failure of the endpoint ([`ProbeOutcome::local`]):
/// the scheduler leaves the endpoint's status as it was. Runs in a child process of this
/// test binary, whose limit on open files is lowered below what it has open.
#[test]
fn out_of_file_descriptors_is_not_a_failure_of_the_endpoint() {
    if std::env::var_os(EMFILE_CHILD).is_some() {
        return emfile_child();
    }
    let out = common::run_bounded(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "out_of_file_descriptors_is_not_a_failure_of_the_endpoint",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(EMFILE_CHILD, "1"),
        Duration::from_secs(60),
    )
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("emfile child: done"),
        "{text}"
    );
}

fn emfile_child() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = HttpServer::start(always(Reply::Status(200, "ok"))).await;
        let mut http = target(server.addr, Protocol::Http);
        http.reuse_connection = false;
        let tcp = target(server.addr, Protocol::Tcp);
        let prober = Prober::new();
        for t in [&http, &tcp] {
            let o = prober.probe(t).await;
            assert!(o.ok && !o.local, "{:?}: {o:?}", t.protocol);
        }

        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed in; this
        // process is the child, alone in lowering its limit.
        unsafe { assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0) };
        // Every new descriptor (the lowest free number, above stdin, stdout and stderr)
        // is now over the limit; those open stay usable.
        let low = libc::rlimit {
            rlim_cur: 3,
            rlim_max: lim.rlim_max,
        };
        unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &low), 0) };
        for t in [&http, &tcp] {
            let o = prober.probe(t).await;
            assert!(!o.ok && o.local, "{:?}: {o:?}", t.protocol);
            let r = reason(&o);
            assert!(
                r.starts_with("not probed, this host is short of resources")
                    && r.contains("(os error 24)"),
                "{r}"
            );
        }
        unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0) };

        // With descriptors again: the endpoint's own failures are failures.
        let refused = target(closed_port().await, Protocol::Tcp);
        let o = prober.probe(&refused).await;
        assert!(!o.ok && !o.local, "{o:?}");
        let o = prober.probe(&http).await;
        assert!(o.ok, "{o:?}");
        println!("emfile child: done");
    });
}
