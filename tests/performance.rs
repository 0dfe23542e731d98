//! Issue 4, acceptance 3, with the real binary and real probes: of two local ingresses,
//! one made 50 ms slower, performance routing answers with the faster; when the faster
//! fails, with the slower.

mod support;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::{Signpost, answers, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const NAME: &str = "app.gslb.example.";

/// An HTTP health endpoint on 127.0.0.1 that answers after `delay`: 200 while `healthy`,
/// else 503.
struct Ingress {
    port: u16,
    healthy: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Ingress {
    async fn start(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let healthy = Arc::new(AtomicBool::new(true));
        let h = healthy.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let h = h.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let mut got = Vec::new();
                    // Read the request head (bounded), then answer.
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") && got.len() < 16384 {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    tokio::time::sleep(delay).await;
                    let status = if h.load(Ordering::Relaxed) {
                        "200 OK"
                    } else {
                        "503 Service Unavailable"
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        });
        Self {
            port,
            healthy,
            task,
        }
    }
}

impl Drop for Ingress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config(fast: u16, slow: u16) -> String {
    format!(
        r#"
[monitors.ingress]
protocol = "http"
path = "/healthz"
interval = "200ms"
timeout = "1s"
tolerated_failures = 1
rise = 1

[profiles."app.gslb.example"]
method = "performance"
ttl = 5
monitor = "ingress"

[[profiles."app.gslb.example".endpoints]]
name = "fast"
address = "127.0.0.21"
probe_address = "127.0.0.1"
monitor = {{ port = {fast} }}

[[profiles."app.gslb.example".endpoints]]
name = "slow"
address = "127.0.0.22"
probe_address = "127.0.0.1"
monitor = {{ port = {slow} }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_go_to_the_faster_ingress_and_fail_over_to_the_slower() {
    let fast_ip = Ipv4Addr::new(127, 0, 0, 21);
    let slow_ip = Ipv4Addr::new(127, 0, 0, 22);
    let fast = Ingress::start(Duration::ZERO).await;
    let slow = Ingress::start(Duration::from_millis(50)).await;
    let sp = Signpost::start(&config(fast.port, slow.port));

    // Once both are probed, only the faster is within the tolerance band (5 ms).
    let settled = wait_for(Duration::from_secs(10), async || {
        sp.log_lines("→ Online").len() >= 2 && answers(sp.dns, NAME, 20).await == [fast_ip]
    })
    .await;
    assert!(
        settled.is_some(),
        "answers did not settle on the faster ingress; logs: {:#?}",
        sp.logs.lock().unwrap()
    );
    // And they stay there, probe after probe.
    for _ in 0..3 {
        assert_eq!(answers(sp.dns, NAME, 40).await, [fast_ip]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    fast.healthy.store(false, Ordering::Relaxed);
    let over = wait_for(Duration::from_secs(6), async || {
        answers(sp.dns, NAME, 20).await == [slow_ip]
    })
    .await;
    let over = over.expect("answers did not fail over to the slower ingress within 6 s");
    assert!(over <= Duration::from_secs(3), "failover took {over:?}");
    assert_eq!(answers(sp.dns, NAME, 40).await, [slow_ip]);

    // The faster comes back: answers return to it.
    fast.healthy.store(true, Ordering::Relaxed);
    let back = wait_for(Duration::from_secs(6), async || {
        answers(sp.dns, NAME, 20).await == [fast_ip]
    })
    .await;
    assert!(
        back.is_some(),
        "answers did not return to the faster ingress"
    );
    eprintln!("failover after {over:?}, back after {back:?}");
}
