//! The one rule for an endpoint's status (DESIGN.md, "Health semantics"): a pure function
//! of the compiled model, each probe target's status, the drains in force and `now`.
//! The first snapshot and every snapshot the writer publishes are built with it, so the
//! DNS path, `explain`, the status page and metrics all see one answer.
//!
//! First match wins, per endpoint:
//! 1. `enabled = false` → Disabled;
//! 2. a drain whose ramp has ended → Disabled (while it ramps, only the weight falls);
//! 3. `always_serve` → AlwaysServe;
//! 4. nested → from its child profile ([`nested_status`]);
//! 5. no monitor → Online;
//! 6. else its probe target's status.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use crate::base::Status;
use crate::config::AllDown;
use crate::drain::Drains;
use crate::health::{EndpointView, HealthView, TargetHealth};
// Compile rejects nesting cycles and nesting deeper than this; here it is a second guard.
use crate::model::{Answer, MAX_NESTING, Model};
use crate::snapshot::{EndpointState, ProfileState, Snapshot, Unstable, WEIGHT_SCALE};

/// What the rule needs of one probe target: its status and why.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetStatus {
    pub status: Status,
    pub reason: Arc<str>,
}

impl TargetStatus {
    /// A target's own view, from its probe history.
    pub fn of(h: &TargetHealth) -> Self {
        let reason = match &h.last {
            None => REASONS.no_result.clone(),
            Some(last) if last.ok => REASONS.probe_ok.clone(),
            Some(last) => last
                .reason
                .clone()
                .unwrap_or_else(|| REASONS.probe_failed.clone()),
        };
        Self {
            status: h.status(),
            reason,
        }
    }

    /// Before any probe.
    pub fn unprobed() -> Self {
        Self {
            status: Status::CheckingEndpoint,
            reason: REASONS.no_result.clone(),
        }
    }
}

/// One endpoint's derived state.
#[derive(Clone, Debug, PartialEq)]
pub struct Derivation {
    pub status: Status,
    /// Why it has its status ("probe ok", "drained: maintenance", …).
    pub reason: Arc<str>,
    /// Weight in 1/[`WEIGHT_SCALE`] units after a drain ramp.
    pub weight: u32,
}

/// Per profile, per endpoint (model order).
pub type Derived = Vec<Vec<Derivation>>;

/// Fixed reasons, allocated once.
struct Reasons {
    disabled: Arc<str>,
    always_serve: Arc<str>,
    not_monitored: Arc<str>,
    no_result: Arc<str>,
    probe_ok: Arc<str>,
    probe_failed: Arc<str>,
}

static REASONS: LazyLock<Reasons> = LazyLock::new(|| Reasons {
    disabled: "disabled in config".into(),
    always_serve: "always_serve".into(),
    not_monitored: "not monitored".into(),
    no_result: "no probe result yet".into(),
    probe_ok: "probe ok".into(),
    probe_failed: "probe failed".into(),
});

/// Every endpoint's status, reason and weight. `targets` is per probe target
/// (`Model::targets` order).
pub fn derive(
    model: &Model,
    targets: &[TargetStatus],
    drains: &Drains,
    now: SystemTime,
) -> Derived {
    let n = model.profiles.len();
    let mut memo: Vec<Option<Vec<Derivation>>> = vec![None; n];
    for p in 0..n {
        derive_profile(model, targets, drains, now, p, &mut memo, 0);
    }
    memo.into_iter().map(Option::unwrap_or_default).collect()
}

fn derive_profile(
    model: &Model,
    targets: &[TargetStatus],
    drains: &Drains,
    now: SystemTime,
    p: usize,
    memo: &mut Vec<Option<Vec<Derivation>>>,
    depth: usize,
) {
    if memo[p].is_some() {
        return;
    }
    let profile = &model.profiles[p];
    let mut out = Vec::with_capacity(profile.endpoints.len());
    for e in &profile.endpoints {
        let full = e.weight * WEIGHT_SCALE;
        let site = e.site.map(|s| model.sites[s as usize].as_str());
        let drain = drains.for_endpoint(&profile.key, &e.name, site);
        let ramped = drain.map(|d| d.effective_weight(full, now));
        let weight = ramped.flatten().unwrap_or(full);
        let (status, reason) = if !e.enabled {
            (Status::Disabled, REASONS.disabled.clone())
        } else if let (Some(d), Some(None)) = (drain, ramped) {
            let why = if d.reason.is_empty() {
                "no reason given"
            } else {
                &d.reason
            };
            (Status::Disabled, format!("drained: {why}").into())
        } else if e.always_serve {
            (Status::AlwaysServe, REASONS.always_serve.clone())
        } else if let Answer::Nested(child) = e.answer {
            let child = child as usize;
            if depth < MAX_NESTING {
                derive_profile(model, targets, drains, now, child, memo, depth + 1);
            }
            let states = memo[child].as_deref().unwrap_or_default();
            nested_status(
                &model.profiles[child].key,
                states.iter().map(|d| d.status),
                e.min_child_endpoints,
            )
        } else {
            match e.target.and_then(|t| targets.get(t as usize)) {
                None => (Status::Online, REASONS.not_monitored.clone()),
                Some(t) => (t.status, t.reason.clone()),
            }
        };
        out.push(Derivation {
            status,
            reason,
            weight,
        });
    }
    memo[p] = Some(out);
}

/// A nested endpoint is Online while its child profile has at least `min` endpoints
/// Online or AlwaysServe; while endpoints that could make up the number are still
/// CheckingEndpoint, it is CheckingEndpoint (served, as its children are); else Degraded.
pub fn nested_status(
    child: &str,
    states: impl Iterator<Item = Status>,
    min: u32,
) -> (Status, Arc<str>) {
    let (up, checking, total) = child_counts(states);
    let min = min as usize;
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
            format!(
                "child profile {child}: {up} of {total} endpoints Online, min_child_endpoints = {min}"
            )
            .into(),
        )
    }
}

/// How many of `states` are Online or AlwaysServe, how many CheckingEndpoint, and how
/// many there are.
pub fn child_counts(states: impl Iterator<Item = Status>) -> (usize, usize, usize) {
    let (mut up, mut checking, mut total) = (0, 0, 0);
    for s in states {
        total += 1;
        match s {
            Status::Online | Status::AlwaysServe => up += 1,
            Status::CheckingEndpoint => checking += 1,
            Status::Degraded | Status::Disabled => {}
        }
    }
    (up, checking, total)
}

/// The endpoint states a snapshot carries, from a derivation.
pub fn endpoint_states(
    model: &Model,
    derived: &Derived,
    rtt: impl Fn(u32) -> Option<std::time::Duration>,
) -> Vec<Vec<EndpointState>> {
    model
        .profiles
        .iter()
        .zip(derived)
        .map(|(p, states)| {
            p.endpoints
                .iter()
                .zip(states)
                .map(|(e, d)| EndpointState {
                    status: d.status,
                    weight: d.weight,
                    rtt: e.target.and_then(&rtt),
                })
                .collect()
        })
        .collect()
}

/// Why a probe target is in doubt, as [`stability`] needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Doubt {
    /// Its latest counted probe failed: the failure is being confirmed.
    Failed,
    /// Its probe in flight has had no answer for `retry_interval` (overdue).
    Unanswered,
}

/// The health-aware TTL rule (DESIGN.md, "Health semantics"): per profile, whether it is
/// unstable at `now` and the TTL its answers carry. A profile is unstable while
/// - an endpoint that answers (Online or CheckingEndpoint) is in doubt (`doubt`, per
///   probe target): it failed its latest probe and the failure is being confirmed, or
///   its probe in flight is overdue (no answer for `retry_interval`, before `timeout`);
/// - no endpoint is eligible and `all_down = "serve_all"` answers anyway;
/// - an endpoint changed status less than one `ttl` ago (`history`: when each endpoint
///   entered its status, as published).
///
/// A Degraded or Disabled endpoint whose probes keep failing does not make its profile
/// unstable: it is in no answer (unless the all-down fallback serves it, which counts).
/// Unstable answers carry min(`ttl`, `ttl_unstable`).
pub fn stability(
    model: &Model,
    derived: &Derived,
    doubt: impl Fn(u32) -> Option<Doubt>,
    history: &[Vec<EndpointView>],
    now: SystemTime,
) -> Vec<ProfileState> {
    model
        .profiles
        .iter()
        .zip(derived)
        .enumerate()
        .map(|(pi, (p, states))| {
            let mut unstable = Vec::new();
            let mut changed_until: Option<SystemTime> = None;
            let mut eligible = false;
            let mut served_by_fallback = false;
            for (ei, (e, d)) in p.endpoints.iter().zip(states).enumerate() {
                let endpoint = ei as u32;
                eligible |= d.weight > 0 && d.status.eligible();
                served_by_fallback |= d.status != Status::Disabled;
                let answers = matches!(d.status, Status::Online | Status::CheckingEndpoint);
                match e.target.filter(|_| answers).and_then(&doubt) {
                    Some(Doubt::Failed) => unstable.push(Unstable::FailedProbe { endpoint }),
                    Some(Doubt::Unanswered) => {
                        unstable.push(Unstable::UnansweredProbe { endpoint });
                    }
                    None => {}
                }
                let since = history
                    .get(pi)
                    .and_then(|h| h.get(ei))
                    .and_then(|v| v.since);
                if let Some(at) = since {
                    let until = at + Duration::from_secs(u64::from(p.ttl));
                    if now < until {
                        unstable.push(Unstable::Changed { endpoint, at });
                        changed_until = Some(changed_until.map_or(until, |u| u.max(until)));
                    }
                }
            }
            if !eligible && served_by_fallback && p.all_down == AllDown::ServeAll {
                unstable.push(Unstable::AllDown);
            }
            let ttl = if unstable.is_empty() {
                p.ttl
            } else {
                p.ttl.min(p.ttl_unstable)
            };
            ProfileState {
                ttl,
                unstable,
                changed_until,
            }
        })
        .collect()
}

/// Why profile `profile` of `snap` is unstable, in words (for `explain` and the status
/// API); empty when it is stable.
pub fn unstable_reasons(snap: &Snapshot, profile: usize) -> Vec<String> {
    let Some(state) = snap.profiles.get(profile) else {
        return Vec::new();
    };
    let p = &snap.model.profiles[profile];
    state
        .unstable
        .iter()
        .map(|u| match *u {
            Unstable::FailedProbe { endpoint } => {
                let e = &p.endpoints[endpoint as usize];
                let why = snap
                    .health
                    .probe_of(&snap.model, profile, endpoint as usize)
                    .and_then(|t| t.last.as_ref()?.reason.clone());
                format!(
                    "endpoint {} failed its latest probe ({}) and is being confirmed",
                    e.name,
                    why.as_deref().unwrap_or("probe failed")
                )
            }
            Unstable::UnansweredProbe { endpoint } => {
                let e = &p.endpoints[endpoint as usize];
                let since = snap
                    .health
                    .probe_of(&snap.model, profile, endpoint as usize)
                    .and_then(|t| t.overdue_since);
                format!(
                    "endpoint {}'s probe started at {} has had no answer for retry_interval",
                    e.name,
                    since.map_or_else(|| "?".to_owned(), crate::drain::rfc3339)
                )
            }
            Unstable::AllDown => {
                "no endpoint is eligible; all_down = \"serve_all\" answers with every enabled endpoint"
                    .to_owned()
            }
            Unstable::Changed { endpoint, at } => {
                let e = &p.endpoints[endpoint as usize];
                let now = snap.endpoints[profile][endpoint as usize].status;
                format!(
                    "endpoint {} became {} at {}, less than ttl = {}s before this snapshot",
                    e.name,
                    now.as_str(),
                    crate::drain::rfc3339(at),
                    p.ttl
                )
            }
        })
        .collect()
}

/// The snapshot of a freshly loaded model, before any probe result or drain: what
/// `signpost check` compiles and what serving starts from.
pub fn initial_snapshot(model: Arc<Model>) -> Snapshot {
    let targets = vec![TargetStatus::unprobed(); model.targets.len()];
    let derived = derive(&model, &targets, &Drains::default(), SystemTime::UNIX_EPOCH);
    let endpoints = endpoint_states(&model, &derived, |_| None);
    let health = Arc::new(HealthView::initial(&model));
    let profiles = model
        .profiles
        .iter()
        .map(|p| ProfileState::stable(p.ttl))
        .collect();
    Snapshot {
        model,
        endpoints,
        profiles,
        drains: Arc::default(),
        reload: None,
        health,
    }
}

/// Re-applies the nested rule to a snapshot whose other endpoints' statuses were set by
/// hand (policy tests and benches that pose a health situation directly).
pub fn rederive_nested(snap: &mut Snapshot) {
    let model = snap.model.clone();
    let n = model.profiles.len();
    let mut done = vec![false; n];
    for p in 0..n {
        renest_profile(&model, snap, p, &mut done, 0);
    }
}

fn renest_profile(model: &Model, snap: &mut Snapshot, p: usize, done: &mut [bool], depth: usize) {
    if done[p] {
        return;
    }
    done[p] = true;
    for (ei, e) in model.profiles[p].endpoints.iter().enumerate() {
        let Answer::Nested(child) = e.answer else {
            continue;
        };
        if matches!(
            snap.endpoints[p][ei].status,
            Status::Disabled | Status::AlwaysServe
        ) {
            continue;
        }
        let child = child as usize;
        if depth < MAX_NESTING {
            renest_profile(model, snap, child, done, depth + 1);
        }
        let states = snap.endpoints[child].iter().map(|s| s.status);
        let (status, _) = nested_status(&model.profiles[child].key, states, e.min_child_endpoints);
        snap.endpoints[p][ei].status = status;
    }
}
