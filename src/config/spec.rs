//! The config file's shape: one struct per table, every table `deny_unknown_fields`.
//!
//! The keys are the contract of DESIGN.md ("Config contract"). Defaults are chosen so that
//! a config with only `[dns]` and a zone directory serves.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;
pub use crate::base::{AllDown, Method, Protocol};

/// `[dns]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DnsSpec {
    /// UDP and TCP are served on each address.
    #[serde(deserialize_with = "one_or_many")]
    pub listen: Vec<String>,
    /// SO_REUSEPORT UDP sockets per address; 0 = one per core.
    pub udp_sockets: usize,
    /// A TCP connection with no complete query for this long is closed (RFC 7766 §6.2.3).
    pub tcp_idle_timeout: HumanDuration,
    /// At most this many TCP connections at once. When they are all open, a new one
    /// closes the connection that has been idle longest.
    pub tcp_max_connections: usize,
    /// At most this many TCP connections from one source (an IPv4 address, an IPv6 /64);
    /// a new one beyond that closes that source's longest-idle connection.
    pub tcp_max_per_source: usize,
    /// An answer the client has not taken within this long closes the connection;
    /// default: `tcp_idle_timeout`.
    pub tcp_write_timeout: Option<HumanDuration>,
    /// UDP responses per second to one client /24 (IPv6 /56); 0 = no limit. Over it, every
    /// second answer is sent empty with TC=1 (the client retries over TCP, which is not
    /// limited) and the others are dropped.
    pub rate_limit: u32,
}

impl DnsSpec {
    /// `tcp_write_timeout`, or `tcp_idle_timeout` when it is not set.
    pub fn tcp_write_timeout(&self) -> std::time::Duration {
        self.tcp_write_timeout.unwrap_or(self.tcp_idle_timeout).0
    }
}

impl Default for DnsSpec {
    fn default() -> Self {
        Self {
            listen: vec!["127.0.0.1:5300".to_owned()],
            udp_sockets: 0,
            tcp_idle_timeout: HumanDuration::from_secs(10),
            tcp_max_connections: 1024,
            tcp_max_per_source: 64,
            tcp_write_timeout: None,
            rate_limit: 0,
        }
    }
}

/// `[admin]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSpec {
    pub listen: String,
    /// Bearer token for mutating calls; required when `listen` is not loopback.
    pub token_file: Option<PathBuf>,
    /// Host names (or `name:port`) requests may carry in `Host` besides the address the
    /// client connected to and `localhost`: a DNS name operators use for the listener.
    #[serde(deserialize_with = "one_or_many")]
    pub allowed_hosts: Vec<String>,
    /// At most this many admin connections at once; when full, the one that has waited
    /// longest for its client is closed.
    pub max_connections: usize,
    /// A request's head and body must arrive within this, and an answer be read within
    /// it; idle connections are closed after it.
    pub request_timeout: HumanDuration,
}

impl Default for AdminSpec {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8053".to_owned(),
            token_file: None,
            allowed_hosts: Vec::new(),
            max_connections: 256,
            request_timeout: HumanDuration::from_secs(10),
        }
    }
}

/// `[zones]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ZonesSpec {
    pub dir: PathBuf,
}

impl Default for ZonesSpec {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("zones"),
        }
    }
}

/// `[state]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StateSpec {
    pub dir: PathBuf,
}

impl Default for StateSpec {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("state"),
        }
    }
}

/// `[geo]`
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GeoSpec {
    pub mmdb: Option<PathBuf>,
    /// Region name → subnets (IPv4 or IPv6 CIDR).
    pub regions: BTreeMap<String, Vec<String>>,
}

/// `tls = { ... }` inside a monitor.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSpec {
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

/// `[monitors.NAME]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorSpec {
    pub protocol: Protocol,
    /// Default: 80 for http, 443 for https; required for tcp.
    pub port: Option<u16>,
    pub path: String,
    pub host: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub expected_status: Vec<String>,
    pub body_contains: Option<String>,
    pub interval: HumanDuration,
    pub timeout: HumanDuration,
    pub tolerated_failures: u32,
    pub rise: u32,
    /// Fast confirmation: after a failed probe of a target that is not Degraded, the next
    /// probes start this long after the previous one started (without waiting for it to
    /// end), until the target is Degraded or a probe succeeds; then `interval` again. Default
    /// 1s, or the `interval` when that is shorter ([`MonitorSpec::retry_interval`]);
    /// `retry_interval = interval` turns fast confirmation off.
    pub retry_interval: Option<HumanDuration>,
    pub tls: TlsSpec,
    /// http/https: send probes over an idle connection left open by an earlier probe of
    /// the same address, port, host and TLS settings (HTTP keep-alive) instead of opening
    /// a new one each time. A connection is kept for at most a minute, and a probe whose
    /// reused connection fails is tried once more on a new one. `false`: every probe opens
    /// a new connection and sends `Connection: close`.
    pub reuse_connection: bool,
}

impl Default for MonitorSpec {
    fn default() -> Self {
        Self {
            protocol: Protocol::Http,
            port: None,
            path: "/".to_owned(),
            host: None,
            headers: BTreeMap::new(),
            expected_status: vec!["200-299".to_owned()],
            body_contains: None,
            interval: HumanDuration::from_secs(10),
            timeout: HumanDuration::from_secs(5),
            tolerated_failures: 3,
            rise: 2,
            retry_interval: None,
            tls: TlsSpec::default(),
            reuse_connection: true,
        }
    }
}

/// `retry_interval` when not set.
pub const DEFAULT_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl MonitorSpec {
    /// The fast confirmation pace in force: `retry_interval`, by default 1s, and never
    /// longer than the `interval`.
    pub fn retry_interval(&self) -> std::time::Duration {
        self.retry_interval
            .map_or(DEFAULT_RETRY_INTERVAL, |d| d.0)
            .min(self.interval.0)
    }
}

/// `monitor = { ... }` inside an endpoint: any monitor key, overriding the profile's monitor.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MonitorOverride {
    pub protocol: Option<Protocol>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub expected_status: Option<Vec<String>>,
    pub body_contains: Option<String>,
    pub interval: Option<HumanDuration>,
    pub timeout: Option<HumanDuration>,
    pub tolerated_failures: Option<u32>,
    pub rise: Option<u32>,
    pub retry_interval: Option<HumanDuration>,
    pub tls: Option<TlsSpec>,
    pub reuse_connection: Option<bool>,
}

impl MonitorOverride {
    /// The names of the keys this override sets.
    pub fn keys_set(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        macro_rules! set {
            ($($f:ident),*) => { $( if self.$f.is_some() { keys.push(stringify!($f)); } )* };
        }
        set!(
            protocol,
            port,
            path,
            host,
            headers,
            expected_status,
            body_contains,
            interval,
            timeout,
            tolerated_failures,
            rise,
            retry_interval,
            tls,
            reuse_connection
        );
        keys
    }
}

/// `[[sites]]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    pub name: String,
}

/// `[profiles."NAME"]`, without its endpoints (they are read one by one so that every
/// bad endpoint is reported).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileSpec {
    pub method: Method,
    pub ttl: u32,
    /// Seconds. While the profile is unstable (an answering endpoint failed its latest
    /// probe or has one unanswered for `retry_interval`, the all-down fallback is in force, or an endpoint changed status less than
    /// `ttl` ago) its answers carry min(`ttl`, `ttl_unstable`). Default 5;
    /// `ttl_unstable = ttl` turns health-aware TTLs off.
    pub ttl_unstable: u32,
    pub monitor: Option<String>,
    pub all_down: AllDown,
    pub max_answers: Option<u32>,
    /// performance: endpoints within max(this fraction of the best RTT, `performance_tolerance_min`)
    /// of the best are weighted among.
    pub performance_tolerance: Option<f64>,
    pub performance_tolerance_min: Option<HumanDuration>,
    /// performance: region name → endpoint name → latency, overriding measured RTT for
    /// clients in that region.
    pub latency: BTreeMap<String, BTreeMap<String, HumanDuration>>,
    #[serde(skip)]
    pub endpoints: Vec<EndpointSpec>,
}

impl Default for ProfileSpec {
    fn default() -> Self {
        Self {
            method: Method::default(),
            ttl: 30,
            ttl_unstable: 5,
            monitor: None,
            all_down: AllDown::default(),
            max_answers: None,
            performance_tolerance: None,
            performance_tolerance_min: None,
            latency: BTreeMap::new(),
            endpoints: Vec::new(),
        }
    }
}

/// `[[profiles."NAME".endpoints]]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    pub name: String,
    pub site: Option<String>,
    pub address: Option<String>,
    #[serde(default)]
    pub addresses: Vec<String>,
    pub target: Option<String>,
    pub profile: Option<String>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default = "default_priority")]
    pub priority: u32,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub always_serve: bool,
    pub probe_address: Option<String>,
    pub monitor: Option<MonitorOverride>,
    #[serde(default = "default_min_child")]
    pub min_child_endpoints: u32,
}

fn default_weight() -> u32 {
    1
}
fn default_priority() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_min_child() -> u32 {
    1
}

/// A string or a list of strings (so that `SIGNPOST__DNS__LISTEN=127.0.0.1:53` works); a
/// string is a comma-separated list.
pub(super) fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}
