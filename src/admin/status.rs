//! The JSON documents of `GET /api/v1/status` and `GET /api/v1/explain`.

use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::rr::RecordType;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde_json::{Value, json};

use super::{ApiError, query_pairs};
use crate::drain::{Drain, rfc3339};
use crate::model::Answer;
use crate::policy::{self, Client, Kind};
use crate::snapshot::Snapshot;

fn drain_json(d: &Drain) -> Value {
    json!({
        "reason": d.reason,
        "since": rfc3339(d.since()),
        "ramp_seconds": d.ramp_ms as f64 / 1000.0,
        "ramp_ends": rfc3339(d.ends_at()),
    })
}

/// What an endpoint answers with, as text.
pub fn answer_text(snap: &Snapshot, a: &Answer) -> Vec<String> {
    match a {
        Answer::Addrs { v4, v6 } => v4
            .iter()
            .map(ToString::to_string)
            .chain(v6.iter().map(ToString::to_string))
            .collect(),
        Answer::Cname { name, .. } => vec![format!("CNAME {name}")],
        Answer::Nested(c) => vec![format!("profile {}", snap.model.profiles[*c as usize].name)],
    }
}

/// `GET /api/v1/status`.
pub fn status_json(snap: &Snapshot) -> Value {
    let m = &snap.model;
    let mut profiles = Vec::new();
    for (pi, p) in m.profiles.iter().enumerate() {
        let mut eps = Vec::new();
        for (ei, e) in p.endpoints.iter().enumerate() {
            let st = &snap.endpoints[pi][ei];
            let site = e.site.map(|s| m.sites[s as usize].as_str());
            let drain = snap.drains.for_endpoint(&p.key, &e.name, site);
            let target = e.target.map(|t| &m.targets[t as usize]);
            eps.push(json!({
                "name": e.name,
                "site": site,
                "answer": answer_text(snap, &e.answer),
                "status": st.status.as_str(),
                "weight": e.weight,
                "effective_weight": st.effective_weight(),
                "priority": e.priority,
                "rtt_ms": st.rtt.map(|d| d.as_secs_f64() * 1000.0),
                "probe": target.map(|t| t.url()),
                "last_probe": snap.probe_json(e.target),
                "reason": snap.health.endpoints.get(pi).and_then(|v| v.get(ei)).map(|v| v.reason.to_string()),
                "transitions": snap.health.endpoints.get(pi).and_then(|v| v.get(ei)).map_or(0, |v| v.transitions),
                "since": snap.health.endpoints.get(pi).and_then(|v| v.get(ei)).and_then(|v| v.since).map(rfc3339),
                "drain": drain.map(drain_json),
            }));
        }
        profiles.push(json!({
            "name": p.name.to_string(),
            "method": format!("{:?}", p.method).to_lowercase(),
            "ttl": p.ttl,
            "endpoints": eps,
        }));
    }
    let sites: Vec<Value> = m
        .sites
        .iter()
        .map(|s| json!({ "name": s, "drain": snap.drains.sites.get(s).map(drain_json) }))
        .collect();
    json!({
        "generation": m.generation,
        "zones": m.zones.iter().map(|z| z.origin.to_string()).collect::<Vec<_>>(),
        "profiles": profiles,
        "sites": sites,
        "drains_active": snap.drains.len(),
        "last_reload": snap.reload.as_deref(),
        "ready": snap.health.first_round_complete,
    })
}

/// `GET /api/v1/explain?name=&type=A&client=10.1.2.3`.
pub fn explain(snap: &Snapshot, query: &str) -> Result<Value, ApiError> {
    let mut name = None;
    let mut qtype = RecordType::A;
    let mut client = None;
    let mut ecs_prefix = None;
    for (k, v) in query_pairs(query) {
        match k.as_str() {
            "name" => name = Some(v),
            "type" => {
                qtype = RecordType::from_str(&v.to_ascii_uppercase()).map_err(|_| {
                    ApiError::new(
                        400,
                        format!("type: {v:?} is not a record type, e.g. A or AAAA"),
                    )
                })?
            }
            "client" => {
                let (addr, prefix) = match v.split_once('/') {
                    Some((a, p)) => (a, Some(p)),
                    None => (v.as_str(), None),
                };
                client = Some(IpAddr::from_str(addr.trim()).map_err(|_| {
                    ApiError::new(400, format!("client: {v:?} is not an IP address"))
                })?);
                if let Some(p) = prefix {
                    ecs_prefix = Some(p.parse::<u8>().map_err(|_| {
                        ApiError::new(400, format!("client: bad prefix length in {v:?}"))
                    })?);
                }
            }
            other => {
                return Err(ApiError::new(
                    400,
                    format!("unknown parameter {other:?}; use name, type and client"),
                ));
            }
        }
    }
    let name = name.ok_or_else(|| {
        ApiError::new(
            400,
            "name is required, e.g. ?name=app.gslb.example&client=10.1.2.3",
        )
    })?;
    let client =
        client.ok_or_else(|| ApiError::new(400, "client is required, e.g. &client=10.1.2.3"))?;
    let (pid, profile) = snap
        .model
        .profile(&name)
        .ok_or_else(|| ApiError::new(404, format!("no profile named {name:?}")))?;
    let c = Client {
        addr: client,
        ecs_source_prefix: ecs_prefix,
    };
    let mut rng = SmallRng::from_os_rng();
    let d = policy::decide(snap, pid, u16::from(qtype), &c, &mut rng);
    let answer: Vec<Value> = d
        .picks()
        .iter()
        .map(|&(p, e)| {
            let pr = &snap.model.profiles[p as usize];
            json!({ "profile": pr.name.to_string(), "endpoint": pr.endpoints[e as usize].name,
                    "records": answer_text(snap, &pr.endpoints[e as usize].answer) })
        })
        .collect();
    Ok(json!({
        "name": profile.name.to_string(),
        "type": qtype.to_string(),
        "client": client.to_string(),
        "method": format!("{:?}", profile.method).to_lowercase(),
        "result": match d.kind { Kind::Answer => "answer", Kind::NoData => "nodata", Kind::ServFail => "servfail" },
        "scope_prefix": d.scope,
        "answer": answer,
    }))
}
