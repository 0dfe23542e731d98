//! Cluster gossip on loopback: three nodes converge on drain records within 2 s, a node
//! restarted with an empty state gets them back, and a node with another key is never
//! listed and never changes anyone's state. Every wait is bounded.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use signpost::cluster::{
    Cluster, ClusterKey, ClusterOptions, DrainSet, DrainTarget, HealthMode, HealthStatus,
    HealthView, NodeMeta, Reject, TargetId,
};

fn free_addr() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn node(name: &str, listen: SocketAddr, peers: &[SocketAddr], key: &ClusterKey) -> Cluster {
    let mut o = ClusterOptions::new(name, listen, key.clone());
    o.peers = peers.iter().map(|a| a.to_string()).collect();
    o.meta = NodeMeta {
        site: format!("site-{name}"),
        version: "test".into(),
        config_fingerprint: "fp1".into(),
        config_generation: 1,
    };
    Cluster::start(o).await.unwrap()
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns the time it took.
async fn within(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    loop {
        if cond() {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_drains_a_restarted_node_gets_them_back_and_a_stranger_never_joins() {
    tokio::time::timeout(Duration::from_secs(60), scenario())
        .await
        .expect("the scenario ends within 60 s");
}

async fn scenario() {
    let key = ClusterKey::from_bytes([7; 32]);
    let (aa, ba, ca) = (free_addr(), free_addr(), free_addr());
    let a = node("a", aa, &[ba, ca], &key).await;
    let b = node("b", ba, &[aa], &key).await;
    let c = node("c", ca, &[aa], &key).await;
    assert_eq!(a.cluster_id(), b.cluster_id());

    within(
        Duration::from_secs(5),
        "every node lists the three, live",
        || {
            [&a, &b, &c]
                .iter()
                .all(|n| n.nodes().iter().filter(|i| i.live).count() == 3)
        },
    )
    .await;
    let listed = a.nodes();
    let bi = listed.iter().find(|i| i.name == "b").unwrap();
    assert_eq!((bi.site.as_str(), bi.gossip_addr), ("site-b", ba));
    assert_eq!(
        (bi.config_fingerprint.as_str(), bi.config_generation),
        ("fp1", 1)
    );
    assert!(bi.last_heard_ms.is_some());

    // A drain at a reaches b and c within 2 s, with its ramp start and origin.
    let mut changes = c.subscribe();
    changes.borrow_and_update();
    let made = a.drain(
        DrainTarget::site("hub-a"),
        "maintenance",
        60_000,
        "ops@a",
        now_ms(),
    );
    let took = within(Duration::from_secs(2), "the drain reaches b and c", || {
        b.active_drains().sites.contains_key("hub-a")
            && c.active_drains().sites.contains_key("hub-a")
    })
    .await;
    eprintln!("drain propagation: {took:?}");
    assert!(changes.has_changed().unwrap(), "c was told of the change");
    let seen = &c.active_drains().sites["hub-a"];
    assert_eq!((seen.since_ms, seen.ramp_ms), (made.hlc.wall_ms, 60_000));
    assert_eq!(
        (seen.origin.as_str(), seen.operator.as_str()),
        ("a", "ops@a")
    );
    let adopted = c.take_adopted_drains();
    assert_eq!(adopted, vec![made.clone()]);
    assert!(c.take_adopted_drains().is_empty());

    // An undrain at c wins everywhere within 2 s.
    c.undrain(DrainTarget::site("hub-a"), "ops@c", now_ms());
    within(
        Duration::from_secs(2),
        "the undrain reaches a and b",
        || a.active_drains().sites.is_empty() && b.active_drains().sites.is_empty(),
    )
    .await;

    // b drains an endpoint; everyone has it.
    b.drain(
        DrainTarget::endpoint("app.gslb.example", "seattle"),
        "patch",
        0,
        "ops@b",
        now_ms(),
    );
    within(
        Duration::from_secs(2),
        "the endpoint drain reaches a and c",
        || {
            [&a, &c].iter().all(|n| {
                n.active_drains()
                    .endpoints
                    .contains_key("app.gslb.example/seattle")
            })
        },
    )
    .await;
    let all = a.drains();
    assert_eq!(all.len(), 2);

    // Health views travel and combine.
    let id = TargetId::of("https://192.0.2.10:443/healthz");
    let view = |status| HealthView {
        status,
        rtt_us: Some(1500),
        since_ms: 1,
    };
    a.set_health([(id, view(HealthStatus::Degraded))]);
    b.set_health([(id, view(HealthStatus::Degraded))]);
    c.set_health([(id, view(HealthStatus::Online))]);
    within(Duration::from_secs(2), "c sees a's and b's views", || {
        c.health_board().views(&id).len() == 2
    })
    .await;
    let (status, votes) = c
        .health_board()
        .combine(HealthMode::Majority, &id, HealthStatus::Online);
    assert_eq!(status, HealthStatus::Degraded);
    assert_eq!(
        votes.describe(HealthStatus::Degraded),
        "2 of 3 see Degraded"
    );
    a.remove_health([id]);
    within(Duration::from_secs(2), "a's view is withdrawn", || {
        c.health_board().views(&id).len() == 1
    })
    .await;

    // b restarts with an empty state (same name and address) and gets both records back.
    b.shutdown().await;
    let b = node("b", ba, &[aa], &key).await;
    within(
        Duration::from_secs(3),
        "the restarted b gets the records back",
        || b.drains() == all,
    )
    .await;
    assert!(
        b.active_drains()
            .endpoints
            .contains_key("app.gslb.example/seattle")
    );
    assert!(b.active_drains().sites.is_empty());
    // Its clock moved past what it learned: a new record of its own wins.
    let r = b.drain(DrainTarget::site("hub-c"), "x", 0, "", 0);
    assert!(all.records().all(|old| r.hlc > old.hlc), "{r:?}");
    within(Duration::from_secs(2), "b's new drain reaches a", || {
        a.active_drains().sites.contains_key("hub-c")
    })
    .await;
    let expect = a.drains();

    // A stranger with another key, pointed at a: never listed, its drain never lands.
    let da = free_addr();
    let d = node("d", da, &[aa], &ClusterKey::from_bytes([9; 32])).await;
    assert_ne!(d.cluster_id(), a.cluster_id());
    d.drain(DrainTarget::site("hub-b"), "hostile", 0, "", now_ms());
    within(
        Duration::from_secs(5),
        "a drops d's datagrams as forged",
        || a.rejected().get(Reject::Forged) > 3,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in [&a, &b, &c] {
        assert!(n.nodes().iter().all(|i| i.name != "d"), "{:?}", n.nodes());
        assert_eq!(n.drains(), expect);
        assert!(!n.active_drains().sites.contains_key("hub-b"));
    }
    assert_eq!(d.nodes().len(), 1, "d hears nobody: {:?}", d.nodes());
    assert_eq!(d.drains().len(), 1);
    d.shutdown().await;

    // A node killed is seen dead within a few seconds, and listed, not live.
    c.shutdown().await;
    within(Duration::from_secs(5), "a sees c dead", || {
        a.nodes().iter().any(|i| i.name == "c" && !i.live)
    })
    .await;
    let _ = DrainSet::new();
    a.shutdown().await;
    b.shutdown().await;
}

/// 10,000 probe targets: a peer gets every view (catching up takes messages larger than
/// one sealed datagram, sent in parts), then a 1 % change arrives within a few rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_targets_reach_a_peer() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let key = ClusterKey::from_bytes([5; 32]);
        let (aa, ba) = (free_addr(), free_addr());
        let a = node("a", aa, &[ba], &key).await;
        let b = node("b", ba, &[aa], &key).await;
        let ids: Vec<TargetId> = (0..10_000)
            .map(|i| TargetId::of(&format!("https://10.{}.{}.1:443/healthz", i / 256, i % 256)))
            .collect();
        let view = |status, i: usize| HealthView {
            status,
            rtt_us: Some(1_000 + i as u64),
            since_ms: 1_764_400_000_000,
        };
        a.set_health(
            ids.iter()
                .enumerate()
                .map(|(i, id)| (*id, view(HealthStatus::Online, i))),
        );
        let took = within(Duration::from_secs(30), "b has a's 10,000 views", || {
            let board = b.health_board();
            board.peers().count() == 1 && ids.iter().all(|id| !board.views(id).is_empty())
        })
        .await;
        eprintln!("10,000 views reached the peer in {took:?}");
        a.set_health(
            ids.iter()
                .enumerate()
                .step_by(100)
                .map(|(i, id)| (*id, view(HealthStatus::Degraded, i))),
        );
        let took = within(Duration::from_secs(3), "b sees the 1 % change", || {
            let board = b.health_board();
            ids.iter()
                .step_by(100)
                .all(|id| board.views(id)[0].1.status == HealthStatus::Degraded)
        })
        .await;
        eprintln!("a 1 % change reached the peer in {took:?}");
        assert_eq!(a.rejected().total() + b.rejected().total(), 0);
        assert_eq!(a.rejected().oversize_sends(), 0);
        a.shutdown().await;
        b.shutdown().await;
    })
    .await
    .expect("within 60 s");
}
