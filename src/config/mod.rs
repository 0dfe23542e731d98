//! Loading and validating the config file.
//!
//! Every section, monitor, profile and endpoint is read on its own, so that one bad value
//! does not hide the next: `signpost check` reports every error at once, each with the
//! file, the key path and what to do.

pub mod cluster;
mod duration;
mod spec;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use duration::HumanDuration;
pub use spec::*;

/// One problem found in the configuration or a zone file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Where in the file: a key path (`dns.listen`) for the config, `line N` for zones.
    pub location: String,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl Problem {
    pub fn new(
        file: impl Into<PathBuf>,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.location,
                self.message
            )
        }
    }
}

/// How many problems one load lists; the rest are only counted ("and N more"), so that
/// a zone that fails on every line, or an include bomb, fails fast with a short message.
pub const MAX_PROBLEMS: usize = 100;

/// Every problem found in one load (the first [`MAX_PROBLEMS`] of them, and how many more
/// there were); `Display` prints one per line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>, usize);

impl Problems {
    pub fn push(&mut self, p: Problem) {
        if self.0.len() < MAX_PROBLEMS {
            self.0.push(p);
        } else {
            self.1 += 1;
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Every problem found, including those not listed.
    pub fn len(&self) -> usize {
        self.0.len() + self.1
    }
    /// Problems found beyond the [`MAX_PROBLEMS`] listed.
    pub fn omitted(&self) -> usize {
        self.1
    }
    /// Counts `n` more problems that are not listed (found by a load that listed its own).
    pub fn add_omitted(&mut self, n: usize) {
        self.1 += n;
    }
    pub fn extend(&mut self, other: Problems) {
        let omitted = other.1;
        for p in other.0 {
            self.push(p);
        }
        self.1 += omitted;
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {p}")?;
        }
        if self.1 > 0 {
            write!(
                f,
                "\nerror: and {} more problem(s), not listed (only the first {MAX_PROBLEMS} are); fix these and check again",
                self.1
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

#[cfg(test)]
impl Problems {
    /// Asserts that there are `n` problems and that the report holds every one of
    /// `wants`, showing the whole report if not; returns the report.
    #[track_caller]
    pub(crate) fn assert_has(&self, n: usize, wants: &[&str]) -> String {
        let text = self.to_string();
        assert_eq!(self.len(), n, "{text}");
        crate::base::testing::assert_has(&text, wants);
        text
    }
}

/// The parsed config file (before zones are read and the snapshot is compiled).
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    pub dns: DnsSpec,
    pub admin: AdminSpec,
    pub zones: ZonesSpec,
    pub state: StateSpec,
    pub geo: GeoSpec,
    pub monitors: BTreeMap<String, MonitorSpec>,
    pub sites: Vec<SiteSpec>,
    /// Profile name as written (no trailing dot required) → profile.
    pub profiles: BTreeMap<String, ProfileSpec>,
    /// Parsed `dns.listen`.
    pub dns_listen: Vec<SocketAddr>,
    /// Parsed `admin.listen`.
    pub admin_listen: Option<SocketAddr>,
    /// `[cluster]`, when this instance is one of several.
    pub cluster: Option<cluster::ClusterSpec>,
}

/// Highest `dns.rate_limit` (responses per second per client prefix).
pub const MAX_RATE_LIMIT: u32 = 100_000_000;

const SECTIONS: &[&str] = &[
    "dns", "admin", "zones", "state", "geo", "monitors", "sites", "profiles", "cluster",
];

impl Config {
    /// Reads the file at `path`, applies `SIGNPOST__…` environment overrides and checks
    /// every value it can without looking at other files.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        Self::load_with_env(path, None)
    }

    /// As [`Config::load`], with the environment given explicitly (for tests); `None` reads
    /// the process environment.
    pub fn load_with_env(
        path: &Path,
        env: Option<HashMap<String, String>>,
    ) -> Result<Config, Problems> {
        let (cfg, problems) = Self::read(path, env);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }

    /// Reads as much of the config as is valid, with every problem found. The returned
    /// config has defaults where values were bad, so that later checks (zones) still run.
    pub fn read(path: &Path, env: Option<HashMap<String, String>>) -> (Config, Problems) {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::read_text(path, &text, env),
            Err(e) => {
                let mut problems = Problems::default();
                problems.push(Problem::new(
                    path,
                    "",
                    format!(
                        "cannot read the config file ({e}); pass the right one with --config PATH"
                    ),
                ));
                let cfg = Config {
                    path: path.to_path_buf(),
                    ..Config::default()
                };
                (cfg, problems)
            }
        }
    }

    /// As [`Config::read`], with the file's contents already read (`path` is where they
    /// came from, for the problems).
    pub fn read_text(
        path: &Path,
        text: &str,
        env: Option<HashMap<String, String>>,
    ) -> (Config, Problems) {
        let mut problems = Problems::default();
        let mut cfg = Config {
            path: path.to_path_buf(),
            ..Config::default()
        };
        let file = |p: &mut Problems, loc: &str, msg: String| p.push(Problem::new(path, loc, msg));

        let mut envsrc = config::Environment::with_prefix("SIGNPOST")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("geo.regions")
            .ignore_empty(true);
        // The overriding variables, each with the key path it sets (`dns.listen`).
        let overrides: Vec<(String, String)> = match &env {
            Some(env) => env.keys().cloned().collect::<Vec<_>>(),
            None => std::env::vars().map(|(k, _)| k).collect(),
        }
        .into_iter()
        .filter_map(|k| {
            let rest = k.strip_prefix("SIGNPOST__")?;
            let key = rest.to_lowercase().replace("__", ".");
            Some((k, key))
        })
        .collect();
        if let Some(env) = env {
            envsrc = envsrc.source(Some(env.into_iter().collect()));
        }
        let built = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .add_source(envsrc)
            .build();
        let built = match built {
            Ok(b) => b,
            Err(e) => {
                file(&mut problems, "", format!("not valid TOML: {e}"));
                return (cfg, problems);
            }
        };
        let root: HashMap<String, config::Value> = match built.try_deserialize() {
            Ok(r) => r,
            Err(e) => {
                file(&mut problems, "", format!("not a table of sections: {e}"));
                return (cfg, problems);
            }
        };

        let mut keys: Vec<&String> = root.keys().collect();
        keys.sort();
        for key in keys {
            if !SECTIONS.contains(&key.as_str()) {
                file(
                    &mut problems,
                    key,
                    format!("unknown section; the sections are {}", SECTIONS.join(", ")),
                );
            }
        }

        if let Some(v) = root.get("dns") {
            read_into(v, "dns", path, &mut problems, &mut cfg.dns);
        }
        if let Some(v) = root.get("admin") {
            read_into(v, "admin", path, &mut problems, &mut cfg.admin);
        }
        if let Some(v) = root.get("zones") {
            read_into(v, "zones", path, &mut problems, &mut cfg.zones);
        }
        if let Some(v) = root.get("state") {
            read_into(v, "state", path, &mut problems, &mut cfg.state);
        }
        if let Some(v) = root.get("geo") {
            read_into(v, "geo", path, &mut problems, &mut cfg.geo);
        }
        if let Some(v) = root.get("cluster") {
            cfg.cluster = read(v, "cluster", path, &mut problems);
        }
        if let Some(v) = root.get("monitors") {
            for (name, v) in table(v, "monitors", path, &mut problems) {
                let mut m = MonitorSpec::default();
                if read_into(
                    &v,
                    &format!("monitors.{}", key_part(&name)),
                    path,
                    &mut problems,
                    &mut m,
                ) {
                    cfg.monitors.insert(name, m);
                }
            }
        }
        if let Some(v) = root.get("sites") {
            match v.clone().into_array() {
                Ok(items) => {
                    for (i, v) in items.into_iter().enumerate() {
                        if let Some(s) =
                            read::<SiteSpec>(&v, &format!("sites[{i}]"), path, &mut problems)
                        {
                            cfg.sites.push(s);
                        }
                    }
                }
                Err(_) => file(
                    &mut problems,
                    "sites",
                    "must be an array of tables: write each site as [[sites]] with name = \"…\""
                        .into(),
                ),
            }
        }
        if let Some(v) = root.get("profiles") {
            for (name, v) in table(v, "profiles", path, &mut problems) {
                let at = format!("profiles.{}", key_part(&name));
                let mut tbl = match v.clone().into_table() {
                    Ok(t) => t,
                    Err(_) => {
                        file(&mut problems, &at, "must be a table".into());
                        continue;
                    }
                };
                let endpoints = tbl.remove("endpoints");
                let value = config::Value::new(None, config::ValueKind::Table(tbl));
                let Some(mut profile) = read::<ProfileSpec>(&value, &at, path, &mut problems)
                else {
                    continue;
                };
                if let Some(eps) = endpoints {
                    match eps.into_array() {
                        Ok(items) => {
                            for (i, v) in items.into_iter().enumerate() {
                                if let Some(e) = read::<EndpointSpec>(
                                    &v,
                                    &format!("{at}.endpoints[{i}]"),
                                    path,
                                    &mut problems,
                                ) {
                                    profile.endpoints.push(e);
                                }
                            }
                        }
                        Err(_) => file(
                            &mut problems,
                            &format!("{at}.endpoints"),
                            format!(
                                "must be an array of tables: write each endpoint as [[{at}.endpoints]]"
                            ),
                        ),
                    }
                }
                cfg.profiles.insert(name, profile);
            }
        }

        cfg.check_values(&mut problems);
        blame_overrides(&mut problems, &overrides);
        (cfg, problems)
    }

    /// Checks of single values that serde cannot express.
    fn check_values(&mut self, problems: &mut Problems) {
        let path = self.path.clone();
        let mut bad = |loc: &str, msg: String| problems.push(Problem::new(&path, loc, msg));
        if self.dns.listen.is_empty() {
            bad(
                "dns.listen",
                "no address to listen on; add one, e.g. [\"127.0.0.1:5300\"]".into(),
            );
        }
        for (i, a) in self.dns.listen.iter().enumerate() {
            match a.parse::<SocketAddr>() {
                Ok(sa) => self.dns_listen.push(sa),
                Err(_) => bad(
                    &format!("dns.listen[{i}]"),
                    format!(
                        "{a:?} is not an IP address with a port; write e.g. \"127.0.0.1:5300\" or \"[::1]:53\""
                    ),
                ),
            }
        }
        if self.dns.udp_sockets > 256 {
            bad(
                "dns.udp_sockets",
                format!(
                    "{} sockets per address is too many; use 0 (one per core) up to 256",
                    self.dns.udp_sockets
                ),
            );
        }
        if self.dns.tcp_max_connections == 0 {
            bad("dns.tcp_max_connections", "must be at least 1".into());
        }
        if self.dns.tcp_idle_timeout.0.is_zero() {
            bad(
                "dns.tcp_idle_timeout",
                "must be longer than 0s, e.g. \"10s\"".into(),
            );
        }
        if self.dns.tcp_max_per_source == 0 {
            bad(
                "dns.tcp_max_per_source",
                format!(
                    "must be at least 1; to leave sources uncapped, set it to tcp_max_connections ({})",
                    self.dns.tcp_max_connections
                ),
            );
        }
        if self.dns.tcp_write_timeout.is_some_and(|t| t.0.is_zero()) {
            bad(
                "dns.tcp_write_timeout",
                "must be longer than 0s, e.g. \"10s\"; leave it out to use tcp_idle_timeout".into(),
            );
        }
        if self.dns.rate_limit > MAX_RATE_LIMIT {
            bad(
                "dns.rate_limit",
                format!(
                    "{} responses per second per client is more than signpost can limit; use 0 (no limit) up to {MAX_RATE_LIMIT}",
                    self.dns.rate_limit
                ),
            );
        }
        match self.admin.listen.parse::<SocketAddr>() {
            Ok(sa) => self.admin_listen = Some(sa),
            Err(_) => bad(
                "admin.listen",
                format!(
                    "{:?} is not an IP address with a port; write e.g. \"127.0.0.1:8053\"",
                    self.admin.listen
                ),
            ),
        }
        if self.admin.max_connections == 0 {
            bad(
                "admin.max_connections",
                "must be at least 1, e.g. 256".into(),
            );
        }
        let t = self.admin.request_timeout.0;
        if t < std::time::Duration::from_secs(1) || t > std::time::Duration::from_secs(300) {
            bad(
                "admin.request_timeout",
                format!(
                    "{} is out of range; use 1s to 5m, e.g. \"10s\"",
                    self.admin.request_timeout
                ),
            );
        }
        for (i, h) in self.admin.allowed_hosts.iter().enumerate() {
            if let Err(e) = crate::base::host::AllowedHost::parse(h) {
                bad(&format!("admin.allowed_hosts[{i}]"), e.to_string());
            }
        }
        for (name, m) in &self.monitors {
            let at = format!("monitors.{}", key_part(name));
            if let Some(msg) = name_problem(name, "a monitor name") {
                bad(&at, msg);
            }
            check_monitor(m, &at, &mut bad);
        }
        for (i, site) in self.sites.iter().enumerate() {
            if let Some(msg) = name_problem(&site.name, "a site name") {
                bad(&format!("sites[{i}].name"), msg);
            }
        }
        for name in self.geo.regions.keys() {
            if let Some(msg) = name_problem(name, "a region name") {
                bad(&format!("geo.regions.{}", key_part(name)), msg);
            }
        }
        for (name, p) in &self.profiles {
            let at = format!("profiles.{}", key_part(name));
            if let Some(msg) = profile_name_problem(name) {
                bad(&at, msg);
            }
            for (i, e) in p.endpoints.iter().enumerate() {
                if let Some(msg) = name_problem(&e.name, "an endpoint name") {
                    bad(&format!("{at}.endpoints[{i}].name"), msg);
                }
            }
        }
        if let Some(c) = &self.cluster {
            c.check(&mut bad);
        }
    }
}

/// Longest name of a site, endpoint, monitor or region.
pub const MAX_NAME_LEN: usize = 64;

/// The characters every name in the config is written with: each goes unescaped into API
/// paths (`/api/v1/sites/{site}/drain`), metric labels, cluster keys and the status page.
pub fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// What is wrong with `name` as the name of a site, endpoint, monitor or region (`what`,
/// e.g. "a site name"), or `None` when it is fine: 1 to [`MAX_NAME_LEN`] of
/// `[A-Za-z0-9._-]`, and not only dots (`.` and `..` mean something else in a URL path).
pub fn name_problem(name: &str, what: &str) -> Option<String> {
    const RULE: &str =
        "use 1 to 64 letters, digits, '.', '_' or '-' (names go into API paths and metric labels)";
    if let Some(c) = name
        .chars()
        .find(|&c| !c.is_ascii() || !is_name_byte(c as u8))
    {
        return Some(format!(
            "{name:?} has {c:?}, which {what} cannot hold: {RULE}; e.g. {:?}",
            suggest_name(name)
        ));
    }
    if name.is_empty() {
        return Some(format!("is empty: {RULE}"));
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "{name:?} is {} characters long: {RULE}",
            name.len()
        ));
    }
    if name.bytes().all(|b| b == b'.') {
        return Some(format!(
            "{name:?} is only dots, which a URL path reads as a directory: {RULE}"
        ));
    }
    None
}

/// What is wrong with `name` as a profile name, or `None`: a DNS name written with
/// `[A-Za-z0-9._-]` (labels of letters, digits, '-' and '_', a trailing dot allowed), so
/// that it goes unescaped into API paths and metric labels. Whether it is a valid domain
/// name is checked where the profile is compiled.
pub fn profile_name_problem(name: &str) -> Option<String> {
    let c = name
        .chars()
        .find(|&c| !c.is_ascii() || !is_name_byte(c as u8))?;
    let hint = if c.is_ascii() {
        ""
    } else {
        " (write an internationalised name in its ASCII form, xn--…)"
    };
    Some(format!(
        "{name:?} has {c:?}, which a profile name cannot hold: a profile is a DNS name of letters, digits, '-' and '_' between dots{hint}; e.g. {:?}",
        suggest_name(name)
    ))
}

/// `name` with every character a name cannot hold replaced by `-`.
fn suggest_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii() && is_name_byte(c as u8) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Checks one monitor (a named one, or a profile's merged with an endpoint's overrides);
/// each problem goes to `bad` with its key below `at`.
pub(crate) fn check_monitor(m: &MonitorSpec, at: &str, bad: &mut impl FnMut(&str, String)) {
    if m.timeout.0.is_zero() {
        bad(&format!("{at}.timeout"), "must be longer than 0s".into());
    }
    if m.interval.0 < std::time::Duration::from_millis(100) {
        bad(
            &format!("{at}.interval"),
            format!("{} is too short; use at least \"100ms\"", m.interval),
        );
    }
    // Only a retry_interval set by hand is checked: the default (1s) follows a shorter
    // interval.
    if let Some(retry) = m.retry_interval {
        if retry.0 < std::time::Duration::from_millis(100) {
            bad(
                &format!("{at}.retry_interval"),
                format!("{retry} is too short; use at least \"100ms\""),
            );
        } else if retry.0 > m.interval.0 {
            bad(
                &format!("{at}.retry_interval"),
                format!(
                    "{retry} is longer than interval ({}); use at most the interval (equal to it turns fast confirmation off)",
                    m.interval
                ),
            );
        }
    }
    if m.protocol == Protocol::Tcp && m.port.is_none() {
        bad(
            &format!("{at}.port"),
            "a tcp monitor needs a port, e.g. port = 443".into(),
        );
    }
    if m.rise == 0 {
        bad(&format!("{at}.rise"), "must be at least 1".into());
    }
    if let Some(ca) = &m.tls.ca_file
        && let Err(e) = crate::base::load_roots(ca)
    {
        bad(
            &format!("{at}.tls.ca_file"),
            format!("{e}; give a PEM file with the CA certificates to trust"),
        );
    }
    for (k, v) in &m.headers {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            bad(
                &format!("{at}.headers"),
                format!("{k:?} is not a valid HTTP header name"),
            );
        } else if reqwest::header::HeaderValue::from_str(v).is_err() {
            bad(
                &format!("{at}.headers.{}", key_part(k)),
                format!("{v:?} is not a valid HTTP header value"),
            );
        }
    }
    if m.expected_status.len() > 8 {
        bad(&format!("{at}.expected_status"), "at most 8 ranges".into());
    }
    for (i, r) in m.expected_status.iter().enumerate() {
        if parse_status_range(r).is_none() {
            bad(
                &format!("{at}.expected_status[{i}]"),
                format!("{r:?} is not a status or a range; write e.g. \"200\" or \"200-299\""),
            );
        }
    }
}

/// Parses `"200"` or `"200-299"` into an inclusive range of HTTP status codes.
pub fn parse_status_range(text: &str) -> Option<(u16, u16)> {
    let text = text.trim();
    let (lo, hi) = match text.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?),
        None => {
            let v = text.parse::<u16>().ok()?;
            (v, v)
        }
    };
    ((100..=599).contains(&lo) && (100..=599).contains(&hi) && lo <= hi).then_some((lo, hi))
}

/// A key written so that it reads back as one TOML key (`"app.gslb.example"` is quoted).
pub fn key_part(name: &str) -> String {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

fn table(
    v: &config::Value,
    at: &str,
    path: &Path,
    problems: &mut Problems,
) -> Vec<(String, config::Value)> {
    match v.clone().into_table() {
        Ok(t) => {
            let mut v: Vec<_> = t.into_iter().collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        }
        Err(_) => {
            problems.push(Problem::new(path, at, "must be a table"));
            Vec::new()
        }
    }
}

/// Reads one table. serde stops at the first bad key, so each bad key is reported, taken
/// out, and the rest read again: one mistake never hides the next in the same table, and
/// the table (without its bad keys) still takes part in the checks of the whole config.
/// `None` only when a required key is missing or the value is not a table.
fn read<T: DeserializeOwned>(
    v: &config::Value,
    at: &str,
    path: &Path,
    problems: &mut Problems,
) -> Option<T> {
    let mut v = v.clone();
    loop {
        let e = match serde_path_to_error::deserialize::<_, T>(v.clone()) {
            // Read leniently: without its bad keys (defaults in their place), so that the
            // checks that look across tables still see it. The problems are reported.
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let inner = e.path().to_string();
        let loc = if inner == "." || inner.is_empty() {
            at.to_owned()
        } else {
            format!("{at}.{inner}")
        };
        let key = match e.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => Some(key.clone()),
            _ => None,
        };
        problems.push(Problem::new(
            path,
            loc,
            explain_serde(&e.into_inner().to_string()),
        ));
        // Without the bad key (each pass removes one, so this ends).
        let (Some(key), Ok(mut tbl)) = (key, v.clone().into_table()) else {
            return None;
        };
        tbl.remove(&key)?;
        v = config::Value::new(None, config::ValueKind::Table(tbl));
    }
}

fn read_into<T: DeserializeOwned>(
    v: &config::Value,
    at: &str,
    path: &Path,
    problems: &mut Problems,
    into: &mut T,
) -> bool {
    match read(v, at, path, problems) {
        Some(t) => {
            *into = t;
            true
        }
        None => false,
    }
}

/// A problem in a key that an environment variable set is that variable's: it names the
/// variable instead of the config file.
fn blame_overrides(problems: &mut Problems, overrides: &[(String, String)]) {
    for p in &mut problems.0 {
        let unquoted = p.location.replace('"', "");
        let by = overrides.iter().find(|(_, key)| {
            unquoted == *key
                || unquoted.starts_with(&format!("{key}."))
                || unquoted.starts_with(&format!("{key}["))
        });
        if let Some((var, _)) = by {
            p.file = PathBuf::from(format!("environment variable {var}"));
            p.message
                .push_str(&format!(" (set by {var}, which overrides the config file)"));
        }
    }
}

/// The values an enum of the config takes, by the type name the config crate's errors
/// use.
fn enum_values(name: &str) -> Option<&'static str> {
    Some(match name {
        "Method" => "priority, weighted, performance, geographic, multivalue, subnet",
        "AllDown" => "serve_all, nodata, servfail",
        "Protocol" => "http, https, tcp",
        _ => return None,
    })
}

/// Makes serde's messages say what to do.
fn explain_serde(msg: &str) -> String {
    // The config crate appends " for key `…`"; the key path is already given.
    let msg = match msg.rfind(" for key `") {
        Some(i) => &msg[..i],
        None => msg,
    };
    if let Some(rest) = msg.strip_prefix("enum ")
        && let Some((name, given)) = rest.split_once(" does not have variant constructor ")
    {
        return match enum_values(name) {
            Some(values) => format!("{given:?} is not one of {values}"),
            None => msg.to_owned(),
        };
    }
    if msg.starts_with("unknown field") {
        format!("{msg}; remove it or correct its spelling")
    } else if msg.starts_with("missing field") {
        format!("{msg}; add it")
    } else {
        msg.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `text` as `dir/signpost.toml`, with no environment overrides.
    pub(super) fn load_in(dir: &Path, text: &str) -> Result<Config, Problems> {
        let p = dir.join("signpost.toml");
        std::fs::write(&p, text).unwrap();
        Config::load_with_env(&p, Some(HashMap::new()))
    }

    fn load(text: &str) -> Result<Config, Problems> {
        load_in(tempfile::tempdir().unwrap().path(), text)
    }

    /// Loads `text`, which must fail with one problem per entry of `wants`, each naming
    /// its entry; the report.
    fn fails_with(text: &str, wants: &[&str]) -> String {
        load(text).unwrap_err().assert_has(wants.len(), wants)
    }

    #[test]
    fn defaults_serve_loopback_5300() {
        let c = load("").unwrap();
        assert_eq!(c.dns_listen, vec!["127.0.0.1:5300".parse().unwrap()]);
        assert_eq!(c.admin_listen, Some("127.0.0.1:8053".parse().unwrap()));
    }

    /// A `[dns]` table with a good key and an unknown one.
    const DNS_BOGUS: &str = "[dns]\nlisten = [\"127.0.0.1:5300\"]\nbogus = 1\n";

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let more = r#"
[monitors.web]
interval = "5 parsecs"
[profiles."app.gslb.example"]
method = "weighted"
[[profiles."app.gslb.example".endpoints]]
name = "a"
wieght = 3
[nonsense]
x = 1
"#;
        fails_with(
            &format!("{DNS_BOGUS}{more}"),
            &[
                "dns.bogus: unknown field `bogus`",
                "monitors.web.interval: invalid duration \"5 parsecs\"",
                "profiles.\"app.gslb.example\".endpoints[0].wieght: unknown field `wieght`",
                "nonsense: unknown section",
            ],
        );
    }

    #[test]
    fn every_bad_key_of_one_table_is_reported() {
        let more = "tcp_idle_timeout = \"ten seconds\"\nudp_sockets = \"many\"\n";
        let text = fails_with(
            &format!("{DNS_BOGUS}{more}"),
            &[
                "dns.bogus: unknown field `bogus`",
                "dns.tcp_idle_timeout: invalid duration \"ten seconds\"",
                "dns.udp_sockets: ",
            ],
        );
        // The good keys of a table with a bad one are not reported.
        assert!(!text.contains("dns.listen"), "{text}");
    }

    #[test]
    fn dns_limits_have_defaults_and_clear_errors() {
        use std::time::Duration;
        let c = load("").unwrap();
        assert_eq!(c.dns.tcp_max_connections, 1024);
        assert_eq!(c.dns.tcp_max_per_source, 64);
        assert_eq!(c.dns.rate_limit, 0, "off by default");
        assert_eq!(c.dns.tcp_write_timeout(), Duration::from_secs(10));
        let c = load("[dns]\ntcp_idle_timeout = \"3s\"\n").unwrap();
        assert_eq!(
            c.dns.tcp_write_timeout(),
            Duration::from_secs(3),
            "follows idle"
        );
        let c =
            load("[dns]\ntcp_write_timeout = \"2s\"\nrate_limit = 50\ntcp_max_per_source = 8\n")
                .unwrap();
        assert_eq!(c.dns.tcp_write_timeout(), Duration::from_secs(2));
        assert_eq!((c.dns.rate_limit, c.dns.tcp_max_per_source), (50, 8));

        let err = load(
            "[dns]\ntcp_max_per_source = 0\ntcp_write_timeout = \"0s\"\nrate_limit = 200000000\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.len(), 3, "{text}");
        assert!(
            text.contains("dns.tcp_max_per_source: must be at least 1; to leave sources uncapped, set it to tcp_max_connections (1024)"),
            "{text}"
        );
        assert!(
            text.contains("dns.tcp_write_timeout: must be longer than 0s"),
            "{text}"
        );
        assert!(
            text.contains("dns.rate_limit: 200000000 responses per second per client is more than"),
            "{text}"
        );
        let err = load("[dns]\nrate_limit = -1\n").unwrap_err();
        assert!(err.to_string().contains("dns.rate_limit: "), "{err}");
    }

    #[test]
    fn monitor_tls_files_and_headers_are_checked() {
        let config = r#"
[monitors.web]
protocol = "https"
headers = { "Bad Header" = "x", "X-Ok" = "line\nbreak" }
tls = { ca_file = "/nonexistent/ca.pem" }
"#;
        fails_with(
            config,
            &[
                "monitors.web.tls.ca_file: TLS: cannot read ca_file /nonexistent/ca.pem",
                "monitors.web.headers: \"Bad Header\" is not a valid HTTP header name",
                "monitors.web.headers.X-Ok: \"line\\nbreak\" is not a valid",
            ],
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("signpost.toml");
        std::fs::write(&p, "[dns]\nlisten = [\"127.0.0.1:5300\"]\n").unwrap();
        let env = HashMap::from([
            (
                "SIGNPOST__DNS__LISTEN".to_owned(),
                "127.0.0.2:53,[::1]:53".to_owned(),
            ),
            ("SIGNPOST__DNS__UDP_SOCKETS".to_owned(), "3".to_owned()),
        ]);
        let c = Config::load_with_env(&p, Some(env)).unwrap();
        assert_eq!(
            c.dns_listen,
            vec!["127.0.0.2:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
        assert_eq!(c.dns.udp_sockets, 3);
    }

    /// The values an enum error lists are the ones the config accepts.
    #[test]
    fn enum_errors_list_values_that_parse() {
        fn all<T: serde::de::DeserializeOwned>(name: &str) {
            for v in enum_values(name).unwrap().split(", ") {
                serde_json::from_value::<T>(serde_json::Value::String(v.into()))
                    .unwrap_or_else(|e| panic!("{name}: {v}: {e}"));
            }
        }
        all::<Method>("Method");
        all::<AllDown>("AllDown");
        all::<Protocol>("Protocol");
        assert_eq!(
            explain_serde("enum Method does not have variant constructor priorty"),
            "\"priorty\" is not one of priority, weighted, performance, geographic, multivalue, subnet"
        );
    }

    /// Names go unescaped into API paths and metric labels: a character they cannot
    /// carry is named, with the file, the key and a name that would do.
    #[test]
    fn names_are_restricted_to_what_paths_and_labels_carry() {
        let err = load(
            r#"
[monitors."web check"]
[geo.regions]
"corp emea" = ["10.20.0.0/16"]
[[sites]]
name = "hub/a"
[[sites]]
name = ".."
[[sites]]
name = "hub-b"
[profiles."app.gslb.example"]
[[profiles."app.gslb.example".endpoints]]
name = "eu west/1"
[[profiles."app.gslb.example".endpoints]]
name = "ok_1.x-y"
[[profiles."app.gslb.example".endpoints]]
name = "é"
[profiles."app/x.gslb.example"]
[profiles."bücher.gslb.example"]
"#,
        )
        .unwrap_err();
        let text = err.to_string();
        let has = |s: &str| assert!(text.contains(s), "{s}\n{text}");
        has(
            "signpost.toml: monitors.\"web check\": \"web check\" has ' ', which a monitor name cannot hold: use 1 to 64 letters, digits, '.', '_' or '-' (names go into API paths and metric labels); e.g. \"web-check\"",
        );
        has("geo.regions.\"corp emea\": \"corp emea\" has ' ', which a region name cannot hold");
        has("sites[0].name: \"hub/a\" has '/', which a site name cannot hold");
        has("e.g. \"hub-a\"");
        has("sites[1].name: \"..\" is only dots");
        has(
            "profiles.\"app.gslb.example\".endpoints[0].name: \"eu west/1\" has ' ', which an endpoint name cannot hold",
        );
        has("profiles.\"app.gslb.example\".endpoints[2].name: \"é\" has 'é'");
        has(
            "profiles.\"app/x.gslb.example\": \"app/x.gslb.example\" has '/', which a profile name cannot hold",
        );
        has("(write an internationalised name in its ASCII form, xn--…)");
        assert_eq!(err.len(), 8, "{text}");
        let long = "a".repeat(65);
        assert!(
            name_problem(&long, "a site name")
                .unwrap()
                .contains("65 characters")
        );
        assert_eq!(name_problem(&"a".repeat(64), "a site name"), None);
        assert_eq!(
            name_problem("", "a site name").unwrap(),
            "is empty: use 1 to 64 letters, digits, '.', '_' or '-' (names go into API paths and metric labels)"
        );
        assert_eq!(profile_name_problem("App.Gslb.Example."), None);
    }

    #[test]
    fn status_ranges() {
        assert_eq!(parse_status_range("200-299"), Some((200, 299)));
        assert_eq!(parse_status_range("204"), Some((204, 204)));
        assert_eq!(parse_status_range("299-200"), None);
        assert_eq!(parse_status_range("abc"), None);
    }
}
