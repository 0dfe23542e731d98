//! `signpost_dns_queries_total` counts every UDP query exactly once, with its labels, when
//! the receive loop counts a whole batch at a time: a burst that mixes query types and
//! answers (so label runs change inside a batch) is counted to the query, and the family
//! is written in Prometheus text form.

use std::net::UdpSocket;
use std::time::Duration;

#[path = "../bench/fixture.rs"]
mod fixture;

/// The value of `signpost_dns_queries_total` with these labels in a Prometheus text page.
fn count(page: &str, qtype: &str, rcode: &str) -> u64 {
    let labels = format!("protocol=\"udp\",qtype=\"{qtype}\",rcode=\"{rcode}\"");
    page.lines()
        .filter(|l| l.starts_with("signpost_dns_queries_total{"))
        .filter(|l| {
            let inside = &l[l.find('{').unwrap() + 1..l.find('}').unwrap()];
            let mut got: Vec<&str> = inside.split(',').collect();
            got.sort_unstable();
            let mut want: Vec<&str> = labels.split(',').collect();
            want.sort_unstable();
            got == want
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn a_mixed_burst_is_counted_to_the_query() {
    let srv = fixture::UdpServer::start();
    let server = srv.addr;
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let a = fixture::query("static.bench.example", 1, false, None);
    let aaaa = fixture::query("static.bench.example", 28, false, None);
    let nx = fixture::query("nothing.bench.example", 1, false, None);
    // 60 A NOERROR, 25 AAAA NOERROR (NODATA), 15 A NXDOMAIN, interleaved.
    let mut sent = 0;
    for i in 0..100u16 {
        let q = match i % 20 {
            0..=11 => &a,
            12..=16 => &aaaa,
            _ => &nx,
        };
        let mut q = q.clone();
        q[..2].copy_from_slice(&i.to_be_bytes());
        client.send_to(&q, server).unwrap();
        sent += 1;
    }
    let mut buf = [0u8; 2048];
    for _ in 0..sent {
        client.recv(&mut buf).expect("an answer for every query");
    }
    srv.stop();

    let mut page = String::new();
    signpost::metrics::render_queries(&mut page);
    assert!(
        page.contains("# TYPE signpost_dns_queries_total counter\n"),
        "{page}"
    );
    assert_eq!(count(&page, "A", "NOERROR"), 60, "{page}");
    assert_eq!(count(&page, "AAAA", "NOERROR"), 25, "{page}");
    assert_eq!(count(&page, "A", "NXDOMAIN"), 15, "{page}");
}
