//! Cluster-wide drains: every drain or undrain is a record stamped with a hybrid-logical-
//! clock time and its origin node, and per target the greatest record wins ("last writer
//! wins"). The records form a join-semilattice ([`DrainSet::merge`] is commutative,
//! associative and idempotent), so nodes that have seen the same records agree, whatever
//! the order and the duplicates in which they saw them.
//!
//! A ramp keeps its start (`since_ms`) across nodes: it is part of the record, not the
//! time a node learned of it. An undrain is a record too (a tombstone), so an older drain
//! held by a node that was cut off cannot come back when the link returns.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::hlc::Hlc;
use crate::base::{MAX_RAMP_MS, MAX_TIME_MS};

/// Prefix of every drain key in a node's gossiped key-values.
pub const DRAIN_KEY_PREFIX: &str = "drain/";
/// Longest reason or operator text kept in a record (bytes); longer text is cut.
pub const MAX_TEXT: usize = 1024;

/// What a drain applies to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainTarget {
    /// Every endpoint of the site, in every profile.
    Site(String),
    /// One endpoint of one profile. `profile` is kept as [`DrainTarget::endpoint`] writes
    /// it: lower case, without a trailing dot, so that nodes spelling it differently in
    /// their configs still name one target.
    Endpoint { profile: String, endpoint: String },
}

impl DrainTarget {
    pub fn site(name: impl Into<String>) -> Self {
        Self::Site(name.into())
    }

    /// An endpoint target; the profile name is normalised (ASCII lower case, no trailing
    /// dot), e.g. `App.Gslb.Example.` → `app.gslb.example`.
    pub fn endpoint(profile: &str, endpoint: impl Into<String>) -> Self {
        Self::Endpoint {
            profile: normalize_profile(profile),
            endpoint: endpoint.into(),
        }
    }

    /// The gossip key: `drain/site/<site>` or `drain/ep/<profile>/<endpoint>`, each part
    /// escaped so that keys use only `[A-Za-z0-9._%/-]` and `/` only as a separator.
    pub fn key(&self) -> String {
        match self {
            Self::Site(s) => format!("{DRAIN_KEY_PREFIX}site/{}", escape(s)),
            Self::Endpoint { profile, endpoint } => format!(
                "{DRAIN_KEY_PREFIX}ep/{}/{}",
                escape(profile),
                escape(endpoint)
            ),
        }
    }

    /// The key of `drain::Drains`: the site name, or `profile/endpoint`.
    pub fn drains_key(&self) -> String {
        match self {
            Self::Site(s) => s.clone(),
            Self::Endpoint { profile, endpoint } => format!("{profile}/{endpoint}"),
        }
    }

    fn is_well_formed(&self) -> bool {
        match self {
            Self::Site(s) => !s.is_empty() && s.len() <= MAX_TEXT,
            Self::Endpoint { profile, endpoint } => {
                !profile.is_empty()
                    && !endpoint.is_empty()
                    && profile.len() <= MAX_TEXT
                    && endpoint.len() <= MAX_TEXT
                    && *profile == normalize_profile(profile)
            }
        }
    }
}

impl fmt::Display for DrainTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Site(s) => write!(f, "site {s}"),
            Self::Endpoint { profile, endpoint } => write!(f, "endpoint {profile}/{endpoint}"),
        }
    }
}

fn normalize_profile(p: &str) -> String {
    p.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Percent-escapes every byte outside `[A-Za-z0-9._-]`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Drain or undrain.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DrainAction {
    Drain {
        reason: String,
        /// Milliseconds since the Unix epoch when the drain (and its ramp) began, as set
        /// where it was made.
        since_ms: u64,
        /// Milliseconds over which the weight falls to 0 (0 = at once).
        #[serde(default)]
        ramp_ms: u64,
    },
    Undrain,
}

impl DrainAction {
    /// A drain whose ramp began at `since_ms` and lasts `ramp_ms`; the reason is cut to at
    /// most [`MAX_TEXT`] bytes.
    pub fn drain(reason: impl Into<String>, since_ms: u64, ramp_ms: u64) -> Self {
        DrainAction::Drain {
            reason: cut(reason.into()),
            since_ms,
            ramp_ms,
        }
    }
}

/// One drain or undrain, as made at one node.
///
/// The derived order is the "last writer wins" order: HLC time, then the origin node's
/// name, then the rest of the record, so that any two different records order the same
/// way on every node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DrainRecord {
    pub hlc: Hlc,
    /// The node where the operator made it.
    pub origin: String,
    pub target: DrainTarget,
    #[serde(flatten)]
    pub action: DrainAction,
    /// Who asked: the caller as the admin API saw it (address, token or CLI user).
    #[serde(default)]
    pub operator: String,
}

/// Why a gossiped drain value was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadRecord {
    #[error("not a drain record (JSON)")]
    NotJson,
    #[error("the record's target does not match its key")]
    KeyMismatch,
    #[error("empty or oversized field")]
    Malformed,
    #[error("a time after the year 9999, or a ramp longer than 7 days")]
    TimeOutOfRange,
}

impl DrainRecord {
    /// A record of `action` on `target`, made at node `origin` by `operator` (cut to at
    /// most [`MAX_TEXT`] bytes) at `hlc`.
    pub fn new(
        target: DrainTarget,
        action: DrainAction,
        origin: impl Into<String>,
        operator: impl Into<String>,
        hlc: Hlc,
    ) -> Self {
        Self {
            hlc,
            origin: origin.into(),
            target,
            action,
            operator: cut(operator.into()),
        }
    }

    /// The gossip key-value: `(target.key(), compact JSON)`.
    pub fn to_kv(&self) -> (String, String) {
        (self.target.key(), self.to_json())
    }

    /// Compact JSON (one line).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a drain record serialises")
    }

    /// Reads a gossiped key-value; the value must be a well-formed record for that key.
    pub fn from_kv(key: &str, value: &str) -> Result<Self, BadRecord> {
        let r: DrainRecord = serde_json::from_str(value).map_err(|_| BadRecord::NotJson)?;
        if !r.is_well_formed() {
            return Err(BadRecord::Malformed);
        }
        if !r.times_in_range() {
            return Err(BadRecord::TimeOutOfRange);
        }
        if r.target.key() != key {
            return Err(BadRecord::KeyMismatch);
        }
        Ok(r)
    }

    fn is_well_formed(&self) -> bool {
        let texts_ok = match &self.action {
            DrainAction::Drain { reason, .. } => reason.len() <= MAX_TEXT,
            DrainAction::Undrain => true,
        };
        texts_ok
            && self.target.is_well_formed()
            && !self.origin.is_empty()
            && self.origin.len() <= MAX_TEXT
            && self.operator.len() <= MAX_TEXT
    }

    /// Whether its times are ones signpost can use: its HLC time and drain start no later
    /// than the year 9999 ([`MAX_TIME_MS`]), its ramp at most 7 days. The bound is fixed
    /// (not "now"), so that every node takes or refuses the same records.
    pub fn times_in_range(&self) -> bool {
        let action_ok = match &self.action {
            DrainAction::Drain {
                since_ms, ramp_ms, ..
            } => *since_ms <= MAX_TIME_MS && *ramp_ms <= MAX_RAMP_MS,
            DrainAction::Undrain => true,
        };
        action_ok && self.hlc.wall_ms <= MAX_TIME_MS
    }

    pub fn is_drain(&self) -> bool {
        matches!(self.action, DrainAction::Drain { .. })
    }
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A drain in force, as the writer applies it (the fields of `drain::Drain`, and where it
/// came from for the audit log and the views).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActiveDrain {
    pub reason: String,
    pub since_ms: u64,
    pub ramp_ms: u64,
    pub origin: String,
    pub operator: String,
    pub hlc: Hlc,
}

/// Every drain in force: the shape of `drain::Drains`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ActiveDrains {
    /// Site name → drain.
    pub sites: BTreeMap<String, ActiveDrain>,
    /// `"profile/endpoint"` → drain (profile normalised, see [`DrainTarget::endpoint`]).
    pub endpoints: BTreeMap<String, ActiveDrain>,
}

/// Why a persisted drain set cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DrainSetError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("record {0} has an empty or oversized field")]
    Record(usize),
}

/// The merged records: one per target, the greatest seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrainSet {
    records: BTreeMap<DrainTarget, DrainRecord>,
}

/// File name of the persisted set in `state.dir`.
pub const DRAIN_SET_FILE: &str = "cluster-drains.json";

#[derive(Serialize, Deserialize)]
struct DrainSetFile {
    records: Vec<DrainRecord>,
}

impl DrainSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one record; true when it changed the set (it is newer than what the set
    /// held for its target).
    pub fn insert(&mut self, record: DrainRecord) -> bool {
        match self.records.get(&record.target) {
            Some(have) if *have >= record => false,
            _ => {
                self.records.insert(record.target.clone(), record);
                true
            }
        }
    }

    /// Takes in every record of `other`; true when the set changed.
    pub fn merge(&mut self, other: &DrainSet) -> bool {
        let mut changed = false;
        for r in other.records.values() {
            changed |= self.insert(r.clone());
        }
        changed
    }

    pub fn get(&self, target: &DrainTarget) -> Option<&DrainRecord> {
        self.records.get(target)
    }

    /// Every record (drains and undrains), by target.
    pub fn records(&self) -> impl Iterator<Item = &DrainRecord> {
        self.records.values()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The greatest HLC time in the set (to advance a restarted node's clock past it).
    pub fn max_hlc(&self) -> Option<Hlc> {
        self.records.values().map(|r| r.hlc).max()
    }

    /// The drains in force: every target whose winning record is a drain.
    pub fn active(&self) -> ActiveDrains {
        let mut out = ActiveDrains::default();
        for r in self.records.values() {
            let DrainAction::Drain {
                reason,
                since_ms,
                ramp_ms,
            } = &r.action
            else {
                continue;
            };
            let d = ActiveDrain {
                reason: reason.clone(),
                since_ms: *since_ms,
                ramp_ms: *ramp_ms,
                origin: r.origin.clone(),
                operator: r.operator.clone(),
                hlc: r.hlc,
            };
            match &r.target {
                DrainTarget::Site(s) => {
                    out.sites.insert(s.clone(), d);
                }
                t @ DrainTarget::Endpoint { .. } => {
                    out.endpoints.insert(t.drains_key(), d);
                }
            }
        }
        out
    }

    /// The persisted form: `{"records":[…]}`, one record per target.
    pub fn to_json(&self) -> String {
        let f = DrainSetFile {
            records: self.records.values().cloned().collect(),
        };
        serde_json::to_string_pretty(&f).expect("a drain set serialises")
    }

    /// Reads the persisted form; a record that is not well formed is an error. A record
    /// whose times are out of range ([`DrainRecord::times_in_range`]) is left out, and
    /// its index returned, so that one bad time does not stop a start (peers refuse the
    /// same record, so none of them gives it back).
    pub fn from_json(text: &str) -> Result<(Self, Vec<usize>), DrainSetError> {
        let f: DrainSetFile = serde_json::from_str(text)?;
        let mut set = DrainSet::new();
        let mut skipped = Vec::new();
        for (i, r) in f.records.into_iter().enumerate() {
            if !r.is_well_formed() {
                return Err(DrainSetError::Record(i));
            }
            if !r.times_in_range() {
                skipped.push(i);
                continue;
            }
            set.insert(r);
        }
        Ok((set, skipped))
    }

    /// Reads `dir/cluster-drains.json`; a missing file is an empty set. The warnings
    /// (records left out, see [`DrainSet::from_json`]) are for the log.
    pub fn load(dir: &Path) -> io::Result<(Self, Vec<String>)> {
        let fix = "fix or remove it (the peers give the records back)";
        let loaded = crate::base::state::load(
            dir,
            DRAIN_SET_FILE,
            "cluster drain state",
            fix,
            Self::from_json,
        )?;
        let Some((set, skipped)) = loaded else {
            return Ok((Self::new(), Vec::new()));
        };
        let path = Self::path(dir);
        let warnings = skipped
            .into_iter()
            .map(|i| {
                let why = BadRecord::TimeOutOfRange;
                format!("{}: record {i} is left out: {why}", path.display())
            })
            .collect();
        Ok((set, warnings))
    }

    /// Writes `dir/cluster-drains.json` atomically (see [`crate::base::state::write`]).
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        crate::base::state::write(dir, DRAIN_SET_FILE, self.to_json().as_bytes())
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join(DRAIN_SET_FILE)
    }
}

impl FromIterator<DrainRecord> for DrainSet {
    fn from_iter<I: IntoIterator<Item = DrainRecord>>(iter: I) -> Self {
        let mut s = DrainSet::new();
        for r in iter {
            s.insert(r);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNDRAIN: DrainAction = DrainAction::Undrain;

    /// `action` on site `site`, made at node `origin` at `ms`.
    fn on_site(action: DrainAction, site: &str, ms: u64, origin: &str) -> DrainRecord {
        DrainRecord::new(
            DrainTarget::site(site),
            action,
            origin,
            "op",
            Hlc::new(ms, 0),
        )
    }

    /// A drain of site `site` made at node `origin` at `ms`.
    fn drain(site: &str, ms: u64, origin: &str) -> DrainRecord {
        on_site(DrainAction::drain("maintenance", ms, 0), site, ms, origin)
    }

    #[test]
    fn the_later_record_wins_whatever_the_order() {
        let d = drain("hub-a", 1_000, "n1");
        let u = on_site(UNDRAIN, "hub-a", 2_000, "n2");
        let mut a = DrainSet::new();
        assert!(a.insert(d.clone()));
        assert!(a.insert(u.clone()));
        let mut b = DrainSet::new();
        assert!(b.insert(u.clone()));
        assert!(!b.insert(d.clone()));
        assert_eq!(a, b);
        assert!(a.active().sites.is_empty());
    }

    #[test]
    fn equal_times_are_broken_by_origin() {
        let a = drain("hub-a", 1_000, "alpha");
        let b = on_site(UNDRAIN, "hub-a", 1_000, "beta");
        let s1: DrainSet = [a.clone(), b.clone()].into_iter().collect();
        let s2: DrainSet = [b.clone(), a.clone()].into_iter().collect();
        assert_eq!(s1, s2);
        assert_eq!(s1.get(&DrainTarget::site("hub-a")), Some(&b));
    }

    #[test]
    fn active_gives_sites_and_profile_slash_endpoint_with_the_ramp_start() {
        let mut s = DrainSet::new();
        s.insert(drain("hub-a", 5_000, "n1"));
        s.insert(DrainRecord::new(
            DrainTarget::endpoint("App.Gslb.Example.", "seattle"),
            DrainAction::drain("patching", 4_000, 60_000),
            "n2",
            "ops",
            Hlc::new(4_100, 2),
        ));
        let a = s.active();
        assert_eq!(a.sites["hub-a"].since_ms, 5_000);
        let e = &a.endpoints["app.gslb.example/seattle"];
        assert_eq!((e.since_ms, e.ramp_ms), (4_000, 60_000));
        assert_eq!(e.origin, "n2");
        assert_eq!(e.reason, "patching");
    }

    #[test]
    fn keys_are_escaped_and_values_round_trip() {
        let t = DrainTarget::endpoint("app.gslb.example", "eu west/1");
        assert_eq!(t.key(), "drain/ep/app.gslb.example/eu%20west%2F1");
        assert_eq!(DrainTarget::site("hub_a-1.x").key(), "drain/site/hub_a-1.x");
        let r = DrainRecord::new(
            t,
            DrainAction::drain("r\"x", 1, 2),
            "n",
            "op",
            Hlc::new(3, 4),
        );
        let (k, v) = r.to_kv();
        assert!(!v.contains('\n'));
        assert_eq!(DrainRecord::from_kv(&k, &v), Ok(r.clone()));
        assert_eq!(
            DrainRecord::from_kv("drain/site/other", &v),
            Err(BadRecord::KeyMismatch)
        );
        assert_eq!(
            DrainRecord::from_kv(&k, "{not json"),
            Err(BadRecord::NotJson)
        );
        let mut bad = r;
        bad.origin.clear();
        assert_eq!(
            DrainRecord::from_kv(&k, &bad.to_json()),
            Err(BadRecord::Malformed)
        );
    }

    /// A far-future start or HLC time, or a ramp over 7 days, is refused from a peer and
    /// left out (with a warning) when read back from the file; the rest loads.
    #[test]
    fn records_with_times_out_of_range_are_refused() {
        let good = drain("hub-b", 1_000, "n1");
        for bad in [
            drain("hub-a", u64::MAX, "n1"),
            DrainRecord::new(
                DrainTarget::site("hub-a"),
                DrainAction::drain("", 1_000, MAX_RAMP_MS + 1),
                "n1",
                "",
                Hlc::new(1, 0),
            ),
            on_site(UNDRAIN, "hub-a", 1 << 62, "n1"),
        ] {
            let (k, v) = bad.to_kv();
            assert_eq!(DrainRecord::from_kv(&k, &v), Err(BadRecord::TimeOutOfRange));
            let dir = tempfile::tempdir().unwrap();
            let file = DrainSetFile {
                records: vec![bad.clone(), good.clone()],
            };
            std::fs::write(
                DrainSet::path(dir.path()),
                serde_json::to_string(&file).unwrap(),
            )
            .unwrap();
            let (set, warnings) = DrainSet::load(dir.path()).unwrap();
            assert_eq!(set.len(), 1);
            assert!(set.get(&DrainTarget::site("hub-b")).is_some());
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].contains("record 0 is left out: a time after the year 9999"));
        }
        let edge = drain("hub-a", MAX_TIME_MS, "n1");
        let (k, v) = edge.to_kv();
        assert!(DrainRecord::from_kv(&k, &v).is_ok());
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let r = DrainRecord::new(
            DrainTarget::site("a"),
            DrainAction::drain("é".repeat(800), 1, 0),
            "n",
            "",
            Hlc::new(1, 0),
        );
        let DrainAction::Drain { reason, .. } = &r.action else {
            unreachable!()
        };
        assert!(reason.len() <= MAX_TEXT && reason.len() >= MAX_TEXT - 1);
    }

    #[test]
    fn saves_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DrainSet::load(dir.path()).unwrap().0.is_empty());
        let mut s = DrainSet::new();
        s.insert(drain("hub-a", 1_000, "n1"));
        s.insert(DrainRecord::new(
            DrainTarget::endpoint("app", "e"),
            UNDRAIN,
            "n2",
            "",
            Hlc::new(9, 9),
        ));
        s.save(dir.path()).unwrap();
        assert_eq!(DrainSet::load(dir.path()).unwrap(), (s, Vec::new()));
        std::fs::write(DrainSet::path(dir.path()), "{").unwrap();
        let e = DrainSet::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains(DRAIN_SET_FILE), "{e}");
    }
}
