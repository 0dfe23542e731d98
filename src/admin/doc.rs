//! The status document: one typed view of a snapshot that `GET /api/v1/status`
//! serialises, the status page renders and `signpost status` deserialises.
//!
//! Built once per request by [`StatusDoc::build`]. Reading is lenient (every struct is
//! `#[serde(default)]`), so a CLI reads the document of an older or newer server; new
//! sections are optional (`Option` and skipped when absent) so adding one changes no
//! existing field.

use serde::{Deserialize, Serialize};

use crate::base::{AllDown, Status};
use crate::drain::{Drain, rfc3339};
use crate::model::Answer;
use crate::policy;
use crate::snapshot::{ReloadReport, Snapshot};

/// `GET /api/v1/status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusDoc {
    /// The config generation served.
    pub generation: u64,
    /// The zones served (origins).
    pub zones: Vec<String>,
    pub profiles: Vec<ProfileDoc>,
    pub sites: Vec<SiteDoc>,
    /// How many drains are in force (stale ones included).
    pub drains_active: usize,
    /// Drains that name a site or endpoint the config no longer has.
    pub stale_drains: Vec<StaleDrainDoc>,
    /// The last reload attempt since start, if any.
    pub last_reload: Option<ReloadDoc>,
    /// Every probe target has a first result (what `/readyz` waits for).
    pub ready: bool,
    /// Which instance answers: host name and version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceDoc>,
    /// The cluster view (as `GET /api/v1/cluster`), when this instance is one of several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<super::cluster::ClusterDoc>,
    /// Which profiles `profiles` holds when the document is one page of them (the API
    /// always pages; absent in a document built whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<PageDoc>,
}

/// The slice of the profiles (in config order) a status document holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PageDoc {
    /// Index of the first profile held.
    pub offset: usize,
    /// At most this many profiles are held.
    pub limit: usize,
    /// How many profiles match: all of them, or 1 with `?profile=`.
    pub total: usize,
    /// The `offset` of the next page; `null` on the last one.
    pub next_offset: Option<usize>,
}

/// Which profiles to put in a status document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every profile (the document is not paged).
    All,
    /// `limit` profiles from `offset`, in config order.
    Page { offset: usize, limit: usize },
    /// One profile, by its index in the model.
    One(usize),
}

/// The instance that built the document. A cluster's admin API names it by its node
/// name, others by the host name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InstanceDoc {
    /// The cluster node name, else the host name.
    pub name: String,
    /// signpost's version.
    pub version: String,
}

/// One profile and its endpoints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileDoc {
    /// The profile's name as DNS answers it (absolute, e.g. `app.gslb.example.`).
    pub name: String,
    /// The name as written in the config: what drain paths use.
    pub key: String,
    /// `priority`, `weighted`, `performance`, …
    pub method: String,
    pub ttl: u32,
    /// `serve_all`, `nodata` or `servfail`: what answers when no endpoint is eligible.
    pub all_down: String,
    /// What DNS gives a client with no location now, to A and AAAA queries: addresses,
    /// or `CNAME target.`; empty when it answers no records.
    pub answering: Vec<String>,
    /// `SERVFAIL` when that is what DNS answers now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answering_rcode: Option<String>,
    /// No endpoint is eligible: `all_down` decides the answer.
    pub all_down_fallback: bool,
    /// The TTL while the profile is unstable (docs/health.md, "Health-aware TTL").
    pub ttl_unstable: u32,
    /// The TTL answers carry now: `ttl`, or min(`ttl`, `ttl_unstable`) while unstable.
    pub ttl_now: u32,
    pub unstable: bool,
    /// Why the profile is unstable, one line per reason.
    pub unstable_reasons: Vec<String>,
    /// When the last recent status change stops counting (RFC 3339), if one does.
    pub unstable_until: Option<String>,
    pub endpoints: Vec<EndpointDoc>,
}

/// One endpoint of a profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointDoc {
    pub name: String,
    pub site: Option<String>,
    /// What it answers with: addresses, `CNAME target`, or `profile NAME`.
    pub answer: Vec<String>,
    pub status: Status,
    /// The configured weight.
    pub weight: u32,
    /// The weight routing uses now: lower than `weight` while a drain ramps.
    pub effective_weight: f64,
    pub priority: u32,
    /// Smoothed probe round-trip time from this instance.
    pub rtt_ms: Option<f64>,
    /// The probe URL (`http://…`, `tcp://…`), when monitored.
    pub probe: Option<String>,
    pub last_probe: Option<LastProbeDoc>,
    /// Why it has its status.
    pub reason: Option<String>,
    /// How many times its status changed.
    pub transitions: u32,
    /// RFC 3339 time it entered its status; `null` when it has had it since start.
    pub since: Option<String>,
    /// The drain that applies to it (its own or its site's).
    pub drain: Option<DrainDoc>,
    /// While a drain ramps: RFC 3339 time the ramp ends (`effective_weight` falls to 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp_ends: Option<String>,
}

impl Default for EndpointDoc {
    fn default() -> Self {
        Self {
            name: String::new(),
            site: None,
            answer: Vec::new(),
            status: Status::CheckingEndpoint,
            weight: 0,
            effective_weight: 0.0,
            priority: 0,
            rtt_ms: None,
            probe: None,
            last_probe: None,
            reason: None,
            transitions: 0,
            since: None,
            drain: None,
            ramp_ends: None,
        }
    }
}

/// A drain in force.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrainDoc {
    pub reason: String,
    /// RFC 3339 time it began.
    pub since: String,
    /// How long the weight takes to fall to 0 (0: at once).
    pub ramp_seconds: f64,
    /// RFC 3339 time the ramp ends and the endpoint is Disabled.
    pub ramp_ends: String,
    /// On an endpoint: whether the drain is the endpoint's own or its site's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<DrainScope>,
}

/// Whose drain applies to an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrainScope {
    Endpoint,
    Site,
}

/// The last probe of a target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LastProbeDoc {
    /// RFC 3339 time the probe started.
    pub time: String,
    pub ok: bool,
    pub rtt_ms: f64,
    /// Why it failed; `null` when it succeeded.
    pub reason: Option<String>,
}

/// A site and its drain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SiteDoc {
    pub name: String,
    pub drain: Option<DrainDoc>,
}

/// A drain that names a site or endpoint the current config does not have: it applies
/// again if the name comes back, until undrained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StaleDrainDoc {
    Site {
        site: String,
        drain: DrainDoc,
    },
    Endpoint {
        profile: String,
        endpoint: String,
        drain: DrainDoc,
    },
}

/// The outcome of the last reload attempt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReloadDoc {
    /// RFC 3339 time of the attempt.
    pub time: String,
    pub ok: bool,
    /// The generation served after the attempt.
    pub generation: u64,
    /// Why it failed (every problem, one per line), or empty. When a token is configured
    /// and the caller did not send it, only where to look (`details_hidden`).
    pub message: String,
    /// The failure's details were left out: the caller did not send the admin token.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub details_hidden: bool,
}

impl From<&ReloadReport> for ReloadDoc {
    fn from(r: &ReloadReport) -> Self {
        Self {
            time: r.time.clone(),
            ok: r.ok,
            generation: r.generation,
            message: r.message.clone(),
            details_hidden: false,
        }
    }
}

impl ReloadDoc {
    /// Leaves out a failure's details (they may quote files signpost read), saying where
    /// to find them.
    pub fn hide_details(&mut self) {
        if !self.ok {
            self.message = format!(
                "reload failed at {}; see the log or GET /api/v1/status with the token",
                self.time
            );
            self.details_hidden = true;
        }
    }
}

impl DrainDoc {
    pub fn of(d: &Drain) -> Self {
        Self {
            reason: d.reason.clone(),
            since: rfc3339(d.since()),
            ramp_seconds: d.ramp_ms as f64 / 1000.0,
            ramp_ends: rfc3339(d.ends_at()),
            scope: None,
        }
    }

    /// The reason, or "no reason given".
    pub fn reason_text(&self) -> &str {
        if self.reason.is_empty() {
            "no reason given"
        } else {
            &self.reason
        }
    }
}

impl StaleDrainDoc {
    pub fn drain(&self) -> &DrainDoc {
        match self {
            StaleDrainDoc::Site { drain, .. } | StaleDrainDoc::Endpoint { drain, .. } => drain,
        }
    }
}

/// The last probe of a target, if it has been probed.
pub fn last_probe(snap: &Snapshot, target: Option<u32>) -> Option<LastProbeDoc> {
    let l = target.and_then(|t| snap.health.targets.get(t as usize)?.last.as_ref())?;
    Some(LastProbeDoc {
        time: rfc3339(l.at),
        ok: l.ok,
        rtt_ms: l.rtt.as_secs_f64() * 1000.0,
        reason: l.reason.as_deref().map(str::to_owned),
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

/// The drains in force that name no site or endpoint of the current config.
pub fn stale_drains(snap: &Snapshot) -> Vec<StaleDrainDoc> {
    let m = &snap.model;
    let mut stale = Vec::new();
    for (site, drain) in &snap.drains.sites {
        if !m.sites.contains(site) {
            stale.push(StaleDrainDoc::Site {
                site: site.clone(),
                drain: DrainDoc::of(drain),
            });
        }
    }
    for (key, drain) in &snap.drains.endpoints {
        let known = key.rsplit_once('/').is_some_and(|(p, e)| {
            m.profile(p)
                .is_some_and(|(_, p)| p.endpoints.iter().any(|x| x.name == e))
        });
        if !known {
            let (profile, endpoint) = key.rsplit_once('/').unwrap_or((key.as_str(), ""));
            stale.push(StaleDrainDoc::Endpoint {
                profile: profile.to_owned(),
                endpoint: endpoint.to_owned(),
                drain: DrainDoc::of(drain),
            });
        }
    }
    stale
}

impl StatusDoc {
    /// The document of one snapshot, with every profile.
    pub fn build(snap: &Snapshot) -> Self {
        Self::build_selected(snap, &Selection::All)
    }

    /// The document of one snapshot with the profiles `sel` picks (and `page` saying
    /// which, unless all).
    pub fn build_selected(snap: &Snapshot, sel: &Selection) -> Self {
        let m = &snap.model;
        let total = m.profiles.len();
        let (range, page) = match *sel {
            Selection::All => (0..total, None),
            Selection::Page { offset, limit } => {
                let start = offset.min(total);
                let end = start.saturating_add(limit).min(total);
                let page = PageDoc {
                    offset,
                    limit,
                    total,
                    next_offset: (end < total).then_some(end),
                };
                (start..end, Some(page))
            }
            Selection::One(i) => {
                let page = PageDoc {
                    offset: 0,
                    limit: 1,
                    total: 1,
                    next_offset: None,
                };
                (i.min(total)..(i + 1).min(total), Some(page))
            }
        };
        let profiles = m.profiles[range.clone()]
            .iter()
            .zip(range)
            .map(|(p, pi)| {
                let endpoints = p
                    .endpoints
                    .iter()
                    .enumerate()
                    .map(|(ei, e)| {
                        let st = &snap.endpoints[pi][ei];
                        let site = e.site.map(|s| m.sites[s as usize].as_str());
                        let own = snap
                            .drains
                            .endpoints
                            .get(&crate::drain::Drains::endpoint_key(&p.key, &e.name));
                        let drain = snap.drains.for_endpoint(&p.key, &e.name, site).map(|d| {
                            let scope = if own.is_some_and(|o| std::ptr::eq(o, d)) {
                                DrainScope::Endpoint
                            } else {
                                DrainScope::Site
                            };
                            DrainDoc {
                                scope: Some(scope),
                                ..DrainDoc::of(d)
                            }
                        });
                        let view = snap.health.endpoints.get(pi).and_then(|v| v.get(ei));
                        let ramp_ends = drain
                            .as_ref()
                            .filter(|d| d.ramp_seconds > 0.0 && st.status != Status::Disabled)
                            .map(|d| d.ramp_ends.clone());
                        EndpointDoc {
                            name: e.name.clone(),
                            site: site.map(str::to_owned),
                            answer: answer_text(snap, &e.answer),
                            status: st.status,
                            weight: e.weight,
                            effective_weight: st.effective_weight(),
                            priority: e.priority,
                            rtt_ms: st.rtt.map(|d| d.as_secs_f64() * 1000.0),
                            probe: e.target.map(|t| m.targets[t as usize].url()),
                            last_probe: last_probe(snap, e.target),
                            reason: view.map(|v| v.reason.to_string()),
                            transitions: view.map_or(0, |v| v.transitions),
                            since: view.and_then(|v| v.since).map(rfc3339),
                            drain,
                            ramp_ends,
                        }
                    })
                    .collect();
                let now = policy::answering(snap, pi as u32);
                let reasons = crate::status::unstable_reasons(snap, pi);
                ProfileDoc {
                    name: p.name.to_string(),
                    key: p.key.clone(),
                    method: format!("{:?}", p.method).to_lowercase(),
                    ttl: p.ttl,
                    all_down: all_down_text(p.all_down).to_owned(),
                    answering: now.records,
                    answering_rcode: now.rcode.map(str::to_owned),
                    all_down_fallback: now.all_down_fallback,
                    ttl_unstable: p.ttl_unstable,
                    ttl_now: snap.ttl(pi as u32),
                    unstable: !reasons.is_empty(),
                    unstable_reasons: reasons,
                    unstable_until: snap
                        .profiles
                        .get(pi)
                        .and_then(|s| s.changed_until)
                        .map(rfc3339),
                    endpoints,
                }
            })
            .collect();
        let sites = m
            .sites
            .iter()
            .map(|s| SiteDoc {
                name: s.clone(),
                drain: snap.drains.sites.get(s).map(DrainDoc::of),
            })
            .collect();
        StatusDoc {
            generation: m.generation,
            zones: m.zones.iter().map(|z| z.origin.to_string()).collect(),
            profiles,
            sites,
            drains_active: snap.drains.len(),
            stale_drains: stale_drains(snap),
            last_reload: snap.reload.as_deref().map(ReloadDoc::from),
            ready: snap.health.first_round_complete,
            instance: Some(InstanceDoc {
                name: host_name().to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            }),
            cluster: None,
            page,
        }
    }
}

pub fn all_down_text(a: AllDown) -> &'static str {
    match a {
        AllDown::ServeAll => "serve_all",
        AllDown::Nodata => "nodata",
        AllDown::Servfail => "servfail",
    }
}

/// This host's name (read once).
pub fn host_name() -> &'static str {
    static NAME: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".to_owned())
    });
    &NAME
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document reads back as it was written, and a partial document (an older
    /// server's) still reads.
    #[test]
    fn round_trips_and_reads_leniently() {
        let doc = StatusDoc {
            generation: 3,
            zones: vec!["gslb.example.".into()],
            profiles: vec![ProfileDoc {
                name: "app.gslb.example.".into(),
                key: "app.gslb.example".into(),
                method: "priority".into(),
                ttl: 30,
                all_down: "serve_all".into(),
                answering: vec!["192.0.2.10".into()],
                answering_rcode: None,
                all_down_fallback: true,
                ttl_unstable: 5,
                ttl_now: 5,
                unstable: true,
                unstable_reasons: vec!["the all-down fallback serves".into()],
                unstable_until: None,
                endpoints: vec![EndpointDoc {
                    name: "seattle".into(),
                    site: Some("hub-seattle".into()),
                    answer: vec!["192.0.2.10".into()],
                    status: Status::Online,
                    weight: 2,
                    effective_weight: 1.5,
                    drain: Some(DrainDoc {
                        reason: "rack move".into(),
                        ramp_seconds: 60.0,
                        scope: Some(DrainScope::Site),
                        ..DrainDoc::default()
                    }),
                    ..EndpointDoc::default()
                }],
            }],
            stale_drains: vec![
                StaleDrainDoc::Site {
                    site: "hub-old".into(),
                    drain: DrainDoc::default(),
                },
                StaleDrainDoc::Endpoint {
                    profile: "p".into(),
                    endpoint: "e".into(),
                    drain: DrainDoc::default(),
                },
            ],
            ..StatusDoc::default()
        };
        let v = serde_json::to_value(&doc).unwrap();
        assert_eq!(v["profiles"][0]["endpoints"][0]["status"], "Online");
        assert_eq!(v["profiles"][0]["endpoints"][0]["drain"]["scope"], "site");
        assert_eq!(v["stale_drains"][0]["site"], "hub-old");
        assert_eq!(v["stale_drains"][1]["endpoint"], "e");
        assert!(v["last_reload"].is_null());
        let back: StatusDoc = serde_json::from_value(v).unwrap();
        assert_eq!(back, doc);

        let partial: StatusDoc = serde_json::from_value(serde_json::json!({
            "generation": 4,
            "profiles": [{ "name": "x.", "endpoints": [{ "name": "a", "status": "Degraded" }] }],
        }))
        .unwrap();
        assert_eq!(partial.profiles[0].endpoints[0].status, Status::Degraded);
        assert!(partial.sites.is_empty());
    }
}
