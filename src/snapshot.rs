//! The one immutable view of everything the DNS path reads: zones, profiles, endpoint
//! statuses. Published through a single `ArcSwap`; DNS workers load it per query.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustc_hash::FxHashMap;

use crate::zone::Zone;
use crate::zone::name::parent;

/// What the DNS path answers from.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Increases with every successful config load.
    pub generation: u64,
    pub zones: Vec<Zone>,
    zone_by_apex: FxHashMap<Box<[u8]>, usize>,
}

impl Snapshot {
    pub fn new(generation: u64, zones: Vec<Zone>) -> Self {
        let zone_by_apex = zones
            .iter()
            .enumerate()
            .map(|(i, z)| (z.apex.clone(), i))
            .collect();
        Self {
            generation,
            zones,
            zone_by_apex,
        }
    }

    /// The most specific served zone holding `qname` (lowercase wire form).
    pub fn find_zone(&self, qname: &[u8]) -> Option<&Zone> {
        let mut cur = qname;
        loop {
            if let Some(&i) = self.zone_by_apex.get(cur) {
                return Some(&self.zones[i]);
            }
            cur = parent(cur)?;
        }
    }
}

/// The published snapshot.
pub type Shared = Arc<ArcSwap<Snapshot>>;
