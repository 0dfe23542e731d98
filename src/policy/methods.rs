//! The routing methods of DESIGN.md ("Routing methods"), one function each. Each method
//! first chooses a *tier* among the endpoints eligible in the given mode, whatever the
//! query type (the priority tier, the latency band, the client's location or subnet), then
//! picks among the tier's endpoints that have records of the type; a tier without any is
//! NODATA rather than a reason to answer from a worse tier (an AAAA query must not send
//! IPv6 clients to the backup site while IPv4 clients go to the primary). Nothing here
//! allocates: weighted choice is two passes over the endpoints, multivalue a reservoir
//! sample.

use std::time::Duration;

use ipnet::IpNet;
use rand::Rng;

use super::location::Location;
use super::{ALL_ADDRS, Decision, GeoKey, Kind, MAX_PICKS, Mode, Pick, Rule, View};
use crate::base::Rtype;
use crate::config::Method;
use crate::model::Answer;

/// Why a method picked nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Miss {
    /// Some endpoint could answer this client, but none is eligible: `all_down` decides.
    NoneEligible { scope: u8 },
    /// No endpoint answers this client at all (geographic, subnet): NODATA.
    Unmatched { rule: Rule, scope: u8 },
    /// `rule` chose eligible endpoints, none with records of the query type: NODATA.
    Lacks { rule: Rule, scope: u8 },
}

/// Picks in the tier `in_tier` (weights of its eligible endpoints among `cands`, whatever
/// the type): among those with records of the type; else `Lacks` (the tier exists) or
/// `NoneEligible`.
fn pick_in_tier<R: Rng + ?Sized>(
    v: &View<'_>,
    cands: impl Iterator<Item = usize> + Clone,
    in_tier: impl Fn(usize) -> Option<u32>,
    rule: Rule,
    scope: u8,
    rng: &mut R,
    d: &mut Decision,
) -> Result<(), Miss> {
    let with_data = |e: usize| in_tier(e).filter(|_| v.has_data(e));
    match pick_weighted(cands.clone(), with_data, rng) {
        Some(e) => {
            one(v, e, rule, scope, d);
            Ok(())
        }
        None if cands.into_iter().any(|e| in_tier(e).is_some()) => Err(Miss::Lacks { rule, scope }),
        None => Err(Miss::NoneEligible { scope }),
    }
}

/// Writes the method's choice into `d` (its picks, rule and scope; `d` is reset first)
/// and returns `Ok`, or says why it picked nothing (then `d` is not meaningful). The
/// decision is written in place: it is a few hundred bytes, and moving it through each
/// return cost a copy per query.
pub(super) fn choose<R: Rng + ?Sized>(
    v: &View<'_>,
    mode: Mode,
    loc: &mut Location,
    rng: &mut R,
    d: &mut Decision,
) -> Result<(), Miss> {
    match v.p.method {
        Method::Weighted => weighted(v, mode, rng, d),
        Method::Priority => priority(v, mode, rng, d),
        Method::Performance => performance(v, mode, loc, rng, d),
        Method::Multivalue => multivalue(v, mode, rng, d),
        Method::Geographic => geographic(v, mode, loc, rng, d),
        Method::Subnet => subnet(v, mode, loc, rng, d),
    }
}

/// One of the candidates `weight` gives a weight for, at random in proportion to it.
pub(crate) fn pick_weighted<R: Rng + ?Sized>(
    cands: impl Iterator<Item = usize> + Clone,
    weight: impl Fn(usize) -> Option<u32>,
    rng: &mut R,
) -> Option<usize> {
    let total: u64 = cands.clone().filter_map(&weight).map(u64::from).sum();
    if total == 0 {
        return None;
    }
    let mut x = rng.random_range(0..total);
    let mut last = None;
    for i in cands {
        if let Some(w) = weight(i) {
            let w = u64::from(w);
            if x < w {
                return Some(i);
            }
            x -= w;
            last = Some(i);
        }
    }
    last
}

fn one(v: &View<'_>, e: usize, rule: Rule, scope: u8, d: &mut Decision) {
    d.reset(Kind::Answer, rule);
    d.scope = scope;
    d.push(Pick {
        profile: v.profile,
        endpoint: e as u16,
        addr: ALL_ADDRS,
    });
}

fn weighted<R: Rng + ?Sized>(
    v: &View<'_>,
    mode: Mode,
    rng: &mut R,
    d: &mut Decision,
) -> Result<(), Miss> {
    pick_in_tier(
        v,
        0..v.len(),
        |e| v.eligible(e, mode),
        Rule::Weighted,
        0,
        rng,
        d,
    )
}

fn priority<R: Rng + ?Sized>(
    v: &View<'_>,
    mode: Mode,
    rng: &mut R,
    d: &mut Decision,
) -> Result<(), Miss> {
    let best = (0..v.len())
        .filter(|&e| v.eligible(e, mode).is_some())
        .map(|e| v.endpoint(e as u32).priority)
        .min()
        .ok_or(Miss::NoneEligible { scope: 0 })?;
    let tier = |e: usize| {
        v.eligible(e, mode)
            .filter(|_| v.endpoint(e as u32).priority == best)
    };
    pick_in_tier(
        v,
        0..v.len(),
        tier,
        Rule::Priority { priority: best },
        0,
        rng,
        d,
    )
}

fn performance<R: Rng + ?Sized>(
    v: &View<'_>,
    mode: Mode,
    loc: &mut Location,
    rng: &mut R,
    d: &mut Decision,
) -> Result<(), Miss> {
    let (row, scope) = latency_row(v, loc);
    let latency = |e: usize| match row {
        Some(r) => v.p.latency[r].latency[e].or_else(|| v.rtt(e)),
        None => v.rtt(e),
    };
    let best = (0..v.len())
        .filter(|&e| v.eligible(e, mode).is_some())
        .filter_map(latency)
        .min();
    let band = best.map_or(Duration::ZERO, |b| {
        b.mul_f64(v.p.performance_tolerance)
            .max(v.p.performance_tolerance_min)
    });
    let in_band = |e: usize| {
        let w = v.eligible(e, mode)?;
        match best {
            None => Some(w),
            Some(b) => latency(e)
                .filter(|l| *l <= b.saturating_add(band))
                .map(|_| w),
        }
    };
    let rule = Rule::Performance {
        best,
        band,
        row: row.map(|r| r as u16),
    };
    pick_in_tier(v, 0..v.len(), in_band, rule, scope, rng, d)
}

/// performance: the latency table row for the client's most specific location, and the
/// ECS scope that choice implies (0 without a table).
pub(crate) fn latency_row(v: &View<'_>, loc: &mut Location) -> (Option<usize>, u8) {
    if v.p.latency.is_empty() {
        return (None, 0);
    }
    let rows = &v.p.latency;
    let found = loc.first(&v.model.geo, v.p.uses_geoip, |k| {
        rows.iter().any(|r| r.key == k)
    });
    let decided = match found {
        Some((GeoKey::Region(_), prefix)) => prefix,
        _ if v.p.uses_geoip => loc.geoip_prefix(),
        _ => 0,
    };
    let scope = v.p.client_nets.scope(loc.addr, decided);
    let row = found.and_then(|(k, _)| rows.iter().position(|r| r.key == k));
    (row, scope)
}

fn multivalue<R: Rng + ?Sized>(
    v: &View<'_>,
    mode: Mode,
    rng: &mut R,
    d: &mut Decision,
) -> Result<(), Miss> {
    let k = (v.p.max_answers as usize).clamp(1, MAX_PICKS);
    d.reset(Kind::Answer, Rule::Multivalue { eligible: 0 });
    let mut seen: u32 = 0;
    let mut tier = false;
    for e in 0..v.len() {
        if v.eligible(e, mode).is_none() {
            continue;
        }
        tier = true;
        let count = match &v.endpoint(e as u32).answer {
            Answer::Addrs { v6, .. } if v.qtype == Rtype::AAAA => v6.len(),
            Answer::Addrs { v4, .. } => v4.len(),
            _ => 0,
        };
        for a in 0..count.min(usize::from(u16::MAX - 1)) {
            let pick = Pick {
                profile: v.profile,
                endpoint: e as u16,
                addr: a as u16,
            };
            // Reservoir sampling (Algorithm R): every address ends up in the sample with
            // probability k / seen.
            seen += 1;
            if usize::from(d.len) < k {
                d.push(pick);
            } else {
                let j = rng.random_range(0..seen) as usize;
                if j < k {
                    d.picks[j] = std::mem::MaybeUninit::new(pick);
                }
            }
        }
    }
    if seen == 0 {
        return Err(if tier {
            Miss::Lacks {
                rule: Rule::Multivalue { eligible: 0 },
                scope: 0,
            }
        } else {
            Miss::NoneEligible { scope: 0 }
        });
    }
    // Shuffle the order of the sample (Fisher–Yates).
    for i in (1..usize::from(d.len)).rev() {
        let j = rng.random_range(0..=i);
        d.picks.swap(i, j);
    }
    d.rule = Rule::Multivalue { eligible: seen };
    Ok(())
}

fn geographic<R: Rng + ?Sized>(
    v: &View<'_>,
    mode: Mode,
    loc: &mut Location,
    rng: &mut R,
    d: &mut Decision,
) -> Result<(), Miss> {
    let at = |key: &GeoKey| v.p.geo_index.get(key).map_or(&[][..], |l| &l[..]);
    let mut skipped = false;
    let found = loc.first(&v.model.geo, v.p.uses_geoip, |key| {
        let held = at(&key);
        if held.iter().any(|&e| v.eligible(e as usize, mode).is_some()) {
            return true;
        }
        // A match that is not eligible falls through to the next most specific one.
        skipped |= !held.is_empty();
        false
    });
    let decided = match found {
        Some((GeoKey::Region(_), prefix)) => prefix,
        _ if v.p.uses_geoip => loc.geoip_prefix(),
        _ => 0,
    };
    let scope = v.p.client_nets.scope(loc.addr, decided);
    let Some((key, prefix)) = found else {
        return Err(if skipped {
            Miss::NoneEligible { scope }
        } else {
            Miss::Unmatched {
                rule: Rule::GeoUnmatched,
                scope,
            }
        });
    };
    let held = at(&key).iter().map(|&e| e as usize);
    let rule = Rule::Geographic { key, prefix };
    pick_in_tier(v, held, |e| v.eligible(e, mode), rule, scope, rng, d)
}

fn subnet<R: Rng + ?Sized>(
    v: &View<'_>,
    mode: Mode,
    loc: &mut Location,
    rng: &mut R,
    d: &mut Decision,
) -> Result<(), Miss> {
    let addr = loc.addr;
    let mut skipped = false;
    let mut decided = None;
    v.p.subnet_table.matches(addr, |e, prefix| {
        if v.eligible(e as usize, mode).is_some() {
            decided = Some((e as usize, prefix));
            return true;
        }
        // Not eligible: the next longest prefix decides.
        skipped = true;
        false
    });
    let scope =
        v.p.client_nets
            .scope(addr, decided.map_or(0, |(_, prefix)| prefix));
    if let Some((e, prefix)) = decided {
        let net = IpNet::new(addr, prefix).map_or_else(|_| IpNet::from(addr), |n| n.trunc());
        let only = |e: usize| v.eligible(e, mode);
        return pick_in_tier(
            v,
            [e].into_iter(),
            only,
            Rule::Subnet { net },
            scope,
            rng,
            d,
        );
    }
    let fallback = |e: usize| {
        v.eligible(e, mode)
            .filter(|_| v.endpoint(e as u32).subnets.is_empty())
    };
    match pick_in_tier(v, 0..v.len(), fallback, Rule::SubnetFallback, scope, rng, d) {
        Err(Miss::NoneEligible { .. }) => {}
        other => return other,
    }
    skipped |= (0..v.len()).any(|e| v.endpoint(e as u32).subnets.is_empty());
    Err(if skipped {
        Miss::NoneEligible { scope }
    } else {
        Miss::Unmatched {
            rule: Rule::SubnetUnmatched,
            scope,
        }
    })
}
