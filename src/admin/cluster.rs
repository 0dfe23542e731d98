//! `GET /api/v1/cluster` (DESIGN.md, "Cluster"): this node, every node it knows, and per
//! monitored endpoint each live node's view and the combined status. One typed document,
//! serialised by the API and read back by `signpost status`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::base::{Status, rfc3339};
use crate::cluster::{Cluster, HealthMode, HealthStatus, TargetId};
use crate::snapshot::Snapshot;

/// The cluster view.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterDoc {
    /// Whether this instance is part of a cluster (`[cluster]` set).
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// `majority` or `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The live nodes do not all serve the same config (fingerprints differ).
    #[serde(default)]
    pub config_mismatch: bool,
    #[serde(default)]
    pub nodes: Vec<NodeDoc>,
    /// Datagrams dropped on the gossip port, by reason.
    #[serde(default)]
    pub rejected_datagrams: BTreeMap<String, u64>,
    /// Every monitored endpoint, with each live node's view.
    #[serde(default)]
    pub endpoints: Vec<EndpointVotes>,
}

/// One node as this node knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeDoc {
    pub name: String,
    pub site: String,
    /// Gossip address.
    pub gossip: String,
    pub live: bool,
    /// This node.
    #[serde(rename = "self")]
    pub is_self: bool,
    /// RFC 3339 time this node last heard of it, if ever.
    pub last_heard: Option<String>,
    pub version: String,
    pub config_fingerprint: String,
    pub config_generation: u64,
}

/// One endpoint's probe target as every live node sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointVotes {
    pub profile: String,
    pub endpoint: String,
    /// What this node serves for the target (majority of the views, or its own).
    pub combined: String,
    /// This node's own view.
    pub own: String,
    /// E.g. "2 of 3 see Online".
    pub votes: String,
    /// The live nodes' views differ.
    pub disagree: bool,
    pub views: Vec<NodeView>,
}

/// One node's view of one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub node: String,
    pub status: String,
    pub rtt_ms: Option<f64>,
    pub since: String,
}

fn time_of(ms: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_millis(ms))
}

/// The document for `snap`, from `cluster` (`None`: not part of a cluster).
pub fn cluster_doc(snap: &Snapshot, cluster: Option<(&Cluster, HealthMode)>) -> ClusterDoc {
    let Some((c, mode)) = cluster else {
        return ClusterDoc::default();
    };
    let nodes: Vec<NodeDoc> = c
        .nodes()
        .into_iter()
        .map(|n| NodeDoc {
            name: n.name,
            site: n.site,
            gossip: n.gossip_addr.to_string(),
            live: n.live,
            is_self: n.is_self,
            last_heard: n.last_heard_ms.map(time_of),
            version: n.version,
            config_fingerprint: n.config_fingerprint,
            config_generation: n.config_generation,
        })
        .collect();
    let me = nodes.iter().find(|n| n.is_self);
    let board = c.health_board();
    let m = &snap.model;
    let mut endpoints = Vec::new();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    for p in &m.profiles {
        for e in &p.endpoints {
            let Some(t) = e.target else { continue };
            let id = TargetId::of(&m.targets[t as usize].identity());
            let mine = snap
                .health
                .targets
                .get(t as usize)
                .map_or(Status::CheckingEndpoint, |v| v.status);
            let own = HealthStatus::from(mine);
            let (combined, votes) = board.combine(mode, &id, own);
            let mut views: Vec<NodeView> = vec![NodeView {
                node: c.node(),
                status: own.to_string(),
                rtt_ms: snap
                    .health
                    .targets
                    .get(t as usize)
                    .and_then(|v| v.rtt)
                    .map(|d| d.as_secs_f64() * 1000.0),
                since: time_of(now_ms),
            }];
            views.extend(board.views(&id).into_iter().map(|(node, v)| NodeView {
                node: node.to_owned(),
                status: v.status.to_string(),
                rtt_ms: v.rtt_us.map(|us| us as f64 / 1000.0),
                since: time_of(v.since_ms),
            }));
            let disagree = views.iter().any(|v| v.status != views[0].status);
            endpoints.push(EndpointVotes {
                profile: p.name.to_string(),
                endpoint: e.name.clone(),
                combined: combined.to_string(),
                own: own.to_string(),
                votes: votes.describe(combined),
                disagree,
                views,
            });
        }
    }
    ClusterDoc {
        enabled: true,
        node: Some(c.node()),
        site: me.map(|n| n.site.clone()),
        health: Some(
            match mode {
                HealthMode::Majority => "majority",
                HealthMode::Local => "local",
            }
            .to_owned(),
        ),
        config_mismatch: config_mismatch(&nodes),
        rejected_datagrams: c
            .rejected()
            .snapshot()
            .into_iter()
            .map(|(r, n)| (r.to_string(), n))
            .collect(),
        nodes,
        endpoints,
    }
}

/// Whether the live nodes serve different configs.
pub fn config_mismatch(nodes: &[NodeDoc]) -> bool {
    let mut fps = nodes
        .iter()
        .filter(|n| n.live && !n.config_fingerprint.is_empty())
        .map(|n| n.config_fingerprint.as_str());
    let first = fps.next();
    fps.any(|f| Some(f) != first)
}

/// `signpost_cluster_nodes{state}` and `signpost_cluster_config_mismatch`, appended to a
/// `/metrics` page (written at scrape time from the cluster's own state).
pub fn render_metrics(doc: &ClusterDoc, out: &mut String) {
    if !doc.enabled {
        return;
    }
    let live = doc.nodes.iter().filter(|n| n.live).count();
    let dead = doc.nodes.len() - live;
    out.push_str("# HELP signpost_cluster_nodes Cluster nodes this node knows, by state\n");
    out.push_str("# TYPE signpost_cluster_nodes gauge\n");
    let _ = writeln!(out, "signpost_cluster_nodes{{state=\"live\"}} {live}");
    let _ = writeln!(out, "signpost_cluster_nodes{{state=\"dead\"}} {dead}");
    out.push_str(
        "# HELP signpost_cluster_config_mismatch 1 while the live nodes serve different configs\n",
    );
    out.push_str("# TYPE signpost_cluster_config_mismatch gauge\n");
    let _ = writeln!(
        out,
        "signpost_cluster_config_mismatch {}",
        u8::from(doc.config_mismatch)
    );
}

/// The nodes and the endpoints they disagree on, for `signpost status`.
pub fn text(doc: &ClusterDoc) -> String {
    let mut out = String::new();
    if !doc.enabled {
        return out;
    }
    let _ = writeln!(
        out,
        "\ncluster: node {} ({} health)",
        doc.node.as_deref().unwrap_or("?"),
        doc.health.as_deref().unwrap_or("?")
    );
    if doc.config_mismatch {
        out.push_str("WARNING: the live nodes serve different configs (fingerprints differ)\n");
    }
    let _ = writeln!(
        out,
        "{:<20} {:<16} {:<6} {:<22} {:<18} VERSION",
        "NODE", "SITE", "STATE", "LAST HEARD", "CONFIG"
    );
    for n in &doc.nodes {
        let state = if n.live { "live" } else { "dead" };
        let name = if n.is_self {
            format!("{} (this)", n.name)
        } else {
            n.name.clone()
        };
        let _ = writeln!(
            out,
            "{:<20} {:<16} {:<6} {:<22} {:<18} {}",
            name,
            n.site,
            state,
            n.last_heard.as_deref().unwrap_or("-"),
            format!("{}#{}", n.config_fingerprint, n.config_generation),
            n.version
        );
    }
    let split: Vec<&EndpointVotes> = doc.endpoints.iter().filter(|e| e.disagree).collect();
    if !split.is_empty() {
        out.push_str("endpoints the nodes disagree on:\n");
        for e in split {
            let views: Vec<String> = e
                .views
                .iter()
                .map(|v| format!("{} {}", v.node, v.status))
                .collect();
            let _ = writeln!(
                out,
                "  {}/{}: serving {} ({}); {}",
                e.profile,
                e.endpoint,
                e.combined,
                e.votes,
                views.join(", ")
            );
        }
    }
    out
}

/// The cluster section of the status page: a banner when configs differ, the nodes,
/// and per endpoint the nodes' votes.
pub fn html(doc: &ClusterDoc) -> String {
    use super::page::esc;
    let mut out = String::new();
    if !doc.enabled {
        return out;
    }
    out.push_str("<h2 id=\"cluster\">Cluster</h2>\n");
    if doc.config_mismatch {
        out.push_str(
            "<p class=\"banner\" id=\"config-mismatch\">The live nodes serve different \
             configs (their fingerprints differ): they may answer differently. Deploy the \
             same config and zones to every node, then reload.</p>\n",
        );
    }
    let _ = writeln!(
        out,
        "<p>This node: <b>{}</b>; health: {}.</p>",
        esc(doc.node.as_deref().unwrap_or("")),
        esc(doc.health.as_deref().unwrap_or(""))
    );
    out.push_str(
        "<table id=\"nodes\"><tr><th>Node</th><th>Site</th><th>State</th><th>Last heard</th>\
         <th>Config</th><th>Version</th></tr>\n",
    );
    for n in &doc.nodes {
        let (class, state) = if n.live {
            ("ok", "live")
        } else {
            ("bad", "dead")
        };
        let _ = writeln!(
            out,
            "<tr><td>{}{}</td><td>{}</td><td><span class=\"st {class}\">{state}</span></td>\
             <td>{}</td><td>{} (generation {})</td><td>{}</td></tr>",
            esc(&n.name),
            if n.is_self { " (this node)" } else { "" },
            esc(&n.site),
            esc(n.last_heard.as_deref().unwrap_or("—")),
            esc(&n.config_fingerprint),
            n.config_generation,
            esc(&n.version)
        );
    }
    out.push_str("</table>\n");
    if !doc.endpoints.is_empty() {
        out.push_str(
            "<table id=\"votes\"><tr><th>Profile</th><th>Endpoint</th><th>Served</th>\
             <th>Votes</th><th>Each node</th></tr>\n",
        );
        for e in &doc.endpoints {
            let views: Vec<String> = e
                .views
                .iter()
                .map(|v| format!("{}: {}", esc(&v.node), esc(&v.status)))
                .collect();
            let _ = writeln!(
                out,
                "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if e.disagree {
                    " class=\"disagree\""
                } else {
                    ""
                },
                esc(&e.profile),
                esc(&e.endpoint),
                esc(&e.combined),
                esc(&e.votes),
                views.join(", ")
            );
        }
        out.push_str("</table>\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::testing::assert_has;

    fn node(name: &str, live: bool, fp: &str) -> NodeDoc {
        NodeDoc {
            name: name.into(),
            site: name.into(),
            gossip: "127.0.0.1:7946".into(),
            live,
            is_self: name == "a",
            last_heard: None,
            version: "0.1.0".into(),
            config_fingerprint: fp.into(),
            config_generation: 1,
        }
    }

    #[test]
    fn a_mismatch_counts_live_nodes_only() {
        assert!(!config_mismatch(&[
            node("a", true, "x"),
            node("b", true, "x")
        ]));
        assert!(config_mismatch(&[
            node("a", true, "x"),
            node("b", true, "y")
        ]));
        assert!(!config_mismatch(&[
            node("a", true, "x"),
            node("b", false, "y")
        ]));
    }

    #[test]
    fn metrics_and_text_show_nodes_and_disagreements() {
        let doc = ClusterDoc {
            enabled: true,
            node: Some("a".into()),
            health: Some("majority".into()),
            config_mismatch: true,
            nodes: vec![node("a", true, "x"), node("b", false, "y")],
            endpoints: vec![EndpointVotes {
                profile: "app.gslb.example.".into(),
                endpoint: "b".into(),
                combined: "Online".into(),
                own: "Degraded".into(),
                votes: "2 of 3 see Online".into(),
                disagree: true,
                views: vec![],
            }],
            ..ClusterDoc::default()
        };
        let mut m = String::new();
        render_metrics(&doc, &mut m);
        assert_has(
            &m,
            &[
                "signpost_cluster_nodes{state=\"live\"} 1",
                "signpost_cluster_nodes{state=\"dead\"} 1",
            ],
        );
        assert!(m.contains("signpost_cluster_config_mismatch 1"), "{m}");
        let h = html(&doc);
        assert!(h.contains("id=\"config-mismatch\""), "{h}");
        assert!(h.contains("2 of 3 see Online"), "{h}");
        let t = text(&doc);
        assert!(t.contains("WARNING"), "{t}");
        assert!(t.contains("a (this)"), "{t}");
        assert_has(
            &t,
            &["app.gslb.example./b: serving Online (2 of 3 see Online)"],
        );
        let json = serde_json::to_string(&doc).unwrap();
        assert_eq!(serde_json::from_str::<ClusterDoc>(&json).unwrap(), doc);
    }
}
