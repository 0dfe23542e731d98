//! The one immutable view of everything the DNS path reads: the compiled model (zones,
//! profiles) and every endpoint's current status. Published through a single `ArcSwap`;
//! DNS workers load it per query and never lock.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::drain::Drains;
use crate::health::HealthView;
use crate::model::Model;
use crate::zone::Zone;

/// An endpoint's status (DESIGN.md, "Health semantics").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Status {
    /// Probed, no result yet; served.
    CheckingEndpoint,
    /// Probes succeed; served.
    Online,
    /// More than `tolerated_failures` consecutive failures; not served.
    Degraded,
    /// `enabled = false` or drained; not probed, not served.
    Disabled,
    /// `always_serve = true`; not probed, always served.
    AlwaysServe,
}

impl Status {
    /// Whether routing may answer with the endpoint.
    pub fn eligible(self) -> bool {
        matches!(
            self,
            Status::CheckingEndpoint | Status::Online | Status::AlwaysServe
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::CheckingEndpoint => "CheckingEndpoint",
            Status::Online => "Online",
            Status::Degraded => "Degraded",
            Status::Disabled => "Disabled",
            Status::AlwaysServe => "AlwaysServe",
        }
    }
}

/// An endpoint's dynamic state as of one snapshot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EndpointState {
    pub status: Status,
    /// Weight after a drain ramp (equals the configured weight when not ramping).
    pub weight: u32,
    /// Smoothed probe round-trip time from this instance.
    pub rtt: Option<Duration>,
}

/// The outcome of the last reload attempt, shown by the status API and page.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReloadReport {
    /// RFC 3339 time of the attempt.
    pub time: String,
    pub ok: bool,
    /// The generation served after the attempt.
    pub generation: u64,
    /// Why it failed (every problem, one per line), or empty.
    pub message: String,
}

/// What the DNS path answers from.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub model: Arc<Model>,
    /// Per profile, per endpoint (same order as the model).
    pub endpoints: Vec<Vec<EndpointState>>,
    /// Operator drains in force.
    pub drains: Arc<Drains>,
    /// The last reload attempt, if any since start.
    pub reload: Option<Arc<ReloadReport>>,
    /// Probe details for the admin API (last probe, RTT, transitions); not read by the
    /// DNS path.
    pub health: Arc<HealthView>,
}

impl Snapshot {
    /// A snapshot with every endpoint in its initial status (before any probe).
    pub fn initial(model: Arc<Model>) -> Self {
        let endpoints = model
            .profiles
            .iter()
            .map(|p| {
                p.endpoints
                    .iter()
                    .map(|e| EndpointState {
                        status: if !e.enabled {
                            Status::Disabled
                        } else if e.always_serve {
                            Status::AlwaysServe
                        } else if e.target.is_none()
                            && !matches!(e.answer, crate::model::Answer::Nested(_))
                        {
                            // Not monitored: nothing will ever say it is down.
                            Status::Online
                        } else {
                            Status::CheckingEndpoint
                        },
                        weight: e.weight,
                        rtt: None,
                    })
                    .collect()
            })
            .collect();
        let health = Arc::new(HealthView::initial(&model));
        let mut snap = Self {
            model,
            endpoints,
            drains: Arc::default(),
            reload: None,
            health,
        };
        crate::policy::derive_nested_statuses(&mut snap);
        snap
    }

    pub fn generation(&self) -> u64 {
        self.model.generation
    }

    /// The most specific served zone holding `qname` (lowercase wire form).
    pub fn find_zone(&self, qname: &[u8]) -> Option<&Zone> {
        self.model.find_zone(qname)
    }

    pub fn zones(&self) -> &[Zone] {
        &self.model.zones
    }
}

/// The published snapshot.
pub type Shared = Arc<ArcSwap<Snapshot>>;

impl Snapshot {
    /// The last probe of a target, for the status API (`null` when not probed yet).
    pub fn probe_json(&self, target: Option<u32>) -> serde_json::Value {
        let last = target.and_then(|t| self.health.targets.get(t as usize)?.last.as_ref());
        match last {
            None => serde_json::Value::Null,
            Some(l) => serde_json::json!({
                "time": crate::drain::rfc3339(l.at),
                "ok": l.ok,
                "rtt_ms": l.rtt.as_secs_f64() * 1000.0,
                "reason": l.reason.as_deref(),
            }),
        }
    }
}
