//! Property tests of the merges: any order and duplication of the inputs gives the same
//! result on every node.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;

fn target() -> impl Strategy<Value = DrainTarget> {
    prop_oneof![
        prop::sample::select(vec!["hub-a", "hub-b", "hub-c"]).prop_map(DrainTarget::site),
        (
            prop::sample::select(vec!["app.gslb.example", "App.Gslb.Example."]),
            prop::sample::select(vec!["e1", "e2"])
        )
            .prop_map(|(p, e)| DrainTarget::endpoint(p, e)),
    ]
}

fn record() -> impl Strategy<Value = DrainRecord> {
    (
        target(),
        0u64..5,
        0u32..3,
        prop::sample::select(vec!["n1", "n2", "n3"]),
        any::<bool>(),
        0u64..3,
    )
        .prop_map(|(t, ms, n, origin, drain, ramp)| {
            let hlc = Hlc::new(1_000 + ms, n);
            let action = if drain {
                DrainAction::drain(format!("r{ms}"), 900 + ms, ramp * 1000)
            } else {
                DrainAction::Undrain
            };
            DrainRecord::new(t, action, origin, "op", hlc)
        })
}

/// The reference: per target, the greatest record.
fn reference(records: &[DrainRecord]) -> BTreeMap<DrainTarget, DrainRecord> {
    let mut m: BTreeMap<DrainTarget, DrainRecord> = BTreeMap::new();
    for r in records {
        let e = m.entry(r.target.clone()).or_insert_with(|| r.clone());
        if r > e {
            *e = r.clone();
        }
    }
    m
}

proptest! {
    /// Nodes receive the records in different orders, with duplicates, and then exchange
    /// sets in a random gossip order: they all end with the same set, the reference's.
    #[test]
    fn drain_sets_converge_whatever_the_order(
        records in prop::collection::vec(record(), 1..30),
        deliveries in prop::collection::vec((0usize..4, any::<prop::sample::Index>()), 0..80),
        gossip in prop::collection::vec((0usize..4, 0usize..4), 0..20),
    ) {
        let mut nodes = vec![DrainSet::new(); 4];
        // Every record reaches some node at least once (its origin), then random copies.
        for (i, r) in records.iter().enumerate() {
            nodes[i % 4].insert(r.clone());
        }
        for (n, idx) in &deliveries {
            nodes[*n].insert(idx.get(&records).clone());
        }
        for (a, b) in &gossip {
            let from = nodes[*a].clone();
            nodes[*b].merge(&from);
        }
        // Anti-entropy to the end: everyone merges everyone, in a rotating order.
        for round in 0..2 {
            for i in 0..4 {
                let j = (i + round + 1) % 4;
                let from = nodes[j].clone();
                nodes[i].merge(&from);
            }
        }
        let want = reference(&records);
        for n in &nodes {
            prop_assert_eq!(n.len(), want.len());
            for r in n.records() {
                prop_assert_eq!(Some(r), want.get(&r.target));
            }
            prop_assert_eq!(n.active(), nodes[0].active());
        }
    }

    /// merge is commutative, associative and idempotent.
    #[test]
    fn merge_is_a_semilattice(
        a in prop::collection::vec(record(), 0..12),
        b in prop::collection::vec(record(), 0..12),
        c in prop::collection::vec(record(), 0..12),
    ) {
        let (a, b, c): (DrainSet, DrainSet, DrainSet) =
            (a.into_iter().collect(), b.into_iter().collect(), c.into_iter().collect());
        let join = |x: &DrainSet, y: &DrainSet| { let mut z = x.clone(); z.merge(y); z };
        prop_assert_eq!(join(&a, &b), join(&b, &a));
        prop_assert_eq!(join(&join(&a, &b), &c), join(&a, &join(&b, &c)));
        prop_assert_eq!(join(&a, &a), a.clone());
        let mut again = join(&a, &b);
        prop_assert!(!again.merge(&b));
    }

    /// The health board and the majority it gives do not depend on the order in which
    /// the nodes' views are listed, nor on duplicates, nor on an older boot of a node
    /// that restarted, listed before or after its newest.
    #[test]
    fn health_board_is_order_and_duplicate_free(
        views in prop::collection::vec(
            (0usize..4, 0u64..3, prop::collection::vec((0usize..5, 0u8..3), 0..5)),
            1..12,
        ),
        perm_seed in any::<u64>(),
        dups in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        own in prop::sample::select(vec![HealthStatus::Checking, HealthStatus::Online, HealthStatus::Degraded]),
    ) {
        let ids: Vec<TargetId> = (0..5).map(|i| TargetId::of(&format!("tcp://192.0.2.{i}:443"))).collect();
        let status = |c: u8| match c { 0 => HealthStatus::Checking, 1 => HealthStatus::Online, _ => HealthStatus::Degraded };
        // One set of views per (node, boot): later entries for the same pair are ignored so
        // that the input is a function of (node, boot), as gossip makes it.
        let mut by_node: BTreeMap<(usize, u64), Views> = BTreeMap::new();
        for (node, boot, vs) in &views {
            by_node.entry((*node, *boot)).or_insert_with(|| Arc::new(vs.iter().map(|(t, c)| {
                (ids[*t], HealthView { status: status(*c), rtt_us: Some(u64::from(*c)), since_ms: 1 })
            }).collect()));
        }
        let list: Vec<(String, u64, Views)> = by_node
            .iter()
            .map(|((n, b), v)| (format!("n{n}"), *b, v.clone()))
            .collect();
        let mut shuffled = list.clone();
        for d in &dups {
            shuffled.push(d.get(&list).clone());
        }
        // A deterministic shuffle from the seed.
        let mut x = perm_seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let a = HealthBoard::from_nodes(list);
        let b = HealthBoard::from_nodes(shuffled);
        prop_assert_eq!(a.peers().collect::<Vec<_>>(), b.peers().collect::<Vec<_>>());
        for id in &ids {
            prop_assert_eq!(a.views(id), b.views(id));
            for mode in [HealthMode::Majority, HealthMode::Local] {
                prop_assert_eq!(a.combine(mode, id, own), b.combine(mode, id, own));
            }
        }
    }
}
