//! Property tests with a seeded random source: random configs, statuses and clients,
//! checked against a brute-force statement of each method's rule.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::testutil::{load, pid, set_rtt};
use super::{Client, Decision, Kind, decide, decide_into};
use crate::base::Rtype;
use crate::snapshot::{Snapshot, Status};

/// A random status: mostly Online, often down.
fn random_status(rng: &mut SmallRng) -> Status {
    match rng.random_range(0..20) {
        0..=7 => Status::Online,
        8..=12 => Status::Degraded,
        13..=16 => Status::Disabled,
        17..=18 => Status::CheckingEndpoint,
        _ => Status::AlwaysServe,
    }
}

fn randomize(snap: &mut Snapshot, p: u32, rng: &mut SmallRng) {
    for st in &mut snap.endpoints[p as usize] {
        st.status = random_status(rng);
    }
}

fn eligible(snap: &Snapshot, p: u32, e: usize) -> bool {
    let st = snap.endpoints[p as usize][e];
    st.status.eligible() && st.weight > 0
}

fn profile(method: &str, keys: &str, endpoints: &[String]) -> String {
    let mut s = format!("[profiles.\"t.gslb.example\"]\nmethod = \"{method}\"\n{keys}\n");
    for (i, e) in endpoints.iter().enumerate() {
        s += &format!(
            "[[profiles.\"t.gslb.example\".endpoints]]\nname = \"e{i}\"\naddress = \"192.0.2.{}\"\n{e}\n",
            i + 1
        );
    }
    s
}

#[test]
fn weighted_shares_are_within_two_percent() {
    let mut rng = SmallRng::seed_from_u64(42);
    for weights in [
        vec![1, 2, 5, 12, 80],
        (0..8).map(|_| rng.random_range(1..=1000)).collect(),
    ] {
        let eps: Vec<String> = weights.iter().map(|w| format!("weight = {w}")).collect();
        let snap = load(&profile("weighted", "", &eps));
        let p = pid(&snap, "t.gslb.example");
        let c = Client::new(IpAddr::from([10, 0, 0, 1]));
        let mut counts = vec![0u32; weights.len()];
        const N: u32 = 100_000;
        for _ in 0..N {
            let d = decide(&snap, p, Rtype::A, &c, &mut rng);
            counts[d.picks()[0].endpoint as usize] += 1;
        }
        let total: u32 = weights.iter().sum();
        for (i, w) in weights.iter().enumerate() {
            let want = f64::from(*w) / f64::from(total);
            let got = f64::from(counts[i]) / f64::from(N);
            assert!(
                (got - want).abs() <= 0.02,
                "weights {weights:?}: e{i} got {got:.4}, want {want:.4}"
            );
        }
    }
}

#[test]
fn priority_never_answers_a_lower_tier_while_a_higher_one_is_eligible() {
    let mut rng = SmallRng::seed_from_u64(43);
    for _ in 0..10 {
        let eps: Vec<String> = (0..12)
            .map(|_| {
                format!(
                    "priority = {}\nweight = {}",
                    rng.random_range(1..=4),
                    rng.random_range(1..=10)
                )
            })
            .collect();
        let mut snap = load(&profile("priority", "", &eps));
        let p = pid(&snap, "t.gslb.example");
        let prio: Vec<u32> = snap.model.profiles[p as usize]
            .endpoints
            .iter()
            .map(|e| e.priority)
            .collect();
        for _ in 0..300 {
            randomize(&mut snap, p, &mut rng);
            let d = decide(
                &snap,
                p,
                Rtype::A,
                &Client::new(IpAddr::from([10, 0, 0, 1])),
                &mut rng,
            );
            let best = (0..12)
                .filter(|&e| eligible(&snap, p, e))
                .map(|e| prio[e])
                .min();
            if let Some(best) = best {
                let e = d.picks()[0].endpoint as usize;
                assert!(eligible(&snap, p, e), "picked a down endpoint: {d:?}");
                assert_eq!(prio[e], best, "statuses {:?}", snap.endpoints[p as usize]);
            }
        }
    }
}

/// Whether every pick is eligible, and an answer came without `all_down` when `any`
/// endpoint that could serve the client is eligible.
fn check_eligible(snap: &Snapshot, p: u32, d: &Decision, any: bool, what: &str) {
    if any {
        assert_eq!(d.kind, Kind::Answer, "{what}: {d:?}");
        assert!(
            !d.all_down,
            "{what}: all_down while something is eligible: {d:?}"
        );
    }
    if !d.all_down {
        for k in d.picks() {
            assert!(
                eligible(snap, p, k.endpoint as usize),
                "{what}: picked a down endpoint {d:?}"
            );
        }
    }
}

#[test]
fn no_down_endpoint_is_answered_while_an_eligible_one_exists() {
    let mut rng = SmallRng::seed_from_u64(44);
    for method in ["weighted", "priority", "performance", "multivalue"] {
        let eps: Vec<String> = (0..8)
            .map(|i| format!("priority = {}", 1 + i % 3))
            .collect();
        let mut snap = load(&profile(method, "max_answers = 3", &eps));
        let p = pid(&snap, "t.gslb.example");
        for _ in 0..500 {
            randomize(&mut snap, p, &mut rng);
            let rtts: Vec<Option<u64>> = (0..8)
                .map(|_| rng.random_bool(0.8).then(|| rng.random_range(1..100)))
                .collect();
            set_rtt(&mut snap, p, &rtts);
            let d = decide(
                &snap,
                p,
                Rtype::A,
                &Client::new(IpAddr::from([10, 0, 0, 1])),
                &mut rng,
            );
            let any = (0..8).any(|e| eligible(&snap, p, e));
            check_eligible(&snap, p, &d, any, method);
        }
    }
}

#[test]
fn a_reused_decision_is_the_same_as_a_fresh_one() {
    // The query path writes every decision into one `Decision` per thread; nothing of
    // the previous query's (its picks, scope, rule, `all_down`) may leak into the next.
    let mut rng = SmallRng::seed_from_u64(45);
    let mut reused = Decision::new(Kind::Answer, super::Rule::AllDisabled);
    for round in 0..3 {
        for method in ["multivalue", "weighted", "priority", "performance"] {
            let all_down = ["serve_all", "nodata", "servfail"][round];
            let eps: Vec<String> = (0..6)
                .map(|i| format!("priority = {}", 1 + i % 2))
                .collect();
            let keys = format!("max_answers = 4\nall_down = \"{all_down}\"");
            let mut snap = load(&profile(method, &keys, &eps));
            let p = pid(&snap, "t.gslb.example");
            for i in 0..300 {
                randomize(&mut snap, p, &mut rng);
                let qtype = [Rtype::A, Rtype::AAAA, Rtype::MX, Rtype::ANY][i % 4];
                let client = Client::new(IpAddr::from([10, 0, 0, 1]));
                let (mut r1, mut r2) = (rng.clone(), rng.clone());
                let fresh = decide(&snap, p, qtype, &client, &mut r1);
                decide_into(&snap, p, qtype, &client, &mut r2, &mut reused);
                assert_eq!(
                    reused, fresh,
                    "{method}, all_down {all_down}, qtype {qtype}"
                );
                rng = r1;
            }
        }
    }
}

/// Nested subnets, so that clients are often in several regions / subnets at once.
const POOL: &[&str] = &[
    "10.0.0.0/8",
    "10.20.0.0/16",
    "10.20.1.0/24",
    "10.20.1.128/25",
    "10.20.1.192/26",
    "10.20.2.0/24",
    "10.30.0.0/16",
    "10.30.5.0/24",
];

fn random_client(rng: &mut SmallRng) -> Ipv4Addr {
    let b = [20, 30, 77][rng.random_range(0..3)];
    let c = [1, 2, 5, 9][rng.random_range(0..4)];
    let first = if rng.random_bool(0.9) { 10 } else { 11 };
    Ipv4Addr::new(first, b, c, rng.random())
}

#[test]
fn geographic_picks_the_most_specific_region_with_an_eligible_endpoint() {
    let mut rng = SmallRng::seed_from_u64(45);
    let mut regions = String::from("[geo.regions]\n");
    for (i, net) in POOL.iter().enumerate() {
        regions += &format!("r{i} = [\"{net}\"]\n");
    }
    let nets: Vec<IpNet> = POOL.iter().map(|n| n.parse().unwrap()).collect();
    for _ in 0..12 {
        // Per endpoint, region indices (POOL.len() = WORLD).
        let keys: Vec<Vec<usize>> = (0..10)
            .map(|_| {
                (0..rng.random_range(1..=2))
                    .map(|_| rng.random_range(0..=POOL.len()))
                    .collect()
            })
            .collect();
        let eps: Vec<String> = keys
            .iter()
            .map(|k| {
                let names: Vec<String> = k
                    .iter()
                    .map(|&i| {
                        if i == POOL.len() {
                            "\"WORLD\"".into()
                        } else {
                            format!("\"r{i}\"")
                        }
                    })
                    .collect();
                format!("regions = [{}]", names.join(", "))
            })
            .collect();
        let mut snap = load(&format!("{regions}\n{}", profile("geographic", "", &eps)));
        let p = pid(&snap, "t.gslb.example");
        for _ in 0..300 {
            randomize(&mut snap, p, &mut rng);
            let addr = random_client(&mut rng);
            // Specificity of an endpoint for this client: 1 + the longest prefix of its
            // regions holding the client; 0 for WORLD; None if nothing holds it.
            let spec = |e: usize| {
                keys[e]
                    .iter()
                    .filter_map(|&i| match nets.get(i) {
                        None => Some(0),
                        Some(n) => n.contains(&IpAddr::V4(addr)).then(|| 1 + n.prefix_len()),
                    })
                    .max()
            };
            let best = (0..10)
                .filter(|&e| eligible(&snap, p, e))
                .filter_map(spec)
                .max();
            let d = decide(&snap, p, Rtype::A, &Client::new(addr.into()), &mut rng);
            check_eligible(&snap, p, &d, best.is_some(), "geographic");
            if let Some(best) = best {
                let e = d.picks()[0].endpoint as usize;
                assert_eq!(
                    spec(e),
                    Some(best),
                    "client {addr}, endpoint regions {keys:?}"
                );
            } else if (0..10).all(|e| spec(e).is_none()) {
                assert_eq!(d.kind, Kind::NoData, "unmatched client {addr}");
            }
        }
    }
}

#[test]
fn subnet_picks_the_longest_eligible_prefix() {
    let mut rng = SmallRng::seed_from_u64(46);
    for _ in 0..12 {
        let mut pool: Vec<IpNet> = POOL.iter().map(|n| n.parse().unwrap()).collect();
        pool.shuffle(&mut rng);
        // Each subnet goes to one endpoint at most; some endpoints get none (fallback).
        let mut subnets: Vec<Vec<IpNet>> = vec![Vec::new(); 6];
        for net in pool {
            if rng.random_bool(0.85) {
                subnets[rng.random_range(0..5)].push(net);
            }
        }
        let eps: Vec<String> = subnets
            .iter()
            .map(|s| {
                let list: Vec<String> = s.iter().map(|n| format!("\"{n}\"")).collect();
                format!("subnets = [{}]", list.join(", "))
            })
            .collect();
        let mut snap = load(&profile("subnet", "", &eps));
        let p = pid(&snap, "t.gslb.example");
        for _ in 0..300 {
            randomize(&mut snap, p, &mut rng);
            let addr = IpAddr::V4(random_client(&mut rng));
            let longest = |e: usize| {
                subnets[e]
                    .iter()
                    .filter(|n| n.contains(&addr))
                    .map(IpNet::prefix_len)
                    .max()
            };
            let best = (0..6)
                .filter(|&e| eligible(&snap, p, e))
                .filter_map(longest)
                .max();
            let fallback = (0..6).any(|e| eligible(&snap, p, e) && subnets[e].is_empty());
            let d = decide(&snap, p, Rtype::A, &Client::new(addr), &mut rng);
            check_eligible(&snap, p, &d, best.is_some() || fallback, "subnet");
            let picked = d.picks().first().map(|k| k.endpoint as usize);
            match (best, picked) {
                (Some(best), Some(e)) => {
                    assert_eq!(longest(e), Some(best), "client {addr}, subnets {subnets:?}")
                }
                (None, Some(e)) if !d.all_down => {
                    assert!(subnets[e].is_empty(), "client {addr}: fallback expected")
                }
                _ => {}
            }
        }
    }
}
