//! The cluster: one signpost per site, one view (DESIGN.md, "Cluster").
//!
//! Membership and state travel by chitchat's scuttlebutt gossip (anti-entropy, versioned
//! key-values per node, a phi-accrual failure detector) over one UDP socket on which every
//! datagram is sealed ([`seal`], [`transport`]). Each node publishes:
//!
//! - `meta`: its site, version, config fingerprint and generation ([`NodeMeta`]);
//! - `drain/…`: every drain record it knows, its own and those it learned ([`drains`]), so
//!   a drain outlives the node that made it and comes back to a node restarted empty;
//! - `h/<id>`: its own view of each probe target ([`health`]).
//!
//! This module depends on nothing else in the crate. The single writer uses it so:
//!
//! ```text
//! start:   let c = Cluster::start(ClusterOptions { drains: DrainSet::load(state_dir)?.0, .. }).await?;
//! loop:    select on c.subscribe().changed() (and its other inputs), then
//!            for r in c.take_adopted_drains() { audit "remote drain" with r.origin }
//!            c.drains().save(state_dir); feed c.active_drains() into drain::Drains;
//!            let board = c.health_board(); for each target: board.combine(mode, &id, own)
//! operator: let r = c.drain(target, reason, ramp_ms, operator, now_ms); (or c.undrain(..))
//!            then save c.drains() and audit r as before
//! probes:  c.set_health([(TargetId::of(identity), view)]) on a status change,
//!          c.remove_health([id]) when a target leaves the config
//! reload:  c.set_meta(NodeMeta { config_fingerprint, config_generation, .. })
//! views:   c.nodes(), c.health_board().views(&id), c.rejected()
//! ```
//!
//! Reads are synchronous and cheap (a cache kept by a background task); writes return at
//! once and reach the gossip state within milliseconds.

pub mod drains;
pub mod health;
pub mod hlc;
pub mod seal;
pub mod transport;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chitchat::{
    ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig, Heartbeat, spawn_chitchat,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, watch};

pub use drains::{ActiveDrain, ActiveDrains, DrainAction, DrainRecord, DrainSet, DrainTarget};
pub use health::{HealthMode, HealthStatus, HealthView, IdMap, TargetId, Votes};
pub use hlc::{Clock, Hlc};
pub use seal::{ClusterKey, KeyError, Reject, RejectCounters};

/// Key of a node's [`NodeMeta`].
const META_KEY: &str = "meta";
/// Learned records kept for [`Cluster::take_adopted_drains`] at most (the oldest go).
const MAX_ADOPTED: usize = 4096;
/// How often the cache is refreshed when nothing wakes it (liveness, last heard).
const REFRESH_EVERY: Duration = Duration::from_millis(250);

/// What a node says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMeta {
    pub site: String,
    /// signpost's version.
    #[serde(rename = "ver", default)]
    pub version: String,
    /// A fingerprint of the config (and zones) in force; differing fingerprints are
    /// flagged in the views.
    #[serde(rename = "fp", default)]
    pub config_fingerprint: String,
    /// The config generation (reload count) in force.
    #[serde(rename = "gen", default)]
    pub config_generation: u64,
}

/// How to start a node. [`ClusterOptions::new`] sets the defaults.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// This node's name: 1 to 64 of `[A-Za-z0-9._-]`, unique in the cluster.
    pub node: String,
    /// Gossip socket; also the address the peers reach this node at (not 0.0.0.0).
    pub listen: SocketAddr,
    /// The other nodes, `ip:port` or `host:port` (resolved again every minute).
    pub peers: Vec<String>,
    pub key: ClusterKey,
    /// Gossip round period. Default 200 ms.
    pub gossip_interval: Duration,
    /// Failure-detector threshold: a node is dead once silent for about this many mean
    /// heartbeat intervals. Default 8 (about 1–2 s at a 200 ms gossip interval).
    pub phi_threshold: f64,
    /// A dead node is listed this long, then forgotten. Default 24 h.
    pub dead_node_grace: Duration,
    pub meta: NodeMeta,
    /// The merged drain set kept from the last run (`DrainSet::load(state.dir)`).
    pub drains: DrainSet,
}

impl ClusterOptions {
    pub fn new(node: impl Into<String>, listen: SocketAddr, key: ClusterKey) -> Self {
        Self {
            node: node.into(),
            listen,
            peers: Vec::new(),
            key,
            gossip_interval: Duration::from_millis(200),
            phi_threshold: 8.0,
            dead_node_grace: Duration::from_secs(24 * 3600),
            meta: NodeMeta::default(),
            drains: DrainSet::new(),
        }
    }
}

/// Whether `name` may name a node: 1 to 64 of `[A-Za-z0-9._-]`.
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= seal::MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cluster node name {0:?} must be 1 to 64 of A-Z a-z 0-9 . _ -")]
    NodeName(String),
    #[error(
        "cluster listen address {0} is a wildcard; use the address the peers reach this node at"
    )]
    Wildcard(SocketAddr),
    /// Binding the socket failed (address in use, not local, …).
    #[error("{0}")]
    Gossip(String),
}

/// One node as this node knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    pub name: String,
    pub is_self: bool,
    pub site: String,
    pub gossip_addr: SocketAddr,
    pub live: bool,
    /// Wall-clock milliseconds when this node last heard of it (a newer heartbeat), if ever.
    pub last_heard_ms: Option<u64>,
    pub version: String,
    pub config_fingerprint: String,
    pub config_generation: u64,
    /// The node's boot (gossip generation); a restart gives a greater one.
    pub boot: u64,
}

/// One node's views, by target (shared, copied on write).
pub type Views = Arc<IdMap<HealthView>>;

/// The live nodes' health views at one moment (cheap to take: shared maps).
#[derive(Clone, Debug, Default)]
pub struct HealthBoard {
    peers: Vec<(String, Views)>,
}

impl HealthBoard {
    /// The board of these live peers' views: `(name, boot, views)`; for a name listed
    /// more than once (a node that restarted), the newest boot counts.
    pub fn from_nodes(nodes: impl IntoIterator<Item = (String, u64, Views)>) -> Self {
        let mut newest: BTreeMap<String, (u64, Views)> = BTreeMap::new();
        for (name, boot, views) in nodes {
            match newest.get(&name) {
                Some((b, _)) if *b >= boot => {}
                _ => {
                    newest.insert(name, (boot, views));
                }
            }
        }
        Self {
            peers: newest.into_iter().map(|(n, (_, v))| (n, v)).collect(),
        }
    }

    /// Names of the live peers that publish views.
    pub fn peers(&self) -> impl Iterator<Item = &str> {
        self.peers.iter().map(|(n, _)| n.as_str())
    }

    /// Each live peer's view of `target` (peers without one are left out).
    pub fn views(&self, target: &TargetId) -> Vec<(&str, HealthView)> {
        self.peers
            .iter()
            .filter_map(|(n, m)| m.get(target).map(|v| (n.as_str(), *v)))
            .collect()
    }

    /// The status to serve for `target` given this node's own status, and the votes.
    pub fn combine(
        &self,
        mode: HealthMode,
        target: &TargetId,
        own: HealthStatus,
    ) -> (HealthStatus, Votes) {
        health::combine(
            mode,
            own,
            self.peers
                .iter()
                .filter_map(|(_, m)| m.get(target).map(|v| v.status)),
        )
    }
}

#[derive(Default)]
struct PeerCache {
    max_version: u64,
    last_gc: u64,
    heartbeat: Heartbeat,
    last_heard_ms: Option<u64>,
    meta: Option<NodeMeta>,
    health: Views,
}

struct Shared {
    node: String,
    self_id: ChitchatId,
    peers: HashMap<ChitchatId, PeerCache>,
    live: HashSet<ChitchatId>,
    merged: DrainSet,
    /// Records learned from peers that changed `merged`, not yet taken.
    adopted: Vec<DrainRecord>,
    clock: Clock,
    meta: NodeMeta,
    /// Values gossiped by peers that did not parse (ignored).
    bad_values: u64,
}

enum Command {
    Set(String, String),
    Delete(String),
    /// A drain record made here: published unless a newer one for its target arrived.
    Drain(DrainRecord),
}

/// A running cluster node. Dropping it stops gossip.
pub struct Cluster {
    shared: Arc<RwLock<Shared>>,
    commands: mpsc::UnboundedSender<Vec<Command>>,
    changes: watch::Receiver<u64>,
    counters: Arc<RejectCounters>,
    cluster_id: String,
    handle: Option<ChitchatHandle>,
    task: tokio::task::JoinHandle<()>,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl Cluster {
    /// Binds the gossip socket and starts gossiping with the peers.
    pub async fn start(opts: ClusterOptions) -> Result<Cluster, StartError> {
        if !valid_node_name(&opts.node) {
            return Err(StartError::NodeName(opts.node));
        }
        if opts.listen.ip().is_unspecified() {
            return Err(StartError::Wildcard(opts.listen));
        }
        let now = wall_ms();
        let session = seal::new_session(now);
        let counters = Arc::new(RejectCounters::default());
        let cluster_id = format!("signpost-{}", opts.key.fingerprint());
        let self_id = ChitchatId::new(opts.node.clone(), session, opts.listen);
        let interval = opts.gossip_interval.max(Duration::from_millis(10));
        let config = ChitchatConfig {
            chitchat_id: self_id.clone(),
            cluster_id: cluster_id.clone(),
            gossip_interval: interval,
            listen_addr: opts.listen,
            seed_nodes: opts.peers.clone(),
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: opts.phi_threshold,
                sampling_window_size: 100,
                max_interval: Duration::from_secs(10),
                initial_interval: interval,
                dead_node_grace_period: opts.dead_node_grace,
            },
            marked_for_deletion_grace_period: Duration::from_secs(3600),
            catchup_callback: None,
            extra_liveness_predicate: None,
        };
        let mut clock = Clock::new();
        if let Some(t) = opts.drains.max_hlc() {
            clock.observe(t, now);
        }
        let mut initial = vec![(
            META_KEY.to_owned(),
            serde_json::to_string(&opts.meta).expect("meta serialises"),
        )];
        initial.extend(opts.drains.records().map(DrainRecord::to_kv));
        let transport = transport::SealedUdpTransport::new(
            opts.key.clone(),
            &opts.node,
            session,
            counters.clone(),
        );
        let handle = spawn_chitchat(config, initial, &transport)
            .await
            .map_err(|e| StartError::Gossip(format!("{e:#}")))?;

        let shared = Arc::new(RwLock::new(Shared {
            node: opts.node.clone(),
            self_id,
            peers: HashMap::new(),
            live: HashSet::new(),
            merged: opts.drains.clone(),
            adopted: Vec::new(),
            clock,
            meta: opts.meta.clone(),
            bad_values: 0,
        }));
        let (changes_tx, changes) = watch::channel(0u64);
        let (commands, command_rx) = mpsc::unbounded_channel();
        let notify = Arc::new(Notify::new());
        let chitchat = handle.chitchat();
        let (listener, live_rx) = {
            let cc = chitchat.lock().await;
            let n = notify.clone();
            (
                cc.subscribe_event("", move |_| n.notify_one()),
                cc.live_nodes_watcher(),
            )
        };
        let task = tokio::spawn(run(
            chitchat,
            shared.clone(),
            command_rx,
            notify,
            live_rx,
            changes_tx,
            listener,
        ));
        Ok(Cluster {
            shared,
            commands,
            changes,
            counters,
            cluster_id,
            handle: Some(handle),
            task,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Shared> {
        self.shared.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Shared> {
        self.shared.write().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, cmds: Vec<Command>) {
        if !cmds.is_empty() {
            let _ = self.commands.send(cmds);
        }
    }

    /// This node's name.
    pub fn node(&self) -> String {
        self.read().node.clone()
    }

    /// The gossip cluster id: `signpost-` and the key's fingerprint.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// A counter that grows whenever something observable changed: a node joined, left,
    /// died or came back, or a peer's meta, drains or health views changed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Records a drain made at this node now (`now_ms`) and gossips it. The record is in
    /// [`Cluster::drains`] when this returns.
    pub fn drain(
        &self,
        target: DrainTarget,
        reason: impl Into<String>,
        ramp_ms: u64,
        operator: impl Into<String>,
        now_ms: u64,
    ) -> DrainRecord {
        self.drain_since(target, reason, now_ms, ramp_ms, operator, now_ms)
    }

    /// Like [`Cluster::drain`], for a drain whose ramp began earlier (`since_ms`): a drain
    /// made again keeps the start of the one in force, so that it never brings traffic
    /// back.
    pub fn drain_since(
        &self,
        target: DrainTarget,
        reason: impl Into<String>,
        since_ms: u64,
        ramp_ms: u64,
        operator: impl Into<String>,
        now_ms: u64,
    ) -> DrainRecord {
        let action = DrainAction::drain(reason, since_ms, ramp_ms);
        self.record(target, action, operator, now_ms)
    }

    /// Records an undrain made at this node now and gossips it.
    pub fn undrain(
        &self,
        target: DrainTarget,
        operator: impl Into<String>,
        now_ms: u64,
    ) -> DrainRecord {
        self.record(target, DrainAction::Undrain, operator, now_ms)
    }

    /// Records `action` on `target` made at this node now, and gossips it.
    fn record(
        &self,
        target: DrainTarget,
        action: DrainAction,
        operator: impl Into<String>,
        now_ms: u64,
    ) -> DrainRecord {
        let mut s = self.write();
        let hlc = s.clock.tick(now_ms);
        let r = DrainRecord::new(target, action, s.node.clone(), operator, hlc);
        s.merged.insert(r.clone());
        drop(s);
        self.send(vec![Command::Drain(r.clone())]);
        r
    }

    /// Every drain record known (merged from all nodes, this one's included).
    pub fn drains(&self) -> DrainSet {
        self.read().merged.clone()
    }

    /// The drains in force.
    pub fn active_drains(&self) -> ActiveDrains {
        self.read().merged.active()
    }

    /// Records learned from peers that changed the merged set since the last call, in the
    /// order learned (for the audit log, with their origin; after a restart with an empty
    /// state this includes records this node made in an earlier run).
    pub fn take_adopted_drains(&self) -> Vec<DrainRecord> {
        std::mem::take(&mut self.write().adopted)
    }

    /// Publishes this node's meta (after a reload).
    pub fn set_meta(&self, meta: NodeMeta) {
        let v = serde_json::to_string(&meta).expect("meta serialises");
        self.write().meta = meta;
        self.send(vec![Command::Set(META_KEY.to_owned(), v)]);
    }

    /// Publishes this node's views of these targets (only changed values are gossiped).
    pub fn set_health(&self, views: impl IntoIterator<Item = (TargetId, HealthView)>) {
        let cmds = views
            .into_iter()
            .map(|(id, v)| Command::Set(id.key(), v.encode()))
            .collect();
        self.send(cmds);
    }

    /// Stops publishing views of these targets (they left the config).
    pub fn remove_health(&self, targets: impl IntoIterator<Item = TargetId>) {
        self.send(
            targets
                .into_iter()
                .map(|id| Command::Delete(id.key()))
                .collect(),
        );
    }

    /// The live peers' health views now.
    pub fn health_board(&self) -> HealthBoard {
        let s = self.read();
        HealthBoard::from_nodes(
            s.peers
                .iter()
                .filter(|(id, _)| s.live.contains(*id) && id.node_id.as_ref() != s.node)
                .map(|(id, p)| (id.node_id.to_string(), id.generation_id, p.health.clone())),
        )
    }

    /// Every node known, this one first, then by name; for a node that restarted, its
    /// newest boot.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let s = self.read();
        let mut out = vec![NodeInfo {
            name: s.node.clone(),
            is_self: true,
            site: s.meta.site.clone(),
            gossip_addr: s.self_id.gossip_advertise_addr,
            live: true,
            last_heard_ms: Some(wall_ms()),
            version: s.meta.version.clone(),
            config_fingerprint: s.meta.config_fingerprint.clone(),
            config_generation: s.meta.config_generation,
            boot: s.self_id.generation_id,
        }];
        let mut newest: BTreeMap<&str, (&ChitchatId, &PeerCache)> = BTreeMap::new();
        for (id, p) in &s.peers {
            if id.node_id.as_ref() == s.node {
                continue;
            }
            let e = newest.entry(id.node_id.as_ref()).or_insert((id, p));
            if id.generation_id > e.0.generation_id {
                *e = (id, p);
            }
        }
        for (name, (id, p)) in newest {
            let meta = p.meta.clone().unwrap_or_default();
            out.push(NodeInfo {
                name: name.to_owned(),
                is_self: false,
                site: meta.site,
                gossip_addr: id.gossip_advertise_addr,
                live: s.live.contains(id),
                last_heard_ms: p.last_heard_ms,
                version: meta.version,
                config_fingerprint: meta.config_fingerprint,
                config_generation: meta.config_generation,
                boot: id.generation_id,
            });
        }
        out
    }

    /// Dropped datagrams by reason.
    pub fn rejected(&self) -> &RejectCounters {
        &self.counters
    }

    /// Values gossiped by peers that did not parse, ignored (a peer running another
    /// version, or a bug).
    pub fn bad_values(&self) -> u64 {
        self.read().bad_values
    }

    /// Stops gossip and waits for it to end.
    pub async fn shutdown(mut self) {
        self.task.abort();
        if let Some(h) = self.handle.take() {
            let _ = h.shutdown().await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}

async fn run(
    chitchat: Arc<tokio::sync::Mutex<chitchat::Chitchat>>,
    shared: Arc<RwLock<Shared>>,
    mut commands: mpsc::UnboundedReceiver<Vec<Command>>,
    notify: Arc<Notify>,
    mut live_rx: watch::Receiver<BTreeMap<ChitchatId, chitchat::NodeState>>,
    changes: watch::Sender<u64>,
    _listener: chitchat::ListenerHandle,
) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut pending = Vec::new();
        tokio::select! {
            c = commands.recv() => match c {
                Some(c) => pending.extend(c),
                None => return,
            },
            _ = notify.notified() => {}
            r = live_rx.changed() => if r.is_err() { return },
            _ = tick.tick() => {}
        }
        while let Ok(c) = commands.try_recv() {
            pending.extend(c);
        }
        let mut cc = chitchat.lock().await;
        {
            let own = cc.self_node_state();
            for c in pending {
                match c {
                    Command::Set(k, v) => own.set(k, v),
                    Command::Drain(r) => {
                        let s = shared.read().unwrap_or_else(|p| p.into_inner());
                        if s.merged.get(&r.target) == Some(&r) {
                            let (k, v) = r.to_kv();
                            own.set(k, v);
                        }
                    }
                    Command::Delete(k) => {
                        if own.get(&k).is_some() {
                            own.delete(&k);
                        }
                    }
                }
            }
        }
        let changed = refresh(&mut cc, &shared);
        drop(cc);
        if changed {
            changes.send_modify(|v| *v += 1);
        }
    }
}

/// Brings the cache up to date with chitchat's state; true when something observable
/// changed. Records learned from peers that win are republished as this node's own.
fn refresh(cc: &mut chitchat::Chitchat, shared: &RwLock<Shared>) -> bool {
    let now = wall_ms();
    let mut s = shared.write().unwrap_or_else(|p| p.into_inner());
    let s = &mut *s;
    let mut changed = false;
    let live: HashSet<ChitchatId> = cc
        .live_nodes()
        .filter(|id| **id != s.self_id)
        .cloned()
        .collect();
    if live != s.live {
        s.live = live;
        changed = true;
    }
    let mut republish = Vec::new();
    let mut present = HashSet::new();
    for (id, ns) in cc.node_states() {
        if *id == s.self_id {
            continue;
        }
        present.insert(id.clone());
        let p = s.peers.entry(id.clone()).or_default();
        if ns.heartbeat() != p.heartbeat {
            p.heartbeat = ns.heartbeat();
            p.last_heard_ms = Some(now);
        }
        if ns.last_gc_version() != p.last_gc || ns.max_version() < p.max_version {
            *p = PeerCache {
                heartbeat: p.heartbeat,
                last_heard_ms: p.last_heard_ms,
                last_gc: ns.last_gc_version(),
                ..PeerCache::default()
            };
            changed = true;
        }
        if ns.max_version() == p.max_version {
            continue;
        }
        changed = true;
        let since = p.max_version;
        let health = Arc::make_mut(&mut p.health);
        for (key, vv) in ns.key_values_including_deleted() {
            if vv.version <= since {
                continue;
            }
            let deleted = vv.is_deleted();
            if let Some(id) = key
                .starts_with(health::HEALTH_KEY_PREFIX)
                .then(|| TargetId::from_key(key))
            {
                match (id, deleted) {
                    (Some(id), true) => {
                        health.remove(&id);
                    }
                    (Some(id), false) => match HealthView::decode(&vv.value) {
                        Some(v) => {
                            health.insert(id, v);
                        }
                        None => s.bad_values += 1,
                    },
                    (None, _) => s.bad_values += 1,
                }
            } else if key.starts_with(drains::DRAIN_KEY_PREFIX) {
                if deleted {
                    continue;
                }
                match DrainRecord::from_kv(key, &vv.value) {
                    Ok(r) => {
                        if s.merged.insert(r.clone()) {
                            s.clock.observe(r.hlc, now);
                            republish.push(r.to_kv());
                            if s.adopted.len() >= MAX_ADOPTED {
                                s.adopted.remove(0);
                            }
                            s.adopted.push(r);
                        }
                    }
                    Err(_) => s.bad_values += 1,
                }
            } else if key == META_KEY {
                p.meta = if deleted {
                    None
                } else {
                    match serde_json::from_str(&vv.value) {
                        Ok(m) => Some(m),
                        Err(_) => {
                            s.bad_values += 1;
                            None
                        }
                    }
                };
            }
        }
        p.max_version = ns.max_version();
    }
    let before = s.peers.len();
    s.peers.retain(|id, _| present.contains(id));
    changed |= s.peers.len() != before;
    if !republish.is_empty() {
        let own = cc.self_node_state();
        for (k, v) in republish {
            own.set(k, v);
        }
    }
    changed
}

#[cfg(test)]
mod tests_props;
