//! The CLI's side of the admin API: `signpost status | drain | undrain | explain | reload`.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::page::urlenc;

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
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        if !body.is_empty() {
            req = req.header("Content-Type", "application/json");
        }
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
pub fn status_table(v: &Value) -> String {
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
    for p in v["profiles"].as_array().into_iter().flatten() {
        for e in p["endpoints"].as_array().into_iter().flatten() {
            let answer = e["answer"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let drain = match &e["drain"] {
                Value::Null => String::new(),
                // Still answered: the ramp is running.
                d if e["status"] != "Disabled" => format!(
                    "draining until {}: {}",
                    d["ramp_ends"].as_str().unwrap_or(""),
                    d["reason"].as_str().unwrap_or("")
                ),
                d => format!("drained: {}", d["reason"].as_str().unwrap_or("")),
            };
            let last = match &e["last_probe"] {
                Value::Null => "-".to_owned(),
                lp if lp["ok"].as_bool() == Some(true) => "ok".to_owned(),
                lp => lp["reason"].as_str().unwrap_or("failed").to_owned(),
            };
            rows.push([
                p["name"].as_str().unwrap_or("").to_owned(),
                e["name"].as_str().unwrap_or("").to_owned(),
                e["site"].as_str().unwrap_or("-").to_owned(),
                answer,
                e["status"].as_str().unwrap_or("").to_owned(),
                format!(
                    "{}/{}",
                    e["effective_weight"].as_f64().unwrap_or_default(),
                    e["weight"]
                ),
                e["rtt_ms"]
                    .as_f64()
                    .map_or("-".into(), |r| format!("{r:.1}ms")),
                last,
                drain,
            ]);
        }
    }
    let mut widths = [0usize; 9];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    let sites: Vec<String> = v["sites"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| match &s["drain"] {
            Value::Null => format!("{} (active)", s["name"].as_str().unwrap_or("")),
            d => format!(
                "{} (drained: {})",
                s["name"].as_str().unwrap_or(""),
                d["reason"].as_str().unwrap_or("")
            ),
        })
        .collect();
    if !sites.is_empty() {
        out.push_str(&format!("\nsites: {}\n", sites.join(", ")));
    }
    for d in v["stale_drains"].as_array().into_iter().flatten() {
        let reason = d["drain"]["reason"].as_str().unwrap_or("");
        let (what, undrain) = match d["site"].as_str() {
            Some(site) => (format!("site {site}"), format!("--site {site}")),
            None => {
                let (p, e) = (
                    d["profile"].as_str().unwrap_or(""),
                    d["endpoint"].as_str().unwrap_or(""),
                );
                (format!("endpoint {p}/{e}"), format!("--endpoint {p}/{e}"))
            }
        };
        out.push_str(&format!(
            "stale drain: {what} is not in the config ({reason}); it applies again if it comes back; clear it with: signpost undrain {undrain}\n"
        ));
    }
    for p in v["profiles"].as_array().into_iter().flatten() {
        if p["unstable"].as_bool() != Some(true) {
            continue;
        }
        let reasons: Vec<&str> = p["unstable_reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        out.push_str(&format!(
            "unstable: {} answers with ttl {} (not {}): {}\n",
            p["name"].as_str().unwrap_or(""),
            p["ttl_now"],
            p["ttl"],
            reasons.join("; ")
        ));
    }
    out.push_str(&format!("generation: {}\n", v["generation"]));
    if let Some(r) = v["last_reload"].as_object()
        && r.get("ok").and_then(Value::as_bool) == Some(false)
    {
        out.push_str(&format!(
            "last reload FAILED at {}: {}\n",
            r["time"].as_str().unwrap_or(""),
            r["message"].as_str().unwrap_or("")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
            "profiles": [{ "name": "app.gslb.example.", "endpoints": [
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
        let t = status_table(&v);
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
        assert!(t.ends_with("generation: 3\n"), "{t}");
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
        let t = status_table(&v);
        assert!(
            t.contains("unstable: app.gslb.example. answers with ttl 5 (not 30): endpoint a failed its latest probe (connection refused) and is being confirmed\n"),
            "{t}"
        );
        assert!(!t.contains("calm.gslb.example."), "{t}");
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
        let t = status_table(&v);
        assert!(
            t.contains("stale drain: site hub-old is not in the config (decommissioned); it applies again if it comes back; clear it with: signpost undrain --site hub-old"),
            "{t}"
        );
        assert!(
            t.contains("clear it with: signpost undrain --endpoint app.gslb.example/gone"),
            "{t}"
        );
    }
}
