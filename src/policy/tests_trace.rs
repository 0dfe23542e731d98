//! Country and continent routing from MaxMind's test database, and decision traces.

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::testutil::{load, outcome, pid, set_rtt, set_status, with_mmdb};
use super::{Client, ExplainError, ProfileRef, decide, explain_with_rng, qtype_from_str};
use crate::base::Rtype;
use crate::snapshot::Snapshot;
use crate::snapshot::Status::{Degraded as DEG, Online as ON};

fn geo_profile() -> Snapshot {
    load(&with_mmdb(
        r#"
regions = { corp-emea = ["10.20.0.0/16"] }
[profiles]
"t.gslb.example" = { method = "geographic", ttl = 20, endpoints = [
    { name = "emea", address = "192.0.2.1", regions = ["corp-emea"] },
    { name = "uk", address = "192.0.2.2", regions = ["GB"] },
    { name = "europe", address = "192.0.2.3", regions = ["EU", "country:NA"] },
    { name = "rest", address = "192.0.2.4", regions = ["WORLD"] },
] }
"#,
    ))
}

fn one(snap: &Snapshot, client: &str) -> (String, u8) {
    let p = pid(snap, "t.gslb.example");
    let d = decide(
        snap,
        p,
        Rtype::A,
        &Client::parse(client).unwrap(),
        &mut SmallRng::seed_from_u64(1),
    );
    (outcome(snap, &d), d.scope)
}

#[test]
fn geographic_by_country_and_continent_from_the_mmdb() {
    let mut snap = geo_profile();
    // In MaxMind's test data 81.2.69.142 is GB in network /31, 89.160.20.112 SE (EU)
    // in /28, 216.160.83.56 US (NA) in /29, 2001:218::/32 JP (AS).
    assert_eq!(one(&snap, "81.2.69.142"), ("uk".into(), 31));
    assert_eq!(one(&snap, "89.160.20.112"), ("europe".into(), 28));
    assert_eq!(one(&snap, "216.160.83.56"), ("rest".into(), 29));
    assert_eq!(one(&snap, "2001:218::1"), ("rest".into(), 32));
    // A configured region beats the database.
    assert_eq!(one(&snap, "10.20.1.0/24"), ("emea".into(), 16));
    // The country's endpoint is Degraded: the continent answers.
    let p = pid(&snap, "t.gslb.example");
    set_status(&mut snap, p, &[ON, DEG, ON, ON]);
    assert_eq!(one(&snap, "81.2.69.142"), ("europe".into(), 31));
}

#[test]
fn explain_shows_client_location_candidates_rule_scope_and_answer() {
    let mut snap = geo_profile();
    let p = pid(&snap, "t.gslb.example");
    set_status(&mut snap, p, &[ON, DEG, ON, ON]);
    let mut rng = SmallRng::seed_from_u64(1);
    let client = Client::parse("81.2.69.142/32").unwrap();
    let t = explain_with_rng(
        &snap,
        ProfileRef::from("T.gslb.example"),
        Rtype::A,
        client,
        &mut rng,
    )
    .unwrap();
    assert_eq!(t.profile, "t.gslb.example.");
    assert_eq!(t.qtype, "A");
    assert_eq!(t.client.country.as_deref(), Some("GB"));
    assert_eq!(t.client.continent.as_deref(), Some("EU"));
    assert_eq!(t.client.geoip_network.as_deref(), Some("81.2.69.142/31"));
    assert_eq!(t.client.region, None);
    assert_eq!(t.steps.len(), 1);
    let step = &t.steps[0];
    assert_eq!(step.candidates.len(), 4);
    assert_eq!(step.candidates[1].endpoint, "uk");
    assert!(!step.candidates[1].eligible);
    assert_eq!(step.skipped, ["country GB: endpoint uk is Degraded"]);
    assert!(t.rule.contains("continent EU"), "{}", t.rule);
    assert_eq!((t.scope, t.echoed_scope), (31, Some(31)));
    assert_eq!(t.answer.records, ["A 192.0.2.3"]);
    assert_eq!(t.answer.ttl, Some(20));
    assert_eq!(t.answer.endpoints, ["t.gslb.example./europe"]);
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["steps"][0]["candidates"][1]["status"], "Degraded");
    assert_eq!(json["client"]["ecs_source_prefix"], 32);
    assert_eq!(json["answer"]["rcode"], "NOERROR");
}

#[test]
fn explain_follows_nested_profiles_and_reports_regions() {
    let mut snap = load(
        r#"
[geo.regions]
corp-emea = ["10.20.0.0/16"]
corp-dublin = ["10.20.1.0/24"]
[profiles]
"t.gslb.example" = { method = "priority", endpoints = [
    { name = "eu", profile = "eu.gslb.example" },
    { name = "backup", address = "192.0.2.9", priority = 2 },
] }
"eu.gslb.example" = { method = "performance", endpoints = [{ name = "dublin", address = "192.0.2.21" }, { name = "paris", address = "192.0.2.22" }] }
"#,
    );
    let eu = pid(&snap, "eu.gslb.example");
    set_rtt(&mut snap, eu, &[Some(30), Some(8)]);
    let client = Client::parse("10.20.1.7").unwrap();
    let mut rng = SmallRng::seed_from_u64(1);
    let t = explain_with_rng(&snap, "t.gslb.example".into(), Rtype::A, client, &mut rng).unwrap();
    assert_eq!(t.steps.len(), 2);
    assert_eq!(t.steps[0].picked, ["eu"]);
    assert_eq!(
        t.steps[0].candidates[0].child_online.as_deref(),
        Some("2 of 2 Online (0 being checked), needs 1")
    );
    assert_eq!(t.steps[1].candidates[1].rtt_ms, Some(8.0));
    assert!(
        t.rule
            .starts_with("nested t.gslb.example. → eu.gslb.example.: performance"),
        "{}",
        t.rule
    );
    assert_eq!(t.answer.records, ["A 192.0.2.22"]);
    let regions: Vec<(&str, &str)> = t
        .client
        .regions
        .iter()
        .map(|r| (r.name.as_str(), r.subnet.as_str()))
        .collect();
    assert_eq!(
        regions,
        [
            ("corp-dublin", "10.20.1.0/24"),
            ("corp-emea", "10.20.0.0/16")
        ]
    );
    assert_eq!(t.client.region.as_deref(), Some("corp-dublin"));
    assert_eq!((t.scope, t.echoed_scope), (0, None));
}

#[test]
fn explain_names_unknown_profiles_and_parses_types() {
    let snap = geo_profile();
    let c = Client::parse("10.0.0.1").unwrap();
    let mut rng = SmallRng::seed_from_u64(1);
    assert_eq!(
        explain_with_rng(&snap, "nope.gslb.example".into(), Rtype::A, c, &mut rng).unwrap_err(),
        ExplainError::UnknownProfile("nope.gslb.example".into())
    );
    assert_eq!(
        explain_with_rng(&snap, 99u32.into(), Rtype::A, c, &mut rng).unwrap_err(),
        ExplainError::UnknownIndex(99)
    );
    assert_eq!(qtype_from_str("aaaa"), Some(Rtype::AAAA));
    assert_eq!(qtype_from_str("A"), Some(Rtype::A));
    assert_eq!(qtype_from_str("TYPE28"), Some(Rtype::AAAA));
    assert_eq!(qtype_from_str("bogus"), None);
    assert!(Client::parse("10.20.1.0/33").is_err());
    assert_eq!(
        Client::parse("10.20.1.9/24").unwrap().addr.to_string(),
        "10.20.1.0"
    );
}
