//! The query path allocates nothing per query in steady state (DESIGN.md, "Performance
//! principles"): a counting global allocator sees zero allocations while `respond()`
//! answers thousands of queries after a warm-up, on the profile path and for a static
//! name.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use arc_swap::ArcSwap;
use signpost::base::Rcode;
use signpost::dns::engine::{Outcome, Scratch, Transport, respond};
use signpost::snapshot::Snapshot;

#[path = "../bench/fixture.rs"]
mod fixture;

/// Counts allocations made by the current thread while counting is on; other test
/// threads (and the harness) are not counted.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the thread-locals may be gone while a thread exits.
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(|a| a.get())
}

const WARM_UP: usize = 100;
const QUERIES: usize = 10_000;

fn cases() -> Vec<(&'static str, Vec<u8>, Rcode, u16)> {
    // (what, packet, expected rcode, expected answer count)
    vec![
        (
            "weighted profile, A",
            fixture::query("app.bench.example", 1, false, None),
            Rcode::NOERROR,
            1,
        ),
        (
            "weighted profile, A, EDNS + ECS",
            fixture::query("app.bench.example", 1, true, Some(([10, 20, 1, 0], 24))),
            Rcode::NOERROR,
            1,
        ),
        (
            "geographic profile, A, EDNS + ECS",
            fixture::query("geo.bench.example", 1, true, Some(([10, 20, 1, 0], 24))),
            Rcode::NOERROR,
            1,
        ),
        (
            "weighted profile, AAAA (NODATA)",
            fixture::query("app.bench.example", 28, false, None),
            Rcode::NOERROR,
            0,
        ),
        (
            "static name, A",
            fixture::query("static.bench.example", 1, false, None),
            Rcode::NOERROR,
            1,
        ),
        (
            "NXDOMAIN",
            fixture::query("nope.bench.example", 1, false, None),
            Rcode::NXDOMAIN,
            0,
        ),
    ]
}

/// `respond` with its buffers, kept across queries as a receive loop keeps them.
struct Responder {
    scratch: Box<Scratch>,
    out: Vec<u8>,
}

impl Responder {
    fn new() -> Self {
        Self {
            scratch: Box::default(),
            out: Vec::with_capacity(4096),
        }
    }

    /// The answer to `packet` from the fixture's client over UDP, in `self.out`.
    fn answer(&mut self, snap: &Snapshot, packet: &[u8]) -> Outcome {
        respond(
            snap,
            packet,
            &mut self.scratch,
            fixture::SOURCE,
            Transport::Udp,
            &mut self.out,
        )
    }
}

#[test]
fn respond_allocates_nothing_per_query() {
    let snap = fixture::snapshot();
    let mut r = Responder::new();
    for (what, packet, want_rcode, want_answers) in cases() {
        for _ in 0..WARM_UP {
            let o = r.answer(&snap, &packet);
            assert!(o.respond, "{what}: no answer");
            assert_eq!(o.rcode, want_rcode, "{what}: rcode");
            assert_eq!(
                u16::from_be_bytes([r.out[6], r.out[7]]),
                want_answers,
                "{what}: ANCOUNT"
            );
        }
        let n = allocations(|| {
            for _ in 0..QUERIES {
                assert!(r.answer(&snap, &packet).respond);
            }
        });
        assert_eq!(n, 0, "{what}: {n} allocations in {QUERIES} queries");
    }
}

/// What the UDP receive loop does per datagram besides the syscalls: load the published
/// snapshot, answer, count the query.
#[test]
fn udp_loop_body_allocates_nothing_per_query() {
    // The real Prometheus recorder, as `serve` installs it; counters register on first use
    // (during the warm-up).
    let _handle = signpost::metrics::install();
    let shared = Arc::new(ArcSwap::from_pointee(fixture::snapshot()));
    let mut r = Responder::new();
    let mut one = |packet: &[u8]| {
        let snap = shared.load();
        let o = r.answer(&snap, packet);
        drop(snap);
        signpost::metrics::count_query(Transport::Udp, o.qtype, o.respond.then_some(o.rcode));
    };
    for (what, packet, _, _) in cases() {
        for _ in 0..WARM_UP {
            one(&packet);
        }
        let n = allocations(|| {
            for _ in 0..QUERIES {
                one(&packet);
            }
        });
        assert_eq!(n, 0, "{what}: {n} allocations in {QUERIES} queries");
    }
}

/// The zero above means something: the counter does see this thread's allocations.
#[test]
fn counter_sees_allocations() {
    let n = allocations(|| {
        std::hint::black_box(Vec::<u8>::with_capacity(16));
    });
    assert_eq!(n, 1);
}

/// The geographic case measures what it says: the ECS subnet picks the region's endpoint
/// and the answer echoes ECS with the region's prefix as its scope.
#[test]
fn geographic_case_follows_ecs() {
    let snap = fixture::snapshot();
    let mut r = Responder::new();
    let packet = fixture::query("geo.bench.example", 1, true, Some(([10, 20, 1, 0], 24)));
    let o = r.answer(&snap, &packet);
    let out = &r.out;
    assert_eq!(o.rcode, Rcode::NOERROR);
    assert!(
        out.windows(4).any(|w| w == [127, 0, 0, 21]),
        "the corp-emea endpoint answers"
    );
    // The answer ends with the ECS option: family 1, source 24, scope 16, 10.20.1.
    assert!(out.ends_with(&[0, 1, 24, 16, 10, 20, 1]), "{out:02x?}");
}

/// The rate limit's part of the UDP loop (`dns.rate_limit`): the check, for answers within
/// the limit and over it, and the empty TC=1 answer that slips.
#[test]
fn rate_limit_allocates_nothing_per_query() {
    use signpost::dns::engine::slip;
    use signpost::dns::ratelimit::{RateLimiter, Verdict};

    let snap = fixture::snapshot();
    let mut r = Responder::new();
    let rl = RateLimiter::new(1_000).unwrap();
    let packet = fixture::query("app.bench.example", 1, true, Some(([10, 20, 1, 0], 24)));
    for _ in 0..WARM_UP {
        assert!(r.answer(&snap, &packet).respond);
        assert!(slip(&packet, &mut r.scratch, &mut r.out).respond);
    }
    let (mut answered, mut slipped) = (0, 0);
    let n = allocations(|| {
        let now = rl.now();
        for _ in 0..QUERIES {
            match rl.check(fixture::SOURCE, now) {
                Verdict::Answer => {
                    assert!(r.answer(&snap, &packet).respond);
                    answered += 1;
                }
                Verdict::Limited => {
                    let o = slip(&packet, &mut r.scratch, &mut r.out);
                    assert!(o.respond && o.truncated);
                    slipped += 1;
                }
            }
        }
    });
    assert_eq!(n, 0, "{n} allocations in {QUERIES} queries");
    // Both paths ran: the burst of 1,000, then the limit.
    assert_eq!((answered, slipped), (1_000, QUERIES - 1_000));
    // The slipped answer: TC=1, the question, no records but the OPT.
    let out = &r.out;
    assert_eq!(out[2] & 0x02, 0x02, "TC");
    assert_eq!(&out[6..12], &[0, 0, 0, 0, 0, 1], "{out:02x?}");
}
