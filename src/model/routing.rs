//! Compiling and checking what routing needs: client regions and the MaxMind DB, the
//! per-method rules of a profile (geographic regions, subnet lists, multivalue endpoint
//! kinds, performance tolerance and latency table), nested profiles' minimums, and the
//! per-profile tables the query path reads (subnet rules, the subnets an answer depends
//! on, which address types each endpoint can answer).

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;

use super::{Answer, EndpointDef, MAX_NESTING, ProfileDef};
use crate::config::{GeoSpec, Method, ProfileSpec, key_part};
use rustc_hash::FxHashMap;

use super::geoip::{GeoIp, GeoKey, is_reserved_name};
use super::prefix::{NetSet, PrefixTable};

/// performance: one row of `[profiles.X.latency]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRow {
    /// The region as written (a `[geo.regions]` name, country, continent or WORLD).
    pub region: String,
    pub key: GeoKey,
    /// Per endpoint of the profile (same order), the latency to rank it by for clients
    /// in this region instead of its measured RTT.
    pub latency: Vec<Option<Duration>>,
}

/// `[geo]` compiled for lookups on the query path.
#[derive(Debug, Default)]
pub struct Geo {
    /// `[geo.regions]` names, sorted; [`GeoKey::Region`] indexes this.
    pub region_names: Vec<String>,
    /// Every region subnet with its region's index, longest prefix first.
    pub nets: Vec<(IpNet, u32)>,
    /// `nets` for longest-prefix lookups.
    pub table: PrefixTable,
    /// Country and continent by address (`geo.mmdb`), loaded at compile time.
    pub mmdb: Option<GeoIp>,
}

/// `[geo]`: region subnets (validated, longest prefix first) and the MaxMind DB.
pub(super) fn compile_geo(spec: &GeoSpec, bad: &mut impl FnMut(String, String)) -> Geo {
    let region_names: Vec<String> = spec.regions.keys().cloned().collect();
    let mut nets: Vec<(IpNet, u32)> = Vec::new();
    for (id, (name, list)) in spec.regions.iter().enumerate() {
        let at = format!("geo.regions.{}", key_part(name));
        if is_reserved_name(name) {
            bad(
                at.clone(),
                format!(
                    "{name:?} reads as a country or continent code (or WORLD) in regions; rename the region, e.g. \"corp-{}\"",
                    name.to_ascii_lowercase()
                ),
            );
        }
        if list.is_empty() {
            bad(
                at.clone(),
                "a region needs at least one subnet, e.g. [\"10.20.0.0/16\"]".into(),
            );
        }
        for (i, n) in list.iter().enumerate() {
            let net = match IpNet::from_str(n.trim()) {
                Ok(net) => net.trunc(),
                Err(_) => {
                    bad(
                        format!("{at}[{i}]"),
                        format!(
                            "{n:?} is not a subnet; write e.g. \"10.20.0.0/16\" or \"fd00:20::/32\""
                        ),
                    );
                    continue;
                }
            };
            if let Some((_, other)) = nets.iter().find(|(x, _)| *x == net) {
                let other = &region_names[*other as usize];
                let msg = if *other == *name {
                    format!("{net} is listed twice in this region")
                } else {
                    format!("{net} is also in region {other:?}; a subnet belongs to one region")
                };
                bad(format!("{at}[{i}]"), msg);
                continue;
            }
            nets.push((net, id as u32));
        }
    }
    nets.sort_by_key(|r| std::cmp::Reverse(r.0.prefix_len()));
    let mmdb = spec.mmdb.as_ref().and_then(|path| match GeoIp::open(path) {
        Ok(db) => Some(db),
        Err(e) => {
            bad("geo.mmdb".into(), e.to_string());
            None
        }
    });
    Geo {
        region_names,
        table: PrefixTable::new(nets.iter().copied()),
        nets,
        mmdb,
    }
}

/// Reads a `regions` entry (or a latency table row's key). Countries and continents need
/// a MaxMind DB (`geoip`: `geo.mmdb` is set), else they would never match.
pub(super) fn parse_region(
    text: &str,
    region_names: &[String],
    geoip: bool,
) -> Result<GeoKey, RegionError> {
    match GeoKey::parse(text, region_names) {
        None => Err(RegionError::Unknown {
            text: text.to_owned(),
            configured: if region_names.is_empty() {
                "none configured".to_owned()
            } else {
                region_names.join(", ")
            },
        }),
        Some(GeoKey::Country(_) | GeoKey::Continent(_)) if !geoip => {
            Err(RegionError::NeedsMmdb(text.to_owned()))
        }
        Some(k) => Ok(k),
    }
}

/// A `regions` entry or latency table key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(super) enum RegionError {
    /// Names no `[geo.regions]` entry, country, continent or WORLD; `configured` lists the
    /// region names there are.
    #[error(
        "unknown region {text:?}; use a [geo.regions] name ({configured}), an ISO 3166 country code such as \"US\", a continent code (AF AN AS EU NA OC SA) or \"WORLD\""
    )]
    Unknown { text: String, configured: String },
    #[error(
        "{0:?} is a country or continent, which only a MaxMind DB can tell; set geo.mmdb (e.g. \"geo/GeoLite2-Country.mmdb\") or use [geo.regions] names and WORLD"
    )]
    NeedsMmdb(String),
}

/// Method-specific rules of one profile. `origin[i]` is the config index of `endpoints[i]`.
pub(super) fn check_profile(
    spec: &ProfileSpec,
    at: &str,
    endpoints: &[EndpointDef],
    origin: &[usize],
    bad: &mut impl FnMut(String, String),
) {
    match spec.method {
        Method::Geographic => {
            for (i, e) in spec.endpoints.iter().enumerate() {
                if e.regions.is_empty() {
                    bad(
                        format!("{at}.endpoints[{i}].regions"),
                        "a geographic endpoint needs regions; add e.g. regions = [\"corp-emea\", \"DE\", \"EU\"] or [\"WORLD\"] for everyone else".into(),
                    );
                }
            }
        }
        Method::Subnet => {
            let mut seen: Vec<(IpNet, usize)> = Vec::new();
            for (i, e) in endpoints.iter().enumerate() {
                let mut mine: Vec<IpNet> = Vec::new();
                for (k, net) in e.subnets.iter().enumerate() {
                    if mine.contains(net) {
                        continue;
                    }
                    mine.push(*net);
                    if let Some((_, j)) = seen.iter().find(|(n, _)| n == net) {
                        bad(
                            format!("{at}.endpoints[{}].subnets[{k}]", origin[i]),
                            format!(
                                "{net} is also a subnet of endpoint {:?}; a subnet routes to one endpoint only (a more specific subnet may sit inside another)",
                                endpoints[*j].name
                            ),
                        );
                    } else {
                        seen.push((*net, i));
                    }
                }
            }
        }
        Method::Multivalue => {
            for (i, e) in spec.endpoints.iter().enumerate() {
                let key = match (&e.target, &e.profile) {
                    (Some(_), _) => "target",
                    (None, Some(_)) => "profile",
                    (None, None) => continue,
                };
                bad(
                    format!("{at}.endpoints[{i}].{key}"),
                    "multivalue answers with addresses only; use address or addresses, or another method for CNAME and nested endpoints".into(),
                );
            }
        }
        Method::Performance => {
            if let Some(t) = spec.performance_tolerance
                && !(0.0..=10.0).contains(&t)
            {
                bad(
                    format!("{at}.performance_tolerance"),
                    format!(
                        "{t} is out of range; use a fraction of the best RTT from 0 to 10, e.g. 0.2 for 20 %"
                    ),
                );
            }
        }
        Method::Priority | Method::Weighted => {}
    }
}

/// `[profiles.X.latency]`: region → endpoint name → duration.
pub(super) fn compile_latency(
    spec: &ProfileSpec,
    at: &str,
    endpoints: &[EndpointDef],
    region_names: &[String],
    geoip: bool,
    bad: &mut impl FnMut(String, String),
) -> Vec<LatencyRow> {
    if spec.latency.is_empty() {
        return Vec::new();
    }
    if spec.method != Method::Performance {
        bad(
            format!("{at}.latency"),
            "a latency table applies to method = \"performance\" only; remove it or change the method".into(),
        );
        return Vec::new();
    }
    let mut rows = Vec::new();
    for (region, row) in &spec.latency {
        let rat = format!("{at}.latency.{}", key_part(region));
        let key = match parse_region(region, region_names, geoip) {
            Ok(k) => k,
            Err(e) => {
                bad(rat, e.to_string());
                continue;
            }
        };
        let mut latency = vec![None; endpoints.len()];
        for (name, d) in row {
            match endpoints.iter().position(|e| e.name == *name) {
                Some(i) => latency[i] = Some(d.0),
                None if spec.endpoints.iter().any(|e| e.name == *name) => {}
                None => {
                    let known: Vec<&str> = spec.endpoints.iter().map(|e| e.name.as_str()).collect();
                    bad(
                        format!("{rat}.{}", key_part(name)),
                        format!(
                            "no endpoint named {name:?} in this profile; the endpoints are {}",
                            known.join(", ")
                        ),
                    );
                }
            }
        }
        if rows.iter().any(|r: &LatencyRow| r.key == key) {
            bad(
                rat,
                format!("{region:?} names the same region as another row"),
            );
            continue;
        }
        rows.push(LatencyRow {
            region: region.clone(),
            key,
            latency,
        });
    }
    rows
}

/// Nested profiles: no cycles, no deeper than `MAX_NESTING`, `min_child_endpoints` from 1
/// to the child's number of endpoints. Returns whether there is no cycle and no excess.
pub(super) fn check_nested(
    profiles: &[ProfileDef],
    origins: &[Vec<usize>],
    bad: &mut impl FnMut(String, String),
) -> bool {
    let mut ok = true;
    for (pi, p) in profiles.iter().enumerate() {
        if let Some(msg) = nesting_problem(profiles, pi) {
            bad(format!("profiles.{}", key_part(&p.key)), msg);
            ok = false;
        }
    }
    for (pi, p) in profiles.iter().enumerate() {
        for (i, e) in p.endpoints.iter().enumerate() {
            let Answer::Nested(child) = e.answer else {
                continue;
            };
            let Some(c) = profiles.get(child as usize) else {
                continue;
            };
            let n = c.endpoints.len() as u32;
            if !(1..=n.max(1)).contains(&e.min_child_endpoints) {
                bad(
                    format!(
                        "profiles.{}.endpoints[{}].min_child_endpoints",
                        key_part(&p.key),
                        origins[pi][i]
                    ),
                    format!(
                        "{} is out of range; {} has {n} endpoint(s), so use 1 to {n}",
                        e.min_child_endpoints, c.key
                    ),
                );
            }
        }
    }
    ok
}

fn nesting_problem(profiles: &[ProfileDef], start: usize) -> Option<String> {
    fn walk(profiles: &[ProfileDef], at: usize, path: &mut Vec<usize>) -> Option<String> {
        if path.contains(&at) {
            let names: Vec<&str> = path
                .iter()
                .chain([&at])
                .map(|&i| profiles[i].key.as_str())
                .collect();
            return Some(format!(
                "nested profiles form a cycle: {}",
                names.join(" → ")
            ));
        }
        if path.len() > MAX_NESTING {
            return Some(format!(
                "profiles are nested deeper than {MAX_NESTING} levels"
            ));
        }
        path.push(at);
        for e in &profiles[at].endpoints {
            if let Answer::Nested(child) = e.answer
                && let Some(m) = walk(profiles, child as usize, path)
            {
                return Some(m);
            }
        }
        path.pop();
        None
    }
    walk(profiles, start, &mut Vec::new())
}

/// Fills in the tables the query path reads. `nesting_ok`: no cycles (else the address
/// types of nested endpoints are left unknown; the model is rejected anyway).
pub(super) fn finish_profiles(profiles: &mut [ProfileDef], geo: &Geo, nesting_ok: bool) {
    if nesting_ok {
        let mut memo = vec![None; profiles.len()];
        for pi in 0..profiles.len() {
            families(profiles, pi, &mut memo, 0);
        }
        for p in profiles.iter_mut() {
            for e in &mut p.endpoints {
                let (a, aaaa) = match &e.answer {
                    Answer::Addrs { v4, v6 } => (!v4.is_empty(), !v6.is_empty()),
                    Answer::Cname { .. } => (true, true),
                    Answer::Nested(c) => memo[*c as usize].unwrap_or((false, false)),
                };
                e.answers_a = a;
                e.answers_aaaa = aaaa;
            }
        }
    }
    for p in profiles.iter_mut() {
        let keys: Vec<GeoKey> = match p.method {
            Method::Geographic => p
                .endpoints
                .iter()
                .flat_map(|e| e.geo.iter().copied())
                .collect(),
            Method::Performance => p.latency.iter().map(|r| r.key).collect(),
            _ => Vec::new(),
        };
        let regions: BTreeSet<u32> = keys
            .iter()
            .filter_map(|k| match k {
                GeoKey::Region(i) => Some(*i),
                _ => None,
            })
            .collect();
        p.uses_geoip = keys
            .iter()
            .any(|k| matches!(k, GeoKey::Country(_) | GeoKey::Continent(_)));
        let nets: Vec<IpNet> = geo
            .nets
            .iter()
            .filter(|(_, id)| regions.contains(id))
            .map(|(n, _)| *n)
            .collect();
        p.client_nets = NetSet::new(&nets);
        if p.method == Method::Geographic {
            let mut index: FxHashMap<GeoKey, Vec<u32>> = FxHashMap::default();
            for (i, e) in p.endpoints.iter().enumerate() {
                for k in &e.geo {
                    index.entry(*k).or_default().push(i as u32);
                }
            }
            p.geo_index = index.into_iter().map(|(k, v)| (k, v.into())).collect();
        }
        if p.method == Method::Subnet {
            let mut rules: Vec<(IpNet, u32)> = Vec::new();
            for (i, e) in p.endpoints.iter().enumerate() {
                for net in &e.subnets {
                    if !rules.iter().any(|(n, _)| n == net) {
                        rules.push((*net, i as u32));
                    }
                }
            }
            rules.sort_by_key(|r| std::cmp::Reverse(r.0.prefix_len()));
            let nets: Vec<IpNet> = rules.iter().map(|(n, _)| *n).collect();
            p.client_nets = NetSet::new(&nets);
            p.subnet_table = PrefixTable::new(rules.iter().copied());
            p.subnet_rules = rules;
        }
    }
}

/// Whether some endpoint of profile `pi` can answer A / AAAA, memoized (no cycles).
fn families(
    profiles: &[ProfileDef],
    pi: usize,
    memo: &mut [Option<(bool, bool)>],
    depth: usize,
) -> (bool, bool) {
    if let Some(f) = memo[pi] {
        return f;
    }
    if depth > MAX_NESTING + 1 {
        return (false, false);
    }
    let mut out = (false, false);
    for e in &profiles[pi].endpoints {
        let f = match &e.answer {
            Answer::Addrs { v4, v6 } => (!v4.is_empty(), !v6.is_empty()),
            Answer::Cname { .. } => (true, true),
            Answer::Nested(c) => families(profiles, *c as usize, memo, depth + 1),
        };
        out = (out.0 || f.0, out.1 || f.1);
    }
    memo[pi] = Some(out);
    out
}
