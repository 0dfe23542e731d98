//! The CLI's side of the admin API: `signpost status | drain | undrain | explain | reload`.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::doc::{StaleDrainDoc, StatusDoc};
use super::page::urlenc;
use crate::base::Status;

/// Where the API is and how to authenticate.
#[derive(Clone, Debug)]
pub struct Api {
    /// e.g. `http://127.0.0.1:8053`
    pub base: String,
    pub token: Option<String>,
}

/// How long the CLI waits for the admin API's answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an admin API call from the CLI failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot start the HTTP client: {0}")]
    Runtime(std::io::Error),
    #[error("--admin {0:?}: only http:// URLs are supported, e.g. http://127.0.0.1:8053")]
    Scheme(String),
    #[error("bad request for {url}: {source}")]
    Request {
        url: String,
        source: hyper::http::Error,
    },
    #[error("cannot reach the admin API at {base} ({source}); is signpost running? (--admin URL)")]
    Connect {
        base: String,
        source: hyper_util::client::legacy::Error,
    },
    #[error(
        "{url}: no answer within {} s; signpost may be overloaded or stuck (see its log)",
        CALL_TIMEOUT.as_secs()
    )]
    Timeout { url: String },
    #[error("{url}: the answer broke off: {source}")]
    Body { url: String, source: hyper::Error },
    /// The server answered with an error status; `message` is its `error` field.
    #[error("{} {}: {message}", .status.as_u16(), .status.canonical_reason().unwrap_or(""))]
    Refused { status: StatusCode, message: String },
}

impl Api {
    /// Calls the API; returns the JSON body on 2xx, else the server's message.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CallError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CallError::Runtime)?;
        rt.block_on(self.call_async(method, path, body))
    }

    async fn call_async(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CallError> {
        let base = self.base.trim_end_matches('/');
        if !base.starts_with("http://") {
            return Err(CallError::Scheme(base.to_owned()));
        }
        let url = format!("{base}{path}");
        let mut req = Request::builder().method(method.clone()).uri(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        // Mutating calls must declare JSON, with a body or without.
        if method != Method::GET && method != Method::HEAD {
            req = req.header("Content-Type", "application/json");
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = match req.body(Full::new(Bytes::from(body))) {
            Ok(req) => req,
            Err(source) => return Err(CallError::Request { url, source }),
        };
        let client = Client::builder(TokioExecutor::new()).build_http();
        let resp = match tokio::time::timeout(CALL_TIMEOUT, client.request(req)).await {
            Err(_) => return Err(CallError::Timeout { url }),
            Ok(Err(source)) => {
                return Err(CallError::Connect {
                    base: base.to_owned(),
                    source,
                });
            }
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        let bytes = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(source) => return Err(CallError::Body { url, source }),
        };
        let v: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        if status.is_success() {
            Ok(v)
        } else {
            let message = v["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            Err(CallError::Refused { status, message })
        }
    }
}

impl Api {
    /// `GET /api/v1/status` with every profile: the server answers a page at a time
    /// (`page.next_offset`); the pages' profiles are joined into one document. A server
    /// that does not page answers whole at once.
    pub fn status(&self) -> Result<Value, CallError> {
        let mut doc = self.call(Method::GET, "/api/v1/status", None)?;
        let mut seen = 0;
        while let Some(next) = doc["page"]["next_offset"].as_u64() {
            // Each page must move on, so a confused server cannot loop the CLI.
            if next as usize <= seen {
                break;
            }
            seen = next as usize;
            let more = self.call(Method::GET, &format!("/api/v1/status?offset={next}"), None)?;
            if let (Some(all), Some(page)) = (
                doc.get_mut("profiles").and_then(Value::as_array_mut),
                more["profiles"].as_array(),
            ) {
                all.extend(page.iter().cloned());
            }
            // A cluster's view of each page's endpoints.
            if let (Some(all), Some(page)) = (
                doc.pointer_mut("/cluster/endpoints")
                    .and_then(Value::as_array_mut),
                more.pointer("/cluster/endpoints").and_then(Value::as_array),
            ) {
                all.extend(page.iter().cloned());
            }
            doc["page"] = more["page"].clone();
        }
        if let Some(page) = doc.get_mut("page").and_then(Value::as_object_mut) {
            let total = page.get("total").cloned().unwrap_or(Value::Null);
            page.insert("offset".into(), 0.into());
            page.insert("limit".into(), total);
        }
        Ok(doc)
    }
}

/// `drain` / `undrain` without a usable target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("--endpoint {0:?}: write PROFILE/ENDPOINT, e.g. app.gslb.example/seattle")]
    Endpoint(String),
    #[error("give --site SITE or --endpoint PROFILE/ENDPOINT")]
    Missing,
}

/// Path of a drain/undrain call.
pub fn drain_path(
    site: Option<&str>,
    endpoint: Option<&str>,
    action: &str,
) -> Result<String, TargetError> {
    match (site, endpoint) {
        (_, Some(pe)) => {
            let (p, e) = pe
                .rsplit_once('/')
                .ok_or_else(|| TargetError::Endpoint(pe.to_owned()))?;
            Ok(format!(
                "/api/v1/profiles/{}/endpoints/{}/{action}",
                urlenc(p),
                urlenc(e)
            ))
        }
        (Some(s), None) => Ok(format!("/api/v1/sites/{}/{action}", urlenc(s))),
        (None, None) => Err(TargetError::Missing),
    }
}

/// `signpost status` as a table.
pub fn status_table(doc: &StatusDoc) -> String {
    let mut rows = vec![
        [
            "PROFILE",
            "ENDPOINT",
            "SITE",
            "ANSWER",
            "STATUS",
            "WEIGHT",
            "RTT",
            "LAST PROBE",
            "DRAIN",
        ]
        .map(str::to_owned),
    ];
    for p in &doc.profiles {
        for e in &p.endpoints {
            let drain = match &e.drain {
                None => String::new(),
                // Still answered: the ramp is running.
                Some(d) if e.status != Status::Disabled => {
                    format!("draining until {}: {}", d.ramp_ends, d.reason)
                }
                Some(d) => format!("drained: {}", d.reason),
            };
            let last = match &e.last_probe {
                None => "-".to_owned(),
                Some(lp) if lp.ok => "ok".to_owned(),
                Some(lp) => lp.reason.as_deref().unwrap_or("failed").to_owned(),
            };
            rows.push([
                p.name.clone(),
                e.name.clone(),
                e.site.as_deref().unwrap_or("-").to_owned(),
                e.answer.join(","),
                e.status.as_str().to_owned(),
                format!("{}/{}", e.effective_weight, e.weight),
                match (&e.last_probe, e.rtt_ms) {
                    (Some(lp), Some(r)) if lp.ok => format!("{r:.1}ms"),
                    _ => "-".into(),
                },
                last,
                drain,
            ]);
        }
    }
    let mut out = String::new();
    table(&mut out, "", &rows);
    let sites: Vec<String> = doc
        .sites
        .iter()
        .map(|s| match &s.drain {
            None => format!("{} (active)", s.name),
            Some(d) => format!("{} (drained: {})", s.name, d.reason),
        })
        .collect();
    out.push('\n');
    for p in &doc.profiles {
        let answering = if p.answering.is_empty() {
            p.answering_rcode
                .as_deref()
                .unwrap_or("no records")
                .to_owned()
        } else {
            p.answering.join(", ")
        };
        out.push_str(&format!("{} answers {answering}", p.name));
        if p.all_down_fallback {
            out.push_str(&format!(
                " (ALL DOWN: all_down = \"{}\" in force)",
                p.all_down
            ));
        }
        out.push('\n');
    }
    if !sites.is_empty() {
        out.push_str(&format!("sites: {}\n", sites.join(", ")));
    }
    for d in &doc.stale_drains {
        let (what, undrain) = match d {
            StaleDrainDoc::Site { site, .. } => (format!("site {site}"), format!("--site {site}")),
            StaleDrainDoc::Endpoint {
                profile: p,
                endpoint: e,
                ..
            } => (format!("endpoint {p}/{e}"), format!("--endpoint {p}/{e}")),
        };
        out.push_str(&format!(
            "stale drain: {what} is not in the config ({}); it applies again if it comes back; clear it with: signpost undrain {undrain}\n",
            d.drain().reason
        ));
    }
    for p in doc.profiles.iter().filter(|p| p.unstable) {
        out.push_str(&format!(
            "unstable: {} answers with ttl {} (not {}): {}\n",
            p.name,
            p.ttl_now,
            p.ttl,
            p.unstable_reasons.join("; ")
        ));
    }
    out.push_str(&format!("generation: {}\n", doc.generation));
    if let Some(r) = &doc.last_reload
        && !r.ok
    {
        out.push_str(&format!(
            "last reload FAILED at {}: {}\n",
            r.time, r.message
        ));
    }
    out
}

/// `signpost explain` for people: the answer, the rule that decided it, and each
/// profile's candidates (`*` marks those picked). `--json` prints the document instead.
pub fn explain_text(v: &Value) -> String {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut out = String::new();
    let c = &v["client"];
    let mut whereabouts = Vec::new();
    if let Some(r) = c["region"].as_str() {
        whereabouts.push(format!("region {r}"));
    }
    if let Some(x) = c["country"].as_str() {
        whereabouts.push(format!("country {x}"));
    }
    if let Some(x) = c["continent"].as_str() {
        whereabouts.push(format!("continent {x}"));
    }
    let ecs = c["ecs_source_prefix"]
        .as_u64()
        .map_or(String::new(), |p| format!(" (ECS /{p})"));
    out.push_str(&format!(
        "{} {} from {}{ecs}{}\n",
        s(&v["profile"]),
        s(&v["qtype"]),
        s(&c["address"]),
        if whereabouts.is_empty() {
            ", no known location".to_owned()
        } else {
            format!(", {}", whereabouts.join(", "))
        }
    ));
    let a = &v["answer"];
    let records: Vec<String> = a["records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(&s)
        .collect();
    out.push_str(&format!(
        "answer: {}{}{}\n",
        s(&a["rcode"]),
        a["ttl"]
            .as_u64()
            .map_or(String::new(), |t| format!(", TTL {t}")),
        if records.is_empty() {
            if s(&a["kind"]) == "nodata" {
                ", no records (NODATA)".to_owned()
            } else {
                String::new()
            }
        } else {
            format!(": {}", records.join(", "))
        }
    ));
    out.push_str(&format!("rule: {}\n", s(&v["rule"])));
    for (i, step) in v["steps"].as_array().into_iter().flatten().enumerate() {
        out.push_str(&format!(
            "\nstep {}: {} (method {}, all_down = {}): {}{}\n",
            i + 1,
            s(&step["profile"]),
            s(&step["method"]),
            s(&step["all_down"]),
            s(&step["rule"]),
            if step["served_all_down"] == true {
                " [ALL-DOWN FALLBACK]"
            } else {
                ""
            }
        ));
        let mut rows = vec![
            [
                "", "ENDPOINT", "SITE", "STATUS", "WEIGHT", "ELIGIBLE", "ANSWERS",
            ]
            .map(str::to_owned),
        ];
        for c in step["candidates"].as_array().into_iter().flatten() {
            let mut weight = s(&c["weight"]);
            if let Some(p) = c["priority"].as_u64() {
                weight.push_str(&format!(" prio {p}"));
            }
            if let Some(l) = c["latency_ms"].as_f64() {
                weight.push_str(&format!(" {l:.1}ms"));
            }
            rows.push([
                if c["picked"] == true { "*" } else { "" }.to_owned(),
                s(&c["endpoint"]),
                c["site"].as_str().unwrap_or("-").to_owned(),
                s(&c["status"]),
                weight,
                if c["eligible"] == true { "yes" } else { "no" }.to_owned(),
                s(&c["answers"]),
            ]);
        }
        table(&mut out, "  ", &rows);
    }
    out
}

/// Appends `rows` as a table to `out`: each line starts with `indent`, the columns are
/// left-aligned and two spaces apart.
fn table<const N: usize>(out: &mut String, indent: &str, rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(indent);
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::base::testing::assert_has;

    #[test]
    fn drain_targets_and_their_errors() {
        assert_eq!(
            drain_path(None, Some("app.gslb.example/seattle"), "drain").unwrap(),
            "/api/v1/profiles/app.gslb.example/endpoints/seattle/drain"
        );
        assert_eq!(
            drain_path(Some("hub-dublin"), None, "undrain").unwrap(),
            "/api/v1/sites/hub-dublin/undrain"
        );
        let err = drain_path(None, Some("seattle"), "drain").unwrap_err();
        assert!(matches!(&err, TargetError::Endpoint(e) if e == "seattle"));
        assert_eq!(
            err.to_string(),
            "--endpoint \"seattle\": write PROFILE/ENDPOINT, e.g. app.gslb.example/seattle"
        );
        let err = drain_path(None, None, "drain").unwrap_err();
        assert_eq!(
            err.to_string(),
            "give --site SITE or --endpoint PROFILE/ENDPOINT"
        );
    }

    #[test]
    fn call_errors_say_where_and_what_to_do() {
        let api = |base: &str| Api {
            base: base.into(),
            token: None,
        };
        let err = api("https://127.0.0.1:8053")
            .call(Method::GET, "/api/v1/status", None)
            .unwrap_err();
        assert!(matches!(err, CallError::Scheme(_)), "{err:?}");
        assert!(err.to_string().contains("only http:// URLs"), "{err}");
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let err = api(&base)
            .call(Method::GET, "/api/v1/status", None)
            .unwrap_err();
        assert!(matches!(err, CallError::Connect { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cannot reach the admin API at {base} (")),
            "{text}"
        );
        assert!(
            text.ends_with("is signpost running? (--admin URL)"),
            "{text}"
        );
    }

    #[test]
    fn status_table_says_draining_while_a_ramp_runs() {
        let drain = |reason: &str| json!({ "reason": reason, "ramp_ends": "2026-01-01T10:05:00Z" });
        let v = json!({
            "generation": 3,
            "profiles": [{ "name": "app.gslb.example.", "all_down": "serve_all",
              "answering": ["192.0.2.10", "198.51.100.10"], "all_down_fallback": true,
              "endpoints": [
                { "name": "seattle", "site": "hub-seattle", "answer": ["192.0.2.10"],
                  "status": "Online", "weight": 1, "effective_weight": 0.5,
                  "drain": drain("kernel upgrade") },
                { "name": "dublin", "site": "hub-dublin", "answer": ["198.51.100.10"],
                  "status": "Disabled", "weight": 2, "effective_weight": 2.0,
                  "drain": drain("rack move") },
            ]}],
            "sites": [{ "name": "hub-seattle", "drain": drain("kernel upgrade") },
                      { "name": "hub-dublin", "drain": null }],
        });
        let t = status_table(&serde_json::from_value(v).unwrap());
        let row = |name: &str| t.lines().find(|l| l.contains(name)).unwrap().to_owned();
        let cells = |name: &str| {
            row(name)
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(cells("seattle")[4..6], ["Online", "0.5/1"], "{t}");
        assert!(
            row("seattle").ends_with("draining until 2026-01-01T10:05:00Z: kernel upgrade"),
            "{t}"
        );
        assert_eq!(cells("dublin ")[4..6], ["Disabled", "2/2"], "{t}");
        assert!(row("dublin ").ends_with("drained: rack move"), "{t}");
        assert!(t.contains("sites: hub-seattle (drained: kernel upgrade), hub-dublin (active)"));
        assert_has(
            &t,
            &[
                "app.gslb.example. answers 192.0.2.10, 198.51.100.10 (ALL DOWN: all_down = \"serve_all\" in force)\n",
            ],
        );
        assert!(t.ends_with("generation: 3\n"), "{t}");
    }

    #[test]
    fn explain_text_says_the_answer_the_rule_and_the_candidates() {
        let v = json!({
            "profile": "app.gslb.example.", "qtype": "A",
            "client": { "address": "10.1.2.3", "region": "corp-amer", "regions": [] },
            "rule": "priority 1: the lowest priority among eligible endpoints",
            "answer": { "kind": "answer", "rcode": "NOERROR", "ttl": 30,
                        "records": ["A 192.0.2.10"], "endpoints": ["app.gslb.example./seattle"] },
            "steps": [{ "profile": "app.gslb.example.", "method": "priority", "all_down": "serve_all",
                "rule": "priority 1", "outcome": "answer", "served_all_down": false,
                "candidates": [
                    { "endpoint": "seattle", "site": "hub-seattle", "status": "Online", "weight": 1.0,
                      "priority": 1, "eligible": true, "picked": true, "answers": "192.0.2.10" },
                    { "endpoint": "dublin", "site": "hub-dublin", "status": "Degraded", "weight": 1.0,
                      "priority": 2, "eligible": false, "picked": false, "answers": "198.51.100.10" },
                ] }],
        });
        let t = explain_text(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0], "app.gslb.example. A from 10.1.2.3, region corp-amer",
            "{t}"
        );
        assert_eq!(lines[1], "answer: NOERROR, TTL 30: A 192.0.2.10", "{t}");
        assert!(lines[2].starts_with("rule: priority 1"), "{t}");
        assert_has(
            &t,
            &["step 1: app.gslb.example. (method priority, all_down = serve_all): priority 1\n"],
        );
        let row = |name: &str| {
            t.lines()
                .find(|l| l.contains(name))
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            row("seattle"),
            [
                "*",
                "seattle",
                "hub-seattle",
                "Online",
                "1.0",
                "prio",
                "1",
                "yes",
                "192.0.2.10"
            ]
        );
        assert_eq!(
            row("dublin")[..4],
            ["dublin", "hub-dublin", "Degraded", "1.0"]
        );
        assert_eq!(row("dublin")[6], "no");
    }

    #[test]
    fn status_table_says_which_profiles_answer_with_a_short_ttl_and_why() {
        let v = json!({
            "generation": 1,
            "profiles": [
                { "name": "app.gslb.example.", "ttl": 30, "ttl_now": 5, "unstable": true,
                  "unstable_reasons": ["endpoint a failed its latest probe (connection refused) and is being confirmed"],
                  "endpoints": [] },
                { "name": "calm.gslb.example.", "ttl": 30, "ttl_now": 30, "unstable": false,
                  "unstable_reasons": [], "endpoints": [] },
            ],
            "sites": [],
        });
        let t = status_table(&serde_json::from_value(v).unwrap());
        assert_has(
            &t,
            &[
                "unstable: app.gslb.example. answers with ttl 5 (not 30): endpoint a failed its latest probe (connection refused) and is being confirmed\n",
            ],
        );
        assert!(!t.contains("unstable: calm.gslb.example."), "{t}");
    }

    #[test]
    fn status_table_names_stale_drains_and_how_to_clear_them() {
        let v = json!({
            "generation": 4,
            "profiles": [],
            "sites": [],
            "stale_drains": [
                { "site": "hub-old", "drain": { "reason": "decommissioned" } },
                { "profile": "app.gslb.example", "endpoint": "gone", "drain": { "reason": "x" } },
            ],
        });
        let t = status_table(&serde_json::from_value(v).unwrap());
        assert_has(
            &t,
            &[
                "stale drain: site hub-old is not in the config (decommissioned); it applies again if it comes back; clear it with: signpost undrain --site hub-old",
                "clear it with: signpost undrain --endpoint app.gslb.example/gone",
            ],
        );
    }
}
