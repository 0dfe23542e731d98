//! What a profile answers now, for the status document: the records DNS gives a client
//! with no location (no region, no GeoIP match), and whether the all-down fallback
//! decides.

use std::net::{IpAddr, Ipv4Addr};

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::{Client, Kind, Record, Rule, decide};
use crate::base::Rtype;
use crate::snapshot::Snapshot;
use crate::zone::name::to_text;

/// How many decisions per query type: weighted methods pick at random, so the answer is
/// the union of this many picks (an endpoint with less than about 1/20 of a tier's weight
/// may be missing from it).
const DRAWS: u64 = 64;

/// A profile's answer now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answering {
    /// Addresses (A, then AAAA) and `CNAME target.` records, each once.
    pub records: Vec<String>,
    /// `SERVFAIL` when that is what DNS answers, else empty.
    pub rcode: Option<&'static str>,
    /// No endpoint is eligible and `all_down` decides the answer.
    pub all_down_fallback: bool,
}

/// The answer of profile `profile` (index into `Model::profiles`) for a client with no
/// location, to A and AAAA queries, with deterministic random draws.
pub fn answering(snap: &Snapshot, profile: u32) -> Answering {
    let client = Client::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let mut out = Answering::default();
    for qtype in [Rtype::A, Rtype::AAAA] {
        for seed in 0..DRAWS {
            let mut rng = SmallRng::seed_from_u64(seed);
            let d = decide(snap, profile, qtype, &client, &mut rng);
            if d.all_down || matches!(d.rule, Rule::AllDown | Rule::AllDisabled) {
                out.all_down_fallback = true;
            }
            if d.kind == Kind::ServFail {
                out.rcode = Some("SERVFAIL");
            }
            d.for_each_record(snap, qtype, |_, r| {
                let text = match r {
                    Record::A(a) => a.to_string(),
                    Record::Aaaa(a) => a.to_string(),
                    Record::Cname(w) => format!("CNAME {}", to_text(w)),
                };
                if !out.records.contains(&text) {
                    out.records.push(text);
                }
            });
        }
    }
    out
}

/// Whether the all-down fallback decides profile `profile`'s answer now (one decision
/// per query type, for a client with no location): what `signpost_profile_all_down`
/// shows.
pub fn all_down_fallback(snap: &Snapshot, profile: u32) -> bool {
    let client = Client::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let mut rng = SmallRng::seed_from_u64(0);
    [Rtype::A, Rtype::AAAA].into_iter().any(|qtype| {
        let d = decide(snap, profile, qtype, &client, &mut rng);
        d.all_down || matches!(d.rule, Rule::AllDown | Rule::AllDisabled)
    })
}
