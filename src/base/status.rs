//! An endpoint's status (DESIGN.md, "Health semantics").

use serde::{Deserialize, Serialize};

/// An endpoint's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

    /// Every status, in declaration order.
    pub const ALL: [Status; 5] = [
        Status::CheckingEndpoint,
        Status::Online,
        Status::Degraded,
        Status::Disabled,
        Status::AlwaysServe,
    ];

    /// The lowercase form metrics labels use: `checking_endpoint`, `online`, …
    pub fn label(self) -> &'static str {
        match self {
            Status::CheckingEndpoint => "checking_endpoint",
            Status::Online => "online",
            Status::Degraded => "degraded",
            Status::Disabled => "disabled",
            Status::AlwaysServe => "always_serve",
        }
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
