//! `decide()` allocates nothing (DESIGN.md, "Performance principles"): every method,
//! including GeoIP lookups and nested profiles, counted by a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use signpost::policy::{Client, decide};
use signpost::snapshot::Status;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[path = "../bench/fixture.rs"]
mod fixture;

const ZONE: &str = "$ORIGIN gslb.example.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n  IN NS ns1\nns1 IN A 127.0.0.1\n";

/// Every method, a nested profile, GeoIP and configured regions.
const CONFIG: &str = r#"
[geo]
mmdb = "MMDB"
regions = { corp-emea = ["10.20.0.0/16"], corp-dublin = ["10.20.1.0/24"] }

[profiles."weighted.gslb.example"]
method = "weighted"
endpoints = [{ name = "a", address = "192.0.2.1" }, { name = "b", addresses = ["192.0.2.2", "2001:db8::2"], weight = 3 }]

[profiles."priority.gslb.example"]
method = "priority"
endpoints = [{ name = "a", address = "192.0.2.1" }, { name = "b", target = "ingress.corp.example.", priority = 2 }]

[profiles."performance.gslb.example"]
method = "performance"
latency = { corp-emea = { b = "3ms" } }
endpoints = [{ name = "a", address = "192.0.2.1" }, { name = "b", address = "192.0.2.2" }]

[profiles."multivalue.gslb.example"]
method = "multivalue"
max_answers = 2
endpoints = [{ name = "a", addresses = ["192.0.2.1", "192.0.2.11"] }, { name = "b", address = "192.0.2.2" }]

[profiles."geographic.gslb.example"]
method = "geographic"
endpoints = [
    { name = "dublin", address = "192.0.2.1", regions = ["corp-dublin"] },
    { name = "uk", address = "192.0.2.2", regions = ["GB", "corp-emea"] },
    { name = "europe", address = "192.0.2.3", regions = ["EU", "WORLD"] },
]

[profiles."subnet.gslb.example"]
method = "subnet"
endpoints = [{ name = "a", address = "192.0.2.1", subnets = ["10.20.1.0/24"] }, { name = "b", address = "192.0.2.2" }]

[profiles."nested.gslb.example"]
method = "priority"
endpoints = [
    { name = "child", profile = "geographic.gslb.example", min_child_endpoints = 2 },
    { name = "backup", address = "192.0.2.9", priority = 2 },
]
"#;

#[test]
fn decide_allocates_nothing_for_any_method() {
    let mmdb = format!(
        "{}/../shared/testdata/geoip/GeoLite2-Country-Test.mmdb",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut snap = fixture::load("gslb.example", ZONE, &CONFIG.replace("MMDB", &mmdb));
    // Some endpoints down, so fall-through and all_down paths run too.
    snap.endpoints[snap.model.profile("geographic.gslb.example").unwrap().0 as usize][0].status =
        Status::Degraded;
    snap.endpoints[snap.model.profile("subnet.gslb.example").unwrap().0 as usize][0].status =
        Status::Degraded;
    let clients: Vec<Client> = [
        "10.20.1.0/24",
        "81.2.69.142/32",
        "89.160.20.112",
        "2001:218::/32",
        "192.168.1.1",
    ]
    .iter()
    .map(|c| Client::parse(c).unwrap())
    .collect();
    let profiles: Vec<u32> = (0..snap.model.profiles.len() as u32).collect();
    let mut rng = SmallRng::seed_from_u64(9);
    let before = ALLOCATIONS.with(Cell::get);
    let mut answered = 0;
    for _ in 0..200 {
        for &p in &profiles {
            for c in &clients {
                for qtype in [1, 28, 5, 255, 15].map(signpost::base::Rtype) {
                    let d = decide(&snap, p, qtype, c, &mut rng);
                    answered += d.picks().len();
                }
            }
        }
    }
    let after = ALLOCATIONS.with(Cell::get);
    assert!(answered > 0);
    assert_eq!(
        after - before,
        0,
        "decide() allocated {} times",
        after - before
    );
}
