//! The JSON documents of `GET /api/v1/status` and `GET /api/v1/explain`.

use serde_json::{Value, json};

use super::{ApiError, query_pairs};
use crate::drain::{Drain, rfc3339};
use crate::model::Answer;
use crate::policy::{self, Client};
use crate::snapshot::Snapshot;

/// The last probe of a target (`null` when not probed yet).
pub fn probe_json(snap: &Snapshot, target: Option<u32>) -> Value {
    let last = target.and_then(|t| snap.health.targets.get(t as usize)?.last.as_ref());
    match last {
        None => Value::Null,
        Some(l) => json!({
            "time": rfc3339(l.at),
            "ok": l.ok,
            "rtt_ms": l.rtt.as_secs_f64() * 1000.0,
            "reason": l.reason.as_deref(),
        }),
    }
}

fn drain_json(d: &Drain) -> Value {
    json!({
        "reason": d.reason,
        "since": rfc3339(d.since()),
        "ramp_seconds": d.ramp_ms as f64 / 1000.0,
        "ramp_ends": rfc3339(d.ends_at()),
    })
}

/// A drain that names a site or endpoint the current config does not have: it applies
/// again if the name comes back, until undrained.
pub enum StaleDrain<'a> {
    Site {
        site: &'a str,
        drain: &'a Drain,
    },
    Endpoint {
        profile: &'a str,
        endpoint: &'a str,
        drain: &'a Drain,
    },
}

/// The drains in force that name no site or endpoint of the current config.
pub fn stale_drains(snap: &Snapshot) -> Vec<StaleDrain<'_>> {
    let m = &snap.model;
    let mut stale = Vec::new();
    for (site, drain) in &snap.drains.sites {
        if !m.sites.contains(site) {
            stale.push(StaleDrain::Site { site, drain });
        }
    }
    for (key, drain) in &snap.drains.endpoints {
        let known = key.rsplit_once('/').is_some_and(|(p, e)| {
            m.profile(p)
                .is_some_and(|(_, p)| p.endpoints.iter().any(|x| x.name == e))
        });
        if !known {
            let (profile, endpoint) = key.rsplit_once('/').unwrap_or((key.as_str(), ""));
            stale.push(StaleDrain::Endpoint {
                profile,
                endpoint,
                drain,
            });
        }
    }
    stale
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
                "last_probe": probe_json(snap, e.target),
                "reason": snap.health.endpoints.get(pi).and_then(|v| v.get(ei)).map(|v| v.reason.to_string()),
                "transitions": snap.health.endpoints.get(pi).and_then(|v| v.get(ei)).map_or(0, |v| v.transitions),
                "since": snap.health.endpoints.get(pi).and_then(|v| v.get(ei)).and_then(|v| v.since).map(rfc3339),
                "drain": drain.map(drain_json),
            }));
        }
        let state = snap.profiles.get(pi);
        let reasons = crate::status::unstable_reasons(snap, pi);
        profiles.push(json!({
            "name": p.name.to_string(),
            "method": format!("{:?}", p.method).to_lowercase(),
            "ttl": p.ttl,
            "ttl_unstable": p.ttl_unstable,
            "ttl_now": snap.ttl(pi as u32),
            "unstable": !reasons.is_empty(),
            "unstable_reasons": reasons,
            "unstable_until": state.and_then(|s| s.changed_until).map(rfc3339),
            "endpoints": eps,
        }));
    }
    let sites: Vec<Value> = m
        .sites
        .iter()
        .map(|s| json!({ "name": s, "drain": snap.drains.sites.get(s).map(drain_json) }))
        .collect();
    let stale: Vec<Value> = stale_drains(snap)
        .into_iter()
        .map(|d| match d {
            StaleDrain::Site { site, drain } => json!({ "site": site, "drain": drain_json(drain) }),
            StaleDrain::Endpoint {
                profile,
                endpoint,
                drain,
            } => {
                json!({ "profile": profile, "endpoint": endpoint, "drain": drain_json(drain) })
            }
        })
        .collect();
    json!({
        "generation": m.generation,
        "zones": m.zones.iter().map(|z| z.origin.to_string()).collect::<Vec<_>>(),
        "profiles": profiles,
        "sites": sites,
        "drains_active": snap.drains.len(),
        "stale_drains": stale,
        "last_reload": snap.reload.as_deref(),
        "ready": snap.health.first_round_complete,
    })
}

/// `GET /api/v1/explain?name=&type=A&client=10.1.2.3` (or `client=10.20.1.0/24`, an
/// ECS subnet): the decision trace and the answer DNS gives that client.
pub fn explain(snap: &Snapshot, query: &str) -> Result<Value, ApiError> {
    let mut name = None;
    let mut qtype = crate::base::Rtype::A;
    let mut client = None;
    for (k, v) in query_pairs(query) {
        match k.as_str() {
            "name" => name = Some(v),
            "type" => {
                qtype = policy::trace::qtype_from_str(&v).ok_or_else(|| {
                    ApiError::new(
                        400,
                        format!("type: {v:?} is not a record type, e.g. A or AAAA"),
                    )
                })?
            }
            "client" => {
                client = Some(
                    Client::parse(&v).map_err(|e| ApiError::new(400, format!("client: {e}")))?,
                )
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
    let trace = policy::trace::explain(snap, name.as_str().into(), qtype, client)
        .map_err(|e| ApiError::new(404, e.to_string()))?;
    serde_json::to_value(trace).map_err(|e| ApiError::new(500, e.to_string()))
}
