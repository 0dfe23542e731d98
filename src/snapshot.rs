//! The one immutable view of everything the DNS path reads: the compiled model (zones,
//! profiles) and every endpoint's current status. Published through a single `ArcSwap`;
//! DNS workers load it per query and never lock.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use serde::Serialize;

pub use crate::base::Status;

use crate::drain::Drains;
use crate::health::HealthView;
use crate::model::Model;
use crate::zone::Zone;

/// [`EndpointState::weight`] is in these fractions of a configured weight: the configured
/// weight (1 to 1000) times 1000, lowered by a drain ramp. Fine enough that a ramp lowers
/// even the default weight of 1 smoothly; routing only compares weights, so the unit does
/// not matter to it.
pub const WEIGHT_SCALE: u32 = 1000;

/// An endpoint's dynamic state as of one snapshot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EndpointState {
    pub status: Status,
    /// Weight in 1/[`WEIGHT_SCALE`] units, after a drain ramp (the configured weight ×
    /// [`WEIGHT_SCALE`] when not ramping).
    pub weight: u32,
    /// Smoothed probe round-trip time from this instance.
    pub rtt: Option<Duration>,
}

impl EndpointState {
    /// The weight in the config's units (to 1/1000), e.g. 0.667 for a weight of 1 a third
    /// of the way into its drain ramp.
    pub fn effective_weight(&self) -> f64 {
        f64::from(self.weight) / f64::from(WEIGHT_SCALE)
    }
}

/// A profile's answer TTL as of one snapshot, and why it is short (DESIGN.md, "Health
/// semantics": health-aware TTL). Decided by the writer when it publishes
/// (`status::stability`), so the DNS path only reads `ttl`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProfileState {
    /// The TTL of the profile's answers: `ttl`, or min(`ttl`, `ttl_unstable`) while the
    /// profile is unstable.
    pub ttl: u32,
    /// Why the profile is unstable; empty when it is stable.
    pub unstable: Vec<Unstable>,
    /// When the last recent status change stops making the profile unstable (the writer
    /// publishes again then).
    pub changed_until: Option<SystemTime>,
}

impl ProfileState {
    /// A stable profile answering with `ttl`.
    pub fn stable(ttl: u32) -> Self {
        Self {
            ttl,
            unstable: Vec::new(),
            changed_until: None,
        }
    }
}

/// Why a profile is unstable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unstable {
    /// An endpoint that answers (Online or CheckingEndpoint) failed its latest probe: it
    /// is being confirmed. Index into the profile's endpoints.
    FailedProbe { endpoint: u32 },
    /// An endpoint that answers has a probe in flight with no answer for
    /// `retry_interval` (shorter than its `timeout`): it may be hung. Index into the
    /// profile's endpoints.
    UnansweredProbe { endpoint: u32 },
    /// No endpoint is eligible and `all_down = "serve_all"` answers with every enabled one.
    AllDown,
    /// An endpoint changed status at `at`, less than one `ttl` ago.
    Changed { endpoint: u32, at: SystemTime },
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
    /// Per profile (same order as the model): the TTL its answers carry now, and why.
    pub profiles: Vec<ProfileState>,
    /// Operator drains in force.
    pub drains: Arc<Drains>,
    /// The last reload attempt, if any since start.
    pub reload: Option<Arc<ReloadReport>>,
    /// Probe details for the admin API (last probe, RTT, transitions); not read by the
    /// DNS path.
    pub health: Arc<HealthView>,
}

impl Snapshot {
    pub fn generation(&self) -> u64 {
        self.model.generation
    }

    /// The most specific served zone holding `qname` (lowercase wire form).
    pub fn find_zone(&self, qname: &[u8]) -> Option<&Zone> {
        self.model.find_zone(qname)
    }

    /// The TTL of profile `profile`'s answers now (what the query path reads).
    #[inline]
    pub fn ttl(&self, profile: u32) -> u32 {
        self.profiles
            .get(profile as usize)
            .map_or_else(|| self.model.profiles[profile as usize].ttl, |p| p.ttl)
    }

    pub fn zones(&self) -> &[Zone] {
        &self.model.zones
    }
}

/// The published snapshot.
pub type Shared = Arc<ArcSwap<Snapshot>>;
