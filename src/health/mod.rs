//! Health probing: is each probe target alive, and how fast does it answer?
//!
//! - [`probe`] runs one HTTP, HTTPS or TCP check against one target, with its `timeout`
//!   enforced end to end;
//! - [`hysteresis`] turns a stream of probe results into a status (CheckingEndpoint →
//!   Online / Degraded) with `tolerated_failures` and `rise`, plus a smoothed RTT;
//! - [`scheduler`] probes every distinct target once per interval, spread out and with
//!   bounded concurrency, and sends the results to the publisher.
//!
//! Nothing here touches the published snapshot: the publisher (the single writer above this layer)
//! is the only writer. The types at the bottom of this file are the read-only view of probe state
//! that each snapshot carries for the admin API.

pub mod hysteresis;
pub mod probe;
pub mod scheduler;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::base::Status;
use crate::model::Model;

pub use hysteresis::{Ewma, Hysteresis, TargetHealth};
pub use probe::{ProbeOutcome, Prober, ProberOptions};
pub use scheduler::{ProbeEvent, ProbeResult};
pub(crate) use scheduler::{Scheduler, SchedulerOptions};

/// Probe results, by outcome (the scheduler counts superseded ones, the writer the rest).
pub const PROBE_RESULTS: &str = "signpost_probe_results_total";
/// Probes not made because this host ran out of descriptors, buffers or memory.
pub const PROBE_LOCAL_ERRORS: &str = "signpost_probe_local_errors_total";

/// The last probe of a target, as shown by the status API.
#[derive(Clone, Debug, PartialEq)]
pub struct LastProbe {
    /// When the probe started (wall clock).
    pub at: SystemTime,
    pub ok: bool,
    /// How long the probe took: connect (when no pooled connection was reused), request,
    /// response headers and body; for a failure, the time until it failed.
    pub rtt: Duration,
    /// Why the probe failed; `None` when it succeeded.
    pub reason: Option<Arc<str>>,
}

/// One probe target's health as of a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetView {
    /// The target's own status: CheckingEndpoint, Online or Degraded.
    pub status: Status,
    pub last: Option<LastProbe>,
    /// When the last successful probe started.
    pub last_success: Option<SystemTime>,
    /// Smoothed round-trip time of successful probes.
    pub rtt: Option<Duration>,
    /// How many times the status changed since the target was first probed.
    pub transitions: u32,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    /// When the probe in flight started, while it is overdue: unanswered for
    /// `retry_interval` ([`ProbeEvent::Overdue`]).
    pub overdue_since: Option<SystemTime>,
}

/// One endpoint's status history as of a snapshot.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EndpointView {
    /// How many times the endpoint's published status changed.
    pub transitions: u32,
    /// When the endpoint entered its current status; `None` since startup.
    pub since: Option<SystemTime>,
    /// Why the endpoint has its status ("probe ok", "status 503 not in 200-299", …).
    pub reason: Arc<str>,
}

/// Probe state carried by a snapshot, so the admin API reads it without locks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthView {
    /// Per probe target, same order as `Model::targets`.
    pub targets: Vec<TargetView>,
    /// Per profile, per endpoint, same order as the model.
    pub endpoints: Vec<Vec<EndpointView>>,
    /// Every probe target has had at least one result (what `/readyz` waits for); once
    /// true, it stays true across reloads.
    pub first_round_complete: bool,
}

impl HealthView {
    /// The view before any probe: every target CheckingEndpoint.
    pub fn initial(model: &Model) -> Self {
        let targets = model
            .targets
            .iter()
            .map(|_| TargetView {
                status: Status::CheckingEndpoint,
                last: None,
                last_success: None,
                rtt: None,
                transitions: 0,
                consecutive_failures: 0,
                consecutive_successes: 0,
                overdue_since: None,
            })
            .collect();
        let endpoints = model
            .profiles
            .iter()
            .map(|p| vec![EndpointView::default(); p.endpoints.len()])
            .collect();
        Self {
            targets,
            endpoints,
            first_round_complete: model.targets.is_empty(),
        }
    }

    /// The probe state behind endpoint `endpoint` of profile `profile`, when it is probed.
    pub fn probe_of(&self, model: &Model, profile: usize, endpoint: usize) -> Option<&TargetView> {
        let t = model
            .profiles
            .get(profile)?
            .endpoints
            .get(endpoint)?
            .target?;
        self.targets.get(t as usize)
    }
}
