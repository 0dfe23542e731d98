//! `[cluster]`: one signpost per site, one view (DESIGN.md, "Cluster"). Optional: without
//! it an instance runs alone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;

/// `[cluster]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// This instance's name, unique in the cluster: 1 to 64 of `[A-Za-z0-9._-]`.
    /// Default: the host name.
    #[serde(default)]
    pub node: Option<String>,
    /// The site this instance runs in, shown in the views. Default: the node name.
    #[serde(default)]
    pub site: Option<String>,
    /// Gossip address (UDP), `ip:port`, reachable by the other instances (not a wildcard).
    pub listen: String,
    /// The other instances' gossip addresses, `ip:port` or `host:port`; one reachable
    /// peer is enough.
    #[serde(default, deserialize_with = "super::spec::one_or_many")]
    pub peers: Vec<String>,
    /// Shared secret: 32 random bytes in base64 (`head -c 32 /dev/urandom | base64`).
    /// Required unless `listen` is a loopback address.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// How the instances' probe views combine. Default `majority`.
    #[serde(default)]
    pub health: ClusterHealth,
    /// Gossip round period; a dead instance is noticed after about 8 of them (default
    /// "200ms", between "50ms" and "5s").
    #[serde(default = "default_gossip_interval")]
    pub gossip_interval: HumanDuration,
}

/// `cluster.health`
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClusterHealth {
    /// A target is Degraded (Online) when more than half of the live instances with a
    /// result say so; a tie or a lone instance keeps its own view.
    #[default]
    Majority,
    /// Only this instance's own probes count.
    Local,
}

impl<'de> Deserialize<'de> for ClusterHealth {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "majority" => Ok(Self::Majority),
            "local" => Ok(Self::Local),
            _ => Err(serde::de::Error::custom(format!(
                "{s:?} is not a health mode; write \"majority\" or \"local\""
            ))),
        }
    }
}

fn default_gossip_interval() -> HumanDuration {
    HumanDuration::from_millis(200)
}

/// This machine's host name, if it has one.
pub fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = std::str::from_utf8(&buf[..end]).ok()?.trim().to_owned();
    (!name.is_empty()).then_some(name)
}

fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Reads a cluster key file: 32 bytes in base64. The error says what is wrong.
pub fn read_key_file(path: &Path) -> Result<[u8; 32], crate::cluster::KeyError> {
    crate::cluster::ClusterKey::load(path).map(|k| k.bytes())
}

const KEY_HINT: &str = "write 32 random bytes in base64 to it, e.g. `head -c 32 /dev/urandom | base64 > cluster.key`, and give every instance the same file";

impl ClusterSpec {
    /// The node name in force: `node`, else the host name.
    pub fn node_name(&self) -> Option<String> {
        self.node.clone().or_else(host_name)
    }

    /// The site in force: `site`, else the node name.
    pub fn site_name(&self) -> Option<String> {
        self.site.clone().or_else(|| self.node_name())
    }

    /// Parsed `listen` (None if it does not parse; `check` reports it).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    /// Checks every value; each problem goes to `bad` with its key path.
    pub fn check(&self, bad: &mut impl FnMut(&str, String)) {
        match self.node_name() {
            None => bad(
                "cluster.node",
                "no host name to use as the node name; set node = \"hub-seattle\"".into(),
            ),
            Some(n) if !valid_node_name(&n) => bad(
                "cluster.node",
                format!(
                    "{n:?} is not a node name: use 1 to 64 letters, digits, '.', '_' or '-'{}",
                    if self.node.is_none() {
                        " (it is the host name; set node = \"…\")"
                    } else {
                        ""
                    }
                ),
            ),
            Some(_) => {}
        }
        if let Some(s) = &self.site {
            if s.trim().is_empty() {
                bad(
                    "cluster.site",
                    "is empty; name the site this instance runs in, or leave it out".into(),
                );
            } else if let Some(msg) = super::name_problem(s, "a site name") {
                bad("cluster.site", msg);
            }
        }
        let listen = match self.listen.parse::<SocketAddr>() {
            Ok(a) if a.ip().is_unspecified() => {
                bad(
                    "cluster.listen",
                    format!(
                        "{a} is a wildcard; write the address the other instances reach this one at, e.g. \"10.1.0.53:7946\""
                    ),
                );
                None
            }
            Ok(a) if a.port() == 0 => {
                bad(
                    "cluster.listen",
                    "port 0 is not a port the peers can reach; write e.g. \"10.1.0.53:7946\""
                        .into(),
                );
                None
            }
            Ok(a) => Some(a),
            Err(_) => {
                bad(
                    "cluster.listen",
                    format!(
                        "{:?} is not an IP address with a port; write e.g. \"10.1.0.53:7946\" or \"[fd00::53]:7946\"",
                        self.listen
                    ),
                );
                None
            }
        };
        for (i, p) in self.peers.iter().enumerate() {
            if !valid_peer(p) {
                bad(
                    &format!("cluster.peers[{i}]"),
                    format!(
                        "{p:?} is not an address with a port; write e.g. \"10.2.0.53:7946\" or \"signpost.dublin.corp.example:7946\""
                    ),
                );
            }
        }
        match &self.key_file {
            Some(path) => {
                if let Err(e) = read_key_file(path) {
                    bad("cluster.key_file", format!("{e}; {KEY_HINT}"));
                }
            }
            None => {
                if let Some(a) = listen
                    && !a.ip().is_loopback()
                {
                    bad(
                        "cluster.key_file",
                        format!(
                            "required when cluster.listen ({a}) is not a loopback address: gossip crosses the network sealed with it; {KEY_HINT}"
                        ),
                    );
                }
            }
        }
        let gi = self.gossip_interval.0;
        if gi < std::time::Duration::from_millis(50) || gi > std::time::Duration::from_secs(5) {
            bad(
                "cluster.gossip_interval",
                format!(
                    "{} is out of range; use \"50ms\" to \"5s\" (default \"200ms\")",
                    self.gossip_interval
                ),
            );
        }
    }
}

/// `ip:port`, `[v6]:port` or `host:port` with a DNS host name.
fn valid_peer(p: &str) -> bool {
    if p.parse::<SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = p.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().is_ok_and(|p| p != 0)
        && !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::{Config, Problems};

    fn load(text: &str, key: Option<&str>) -> Result<Config, Problems> {
        load_in(&tempfile::tempdir().unwrap(), text, key)
    }

    /// Loads `text` in `dir` (`KEYDIR` stands for it), with `key` as `dir/cluster.key`.
    fn load_in(dir: &tempfile::TempDir, text: &str, key: Option<&str>) -> Result<Config, Problems> {
        if let Some(k) = key {
            std::fs::write(dir.path().join("cluster.key"), k).unwrap();
        }
        let text = text.replace("KEYDIR", &dir.path().display().to_string());
        super::super::tests::load_in(dir.path(), &text)
    }

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";

    #[test]
    fn a_full_cluster_section_loads_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let c = load_in(
            &dir,
            r#"
[cluster]
node = "hub-seattle"
listen = "10.1.0.53:7946"
peers = ["10.2.0.53:7946", "signpost.dublin.corp.example:7946", "[fd00::53]:7946"]
key_file = "KEYDIR/cluster.key"
"#,
            Some(KEY),
        )
        .unwrap();
        let cl = c.cluster.unwrap();
        assert_eq!(cl.node_name().as_deref(), Some("hub-seattle"));
        assert_eq!(cl.site_name().as_deref(), Some("hub-seattle"));
        assert_eq!(cl.health, super::ClusterHealth::Majority);
        assert_eq!(cl.gossip_interval.0, std::time::Duration::from_millis(200));
        assert_eq!(cl.listen_addr(), Some("10.1.0.53:7946".parse().unwrap()));
        assert_eq!(
            super::read_key_file(cl.key_file.as_deref().unwrap()).unwrap(),
            *b"0123456789abcdef0123456789abcdef"
        );
    }

    #[test]
    fn no_cluster_section_is_none() {
        assert!(load("", None).unwrap().cluster.is_none());
    }

    /// (config, key file text, expected problem substrings)
    #[test]
    fn every_bad_value_is_reported_with_its_key_and_a_fix() {
        let rows: &[(&str, Option<&str>, &[&str])] = &[
            (
                "listen = \"10.1.0.53:7946\"",
                None,
                &[
                    "cluster.key_file: required when cluster.listen (10.1.0.53:7946) is not a loopback address",
                    "head -c 32 /dev/urandom",
                ],
            ),
            ("listen = \"127.0.0.1:7946\"", None, &[]),
            ("listen = \"[::1]:7946\"", None, &[]),
            (
                "listen = \"0.0.0.0:7946\"\nkey_file = \"KEYDIR/cluster.key\"",
                Some(KEY),
                &["cluster.listen: 0.0.0.0:7946 is a wildcard"],
            ),
            (
                "listen = \"seattle:7946\"",
                None,
                &["cluster.listen: \"seattle:7946\" is not an IP address with a port"],
            ),
            (
                "listen = \"127.0.0.1:7946\"\npeers = [\"10.0.0.1\", \"ok.example:1\", \"bad host:5\"]",
                None,
                &[
                    "cluster.peers[0]: \"10.0.0.1\" is not an address with a port",
                    "cluster.peers[2]: \"bad host:5\"",
                ],
            ),
            (
                "listen = \"127.0.0.1:7946\"\nkey_file = \"KEYDIR/missing.key\"",
                None,
                &["cluster.key_file: cannot read", "missing.key"],
            ),
            (
                "listen = \"127.0.0.1:7946\"\nkey_file = \"KEYDIR/cluster.key\"",
                Some("c2hvcnQ="),
                &["cluster.key_file: ", "holds 5 bytes after base64, not 32"],
            ),
            (
                "listen = \"127.0.0.1:7946\"\nkey_file = \"KEYDIR/cluster.key\"",
                Some("not base64 at all!"),
                &["cluster.key_file: ", "is not base64"],
            ),
            (
                "listen = \"127.0.0.1:7946\"\nnode = \"hub seattle\"",
                None,
                &["cluster.node: \"hub seattle\" is not a node name"],
            ),
            (
                "listen = \"127.0.0.1:7946\"\nnode = \"\"",
                None,
                &["cluster.node: \"\" is not a node name"],
            ),
            (
                "listen = \"127.0.0.1:7946\"\nhealth = \"vote\"",
                None,
                &["cluster.health: \"vote\" is not a health mode; write \"majority\" or \"local\""],
            ),
            (
                "listen = \"127.0.0.1:7946\"\ngossip_interval = \"10ms\"",
                None,
                &["cluster.gossip_interval: 10ms is out of range"],
            ),
            (
                "listen = \"127.0.0.1:7946\"\nbogus = 1",
                None,
                &["cluster.bogus: unknown field `bogus`"],
            ),
            (
                "node = \"a\"",
                None,
                &["cluster: missing configuration field \"listen\""],
            ),
        ];
        for (body, key, want) in rows {
            let got = load(&format!("[cluster]\n{body}\n"), *key);
            match (got, want.is_empty()) {
                (Ok(_), true) => {}
                (Ok(_), false) => panic!("{body}: loaded, wanted {want:?}"),
                (Err(e), true) => panic!("{body}: {e}"),
                (Err(e), false) => {
                    let e = e.to_string();
                    for w in *want {
                        assert!(e.contains(w), "{body}:\n{e}\nwanted {w:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn peers_from_the_environment_are_a_comma_list() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("signpost.toml");
        std::fs::write(&p, "[cluster]\nlisten = \"127.0.0.1:7946\"\n").unwrap();
        let env = HashMap::from([(
            "SIGNPOST__CLUSTER__PEERS".to_owned(),
            "127.0.0.2:7946, 127.0.0.3:7946".to_owned(),
        )]);
        let c = Config::load_with_env(&p, Some(env)).unwrap();
        assert_eq!(
            c.cluster.unwrap().peers,
            vec!["127.0.0.2:7946".to_owned(), "127.0.0.3:7946".to_owned()]
        );
    }
}
