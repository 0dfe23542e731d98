//! Routing decisions: which endpoints of a profile answer a query. Pure functions of the
//! snapshot, the query type, the client and a random source, so every method is
//! table-tested and benchmarked without sockets.
//!
//! The hot path ([`decide_into`]) allocates nothing: it writes a fixed-size [`Decision`]
//! naming the rule that decided (a small `Copy` value) in place. [`decide_traced`] makes the same
//! decision and also fills a serializable [`Trace`] for the admin API's explain; the
//! words of the trace are produced only there.

mod answering;
mod location;
mod methods;
pub mod trace;

#[cfg(test)]
mod tests_methods;
#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_trace;
#[cfg(test)]
pub(crate) mod testutil;

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::IpNet;
use rand::Rng;

pub(crate) use crate::model::geoip::{GeoKey, code_str};
pub use answering::{Answering, all_down_fallback, answering};
use location::Location;
pub use trace::{
    AnswerTrace, CandidateTrace, ClientTrace, ExplainError, ProfileRef, RegionTrace, StepTrace,
    Trace, explain, explain_with_rng, qtype_from_str,
};

use crate::base::Rtype;
use crate::config::AllDown;
use crate::model::{Answer, EndpointDef, MAX_NESTING, Model, ProfileDef};
use crate::snapshot::{EndpointState, Snapshot, Status};

/// Where the query comes from, for location-aware methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The ECS address when the query carried one, else the packet's source.
    pub addr: IpAddr,
    /// The ECS source prefix, when the address came from ECS.
    pub ecs_source_prefix: Option<u8>,
}

impl Client {
    /// A client known by its packet source (no ECS).
    pub fn new(addr: IpAddr) -> Self {
        Self {
            addr,
            ecs_source_prefix: None,
        }
    }

    /// `10.1.2.3` (a source address) or `10.20.1.0/24` (an ECS subnet).
    pub fn parse(text: &str) -> Result<Self, ClientError> {
        let text = text.trim();
        if text.contains('/') {
            let net: IpNet = text
                .parse()
                .map_err(|_| ClientError::Subnet(text.to_owned()))?;
            Ok(Self {
                addr: net.network(),
                ecs_source_prefix: Some(net.prefix_len()),
            })
        } else {
            text.parse()
                .map(Self::new)
                .map_err(|_| ClientError::Address(text.to_owned()))
        }
    }
}

/// A client given as text (the explain API's `client`) that is neither an address nor a
/// subnet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("{0:?} is not an IP address; write e.g. 10.20.1.7 or 2001:db8::7")]
    Address(String),
    #[error("{0:?} is not a subnet; write an address and prefix length, e.g. 10.20.1.0/24")]
    Subnet(String),
}

/// The kind of answer decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Answer with the picks.
    Answer,
    /// No eligible endpoint has data of the asked type (or `all_down = "nodata"`, or a
    /// geographic / subnet client matched nothing).
    NoData,
    /// `all_down = "servfail"` and nothing is eligible.
    ServFail,
}

/// The rule that decided: why the answer is what it is. `Copy`, so the hot path can
/// carry it; [`Trace`] turns it into words.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// The query type is none of A, AAAA, CNAME, ANY.
    OtherType,
    /// No endpoint of the profile has records of the query's type.
    NoRecords,
    /// weighted: one eligible endpoint in proportion to weight.
    Weighted,
    /// priority: the lowest priority number among eligible endpoints, ties weighted.
    Priority { priority: u32 },
    /// performance: endpoints within `band` of the `best` latency, weighted. `best` is
    /// `None` when no eligible endpoint has a latency yet (then all are weighted).
    /// `row` is the latency table row used, if any.
    Performance {
        best: Option<Duration>,
        band: Duration,
        row: Option<u16>,
    },
    /// multivalue: a random sample of the eligible addresses.
    Multivalue { eligible: u32 },
    /// geographic: the client's most specific location held by an eligible endpoint.
    Geographic { key: GeoKey, prefix: u8 },
    /// geographic: no endpoint holds any of the client's locations.
    GeoUnmatched,
    /// subnet: the longest eligible subnet holding the client.
    Subnet { net: IpNet },
    /// subnet: no eligible subnet holds the client; an endpoint without subnets answers.
    SubnetFallback,
    /// subnet: no subnet holds the client and there is no endpoint without subnets.
    SubnetUnmatched,
    /// Nothing eligible, `all_down` is `nodata` or `servfail`.
    AllDown,
    /// Nothing eligible, `all_down = "serve_all"`, and every candidate is Disabled.
    AllDisabled,
    /// Nested deeper than `MAX_NESTING` (rejected at load, so never seen).
    TooDeep,
}

/// Most records one answer may hold (multivalue's `max_answers` is at most this).
pub(crate) const MAX_PICKS: usize = 32;

/// `Pick::addr` meaning every address of the endpoint of the query's family.
pub(crate) const ALL_ADDRS: u16 = u16::MAX;

/// One endpoint (or one of its addresses) in an answer. Eight bytes: a decision carries
/// up to [`MAX_PICKS`] of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pick {
    /// The profile whose endpoint answers (the leaf, after nested profiles).
    pub profile: u32,
    /// Index into the profile's endpoints (at most [`crate::model::MAX_ENDPOINTS`]).
    pub endpoint: u16,
    /// Index into the endpoint's addresses of the query's family, or [`ALL_ADDRS`].
    pub addr: u16,
}

/// One decision. Holds no heap memory, and costs nothing to create: the picks past `len`
/// are never written or read.
#[derive(Clone, Copy)]
pub struct Decision {
    pub kind: Kind,
    picks: [MaybeUninit<Pick>; MAX_PICKS],
    len: u8,
    /// ECS SCOPE PREFIX-LENGTH: the prefix length of the rule that decided (0 when the
    /// answer does not depend on the client).
    pub scope: u8,
    /// The rule that decided (of the leaf profile, after nested profiles).
    pub rule: Rule,
    /// Nothing was eligible and `all_down = "serve_all"` answered anyway.
    pub all_down: bool,
}

impl PartialEq for Decision {
    fn eq(&self, other: &Self) -> bool {
        (
            self.kind,
            self.picks(),
            self.scope,
            self.rule,
            self.all_down,
        ) == (
            other.kind,
            other.picks(),
            other.scope,
            other.rule,
            other.all_down,
        )
    }
}

impl std::fmt::Debug for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decision")
            .field("kind", &self.kind)
            .field("picks", &self.picks())
            .field("scope", &self.scope)
            .field("rule", &self.rule)
            .field("all_down", &self.all_down)
            .finish()
    }
}

impl Decision {
    pub fn new(kind: Kind, rule: Rule) -> Self {
        Self {
            kind,
            picks: [MaybeUninit::uninit(); MAX_PICKS],
            len: 0,
            scope: 0,
            rule,
            all_down: false,
        }
    }

    /// Makes `self` a fresh decision of `kind` by `rule` (no picks, scope 0), in place:
    /// the picks past `len` are left as they are, never read.
    fn reset(&mut self, kind: Kind, rule: Rule) {
        self.kind = kind;
        self.len = 0;
        self.scope = 0;
        self.rule = rule;
        self.all_down = false;
    }

    /// As [`reset`](Self::reset), with an ECS scope.
    fn set(&mut self, kind: Kind, rule: Rule, scope: u8) {
        self.reset(kind, rule);
        self.scope = scope;
    }

    pub fn picks(&self) -> &[Pick] {
        let init = &self.picks[..usize::from(self.len)];
        // SAFETY: `push` is the only writer and initialises picks[..len] in order;
        // MaybeUninit<Pick> has the layout of Pick.
        unsafe { &*(init as *const [MaybeUninit<Pick>] as *const [Pick]) }
    }

    fn push(&mut self, p: Pick) {
        if usize::from(self.len) < MAX_PICKS {
            self.picks[usize::from(self.len)] = MaybeUninit::new(p);
            self.len += 1;
        }
    }

    /// Calls `f` with each record of the answer in order, with the index of the profile it
    /// comes from (for its TTL: `Snapshot::ttl`). A CNAME is the only record when present.
    pub fn for_each_record<'s>(
        &self,
        snap: &'s Snapshot,
        qtype: Rtype,
        mut f: impl FnMut(u32, Record<'s>),
    ) {
        if self.kind != Kind::Answer {
            return;
        }
        for pick in self.picks() {
            let p = &snap.model.profiles[pick.profile as usize];
            match &p.endpoints[pick.endpoint as usize].answer {
                Answer::Addrs { v4, v6 } if qtype == Rtype::AAAA => {
                    for (i, a) in v6.iter().enumerate() {
                        if pick.addr == ALL_ADDRS || usize::from(pick.addr) == i {
                            f(pick.profile, Record::Aaaa(*a));
                        }
                    }
                }
                Answer::Addrs { v4, .. } => {
                    for (i, a) in v4.iter().enumerate() {
                        if pick.addr == ALL_ADDRS || usize::from(pick.addr) == i {
                            f(pick.profile, Record::A(*a));
                        }
                    }
                }
                Answer::Cname { wire, .. } => {
                    f(pick.profile, Record::Cname(wire));
                    return;
                }
                Answer::Nested(_) => {}
            }
        }
    }
}

/// One record of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// The target's lowercase wire form (the CNAME RDATA).
    Cname(&'a [u8]),
}

/// Decides the answer for `profile` (index into `Model::profiles`) and `qtype` for
/// `client`. ANY is answered as A (RFC 8482).
pub fn decide<R: Rng + ?Sized>(
    snap: &Snapshot,
    profile: u32,
    qtype: Rtype,
    client: &Client,
    rng: &mut R,
) -> Decision {
    let mut d = Decision::new(Kind::NoData, Rule::OtherType);
    run(snap, profile, qtype, client, rng, None, &mut d);
    d
}

/// As [`decide`], written into `d` (whatever it held): the query path keeps one
/// `Decision` per worker instead of moving a new one through every return.
pub(crate) fn decide_into<R: Rng + ?Sized>(
    snap: &Snapshot,
    profile: u32,
    qtype: Rtype,
    client: &Client,
    rng: &mut R,
    d: &mut Decision,
) {
    run(snap, profile, qtype, client, rng, None, d);
}

/// As [`decide`], and records in `trace` how the decision was made.
pub(crate) fn decide_traced<R: Rng + ?Sized>(
    snap: &Snapshot,
    profile: u32,
    qtype: Rtype,
    client: &Client,
    rng: &mut R,
    trace: &mut Trace,
) -> Decision {
    let mut d = Decision::new(Kind::NoData, Rule::OtherType);
    run(snap, profile, qtype, client, rng, Some(trace), &mut d);
    d
}

fn run<R: Rng + ?Sized>(
    snap: &Snapshot,
    profile: u32,
    qtype: Rtype,
    client: &Client,
    rng: &mut R,
    mut trace: Option<&mut Trace>,
    d: &mut Decision,
) {
    let asked = qtype;
    let qtype = match qtype {
        Rtype::A | Rtype::AAAA | Rtype::CNAME => qtype,
        Rtype::ANY => Rtype::A,
        _ => Rtype::OPT, // no endpoint has data of another type
    };
    let mut loc = Location::new(client.addr);
    let mut scope = 0;
    let mut profile = profile;
    let mut depth = 0;
    loop {
        let view = View::new(snap, profile, qtype);
        if qtype == Rtype::OPT {
            d.reset(Kind::NoData, Rule::OtherType);
        } else {
            decide_profile(&view, &mut loc, rng, d);
        }
        scope = scope.max(d.scope);
        if let Some(t) = trace.as_deref_mut() {
            trace::record_step(t, &view, d, depth, &mut loc);
        }
        let nested = match d.picks() {
            [one] if d.kind == Kind::Answer => match view.endpoint(one.endpoint.into()).answer {
                Answer::Nested(child) => Some(child),
                _ => None,
            },
            _ => None,
        };
        match nested {
            Some(child) if depth < MAX_NESTING => {
                profile = child;
                depth += 1;
            }
            Some(_) => {
                d.reset(Kind::ServFail, Rule::TooDeep);
                break;
            }
            None => break,
        }
    }
    d.scope = scope;
    if let Some(t) = trace {
        trace::finish(t, snap, client, asked, &mut loc, d);
    }
}

/// One profile, for one query type: endpoints with their effective status.
pub(crate) struct View<'a> {
    pub(crate) snap: &'a Snapshot,
    pub(crate) model: &'a Model,
    pub(crate) profile: u32,
    pub(crate) p: &'a ProfileDef,
    pub(crate) states: &'a [EndpointState],
    pub(crate) qtype: Rtype,
}

/// Which endpoints count as eligible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// CheckingEndpoint, Online, AlwaysServe, with a weight above 0.
    Strict,
    /// `all_down = "serve_all"`: everything not Disabled, as if Online.
    ServeAll,
}

impl<'a> View<'a> {
    pub(crate) fn new(snap: &'a Snapshot, profile: u32, qtype: Rtype) -> Self {
        Self {
            snap,
            model: &snap.model,
            profile,
            p: &snap.model.profiles[profile as usize],
            states: &snap.endpoints[profile as usize],
            qtype,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.p.endpoints.len()
    }

    pub(crate) fn endpoint(&self, e: u32) -> &'a EndpointDef {
        &self.p.endpoints[e as usize]
    }

    /// Whether the endpoint has records of the query's type.
    pub(crate) fn has_data(&self, e: usize) -> bool {
        let ep = &self.p.endpoints[e];
        match self.qtype {
            Rtype::A => ep.answers_a,
            Rtype::AAAA => ep.answers_aaaa,
            Rtype::CNAME => match ep.answer {
                Answer::Cname { .. } => true,
                Answer::Nested(_) => ep.answers_a || ep.answers_aaaa,
                Answer::Addrs { .. } => false,
            },
            _ => false,
        }
    }

    /// The endpoint's status as the snapshot holds it. A nested endpoint's was derived
    /// from its child by the one status rule (`crate::status`) when the snapshot was
    /// built, so the query path does not recount children.
    pub(crate) fn status(&self, e: usize) -> Status {
        self.states[e].status
    }

    /// The endpoint's weight if it is eligible in `mode`, whatever the query type.
    pub(crate) fn eligible(&self, e: usize, mode: Mode) -> Option<u32> {
        let w = self.states[e].weight;
        match mode {
            Mode::Strict => (w > 0 && self.status(e).eligible()).then_some(w),
            Mode::ServeAll => (self.status(e) != Status::Disabled).then_some(w.max(1)),
        }
    }

    /// The measured RTT; for a nested endpoint, the best of its child's eligible ones.
    pub(crate) fn rtt(&self, e: usize) -> Option<Duration> {
        match self.p.endpoints[e].answer {
            Answer::Nested(child) => {
                let c = &self.snap.endpoints[child as usize];
                c.iter()
                    .filter(|s| s.status.eligible())
                    .filter_map(|s| s.rtt)
                    .min()
            }
            _ => self.states[e].rtt,
        }
    }
}

/// The decision for one profile (a nested pick is resolved by the caller), into `d`.
fn decide_profile<R: Rng + ?Sized>(
    view: &View<'_>,
    loc: &mut Location,
    rng: &mut R,
    d: &mut Decision,
) {
    if !(0..view.len()).any(|e| view.has_data(e)) {
        return d.reset(Kind::NoData, Rule::NoRecords);
    }
    match methods::choose(view, Mode::Strict, loc, rng, d) {
        Ok(()) => {}
        Err(methods::Miss::Unmatched { rule, scope } | methods::Miss::Lacks { rule, scope }) => {
            d.set(Kind::NoData, rule, scope)
        }
        Err(methods::Miss::NoneEligible { scope }) => match view.p.all_down {
            AllDown::Nodata => d.set(Kind::NoData, Rule::AllDown, scope),
            AllDown::Servfail => d.set(Kind::ServFail, Rule::AllDown, scope),
            AllDown::ServeAll => match methods::choose(view, Mode::ServeAll, loc, rng, d) {
                Ok(()) => d.all_down = true,
                Err(methods::Miss::Lacks { rule, scope }) => {
                    d.set(Kind::NoData, rule, scope);
                    d.all_down = true;
                }
                Err(
                    methods::Miss::NoneEligible { scope } | methods::Miss::Unmatched { scope, .. },
                ) => d.set(Kind::NoData, Rule::AllDisabled, scope),
            },
        },
    }
}
