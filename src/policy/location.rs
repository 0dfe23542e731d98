//! The client's location for one query, looked up lazily: only the methods that depend on
//! the client pay for it, and the MaxMind DB is consulted only when no configured region
//! decided.

use std::net::IpAddr;

use crate::model::Geo;
use crate::model::geoip::{GeoIpMatch, GeoKey};

/// At most this many configured regions are considered for one client (nested regions).
const MAX_REGIONS: usize = 8;

/// Where one client is, as far as it has been looked up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Location {
    /// The client address (ECS or source), IPv4-mapped IPv6 folded to IPv4.
    pub addr: IpAddr,
    regions: Option<([(u32, u8); MAX_REGIONS], usize)>,
    geoip: Option<Option<GeoIpMatch>>,
}

impl Location {
    pub(crate) fn new(addr: IpAddr) -> Self {
        Self {
            addr: addr.to_canonical(),
            regions: None,
            geoip: None,
        }
    }

    /// The configured regions holding the address, most specific first, each once with
    /// the prefix length of its most specific subnet holding the address.
    pub(crate) fn regions(&mut self, geo: &Geo) -> &[(u32, u8)] {
        let addr = self.addr;
        let (ids, len) = self.regions.get_or_insert_with(|| {
            let mut ids = [(0u32, 0u8); MAX_REGIONS];
            let mut len = 0;
            geo.table.matches(addr, |id, prefix| {
                if !ids[..len].iter().any(|(r, _)| *r == id) {
                    ids[len] = (id, prefix);
                    len += 1;
                }
                len == MAX_REGIONS
            });
            (ids, len)
        });
        &ids[..*len]
    }

    /// What the MaxMind DB says about the address (`None` without `geo.mmdb`).
    pub(crate) fn geoip(&mut self, geo: &Geo) -> Option<GeoIpMatch> {
        let addr = self.addr;
        *self
            .geoip
            .get_or_insert_with(|| geo.mmdb.as_ref().and_then(|db| db.lookup(addr)))
    }

    /// Offers the client's location keys to `accept`, most specific first (configured
    /// regions, then country and continent when `with_geoip`, then WORLD), and returns the
    /// first accepted key with the prefix length that locates the client there.
    pub(crate) fn first(
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
    pub(crate) fn geoip_prefix(&self) -> u8 {
        match self.geoip {
            Some(Some(m)) => m.prefix,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_most_specific_first_and_once_each() {
        let nets: Vec<(ipnet::IpNet, u32)> = vec![
            ("10.20.1.0/24".parse().unwrap(), 1),
            ("10.20.0.0/16".parse().unwrap(), 0),
            ("10.0.0.0/8".parse().unwrap(), 0),
        ];
        let geo = Geo {
            region_names: vec!["corp".into(), "dublin".into()],
            table: crate::model::prefix::PrefixTable::new(nets.iter().copied()),
            nets,
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
