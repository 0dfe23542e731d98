//! The single writer (DESIGN.md, "Architecture"): owns the compiled model and every piece
//! of mutable health state, and publishes a new [`Snapshot`] through the one `ArcSwap`
//! when something observable changed.
//!
//! Everything reaches it as an [`Event`] over one channel, so the order of changes is the
//! order of events and nothing else ever writes the snapshot. Every endpoint's state is
//! derived afresh from model + health on each rebuild ([`Publisher::rebuild`]), never
//! patched, so adding an input (drains, reloads) means adding an event variant, the state
//! it sets, and one rule in [`Publisher::derive`].
//!
//! Bursts are coalesced: a status change is published within `status_delay` (a few ms),
//! changes that only move RTTs or last-probe details at most once per `info_period`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::admin::{ApiError, Command, DrainTarget};
use crate::drain::{AuditEntry, Drain, Drains, audit, rfc3339};
use crate::health::{EndpointView, HealthView, ProbeResult, TargetHealth};
use crate::metrics as m;
use crate::model::{Answer, Model};
use crate::snapshot::{EndpointState, ReloadReport, Shared, Snapshot, Status, WEIGHT_SCALE};

/// An input to the publisher.
///
/// Later work adds variants here (`Drain { site or endpoint, reason, ramp }`, `Undrain`,
/// `Reload { model }` → [`Publisher::replace_model`]); each is handled in
/// [`Publisher::apply`], which says what kind of change it made.
#[derive(Debug)]
pub enum Event {
    /// A probe finished.
    Probe(ProbeResult),
    /// An operator drain or undrain (reloads are loaded elsewhere and arrive as
    /// [`Event::NewModel`] / [`Event::ReloadFailed`]).
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
}

/// An answer held back until the snapshot that shows the change is published, so that a
/// caller told "drained" or "reloaded" never reads the state from before.
#[derive(Debug)]
enum Reply {
    Api(
        oneshot::Sender<Result<serde_json::Value, ApiError>>,
        Result<serde_json::Value, ApiError>,
    ),
    Done(oneshot::Sender<()>),
}

impl Reply {
    fn send(self) {
        match self {
            Reply::Api(tx, result) => {
                let _ = tx.send(result);
            }
            Reply::Done(tx) => {
                let _ = tx.send(());
            }
        }
    }
}

impl From<ProbeResult> for Event {
    fn from(r: ProbeResult) -> Self {
        Event::Probe(r)
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

/// Every endpoint's derived status and why it has it, per profile.
pub type Derived = Vec<Vec<(Status, Arc<str>)>>;

/// Profiles derived so far (nested profiles are derived before their parents).
type Memo = Vec<Option<Vec<(Status, Arc<str>)>>>;

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
    reasons: Reasons,
    /// Operator drains in force.
    drains: Drains,
    /// Where drains are persisted and mutations audited; `None` keeps them in memory.
    state_dir: Option<PathBuf>,
    /// The last reload attempt.
    reload: Option<Arc<ReloadReport>>,
    /// Answers to send after the next publish.
    replies: Vec<Reply>,
}

/// Fixed reasons, allocated once.
struct Reasons {
    disabled: Arc<str>,
    always_serve: Arc<str>,
    not_monitored: Arc<str>,
    no_result: Arc<str>,
    probe_ok: Arc<str>,
}

impl Default for Reasons {
    fn default() -> Self {
        Self {
            disabled: "disabled in config".into(),
            always_serve: "always_serve".into(),
            not_monitored: "not monitored".into(),
            no_result: "no probe result yet".into(),
            probe_ok: "probe ok".into(),
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
            reasons: Reasons::default(),
            drains: Drains::default(),
            state_dir: None,
            reload: None,
            replies: Vec::new(),
        };
        let derived = p.derive();
        p.published = statuses(&derived);
        p.history = derived
            .iter()
            .map(|eps| {
                eps.iter()
                    .map(|(_, reason)| EndpointView {
                        reason: reason.clone(),
                        ..EndpointView::default()
                    })
                    .collect()
            })
            .collect();
        p
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Starts with `drains` (restored from `state_dir`) and persists every change there.
    pub fn with_drains(mut self, drains: Drains, state_dir: PathBuf) -> Self {
        self.drains = drains;
        self.state_dir = Some(state_dir);
        let derived = self.derive();
        self.published = statuses(&derived);
        for (pi, states) in derived.iter().enumerate() {
            for (ei, (_, reason)) in states.iter().enumerate() {
                self.history[pi][ei].reason = reason.clone();
            }
        }
        self
    }

    pub fn drains(&self) -> &Drains {
        &self.drains
    }

    /// Whether a drain ramp is in progress (weights change with time).
    fn ramping(&self, now: SystemTime) -> bool {
        self.drains
            .sites
            .values()
            .chain(self.drains.endpoints.values())
            .any(|d| d.ramp_ms > 0 && d.ends_at() > now)
    }

    /// The drain applying to an endpoint, if any.
    fn drain_of(&self, profile: usize, endpoint: usize) -> Option<&Drain> {
        let p = &self.model.profiles[profile];
        let e = &p.endpoints[endpoint];
        let site = e.site.map(|s| self.model.sites[s as usize].as_str());
        self.drains.for_endpoint(&p.key, &e.name, site)
    }

    fn apply_command(&mut self, cmd: Command) -> Change {
        match cmd {
            Command::Drain {
                target,
                reason,
                ramp,
                caller,
                reply,
            } => {
                let result = self.drain(
                    &target,
                    Some(Drain::new(reason.clone(), SystemTime::now(), ramp)),
                );
                self.audit(&caller, "drain", &target, &reason, &result);
                self.answer(reply, result)
            }
            Command::Undrain {
                target,
                caller,
                reply,
            } => {
                let result = self.drain(&target, None);
                self.audit(&caller, "undrain", &target, "", &result);
                self.answer(reply, result)
            }
            Command::Reload { reply, .. } => {
                // Reloads are loaded by the caller of `run`; one reaching here is a wiring error.
                let _ = reply.send(Err(ApiError::new(
                    500,
                    "reload is not handled by the publisher",
                )));
                Change::None
            }
        }
    }

    /// Answers a drain or undrain: an error at once (nothing changed), success after the
    /// next publish.
    fn answer(
        &mut self,
        reply: oneshot::Sender<Result<serde_json::Value, ApiError>>,
        result: Result<serde_json::Value, ApiError>,
    ) -> Change {
        if result.is_ok() {
            self.replies.push(Reply::Api(reply, result));
            Change::Status
        } else {
            let _ = reply.send(result);
            Change::None
        }
    }

    /// Sets (`Some`) or clears (`None`) a drain, persisting it. Unknown sites and
    /// endpoints are 404s; the state file failing to write is a 500 and changes nothing.
    fn drain(
        &mut self,
        target: &DrainTarget,
        drain: Option<Drain>,
    ) -> Result<serde_json::Value, ApiError> {
        let key = match target {
            // Undraining what an older config had (the drain outlived its site or
            // endpoint) is allowed, so that it does not linger until the name comes back.
            DrainTarget::Site(site)
                if drain.is_none()
                    && !self.model.sites.iter().any(|s| s == site)
                    && self.drains.sites.contains_key(site) =>
            {
                site.clone()
            }
            DrainTarget::Endpoint { profile, endpoint }
                if drain.is_none()
                    && !self
                        .model
                        .profile(profile)
                        .is_some_and(|(_, p)| p.endpoints.iter().any(|e| &e.name == endpoint))
                    && self.drains.find_endpoint_key(profile, endpoint).is_some() =>
            {
                self.drains
                    .find_endpoint_key(profile, endpoint)
                    .unwrap_or_default()
            }
            DrainTarget::Site(site) => {
                if !self.model.sites.iter().any(|s| s == site) {
                    return Err(ApiError::new(
                        404,
                        format!(
                            "no site named {site:?}; the sites are: {}",
                            self.model.sites.join(", ")
                        ),
                    ));
                }
                site.clone()
            }
            DrainTarget::Endpoint { profile, endpoint } => {
                let Some((_, p)) = self.model.profile(profile) else {
                    return Err(ApiError::new(404, format!("no profile named {profile:?}")));
                };
                if !p.endpoints.iter().any(|e| &e.name == endpoint) {
                    return Err(ApiError::new(
                        404,
                        format!("profile {profile:?} has no endpoint named {endpoint:?}"),
                    ));
                }
                Drains::endpoint_key(&p.key, endpoint)
            }
        };
        let mut next = self.drains.clone();
        let map = match target {
            DrainTarget::Site(_) => &mut next.sites,
            DrainTarget::Endpoint { .. } => &mut next.endpoints,
        };
        // Draining what is already drained never brings traffic back: when the drain in
        // force ends no later than the new one would, it stays (with the new reason).
        let drain = drain.map(|d| match map.get(&key) {
            Some(old) if old.ends_at() <= d.ends_at() => Drain {
                reason: d.reason,
                ..old.clone()
            },
            _ => d,
        });
        let was = match &drain {
            Some(d) => map.insert(key, d.clone()),
            None => map.remove(&key),
        };
        if let Some(dir) = &self.state_dir
            && let Err(e) = next.save(dir)
        {
            error!(error = %e, dir = %dir.display(), "cannot save drain state");
            return Err(ApiError::new(
                500,
                format!(
                    "cannot save drain state in {} ({e}); nothing changed",
                    dir.display()
                ),
            ));
        }
        self.drains = next;
        metrics::gauge!(m::DRAINS_ACTIVE).set(self.drains.len() as f64);
        let message = match (&drain, was) {
            (Some(d), _) if d.ends_at() > SystemTime::now() => format!(
                "{target} draining over {}s (disabled at {})",
                d.ramp_ms / 1000,
                rfc3339(d.ends_at())
            ),
            (Some(_), _) => format!("{target} drained"),
            (None, Some(_)) => format!("{target} undrained"),
            (None, None) => format!("{target} was not drained"),
        };
        info!(%target, "{message}");
        Ok(json!({ "message": message, "drains_active": self.drains.len() }))
    }

    fn audit(
        &self,
        caller: &str,
        action: &str,
        target: &DrainTarget,
        reason: &str,
        result: &Result<serde_json::Value, ApiError>,
    ) {
        let Some(dir) = &self.state_dir else { return };
        let entry = AuditEntry {
            time: rfc3339(SystemTime::now()),
            caller: caller.to_owned(),
            action: action.to_owned(),
            target: target.to_string(),
            reason: reason.to_owned(),
            result: match result {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("{}: {}", e.status, e.message),
            },
        };
        if let Err(e) = audit(dir, &entry) {
            error!(error = %e, "cannot write the audit log");
        }
    }

    /// Health per probe target (`Model::targets` order).
    pub fn health(&self) -> &[TargetHealth] {
        &self.health
    }

    /// Applies one event to the state (nothing is published).
    pub fn apply(&mut self, event: Event, now: Instant) -> Change {
        match event {
            Event::Probe(r) => self.apply_probe(r, now),
            Event::Command(c) => self.apply_command(c),
            Event::NewModel {
                model,
                report,
                done,
            } => {
                self.replace_model(model);
                self.set_reload(report);
                self.replies.push(Reply::Done(done));
                Change::Status
            }
            Event::ReloadFailed { report, done } => {
                self.set_reload(report);
                self.replies.push(Reply::Done(done));
                Change::Status
            }
        }
    }

    fn set_reload(&mut self, report: ReloadReport) {
        metrics::counter!(m::RELOADS, "result" => if report.ok { "ok" } else { "error" })
            .increment(1);
        metrics::gauge!(m::GENERATION).set(self.model.generation as f64);
        self.reload = Some(Arc::new(report));
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
        let reason = r.outcome.reason.map(Arc::<str>::from);
        let flip = h.record(r.at, now, r.outcome.ok, r.outcome.rtt, reason);
        if first {
            self.probed += 1;
        }
        if flip.is_some() || (first && self.probed == self.health.len()) {
            Change::Status
        } else {
            Change::Info
        }
    }

    /// Every endpoint's status and reason, from the model and the current health. The
    /// rules, first match wins: `enabled = false` → Disabled; `always_serve` →
    /// AlwaysServe; nested → from its child profile; no monitor → Online; else its
    /// target's status. (Drains slot in first: drained → Disabled.)
    pub fn derive(&self) -> Derived {
        let n = self.model.profiles.len();
        let mut memo: Memo = vec![None; n];
        for p in 0..n {
            self.derive_profile(p, &mut memo, 0);
        }
        memo.into_iter().map(Option::unwrap_or_default).collect()
    }

    fn derive_profile(&self, p: usize, memo: &mut Memo, depth: usize) {
        if memo[p].is_some() {
            return;
        }
        let profile = &self.model.profiles[p];
        let mut out = Vec::with_capacity(profile.endpoints.len());
        let now = SystemTime::now();
        for (ei, e) in profile.endpoints.iter().enumerate() {
            let r = &self.reasons;
            let drain = self.drain_of(p, ei);
            let state = if !e.enabled {
                (Status::Disabled, r.disabled.clone())
            } else if let Some(d) =
                drain.filter(|d| d.effective_weight(e.weight * WEIGHT_SCALE, now).is_none())
            {
                let why = if d.reason.is_empty() {
                    "no reason given"
                } else {
                    &d.reason
                };
                (Status::Disabled, format!("drained: {why}").into())
            } else if e.always_serve {
                (Status::AlwaysServe, r.always_serve.clone())
            } else if let Answer::Nested(child) = e.answer {
                let child = child as usize;
                // Compile rejects cycles and deep nesting; the bound is a second guard.
                if depth < 16 {
                    self.derive_profile(child, memo, depth + 1);
                }
                let states = memo[child].as_deref().unwrap_or_default();
                nested_status(
                    &self.model.profiles[child].key,
                    states,
                    e.min_child_endpoints,
                )
            } else {
                match e.target {
                    None => (Status::Online, r.not_monitored.clone()),
                    Some(t) => {
                        let h = &self.health[t as usize];
                        let reason = match &h.last {
                            None => r.no_result.clone(),
                            Some(last) if last.ok => r.probe_ok.clone(),
                            Some(last) => {
                                last.reason.clone().unwrap_or_else(|| "probe failed".into())
                            }
                        };
                        (h.status(), reason)
                    }
                }
            };
            out.push(state);
        }
        memo[p] = Some(out);
    }

    /// The snapshot for the current state, with endpoint history as of the last publish.
    pub fn rebuild(&self) -> Snapshot {
        self.assemble(&self.derive())
    }

    fn assemble(&self, derived: &Derived) -> Snapshot {
        let now = SystemTime::now();
        let endpoints = self
            .model
            .profiles
            .iter()
            .zip(derived)
            .enumerate()
            .map(|(pi, (p, states))| {
                p.endpoints
                    .iter()
                    .zip(states)
                    .enumerate()
                    .map(|(ei, (e, (status, _)))| EndpointState {
                        status: *status,
                        weight: self
                            .drain_of(pi, ei)
                            .and_then(|d| d.effective_weight(e.weight * WEIGHT_SCALE, now))
                            .unwrap_or(e.weight * WEIGHT_SCALE),
                        rtt: e.target.and_then(|t| self.health[t as usize].rtt.get()),
                    })
                    .collect()
            })
            .collect();
        let health = HealthView {
            targets: self.health.iter().map(TargetHealth::view).collect(),
            endpoints: self.history.clone(),
            first_round_complete: self.ready || self.probed == self.health.len(),
        };
        Snapshot {
            model: self.model.clone(),
            endpoints,
            drains: Arc::new(self.drains.clone()),
            reload: self.reload.clone(),
            health: Arc::new(health),
        }
    }

    /// Derives every endpoint's state, logs and counts each status change since the last
    /// publish, stores the new snapshot, then answers the operator calls it holds. Returns
    /// how many endpoints changed status.
    pub fn publish(&mut self) -> usize {
        let derived = self.derive();
        let now = SystemTime::now();
        let mut changed = 0;
        for (pi, states) in derived.iter().enumerate() {
            let profile = &self.model.profiles[pi];
            for (ei, (status, reason)) in states.iter().enumerate() {
                let view = &mut self.history[pi][ei];
                view.reason = reason.clone();
                let before = self.published[pi][ei];
                if before == *status {
                    continue;
                }
                changed += 1;
                view.transitions = view.transitions.saturating_add(1);
                view.since = Some(now);
                self.published[pi][ei] = *status;
                let endpoint = &profile.endpoints[ei];
                log_transition(&profile.key, &endpoint.name, before, *status, reason);
                metrics::counter!(m::TRANSITIONS, "to" => status.as_str()).increment(1);
            }
        }
        let snapshot = self.assemble(&derived);
        self.shared.store(Arc::new(snapshot));
        for r in self.replies.drain(..) {
            r.send();
        }
        changed
    }

    /// Switches to a new config generation (reload). Targets identical in both keep their
    /// health; endpoints with the same profile and name keep their status history.
    pub fn replace_model(&mut self, model: Arc<Model>) {
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
        // New endpoints start from their derived status, without a logged transition.
        let derived = self.derive();
        self.published = Vec::with_capacity(derived.len());
        self.history = Vec::with_capacity(derived.len());
        for (prev, now) in previous.into_iter().zip(&derived) {
            let (published, history) = prev
                .into_iter()
                .zip(now)
                .map(|(prev, (status, reason))| {
                    prev.unwrap_or_else(|| {
                        let view = EndpointView {
                            reason: reason.clone(),
                            ..EndpointView::default()
                        };
                        (*status, view)
                    })
                })
                .unzip();
            self.published.push(published);
            self.history.push(history);
        }
    }

    /// Publishes the current state, then applies events until every sender is gone,
    /// publishing coalesced changes.
    pub async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        use tokio::time::{Instant as TokioInstant, sleep_until};
        self.publish();
        metrics::gauge!(m::GENERATION).set(self.model.generation as f64);
        metrics::gauge!(m::DRAINS_ACTIVE).set(self.drains.len() as f64);
        let mut last_publish = TokioInstant::now();
        let mut due: Option<TokioInstant> = self
            .ramping(SystemTime::now())
            .then(|| last_publish + RAMP_STEP);
        loop {
            if let Some(d) = due
                && TokioInstant::now() >= d
            {
                self.publish();
                last_publish = TokioInstant::now();
                due = self
                    .ramping(SystemTime::now())
                    .then(|| last_publish + RAMP_STEP);
            }
            let event = match due {
                None => events.recv().await,
                Some(d) => tokio::select! {
                    e = events.recv() => e,
                    _ = sleep_until(d) => continue,
                },
            };
            let Some(event) = event else {
                if due.is_some() {
                    self.publish();
                }
                return;
            };
            let now = TokioInstant::now();
            let when = match self.apply(event, now.into_std()) {
                Change::None => None,
                // An operator waits for the answer: publish now.
                _ if !self.replies.is_empty() => Some(now),
                Change::Status => Some(now + self.options.status_delay),
                Change::Info => Some((last_publish + self.options.info_period).max(now)),
            };
            // While a drain ramps, weights move with time: republish every RAMP_STEP.
            let when = match (when, self.ramping(SystemTime::now())) {
                (w, true) => Some(w.map_or(now + RAMP_STEP, |w| w.min(now + RAMP_STEP))),
                (w, false) => w,
            };
            if let Some(when) = when {
                due = Some(due.map_or(when, |d| d.min(when)));
            }
        }
    }
}

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
        .map(|eps| eps.iter().map(|(s, _)| *s).collect())
        .collect()
}

/// A nested endpoint is Online while its child profile has at least `min` endpoints
/// Online or AlwaysServe; while endpoints that could make up the number are still
/// CheckingEndpoint, it is CheckingEndpoint (served, as its children are); else Degraded.
fn nested_status(child: &str, states: &[(Status, Arc<str>)], min: u32) -> (Status, Arc<str>) {
    let up = states
        .iter()
        .filter(|(s, _)| matches!(s, Status::Online | Status::AlwaysServe))
        .count();
    let checking = states
        .iter()
        .filter(|(s, _)| *s == Status::CheckingEndpoint)
        .count();
    let min = min as usize;
    let total = states.len();
    if up >= min {
        (
            Status::Online,
            format!("child profile {child}: {up} of {total} endpoints Online").into(),
        )
    } else if up + checking >= min {
        (
            Status::CheckingEndpoint,
            format!("child profile {child}: waiting for probes").into(),
        )
    } else {
        (
            Status::Degraded,
            format!("child profile {child}: {up} of {total} endpoints Online, min_child_endpoints = {min}").into(),
        )
    }
}

/// The status gauge series of endpoint `ei` of profile `pi` for `status`.
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

    /// Compiles `profiles` (TOML) with a `gslb.example` zone.
    fn model(profiles: &str, generation: u64) -> Arc<Model> {
        crate::policy::testutil::try_load_generation(profiles, generation)
            .unwrap_or_else(|p| panic!("{p}"))
            .model
    }

    const PROFILES: &str = r#"
[monitors.web]
port = 8080
tolerated_failures = 1
rise = 2
interval = "1s"

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
        let shared: Shared = Arc::new(ArcSwap::from_pointee(Snapshot::initial(m.clone())));
        (
            Publisher::new(m, shared.clone(), PublisherOptions::default()),
            shared,
        )
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
            },
        })
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
        p.publish();
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
        let initial = Snapshot::initial(s.model.clone());
        assert_eq!(initial.endpoints, s.endpoints);
    }

    #[test]
    fn a_shared_target_moves_every_endpoint_that_uses_it() {
        let m = model(PROFILES, 1);
        let t = target_of(&m, "app.gslb.example", "a");
        assert_eq!(t, target_of(&m, "other.gslb.example", "a-too"));
        let (mut p, shared) = publisher(m);
        let now = Instant::now();
        assert_eq!(p.apply(probe(1, t, true, ""), now), Change::Status);
        assert_eq!(p.apply(probe(1, t, true, ""), now), Change::Info);
        assert_eq!(p.publish(), 2);
        assert_eq!(
            status(&shared.load(), "other.gslb.example", "a-too"),
            Status::Online
        );

        // tolerated_failures = 1: the first failure is tolerated, the second is not.
        assert_eq!(
            p.apply(probe(1, t, false, "status 503 not in 200-299"), now),
            Change::Info
        );
        assert_eq!(p.publish(), 0);
        assert_eq!(
            p.apply(probe(1, t, false, "status 503 not in 200-299"), now),
            Change::Status
        );
        // a, a-too, and top's nested endpoint (its child now has too few endpoints up).
        assert_eq!(p.publish(), 3);
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
            p.apply(probe(1, t, true, ""), now);
            p.publish();
            assert_eq!(status(&shared.load(), "app.gslb.example", "a"), want);
        }
    }

    #[test]
    fn nested_endpoint_follows_its_child_profile() {
        let m = model(PROFILES, 1);
        let (a, b) = (
            target_of(&m, "app.gslb.example", "a"),
            target_of(&m, "app.gslb.example", "b"),
        );
        let (mut p, shared) = publisher(m);
        let now = Instant::now();
        // Child: a, b probed + pinned (AlwaysServe); min_child_endpoints = 3.
        for (target, want) in [(a, Status::CheckingEndpoint), (b, Status::Online)] {
            p.apply(probe(1, target, true, ""), now);
            p.publish();
            assert_eq!(status(&shared.load(), "top.gslb.example", "nested"), want);
        }
        for _ in 0..2 {
            p.apply(probe(1, b, false, "connection refused"), now);
        }
        p.publish();
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
        assert_eq!(p.apply(probe(4, 0, true, ""), now), Change::None);
        assert_eq!(p.apply(probe(5, 99, true, ""), now), Change::None);
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
            p.apply(probe(1, t, true, ""), now);
        }
        assert_eq!(
            p.apply(probe(1, n - 1, false, "connection refused"), now),
            Change::Status
        );
        p.publish();
        assert!(shared.load().health.first_round_complete);

        // A reload that adds a target (no result yet) keeps the server ready.
        let more = PROFILES.replace("port = 22", "port = 23");
        p.replace_model(model(&more, 2));
        p.publish();
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
        p.apply(probe(1, a, true, ""), now);
        for _ in 0..2 {
            p.apply(probe(1, b, false, "connection refused"), now);
        }
        p.publish();
        // Generation 2: b's probe address changes, a stays.
        let m2 = model(
            &PROFILES.replace("address = \"192.0.2.2\"", "address = \"192.0.2.22\""),
            2,
        );
        p.replace_model(m2.clone());
        // b (Degraded → CheckingEndpoint) and, with it, top's nested endpoint.
        assert_eq!(p.publish(), 2);
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
            p.apply(probe(1, a2, true, ""), now),
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
            );
            p.publish();
            let message = answer.try_recv().unwrap().unwrap()["message"].clone();
            let d = p.drains().endpoints["static.gslb.example/s"].clone();
            (d, message)
        };
        let (first, _) = drain("slow", 600);
        assert_eq!(first.ramp_ms, 600_000);
        // A longer ramp keeps the first one's timing, with the new reason.
        let (second, message) = drain("slower", 3600);
        assert_eq!((second.since_ms, second.ramp_ms), (first.since_ms, 600_000));
        assert_eq!(second.reason, "slower");
        assert!(
            message.as_str().unwrap().contains("draining over 600s"),
            "{message}"
        );
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
        let began = SystemTime::now() - Duration::from_secs(5);
        drains.endpoints.insert(
            Drains::endpoint_key("app.gslb.example", "a"),
            Drain::new("ramp", began, Duration::from_secs(10)),
        );
        let p = p.with_drains(drains, dir.path().to_owned());
        let s = p.rebuild();
        let (pi, _) = s.model.profile("app.gslb.example").unwrap();
        let (a, b) = (s.endpoints[pi as usize][0], s.endpoints[pi as usize][1]);
        assert_eq!(a.status, Status::CheckingEndpoint);
        assert_eq!(b.weight, WEIGHT_SCALE);
        assert!((440..=500).contains(&a.weight), "{}", a.weight);
        assert!((0.44..=0.5).contains(&a.effective_weight()));
    }

    /// Every endpoint has its status series at 1 on `/metrics`, not only those that
    /// changed status; after a reload an endpoint that is gone has none, and the answer
    /// counts of endpoints in both generations carry over.
    #[test]
    fn every_endpoint_has_its_status_series_and_counts_survive_a_reload() {
        let (mut p, shared) = publisher(model(PROFILES, 1));
        p.publish();
        let page = || {
            let mut out = String::new();
            crate::metrics::render_endpoints(&shared.load(), &mut out);
            out
        };
        let text = page();
        for line in [
            r#"signpost_endpoint_status{profile="static.gslb.example",endpoint="s",site="",status="Online"} 1"#,
            r#"signpost_endpoint_status{profile="app.gslb.example",endpoint="off",site="",status="Disabled"} 1"#,
            r#"signpost_endpoint_status{profile="app.gslb.example",endpoint="b",site="",status="CheckingEndpoint"} 1"#,
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
        p.replace_model(model(&without_b, 2));
        p.publish();
        let text = page();
        assert!(!text.contains(r#"endpoint="b""#), "{text}");
        assert!(
            text.contains(r#"signpost_endpoint_status{profile="app.gslb.example",endpoint="c",site="",status="CheckingEndpoint"} 1"#),
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
        let (p, shared) = publisher(model(PROFILES, 1));
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(p.run(rx));
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
        assert_eq!(v["message"], "endpoint static.gslb.example/s drained");
        assert_eq!(
            status(&shared.load(), "static.gslb.example", "s"),
            Status::Disabled
        );
        let (reply, answer) = oneshot::channel();
        tx.send(drain("nope", reply)).await.unwrap();
        assert_eq!(answer.await.unwrap().unwrap_err().status, 404);

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

    #[tokio::test(start_paused = true)]
    async fn run_coalesces_and_publishes_status_changes_quickly() {
        let m = model(PROFILES, 1);
        let (a, b) = (
            target_of(&m, "app.gslb.example", "a"),
            target_of(&m, "app.gslb.example", "b"),
        );
        let (p, shared) = publisher(m);
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(p.run(rx));
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
