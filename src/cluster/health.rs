//! Health views: each node publishes what it sees of every probe target, and the
//! majority rule combines the live nodes' views.
//!
//! A target is named by a stable identity string the caller gives (the probe target's
//! address, port, protocol, path, host, …), never by its place in the config, so nodes
//! whose configs list targets in another order still compare the same target. On the wire
//! the identity is hashed to a short [`TargetId`] (12 characters), and a view is a short
//! text (`o,1234,1764400000000`): 10,000 targets fit in a few hundred kilobytes of state
//! per node, and gossip sends only the targets that changed.

use std::fmt;

use ring::digest;
use serde::{Deserialize, Serialize};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::base::Status;

/// Prefix of every health key in a node's gossiped key-values.
pub const HEALTH_KEY_PREFIX: &str = "h/";

/// The short, stable name of a probe target on the wire: the first 72 bits of the
/// SHA-256 of its identity, base64url (12 characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TargetId([u8; 9]);

/// An id is already a digest: its first 8 bytes are its hash ([`IdHasher`]).
impl std::hash::Hash for TargetId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// The hasher of maps keyed by [`TargetId`]: takes the id's own bits instead of hashing
/// them again (the publisher looks up every target in every peer's views on each
/// publish). Ids are SHA-256 prefixes, and only peers holding the cluster key publish
/// them.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
}

/// A map keyed by [`TargetId`].
pub type IdMap<V> = std::collections::HashMap<TargetId, V, std::hash::BuildHasherDefault<IdHasher>>;

impl TargetId {
    /// The id of the target with this identity string.
    pub fn of(identity: &str) -> Self {
        let d = digest::digest(&digest::SHA256, identity.as_bytes());
        let mut id = [0u8; 9];
        id.copy_from_slice(&d.as_ref()[..9]);
        Self(id)
    }

    /// The gossip key `h/<id>`.
    pub fn key(&self) -> String {
        format!("{HEALTH_KEY_PREFIX}{self}")
    }

    /// The id in a gossip key, if it is a health key.
    pub fn from_key(key: &str) -> Option<Self> {
        let text = key.strip_prefix(HEALTH_KEY_PREFIX)?;
        if text.len() != 12 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

/// What one node sees of a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// No result yet (not a vote).
    Checking,
    Online,
    Degraded,
}

impl HealthStatus {
    fn code(self) -> char {
        match self {
            Self::Checking => 'c',
            Self::Online => 'o',
            Self::Degraded => 'd',
        }
    }

    fn from_code(c: &str) -> Option<Self> {
        match c {
            "c" => Some(Self::Checking),
            "o" => Some(Self::Online),
            "d" => Some(Self::Degraded),
            _ => None,
        }
    }
}

/// A target's own status as a vote: only Online and Degraded are results.
impl From<Status> for HealthStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Online => Self::Online,
            Status::Degraded => Self::Degraded,
            _ => Self::Checking,
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Checking => "CheckingEndpoint",
            Self::Online => "Online",
            Self::Degraded => "Degraded",
        })
    }
}

/// One node's view of one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HealthView {
    pub status: HealthStatus,
    /// Smoothed probe round-trip time from that node, microseconds (none before a success).
    pub rtt_us: Option<u64>,
    /// Milliseconds since the Unix epoch when that node's status last changed.
    pub since_ms: u64,
}

impl HealthView {
    /// The gossip value: `<c|o|d>,<rtt µs or empty>,<since ms>`.
    pub fn encode(&self) -> String {
        match self.rtt_us {
            Some(r) => format!("{},{r},{}", self.status.code(), self.since_ms),
            None => format!("{},,{}", self.status.code(), self.since_ms),
        }
    }

    /// Reads a gossip value; `None` if it is not one.
    pub fn decode(value: &str) -> Option<Self> {
        let mut parts = value.split(',');
        let status = HealthStatus::from_code(parts.next()?)?;
        let rtt = parts.next()?;
        let rtt_us = if rtt.is_empty() {
            None
        } else {
            Some(rtt.parse().ok()?)
        };
        let since_ms = parts.next()?.parse().ok()?;
        if parts.next().is_some() || since_ms > crate::base::MAX_TIME_MS {
            return None;
        }
        Some(Self {
            status,
            rtt_us,
            since_ms,
        })
    }
}

/// How the views combine (`cluster.health`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthMode {
    /// Degraded or Online when more than half of the live nodes with a result say so.
    #[default]
    Majority,
    /// This node's own view only.
    Local,
}

/// The votes on one target and the status they give.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Votes {
    /// Live nodes (this one included) whose view is Online.
    pub online: usize,
    /// Live nodes (this one included) whose view is Degraded.
    pub degraded: usize,
    /// Live nodes (this one included) with a view but no result yet (not votes).
    pub checking: usize,
}

impl Votes {
    /// Counts this node's status and the live peers' statuses.
    pub fn count(own: HealthStatus, peers: impl IntoIterator<Item = HealthStatus>) -> Self {
        let mut v = Votes::default();
        for s in std::iter::once(own).chain(peers) {
            match s {
                HealthStatus::Online => v.online += 1,
                HealthStatus::Degraded => v.degraded += 1,
                HealthStatus::Checking => v.checking += 1,
            }
        }
        v
    }

    /// Nodes with a result.
    pub fn voters(&self) -> usize {
        self.online + self.degraded
    }

    /// The majority rule: among the live nodes with a result (this one included),
    /// Degraded when more than half say Degraded, Online when more than half say Online;
    /// a tie, or no other node with a result, keeps `own`.
    pub fn majority(&self, own: HealthStatus) -> HealthStatus {
        let n = self.voters();
        let own_votes = usize::from(own != HealthStatus::Checking);
        if n <= own_votes {
            return own;
        }
        if 2 * self.degraded > n {
            HealthStatus::Degraded
        } else if 2 * self.online > n {
            HealthStatus::Online
        } else {
            own
        }
    }

    /// For views: "2 of 3 see Online" (of the nodes with a result).
    pub fn describe(&self, status: HealthStatus) -> String {
        let k = match status {
            HealthStatus::Online => self.online,
            HealthStatus::Degraded => self.degraded,
            HealthStatus::Checking => self.checking,
        };
        let n = match status {
            HealthStatus::Checking => self.voters() + self.checking,
            _ => self.voters(),
        };
        format!("{k} of {n} see {status}")
    }
}

/// The status this node serves for a target: its own in `Local` mode, the majority of
/// the live views otherwise. `peers` are the views of the *live* other nodes.
pub fn combine(
    mode: HealthMode,
    own: HealthStatus,
    peers: impl IntoIterator<Item = HealthStatus>,
) -> (HealthStatus, Votes) {
    let votes = Votes::count(own, peers);
    let status = match mode {
        HealthMode::Local => own,
        HealthMode::Majority => votes.majority(own),
    };
    (status, votes)
}

#[cfg(test)]
mod tests {
    use super::HealthStatus::{Checking as C, Degraded as D, Online as O};
    use super::*;

    #[test]
    fn majority_table() {
        // (own, peers, expected)
        let rows: &[(HealthStatus, &[HealthStatus], HealthStatus)] = &[
            (O, &[], O),
            (D, &[], D),
            (C, &[], C),
            // Lone vote of ours against a peer: a tie keeps our view.
            (O, &[D], O),
            (D, &[O], D),
            // Two of three.
            (O, &[D, D], D),
            (D, &[O, O], O),
            (O, &[O, D], O),
            // A peer without a result is no vote.
            (O, &[D, C], O),
            (O, &[D, D, C], D),
            // We have no result: the others decide when they agree.
            (C, &[O, O], O),
            (C, &[D], D),
            (C, &[O, D], C),
            // Two against two keeps ours.
            (O, &[O, D, D], O),
            (D, &[O, O, D], D),
            // Three of four.
            (O, &[D, D, D], D),
        ];
        for (own, peers, want) in rows {
            let (got, _) = combine(HealthMode::Majority, *own, peers.iter().copied());
            assert_eq!(got, *want, "own {own:?}, peers {peers:?}");
            let (local, _) = combine(HealthMode::Local, *own, peers.iter().copied());
            assert_eq!(local, *own);
        }
    }

    #[test]
    fn votes_read_as_n_of_m() {
        let (_, v) = combine(HealthMode::Majority, O, [O, D, C]);
        assert_eq!(v.describe(O), "2 of 3 see Online");
        assert_eq!(v.describe(D), "1 of 3 see Degraded");
    }

    #[test]
    fn views_round_trip_and_bad_values_are_refused() {
        let v = HealthView {
            status: D,
            rtt_us: Some(12_345),
            since_ms: 1_764_400_000_000,
        };
        assert_eq!(v.encode(), "d,12345,1764400000000");
        assert_eq!(HealthView::decode(&v.encode()), Some(v));
        let c = HealthView {
            status: C,
            rtt_us: None,
            since_ms: 5,
        };
        assert_eq!(c.encode(), "c,,5");
        assert_eq!(HealthView::decode("c,,5"), Some(c));
        // A change after the year 9999 is no time signpost can show.
        let far = format!("o,,{}", u64::MAX);
        for bad in [
            "", "x,1,2", "o,1", "o,1,2,3", "o,-1,2", "o,,x", "O,1,2", &far,
        ] {
            assert_eq!(HealthView::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn target_ids_are_short_stable_and_read_back_from_keys() {
        let a = TargetId::of("https://192.0.2.10:443/healthz host=app.corp.example");
        let b = TargetId::of("https://192.0.2.11:443/healthz host=app.corp.example");
        assert_ne!(a, b);
        assert_eq!(
            a,
            TargetId::of("https://192.0.2.10:443/healthz host=app.corp.example")
        );
        let k = a.key();
        assert_eq!(k.len(), 14);
        assert!(
            k.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"/_-".contains(&c))
        );
        assert_eq!(TargetId::from_key(&k), Some(a));
        assert_eq!(TargetId::from_key("h/short"), None);
        assert_eq!(TargetId::from_key("drain/site/x"), None);
    }
}
