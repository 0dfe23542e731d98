//! Prometheus metrics (`metrics` crate + its Prometheus exporter), all named `signpost_*`.
//!
//! The query counters are fixed tables of atomics, one per UDP loop ([`QueryTally`]), and
//! each endpoint's answer counter is a plain atomic in its model (`model::AnswerCounter`), so
//! counting a query or an answer costs no allocation, label hashing or dynamic call on the
//! hot path. These families are written at scrape time ([`render_queries`],
//! [`render_endpoints`]) rather than registered with the recorder, so they also cost no
//! memory per series.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::base::Status;
use crate::base::Transport;
use crate::base::{Rcode, Rtype};
use crate::model::{EndpointDef, ProfileDef};
use crate::snapshot::{EndpointState, Snapshot};

pub const QUERIES: &str = "signpost_dns_queries_total";
pub const ANSWERS: &str = "signpost_answers_total";
pub const ENDPOINT_STATUS: &str = "signpost_endpoint_status";
pub const SHORT_TTL_ANSWERS: &str = "signpost_short_ttl_answers_total";
pub const PROBE_DURATION: &str = "signpost_probe_duration_seconds";
pub use crate::health::{PROBE_LOCAL_ERRORS, PROBE_RESULTS};
pub const TRANSITIONS: &str = "signpost_status_transitions_total";
pub const RELOADS: &str = "signpost_reloads_total";
pub const GENERATION: &str = "signpost_config_generation";
pub const DRAINS_ACTIVE: &str = "signpost_drains_active";
pub const BUILD_INFO: &str = "signpost_build_info";
pub const ENDPOINT_RTT: &str = "signpost_endpoint_rtt_seconds";
pub const LAST_SUCCESS: &str = "signpost_probe_last_success_timestamp_seconds";
pub const PROFILE_ALL_DOWN: &str = "signpost_profile_all_down";
pub const LAST_RELOAD_SUCCESS: &str = "signpost_last_reload_success_timestamp_seconds";
pub const RATE_LIMITED: &str = "signpost_dns_rate_limited_total";
pub const TCP_CONNECTIONS: &str = "signpost_dns_tcp_connections";
pub const TCP_CLOSED: &str = "signpost_dns_tcp_closed_total";

/// Installs the global recorder (once per process) and returns the handle that renders
/// `/metrics`.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(PROBE_DURATION.to_owned()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ],
                )
                .expect("bucket list is not empty");
            let handle = match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (tests in one process): render our own.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_histogram!(
        PROBE_DURATION,
        Unit::Seconds,
        "Health probe duration, by outcome (ok, fail)"
    );
    describe_counter!(PROBE_RESULTS, "Health probe results, by outcome");
    metrics::counter!(PROBE_LOCAL_ERRORS).absolute(0);
    describe_counter!(
        PROBE_LOCAL_ERRORS,
        "Probes not made because of an error of this host (out of file descriptors, buffers or memory): they leave the endpoint's status as it was"
    );
    describe_counter!(
        TRANSITIONS,
        "Endpoint status transitions, by the status entered"
    );
    describe_counter!(RELOADS, "Config reloads, by result (ok, error)");
    describe_gauge!(
        GENERATION,
        "Generation of the config being served (increases on each good load)"
    );
    describe_gauge!(
        DRAINS_ACTIVE,
        "Operator drains in force (sites and endpoints)"
    );
    describe_gauge!(
        LAST_RELOAD_SUCCESS,
        Unit::Seconds,
        "Unix time of the last successful config load (at start or by a reload)"
    );
}

/// Records a successful config load (start or reload) at `now`.
pub fn loaded(now: std::time::SystemTime) {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    metrics::gauge!(LAST_RELOAD_SUCCESS).set(secs);
}

/// The qtypes counted under their mnemonic; the last, `Rtype(0)`, counts every other
/// type, labelled `other`.
const QTYPES: [Rtype; 12] = [
    Rtype::A,
    Rtype::AAAA,
    Rtype::CNAME,
    Rtype::NS,
    Rtype::SOA,
    Rtype::MX,
    Rtype::TXT,
    Rtype::SRV,
    Rtype::PTR,
    Rtype::CAA,
    Rtype::ANY,
    Rtype(0),
];
/// The rcodes counted under their mnemonic; the last counts dropped packets, labelled
/// `dropped`.
const RCODES: [Rcode; 8] = [
    Rcode::NOERROR,
    Rcode::FORMERR,
    Rcode::SERVFAIL,
    Rcode::NXDOMAIN,
    Rcode::NOTIMP,
    Rcode::REFUSED,
    Rcode::BADVERS,
    Rcode(u16::MAX),
];

const QUERY_SLOTS: usize = 2 * QTYPES.len() * RCODES.len();
/// After the query counts: UDP answers the rate limit slipped (sent empty with TC=1) and
/// dropped.
const SLIP: usize = QUERY_SLOTS;
const DROP: usize = QUERY_SLOTS + 1;
const SLOTS: usize = QUERY_SLOTS + 2;

/// Counts of `signpost_dns_queries_total`, one per (protocol, qtype, rcode), and of
/// `signpost_dns_rate_limited_total`. Not
/// registered with the recorder: [`render_queries`] writes the family at scrape time from
/// every `Counts` there is, so counting a query costs no label lookup, no dynamic call
/// and (in a UDP loop) no locked instruction.
#[repr(align(64))]
struct Counts([AtomicU64; SLOTS]);

impl Counts {
    const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; SLOTS])
    }
}

/// Shared by everything that counts one query at a time ([`count_query`]: TCP).
static SHARED: Counts = Counts::new();

/// One `Counts` per [`QueryTally`] ever made (one per UDP socket loop), each written by
/// its own thread only. Never removed, so the sums never go down.
static TALLIES: Mutex<Vec<Arc<Counts>>> = Mutex::new(Vec::new());

fn slot(transport: Transport, qtype: Rtype, rc: Option<Rcode>) -> usize {
    let p = usize::from(transport == Transport::Tcp);
    let q = QTYPES
        .iter()
        .position(|&t| t == qtype)
        .unwrap_or(QTYPES.len() - 1);
    let r = match rc {
        None => RCODES.len() - 1,
        Some(rc) => RCODES.iter().position(|&c| c == rc).unwrap_or(0),
    };
    (p * QTYPES.len() + q) * RCODES.len() + r
}

/// Counts one query. `rcode = None` for a dropped packet.
pub fn count_query(transport: Transport, qtype: Rtype, rc: Option<Rcode>) {
    SHARED.0[slot(transport, qtype, rc)].fetch_add(1, Ordering::Relaxed);
}

/// What the response rate limit did with an answer over the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    /// Sent empty with TC=1 (the client may retry over TCP).
    Slip,
    /// Not sent.
    Drop,
}

impl Limited {
    fn slot(self) -> usize {
        match self {
            Limited::Slip => SLIP,
            Limited::Drop => DROP,
        }
    }
}

/// Counts one answer the rate limit slipped or dropped (outside a UDP loop's tally).
pub fn count_limited(action: Limited) {
    SHARED.0[action.slot()].fetch_add(1, Ordering::Relaxed);
}

/// Counts the queries of one thread's receive batches: one counter update per run of
/// queries with the same labels (usually one per batch) instead of one per query, into
/// counts only this tally writes (a plain load and store, no locked add or shared cache
/// line between sockets).
#[derive(Debug)]
pub struct QueryTally {
    run: Option<(Transport, Rtype, Option<Rcode>)>,
    n: u64,
    counts: Arc<Counts>,
}

impl std::fmt::Debug for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counts")
    }
}

impl Default for QueryTally {
    fn default() -> Self {
        let counts = Arc::new(Counts::new());
        TALLIES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(counts.clone());
        Self {
            run: None,
            n: 0,
            counts,
        }
    }
}

impl QueryTally {
    pub fn add(&mut self, transport: Transport, qtype: Rtype, rc: Option<Rcode>) {
        let key = Some((transport, qtype, rc));
        if self.run != key {
            self.flush();
            self.run = key;
        }
        self.n += 1;
    }

    /// Counts one answer the rate limit slipped or dropped.
    pub fn limited(&mut self, action: Limited) {
        let c = &self.counts.0[action.slot()];
        // Only this tally writes `c`.
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Adds the counted queries to the metrics.
    pub fn flush(&mut self) {
        if let Some((t, q, rc)) = self.run.take()
            && self.n > 0
        {
            let c = &self.counts.0[slot(t, q, rc)];
            // Only this tally writes `c`; readers see either value.
            c.store(c.load(Ordering::Relaxed) + self.n, Ordering::Relaxed);
        }
        self.n = 0;
    }
}

/// Appends `signpost_dns_queries_total` to a `/metrics` page: every (protocol, qtype,
/// rcode) seen so far, summed over the UDP loops and the shared counts.
pub fn render_queries(out: &mut String) {
    use std::fmt::Write as _;
    let mut sums = [0u64; SLOTS];
    let add = |sums: &mut [u64; SLOTS], c: &Counts| {
        for (s, v) in sums.iter_mut().zip(&c.0) {
            *s += v.load(Ordering::Relaxed);
        }
    };
    add(&mut sums, &SHARED);
    for c in TALLIES.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        add(&mut sums, c);
    }
    let _ = writeln!(
        out,
        "# HELP {QUERIES} DNS queries answered or dropped, by protocol, qtype and rcode (not those the rate limit dropped: see {RATE_LIMITED})\n# TYPE {QUERIES} counter"
    );
    for (i, n) in sums[..QUERY_SLOTS].iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let (p, rest) = (
            i / (QTYPES.len() * RCODES.len()),
            i % (QTYPES.len() * RCODES.len()),
        );
        let (q, r) = (rest / RCODES.len(), rest % RCODES.len());
        let proto = if p == 1 { "tcp" } else { "udp" };
        let _ = writeln!(
            out,
            "{QUERIES}{{protocol=\"{proto}\",qtype=\"{}\",rcode=\"{}\"}} {n}",
            QTYPES[q].mnemonic().unwrap_or("other"),
            RCODES[r].mnemonic().unwrap_or("dropped")
        );
    }
    let _ = writeln!(
        out,
        "# HELP {RATE_LIMITED} UDP answers over dns.rate_limit, by what was done: slip (sent empty with TC=1), drop\n# TYPE {RATE_LIMITED} counter\n\
         {RATE_LIMITED}{{action=\"slip\"}} {}\n{RATE_LIMITED}{{action=\"drop\"}} {}",
        sums[SLIP], sums[DROP]
    );
    let _ = writeln!(
        out,
        "# HELP {TCP_CONNECTIONS} DNS TCP connections open\n# TYPE {TCP_CONNECTIONS} gauge\n{TCP_CONNECTIONS} {}",
        TCP_OPEN.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP {TCP_CLOSED} DNS TCP connections closed by a limit: limit (the longest-idle, to make room at tcp_max_connections), source_limit (the source's longest-idle, at tcp_max_per_source), write_timeout (answers not taken within tcp_write_timeout)\n# TYPE {TCP_CLOSED} counter"
    );
    for (i, reason) in ["limit", "source_limit", "write_timeout"]
        .iter()
        .enumerate()
    {
        let _ = writeln!(
            out,
            "{TCP_CLOSED}{{reason=\"{reason}\"}} {}",
            TCP_CLOSES[i].load(Ordering::Relaxed)
        );
    }
}

/// DNS TCP connections open now.
static TCP_OPEN: AtomicU64 = AtomicU64::new(0);
/// DNS TCP connections closed, by [`TcpClose`].
static TCP_CLOSES: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];

/// Why a limit closed a DNS TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpClose {
    /// The longest-idle connection, at `tcp_max_connections`.
    Limit = 0,
    /// The source's longest-idle connection, at `tcp_max_per_source`.
    SourceLimit = 1,
    /// Answers not taken within `tcp_write_timeout`.
    WriteTimeout = 2,
}

/// Sets the number of DNS TCP connections open.
pub fn tcp_open(n: usize) {
    TCP_OPEN.store(n as u64, Ordering::Relaxed);
}

/// Counts a DNS TCP connection closed by a limit.
pub fn tcp_closed(why: TcpClose) {
    TCP_CLOSES[why as usize].fetch_add(1, Ordering::Relaxed);
}

/// Appends `signpost_answers_total` (endpoints that answered at least once),
/// `signpost_short_ttl_answers_total` (profiles that answered short at least once) and
/// `signpost_endpoint_status` (every endpoint, 1 for its current status) to a `/metrics`
/// page, from `snap`.
pub fn render_endpoints(snap: &Snapshot, out: &mut String) {
    use std::fmt::Write as _;
    let m = &snap.model;
    let help = "Profile answers that included an endpoint, by profile and endpoint";
    family(out, ANSWERS, "counter", help);
    per_endpoint(out, snap, ANSWERS, |e, _| {
        Some(e.answer_count.get()).filter(|&n| n > 0)
    });
    let help = "Profile answers given with a TTL shortened because a profile was unstable (ttl_unstable), by profile";
    family(out, SHORT_TTL_ANSWERS, "counter", help);
    per_profile(out, snap, SHORT_TTL_ANSWERS, |p, _| {
        Some(p.short_ttl_answers.get()).filter(|&n| n > 0)
    });
    let help = "1 for the endpoint's current status, 0 for the others: one series per endpoint and status (checking_endpoint, online, degraded, disabled, always_serve)";
    family(out, ENDPOINT_STATUS, "gauge", help);
    for (p, states) in m.profiles.iter().zip(&snap.endpoints) {
        for (e, st) in p.endpoints.iter().zip(states) {
            let site = e.site.map_or("", |s| m.sites[s as usize].as_str());
            for s in Status::ALL {
                let _ = writeln!(
                    out,
                    "{ENDPOINT_STATUS}{{profile=\"{}\",endpoint=\"{}\",site=\"{}\",status=\"{}\"}} {}",
                    Escaped(&p.key),
                    Escaped(&e.name),
                    Escaped(site),
                    s.label(),
                    u8::from(st.status == s)
                );
            }
        }
    }
    let help = "Smoothed round-trip time of the endpoint's successful probes from this instance";
    family(out, ENDPOINT_RTT, "gauge", help);
    per_endpoint(out, snap, ENDPOINT_RTT, |_, st| {
        st.rtt.map(|rtt| rtt.as_secs_f64())
    });
    let help = "Unix time the endpoint's last successful probe started";
    family(out, LAST_SUCCESS, "gauge", help);
    per_endpoint(out, snap, LAST_SUCCESS, |e, _| {
        let at = e
            .target
            .and_then(|t| snap.health.targets.get(t as usize))
            .and_then(|t| t.last_success)?;
        let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Some(since.as_secs_f64())
    });
    let help = "1 while no endpoint of the profile is eligible and all_down decides the answer";
    family(out, PROFILE_ALL_DOWN, "gauge", help);
    per_profile(out, snap, PROFILE_ALL_DOWN, |_, pi| {
        Some(u8::from(crate::policy::all_down_fallback(snap, pi)))
    });
}

/// The `# HELP` and `# TYPE` lines of family `name`.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A series of `name` for every endpoint `value` gives a value for, labelled with its
/// profile and name.
fn per_endpoint<V: std::fmt::Display>(
    out: &mut String,
    snap: &Snapshot,
    name: &str,
    value: impl Fn(&EndpointDef, &EndpointState) -> Option<V>,
) {
    use std::fmt::Write as _;
    for (p, states) in snap.model.profiles.iter().zip(&snap.endpoints) {
        for (e, st) in p.endpoints.iter().zip(states) {
            if let Some(v) = value(e, st) {
                let (profile, endpoint) = (Escaped(&p.key), Escaped(&e.name));
                let _ = writeln!(
                    out,
                    "{name}{{profile=\"{profile}\",endpoint=\"{endpoint}\"}} {v}"
                );
            }
        }
    }
}

/// A series of `name` for every profile (with its index) `value` gives a value for,
/// labelled with the profile.
fn per_profile<V: std::fmt::Display>(
    out: &mut String,
    snap: &Snapshot,
    name: &str,
    value: impl Fn(&ProfileDef, u32) -> Option<V>,
) {
    use std::fmt::Write as _;
    for (pi, p) in snap.model.profiles.iter().enumerate() {
        if let Some(v) = value(p, pi as u32) {
            let _ = writeln!(out, "{name}{{profile=\"{}\"}} {v}", Escaped(&p.key));
        }
    }
}

/// `signpost_build_info` and the `process_*` families (from /proc).
pub fn render_process(out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "# HELP {BUILD_INFO} Always 1; the version of signpost in its label\n# TYPE {BUILD_INFO} gauge\n\
         {BUILD_INFO}{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    for (name, kind, help, value) in process::read().into_iter().flatten() {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// The process's own figures, the way Prometheus client libraries read them on Linux.
mod process {
    /// A family: name, type, help and value.
    pub(super) type Figure = (&'static str, &'static str, &'static str, f64);

    pub(super) fn read() -> Option<[Figure; 6]> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] is field 3 (state): field n is f[n - 3].
        let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        // SAFETY: sysconf only reads a configuration value.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
        let page = if page > 0 { page as u64 } else { 4096 };
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()?
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
            .unwrap_or(0);
        // Counts and sizes as f64 are exact below 2^53.
        Some([
            (
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                (num(14)? + num(15)?) as f64 / ticks,
            ),
            (
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                (num(24)? * page) as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                num(23)? as f64,
            ),
            (
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                open_fds as f64,
            ),
            (
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                max_fds as f64,
            ),
            (
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                boot as f64 + num(22)? as f64 / ticks,
            ),
        ])
    }
}

struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn label_values_are_escaped_for_the_text_format() {
        assert_eq!(Escaped("a\\b \"c\"\nd").to_string(), r#"a\\b \"c\"\nd"#);
        assert_eq!(Escaped("app.gslb.example").to_string(), "app.gslb.example");
    }
}
