//! Explainable decisions: the same decision as [`decide`](super::decide), with a record of
//! how it was made, for `GET /api/v1/explain` and `signpost explain`. Nothing here runs on
//! the query path.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::Serialize;

use super::location::Location;
use super::methods::latency_row;
use super::{Client, Decision, Kind, Mode, Record, Rule, View, code_str, decide_traced};
use crate::base::Rtype;
use crate::config::{AllDown, Method};
use crate::model::{Answer, Model};
use crate::snapshot::{Snapshot, Status};
use crate::zone::name::to_text;

/// How a decision was made. Serialized as the explain API's answer.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Trace {
    /// The profile asked about, fully qualified.
    pub profile: String,
    /// The query type asked (`A`, `AAAA`, `CNAME`, ...).
    pub qtype: String,
    pub client: ClientTrace,
    /// One step per profile consulted: the one asked about, then each nested child picked.
    pub steps: Vec<StepTrace>,
    /// The rule that decided the answer (the last step's), in words.
    pub rule: String,
    /// ECS SCOPE PREFIX-LENGTH of the decision (0: the answer does not depend on the client).
    pub scope: u8,
    /// The scope echoed to the client: at most its ECS source prefix. `None` without ECS.
    pub echoed_scope: Option<u8>,
    pub answer: AnswerTrace,
}

/// Who the client is and where.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClientTrace {
    /// The address routing used: the ECS address, else the packet source.
    pub address: Option<IpAddr>,
    /// Set when the address came from EDNS Client Subnet.
    pub ecs_source_prefix: Option<u8>,
    /// The most specific configured region holding the address.
    pub region: Option<String>,
    /// Every configured region holding the address, most specific first.
    pub regions: Vec<RegionTrace>,
    /// ISO 3166 country from the MaxMind DB.
    pub country: Option<String>,
    /// Continent code from the MaxMind DB.
    pub continent: Option<String>,
    /// The MaxMind DB network holding the address.
    pub geoip_network: Option<String>,
}

/// One configured region holding the client.
#[derive(Clone, Debug, Serialize)]
pub struct RegionTrace {
    pub name: String,
    /// The region's most specific subnet holding the client.
    pub subnet: String,
}

/// The decision at one profile.
#[derive(Clone, Debug, Serialize)]
pub struct StepTrace {
    pub profile: String,
    pub method: Method,
    pub all_down: AllDown,
    pub candidates: Vec<CandidateTrace>,
    /// More specific matches passed over because none of their endpoints was eligible
    /// (geographic, subnet).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    pub rule: String,
    /// `answer`, `nodata` or `servfail`.
    pub outcome: &'static str,
    /// Nothing was eligible and `all_down = "serve_all"` answered anyway.
    pub served_all_down: bool,
    pub scope: u8,
    /// Endpoints picked at this step.
    pub picked: Vec<String>,
    /// The profile's configured `ttl`.
    pub ttl: u32,
    /// The TTL its answers carry now: `ttl`, or min(`ttl`, `ttl_unstable`) while unstable.
    pub ttl_now: u32,
    /// Why the profile is unstable (health-aware TTL), in words; empty when stable.
    pub unstable: Vec<String>,
}

/// One endpoint of a profile as the decision saw it.
#[derive(Clone, Debug, Serialize)]
pub struct CandidateTrace {
    pub endpoint: String,
    /// What it answers with: addresses, `CNAME target.`, or `profile child.`.
    pub answers: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Its status; for a nested endpoint, derived from its child's Online endpoints.
    pub status: Status,
    /// nested: how many of the child's endpoints are Online, and how many are needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_online: Option<String>,
    /// Effective weight in the config's units (lowered by a drain ramp, e.g. 0.5).
    pub weight: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// performance: smoothed probe RTT from this instance, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// performance: the latency ranked by (a latency table override, else the RTT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<String>,
    /// Whether it has records of the query's type.
    pub has_data: bool,
    /// Whether its status allows answering with it.
    pub eligible: bool,
    pub picked: bool,
}

/// The answer the decision gives.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AnswerTrace {
    /// `answer`, `nodata` or `servfail`.
    pub kind: &'static str,
    /// `NOERROR` or `SERVFAIL`.
    pub rcode: &'static str,
    pub ttl: Option<u32>,
    /// Records in presentation form, e.g. `A 192.0.2.10`.
    pub records: Vec<String>,
    /// The endpoints answering, as `profile/endpoint`.
    pub endpoints: Vec<String>,
}

/// A profile by name (`app.gslb.example`, any case, dot optional) or by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileRef<'a> {
    Name(&'a str),
    Index(u32),
}

impl<'a> From<&'a str> for ProfileRef<'a> {
    fn from(s: &'a str) -> Self {
        ProfileRef::Name(s)
    }
}

impl From<u32> for ProfileRef<'_> {
    fn from(i: u32) -> Self {
        ProfileRef::Index(i)
    }
}

/// Why there is nothing to explain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    #[error("no profile named {0:?}; GET /api/v1/status lists the profiles")]
    UnknownProfile(String),
    #[error("no profile with index {0}")]
    UnknownIndex(u32),
}

/// `A`, `aaaa`, `CNAME`, `ANY`, `TYPE28`, `28` → the type number.
pub fn qtype_from_str(s: &str) -> Option<Rtype> {
    let s = s.trim();
    let upper = s.to_ascii_uppercase();
    // RFC 3597 §5: TYPEnnn.
    if let Ok(n) = upper.strip_prefix("TYPE").unwrap_or(&upper).parse::<u16>() {
        return Some(Rtype(n));
    }
    hickory_proto::rr::RecordType::from_str(&upper)
        .ok()
        .map(|t| Rtype(u16::from(t)))
}

/// Explains the answer to a query for `profile` and `qtype` from `client` (an address, or
/// an ECS subnet: see [`Client::parse`]), against `snap`.
pub fn explain(
    snap: &Snapshot,
    profile: ProfileRef<'_>,
    qtype: Rtype,
    client: Client,
) -> Result<Trace, ExplainError> {
    explain_with_rng(snap, profile, qtype, client, &mut SmallRng::from_os_rng())
}

/// As [`explain`], with the random source given (for tests).
pub fn explain_with_rng<R: Rng + ?Sized>(
    snap: &Snapshot,
    profile: ProfileRef<'_>,
    qtype: Rtype,
    client: Client,
    rng: &mut R,
) -> Result<Trace, ExplainError> {
    let index = match profile {
        ProfileRef::Name(n) => snap
            .model
            .profile(n)
            .map(|(i, _)| i)
            .ok_or_else(|| ExplainError::UnknownProfile(n.to_owned()))?,
        ProfileRef::Index(i) => {
            if i as usize >= snap.model.profiles.len() {
                return Err(ExplainError::UnknownIndex(i));
            }
            i
        }
    };
    let mut trace = Trace::default();
    decide_traced(snap, index, qtype, &client, rng, &mut trace);
    Ok(trace)
}

fn outcome(kind: Kind) -> &'static str {
    match kind {
        Kind::Answer => "answer",
        Kind::NoData => "nodata",
        Kind::ServFail => "servfail",
    }
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn type_name(qtype: Rtype) -> String {
    hickory_proto::rr::RecordType::from(qtype.0).to_string()
}

/// Records the decision `d` made at `view`'s profile.
pub(super) fn record_step(
    t: &mut Trace,
    view: &View<'_>,
    d: &Decision,
    depth: usize,
    loc: &mut Location,
) {
    let model = view.model;
    let p = view.p;
    if depth == 0 {
        t.profile = p.name.to_string();
    }
    let picked = |e: usize| d.picks().iter().any(|k| k.endpoint as usize == e);
    let row = match p.method {
        Method::Performance => latency_row(view, loc).0,
        _ => None,
    };
    let candidates = p
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let st = view.states[i];
            let status = view.status(i);
            let child_online = match e.answer {
                Answer::Nested(c) => {
                    let states = view.snap.endpoints[c as usize].iter().map(|s| s.status);
                    let (up, checking, total) = crate::status::child_counts(states);
                    Some(format!(
                        "{up} of {total} Online ({checking} being checked), needs {}",
                        e.min_child_endpoints
                    ))
                }
                _ => None,
            };
            let perf = p.method == Method::Performance;
            let latency = row
                .and_then(|r| p.latency[r].latency[i])
                .or_else(|| view.rtt(i));
            CandidateTrace {
                endpoint: e.name.clone(),
                answers: answer_text(model, &e.answer),
                site: e.site.map(|s| model.sites[s as usize].clone()),
                status,
                child_online,
                weight: st.effective_weight(),
                priority: (p.method == Method::Priority).then_some(e.priority),
                rtt_ms: view.rtt(i).filter(|_| perf).map(ms),
                latency_ms: latency.filter(|_| perf).map(ms),
                regions: if p.method == Method::Geographic {
                    e.regions.clone()
                } else {
                    Vec::new()
                },
                subnets: if p.method == Method::Subnet {
                    e.subnets.iter().map(IpNet::to_string).collect()
                } else {
                    Vec::new()
                },
                has_data: view.has_data(i),
                eligible: view.eligible(i, Mode::Strict).is_some(),
                picked: picked(i),
            }
        })
        .collect();
    let rule = describe(view, d, row);
    t.steps.push(StepTrace {
        profile: p.name.to_string(),
        method: p.method,
        all_down: p.all_down,
        candidates,
        skipped: skipped(view, d, loc),
        rule,
        outcome: outcome(d.kind),
        served_all_down: d.all_down,
        scope: d.scope,
        picked: d
            .picks()
            .iter()
            .map(|k| p.endpoints[k.endpoint as usize].name.clone())
            .collect(),
        ttl: p.ttl,
        ttl_now: view.snap.ttl(view.profile),
        unstable: crate::status::unstable_reasons(view.snap, view.profile as usize),
    });
}

/// Fills in the client, the final rule and scope, and the answer.
pub(super) fn finish(
    t: &mut Trace,
    snap: &Snapshot,
    client: &Client,
    qtype: Rtype,
    loc: &mut Location,
    d: &Decision,
) {
    let model = &snap.model;
    t.qtype = type_name(qtype);
    let c = &mut t.client;
    c.address = Some(client.addr);
    c.ecs_source_prefix = client.ecs_source_prefix;
    let addr = loc.addr;
    c.regions = loc
        .regions(&model.geo)
        .iter()
        .map(|&(id, prefix)| RegionTrace {
            name: model.geo.region_names[id as usize].clone(),
            subnet: IpNet::new(addr, prefix)
                .map(|n| n.trunc().to_string())
                .unwrap_or_default(),
        })
        .collect();
    c.region = c.regions.first().map(|r| r.name.clone());
    if let Some(m) = loc.geoip(&model.geo) {
        c.country = m.country.as_ref().map(|x| code_str(x).to_owned());
        c.continent = m.continent.as_ref().map(|x| code_str(x).to_owned());
        c.geoip_network = IpNet::new(loc.addr, m.prefix)
            .ok()
            .map(|n| n.trunc().to_string());
    }
    t.rule = t.steps.last().map(|s| s.rule.clone()).unwrap_or_default();
    if t.steps.len() > 1 {
        let path: Vec<&str> = t.steps.iter().map(|s| s.profile.as_str()).collect();
        t.rule = format!("nested {}: {}", path.join(" → "), t.rule);
    }
    t.scope = d.scope;
    t.echoed_scope = client.ecs_source_prefix.map(|s| d.scope.min(s));

    let top_ttl = t
        .steps
        .first()
        .and_then(|s| model.profile(&s.profile))
        .map_or(u32::MAX, |(i, _)| snap.ttl(i));
    let qt = if qtype == Rtype::ANY { Rtype::A } else { qtype };
    let mut a = AnswerTrace {
        kind: outcome(d.kind),
        rcode: if d.kind == Kind::ServFail {
            "SERVFAIL"
        } else {
            "NOERROR"
        },
        ..AnswerTrace::default()
    };
    d.for_each_record(snap, qt, |p, r| {
        a.ttl = Some(top_ttl.min(snap.ttl(p)));
        a.records.push(match r {
            Record::A(x) => format!("A {x}"),
            Record::Aaaa(x) => format!("AAAA {x}"),
            Record::Cname(w) => format!("CNAME {}", to_text(w)),
        });
    });
    for k in d.picks() {
        let p = &model.profiles[k.profile as usize];
        let name = format!("{}/{}", p.name, p.endpoints[k.endpoint as usize].name);
        if !a.endpoints.contains(&name) {
            a.endpoints.push(name);
        }
    }
    t.answer = a;
}

fn answer_text(model: &Model, a: &Answer) -> String {
    match a {
        Answer::Addrs { v4, v6 } => {
            let all: Vec<String> = v4
                .iter()
                .map(ToString::to_string)
                .chain(v6.iter().map(ToString::to_string))
                .collect();
            all.join(", ")
        }
        Answer::Cname { name, .. } => format!("CNAME {name}"),
        Answer::Nested(c) => format!("profile {}", model.profiles[*c as usize].name),
    }
}

/// The rule in words.
fn describe(view: &View<'_>, d: &Decision, row: Option<usize>) -> String {
    let p = view.p;
    let names = &view.model.geo.region_names;
    let qtype = type_name(view.qtype);
    let text = match d.rule {
        Rule::OtherType => {
            "a profile answers A, AAAA and CNAME only; other types are NODATA".to_owned()
        }
        Rule::NoRecords => format!("no endpoint has {qtype} records: NODATA"),
        Rule::Weighted => {
            "weighted: one eligible endpoint at random, in proportion to weight".to_owned()
        }
        Rule::Priority { priority } => format!(
            "priority: the eligible endpoints with the lowest priority number ({priority}), weighted among"
        ),
        Rule::Performance { best: None, .. } => {
            "performance: no eligible endpoint has a latency yet; weighted among all eligible"
                .to_owned()
        }
        Rule::Performance {
            best: Some(best),
            band,
            ..
        } => {
            let from = match row {
                Some(r) => format!(
                    " (latency table row {:?} for the client's location)",
                    p.latency[r].region
                ),
                None => " (smoothed probe RTT from this instance)".to_owned(),
            };
            format!(
                "performance: lowest latency {} ms{from}; endpoints within {} ms of it are weighted among",
                ms(best),
                ms(band)
            )
        }
        Rule::Multivalue { eligible } => format!(
            "multivalue: {} of {eligible} eligible addresses at random, shuffled (max_answers = {})",
            d.picks().len(),
            p.max_answers
        ),
        Rule::Geographic { key, prefix } => {
            let via = match key {
                super::GeoKey::Region(_) => {
                    format!(" (subnet /{prefix})")
                }
                super::GeoKey::World => String::new(),
                _ => format!(" (MaxMind DB network /{prefix})"),
            };
            format!(
                "geographic: {}{via} is the client's most specific location held by an eligible endpoint",
                key.display(names)
            )
        }
        Rule::GeoUnmatched => "geographic: no endpoint's regions hold the client's location and no endpoint has WORLD: NODATA".to_owned(),
        Rule::Subnet { net } => {
            format!("subnet: {net} is the longest eligible subnet holding the client")
        }
        Rule::SubnetFallback => "subnet: no eligible subnet holds the client; the endpoint without subnets answers".to_owned(),
        Rule::SubnetUnmatched => "subnet: no subnet holds the client and every endpoint has subnets: NODATA".to_owned(),
        Rule::AllDown => format!(
            "no eligible endpoint; all_down = \"{}\"",
            if p.all_down == AllDown::Servfail { "servfail" } else { "nodata" }
        ),
        Rule::AllDisabled => "no eligible endpoint, and every candidate is Disabled: NODATA".to_owned(),
        Rule::TooDeep => "nested profiles deeper than allowed".to_owned(),
    };
    let method_rule = !matches!(
        d.rule,
        Rule::OtherType
            | Rule::NoRecords
            | Rule::GeoUnmatched
            | Rule::SubnetUnmatched
            | Rule::AllDown
            | Rule::AllDisabled
            | Rule::TooDeep
    );
    let text = if d.kind == Kind::NoData && method_rule {
        format!("{text}; none of the endpoints it chose has {qtype} records: NODATA")
    } else {
        text
    };
    if d.all_down {
        format!(
            "no eligible endpoint; all_down = \"serve_all\" answers as if every enabled endpoint were Online: {text}"
        )
    } else {
        text
    }
}

/// geographic and subnet: the more specific matches passed over as not eligible.
fn skipped(view: &View<'_>, d: &Decision, loc: &mut Location) -> Vec<String> {
    let p = view.p;
    let mut out = Vec::new();
    let not_eligible = |e: usize| view.eligible(e, Mode::Strict).is_none();
    match (p.method, d.rule) {
        (Method::Geographic, _) => {
            let stop = match d.rule {
                Rule::Geographic { key, .. } if !d.all_down => Some(key),
                _ => None,
            };
            let names = &view.model.geo.region_names;
            loc.first(&view.model.geo, p.uses_geoip, |key| {
                if Some(key) == stop {
                    return true;
                }
                for (i, e) in p.endpoints.iter().enumerate() {
                    if e.geo.contains(&key) && not_eligible(i) {
                        out.push(format!(
                            "{}: endpoint {} is {}",
                            key.display(names),
                            e.name,
                            view.status(i).as_str()
                        ));
                    }
                }
                false
            });
        }
        (Method::Subnet, rule) => {
            let stop = match rule {
                Rule::Subnet { net } if !d.all_down => Some(net),
                _ => None,
            };
            for (net, e) in &p.subnet_rules {
                if Some(*net) == stop {
                    break;
                }
                if net.contains(&loc.addr) && not_eligible(*e as usize) {
                    out.push(format!(
                        "{net}: endpoint {} is {}",
                        p.endpoints[*e as usize].name,
                        view.status(*e as usize).as_str()
                    ));
                }
            }
        }
        _ => {}
    }
    out
}
