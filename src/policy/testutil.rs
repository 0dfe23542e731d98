//! Building snapshots from config text for the policy tests.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::config::Problems;
use crate::snapshot::{Snapshot, Status};

use super::{Decision, Kind};

const ZONE: &str = "\
$ORIGIN gslb.example.
$TTL 300
@       IN SOA ns1 hostmaster 1 3600 600 86400 60
        IN NS  ns1
ns1     IN A   127.0.0.1
ingress IN A   192.0.2.99
";

/// The MaxMind test database shipped beside the repository (`../shared/testdata`).
pub(crate) fn test_mmdb() -> String {
    format!(
        "{}/../shared/testdata/geoip/GeoLite2-Country-Test.mmdb",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// `[geo]` with [`test_mmdb`], then `toml` (which may add `[geo.regions]`).
pub(crate) fn with_mmdb(toml: &str) -> String {
    format!("[geo]\nmmdb = {:?}\n{toml}", test_mmdb())
}

/// Compiles `toml` (profiles, geo, sites, monitors) with `zone` as the zone file of
/// `gslb.example.`, as configuration generation `generation`: every problem on failure.
pub(crate) fn try_load_zone(zone: &str, toml: &str, generation: u64) -> Result<Snapshot, Problems> {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    std::fs::write(zones.join("gslb.example.zone"), zone).unwrap();
    let path = dir.path().join("signpost.toml");
    let text = format!("[zones]\ndir = {:?}\n{toml}", zones.display().to_string());
    std::fs::write(&path, text).unwrap();
    crate::app::load(&path, generation).map(|l| l.snapshot)
}

/// [`try_load_zone`] with the standard zone.
pub(crate) fn try_load_generation(toml: &str, generation: u64) -> Result<Snapshot, Problems> {
    try_load_zone(ZONE, toml, generation)
}

/// [`try_load_generation`] 1.
pub(crate) fn try_load(toml: &str) -> Result<Snapshot, Problems> {
    try_load_generation(toml, 1)
}

pub(crate) fn load(toml: &str) -> Snapshot {
    try_load(toml).unwrap_or_else(|e| panic!("config does not load:\n{e}"))
}

/// Sets the statuses of profile `p`'s endpoints, in order.
pub(crate) fn set_status(snap: &mut Snapshot, p: u32, statuses: &[Status]) {
    for (st, s) in snap.endpoints[p as usize].iter_mut().zip(statuses) {
        st.status = *s;
    }
    crate::status::rederive_nested(snap);
}

pub(crate) fn set_rtt(snap: &mut Snapshot, p: u32, rtts_ms: &[Option<u64>]) {
    for (st, r) in snap.endpoints[p as usize].iter_mut().zip(rtts_ms) {
        st.rtt = r.map(Duration::from_millis);
    }
}

/// The profile index of `name`.
pub(crate) fn pid(snap: &Snapshot, name: &str) -> u32 {
    snap.model
        .profile(name)
        .unwrap_or_else(|| panic!("no profile {name}"))
        .0
}

/// `NODATA`, `SERVFAIL`, or the picked endpoint names joined by spaces.
pub(crate) fn outcome(snap: &Snapshot, d: &Decision) -> String {
    match d.kind {
        Kind::NoData => "NODATA".into(),
        Kind::ServFail => "SERVFAIL".into(),
        Kind::Answer => {
            let names: BTreeSet<&str> = d
                .picks()
                .iter()
                .map(|k| {
                    snap.model.profiles[k.profile as usize].endpoints[k.endpoint as usize]
                        .name
                        .as_str()
                })
                .collect();
            names.into_iter().collect::<Vec<_>>().join(" ")
        }
    }
}
