//! Subnet tables built at load for the query path: longest-prefix lookups in one hash probe
//! per distinct prefix length ([`PrefixTable`]), and the ECS scope of an answer that
//! depends on a set of subnets in one binary search ([`NetSet`]).
//!
//! Addresses are compared as `u128` with IPv4 in the top 32 bits, so one code path serves
//! both families (they are kept in separate tables).

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

/// `addr` as a top-aligned `u128`, and whether it is IPv6.
pub(crate) fn key(addr: IpAddr) -> (u128, bool) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, false),
        IpAddr::V6(a) => (u128::from(a), true),
    }
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        !0u128 << (128 - u32::from(len))
    }
}

/// Length of the common leading bits of two top-aligned addresses.
fn common(a: u128, b: u128) -> u8 {
    (a ^ b).leading_zeros() as u8
}

/// Subnets mapped to values (a region, an endpoint); the first value given for a subnet
/// wins.
#[derive(Clone, Debug, Default)]
pub struct PrefixTable {
    /// (IPv6, prefix length, masked address → value), longest prefix first.
    groups: Vec<(bool, u8, FxHashMap<u128, u32>)>,
}

impl PrefixTable {
    pub fn new(entries: impl IntoIterator<Item = (IpNet, u32)>) -> Self {
        let mut groups: Vec<(bool, u8, FxHashMap<u128, u32>)> = Vec::new();
        for (net, value) in entries {
            let (k, v6) = key(net.network());
            let len = net.prefix_len();
            let i = match groups.iter().position(|(f, l, _)| *f == v6 && *l == len) {
                Some(i) => i,
                None => {
                    groups.push((v6, len, FxHashMap::default()));
                    groups.len() - 1
                }
            };
            groups[i].2.entry(k & mask(len)).or_insert(value);
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.1));
        Self { groups }
    }

    /// Offers each entry holding `addr` to `f` as (value, prefix length), longest prefix
    /// first, until `f` returns true.
    pub fn matches(&self, addr: IpAddr, mut f: impl FnMut(u32, u8) -> bool) {
        let (k, v6) = key(addr.to_canonical());
        for (family, len, map) in &self.groups {
            if *family == v6
                && let Some(&v) = map.get(&(k & mask(*len)))
                && f(v, *len)
            {
                return;
            }
        }
    }
}

/// The subnets an answer depends on, sorted, for [`NetSet::scope`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetSet {
    /// (network address, prefix length), sorted by address then prefix length.
    v4: Vec<(u128, u8)>,
    v6: Vec<(u128, u8)>,
}

impl NetSet {
    pub fn new(nets: &[IpNet]) -> Self {
        let mut s = Self::default();
        for net in nets {
            let (k, v6) = key(net.network());
            let list = if v6 { &mut s.v6 } else { &mut s.v4 };
            list.push((k, net.prefix_len()));
        }
        s.v4.sort_unstable();
        s.v6.sort_unstable();
        s.v4.dedup();
        s.v6.dedup();
        s
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The ECS scope of an answer decided by a rule of prefix length `decided` for
    /// `addr`: at least the prefix of every subnet holding `addr`, and long enough to
    /// exclude every subnet that does not (`common bits + 1`).
    ///
    /// Among subnets not holding `addr`, the most common leading bits are found at its
    /// nearest neighbours in address order, so one binary search and a walk over the
    /// subnets holding `addr` (its ancestors, a handful) suffice. A subnet between `addr`
    /// and an ancestor lies inside that ancestor, so its bound already covers the ones
    /// further away.
    pub fn scope(&self, addr: IpAddr, decided: u8) -> u8 {
        let (x, v6) = key(addr.to_canonical());
        let list = if v6 { &self.v6 } else { &self.v4 };
        let i = list.partition_point(|&(n, _)| n <= x);
        let mut s = decided;
        if let Some(&(n, _)) = list.get(i) {
            s = s.max(common(x, n) + 1);
        }
        for &(n, prefix) in list[..i].iter().rev() {
            let c = common(x, n);
            if c >= prefix {
                s = s.max(prefix);
            } else {
                s = s.max(c + 1);
                break;
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The definition, one subnet at a time.
    fn scope_by_definition(addr: IpAddr, decided: u8, nets: &[IpNet]) -> u8 {
        let (x, v6) = key(addr);
        nets.iter()
            .filter(|n| n.network().is_ipv6() == v6)
            .map(|n| {
                if n.contains(&addr) {
                    n.prefix_len()
                } else {
                    common(x, key(n.network()).0) + 1
                }
            })
            .fold(decided, u8::max)
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn scope_examples() {
        let n = nets(&[
            "10.20.0.0/16",
            "10.20.5.0/24",
            "10.10.0.0/16",
            "fd00:20::/32",
        ]);
        let set = NetSet::new(&n);
        let at = |a: &str, d| set.scope(a.parse().unwrap(), d);
        // Decided by 10.20.0.0/16, but 10.20.5.0/24 inside it: 10.20.1.x is valid for /22.
        assert_eq!(at("10.20.1.0", 16), 22);
        // Inside the /24 (skipped or deciding): the /24 bounds it.
        assert_eq!(at("10.20.5.9", 16), 24);
        // Outside everything: just enough to exclude the nearest subnet.
        assert_eq!(at("192.168.1.1", 0), 1);
        assert_eq!(at("10.21.0.1", 0), 16);
        assert_eq!(at("fd00:21::1", 0), 32);
        assert_eq!(at("::ffff:10.21.0.1", 0), 16);
    }

    #[test]
    fn scope_matches_the_definition_on_random_nested_subnets() {
        let mut rng = SmallRng::seed_from_u64(47);
        for _ in 0..300 {
            let list: Vec<IpNet> = (0..rng.random_range(1..40))
                .map(|_| {
                    let len = rng.random_range(4..=30u8);
                    let a = u32::from_be_bytes([10, rng.random_range(0..4), rng.random(), 0]);
                    IpNet::new(IpAddr::from(a.to_be_bytes()), len)
                        .unwrap()
                        .trunc()
                })
                .collect();
            let set = NetSet::new(&list);
            for _ in 0..50 {
                let a = IpAddr::from([10, rng.random_range(0..4), rng.random(), rng.random()]);
                let d = rng.random_range(0..=24);
                assert_eq!(
                    set.scope(a, d),
                    scope_by_definition(a, d, &list),
                    "{a} decided /{d} in {list:?}"
                );
            }
        }
    }

    #[test]
    fn longest_prefix_first_in_each_family() {
        let t = PrefixTable::new([
            ("10.0.0.0/8".parse().unwrap(), 1),
            ("10.20.1.0/24".parse().unwrap(), 3),
            ("10.20.0.0/16".parse().unwrap(), 2),
            ("fd00::/8".parse().unwrap(), 4),
            ("10.20.0.0/16".parse().unwrap(), 9),
        ]);
        let all = |a: &str| {
            let mut out = Vec::new();
            t.matches(a.parse().unwrap(), |v, l| {
                out.push((v, l));
                false
            });
            out
        };
        assert_eq!(all("10.20.1.7"), [(3, 24), (2, 16), (1, 8)]);
        assert_eq!(all("10.20.2.7"), [(2, 16), (1, 8)]);
        assert_eq!(all("11.0.0.1"), []);
        assert_eq!(all("fd00::1"), [(4, 8)]);
        assert_eq!(all("::ffff:10.1.1.1"), [(1, 8)]);
    }
}
