//! `decide()` for each routing method with 3, 30 and 300 endpoints (issue 4).
//!
//! Run: `cargo bench --bench decide`. Statuses are mixed (every fourth endpoint Degraded,
//! every seventh Disabled) so the eligibility filter does real work; location methods get
//! a client that matches the last endpoint, the worst case for a scan.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use signpost::policy::{Client, decide};
use signpost::snapshot::{Snapshot, Status};

const ZONE: &str = "$ORIGIN gslb.example.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n  IN NS ns1\nns1 IN A 127.0.0.1\n";

fn load(toml: &str) -> Snapshot {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    std::fs::write(zones.join("gslb.example.zone"), ZONE).unwrap();
    let path = dir.path().join("signpost.toml");
    std::fs::write(
        &path,
        format!("[zones]\ndir = {:?}\n{toml}", zones.display().to_string()),
    )
    .unwrap();
    match signpost::app::load(&path, 1) {
        Ok(l) => l.snapshot,
        Err(p) => panic!("{p}"),
    }
}

fn mmdb() -> String {
    format!(
        "{}/../shared/testdata/geoip/GeoLite2-Country-Test.mmdb",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Config, profile to ask, and client, for `method` with `n` endpoints.
fn setup(method: &str, n: usize) -> (Snapshot, u32, Client) {
    let mut toml = String::new();
    let mut client = "10.0.0.1".to_owned();
    let name = "t.gslb.example";
    let ep = |i: usize, keys: &str| {
        format!(
            "[[profiles.\"{name}\".endpoints]]\nname = \"e{i}\"\naddress = \"10.{}.{}.{}\"\nweight = {}\n{keys}\n",
            i / 65536 % 256,
            i / 256 % 256,
            i % 256,
            1 + i % 7
        )
    };
    match method {
        "weighted" | "performance" | "multivalue" => {
            toml += &format!("[profiles.\"{name}\"]\nmethod = \"{method}\"\nmax_answers = 8\n");
            for i in 0..n {
                toml += &ep(i, "");
            }
        }
        "priority" => {
            toml += &format!("[profiles.\"{name}\"]\nmethod = \"priority\"\n");
            for i in 0..n {
                toml += &ep(i, &format!("priority = {}", 1 + i % 3));
            }
        }
        "geographic" => {
            toml += "[geo.regions]\n";
            for i in 0..n {
                toml += &format!("r{i} = [\"10.{}.{}.0/24\"]\n", i / 256, i % 256);
            }
            toml += &format!("[profiles.\"{name}\"]\nmethod = \"geographic\"\n");
            for i in 0..n {
                toml += &ep(i, &format!("regions = [\"r{i}\"]"));
            }
            client = format!("10.{}.{}.0/24", (n - 1) / 256, (n - 1) % 256);
        }
        "geographic_geoip" => {
            const COUNTRIES: [&str; 10] =
                ["SE", "US", "JP", "DE", "FR", "BT", "PH", "NO", "CN", "GB"];
            toml += &format!(
                "[geo]\nmmdb = {:?}\n[profiles.\"{name}\"]\nmethod = \"geographic\"\n",
                mmdb()
            );
            for i in 0..n {
                let region = if i + 1 == n {
                    "GB".to_owned()
                } else {
                    COUNTRIES[i % 9].to_owned()
                };
                toml += &ep(i, &format!("regions = [\"{region}\"]"));
            }
            client = "81.2.69.142/32".into();
        }
        "subnet" => {
            toml += &format!("[profiles.\"{name}\"]\nmethod = \"subnet\"\n");
            for i in 0..n {
                toml += &ep(
                    i,
                    &format!("subnets = [\"10.{}.{}.0/24\"]", i / 256, i % 256),
                );
            }
            client = format!("10.{}.{}.0/24", (n - 1) / 256, (n - 1) % 256);
        }
        "nested" => {
            // A priority parent with three nested children of n endpoints each.
            toml += "[profiles.\"t.gslb.example\"]\nmethod = \"priority\"\n";
            for c in 0..3 {
                toml += &format!(
                    "[[profiles.\"t.gslb.example\".endpoints]]\nname = \"c{c}\"\nprofile = \"c{c}.gslb.example\"\npriority = {}\n",
                    c + 1
                );
            }
            for c in 0..3 {
                toml += &format!("[profiles.\"c{c}.gslb.example\"]\n");
                for i in 0..n {
                    toml += &format!(
                        "[[profiles.\"c{c}.gslb.example\".endpoints]]\nname = \"e{i}\"\naddress = \"10.{c}.{}.{}\"\n",
                        i / 256,
                        i % 256
                    );
                }
            }
        }
        other => panic!("no bench for {other}"),
    }
    let mut snap = load(&toml);
    for (pi, states) in snap.endpoints.iter_mut().enumerate() {
        for (i, st) in states.iter_mut().enumerate() {
            st.status = if i + 1 == n && method != "nested" {
                Status::Online
            } else if i % 7 == 3 {
                Status::Disabled
            } else if i % 4 == 1 {
                Status::Degraded
            } else {
                Status::Online
            };
            st.rtt = Some(Duration::from_micros(
                5_000 + (i as u64 * 7919 + pi as u64) % 50_000,
            ));
        }
    }
    signpost::status::rederive_nested(&mut snap);
    let p = snap.model.profile("t.gslb.example").unwrap().0;
    (snap, p, Client::parse(&client).unwrap())
}

fn bench(c: &mut Criterion) {
    let methods = [
        "weighted",
        "priority",
        "performance",
        "multivalue",
        "geographic",
        "geographic_geoip",
        "subnet",
        "nested",
    ];
    for method in methods {
        let mut g = c.benchmark_group(format!("decide/{method}"));
        for n in [3, 30, 300] {
            let (snap, p, client) = setup(method, n);
            let mut rng = SmallRng::seed_from_u64(1);
            g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| {
                    decide(
                        black_box(&snap),
                        p,
                        signpost::base::Rtype::A,
                        black_box(&client),
                        &mut rng,
                    )
                })
            });
        }
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
