//! The full query path in process: wire bytes in → `respond` → wire bytes out, against a
//! snapshot loaded the way `signpost serve` loads it. No sockets, so these figures are the
//! floor under what `bench/compare.sh` measures over loopback.
//!
//! Run: `cargo bench --bench query_path`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use signpost::dns::engine::{Scratch, Transport, respond};

#[path = "fixture.rs"]
mod fixture;

fn query_path(c: &mut Criterion) {
    let snap = fixture::snapshot();
    let cases = [
        (
            "static_a",
            fixture::query("static.bench.example", 1, false, None),
        ),
        (
            "weighted_a",
            fixture::query("app.bench.example", 1, false, None),
        ),
        (
            "weighted_a_edns",
            fixture::query("app.bench.example", 1, true, None),
        ),
        (
            "weighted_a_ecs",
            fixture::query("app.bench.example", 1, true, Some(([10, 20, 1, 0], 24))),
        ),
        // The client's region comes from the ECS subnet (corp-emea, 10.20.0.0/16); the
        // answer echoes ECS with scope 16.
        (
            "geographic_a_ecs",
            fixture::query("geo.bench.example", 1, true, Some(([10, 20, 1, 0], 24))),
        ),
        (
            "nxdomain",
            fixture::query("nope.bench.example", 1, false, None),
        ),
    ];
    let mut g = c.benchmark_group("query_path");
    g.throughput(Throughput::Elements(1));
    let mut scratch = Box::<Scratch>::default();
    let mut out = Vec::with_capacity(4096);
    for (name, packet) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let o = respond(
                    &snap,
                    black_box(packet),
                    &mut scratch,
                    fixture::SOURCE,
                    Transport::Udp,
                    &mut out,
                );
                black_box((o, out.len()))
            })
        });
    }
    g.finish();

    // `dns.rate_limit` (never limiting, so every query is answered): the check alone, for
    // one client network and for a different /24 each time (a cold bucket), and the check
    // with the answer.
    let rl = signpost::dns::ratelimit::RateLimiter::new(1_000_000_000).expect("a limit");
    let mut g = c.benchmark_group("rate_limit");
    g.throughput(Throughput::Elements(1));
    let now = rl.now();
    g.bench_function("check", |b| {
        b.iter(|| black_box(rl.check(black_box(fixture::SOURCE), now)))
    });
    let mut n = 0u32;
    g.bench_function("check_many_networks", |b| {
        b.iter(|| {
            n = n.wrapping_add(1 << 8);
            let ip = std::net::IpAddr::from(n.to_be_bytes());
            black_box(rl.check(black_box(ip), now))
        })
    });
    let packet = &cases[1].1;
    g.bench_function("weighted_a_checked", |b| {
        b.iter(|| {
            let v = rl.check(black_box(fixture::SOURCE), now);
            let o = respond(
                &snap,
                black_box(packet),
                &mut scratch,
                fixture::SOURCE,
                Transport::Udp,
                &mut out,
            );
            black_box((v, o, out.len()))
        })
    });
    g.finish();
}

criterion_group!(benches, query_path);
criterion_main!(benches);
