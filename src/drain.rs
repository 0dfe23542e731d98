//! Operator drains: a drained endpoint is Disabled in every profile; a site drain covers
//! every endpoint of the site. A drain may ramp: the effective weight falls linearly to 0
//! over `ramp`, then the endpoint is Disabled. Drains are written atomically to
//! `state.dir/drains.json` and restored at start; every mutation is appended to
//! `state.dir/audit.log` as one JSON line.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::model::Model;

pub use crate::base::rfc3339;

/// One drain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    pub reason: String,
    /// Milliseconds since the Unix epoch when the drain began. (State written before
    /// this field had milliseconds said `since`, in seconds: [`Drains::load`] converts.)
    #[serde(alias = "since")]
    pub since_ms: u64,
    /// Milliseconds over which the weight falls to 0 (0 = at once).
    #[serde(default)]
    pub ramp_ms: u64,
}

impl Drain {
    pub fn new(reason: impl Into<String>, now: SystemTime, ramp: Duration) -> Self {
        Self {
            reason: reason.into(),
            since_ms: now
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64,
            ramp_ms: ramp.as_millis() as u64,
        }
    }

    /// When the drain began.
    pub fn since(&self) -> SystemTime {
        crate::base::time_of_ms(self.since_ms)
    }

    /// The weight `weight` scaled by the ramp at `now`: `Some(w)` while ramping (w ≥ 1
    /// until the last moment), `None` once fully drained (Disabled). Callers pass weights
    /// in fine units (`snapshot::WEIGHT_SCALE`), so that a configured weight of 1 still
    /// falls smoothly.
    pub fn effective_weight(&self, weight: u32, now: SystemTime) -> Option<u32> {
        if self.ramp_ms == 0 {
            return None;
        }
        let elapsed_ms = now
            .duration_since(self.since())
            .unwrap_or_default()
            .as_millis() as u64;
        if elapsed_ms >= self.ramp_ms {
            return None;
        }
        let left = (self.ramp_ms - elapsed_ms) as f64 / self.ramp_ms as f64;
        let w = (f64::from(weight) * left).round() as u32;
        Some(w.max(1))
    }

    /// When the ramp ends (the endpoint becomes Disabled).
    pub fn ends_at(&self) -> SystemTime {
        let since = self.since();
        since
            .checked_add(Duration::from_millis(self.ramp_ms))
            .unwrap_or(since)
    }

    /// Brings times read from a file into range as of `now`: a start in the future is
    /// taken as `now`, a ramp longer than the API allows as that longest ramp. What was
    /// changed, for a warning.
    fn clamp_times(&mut self, now_ms: u64) -> Option<String> {
        let mut changed = Vec::new();
        if self.since_ms > now_ms {
            changed.push(format!(
                "its start {} is in the future, taken as now",
                if self.since_ms > crate::base::MAX_TIME_MS {
                    format!("({} ms after 1970)", self.since_ms)
                } else {
                    rfc3339(self.since())
                }
            ));
            self.since_ms = now_ms;
        }
        if self.ramp_ms > crate::base::MAX_RAMP_MS {
            changed.push(format!(
                "its ramp of {} ms is longer than 7 days, taken as 7 days",
                self.ramp_ms
            ));
            self.ramp_ms = crate::base::MAX_RAMP_MS;
        }
        (!changed.is_empty()).then(|| changed.join("; "))
    }
}

/// Every active drain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drains {
    /// Site name → drain.
    #[serde(default)]
    pub sites: BTreeMap<String, Drain>,
    /// "profile/endpoint" → drain (profile as written in the config).
    #[serde(default)]
    pub endpoints: BTreeMap<String, Drain>,
}

impl Drains {
    pub fn endpoint_key(profile: &str, endpoint: &str) -> String {
        format!("{profile}/{endpoint}")
    }

    /// The drain that applies to an endpoint: its own, else its site's (the one that
    /// drains harder, i.e. ends first, when both exist).
    pub fn for_endpoint(
        &self,
        profile: &str,
        endpoint: &str,
        site: Option<&str>,
    ) -> Option<&Drain> {
        // Every publish asks for every endpoint: build no key when none is drained.
        let own = (!self.endpoints.is_empty())
            .then(|| self.endpoints.get(&Self::endpoint_key(profile, endpoint)))
            .flatten();
        let site = site.and_then(|s| self.sites.get(s));
        match (own, site) {
            (Some(a), Some(b)) => Some(if a.ends_at() <= b.ends_at() { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    pub fn len(&self) -> usize {
        self.sites.len() + self.endpoints.len()
    }

    /// The stored key of an endpoint drain for `profile`/`endpoint`, matching the profile
    /// name as DNS does (case, trailing dot), for drains whose profile may be gone.
    pub fn find_endpoint_key(&self, profile: &str, endpoint: &str) -> Option<String> {
        let want = crate::base::normalize_name(profile);
        self.endpoints.keys().find_map(|k| {
            let (p, e) = k.rsplit_once('/')?;
            (e == endpoint && crate::base::normalize_name(p) == want).then(|| k.clone())
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads `dir/drains.json`; a missing file is no drains. Times are checked as of
    /// `now`: a drain that starts in the future (a clock that was wrong, a hand-edited
    /// file) starts now, and a ramp longer than 7 days lasts 7 days; each change is one
    /// of the warnings returned (for the log).
    pub fn load(dir: &Path, now: SystemTime) -> io::Result<(Drains, Vec<String>)> {
        let parse = |text: &str| serde_json::from_str::<Drains>(text);
        let loaded = crate::base::state::load(dir, DRAINS_FILE, "drain state", FIX, parse)?;
        let Some(mut d) = loaded else {
            return Ok((Drains::default(), Vec::new()));
        };
        let path = dir.join(DRAINS_FILE);
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            .min(u128::from(crate::base::MAX_TIME_MS)) as u64;
        let mut warnings = Vec::new();
        let sites = d.sites.iter_mut().map(|(k, v)| (format!("site {k}"), v));
        let eps = d
            .endpoints
            .iter_mut()
            .map(|(k, v)| (format!("endpoint {k}"), v));
        for (what, drain) in sites.chain(eps) {
            // `since` in seconds (older state): below 1e11 is before 1973 in ms.
            if drain.since_ms < 100_000_000_000 {
                drain.since_ms *= 1000;
            }
            if let Some(w) = drain.clamp_times(now_ms) {
                warnings.push(format!("{}: the drain of {what}: {w}", path.display()));
            }
        }
        Ok((d, warnings))
    }

    /// Writes `dir/drains.json` atomically (see [`crate::base::state::write`]).
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        crate::base::state::write(dir, DRAINS_FILE, &json)
    }
}

/// What a drain or undrain applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrainTarget {
    Site(String),
    Endpoint { profile: String, endpoint: String },
}

impl std::fmt::Display for DrainTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DrainTarget::Site(s) => write!(f, "site {s}"),
            DrainTarget::Endpoint { profile, endpoint } => {
                write!(f, "endpoint {profile}/{endpoint}")
            }
        }
    }
}

/// Why a drain or undrain changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("no site named {site:?}; the sites are: {known}")]
    UnknownSite { site: String, known: String },
    #[error("no profile named {0:?}")]
    UnknownProfile(String),
    #[error("profile {profile:?} has no endpoint named {endpoint:?}")]
    UnknownEndpoint { profile: String, endpoint: String },
    #[error("cannot save drain state in {} ({source}); nothing changed", dir.display())]
    Save { dir: PathBuf, source: io::Error },
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// A drain or undrain that took effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainDone {
    /// What happened, for the operator ("site a drained", "… draining over 300s …").
    pub message: String,
    pub drains_active: usize,
}

impl Drains {
    /// The drain set after draining (`Some`) or undraining (`None`) `target` at `now`,
    /// and what to tell the operator. Pure: nothing is saved.
    ///
    /// - Unknown sites and endpoints are errors, except that undraining what an older
    ///   config had (a drain that outlived its site or endpoint) is allowed, so that it
    ///   does not linger until the name comes back.
    /// - Draining what is already drained never brings traffic back: when the drain in
    ///   force ends no later than the new one would, it stays (with the new reason).
    pub fn apply(
        &self,
        model: &Model,
        target: &DrainTarget,
        drain: Option<Drain>,
        now: SystemTime,
    ) -> Result<(Drains, String), DrainError> {
        let key = self.resolve(model, target, drain.is_none())?;
        let mut next = self.clone();
        let map = match target {
            DrainTarget::Site(_) => &mut next.sites,
            DrainTarget::Endpoint { .. } => &mut next.endpoints,
        };
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
        let message = match (&drain, was) {
            (Some(d), _) if d.ends_at() > now => format!(
                "{target} draining over {}s (disabled at {})",
                d.ramp_ms / 1000,
                rfc3339(d.ends_at())
            ),
            (Some(_), _) => format!("{target} drained"),
            (None, Some(_)) => format!("{target} undrained"),
            (None, None) => format!("{target} was not drained"),
        };
        Ok((next, message))
    }

    /// The stored key of `target`.
    fn resolve(
        &self,
        model: &Model,
        target: &DrainTarget,
        undrain: bool,
    ) -> Result<String, DrainError> {
        match target {
            DrainTarget::Site(site) => {
                let known = model.sites.iter().any(|s| s == site);
                if known || (undrain && self.sites.contains_key(site)) {
                    Ok(site.clone())
                } else {
                    Err(DrainError::UnknownSite {
                        site: site.clone(),
                        known: model.sites.join(", "),
                    })
                }
            }
            DrainTarget::Endpoint { profile, endpoint } => {
                let found = model.profile(profile);
                let has =
                    found.is_some_and(|(_, p)| p.endpoints.iter().any(|e| &e.name == endpoint));
                if has {
                    let (_, p) = found.expect("checked above");
                    return Ok(Drains::endpoint_key(&p.key, endpoint));
                }
                if undrain && let Some(key) = self.find_endpoint_key(profile, endpoint) {
                    return Ok(key);
                }
                Err(match found {
                    None => DrainError::UnknownProfile(profile.clone()),
                    Some(_) => DrainError::UnknownEndpoint {
                        profile: profile.clone(),
                        endpoint: endpoint.clone(),
                    },
                })
            }
        }
    }

    /// Whether a drain ramp is in progress at `now` (weights change with time).
    pub fn ramping(&self, now: SystemTime) -> bool {
        self.sites
            .values()
            .chain(self.endpoints.values())
            .any(|d| d.ramp_ms > 0 && d.ends_at() > now)
    }
}

const DRAINS_FILE: &str = "drains.json";
/// What to do about a `drains.json` that does not parse.
const FIX: &str = "fix or remove it";
const AUDIT_FILE: &str = "audit.log";

/// One line of the audit log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// RFC 3339 UTC time.
    pub time: String,
    pub caller: String,
    pub action: String,
    pub target: String,
    #[serde(default)]
    pub reason: String,
    pub result: String,
}

/// Runs blocking file I/O (fsync) from async code without holding up the runtime's other
/// tasks: on a multi-thread runtime the worker hands them to another thread first.
pub fn offload<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Serialises the appends of this process, so that a line cut short by a full disk is
/// taken back before another is written after it.
static AUDIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Appends one JSON line to `dir/audit.log` (and fsyncs it). The line is written whole
/// or not at all: one `write` of the complete line; when the disk takes only part of it,
/// that part is cut off again and the call fails.
pub fn audit(dir: &Path, entry: &AuditEntry) -> io::Result<()> {
    let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
    line.push(b'\n');
    std::fs::create_dir_all(dir)?;
    let _guard = AUDIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(audit_path(dir))?;
    let written = loop {
        match f.write(&line) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    if written < line.len() {
        // O_APPEND: the part written ends the file. Cut it off, so that the next line
        // does not continue it.
        let end = f.metadata()?.len();
        f.set_len(end.saturating_sub(written as u64))?;
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "only {written} of {} bytes of the audit line could be written (disk full?); the line is not in the log",
                line.len()
            ),
        ));
    }
    f.sync_data()
}

/// At start: when `dir/audit.log` ends with a partial line (no newline: a write cut short
/// by a crash or a full disk), cuts that tail off, so that the next line starts on a line
/// of its own. Returns how many bytes were cut (0 when the log is whole or absent).
pub fn repair_audit(dir: &Path) -> io::Result<u64> {
    let path = audit_path(dir);
    let mut f = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    // Back from the end, a block at a time, to the last newline.
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(io::SeekFrom::Start(start))?;
        f.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            break start + i as u64 + 1;
        }
        end = start;
    };
    if keep < len {
        f.set_len(keep)?;
        f.sync_all()?;
    }
    Ok(len - keep)
}

pub fn audit_path(dir: &Path) -> PathBuf {
    dir.join(AUDIT_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_falls_linearly_then_disables() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let d = Drain::new("maint", t0, Duration::from_secs(10));
        assert_eq!(d.effective_weight(100, t0), Some(100));
        assert_eq!(
            d.effective_weight(100, t0 + Duration::from_secs(5)),
            Some(50)
        );
        assert_eq!(
            d.effective_weight(100, t0 + Duration::from_millis(9_999)),
            Some(1)
        );
        assert_eq!(d.effective_weight(100, t0 + Duration::from_secs(10)), None);
        let now = Drain::new("x", t0, Duration::ZERO);
        assert_eq!(now.effective_weight(100, t0), None);
    }

    /// A ramp starts when the drain is made, not at the start of that second.
    #[test]
    fn ramp_starts_at_the_millisecond() {
        let t0 = UNIX_EPOCH + Duration::from_millis(1_000_900);
        let d = Drain::new("maint", t0, Duration::from_secs(6));
        assert_eq!(d.since(), t0);
        assert_eq!(d.effective_weight(1000, t0), Some(1000));
        assert_eq!(
            d.effective_weight(1000, t0 + Duration::from_secs(3)),
            Some(500)
        );
        assert_eq!(d.ends_at(), t0 + Duration::from_secs(6));
        assert_eq!(
            d.effective_weight(1000, t0 + Duration::from_millis(5_999)),
            Some(1)
        );
    }

    #[test]
    fn state_with_since_in_seconds_loads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("drains.json"),
            r#"{"sites": {"hub-a": {"reason": "old", "since": 1700000000, "ramp_ms": 0}}}"#,
        )
        .unwrap();
        let (d, warnings) = Drains::load(dir.path(), SystemTime::now()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            d.sites["hub-a"].since(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
    }

    /// Far-future starts and over-long ramps in a file are brought into range at load,
    /// with a warning each; every view of such a drain works.
    #[test]
    fn times_out_of_range_are_clamped_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let now = UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        for since in [
            u64::MAX,
            i64::MAX as u64,
            1_000_000_000_000_000,
            1_764_000_000_124,
        ] {
            std::fs::write(
                dir.path().join("drains.json"),
                format!(
                    r#"{{"sites": {{"hub-a": {{"reason": "x", "since_ms": {since}, "ramp_ms": {}}}}},
                        "endpoints": {{"app/e1": {{"reason": "y", "since_ms": 1700000000000, "ramp_ms": 0}}}}}}"#,
                    u64::MAX
                ),
            )
            .unwrap();
            let (d, warnings) = Drains::load(dir.path(), now).unwrap();
            let a = &d.sites["hub-a"];
            assert_eq!(a.since(), now, "{since}");
            assert_eq!(a.ramp_ms, crate::base::MAX_RAMP_MS);
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].contains("the drain of site hub-a: its start"),
                "{warnings:?}"
            );
            assert!(warnings[0].contains("longer than 7 days"), "{warnings:?}");
            assert_eq!(d.endpoints["app/e1"].since_ms, 1_700_000_000_000);
            assert_eq!(rfc3339(a.ends_at()), "2025-12-01T16:00:00Z");
            assert_eq!(a.effective_weight(1000, now), Some(1000));
        }
        // Whatever a drain holds, its times can be shown and used.
        let d = Drain {
            reason: String::new(),
            since_ms: u64::MAX,
            ramp_ms: u64::MAX,
        };
        assert_eq!(rfc3339(d.since()), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(d.ends_at()), "9999-12-31T23:59:59Z");
        assert_eq!(d.effective_weight(1000, now), Some(1000));
    }

    #[test]
    fn endpoint_or_site_drain_applies() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut d = Drains::default();
        d.sites.insert(
            "hub-a".into(),
            Drain::new("site", t0, Duration::from_secs(60)),
        );
        assert_eq!(
            d.for_endpoint("app", "e1", Some("hub-a")).unwrap().reason,
            "site"
        );
        assert!(d.for_endpoint("app", "e1", Some("hub-b")).is_none());
        d.endpoints.insert(
            Drains::endpoint_key("app", "e1"),
            Drain::new("own", t0, Duration::ZERO),
        );
        assert_eq!(
            d.for_endpoint("app", "e1", Some("hub-a")).unwrap().reason,
            "own"
        );
    }

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        assert_eq!(Drains::load(dir.path(), now).unwrap().0, Drains::default());
        let mut d = Drains::default();
        d.sites.insert(
            "hub-a".into(),
            Drain::new("maintenance", now, Duration::ZERO),
        );
        d.save(dir.path()).unwrap();
        assert_eq!(Drains::load(dir.path(), now).unwrap(), (d, Vec::new()));
        assert!(!dir.path().join(".drains.json.tmp").exists());
        std::fs::write(dir.path().join("drains.json"), "{not json").unwrap();
        let err = Drains::load(dir.path(), now).unwrap_err().to_string();
        assert!(err.contains("drains.json"), "{err}");
    }

    #[test]
    fn audit_appends_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        for action in ["drain", "undrain"] {
            audit(
                dir.path(),
                &AuditEntry {
                    time: rfc3339(SystemTime::now()),
                    caller: "127.0.0.1:5555".into(),
                    action: action.into(),
                    target: "site hub-a".into(),
                    reason: "maintenance".into(),
                    result: "ok".into(),
                },
            )
            .unwrap();
        }
        let text = std::fs::read_to_string(audit_path(dir.path())).unwrap();
        let lines: Vec<AuditEntry> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].action, "undrain");
    }

    /// A partial last line (a write cut short) is cut off at start; whole lines stay.
    #[test]
    fn repair_cuts_a_partial_tail() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(repair_audit(dir.path()).unwrap(), 0);
        let path = audit_path(dir.path());
        let whole = "{\"a\":1}\n".repeat(20_000);
        for (text, keep) in [
            (format!("{whole}{{\"time\":\"2026-"), whole.len()),
            (whole.clone(), whole.len()),
            ("{\"no newline at all".to_owned(), 0),
            // A partial tail longer than one block read.
            (format!("x\n{}", "y".repeat(200_000)), 2),
            (String::new(), 0),
        ] {
            std::fs::write(&path, &text).unwrap();
            let cut = repair_audit(dir.path()).unwrap();
            assert_eq!(cut, (text.len() - keep) as u64);
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text[..keep]);
        }
    }
}
