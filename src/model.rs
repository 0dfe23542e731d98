//! The compiled, immutable form of a config: zones with profiles attached, endpoints with
//! their answers pre-encoded, and the deduplicated set of probe targets. Built once per
//! (re)load; shared by every snapshot of that generation.

pub mod geoip;
pub mod prefix;
mod routing;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::IpNet;
use rustc_hash::FxHashMap;

pub use crate::base::normalize_name;
use crate::config::{
    AllDown, Config, EndpointSpec, Method, MonitorSpec, Problem, Problems, Protocol, TlsSpec,
    key_part, parse_status_range,
};
use crate::zone::Zone;
use crate::zone::name::{lower_wire, parent};
use geoip::GeoKey;
use prefix::{NetSet, PrefixTable};

pub use routing::{Geo, LatencyRow};

/// Everything static about one generation of config.
#[derive(Debug, Default)]
pub struct Model {
    pub generation: u64,
    pub zones: Vec<Zone>,
    zone_by_apex: FxHashMap<Box<[u8]>, usize>,
    pub profiles: Vec<ProfileDef>,
    /// Profile name (lowercase, fully qualified, e.g. `app.gslb.example.`) → index.
    pub profile_by_name: HashMap<String, u32>,
    pub sites: Vec<String>,
    /// Distinct probe targets; endpoints refer to them by index.
    pub targets: Vec<ProbeTarget>,
    /// Client regions by subnet, most specific first.
    pub regions: Vec<(IpNet, String)>,
    pub mmdb: Option<PathBuf>,
    /// Client location data for routing: regions by index, the MaxMind DB.
    pub geo: Geo,
    /// A digest of the config and zone files this model was compiled from; instances of
    /// one cluster compare it to see that they run the same config.
    pub fingerprint: String,
}

impl Model {
    /// The most specific served zone holding `qname` (lowercase wire form).
    pub fn find_zone(&self, qname: &[u8]) -> Option<&Zone> {
        let mut cur = qname;
        loop {
            if let Some(&i) = self.zone_by_apex.get(cur) {
                return Some(&self.zones[i]);
            }
            cur = parent(cur)?;
        }
    }

    pub fn profile(&self, name: &str) -> Option<(u32, &ProfileDef)> {
        let key = normalize_name(name);
        self.profile_by_name
            .get(&key)
            .map(|&i| (i, &self.profiles[i as usize]))
    }
}

/// A traffic-managed name.
#[derive(Debug)]
pub struct ProfileDef {
    /// As written in the config (`app.gslb.example`).
    pub key: String,
    pub name: Name,
    pub wire: Box<[u8]>,
    pub method: Method,
    pub ttl: u32,
    /// The TTL while the profile is unstable: min(`ttl`, `ttl_unstable`).
    pub ttl_unstable: u32,
    pub all_down: AllDown,
    pub max_answers: u32,
    /// performance: fraction of the best RTT within which endpoints tie.
    pub performance_tolerance: f64,
    /// performance: the band is at least this wide.
    pub performance_tolerance_min: Duration,
    /// performance: latency overrides for clients in a region (`[profiles.X.latency]`).
    pub latency: Vec<LatencyRow>,
    pub endpoints: Vec<EndpointDef>,
    /// subnet: every endpoint subnet with its endpoint index, longest prefix first.
    pub subnet_rules: Vec<(IpNet, u32)>,
    /// subnet: `subnet_rules` for longest-prefix lookups.
    pub subnet_table: PrefixTable,
    /// geographic: the endpoints (indices) holding each region, country, continent, WORLD.
    pub geo_index: FxHashMap<GeoKey, Box<[u32]>>,
    /// Every subnet the answer depends on (region subnets for geographic and the latency
    /// table, endpoint subnets for subnet); empty when the answer ignores the client. The
    /// ECS scope is computed against these.
    pub client_nets: NetSet,
    /// Whether a country or continent decides (so the MaxMind DB is consulted).
    pub uses_geoip: bool,
    /// Answers given with a TTL shortened because a profile was unstable
    /// (`signpost_short_ttl_answers_total`).
    pub short_ttl_answers: AnswerCounter,
}

/// What an endpoint answers with.
#[derive(Debug, Clone)]
pub enum Answer {
    Addrs {
        v4: Vec<Ipv4Addr>,
        v6: Vec<Ipv6Addr>,
    },
    /// A CNAME: the target name, its lowercase wire form (also the CNAME RDATA).
    Cname { name: Name, wire: Box<[u8]> },
    /// Another profile (index).
    Nested(u32),
}

#[derive(Debug)]
pub struct EndpointDef {
    pub name: String,
    /// Index into `Model::sites`.
    pub site: Option<u32>,
    pub answer: Answer,
    pub weight: u32,
    pub priority: u32,
    /// As written in the config.
    pub regions: Vec<String>,
    /// `regions`, compiled (duplicates removed).
    pub geo: Vec<GeoKey>,
    pub subnets: Vec<IpNet>,
    pub enabled: bool,
    pub always_serve: bool,
    pub min_child_endpoints: u32,
    /// Index into `Model::targets`; `None` when not probed (disabled, always_serve,
    /// nested, or the profile has no monitor).
    pub target: Option<u32>,
    /// Whether the endpoint can answer A / AAAA (CNAME endpoints both; nested endpoints
    /// when some endpoint of the child can).
    pub answers_a: bool,
    pub answers_aaaa: bool,
    /// Answers that included this endpoint (`signpost_answers_total`).
    pub answer_count: AnswerCounter,
}

/// How one target is probed; identical targets are probed once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeTarget {
    pub addr: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub path: String,
    pub host: Option<String>,
    pub headers: Vec<(String, String)>,
    pub expected_status: Vec<(u16, u16)>,
    pub body_contains: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub tolerated_failures: u32,
    pub rise: u32,
    /// Fast confirmation pace (see `MonitorSpec::retry_interval`).
    pub retry_interval: Duration,
    pub tls: TlsSpec,
    /// HTTP(S): probe over a kept-alive connection when one is open (`reuse_connection`).
    pub reuse_connection: bool,
}

impl ProbeTarget {
    /// What is probed and what counts as success, as one string: the same on every
    /// instance that probes this target, whatever its config order or timings.
    pub fn identity(&self) -> String {
        format!(
            "{}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.url(),
            self.host,
            self.headers,
            self.expected_status,
            self.body_contains,
            self.tls
        )
    }

    /// `https://192.0.2.10:443/healthz`, `tcp://192.0.2.10:5432`, for logs and status.
    pub fn url(&self) -> String {
        let host = match self.addr {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        match self.protocol {
            Protocol::Tcp => format!("tcp://{host}:{}", self.port),
            Protocol::Http => format!("http://{host}:{}{}", self.port, self.path),
            Protocol::Https => format!("https://{host}:{}{}", self.port, self.path),
        }
    }
}

/// Endpoints one profile may have (so that an endpoint index fits in 16 bits).
pub const MAX_ENDPOINTS: usize = u16::MAX as usize;

/// Deepest chain of nested profiles (a profile nesting one that nests one … 10 times).
pub const MAX_NESTING: usize = 10;

/// Compiles a validated config and its zones into a model. Every problem is reported.
pub fn compile(config: &Config, mut zones: Vec<Zone>, generation: u64) -> Result<Model, Problems> {
    let file = config.path.clone();
    let mut problems = Problems::default();
    let mut bad = |loc: String, msg: String| problems.push(Problem::new(&file, loc, msg));

    let mut sites: Vec<String> = Vec::new();
    for (i, s) in config.sites.iter().enumerate() {
        if sites.contains(&s.name) {
            bad(
                format!("sites[{i}].name"),
                format!("site {:?} is listed twice", s.name),
            );
        } else {
            sites.push(s.name.clone());
        }
    }

    let geo = routing::compile_geo(&config.geo, &mut bad);
    let mut regions: Vec<(IpNet, String)> = geo
        .nets
        .iter()
        .map(|(net, id)| (*net, geo.region_names[*id as usize].clone()))
        .collect();
    regions.sort_by_key(|r| std::cmp::Reverse(r.0.prefix_len()));

    // Profile names first, so nested references resolve in any order. Only valid names get
    // an index, so indices match `profiles` below.
    let mut profile_by_name = HashMap::new();
    let mut valid = Vec::new();
    for (key, spec) in &config.profiles {
        let at = format!("profiles.{}", key_part(key));
        match Name::from_str(key) {
            Ok(mut n) => {
                n.set_fqdn(true);
                let norm = normalize_name(key);
                if profile_by_name.insert(norm, valid.len() as u32).is_some() {
                    bad(
                        at,
                        "the same name as another profile (names are case-insensitive)".into(),
                    );
                }
                valid.push((key, spec, n));
            }
            Err(e) => bad(at, format!("not a domain name ({e})")),
        }
    }

    let names = Names {
        sites: &sites,
        profiles: &profile_by_name,
        regions: &geo.region_names,
        geoip: config.geo.mmdb.is_some(),
    };
    let mut targets: Vec<ProbeTarget> = Vec::new();
    let mut target_index: HashMap<ProbeTarget, u32> = HashMap::new();
    let mut profiles = Vec::new();
    // Per profile, the config index of each compiled endpoint (for key paths).
    let mut origins: Vec<Vec<usize>> = Vec::new();
    for (key, spec, name) in valid {
        let at = format!("profiles.{}", key_part(key));
        let wire = lower_wire(&name);
        let monitor = match &spec.monitor {
            None => None,
            Some(m) => match config.monitors.get(m) {
                Some(spec) => Some(spec),
                None => {
                    bad(
                        format!("{at}.monitor"),
                        format!(
                            "no monitor named {m:?}; define [monitors.{}] or fix the name",
                            key_part(m)
                        ),
                    );
                    None
                }
            },
        };
        if !(1..=86400).contains(&spec.ttl) {
            bad(
                format!("{at}.ttl"),
                format!("{} is out of range; use 1 to 86400 seconds", spec.ttl),
            );
        }
        if !(1..=86400).contains(&spec.ttl_unstable) {
            bad(
                format!("{at}.ttl_unstable"),
                format!(
                    "{} is out of range; use 1 to 86400 seconds (ttl_unstable = ttl turns health-aware TTLs off)",
                    spec.ttl_unstable
                ),
            );
        }
        if spec.endpoints.is_empty() {
            bad(
                format!("{at}.endpoints"),
                format!("a profile needs at least one endpoint; add [[{at}.endpoints]]"),
            );
        }
        if let Some(m) = spec.max_answers
            && spec.method == Method::Multivalue
            && !(1..=32).contains(&m)
        {
            bad(
                format!("{at}.max_answers"),
                format!("{m} is out of range; use 1 to 32"),
            );
        }
        if spec.endpoints.len() > MAX_ENDPOINTS {
            bad(
                format!("{at}.endpoints"),
                format!(
                    "{} endpoints; a profile has at most {MAX_ENDPOINTS} (nest profiles for more)",
                    spec.endpoints.len()
                ),
            );
        }
        let mut endpoints = Vec::new();
        let mut origin = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (ei, e) in spec.endpoints.iter().enumerate() {
            let eat = format!("{at}.endpoints[{ei}]");
            if !seen.insert(e.name.as_str()) {
                bad(
                    format!("{eat}.name"),
                    format!("endpoint name {:?} is used twice in this profile", e.name),
                );
            }
            let mut report = |loc: &str, msg: String| bad(format!("{eat}.{loc}"), msg);
            if let Some(ep) = compile_endpoint(
                e,
                &names,
                monitor,
                &mut targets,
                &mut target_index,
                &mut report,
            ) {
                endpoints.push(ep);
                origin.push(ei);
            }
        }
        routing::check_profile(spec, &at, &endpoints, &origin, &mut bad);
        let latency = routing::compile_latency(
            spec,
            &at,
            &endpoints,
            &geo.region_names,
            names.geoip,
            &mut bad,
        );
        profiles.push(ProfileDef {
            key: key.clone(),
            name,
            wire,
            method: spec.method,
            ttl: spec.ttl,
            ttl_unstable: spec.ttl_unstable.min(spec.ttl),
            all_down: spec.all_down,
            max_answers: spec
                .max_answers
                .unwrap_or(if spec.method == Method::Multivalue {
                    8
                } else {
                    1
                }),
            performance_tolerance: spec.performance_tolerance.unwrap_or(0.2),
            performance_tolerance_min: spec
                .performance_tolerance_min
                .map_or(Duration::from_millis(5), |d| d.0),
            latency,
            endpoints,
            subnet_rules: Vec::new(),
            subnet_table: PrefixTable::default(),
            geo_index: FxHashMap::default(),
            client_nets: NetSet::default(),
            uses_geoip: false,
            short_ttl_answers: AnswerCounter::default(),
        });
        origins.push(origin);
    }

    let nesting_ok = routing::check_nested(&profiles, &origins, &mut bad);
    routing::finish_profiles(&mut profiles, &geo, nesting_ok);

    // Attach every profile to the zone holding it.
    let zone_by_apex: FxHashMap<Box<[u8]>, usize> = zones
        .iter()
        .enumerate()
        .map(|(i, z)| (z.apex.clone(), i))
        .collect();
    for (pi, p) in profiles.iter().enumerate() {
        let at = format!("profiles.{}", key_part(&p.key));
        let mut cur: &[u8] = &p.wire;
        let zone = loop {
            if let Some(&i) = zone_by_apex.get(cur) {
                break Some(i);
            }
            match parent(cur) {
                Some(pp) => cur = pp,
                None => break None,
            }
        };
        match zone {
            None => bad(
                at,
                format!(
                    "{} is not inside any served zone; add a zone file for its parent to zones.dir or rename the profile",
                    p.name
                ),
            ),
            Some(zi) => {
                if let Err(e) = zones[zi].attach_profile(&p.wire, pi as u32) {
                    bad(at, e.to_string());
                }
            }
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Model {
        generation,
        zones,
        zone_by_apex,
        profiles,
        profile_by_name,
        sites,
        targets,
        regions,
        mmdb: config.geo.mmdb.clone(),
        geo,
        fingerprint: String::new(),
    })
}

/// Names an endpoint may refer to.
struct Names<'a> {
    sites: &'a [String],
    profiles: &'a HashMap<String, u32>,
    /// `[geo.regions]` names, sorted.
    regions: &'a [String],
    /// `geo.mmdb` is set: countries and continents can match.
    geoip: bool,
}

fn compile_endpoint(
    e: &EndpointSpec,
    names: &Names<'_>,
    monitor: Option<&MonitorSpec>,
    targets: &mut Vec<ProbeTarget>,
    target_index: &mut HashMap<ProbeTarget, u32>,
    bad: &mut impl FnMut(&str, String),
) -> Option<EndpointDef> {
    let before_ok = std::cell::Cell::new(true);
    let mut fail = |loc: &str, msg: String| {
        before_ok.set(false);
        bad(loc, msg);
    };
    let site = match &e.site {
        None => None,
        Some(s) => match names.sites.iter().position(|x| x == s) {
            Some(i) => Some(i as u32),
            None => {
                fail(
                    "site",
                    format!("no site named {s:?}; add [[sites]] name = {s:?} or fix the name"),
                );
                None
            }
        },
    };
    if !(1..=1000).contains(&e.weight) {
        fail(
            "weight",
            format!("{} is out of range; use 1 to 1000", e.weight),
        );
    }
    if !(1..=1000).contains(&e.priority) {
        fail(
            "priority",
            format!("{} is out of range; use 1 to 1000", e.priority),
        );
    }
    let kinds = usize::from(e.address.is_some() || !e.addresses.is_empty())
        + usize::from(e.target.is_some())
        + usize::from(e.profile.is_some());
    if kinds != 1 {
        fail(
            "address",
            "give exactly one of address/addresses, target (CNAME) or profile (nested)".into(),
        );
        return None;
    }
    let answer = if let Some(t) = &e.target {
        match Name::from_str(t) {
            Ok(mut n) => {
                n.set_fqdn(true);
                let wire = lower_wire(&n);
                Answer::Cname { name: n, wire }
            }
            Err(err) => {
                fail("target", format!("{t:?} is not a domain name ({err})"));
                return None;
            }
        }
    } else if let Some(p) = &e.profile {
        match names.profiles.get(&normalize_name(p)) {
            Some(&i) => Answer::Nested(i),
            None => {
                fail("profile", format!("no profile named {p:?}"));
                return None;
            }
        }
    } else {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let all = e.address.iter().chain(e.addresses.iter());
        for (i, a) in all.enumerate() {
            match a.trim().parse::<IpAddr>() {
                Ok(IpAddr::V4(x)) => v4.push(x),
                Ok(IpAddr::V6(x)) => v6.push(x),
                Err(_) => fail(
                    if e.address.is_some() && i == 0 {
                        "address"
                    } else {
                        "addresses"
                    },
                    format!("{a:?} is not an IP address"),
                ),
            }
        }
        Answer::Addrs { v4, v6 }
    };
    let mut subnets = Vec::new();
    for (i, s) in e.subnets.iter().enumerate() {
        match IpNet::from_str(s.trim()) {
            Ok(n) => subnets.push(n.trunc()),
            Err(_) => fail(
                &format!("subnets[{i}]"),
                format!("{s:?} is not a subnet, e.g. \"10.10.0.0/16\""),
            ),
        }
    }

    let mut geo = Vec::new();
    for (i, r) in e.regions.iter().enumerate() {
        match routing::parse_region(r, names.regions, names.geoip) {
            Ok(k) if !geo.contains(&k) => geo.push(k),
            Ok(_) => {}
            Err(e) => fail(&format!("regions[{i}]"), e.to_string()),
        }
    }

    let probed = e.enabled && !e.always_serve && !matches!(answer, Answer::Nested(_));
    let mut target = None;
    if probed && let Some(m) = monitor {
        let m = apply_override(m, e.monitor.as_ref());
        if let Some(o) = &e.monitor {
            // The keys this endpoint sets, checked as the monitor's are; problems of the
            // profile's monitor itself are reported once, at the monitor.
            let set = o.keys_set();
            crate::config::check_monitor(&m, "monitor", &mut |key: &str, msg: String| {
                let field = key["monitor.".len()..]
                    .split(['.', '['])
                    .next()
                    .unwrap_or_default();
                // A problem of a key the override does not set, caused by one it does.
                let caused = (field == "port" && set.contains(&"protocol"))
                    || (field == "retry_interval" && set.contains(&"interval"));
                if set.contains(&field) || caused {
                    fail(key, msg);
                }
            });
        }
        let addr = match (&e.probe_address, &answer) {
            (Some(p), _) => match p.trim().parse::<IpAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    fail("probe_address", format!("{p:?} is not an IP address"));
                    None
                }
            },
            (None, Answer::Addrs { v4, v6 }) => v4
                .first()
                .map(|a| IpAddr::V4(*a))
                .or_else(|| v6.first().map(|a| IpAddr::V6(*a))),
            (None, _) => {
                fail(
                    "probe_address",
                    "a CNAME endpoint with a monitor needs probe_address (the address to probe)"
                        .into(),
                );
                None
            }
        };
        if let Some(addr) = addr {
            let port = m.port.unwrap_or(match m.protocol {
                Protocol::Https => 443,
                _ => 80,
            });
            let t = ProbeTarget {
                addr,
                port,
                protocol: m.protocol,
                path: m.path.clone(),
                host: m.host.clone(),
                headers: m
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                expected_status: m
                    .expected_status
                    .iter()
                    .filter_map(|r| parse_status_range(r))
                    .collect(),
                body_contains: m.body_contains.clone().filter(|s| !s.is_empty()),
                interval: m.interval.0,
                timeout: m.timeout.0,
                tolerated_failures: m.tolerated_failures,
                rise: m.rise.max(1),
                retry_interval: m.retry_interval(),
                tls: m.tls.clone(),
                reuse_connection: m.reuse_connection && m.protocol != Protocol::Tcp,
            };
            let idx = *target_index.entry(t.clone()).or_insert_with(|| {
                targets.push(t);
                (targets.len() - 1) as u32
            });
            target = Some(idx);
        }
    }
    if !before_ok.get() {
        return None;
    }
    Some(EndpointDef {
        name: e.name.clone(),
        site,
        answer,
        weight: e.weight,
        priority: e.priority,
        regions: e.regions.clone(),
        geo,
        subnets,
        enabled: e.enabled,
        always_serve: e.always_serve,
        min_child_endpoints: e.min_child_endpoints,
        target,
        // Filled in once every profile is compiled (nested endpoints need their child).
        answers_a: false,
        answers_aaaa: false,
        answer_count: Default::default(),
    })
}

fn apply_override(m: &MonitorSpec, o: Option<&crate::config::MonitorOverride>) -> MonitorSpec {
    let mut m = m.clone();
    let Some(o) = o else { return m };
    macro_rules! take {
        ($($f:ident),*) => { $( if let Some(v) = &o.$f { m.$f = v.clone(); } )* };
    }
    take!(
        protocol,
        path,
        headers,
        expected_status,
        interval,
        timeout,
        tolerated_failures,
        rise,
        tls,
        reuse_connection
    );
    if o.retry_interval.is_some() {
        m.retry_interval = o.retry_interval;
    }
    if o.port.is_some() {
        m.port = o.port;
    }
    if o.host.is_some() {
        m.host = o.host.clone();
    }
    if o.body_contains.is_some() {
        m.body_contains = o.body_contains.clone();
    }
    m
}

/// Shared handle to a model.
pub type SharedModel = Arc<Model>;

#[cfg(test)]
mod tests;

/// `signpost_answers_total` of one endpoint, kept in the model: one atomic add per answer.
/// The two per-endpoint families are not registered with the recorder (at 30,000 endpoints
/// its label sets cost about 30 MiB); `metrics::render_endpoints` writes them from the snapshot
/// at scrape time. A reload carries each endpoint's count over to the new model
/// ([`AnswerCounter::carry_from`]), so the series continues.
#[derive(Debug, Default)]
pub struct AnswerCounter(AtomicU64);

impl AnswerCounter {
    /// Counts one answer that included this endpoint.
    pub fn increment(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Adds the count of the same endpoint in the model being replaced.
    pub fn carry_from(&self, old: &AnswerCounter) {
        self.0.fetch_add(old.get(), Ordering::Relaxed);
    }
}
