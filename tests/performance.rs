//! Issue 4, acceptance 3, with the real binary and real probes: of two local ingresses,
//! one made 50 ms slower, performance routing answers with the faster; when the faster
//! fails, with the slower.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::ingress::{Handler, HttpServer, Reply, always, wait_for};
use common::{Setup, Signpost, answers};

const NAME: &str = "app.gslb.example.";

/// An HTTP health endpoint on 127.0.0.1 that answers after `delay`: 200 while healthy,
/// else 503.
async fn ingress(delay: Duration) -> HttpServer {
    HttpServer::start(health(delay, true)).await
}

fn health(delay: Duration, healthy: bool) -> Handler {
    always(Reply::Delayed(delay, if healthy { 200 } else { 503 }, "ok"))
}

fn config(fast: u16, slow: u16) -> String {
    format!(
        r#"
[monitors]
ingress = {{ protocol = "http", path = "/healthz", interval = "200ms", timeout = "1s", tolerated_failures = 1, rise = 1 }}

[profiles."app.gslb.example"]
method = "performance"
ttl = 5
monitor = "ingress"
endpoints = [
    {{ name = "fast", address = "127.0.0.21", probe_address = "127.0.0.1", monitor = {{ port = {fast} }} }},
    {{ name = "slow", address = "127.0.0.22", probe_address = "127.0.0.1", monitor = {{ port = {slow} }} }},
]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_go_to_the_faster_ingress_and_fail_over_to_the_slower() {
    let fast_ip = Ipv4Addr::new(127, 0, 0, 21);
    let slow_ip = Ipv4Addr::new(127, 0, 0, 22);
    let fast = ingress(Duration::ZERO).await;
    let slow = ingress(Duration::from_millis(50)).await;
    let sp = Signpost::start(&Setup::gslb(&config(fast.addr.port(), slow.addr.port())).json_log());

    // Once both are probed, only the faster is within the tolerance band (5 ms).
    let settled = wait_for(Duration::from_secs(10), async || {
        sp.log_lines("→ Online").len() >= 2 && answers(sp.addr, NAME, 20).await == [fast_ip]
    })
    .await;
    assert!(
        settled.is_some(),
        "answers did not settle on the faster ingress; logs: {}",
        sp.log()
    );
    // And they stay there, probe after probe.
    for _ in 0..3 {
        assert_eq!(answers(sp.addr, NAME, 40).await, [fast_ip]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    fast.set(health(Duration::ZERO, false));
    let over = wait_for(Duration::from_secs(6), async || {
        answers(sp.addr, NAME, 20).await == [slow_ip]
    })
    .await;
    let over = over.expect("answers did not fail over to the slower ingress within 6 s");
    assert!(over <= Duration::from_secs(3), "failover took {over:?}");
    assert_eq!(answers(sp.addr, NAME, 40).await, [slow_ip]);

    // The faster comes back: answers return to it.
    fast.set(health(Duration::ZERO, true));
    let back = wait_for(Duration::from_secs(6), async || {
        answers(sp.addr, NAME, 20).await == [fast_ip]
    })
    .await;
    assert!(
        back.is_some(),
        "answers did not return to the faster ingress"
    );
    eprintln!("failover after {over:?}, back after {back:?}");
}
