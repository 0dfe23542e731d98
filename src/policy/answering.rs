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

/// At most this many decisions per query type: weighted methods pick at random, so the
/// answer is the union of the picks (an endpoint with less than about 1/20 of a tier's
/// weight may be missing from it).
const DRAWS: u64 = 64;
/// Draws stop once this many in a row added nothing: a profile whose answer does not
/// vary costs this many decisions, not [`DRAWS`] (the status page of 10,000 profiles).
const SETTLED: u64 = 16;

/// A profile's answer now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answering {
    /// Addresses (A, then AAAA, each in address order) and `CNAME target.` records, each
    /// once.
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
        let from = out.records.len();
        let mut unchanged = 0;
        for seed in 0..DRAWS {
            if unchanged >= SETTLED {
                break;
            }
            let before = out.records.len();
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
            unchanged = if out.records.len() == before {
                unchanged + 1
            } else {
                0
            };
        }
        // In address order, whatever the order of the draws.
        out.records[from..].sort_by_key(|r| r.parse::<IpAddr>().ok());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testutil::{load, pid, set_status};
    use crate::snapshot::Status::{Degraded as DEG, Disabled as DIS, Online as ON};

    const PROFILES: &str = r#"
[profiles]
"w.gslb.example" = { method = "weighted", all_down = "serve_all", endpoints = [
    { name = "a", address = "192.0.2.1" },
    { name = "b", addresses = ["192.0.2.2", "2001:db8::2"], weight = 3 },
    { name = "c", address = "192.0.2.3" },
] }
"f.gslb.example" = { method = "priority", all_down = "servfail", endpoints = [
    { name = "a", address = "192.0.2.9" },
] }
"#;

    #[test]
    fn every_weighted_pick_a_fallback_and_servfail() {
        let mut snap = load(PROFILES);
        let w = pid(&snap, "w.gslb.example");
        let f = pid(&snap, "f.gslb.example");
        let now = answering(&snap, w);
        assert_eq!(
            now.records,
            ["192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::2"]
        );
        assert!(!now.all_down_fallback && now.rcode.is_none());
        assert!(!all_down_fallback(&snap, w));

        // Only b Degraded: the others answer.
        set_status(&mut snap, w, &[ON, DEG, ON]);
        assert_eq!(answering(&snap, w).records, ["192.0.2.1", "192.0.2.3"]);
        // Nothing eligible: serve_all answers every endpoint not Disabled.
        set_status(&mut snap, w, &[DEG, DEG, DIS]);
        let now = answering(&snap, w);
        assert_eq!(now.records, ["192.0.2.1", "192.0.2.2", "2001:db8::2"]);
        assert!(now.all_down_fallback);
        assert!(all_down_fallback(&snap, w));

        set_status(&mut snap, f, &[DEG]);
        let now = answering(&snap, f);
        assert!(now.records.is_empty());
        assert_eq!(now.rcode, Some("SERVFAIL"));
        assert!(now.all_down_fallback);
    }
}
