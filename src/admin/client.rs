//! The CLI's side of the admin API: `signpost status | drain | undrain | explain | reload`.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
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

impl Api {
    /// Calls the API; returns the JSON body on 2xx, else the server's message.
    pub fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(self.call_async(method, path, body))
    }

    async fn call_async(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let base = self.base.trim_end_matches('/');
        if !base.starts_with("http://") {
            return Err(format!("--admin {base:?}: only http:// URLs are supported"));
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
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("bad request for {url}: {e}"))?;
        let client = Client::builder(TokioExecutor::new()).build_http();
        let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
            .await
            .map_err(|_| format!("{url}: no answer within 30 s"))?
            .map_err(|e| {
                format!(
                    "cannot reach the admin API at {base} ({e}); is signpost running? (--admin URL)"
                )
            })?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        if status.is_success() {
            Ok(v)
        } else {
            let msg = v["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            Err(format!(
                "{} {}: {msg}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ))
        }
    }
}

/// Path of a drain/undrain call.
pub fn drain_path(
    site: Option<&str>,
    endpoint: Option<&str>,
    action: &str,
) -> Result<String, String> {
    match (site, endpoint) {
        (_, Some(pe)) => {
            let (p, e) = pe.rsplit_once('/').ok_or_else(|| {
                format!("--endpoint {pe:?}: write PROFILE/ENDPOINT, e.g. app.gslb.example/seattle")
            })?;
            Ok(format!(
                "/api/v1/profiles/{}/endpoints/{}/{action}",
                urlenc(p),
                urlenc(e)
            ))
        }
        (Some(s), None) => Ok(format!("/api/v1/sites/{}/{action}", urlenc(s))),
        (None, None) => Err("give --site SITE or --endpoint PROFILE/ENDPOINT".into()),
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
