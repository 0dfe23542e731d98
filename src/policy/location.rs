//! The client's location for one query, looked up lazily (only the methods that depend on
//! the client pay for it), and the ECS scope of an answer that depends on it.
//!
//! RFC 7871 §7.2.1: the SCOPE PREFIX-LENGTH says for which addresses the answer is valid.
//! It is the prefix length of the rule that decided, lengthened where a more specific rule
//! nested inside it would answer differently; otherwise a resolver would cache the answer
//! for clients that a more specific rule routes elsewhere.

use std::net::IpAddr;

use ipnet::IpNet;

use super::geoip::{GeoIpMatch, GeoKey};
use crate::model::Geo;

/// At most this many configured regions are considered for one client (nested regions).
pub const MAX_REGIONS: usize = 8;

/// Where one client is, as far as it has been looked up.
#[derive(Clone, Copy, Debug)]
pub struct Location {
    /// The client address (ECS or source), IPv4-mapped IPv6 folded to IPv4.
    pub addr: IpAddr,
    regions: Option<([(u32, u8); MAX_REGIONS], usize)>,
    geoip: Option<Option<GeoIpMatch>>,
}

impl Location {
    pub fn new(addr: IpAddr) -> Self {
        Self {
            addr: addr.to_canonical(),
            regions: None,
            geoip: None,
        }
    }

    /// The configured regions holding the address, most specific first, each once with
    /// the prefix length of its most specific subnet holding the address.
    pub fn regions(&mut self, geo: &Geo) -> &[(u32, u8)] {
        let addr = self.addr;
        let (ids, len) = self.regions.get_or_insert_with(|| {
            let mut ids = [(0u32, 0u8); MAX_REGIONS];
            let mut len = 0;
            for (net, id) in &geo.nets {
                if len == MAX_REGIONS {
                    break;
                }
                if net.contains(&addr) && !ids[..len].iter().any(|(r, _)| r == id) {
                    ids[len] = (*id, net.prefix_len());
                    len += 1;
                }
            }
            (ids, len)
        });
        &ids[..*len]
    }

    /// What the MaxMind DB says about the address (`None` without `geo.mmdb`).
    pub fn geoip(&mut self, geo: &Geo) -> Option<GeoIpMatch> {
        let addr = self.addr;
        *self
            .geoip
            .get_or_insert_with(|| geo.mmdb.as_ref().and_then(|db| db.lookup(addr)))
    }

    /// Offers the client's location keys to `accept`, most specific first (configured
    /// regions, then country and continent when `with_geoip`, then WORLD), and returns the
    /// first accepted key with the prefix length that locates the client there.
    pub fn first(
        &mut self,
        geo: &Geo,
        with_geoip: bool,
        mut accept: impl FnMut(GeoKey) -> bool,
    ) -> Option<(GeoKey, u8)> {
        self.regions(geo);
        let (ids, len) = self.regions.expect("looked up above");
        for &(id, prefix) in &ids[..len] {
            if accept(GeoKey::Region(id)) {
                return Some((GeoKey::Region(id), prefix));
            }
        }
        if with_geoip && let Some(m) = self.geoip(geo) {
            for key in [
                m.country.map(GeoKey::Country),
                m.continent.map(GeoKey::Continent),
            ]
            .into_iter()
            .flatten()
            {
                if accept(key) {
                    return Some((key, m.prefix));
                }
            }
        }
        accept(GeoKey::World).then_some((GeoKey::World, 0))
    }

    /// The prefix length that locates the client for a decision that consulted the
    /// database: the database network's, when it was looked up.
    pub fn geoip_prefix(&self) -> u8 {
        match self.geoip {
            Some(Some(m)) => m.prefix,
            _ => 0,
        }
    }
}

/// The ECS scope of an answer decided by a rule of prefix length `decided`, given every
/// subnet `nets` the profile's answer depends on: at least the prefix of each rule holding
/// the client, and long enough to exclude each rule that does not.
pub fn refine_scope(addr: IpAddr, decided: u8, nets: &[IpNet]) -> u8 {
    let mut scope = decided;
    for net in nets {
        let s = match (addr, net) {
            (IpAddr::V4(a), IpNet::V4(n)) => {
                if n.contains(&a) {
                    n.prefix_len()
                } else {
                    let common = (u32::from(a) ^ u32::from(n.network())).leading_zeros() as u8;
                    common + 1
                }
            }
            (IpAddr::V6(a), IpNet::V6(n)) => {
                if n.contains(&a) {
                    n.prefix_len()
                } else {
                    let common = (u128::from(a) ^ u128::from(n.network())).leading_zeros() as u8;
                    common + 1
                }
            }
            _ => 0,
        };
        scope = scope.max(s);
    }
    scope
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn scope_is_the_deciding_rule_when_nothing_nests_inside() {
        let n = nets(&["10.20.0.0/16", "10.10.0.0/16", "fd00:20::/32"]);
        assert_eq!(refine_scope("10.20.1.0".parse().unwrap(), 16, &n), 16);
    }

    #[test]
    fn scope_excludes_a_nested_rule_that_does_not_hold_the_client() {
        // 10.20.5.0/24 routes elsewhere; 10.20.1.0 must be cached no wider than its /22.
        let n = nets(&["10.20.0.0/16", "10.20.5.0/24"]);
        let s = refine_scope("10.20.1.0".parse().unwrap(), 16, &n);
        let cached: IpNet = format!("10.20.1.0/{s}").parse::<IpNet>().unwrap().trunc();
        assert!(!cached.contains(&"10.20.5.1".parse::<IpAddr>().unwrap()));
        assert!(cached.contains(&"10.20.1.0".parse::<IpAddr>().unwrap()));
        assert_eq!(s, 22);
    }

    #[test]
    fn scope_covers_a_skipped_rule_holding_the_client() {
        let n = nets(&["10.20.0.0/16", "10.20.1.0/24"]);
        assert_eq!(refine_scope("10.20.1.7".parse().unwrap(), 16, &n), 24);
    }

    #[test]
    fn unmatched_clients_are_scoped_away_from_every_rule() {
        let n = nets(&["10.20.0.0/16", "2001:db8::/32"]);
        // 192.168.x shares no leading bit with 10.x: /1 suffices.
        assert_eq!(refine_scope("192.168.1.1".parse().unwrap(), 0, &n), 1);
        assert_eq!(refine_scope("10.21.0.1".parse().unwrap(), 0, &n), 16);
        assert_eq!(refine_scope("2001:db9::1".parse().unwrap(), 0, &n), 32);
    }

    #[test]
    fn regions_are_most_specific_first_and_once_each() {
        let geo = Geo {
            region_names: vec!["corp".into(), "dublin".into()],
            nets: vec![
                ("10.20.1.0/24".parse().unwrap(), 1),
                ("10.20.0.0/16".parse().unwrap(), 0),
                ("10.0.0.0/8".parse().unwrap(), 0),
            ],
            mmdb: None,
        };
        let mut loc = Location::new("10.20.1.9".parse().unwrap());
        assert_eq!(loc.regions(&geo), &[(1, 24), (0, 16)]);
        let mut loc = Location::new("::ffff:10.20.2.9".parse().unwrap());
        assert_eq!(loc.regions(&geo), &[(0, 16)]);
        assert_eq!(
            loc.first(&geo, true, |k| k == GeoKey::World),
            Some((GeoKey::World, 0))
        );
        assert_eq!(
            loc.first(&geo, true, |k| k == GeoKey::Region(0)),
            Some((GeoKey::Region(0), 16))
        );
    }
}
