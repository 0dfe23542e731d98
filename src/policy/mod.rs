//! Routing decisions: which endpoints of a profile answer a query. Pure functions of the
//! snapshot, the query, the client and a random source, so every method is table-tested
//! and benchmarked without sockets.

use std::net::IpAddr;

use rand::Rng;

use crate::config::{AllDown, Method};
use crate::model::{Answer, ProfileDef};
use crate::snapshot::Snapshot;
use crate::zone::rtype;

/// Where the query comes from, for location-aware methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The ECS address when the query carried one, else the packet's source.
    pub addr: IpAddr,
    /// The ECS source prefix, when the address came from ECS.
    pub ecs_source_prefix: Option<u8>,
}

/// The kind of answer decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Answer with `picks`.
    Answer,
    /// No eligible endpoint has data of the asked type (or `all_down = "nodata"`).
    NoData,
    /// `all_down = "servfail"` and nothing is eligible.
    ServFail,
}

/// Most endpoints one answer may hold.
pub const MAX_PICKS: usize = 32;

/// One decision. Holds no heap memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub kind: Kind,
    /// (profile, endpoint) indices of the chosen endpoints, nested profiles resolved to
    /// their leaf endpoints; `picks[..len]`.
    pub picks: [(u32, u32); MAX_PICKS],
    pub len: usize,
    /// At most this many address records in the answer (multivalue); `u16::MAX` = all.
    pub max_records: u16,
    /// ECS SCOPE PREFIX-LENGTH: the prefix length of the rule that decided (0 when the
    /// answer does not depend on the client).
    pub scope: u8,
}

impl Decision {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            picks: [(0, 0); MAX_PICKS],
            len: 0,
            max_records: u16::MAX,
            scope: 0,
        }
    }

    pub fn picks(&self) -> &[(u32, u32)] {
        &self.picks[..self.len]
    }

    fn push(&mut self, p: (u32, u32)) {
        if self.len < MAX_PICKS {
            self.picks[self.len] = p;
            self.len += 1;
        }
    }
}

/// Whether an endpoint can answer `qtype` (CNAME endpoints answer every address type).
pub fn has_data(snap: &Snapshot, p: &ProfileDef, e: usize, qtype: u16) -> bool {
    match &p.endpoints[e].answer {
        Answer::Addrs { v4, v6 } => match qtype {
            rtype::A => !v4.is_empty(),
            rtype::AAAA => !v6.is_empty(),
            _ => false,
        },
        Answer::Cname { .. } => matches!(qtype, rtype::A | rtype::AAAA | rtype::CNAME),
        Answer::Nested(child) => {
            let c = &snap.model.profiles[*child as usize];
            (0..c.endpoints.len()).any(|i| has_data(snap, c, i, qtype))
        }
    }
}

/// Decides the answer for `profile` and `qtype` for `client`.
pub fn decide<R: Rng + ?Sized>(
    snap: &Snapshot,
    profile: u32,
    qtype: u16,
    client: &Client,
    rng: &mut R,
) -> Decision {
    decide_depth(snap, profile, qtype, client, rng, 0)
}

fn decide_depth<R: Rng + ?Sized>(
    snap: &Snapshot,
    profile: u32,
    qtype: u16,
    client: &Client,
    rng: &mut R,
    depth: usize,
) -> Decision {
    let _ = client;
    let p = &snap.model.profiles[profile as usize];
    let states = &snap.endpoints[profile as usize];
    if !matches!(qtype, rtype::A | rtype::AAAA | rtype::CNAME | rtype::ANY) {
        return Decision::new(Kind::NoData);
    }
    let qtype = if qtype == rtype::ANY { rtype::A } else { qtype };
    // Candidates: endpoints that have data of this type and are eligible.
    let mut eligible = [0u32; 256];
    let mut n = 0;
    for (i, st) in states.iter().enumerate() {
        if st.status.eligible()
            && st.weight > 0
            && has_data(snap, p, i, qtype)
            && n < eligible.len()
        {
            eligible[n] = i as u32;
            n += 1;
        }
    }
    let all_down = n == 0;
    if all_down {
        match p.all_down {
            AllDown::Nodata => return Decision::new(Kind::NoData),
            AllDown::Servfail => {
                let any_data = (0..p.endpoints.len()).any(|i| has_data(snap, p, i, qtype));
                return Decision::new(if any_data {
                    Kind::ServFail
                } else {
                    Kind::NoData
                });
            }
            AllDown::ServeAll => {
                for (i, st) in states.iter().enumerate() {
                    if st.status != crate::snapshot::Status::Disabled
                        && has_data(snap, p, i, qtype)
                        && n < eligible.len()
                    {
                        eligible[n] = i as u32;
                        n += 1;
                    }
                }
                if n == 0 {
                    return Decision::new(Kind::NoData);
                }
            }
        }
    }
    let cands = &eligible[..n];
    let mut d = Decision::new(Kind::Answer);
    // Only weighted exists so far; the other methods land with the routing issue.
    #[allow(clippy::wildcard_in_or_patterns)]
    let pick = match p.method {
        Method::Weighted | _ => weighted(cands, |i| states[i as usize].weight.max(1), rng),
    };
    match &p.endpoints[pick as usize].answer {
        Answer::Nested(child) if depth < 10 => {
            let mut c = decide_depth(snap, *child, qtype, client, rng, depth + 1);
            c.scope = c.scope.max(d.scope);
            return c;
        }
        _ => d.push((profile, pick)),
    }
    d
}

/// One of `cands`, at random in proportion to `weight`.
pub fn weighted<R: Rng + ?Sized>(cands: &[u32], weight: impl Fn(u32) -> u32, rng: &mut R) -> u32 {
    let total: u64 = cands.iter().map(|&i| u64::from(weight(i))).sum();
    if total == 0 {
        return cands[0];
    }
    let mut x = rng.random_range(0..total);
    for &i in cands {
        let w = u64::from(weight(i));
        if x < w {
            return i;
        }
        x -= w;
    }
    cands[cands.len() - 1]
}
