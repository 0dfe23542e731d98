//! Issue 3, acceptance 2 and 4, with the real binary: endpoints leave and rejoin the answers
//! as their ingresses die, hang, fail and come back, and DNS keeps answering at normal
//! latency while many probe targets hang.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::ingress::{HttpServer, Reply, always, closed_port, wait_for};
use common::{Setup, Signpost, answers, ask_async, query_a};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const NAME: &str = "app.gslb.example.";

/// Three ingresses on 127.0.0.1 answered as 127.0.0.11, .12, .13.
fn three_ingresses(ports: [u16; 3]) -> String {
    let mut cfg = String::from(
        r#"
[monitors.ingress]
protocol = "http"
path = "/healthz"
interval = "1s"
timeout = "1s"
tolerated_failures = 1
rise = 1

[profiles."app.gslb.example"]
method = "weighted"
ttl = 5
monitor = "ingress"
"#,
    );
    for (i, port) in ports.iter().enumerate() {
        cfg.push_str(&format!(
            "\n[[profiles.\"app.gslb.example\".endpoints]]\nname = \"{name}\"\naddress = \"127.0.0.{a}\"\nprobe_address = \"127.0.0.1\"\nmonitor = {{ port = {port} }}\n",
            name = ["a", "b", "c"][i],
            a = 11 + i,
        ));
    }
    cfg
}

fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// 30 queries: the chance that a served endpoint of three with equal weights is missing
/// from all of them is (2/3)^30 < 1e-5.
async fn served(sp: &Signpost) -> Vec<Ipv4Addr> {
    answers(sp.addr, NAME, 30).await
}

async fn start() -> (Vec<HttpServer>, Signpost) {
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(HttpServer::start(always(Reply::Status(200, "ok"))).await);
    }
    let ports = [
        servers[0].addr.port(),
        servers[1].addr.port(),
        servers[2].addr.port(),
    ];
    let sp = Signpost::start(&Setup::gslb(&three_ingresses(ports)).json_log());
    // Every endpoint probed Online first.
    sp.wait_for_log("→ Online", 3, Duration::from_secs(5)).await;
    assert_eq!(served(&sp).await, [addr(11), addr(12), addr(13)]);
    (servers, sp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_ingress_leaves_the_answers_and_returns() {
    let (mut servers, sp) = start().await;

    servers[0].stop();
    let out = wait_for(Duration::from_secs(6), async || {
        !served(&sp).await.contains(&addr(11))
    })
    .await;
    let out = out.expect("the killed ingress is still answered after 6 s");
    assert!(
        out <= Duration::from_secs(4),
        "killed ingress left the answers only after {out:?}"
    );
    // And it stays out.
    assert_eq!(answers(sp.addr, NAME, 60).await, [addr(12), addr(13)]);

    let line = sp
        .log_lines("endpoint Online → Degraded")
        .into_iter()
        .find(|l| l["fields"]["endpoint"] == "a")
        .expect("a transition log line for endpoint a");
    let f = &line["fields"];
    assert_eq!(f["profile"], "app.gslb.example");
    assert_eq!(
        (f["from"].as_str(), f["to"].as_str()),
        (Some("Online"), Some("Degraded"))
    );
    assert_eq!(f["reason"], "connection refused");

    servers[0].restart().await;
    let back = wait_for(Duration::from_secs(5), async || {
        served(&sp).await.contains(&addr(11))
    })
    .await;
    let back = back.expect("the ingress did not return within 5 s");
    assert!(
        back <= Duration::from_secs(3),
        "the ingress returned only after {back:?}"
    );
    assert_eq!(served(&sp).await, [addr(11), addr(12), addr(13)]);
    eprintln!("killed ingress out after {out:?}, back after {back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_and_404_ingresses_leave_and_only_the_third_is_answered() {
    let (servers, sp) = start().await;

    servers[1].set(always(Reply::Hang));
    servers[2].set(always(Reply::Status(404, "gone")));
    let t = wait_for(Duration::from_secs(6), async || {
        served(&sp).await == [addr(11)]
    })
    .await;
    let t = t.expect("hung and 404 ingresses still answered after 6 s");
    assert!(
        t <= Duration::from_secs(4),
        "hung and 404 ingresses left only after {t:?}"
    );
    eprintln!("hung and 404 ingresses out after {t:?}");
    // Two of three down: every answer is the third.
    for _ in 0..60 {
        assert_eq!(
            query_a(sp.addr, NAME, Duration::from_secs(1))
                .await
                .unwrap(),
            [addr(11)]
        );
    }
    let reasons: Vec<String> = sp
        .log_lines("→ Degraded")
        .iter()
        .map(|l| format!("{}: {}", l["fields"]["endpoint"], l["fields"]["reason"]))
        .collect();
    assert!(
        reasons.contains(&r#""b": "timeout after 1s (no response)""#.to_owned()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&r#""c": "status 404 not in 200-299""#.to_owned()),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_at_normal_latency_while_100_probe_targets_hang() {
    // 100 distinct targets (10 ports × 10 paths) that accept and never answer.
    let mut hung = Vec::new();
    for _ in 0..10 {
        hung.push(HttpServer::start(always(Reply::Hang)).await);
    }
    let mut cfg = String::from(
        r#"
[monitors.ingress]
interval = "1s"
timeout = "2s"
tolerated_failures = 1
rise = 1

[profiles."app.gslb.example"]
monitor = "ingress"
"#,
    );
    for i in 0..100 {
        let port = hung[i / 10].addr.port();
        cfg.push_str(&format!(
            "\n[[profiles.\"app.gslb.example\".endpoints]]\nname = \"e{i}\"\naddress = \"10.0.{}.{}\"\nprobe_address = \"127.0.0.1\"\nmonitor = {{ port = {port}, path = \"/hang/{i}\" }}\n",
            i / 250,
            i % 250 + 1,
        ));
    }
    let sp = Signpost::start(&Setup::gslb(&cfg).json_log());
    let hits = |hung: &[HttpServer]| hung.iter().map(HttpServer::hits).sum::<usize>();
    // Every target has a probe hanging on it before we measure.
    let all_hung = wait_for(Duration::from_secs(5), async || hits(&hung) >= 100).await;
    assert!(
        all_hung.is_some(),
        "only {} probes reached the hung servers",
        hits(&hung)
    );
    let before = hits(&hung);

    // 200 queries paced over about 3 s, so probes time out and restart meanwhile.
    let mut worst = Duration::ZERO;
    let mut total = Duration::ZERO;
    let began = Instant::now();
    for i in 0..200 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let start = Instant::now();
        let got = query_a(sp.addr, NAME, Duration::from_secs(1)).await;
        let took = start.elapsed();
        assert!(matches!(&got, Ok(a) if a.len() == 1), "query {i}: {got:?}");
        assert!(took < Duration::from_millis(50), "query {i} took {took:?}");
        worst = worst.max(took);
        total += took;
    }
    // The probes kept hanging (and being retried) while DNS answered.
    assert!(hits(&hung) > before, "no new probes during the measurement");
    eprintln!(
        "200 queries over {:?} with 100 hung targets: mean {:?}, worst {worst:?}; {} probes hung meanwhile",
        began.elapsed(),
        total / 200,
        hits(&hung) - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_down_decides_when_every_endpoint_is_degraded() {
    let dead = closed_port().await.port();
    let mut cfg = format!(
        "[monitors.dead]\nport = {dead}\ninterval = \"200ms\"\ntimeout = \"1s\"\ntolerated_failures = 0\nrise = 1\n"
    );
    for mode in ["serve_all", "nodata", "servfail"] {
        cfg.push_str(&format!(
            "\n[profiles.\"{mode}.gslb.example\"]\nmonitor = \"dead\"\nall_down = \"{mode}\"\n"
        ));
        for (i, last) in [21, 22].iter().enumerate() {
            cfg.push_str(&format!(
                "[[profiles.\"{mode}.gslb.example\".endpoints]]\nname = \"e{i}\"\naddress = \"127.0.0.{last}\"\nprobe_address = \"127.0.0.1\"\n"
            ));
        }
    }
    let sp = Signpost::start(&Setup::gslb(&cfg).json_log());
    // All six endpoints share the one dead target.
    sp.wait_for_log("→ Degraded", 6, Duration::from_secs(5))
        .await;

    // serve_all: answered as if every enabled endpoint were Online.
    assert_eq!(
        answers(sp.addr, "serve_all.gslb.example.", 30).await,
        [addr(21), addr(22)]
    );
    let ask = async |name| {
        ask_async(sp.addr, name, RecordType::A, Duration::from_secs(1))
            .await
            .unwrap()
    };
    let r = ask("nodata.gslb.example.").await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty(), "{r:?}");
    assert!(!r.authorities.is_empty(), "NODATA carries the SOA");
    let r = ask("servfail.gslb.example.").await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
}
