//! Response rate limiting over UDP (`dns.rate_limit`), as authoritative servers ship it
//! (BIND and Knot `rate-limit`, NSD `rrl`): at most `rate` answers a second to one client
//! network (an IPv4 /24, an IPv6 /56), with a burst of one second's worth, so that
//! signpost cannot be used to reflect and amplify traffic at a forged source. Over the
//! limit every second answer is sent empty with TC=1 — a real client behind that
//! network retries over TCP, which is not limited (a forger gets nothing bigger than its
//! query) — and the others are dropped.
//!
//! The limit is a token bucket in its GCRA form: each network has a theoretical arrival
//! time (TAT), which every answer pushes `1/rate` seconds further; an answer is allowed
//! while that stays within one second of now. Answers not sent cost nothing.
//!
//! The query path allocates nothing and takes no lock: networks are kept in a fixed
//! table of [`SLOTS`] buckets (two atomics each) indexed by a seeded hash of the network,
//! shared by every UDP loop (the kernel spreads one client's queries over the
//! SO_REUSEPORT sockets, so per-loop tables would multiply the limit). A check is a hash,
//! two loads and one compare-and-swap on the client's bucket. A network whose bucket
//! holds another one takes it over when the other is idle (its bucket full); while the
//! other is active the two share it, which may limit a colliding network early but never
//! lets a network's own limit be lifted by traffic from elsewhere.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Buckets in the table (a power of two): 16 bytes each, 1 MiB.
pub const SLOTS: usize = 1 << 16;

/// One second, in the units of the table (ns).
const SECOND: u64 = 1_000_000_000;

#[derive(Default)]
#[repr(align(16))]
struct Bucket {
    /// The network this bucket counts ([`network`]); 0 when never used.
    key: AtomicU64,
    /// Its theoretical arrival time, ns after the limiter's epoch.
    tat: AtomicU64,
}

/// The limiter of one server, shared by its UDP loops.
pub struct RateLimiter {
    /// What one answer costs, in ns: one second / rate.
    cost: u64,
    epoch: Instant,
    /// Hash seeds, random per process, so a client cannot choose networks that collide.
    seeds: (u64, u64),
    table: Box<[Bucket]>,
}

/// What to do with an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: answer.
    Answer,
    /// Over it.
    Limited,
}

/// The client network of `ip` as a non-zero key: a /24 or a /56, with its family.
pub fn network(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => 1 << 63 | u64::from(u32::from(a) >> 8),
        IpAddr::V6(a) => 1 << 62 | (u128::from(a) >> 72) as u64,
    }
}

impl RateLimiter {
    /// A limiter of `rate` answers a second per network; `None` for 0 (no limit).
    pub fn new(rate: u32) -> Option<Self> {
        if rate == 0 {
            return None;
        }
        Some(Self {
            cost: (SECOND / u64::from(rate)).max(1),
            epoch: Instant::now(),
            seeds: (rand::random(), rand::random::<u64>() | 1),
            table: (0..SLOTS).map(|_| Bucket::default()).collect(),
        })
    }

    /// The time to check answers at, in the limiter's units; read once per batch of
    /// queries.
    pub fn now(&self) -> u64 {
        // Never 0, so that a fresh bucket (TAT 0) is never "active".
        self.epoch.elapsed().as_nanos() as u64 + 1
    }

    fn bucket(&self, key: u64) -> &Bucket {
        let h = (key ^ self.seeds.0).wrapping_mul(self.seeds.1);
        &self.table[(h >> (64 - SLOTS.trailing_zeros())) as usize]
    }

    /// Whether an answer to `client` may go out at `now` ([`RateLimiter::now`]); an
    /// allowed answer is charged to its network.
    #[inline]
    pub fn check(&self, client: IpAddr, now: u64) -> Verdict {
        let key = network(client);
        let b = self.bucket(key);
        if b.key.load(Ordering::Relaxed) != key {
            // Another network's bucket (or none yet): take it over unless that one is
            // active, else share it.
            let tat = b.tat.load(Ordering::Relaxed);
            if tat <= now {
                b.key.store(key, Ordering::Relaxed);
                b.tat.store(now + self.cost, Ordering::Relaxed);
                return Verdict::Answer;
            }
        }
        let mut tat = b.tat.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now) + self.cost;
            if next - now > SECOND {
                return Verdict::Limited;
            }
            match b
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Verdict::Answer,
                Err(actual) => tat = actual,
            }
        }
    }
}

/// Per UDP loop: which limited answers slip (every second one) and which are dropped.
#[derive(Debug, Default)]
pub struct Slip {
    odd: bool,
}

impl Slip {
    /// Whether this limited answer slips (is sent empty with TC=1).
    pub fn slips(&mut self) -> bool {
        self.odd = !self.odd;
        !self.odd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_of_one_second_then_the_rate() {
        let rl = RateLimiter::new(50).unwrap();
        let t0 = 5 * SECOND;
        let c = ip("192.0.2.7");
        let allowed = (0..1000)
            .filter(|_| rl.check(c, t0) == Verdict::Answer)
            .count();
        assert_eq!(allowed, 50, "the burst");
        // 20 ms later, one more; not two.
        assert_eq!(rl.check(c, t0 + 20 * MS), Verdict::Answer);
        assert_eq!(rl.check(c, t0 + 20 * MS), Verdict::Limited);
        // Over 1 s of steady queries at 1 kHz: 50 answers.
        let steady = (1..=1000)
            .filter(|i| rl.check(c, t0 + 20 * MS + i * MS) == Verdict::Answer)
            .count();
        assert!((49..=51).contains(&steady), "{steady}");
        // A full second of silence refills the bucket.
        let later = t0 + 5 * SECOND;
        let allowed = (0..100)
            .filter(|_| rl.check(c, later) == Verdict::Answer)
            .count();
        assert_eq!(allowed, 50);
    }

    #[test]
    fn networks_are_slash_24_and_slash_56() {
        let rl = RateLimiter::new(10).unwrap();
        let now = SECOND;
        let v4: Vec<String> = (0..10).map(|i| format!("198.51.100.{i}")).collect();
        let v6: Vec<String> = (0..10)
            .map(|i| format!("2001:db8:0:ab{i:02x}::1"))
            .collect();
        // (network, ten addresses in one, another in it, one in the next network)
        for (net, ten, same, next) in [
            ("/24", v4, "198.51.100.200", "198.51.101.1"),
            ("/56", v6, "2001:db8:0:abff::1", "2001:db8:0:ac00::1"),
        ] {
            for a in &ten {
                assert_eq!(rl.check(ip(a), now), Verdict::Answer, "{a}");
            }
            assert_eq!(rl.check(ip(same), now), Verdict::Limited, "same {net}");
            assert_eq!(rl.check(ip(next), now), Verdict::Answer, "next {net}");
        }
        assert_ne!(network(ip("0.0.0.1")), network(ip("::1")));
    }

    #[test]
    fn traffic_from_elsewhere_does_not_lift_a_limit() {
        let rl = RateLimiter::new(5).unwrap();
        let now = SECOND;
        let victim = ip("203.0.113.9");
        for _ in 0..5 {
            assert_eq!(rl.check(victim, now), Verdict::Answer);
        }
        // Every /24 of 10/8 and 172.16/12 once: some land in the victim's bucket.
        for a in 0..=255u32 {
            for b in 0..=255u32 {
                let _ = rl.check(IpAddr::from([10, a as u8, b as u8, 1]), now);
            }
        }
        assert_eq!(rl.check(victim, now), Verdict::Limited);
        // A network that shares a busy bucket is limited with its occupant; once that one
        // is idle, the newcomer takes the bucket over.
        let key = network(victim);
        let same = (0..=u32::MAX >> 8)
            .map(|n| IpAddr::from((n << 8).to_be_bytes()))
            .find(|&a| network(a) != key && std::ptr::eq(rl.bucket(network(a)), rl.bucket(key)))
            .expect("a colliding /24");
        assert_eq!(rl.check(same, now), Verdict::Limited);
        assert_eq!(rl.check(same, now + 2 * SECOND), Verdict::Answer);
        assert_eq!(rl.bucket(key).key.load(Ordering::Relaxed), network(same));
    }

    #[test]
    fn every_second_limited_answer_slips() {
        let mut s = Slip::default();
        let slips: Vec<bool> = (0..6).map(|_| s.slips()).collect();
        assert_eq!(slips, [false, true, false, true, false, true]);
    }

    #[test]
    fn a_high_rate_still_limits() {
        let rl = RateLimiter::new(1_000_000).unwrap();
        let c = ip("192.0.2.1");
        let allowed = (0..1_100_000)
            .filter(|_| rl.check(c, SECOND) == Verdict::Answer)
            .count();
        assert_eq!(allowed, 1_000_000);
    }
}
