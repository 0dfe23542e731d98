//! The single writer (DESIGN.md, "Architecture"): owns the compiled model and every piece
//! of mutable health state, and publishes a new [`Snapshot`] through the one `ArcSwap`
//! when something observable changed.
//!
//! It is an event loop around pure rules. Everything reaches it as an [`Event`] over one
//! channel, so the order of changes is the order of events and nothing else ever writes
//! the snapshot. The loop reads the clock once per wake-up and passes `now` down; the
//! rules it applies are functions of state, input and time: every endpoint's status comes
//! from [`crate::status::derive`], drain changes from [`Drains::apply`], probe
//! hysteresis from [`TargetHealth`]. Nothing here knows HTTP: errors are typed and the
//! admin edge maps them.
//!
//! Bursts are coalesced: a status change is published within `status_delay` (a few ms),
//! changes that only move RTTs or last-probe details at most once per `info_period`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::base::Status;
use crate::cluster::{
    self, ActiveDrains, Cluster, DrainAction, DrainRecord, DrainSet, HealthMode, HealthStatus,
    HealthView as PeerView, NodeMeta, TargetId,
};
use crate::drain::{AuditEntry, Drain, DrainDone, DrainError, DrainTarget, Drains, audit, rfc3339};
use crate::health::{EndpointView, HealthView, ProbeEvent, ProbeResult, TargetHealth};
use crate::metrics as m;
use crate::model::Model;
use crate::snapshot::{ReloadReport, Shared, Snapshot};
use crate::status::{self, Derived, Doubt, TargetStatus};

/// Where the answer to a drain or undrain goes.
pub type DrainReply = oneshot::Sender<Result<DrainDone, DrainError>>;

/// An operator's change, for the writer. (Reloads are loaded by the controller and arrive
/// as [`Event::NewModel`] / [`Event::ReloadFailed`].)
#[derive(Debug)]
pub enum Command {
    Drain {
        target: DrainTarget,
        reason: String,
        ramp: Duration,
        /// Who asked, for the audit log.
        caller: String,
        reply: DrainReply,
    },
    Undrain {
        target: DrainTarget,
        caller: String,
        reply: DrainReply,
    },
}

/// An input to the publisher.
#[derive(Debug)]
pub enum Event {
    /// A probe finished.
    Probe(ProbeResult),
    /// A probe has had no answer for `retry_interval` ([`ProbeEvent::Overdue`]).
    Overdue {
        generation: u64,
        target: u32,
        since: SystemTime,
    },
    /// An operator drain or undrain.
    Command(Command),
    /// A reload produced a valid new model: switch to it. `done` is answered once the
    /// snapshot of the new model is published.
    NewModel {
        model: Arc<Model>,
        report: ReloadReport,
        done: oneshot::Sender<()>,
    },
    /// A reload failed: keep serving, report it. `done` is answered once the report is
    /// published.
    ReloadFailed {
        report: ReloadReport,
        done: oneshot::Sender<()>,
    },
    /// The cluster's state changed: a peer's drains, views or liveness.
    Cluster,
}

/// An answer held back until the snapshot that shows the change is published, so that a
/// caller told "drained" or "reloaded" never reads the state from before.
#[derive(Debug)]
enum Reply {
    Drain(DrainReply, DrainDone),
    Done(oneshot::Sender<()>),
}

impl Reply {
    fn send(self) {
        match self {
            Reply::Drain(tx, done) => {
                let _ = tx.send(Ok(done));
            }
            Reply::Done(tx) => {
                let _ = tx.send(());
            }
        }
    }
}

impl From<ProbeEvent> for Event {
    fn from(e: ProbeEvent) -> Self {
        match e {
            ProbeEvent::Done(r) => Event::Probe(r),
            ProbeEvent::Overdue {
                generation,
                target,
                since,
            } => Event::Overdue {
                generation,
                target,
                since,
            },
        }
    }
}

/// What an event changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Nothing observable (e.g. a result from an older config generation).
    None,
    /// Only details: RTT averages, last probe times and reasons.
    Info,
    /// Something that can change answers or readiness.
    Status,
    /// Peers' views or drains changed: published within `peer_delay`, so that a busy
    /// cluster (thousands of targets changing on every peer) costs a few rebuilds a
    /// second, not one per gossip update.
    Peer,
}

/// How eagerly changes are published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublisherOptions {
    /// A status change is published this long after it happened, with whatever else
    /// arrived meanwhile. Default 5 ms.
    pub status_delay: Duration,
    /// Detail-only changes are published at most this often. Default 1 s.
    pub info_period: Duration,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        Self {
            status_delay: Duration::from_millis(5),
            info_period: Duration::from_secs(1),
        }
    }
}

/// The one writer of the published snapshot.
pub struct Publisher {
    model: Arc<Model>,
    shared: Shared,
    options: PublisherOptions,
    /// Per probe target (`Model::targets` order).
    health: Vec<TargetHealth>,
    /// Targets with at least one result.
    probed: usize,
    /// Every target of the first generation had a result once (`/readyz`). Stays set: a
    /// reload that adds targets does not take a serving instance out of service.
    ready: bool,
    /// Per profile, per endpoint: the status last published, and its history.
    published: Vec<Vec<Status>>,
    history: Vec<Vec<EndpointView>>,
    /// Operator drains in force.
    drains: Drains,
    /// Where drains are persisted and mutations audited; `None` keeps them in memory.
    state_dir: Option<PathBuf>,
    /// The last reload attempt.
    reload: Option<Arc<ReloadReport>>,
    /// Answers to send after the next publish.
    replies: Vec<Reply>,
    /// See [`Publisher::next_stable`].
    next_stable: Option<SystemTime>,
    /// The other instances, when this one is part of a cluster.
    cluster: Option<ClusterLink>,
}

/// This writer's side of the cluster (DESIGN.md, "Cluster"): drains are records merged by
/// the cluster, and each probe target's status is combined from the live nodes' views.
pub struct ClusterLink {
    cluster: Arc<Cluster>,
    mode: HealthMode,
    /// This node's site and version, for its meta.
    site: String,
    /// Per model target: its identity in the cluster.
    ids: Vec<TargetId>,
    /// Per model target: the view last published.
    views: Vec<Option<PeerView>>,
}

impl ClusterLink {
    pub fn new(cluster: Arc<Cluster>, mode: HealthMode, site: String) -> Self {
        Self {
            cluster,
            mode,
            site,
            ids: Vec::new(),
            views: Vec::new(),
        }
    }

    pub fn mode(&self) -> HealthMode {
        self.mode
    }

    /// Follows a new model: target identities, and the meta that says which config this
    /// node serves.
    fn set_model(&mut self, model: &Model) {
        let old: std::collections::HashMap<TargetId, PeerView> = self
            .ids
            .iter()
            .zip(&self.views)
            .filter_map(|(id, v)| Some((*id, (*v)?)))
            .collect();
        self.ids = model
            .targets
            .iter()
            .map(|t| TargetId::of(&t.identity()))
            .collect();
        self.views = self.ids.iter().map(|id| old.get(id).copied()).collect();
        let gone: Vec<TargetId> = old
            .keys()
            .filter(|id| !self.ids.contains(id))
            .copied()
            .collect();
        if !gone.is_empty() {
            self.cluster.remove_health(gone);
        }
        self.cluster.set_meta(NodeMeta {
            site: self.site.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config_fingerprint: model.fingerprint.clone(),
            config_generation: model.generation,
        });
    }
}

fn wall_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// The drains in force as the model names them: an endpoint drain's profile is matched
/// as DNS matches names, so that nodes spelling a profile differently agree.
fn drains_of(model: &Model, active: &ActiveDrains) -> Drains {
    let drain = |a: &cluster::ActiveDrain| Drain {
        reason: a.reason.clone(),
        since_ms: a.since_ms,
        ramp_ms: a.ramp_ms,
    };
    let mut out = Drains::default();
    for (site, a) in &active.sites {
        out.sites.insert(site.clone(), drain(a));
    }
    for (key, a) in &active.endpoints {
        let (profile, endpoint) = key.rsplit_once('/').unwrap_or((key.as_str(), ""));
        let key = match model.profile(profile) {
            Some((_, p)) => Drains::endpoint_key(&p.key, endpoint),
            None => key.clone(),
        };
        out.endpoints.insert(key, drain(a));
    }
    out
}

fn cluster_target(target: &DrainTarget) -> cluster::DrainTarget {
    match target {
        DrainTarget::Site(s) => cluster::DrainTarget::site(s.clone()),
        DrainTarget::Endpoint { profile, endpoint } => {
            cluster::DrainTarget::endpoint(profile, endpoint.clone())
        }
    }
}

impl Publisher {
    /// A publisher for `model`, publishing into `shared`. Nothing is published until
    /// [`Publisher::publish`] or [`Publisher::run`].
    pub fn new(model: Arc<Model>, shared: Shared, options: PublisherOptions) -> Self {
        let health = fresh_health(&model);
        let mut p = Self {
            model,
            shared,
            options,
            health,
            probed: 0,
            ready: false,
            published: Vec::new(),
            history: Vec::new(),
            drains: Drains::default(),
            state_dir: None,
            reload: None,
            replies: Vec::new(),
            cluster: None,
            next_stable: None,
        };
        p.reset_history(SystemTime::UNIX_EPOCH);
        p
    }

    /// Joins the cluster: drains become the cluster's merged records (a drain kept in
    /// `drains.json` from before the cluster, and not known to it, is recorded as made
    /// here), and health combines the live nodes' views.
    pub fn with_cluster(mut self, mut link: ClusterLink, now: SystemTime) -> Self {
        link.set_model(&self.model);
        let known = drains_of(&self.model, &link.cluster.active_drains());
        let local = std::mem::take(&mut self.drains);
        let sites = local
            .sites
            .iter()
            .filter(|(site, _)| !known.sites.contains_key(*site))
            .map(|(site, d)| (cluster::DrainTarget::site(site.clone()), d));
        let endpoints = local
            .endpoints
            .iter()
            .filter(|(key, _)| !known.endpoints.contains_key(*key))
            .map(|(key, d)| {
                let (profile, endpoint) = key.rsplit_once('/').unwrap_or((key.as_str(), ""));
                (cluster::DrainTarget::endpoint(profile, endpoint), d)
            });
        for (t, d) in sites.chain(endpoints) {
            let (reason, since, ramp) = (d.reason.clone(), d.since_ms, d.ramp_ms);
            link.cluster
                .drain_since(t, reason, since, ramp, "drains.json", wall_ms(now));
        }
        self.drains = drains_of(&self.model, &link.cluster.active_drains());
        self.cluster = Some(link);
        self.reset_history(now);
        self
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Starts with `drains` (restored from `state_dir`, as of `now`) and persists every
    /// change there.
    pub fn with_drains(mut self, drains: Drains, state_dir: PathBuf, now: SystemTime) -> Self {
        self.drains = drains;
        self.state_dir = Some(state_dir);
        self.reset_history(now);
        self
    }

    /// Takes every endpoint's current derived status as published, with no history.
    fn reset_history(&mut self, now: SystemTime) {
        let derived = self.derive(now);
        self.published = statuses(&derived);
        self.history = derived
            .iter()
            .map(|eps| {
                eps.iter()
                    .map(|d| EndpointView {
                        reason: d.reason.clone(),
                        ..EndpointView::default()
                    })
                    .collect()
            })
            .collect();
    }

    pub fn drains(&self) -> &Drains {
        &self.drains
    }

    /// Health per probe target (`Model::targets` order).
    pub fn health(&self) -> &[TargetHealth] {
        &self.health
    }

    /// Applies one event to the state (nothing is published). `now` and `wall` are the
    /// same moment on the monotonic and the wall clock.
    pub fn apply(&mut self, event: Event, now: Instant, wall: SystemTime) -> Change {
        match event {
            Event::Probe(r) => self.apply_probe(r, now),
            Event::Overdue {
                generation,
                target,
                since,
            } => self.apply_overdue(generation, target, since),
            Event::Command(c) => self.apply_command(c, wall),
            Event::NewModel {
                model,
                report,
                done,
            } => {
                self.replace_model(model, wall);
                self.set_reload(report);
                self.replies.push(Reply::Done(done));
                Change::Status
            }
            Event::ReloadFailed { report, done } => {
                self.set_reload(report);
                self.replies.push(Reply::Done(done));
                Change::Status
            }
            Event::Cluster => self.apply_cluster(wall),
        }
    }

    /// Takes in what the peers changed: drains made elsewhere (audited with their origin,
    /// persisted here) and their health views.
    fn apply_cluster(&mut self, now: SystemTime) -> Change {
        let Some(link) = &self.cluster else {
            return Change::None;
        };
        let adopted = link.cluster.take_adopted_drains();
        let next = drains_of(&self.model, &link.cluster.active_drains());
        if let Some(dir) = &self.state_dir {
            for r in &adopted {
                let entry = remote_audit(r, now);
                if let Err(e) = crate::drain::offload(|| audit(dir, &entry)) {
                    error!(error = %e, "cannot write the audit log");
                }
            }
        }
        if next == self.drains {
            // Views or liveness: statuses may change; publish compares them.
            return Change::Peer;
        }
        for r in &adopted {
            info!(origin = %r.origin, target = ?r.target, "drain from a peer applied");
        }
        let merged = link.cluster.drains();
        self.persist(&next, Some(&merged));
        self.drains = next;
        metrics::gauge!(m::DRAINS_ACTIVE).set(self.drains.len() as f64);
        Change::Peer
    }

    /// Saves the drain set (and the cluster's records) in `state.dir`; an error is
    /// logged, the drains stay in force.
    fn persist(&self, drains: &Drains, records: Option<&DrainSet>) {
        let Some(dir) = &self.state_dir else { return };
        let r = crate::drain::offload(|| {
            drains.save(dir)?;
            records.map_or(Ok(()), |r| r.save(dir))
        });
        if let Err(e) = r {
            error!(error = %e, dir = %dir.display(), "cannot save drain state");
        }
    }

    fn apply_command(&mut self, cmd: Command, now: SystemTime) -> Change {
        let (target, drain, caller, reply) = match cmd {
            Command::Drain {
                target,
                reason,
                ramp,
                caller,
                reply,
            } => (target, Some(Drain::new(reason, now, ramp)), caller, reply),
            Command::Undrain {
                target,
                caller,
                reply,
            } => (target, None, caller, reply),
        };
        let (action, reason) = match &drain {
            Some(d) => ("drain", d.reason.clone()),
            None => ("undrain", String::new()),
        };
        let result = self.change_drains(&target, drain, &caller, now);
        let entry = AuditEntry {
            time: rfc3339(now),
            caller,
            action: action.to_owned(),
            target: target.to_string(),
            reason,
            result: match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("error: {e}"),
            },
        };
        if let Some(dir) = &self.state_dir
            && let Err(e) = crate::drain::offload(|| audit(dir, &entry))
        {
            error!(error = %e, "cannot write the audit log");
        }
        match result {
            Ok(done) => {
                self.replies.push(Reply::Drain(reply, done));
                Change::Status
            }
            Err(e) => {
                let _ = reply.send(Err(e));
                Change::None
            }
        }
    }

    /// Sets (`Some`) or clears (`None`) a drain and persists the new set; when it cannot
    /// be saved, nothing changes.
    fn change_drains(
        &mut self,
        target: &DrainTarget,
        drain: Option<Drain>,
        caller: &str,
        now: SystemTime,
    ) -> Result<DrainDone, DrainError> {
        let (next, message) = self.drains.apply(&self.model, target, drain, now)?;
        let records = self.cluster.as_ref().map(|link| {
            let key = match target {
                DrainTarget::Site(s) => next.sites.get(s),
                DrainTarget::Endpoint { .. } => None,
            };
            let key = key.or_else(|| match target {
                DrainTarget::Endpoint { profile, endpoint } => self
                    .model
                    .profile(profile)
                    .and_then(|(_, p)| next.endpoints.get(&Drains::endpoint_key(&p.key, endpoint)))
                    .or_else(|| {
                        next.find_endpoint_key(profile, endpoint)
                            .and_then(|k| next.endpoints.get(&k))
                    }),
                DrainTarget::Site(_) => None,
            });
            let t = cluster_target(target);
            match key {
                Some(d) => link.cluster.drain_since(
                    t,
                    d.reason.clone(),
                    d.since_ms,
                    d.ramp_ms,
                    caller,
                    wall_ms(now),
                ),
                None => link.cluster.undrain(t, caller, wall_ms(now)),
            };
            link.cluster.drains()
        });
        let next = match &self.cluster {
            Some(link) => drains_of(&self.model, &link.cluster.active_drains()),
            None => next,
        };
        if let Some(dir) = &self.state_dir
            && let Err(source) = crate::drain::offload(|| {
                next.save(dir)?;
                records.as_ref().map_or(Ok(()), |r| r.save(dir))
            })
        {
            error!(error = %source, dir = %dir.display(), "cannot save drain state");
            return Err(DrainError::Save {
                dir: dir.clone(),
                source,
            });
        }
        self.drains = next;
        metrics::gauge!(m::DRAINS_ACTIVE).set(self.drains.len() as f64);
        info!(%target, "{message}");
        Ok(DrainDone {
            message,
            drains_active: self.drains.len(),
        })
    }

    fn set_reload(&mut self, report: ReloadReport) {
        metrics::counter!(m::RELOADS, "result" => if report.ok { "ok" } else { "error" })
            .increment(1);
        metrics::gauge!(m::GENERATION).set(self.model.generation as f64);
        self.reload = Some(Arc::new(report));
    }

    /// A probe of `target` started at `since` is overdue: the target is in doubt until
    /// its next counted result, which can shorten its profiles' TTL
    /// (`status::stability`).
    fn apply_overdue(&mut self, generation: u64, target: u32, since: SystemTime) -> Change {
        if generation != self.model.generation {
            return Change::None;
        }
        match self.health.get_mut(target as usize).map(|h| h.doubt(since)) {
            Some(true) => Change::Status,
            Some(false) => Change::Info,
            None => Change::None,
        }
    }

    fn apply_probe(&mut self, r: ProbeResult, now: Instant) -> Change {
        if r.generation != self.model.generation {
            return Change::None;
        }
        let outcome = if r.outcome.ok { "ok" } else { "fail" };
        metrics::counter!(m::PROBE_RESULTS, "outcome" => outcome).increment(1);
        metrics::histogram!(m::PROBE_DURATION, "outcome" => outcome)
            .record(r.outcome.rtt.as_secs_f64());
        let Some(h) = self.health.get_mut(r.target as usize) else {
            return Change::None;
        };
        let first = h.last.is_none();
        // An overdue probe made the target doubtful like a failure; its result ends that.
        let was_ok = if h.overdue_since.is_some() {
            Some(false)
        } else {
            h.last.as_ref().map(|l| l.ok)
        };
        let reason = r.outcome.reason.map(Arc::<str>::from);
        let flip = h.record(r.at, now, r.outcome.ok, r.outcome.rtt, reason);
        if first {
            self.probed += 1;
        }
        // A first failure (or the success after one) changes the answers' TTL
        // (`status::stability`) even when the status holds.
        let turned = was_ok.is_some_and(|ok| ok != r.outcome.ok);
        if flip.is_some() || turned || (first && self.probed == self.health.len()) {
            Change::Status
        } else {
            Change::Info
        }
    }

    /// Every endpoint's status, reason and weight at `now` ([`crate::status`]).
    pub fn derive(&self, now: SystemTime) -> Derived {
        status::derive(&self.model, &self.target_statuses(), &self.drains, now)
    }

    /// Each probe target's status: this node's own view, or with `health = "majority"`
    /// the live nodes' combined view (DESIGN.md, "Cluster").
    fn target_statuses(&self) -> Vec<TargetStatus> {
        let own = self.health.iter().map(TargetStatus::of);
        let Some(link) = self
            .cluster
            .as_ref()
            .filter(|l| l.mode == HealthMode::Majority)
        else {
            return own.collect();
        };
        let board = link.cluster.health_board();
        own.zip(&link.ids)
            .map(|(mine, id)| {
                let (combined, votes) =
                    board.combine(link.mode, id, HealthStatus::from(mine.status));
                let status = match combined {
                    HealthStatus::Online => Status::Online,
                    HealthStatus::Degraded => Status::Degraded,
                    HealthStatus::Checking => Status::CheckingEndpoint,
                };
                if status == mine.status {
                    return mine;
                }
                TargetStatus {
                    status,
                    reason: format!(
                        "cluster: {}; this node sees {}: {}",
                        votes.describe(combined),
                        mine.status.as_str(),
                        mine.reason
                    )
                    .into(),
                }
            })
            .collect()
    }

    /// Publishes this node's own view of every target whose status changed.
    fn share_views(&mut self, now: SystemTime) {
        let Some(link) = &mut self.cluster else {
            return;
        };
        let mut changed = Vec::new();
        for (i, h) in self.health.iter().enumerate() {
            let status = HealthStatus::from(h.status());
            let before = link.views.get(i).copied().flatten();
            if before.is_some_and(|v| v.status == status) {
                continue;
            }
            let view = PeerView {
                status,
                rtt_us: h.rtt.get().map(|d| d.as_micros() as u64),
                since_ms: wall_ms(now),
            };
            if let Some(slot) = link.views.get_mut(i) {
                *slot = Some(view);
                changed.push((link.ids[i], view));
            }
        }
        if !changed.is_empty() {
            link.cluster.set_health(changed);
        }
    }

    /// The snapshot for the current state at `now`, with endpoint history as of the last
    /// publish.
    pub fn rebuild(&self, now: SystemTime) -> Snapshot {
        self.assemble(&self.derive(now), now)
    }

    fn assemble(&self, derived: &Derived, now: SystemTime) -> Snapshot {
        let endpoints =
            status::endpoint_states(&self.model, derived, |t| self.health[t as usize].rtt.get());
        let doubt = |t: u32| {
            let h = &self.health[t as usize];
            if h.last.as_ref().is_some_and(|l| !l.ok) {
                Some(Doubt::Failed)
            } else {
                h.overdue_since.map(|_| Doubt::Unanswered)
            }
        };
        let profiles = status::stability(&self.model, derived, doubt, &self.history, now);
        let health = HealthView {
            targets: self.health.iter().map(TargetHealth::view).collect(),
            endpoints: self.history.clone(),
            first_round_complete: self.ready || self.probed == self.health.len(),
        };
        Snapshot {
            model: self.model.clone(),
            endpoints,
            profiles,
            drains: Arc::new(self.drains.clone()),
            reload: self.reload.clone(),
            health: Arc::new(health),
        }
    }

    /// When the next profile becomes stable again by time alone (one `ttl` after its last
    /// status change), as of the last publish: the writer publishes again then.
    pub fn next_stable(&self) -> Option<SystemTime> {
        self.next_stable
    }

    /// Derives every endpoint's state at `now`, logs and counts each status change since
    /// the last publish, stores the new snapshot, then answers the operator calls it
    /// holds. Returns how many endpoints changed status.
    pub fn publish(&mut self, now: SystemTime) -> usize {
        self.share_views(now);
        let derived = self.derive(now);
        let mut changed = 0;
        for (pi, states) in derived.iter().enumerate() {
            let profile = &self.model.profiles[pi];
            for (ei, d) in states.iter().enumerate() {
                let view = &mut self.history[pi][ei];
                view.reason = d.reason.clone();
                let before = self.published[pi][ei];
                if before == d.status {
                    continue;
                }
                changed += 1;
                view.transitions = view.transitions.saturating_add(1);
                view.since = Some(now);
                self.published[pi][ei] = d.status;
                let endpoint = &profile.endpoints[ei];
                log_transition(&profile.key, &endpoint.name, before, d.status, &d.reason);
                metrics::counter!(m::TRANSITIONS, "to" => d.status.label()).increment(1);
            }
        }
        let snapshot = self.assemble(&derived, now);
        self.next_stable = snapshot
            .profiles
            .iter()
            .filter_map(|p| p.changed_until)
            .filter(|&u| u > now)
            .min();
        self.shared.store(Arc::new(snapshot));
        for r in self.replies.drain(..) {
            r.send();
        }
        changed
    }

    /// Switches to a new config generation (reload). Targets identical in both keep their
    /// health; endpoints with the same profile and name keep their status history.
    pub fn replace_model(&mut self, model: Arc<Model>, now: SystemTime) {
        let mut health = fresh_health(&model);
        let old_targets: std::collections::HashMap<_, usize> = self
            .model
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t, i))
            .collect();
        for (i, t) in model.targets.iter().enumerate() {
            if let Some(&old) = old_targets.get(t) {
                health[i] = self.health[old].clone();
            }
        }
        // What was published for each endpoint that exists in both generations.
        let previous: Vec<Vec<Option<(Status, EndpointView)>>> = model
            .profiles
            .iter()
            .map(|p| {
                let old = self.model.profile(&p.key).map(|(i, _)| i as usize);
                if let Some(op) = old {
                    p.short_ttl_answers
                        .carry_from(&self.model.profiles[op].short_ttl_answers);
                }
                p.endpoints
                    .iter()
                    .map(|e| {
                        let op = old?;
                        let oe = self.model.profiles[op]
                            .endpoints
                            .iter()
                            .position(|x| x.name == e.name)?;
                        e.answer_count
                            .carry_from(&self.model.profiles[op].endpoints[oe].answer_count);
                        Some((self.published[op][oe], self.history[op][oe].clone()))
                    })
                    .collect()
            })
            .collect();
        self.ready |= self.probed == self.health.len();
        self.probed = health.iter().filter(|h| h.last.is_some()).count();
        self.model = model;
        self.health = health;
        if let Some(link) = &mut self.cluster {
            link.set_model(&self.model);
        }
        // New endpoints start from their derived status, without a logged transition.
        let derived = self.derive(now);
        self.published = Vec::with_capacity(derived.len());
        self.history = Vec::with_capacity(derived.len());
        for (prev, now) in previous.into_iter().zip(&derived) {
            let (published, history) = prev
                .into_iter()
                .zip(now)
                .map(|(prev, d)| {
                    prev.unwrap_or_else(|| {
                        let view = EndpointView {
                            reason: d.reason.clone(),
                            ..EndpointView::default()
                        };
                        (d.status, view)
                    })
                })
                .unzip();
            self.published.push(published);
            self.history.push(history);
        }
    }

    /// Publishes the current state, then applies events until every sender is gone,
    /// publishing coalesced changes.
    ///
    /// `wall_start` is the wall-clock time now, as the caller reads it. The writer reads
    /// only the runtime's clock: once at start and once per wake-up; wall time is then
    /// `wall_start` plus the runtime's elapsed time, so that tests in paused time see
    /// exact ramps.
    pub async fn run(mut self, mut events: mpsc::Receiver<Event>, wall_start: SystemTime) {
        use tokio::time::{Instant as TokioInstant, sleep_until};
        let start = TokioInstant::now();
        let wall = |t: TokioInstant| wall_start + t.duration_since(start);
        self.publish(wall_start);
        metrics::gauge!(m::GENERATION).set(self.model.generation as f64);
        metrics::gauge!(m::DRAINS_ACTIVE).set(self.drains.len() as f64);
        let mut last_publish = start;
        // A profile becomes stable again one ttl after its last status change: publish then.
        let stable_at = |p: &Self| {
            p.next_stable
                .map(|w| start + w.duration_since(wall_start).unwrap_or_default())
        };
        let earliest = |a: Option<TokioInstant>, b: Option<TokioInstant>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut due: Option<TokioInstant> = earliest(
            self.drains.ramping(wall_start).then(|| start + RAMP_STEP),
            stable_at(&self),
        );
        // See `Pacing`: no publish for a change before this.
        let mut rest_until = start;
        // When the last publish began, until the wake-up right after it, whose clock
        // read says how long it took (so the loop keeps to one read per wake-up).
        let mut publish_began: Option<TokioInstant> = None;
        loop {
            // `gone`: whether every sender is gone, when that is known without the clock.
            let (event, gone) = if publish_began.is_some() {
                match events.try_recv() {
                    Ok(e) => (Some(e), Some(false)),
                    Err(mpsc::error::TryRecvError::Empty) => (None, Some(false)),
                    Err(mpsc::error::TryRecvError::Disconnected) => (None, Some(true)),
                }
            } else {
                let e = match due {
                    None => events.recv().await,
                    Some(d) => tokio::select! {
                        e = events.recv() => e,
                        _ = sleep_until(d) => None,
                    },
                };
                (e, None)
            };
            let now = TokioInstant::now();
            if let Some(began) = publish_began.take() {
                // A publish walks every endpoint: the writer rests as long as it took
                // before publishing a change again, so that publishing takes at most
                // half of its time and a stream of changes never starves the rest.
                rest_until = now + now.saturating_duration_since(began);
            }
            // Woken with no event before the deadline: the channel is closed.
            let closed = gone.unwrap_or_else(|| event.is_none() && due.is_none_or(|d| now < d));
            let at = wall(now);
            let pacing = Pacing {
                now,
                last_publish,
                rest_until,
            };
            if let Some(event) = event {
                let when = self.take(event, at, &pacing);
                due = earliest(due, when);
            }
            if closed {
                if due.is_some() {
                    self.publish(at);
                }
                return;
            }
            if due.is_some_and(|d| now >= d) {
                // Everything already queued goes into this publish (in order, as it
                // would have one by one): under load, results are applied as fast as
                // they come, whatever a publish costs.
                for _ in 0..MAX_BATCH {
                    let Ok(event) = events.try_recv() else { break };
                    let when = self.take(event, at, &pacing);
                    due = earliest(due, when);
                }
                self.publish(at);
                last_publish = now;
                publish_began = Some(now);
                due = self.drains.ramping(at).then(|| now + RAMP_STEP);
                due = earliest(due, stable_at(&self));
            }
        }
    }

    /// Applies one event of the run loop and says when to publish what it changed.
    fn take(&mut self, event: Event, at: SystemTime, p: &Pacing) -> Option<tokio::time::Instant> {
        let now = p.now;
        let when = match self.apply(event, now.into_std(), at) {
            Change::None => None,
            // An operator waits for the answer: publish now.
            _ if !self.replies.is_empty() => Some(now),
            Change::Status => Some((now + self.options.status_delay).max(p.rest_until)),
            Change::Peer => Some((now + PEER_DELAY).max(p.rest_until)),
            Change::Info => Some(
                (p.last_publish + self.options.info_period)
                    .max(now)
                    .max(p.rest_until),
            ),
        };
        // While a drain ramps, weights move with time: republish every RAMP_STEP.
        match (when, self.drains.ramping(at)) {
            (w, true) => Some(w.map_or(now + RAMP_STEP, |w| w.min(now + RAMP_STEP))),
            (w, false) => w,
        }
    }
}

/// The run loop's clock for one wake-up: now, the last publish, and the end of the rest
/// that follows a publish (as long as the publish took), before which a change is not
/// published again (an operator's answer is).
struct Pacing {
    now: tokio::time::Instant,
    last_publish: tokio::time::Instant,
    rest_until: tokio::time::Instant,
}

/// Queued events applied before one publish, at most (the events channel's size).
const MAX_BATCH: usize = 4096;

/// How long peers' changes wait to be published together (a gossip round is 200 ms by
/// default, so this adds little to how fast a drain made elsewhere applies here).
const PEER_DELAY: Duration = Duration::from_millis(100);

/// How often weights are republished while a drain ramps.
const RAMP_STEP: Duration = Duration::from_millis(250);

fn fresh_health(model: &Model) -> Vec<TargetHealth> {
    model
        .targets
        .iter()
        .map(|t| TargetHealth::new(t.tolerated_failures, t.rise, t.interval))
        .collect()
}

fn statuses(derived: &Derived) -> Vec<Vec<Status>> {
    derived
        .iter()
        .map(|eps| eps.iter().map(|d| d.status).collect())
        .collect()
}

/// The audit line of a drain or undrain learned from a peer.
fn remote_audit(r: &DrainRecord, now: SystemTime) -> AuditEntry {
    let (action, reason) = match &r.action {
        DrainAction::Drain { reason, .. } => ("drain", reason.clone()),
        DrainAction::Undrain => ("undrain", String::new()),
    };
    let target = match &r.target {
        cluster::DrainTarget::Site(s) => DrainTarget::Site(s.clone()),
        cluster::DrainTarget::Endpoint { profile, endpoint } => DrainTarget::Endpoint {
            profile: profile.clone(),
            endpoint: endpoint.clone(),
        },
    };
    AuditEntry {
        time: rfc3339(now),
        caller: format!("cluster node {} ({})", r.origin, r.operator),
        action: action.to_owned(),
        target: target.to_string(),
        reason,
        result: format!("applied from node {}", r.origin),
    }
}

fn log_transition(profile: &str, endpoint: &str, from: Status, to: Status, reason: &str) {
    let (from, to) = (from.as_str(), to.as_str());
    if to == Status::Degraded.as_str() {
        warn!(
            profile,
            endpoint, from, to, reason, "endpoint {from} → {to}"
        );
    } else {
        info!(
            profile,
            endpoint, from, to, reason, "endpoint {from} → {to}"
        );
    }
}

#[cfg(test)]
mod tests {
    use arc_swap::ArcSwap;

    use super::*;
    use crate::health::ProbeOutcome;
    use crate::snapshot::WEIGHT_SCALE;

    /// Compiles `profiles` (TOML) with a `gslb.example` zone and monitor `web`.
    fn model(profiles: &str, generation: u64) -> Arc<Model> {
        let toml = format!("{WEB}{profiles}");
        crate::policy::testutil::try_load_generation(&toml, generation)
            .unwrap_or_else(|p| panic!("{p}"))
            .model
    }

    const WEB: &str = r#"
[monitors.web]
port = 8080
tolerated_failures = 1
rise = 2
interval = "1s"
"#;

    const PROFILES: &str = r#"
[profiles]
"app.gslb.example" = { monitor = "web", endpoints = [
    { name = "a", address = "192.0.2.1" },
    { name = "b", address = "192.0.2.2" },
    { name = "off", address = "192.0.2.3", enabled = false },
    { name = "pinned", address = "192.0.2.4", always_serve = true },
] }
"other.gslb.example" = { monitor = "web", endpoints = [
    { name = "a-too", address = "192.0.2.1" },
    { name = "plain", address = "192.0.2.9", monitor = { protocol = "tcp", port = 22 } },
] }
"static.gslb.example" = { endpoints = [{ name = "s", address = "192.0.2.50" }] }
"top.gslb.example" = { endpoints = [{ name = "nested", profile = "app.gslb.example", min_child_endpoints = 3 }] }
"#;

    fn publisher(m: Arc<Model>) -> (Publisher, Shared) {
        let shared: Shared = Arc::new(ArcSwap::from_pointee(crate::status::initial_snapshot(
            m.clone(),
        )));
        (
            Publisher::new(m, shared.clone(), PublisherOptions::default()),
            shared,
        )
    }

    /// A publisher of `m` in its event loop: the event sender, the published snapshot,
    /// and the task (it ends once the sender is dropped).
    fn running(m: Arc<Model>) -> (mpsc::Sender<Event>, Shared, tokio::task::JoinHandle<()>) {
        let (p, shared) = publisher(m);
        let (tx, rx) = mpsc::channel(16);
        (tx, shared, tokio::spawn(p.run(rx, SystemTime::now())))
    }

    fn probe(generation: u64, target: u32, ok: bool, reason: &str) -> Event {
        Event::Probe(ProbeResult {
            generation,
            target,
            at: SystemTime::now(),
            outcome: ProbeOutcome {
                ok,
                rtt: Duration::from_millis(3),
                reason: (!ok).then(|| reason.to_owned()),
                local: false,
            },
        })
    }

    /// Applies `n` failed probes ("connection refused") of `target`, generation 1.
    fn refuse(p: &mut Publisher, target: u32, n: usize, now: Instant) {
        for _ in 0..n {
            p.apply(
                probe(1, target, false, "connection refused"),
                now,
                SystemTime::now(),
            );
        }
    }

    fn target_of(m: &Model, profile: &str, endpoint: &str) -> u32 {
        let (_, p) = m.profile(profile).unwrap();
        p.endpoints
            .iter()
            .find(|e| e.name == endpoint)
            .unwrap()
            .target
            .unwrap()
    }

    /// The probe targets of endpoints `a` and `b` of `app.gslb.example`.
    /// The model of [`PROFILES`] (tolerated_failures 1) and app's targets a and b.
    fn profiles() -> (Arc<Model>, (u32, u32)) {
        let m = model(PROFILES, 1);
        let targets = app_targets(&m);
        (m, targets)
    }

    fn app_targets(m: &Model) -> (u32, u32) {
        let t = |e| target_of(m, "app.gslb.example", e);
        (t("a"), t("b"))
    }

    fn status(s: &Snapshot, profile: &str, endpoint: &str) -> Status {
        let (pi, p) = s.model.profile(profile).unwrap();
        let ei = p.endpoints.iter().position(|e| e.name == endpoint).unwrap();
        s.endpoints[pi as usize][ei].status
    }

    #[test]
    fn initial_statuses_follow_the_rules() {
        let m = model(PROFILES, 1);
        assert_eq!(m.targets.len(), 3, "a and a-too share one target");
        let (mut p, shared) = publisher(m);
        p.publish(SystemTime::now());
        let s = shared.load();
        for (profile, endpoint, want) in [
            ("app.gslb.example", "a", Status::CheckingEndpoint),
            ("app.gslb.example", "off", Status::Disabled),
            ("app.gslb.example", "pinned", Status::AlwaysServe),
            ("static.gslb.example", "s", Status::Online),
            ("top.gslb.example", "nested", Status::CheckingEndpoint),
        ] {
            assert_eq!(status(&s, profile, endpoint), want, "{profile} {endpoint}");
        }
        assert!(!s.health.first_round_complete);
        // The publisher's first snapshot agrees with the one built at load time.
        let initial = crate::status::initial_snapshot(s.model.clone());
        assert_eq!(initial.endpoints, s.endpoints);
    }

    #[test]
    fn a_shared_target_moves_every_endpoint_that_uses_it() {
        let m = model(PROFILES, 1);
        let t = target_of(&m, "app.gslb.example", "a");
        assert_eq!(t, target_of(&m, "other.gslb.example", "a-too"));
        let (mut p, shared) = publisher(m);
        let now = Instant::now();
        assert_eq!(
            p.apply(probe(1, t, true, ""), now, SystemTime::now()),
            Change::Status
        );
        assert_eq!(
            p.apply(probe(1, t, true, ""), now, SystemTime::now()),
            Change::Info
        );
        assert_eq!(p.publish(SystemTime::now()), 2);
        assert_eq!(
            status(&shared.load(), "other.gslb.example", "a-too"),
            Status::Online
        );

        // tolerated_failures = 1: the first failure is tolerated (no status changes, but
        // the answers' TTL does: published promptly), the second is not: a, a-too, and
        // top's nested endpoint (its child now has too few endpoints up) change.
        for (change, published) in [(Change::Status, 0), (Change::Status, 3)] {
            let failure = probe(1, t, false, "status 503 not in 200-299");
            assert_eq!(p.apply(failure, now, SystemTime::now()), change);
            assert_eq!(p.publish(SystemTime::now()), published);
        }
        let s = shared.load();
        assert_eq!(status(&s, "app.gslb.example", "a"), Status::Degraded);
        assert_eq!(status(&s, "other.gslb.example", "a-too"), Status::Degraded);
        let (pi, _) = s.model.profile("app.gslb.example").unwrap();
        let view = &s.health.endpoints[pi as usize][0];
        assert_eq!(view.transitions, 2);
        assert_eq!(&*view.reason, "status 503 not in 200-299");
        let probe_view = s.health.probe_of(&s.model, pi as usize, 0).unwrap();
        assert_eq!(
            probe_view.last.as_ref().unwrap().reason.as_deref(),
            Some("status 503 not in 200-299")
        );
        assert_eq!(probe_view.transitions, 2);
        // RTT of successes reaches the endpoint state for performance routing.
        assert_eq!(
            s.endpoints[pi as usize][0].rtt,
            Some(Duration::from_millis(3))
        );

        // rise = 2: still Degraded after one success, Online after the second.
        for want in [Status::Degraded, Status::Online] {
            p.apply(probe(1, t, true, ""), now, SystemTime::now());
            p.publish(SystemTime::now());
            assert_eq!(status(&shared.load(), "app.gslb.example", "a"), want);
        }
    }

    #[test]
    fn nested_endpoint_follows_its_child_profile() {
        let (m, (a, b)) = profiles();
        let (mut p, shared) = publisher(m);
        let now = Instant::now();
        // Child: a, b probed + pinned (AlwaysServe); min_child_endpoints = 3.
        for (target, want) in [(a, Status::CheckingEndpoint), (b, Status::Online)] {
            p.apply(probe(1, target, true, ""), now, SystemTime::now());
            p.publish(SystemTime::now());
            assert_eq!(status(&shared.load(), "top.gslb.example", "nested"), want);
        }
        refuse(&mut p, b, 2, now);
        p.publish(SystemTime::now());
        let s = shared.load();
        assert_eq!(status(&s, "top.gslb.example", "nested"), Status::Degraded);
        let (pi, _) = s.model.profile("top.gslb.example").unwrap();
        let reason = &s.health.endpoints[pi as usize][0].reason;
        assert!(
            reason.contains("2 of 4 endpoints Online, min_child_endpoints = 3"),
            "{reason}"
        );
    }

    #[test]
    fn results_of_another_generation_or_target_are_ignored() {
        let m = model(PROFILES, 5);
        let (mut p, _) = publisher(m);
        let now = Instant::now();
        assert_eq!(
            p.apply(probe(4, 0, true, ""), now, SystemTime::now()),
            Change::None
        );
        assert_eq!(
            p.apply(probe(5, 99, true, ""), now, SystemTime::now()),
            Change::None
        );
        assert!(p.health().iter().all(|h| h.last.is_none()));
    }

    #[test]
    fn first_round_completion_is_a_status_change() {
        let m = model(PROFILES, 1);
        let n = m.targets.len() as u32;
        let (mut p, shared) = publisher(m);
        let now = Instant::now();
        // The last target's first result completes the round even without a flip.
        for t in 0..n - 1 {
            p.apply(probe(1, t, true, ""), now, SystemTime::now());
        }
        assert_eq!(
            p.apply(
                probe(1, n - 1, false, "connection refused"),
                now,
                SystemTime::now()
            ),
            Change::Status
        );
        p.publish(SystemTime::now());
        assert!(shared.load().health.first_round_complete);

        // A reload that adds a target (no result yet) keeps the server ready.
        let more = PROFILES.replace("port = 22", "port = 23");
        p.replace_model(model(&more, 2), SystemTime::now());
        p.publish(SystemTime::now());
        let s = shared.load();
        assert!(s.health.targets.iter().any(|t| t.last.is_none()));
        assert!(s.health.first_round_complete);
    }

    #[test]
    fn reload_keeps_health_of_unchanged_targets() {
        let m1 = model(PROFILES, 1);
        let a = target_of(&m1, "app.gslb.example", "a");
        let b = target_of(&m1, "app.gslb.example", "b");
        let (mut p, shared) = publisher(m1);
        let now = Instant::now();
        p.apply(probe(1, a, true, ""), now, SystemTime::now());
        refuse(&mut p, b, 2, now);
        p.publish(SystemTime::now());
        // Generation 2: b's probe address changes, a stays.
        let m2 = model(
            &PROFILES.replace("address = \"192.0.2.2\"", "address = \"192.0.2.22\""),
            2,
        );
        p.replace_model(m2.clone(), SystemTime::now());
        // b (Degraded → CheckingEndpoint) and, with it, top's nested endpoint.
        assert_eq!(p.publish(SystemTime::now()), 2);
        let s = shared.load();
        assert_eq!(s.generation(), 2);
        assert_eq!(status(&s, "app.gslb.example", "a"), Status::Online);
        assert_eq!(status(&s, "other.gslb.example", "a-too"), Status::Online);
        assert_eq!(
            status(&s, "app.gslb.example", "b"),
            Status::CheckingEndpoint
        );
        let (pi, _) = s.model.profile("app.gslb.example").unwrap();
        assert_eq!(
            s.health.endpoints[pi as usize][0].transitions, 1,
            "a's history carried over"
        );
        assert_eq!(s.health.endpoints[pi as usize][1].transitions, 2);
        let a2 = target_of(&m2, "app.gslb.example", "a");
        assert_eq!(
            p.apply(probe(1, a2, true, ""), now, SystemTime::now()),
            Change::None,
            "old generation"
        );
    }

    /// Draining again (to change the reason, or by mistake with a ramp) never brings
    /// back traffic: the drain that ends first stays in force.
    #[test]
    fn draining_again_never_brings_traffic_back() {
        let (mut p, shared) = publisher(model(PROFILES, 1));
        let target = DrainTarget::Endpoint {
            profile: "static.gslb.example".into(),
            endpoint: "s".into(),
        };
        let mut drain = |reason: &str, ramp: u64| {
            let (reply, mut answer) = oneshot::channel();
            p.apply(
                Event::Command(Command::Drain {
                    target: target.clone(),
                    reason: reason.into(),
                    ramp: Duration::from_secs(ramp),
                    caller: "test".into(),
                    reply,
                }),
                Instant::now(),
                SystemTime::now(),
            );
            p.publish(SystemTime::now());
            let message = answer.try_recv().unwrap().unwrap().message;
            let d = p.drains().endpoints["static.gslb.example/s"].clone();
            (d, message)
        };
        let (first, _) = drain("slow", 600);
        assert_eq!(first.ramp_ms, 600_000);
        // A longer ramp keeps the first one's timing, with the new reason.
        let (second, message) = drain("slower", 3600);
        assert_eq!((second.since_ms, second.ramp_ms), (first.since_ms, 600_000));
        assert_eq!(second.reason, "slower");
        assert!(message.contains("draining over 600s"), "{message}");
        // At once is sooner: it replaces the ramp.
        let (now, message) = drain("now", 0);
        assert_eq!(now.ramp_ms, 0);
        assert_eq!(message, "endpoint static.gslb.example/s drained");
        // And a ramp after that keeps it drained.
        let (again, _) = drain("ramp again", 300);
        assert_eq!((again.ramp_ms, again.reason.as_str()), (0, "ramp again"));
        assert_eq!(
            status(&shared.load(), "static.gslb.example", "s"),
            Status::Disabled
        );
    }

    /// Halfway through a ramp, an endpoint of the default weight 1 weighs half as much as
    /// its peer (not 1 against 1 until the ramp ends).
    #[test]
    fn a_ramp_halves_a_weight_of_one_halfway() {
        let m = model(PROFILES, 1);
        let (p, _) = publisher(m);
        let dir = tempfile::tempdir().unwrap();
        let mut drains = Drains::default();
        let began = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        drains.endpoints.insert(
            Drains::endpoint_key("app.gslb.example", "a"),
            Drain::new("ramp", began, Duration::from_secs(10)),
        );
        let halfway = began + Duration::from_secs(5);
        let p = p.with_drains(drains, dir.path().to_owned(), halfway);
        let s = p.rebuild(halfway);
        let (pi, _) = s.model.profile("app.gslb.example").unwrap();
        let (a, b) = (s.endpoints[pi as usize][0], s.endpoints[pi as usize][1]);
        assert_eq!(a.status, Status::CheckingEndpoint);
        assert_eq!(b.weight, WEIGHT_SCALE);
        assert_eq!(a.weight, WEIGHT_SCALE / 2);
        assert_eq!(a.effective_weight(), 0.5);
        // Just before the end it still weighs something; at the end it is Disabled.
        let s = p.rebuild(began + Duration::from_millis(9_999));
        assert_eq!(s.endpoints[pi as usize][0].weight, 1);
        let s = p.rebuild(began + Duration::from_secs(10));
        assert_eq!(s.endpoints[pi as usize][0].status, Status::Disabled);
    }

    /// Every endpoint has its status series at 1 on `/metrics`, not only those that
    /// changed status; after a reload an endpoint that is gone has none, and the answer
    /// counts of endpoints in both generations carry over.
    #[test]
    fn every_endpoint_has_its_status_series_and_counts_survive_a_reload() {
        let (mut p, shared) = publisher(model(PROFILES, 1));
        p.publish(SystemTime::now());
        let page = || {
            let mut out = String::new();
            crate::metrics::render_endpoints(&shared.load(), &mut out);
            out
        };
        let text = page();
        for line in [
            r#"signpost_endpoint_status{profile="static.gslb.example",endpoint="s",site="",status="online"} 1"#,
            r#"signpost_endpoint_status{profile="app.gslb.example",endpoint="off",site="",status="disabled"} 1"#,
            r#"signpost_endpoint_status{profile="app.gslb.example",endpoint="b",site="",status="checking_endpoint"} 1"#,
            // One series per state: the others are 0.
            r#"signpost_endpoint_status{profile="static.gslb.example",endpoint="s",site="",status="degraded"} 0"#,
            r#"signpost_endpoint_status{profile="static.gslb.example",endpoint="s",site="",status="checking_endpoint"} 0"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert!(!text.contains("signpost_answers_total{"), "{text}");
        let snap = shared.load_full();
        let (_, a) = snap.model.profile("app.gslb.example").unwrap();
        for e in &a.endpoints {
            e.answer_count.increment();
        }
        a.endpoints[0].answer_count.increment();
        let first = a.endpoints[0].name.clone();

        let without_b = PROFILES.replace(
            r#"name = "b", address = "192.0.2.2""#,
            r#"name = "c", address = "192.0.2.2""#,
        );
        assert_ne!(without_b, PROFILES);
        p.replace_model(model(&without_b, 2), SystemTime::now());
        p.publish(SystemTime::now());
        let text = page();
        assert!(!text.contains(r#"endpoint="b""#), "{text}");
        assert!(
            text.contains(r#"signpost_endpoint_status{profile="app.gslb.example",endpoint="c",site="",status="checking_endpoint"} 1"#),
            "{text}"
        );
        let carried = format!(
            "signpost_answers_total{{profile=\"app.gslb.example\",endpoint=\"{first}\"}} 2"
        );
        assert!(text.contains(&carried), "{carried} not in\n{text}");
        assert!(
            !text.contains(r#"signpost_answers_total{profile="app.gslb.example",endpoint="c"}"#),
            "a new endpoint starts from 0: {text}"
        );
    }

    fn reload_report(ok: bool, generation: u64) -> ReloadReport {
        ReloadReport {
            time: "2026-01-01T00:00:00Z".into(),
            ok,
            generation,
            message: if ok { String::new() } else { "bad".into() },
        }
    }

    /// A caller told "drained" or "reloaded" reads the new state at once: answers wait
    /// for the publish, which does not wait for `status_delay`.
    #[tokio::test(start_paused = true)]
    async fn operator_calls_are_answered_once_their_change_is_published() {
        let (tx, shared, task) = running(model(PROFILES, 1));
        let drain = |endpoint: &str, reply| {
            Event::Command(Command::Drain {
                target: DrainTarget::Endpoint {
                    profile: "static.gslb.example".into(),
                    endpoint: endpoint.into(),
                },
                reason: "maintenance".into(),
                ramp: Duration::ZERO,
                caller: "test".into(),
                reply,
            })
        };
        let (reply, answer) = oneshot::channel();
        tx.send(drain("s", reply)).await.unwrap();
        let v = answer.await.unwrap().unwrap();
        assert_eq!(v.message, "endpoint static.gslb.example/s drained");
        assert_eq!(
            status(&shared.load(), "static.gslb.example", "s"),
            Status::Disabled
        );
        let (reply, answer) = oneshot::channel();
        tx.send(drain("nope", reply)).await.unwrap();
        assert!(matches!(
            answer.await.unwrap().unwrap_err(),
            DrainError::UnknownEndpoint { .. }
        ));

        let (done, wait) = oneshot::channel();
        let report = reload_report(false, 1);
        tx.send(Event::ReloadFailed { report, done }).await.unwrap();
        wait.await.unwrap();
        assert_eq!(shared.load().reload.as_ref().map(|r| r.ok), Some(false));

        let (done, wait) = oneshot::channel();
        let (model, report) = (model(PROFILES, 2), reload_report(true, 2));
        tx.send(Event::NewModel {
            model,
            report,
            done,
        })
        .await
        .unwrap();
        wait.await.unwrap();
        let s = shared.load();
        assert_eq!(s.generation(), 2);
        assert_eq!(s.reload.as_ref().map(|r| r.ok), Some(true));
        assert_eq!(status(&s, "static.gslb.example", "s"), Status::Disabled);

        drop(tx);
        task.await.unwrap();
    }

    /// The rest after a publish holds back a change's publish (status, detail or a
    /// peer's) until it ends, never an operator's answer.
    #[tokio::test(start_paused = true)]
    async fn a_change_waits_for_the_rest_after_a_publish_and_an_operator_does_not() {
        let (m, (a, _)) = profiles();
        let (mut p, _) = publisher(m);
        let now = tokio::time::Instant::now();
        let pacing = |rest: u64| Pacing {
            now,
            last_publish: now,
            rest_until: now + Duration::from_millis(rest),
        };
        let wall = SystemTime::now();
        // A refusal changes the status: due after status_delay, or once the rest ends.
        let when = p.take(probe(1, a, false, "connection refused"), wall, &pacing(0));
        assert_eq!(when, Some(now + PublisherOptions::default().status_delay));
        let when = p.take(probe(1, a, true, ""), wall, &pacing(40));
        assert_eq!(when, Some(now + Duration::from_millis(40)));
        let when = p.take(Event::Cluster, wall, &pacing(0));
        assert_eq!(when, None, "no cluster: a peer's change changes nothing");
        let (reply, _answer) = oneshot::channel();
        let drain = Event::Command(Command::Drain {
            target: DrainTarget::Site("nope".into()),
            reason: String::new(),
            ramp: Duration::ZERO,
            caller: "test".into(),
            reply,
        });
        assert_eq!(
            p.take(drain, wall, &pacing(40)),
            None,
            "refused: nothing to publish"
        );
        let (reply, _answer) = oneshot::channel();
        let drain = Event::Command(Command::Drain {
            target: DrainTarget::Endpoint {
                profile: "static.gslb.example".into(),
                endpoint: "s".into(),
            },
            reason: "maintenance".into(),
            ramp: Duration::ZERO,
            caller: "test".into(),
            reply,
        });
        assert_eq!(p.take(drain, wall, &pacing(40)), Some(now));
    }

    /// Events queued when a publish is due all go into it, in order: the loop shows
    /// what applying them one by one shows.
    #[tokio::test(start_paused = true)]
    async fn a_publish_takes_in_every_queued_event_in_order() {
        let (m, (a, _)) = profiles();
        // Runs of one to three failures and successes, ending with two successes.
        let ok = |i: usize| (i / (1 + i % 3)).is_multiple_of(2) || i >= 998;
        let (mut one_by_one, expected) = publisher(m.clone());
        for i in 0..1000 {
            one_by_one.apply(
                probe(1, a, ok(i), "status 503"),
                Instant::now(),
                SystemTime::now(),
            );
        }
        one_by_one.publish(SystemTime::now());
        let (p, shared) = publisher(m);
        let (tx, rx) = mpsc::channel(MAX_BATCH);
        for i in 0..1000 {
            tx.send(probe(1, a, ok(i), "status 503")).await.unwrap();
        }
        let task = tokio::spawn(p.run(rx, SystemTime::now()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (got, want) = (shared.load(), expected.load());
        let (got, want) = (
            &got.health.targets[a as usize],
            &want.health.targets[a as usize],
        );
        assert_eq!(got.status, Status::Online);
        assert_eq!(
            (got.status, got.transitions, got.last.as_ref().map(|l| l.ok)),
            (
                want.status,
                want.transitions,
                want.last.as_ref().map(|l| l.ok)
            )
        );
        assert!(want.transitions > 100, "{}", want.transitions);
        drop(tx);
        task.await.unwrap();
    }

    const TWO_SITES: &str = r#"
[profiles]
"app.gslb.example" = { monitor = "web", ttl = 30, ttl_unstable = 5, endpoints = [
    { name = "a", address = "192.0.2.1" },
    { name = "b", address = "192.0.2.2" },
] }
"quiet.gslb.example" = { monitor = "web", ttl = 20, all_down = "nodata", endpoints = [
    { name = "a", address = "192.0.2.1" },
] }
"#;

    /// (ttl now, reasons as `Unstable` kinds) of `profile` in `s`.
    fn ttl_of(s: &Snapshot, profile: &str) -> (u32, Vec<&'static str>) {
        let (pi, _) = s.model.profile(profile).unwrap();
        let st = &s.profiles[pi as usize];
        let kinds = st
            .unstable
            .iter()
            .map(|u| match u {
                crate::snapshot::Unstable::FailedProbe { .. } => "failed_probe",
                crate::snapshot::Unstable::UnansweredProbe { .. } => "unanswered_probe",
                crate::snapshot::Unstable::AllDown => "all_down",
                crate::snapshot::Unstable::Changed { .. } => "changed",
            })
            .collect();
        assert_eq!(s.ttl(pi), st.ttl);
        (st.ttl, kinds)
    }

    /// A publisher of [`TWO_SITES`] (tolerated_failures 1) and app's targets a and b.
    fn two_sites() -> (Publisher, Shared, (u32, u32)) {
        let m = model(TWO_SITES, 1);
        let targets = app_targets(&m);
        let (p, shared) = publisher(m);
        (p, shared, targets)
    }

    /// The wall clock `s` seconds into the health-aware TTL tests (from 2027-01-15T08:00:00Z).
    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    /// The health-aware TTL rule, step by step, with the wall clock given.
    #[test]
    fn a_profile_is_unstable_while_a_failure_is_confirmed_and_one_ttl_after_a_change() {
        let (mut p, shared, (a, b)) = two_sites();
        let now = Instant::now();
        p.publish(at(0));
        assert_eq!(ttl_of(&shared.load(), "app.gslb.example"), (30, vec![]));

        // Both come Online at 0 s: a change, so short until 30 s.
        assert_eq!(p.apply(probe(1, a, true, ""), now, at(0)), Change::Status);
        assert_eq!(p.apply(probe(1, b, true, ""), now, at(0)), Change::Status);
        p.publish(at(0));
        let s = shared.load();
        assert_eq!(
            ttl_of(&s, "app.gslb.example"),
            (5, vec!["changed", "changed"])
        );
        // ttl_unstable defaults to 5.
        assert_eq!(ttl_of(&s, "quiet.gslb.example"), (5, vec!["changed"]));
        assert_eq!(p.next_stable(), Some(at(20)), "quiet's ttl is 20");
        p.publish(at(29));
        assert_eq!(ttl_of(&shared.load(), "app.gslb.example").0, 5);
        assert_eq!(ttl_of(&shared.load(), "quiet.gslb.example").0, 20);
        assert_eq!(p.next_stable(), Some(at(30)));
        p.publish(at(30));
        assert_eq!(ttl_of(&shared.load(), "app.gslb.example"), (30, vec![]));
        assert_eq!(p.next_stable(), None);

        // a fails once (tolerated): still Online, but its failure is being confirmed.
        // The first failure is published at once (it changes the TTL), a routine
        // success after a success is not.
        assert_eq!(p.apply(probe(1, b, true, ""), now, at(40)), Change::Info);
        assert_eq!(
            p.apply(probe(1, a, false, "connection refused"), now, at(40)),
            Change::Status
        );
        p.publish(at(40));
        let s = shared.load();
        assert_eq!(status(&s, "app.gslb.example", "a"), Status::Online);
        assert_eq!(ttl_of(&s, "app.gslb.example"), (5, vec!["failed_probe"]));
        let (pi, _) = s.model.profile("app.gslb.example").unwrap();
        assert_eq!(
            crate::status::unstable_reasons(&s, pi as usize),
            ["endpoint a failed its latest probe (connection refused) and is being confirmed"]
        );
        // Confirmed: Degraded at 41 s; unstable until 71 s although a keeps failing.
        p.apply(probe(1, a, false, "connection refused"), now, at(41));
        p.publish(at(41));
        assert_eq!(
            status(&shared.load(), "app.gslb.example", "a"),
            Status::Degraded
        );
        assert_eq!(
            ttl_of(&shared.load(), "app.gslb.example"),
            (5, vec!["changed"])
        );
        p.apply(probe(1, a, false, "connection refused"), now, at(50));
        p.publish(at(70));
        assert_eq!(ttl_of(&shared.load(), "app.gslb.example").0, 5);
        p.publish(at(71));
        assert_eq!(
            ttl_of(&shared.load(), "app.gslb.example"),
            (30, vec![]),
            "a Degraded endpoint that keeps failing is in no answer"
        );
        // quiet's only endpoint is a: nothing eligible, but all_down = "nodata" serves
        // nothing, so only the change counts.
        assert_eq!(ttl_of(&shared.load(), "quiet.gslb.example"), (20, vec![]));

        // b fails once: being confirmed; its recovery (a success) ends that at once.
        p.apply(probe(1, b, false, "status 503"), now, at(80));
        p.publish(at(80));
        assert_eq!(
            ttl_of(&shared.load(), "app.gslb.example"),
            (5, vec!["failed_probe"])
        );
        assert_eq!(p.apply(probe(1, b, true, ""), now, at(81)), Change::Status);
        p.publish(at(81));
        assert_eq!(ttl_of(&shared.load(), "app.gslb.example"), (30, vec![]));

        // b Degraded too: every endpoint down, serve_all answers with both.
        p.apply(probe(1, b, false, "status 503"), now, at(90));
        p.apply(probe(1, b, false, "status 503"), now, at(91));
        p.publish(at(91));
        p.publish(at(200));
        assert_eq!(
            ttl_of(&shared.load(), "app.gslb.example"),
            (5, vec!["all_down"])
        );
    }

    /// A probe unanswered for `retry_interval` makes the profile unstable until a result
    /// counts: a success ends it at once, a failure keeps it (being confirmed).
    #[test]
    fn an_overdue_probe_shortens_the_ttl_until_its_result() {
        let (mut p, shared, (a, b)) = two_sites();
        let now = Instant::now();
        let overdue = |target: u32, generation: u64, since: SystemTime| Event::Overdue {
            generation,
            target,
            since,
        };
        p.apply(probe(1, a, true, ""), now, at(0));
        p.apply(probe(1, b, true, ""), now, at(0));
        p.publish(at(0));
        p.publish(at(100));
        assert_eq!(ttl_of(&shared.load(), "app.gslb.example"), (30, vec![]));

        // Another generation's notice is ignored.
        assert_eq!(p.apply(overdue(a, 2, at(109)), now, at(110)), Change::None);
        // a's probe started at 109 s has no answer at 110 s: published at once.
        assert_eq!(
            p.apply(overdue(a, 1, at(109)), now, at(110)),
            Change::Status
        );
        p.publish(at(110));
        let s = shared.load();
        assert_eq!(status(&s, "app.gslb.example", "a"), Status::Online);
        assert_eq!(
            ttl_of(&s, "app.gslb.example"),
            (5, vec!["unanswered_probe"])
        );
        let (pi, _) = s.model.profile("app.gslb.example").unwrap();
        assert_eq!(
            crate::status::unstable_reasons(&s, pi as usize),
            [
                "endpoint a's probe started at 2027-01-15T08:01:49Z has had no answer for retry_interval"
            ]
        );
        // The slow answer comes: stable again at once (published at once, although a
        // success after a success is routine otherwise).
        assert_eq!(p.apply(probe(1, a, true, ""), now, at(111)), Change::Status);
        p.publish(at(111));
        assert_eq!(ttl_of(&shared.load(), "app.gslb.example"), (30, vec![]));

        // Overdue, then the probe fails: still unstable, now as a failure being confirmed.
        p.apply(overdue(a, 1, at(119)), now, at(120));
        p.apply(probe(1, a, false, "timed out"), now, at(124));
        p.publish(at(124));
        assert_eq!(
            ttl_of(&shared.load(), "app.gslb.example"),
            (5, vec!["failed_probe"])
        );
        // A notice while the failure is confirmed changes nothing visible.
        assert_eq!(p.apply(overdue(a, 1, at(125)), now, at(126)), Change::Info);
        // Degraded: a's later overdue probes do not make the profile unstable (it is in
        // no answer); only the change does, for one ttl.
        for s in [127, 128, 129] {
            p.apply(probe(1, a, false, "timed out"), now, at(s));
        }
        p.publish(at(129));
        p.apply(overdue(a, 1, at(200)), now, at(201));
        p.publish(at(201));
        let s = shared.load();
        assert_eq!(status(&s, "app.gslb.example", "a"), Status::Degraded);
        assert_eq!(ttl_of(&s, "app.gslb.example"), (30, vec![]));
    }

    /// In the event loop, the profile turns stable again one ttl after its last change
    /// with no event to wake the writer: the loop schedules that publish itself.
    #[tokio::test(start_paused = true)]
    async fn run_republishes_when_a_profile_becomes_stable() {
        let m = model(TWO_SITES, 1);
        let (a, b) = app_targets(&m);
        let (tx, shared, task) = running(m);
        tx.send(probe(1, a, true, "")).await.unwrap();
        tx.send(probe(1, b, true, "")).await.unwrap();
        let start = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(ttl_of(&shared.load(), "app.gslb.example").0, 5);
        // Published at status_delay (5 ms): stable at 30 s + 5 ms.
        tokio::time::sleep_until(start + Duration::from_millis(30_004)).await;
        assert_eq!(ttl_of(&shared.load(), "app.gslb.example").0, 5);
        tokio::time::sleep_until(start + Duration::from_millis(30_006)).await;
        assert_eq!(ttl_of(&shared.load(), "app.gslb.example"), (30, vec![]));
        drop(tx);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn run_coalesces_and_publishes_status_changes_quickly() {
        let (m, (a, b)) = profiles();
        let (tx, shared, task) = running(m);
        tokio::time::sleep(Duration::from_millis(1)).await;
        let first = shared.load_full();

        // Two status changes in one burst: one snapshot within status_delay.
        tx.send(probe(1, a, true, "")).await.unwrap();
        tx.send(probe(1, b, true, "")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(
            Arc::ptr_eq(&first, &shared.load_full()),
            "published before status_delay"
        );
        tokio::time::sleep(Duration::from_millis(4)).await;
        let second = shared.load_full();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(status(&second, "app.gslb.example", "a"), Status::Online);
        assert_eq!(status(&second, "app.gslb.example", "b"), Status::Online);

        // A detail-only change waits for info_period since the last publish.
        tx.send(probe(1, a, true, "")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(Arc::ptr_eq(&second, &shared.load_full()));
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(!Arc::ptr_eq(&second, &shared.load_full()));

        drop(tx);
        task.await.unwrap();
    }
}
