//! Validation at load: each row is a config snippet and the problem it must produce (key
//! path and message), as `signpost check` prints it.

use crate::policy::testutil::{try_load, with_mmdb};

const ONE: &str = r#"
[[profiles."t.gslb.example".endpoints]]
name = "a"
address = "192.0.2.1"
"#;

fn profile(keys: &str, endpoints: &str) -> String {
    format!("[profiles.\"t.gslb.example\"]\n{keys}\n{endpoints}")
}

fn endpoint(name: &str, keys: &str) -> String {
    format!("[[profiles.\"t.gslb.example\".endpoints]]\nname = \"{name}\"\n{keys}\n")
}

/// A chain of `n` profiles, each nesting the next.
fn chain(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s += &format!(
            "[profiles.\"p{i}.gslb.example\"]\n[[profiles.\"p{i}.gslb.example\".endpoints]]\nname = \"e\"\n"
        );
        if i + 1 < n {
            s += &format!("profile = \"p{}.gslb.example\"\n", i + 1);
        } else {
            s += "address = \"192.0.2.1\"\n";
        }
    }
    s
}

const T: &str = "profiles.\"t.gslb.example\"";

#[test]
fn every_routing_problem_is_reported_with_key_path_and_fix() {
    let regions = "[geo.regions]\ncorp-emea = [\"10.20.0.0/16\"]\n";
    let cases: Vec<(String, String)> = vec![
        (
            profile("", &endpoint("a", "address = \"192.0.2.1\"\nweight = 0")),
            format!("{T}.endpoints[0].weight: 0 is out of range; use 1 to 1000"),
        ),
        (
            profile("", &endpoint("a", "address = \"192.0.2.1\"\npriority = 1001")),
            format!("{T}.endpoints[0].priority: 1001 is out of range; use 1 to 1000"),
        ),
        (
            profile("", &endpoint("a", "address = \"192.0.2.1\"\nsite = \"hub-x\"")),
            format!("{T}.endpoints[0].site: no site named \"hub-x\"; add [[sites]]"),
        ),
        (
            profile("monitor = \"web\"", ONE),
            format!("{T}.monitor: no monitor named \"web\"; define [monitors.web]"),
        ),
        (
            format!(
                "{}{}",
                profile("", &endpoint("a", "profile = \"u.gslb.example\"")),
                "[profiles.\"u.gslb.example\"]\n[[profiles.\"u.gslb.example\".endpoints]]\nname = \"b\"\nprofile = \"t.gslb.example\"\n"
            ),
            "nested profiles form a cycle: t.gslb.example → u.gslb.example → t.gslb.example".into(),
        ),
        (chain(12), "profiles are nested deeper than 10 levels".into()),
        (
            "[profiles.\"app.other.example\"]\n[[profiles.\"app.other.example\".endpoints]]\nname = \"a\"\naddress = \"192.0.2.1\"\n".into(),
            "profiles.\"app.other.example\": app.other.example. is not inside any served zone".into(),
        ),
        (
            "[profiles.\"ingress.gslb.example\"]\n[[profiles.\"ingress.gslb.example\".endpoints]]\nname = \"a\"\naddress = \"192.0.2.1\"\n".into(),
            "already has records at ingress.gslb.example.; remove them or rename the profile".into(),
        ),
        (
            profile("method = \"geographic\"", ONE),
            format!("{T}.endpoints[0].regions: a geographic endpoint needs regions"),
        ),
        (
            format!("{regions}{}", profile("method = \"geographic\"", &endpoint("a", "address = \"192.0.2.1\"\nregions = [\"corp-emea\", \"corp-apac\"]"))),
            format!("{T}.endpoints[0].regions[1]: unknown region \"corp-apac\"; use a [geo.regions] name (corp-emea), an ISO 3166 country code"),
        ),
        (
            profile("method = \"geographic\"", &endpoint("a", "address = \"192.0.2.1\"\nregions = [\"WORLD\", \"DE\"]")),
            format!("{T}.endpoints[0].regions[1]: \"DE\" is a country or continent, which only a MaxMind DB can tell; set geo.mmdb"),
        ),
        (
            "[geo.regions]\nEU = [\"10.0.0.0/8\"]\n".into(),
            "geo.regions.EU: \"EU\" reads as a country or continent code (or WORLD) in regions; rename the region".into(),
        ),
        (
            "[geo.regions]\na = [\"10.0.0.0/8\"]\nb = [\"10.0.0.0/8\"]\n".into(),
            "geo.regions.b[0]: 10.0.0.0/8 is also in region \"a\"".into(),
        ),
        (
            profile(
                "method = \"subnet\"",
                &(endpoint("a", "address = \"192.0.2.1\"\nsubnets = [\"10.0.0.0/8\"]")
                    + &endpoint("b", "address = \"192.0.2.2\"\nsubnets = [\"10.1.0.0/16\", \"10.0.0.0/8\"]")),
            ),
            format!("{T}.endpoints[1].subnets[1]: 10.0.0.0/8 is also a subnet of endpoint \"a\""),
        ),
        (
            format!("{regions}{}", profile("method = \"performance\"\n[profiles.\"t.gslb.example\".latency.corp-emea]\nzz = \"5ms\"", ONE)),
            format!("{T}.latency.corp-emea.zz: no endpoint named \"zz\" in this profile; the endpoints are a"),
        ),
        (
            profile("method = \"performance\"\n[profiles.\"t.gslb.example\".latency.mars]\na = \"5ms\"", ONE),
            format!("{T}.latency.mars: unknown region \"mars\""),
        ),
        (
            profile("method = \"weighted\"\n[profiles.\"t.gslb.example\".latency.EU]\na = \"5ms\"", ONE),
            format!("{T}.latency: a latency table applies to method = \"performance\" only"),
        ),
        (
            profile("method = \"multivalue\"", &endpoint("a", "target = \"x.example.\"")),
            format!("{T}.endpoints[0].target: multivalue answers with addresses only"),
        ),
        (
            profile("method = \"performance\"\nperformance_tolerance = -0.5", ONE),
            format!("{T}.performance_tolerance: -0.5 is out of range"),
        ),
        (
            format!(
                "{}[profiles.\"u.gslb.example\"]\n[[profiles.\"u.gslb.example\".endpoints]]\nname = \"b\"\naddress = \"192.0.2.2\"\n",
                profile("", &endpoint("a", "profile = \"u.gslb.example\"\nmin_child_endpoints = 5"))
            ),
            format!("{T}.endpoints[0].min_child_endpoints: 5 is out of range; u.gslb.example has 1 endpoint(s), so use 1 to 1"),
        ),
        (
            "[geo]\nmmdb = \"/nonexistent/GeoLite2-Country.mmdb\"\n".into(),
            "geo.mmdb: cannot read the MaxMind DB /nonexistent/GeoLite2-Country.mmdb".into(),
        ),
    ];
    for (toml, want) in cases {
        match try_load(&toml) {
            Ok(_) => panic!("loaded, but expected {want:?}:\n{toml}"),
            Err(e) => assert!(
                e.to_string().contains(&want),
                "expected {want:?} in:\n{e}\nconfig:\n{toml}"
            ),
        }
    }
}

#[test]
fn every_problem_of_one_load_is_reported_at_once() {
    let toml = format!(
        "[geo.regions]\nNA = [\"10.0.0.0/8\"]\n{}",
        profile(
            "method = \"geographic\"",
            &(endpoint(
                "a",
                "address = \"192.0.2.1\"\nweight = 0\nregions = [\"XX\"]"
            ) + &endpoint("b", "address = \"192.0.2.2\"")),
        )
    );
    let err = try_load(&toml).unwrap_err().to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    for want in [
        "geo.regions.NA:",
        "endpoints[0].weight:",
        "endpoints[0].regions[0]: unknown region \"XX\"",
        "endpoints[1].regions: a geographic endpoint needs regions",
    ] {
        assert!(err.contains(want), "{want} missing in:\n{err}");
    }
}

#[test]
fn ten_levels_of_nesting_are_allowed() {
    assert!(try_load(&chain(11)).is_ok());
}

#[test]
fn compiles_geo_latency_and_address_families() {
    let toml = with_mmdb(
        r#"
regions = { corp-emea = ["10.20.0.0/16"], corp-dublin = ["10.20.1.0/24"] }
[profiles."t.gslb.example"]
method = "performance"
latency = { corp-emea = { b = "5ms" }, GB = { a = "7ms" } }
endpoints = [{ name = "a", address = "2001:db8::1" }, { name = "b", profile = "u.gslb.example" }]
[profiles."u.gslb.example"]
endpoints = [{ name = "c", target = "ingress.gslb.example." }]
"#,
    );
    let snap = crate::policy::testutil::load(&toml);
    let m = &snap.model;
    assert!(m.geo.mmdb.is_some());
    assert_eq!(m.geo.region_names, ["corp-dublin", "corp-emea"]);
    assert_eq!(m.geo.nets[0].0.to_string(), "10.20.1.0/24");
    let (_, p) = m.profile("t.gslb.example").unwrap();
    assert!(p.uses_geoip);
    assert_eq!(p.client_nets.len(), 1, "only corp-emea is in the table");
    assert_eq!(p.latency.len(), 2);
    let a = &p.endpoints[0];
    assert!(!a.answers_a && a.answers_aaaa);
    let b = &p.endpoints[1];
    assert!(
        b.answers_a && b.answers_aaaa,
        "nested into a CNAME endpoint"
    );
}

#[test]
fn a_profile_has_at_most_65535_endpoints() {
    // An endpoint index is 16 bits on the query path; one more endpoint is a load error.
    let n = crate::model::MAX_ENDPOINTS + 1;
    let mut endpoints = String::with_capacity(n * 80);
    for i in 0..n {
        endpoints += &endpoint(&format!("e{i}"), "address = \"192.0.2.1\"");
    }
    let err = try_load(&profile("", &endpoints)).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "{T}.endpoints: 65536 endpoints; a profile has at most 65535 (nest profiles for more)"
        )),
        "{}",
        &err[..err.len().min(500)]
    );
}
