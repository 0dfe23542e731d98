//! Prometheus metrics (`metrics` crate + its Prometheus exporter), all named `signpost_*`.
//!
//! The query counters are registered once into a fixed table, and each endpoint's answer
//! counter is a plain atomic in its model ([`AnswerCounter`]), so counting a query or an
//! answer is one atomic add with no allocation or label hashing on the hot path. The
//! per-endpoint families are written from the snapshot at scrape time
//! ([`render_endpoints`]) rather than registered, so they cost no memory per series.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{Counter, Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::dns::Transport;
use crate::dns::wire::rcode;
use crate::snapshot::Snapshot;
use crate::zone::rtype;

pub const QUERIES: &str = "signpost_dns_queries_total";
pub const ANSWERS: &str = "signpost_answers_total";
pub const ENDPOINT_STATUS: &str = "signpost_endpoint_status";
pub const PROBE_DURATION: &str = "signpost_probe_duration_seconds";
pub const PROBE_RESULTS: &str = "signpost_probe_results_total";
pub const TRANSITIONS: &str = "signpost_status_transitions_total";
pub const RELOADS: &str = "signpost_reloads_total";
pub const GENERATION: &str = "signpost_config_generation";
pub const DRAINS_ACTIVE: &str = "signpost_drains_active";

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
    describe_counter!(
        QUERIES,
        "DNS queries answered or dropped, by protocol, qtype and rcode"
    );
    describe_histogram!(
        PROBE_DURATION,
        Unit::Seconds,
        "Health probe duration, by outcome (ok, fail)"
    );
    describe_counter!(PROBE_RESULTS, "Health probe results, by outcome");
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
}

const QTYPES: [(u16, &str); 12] = [
    (rtype::A, "A"),
    (rtype::AAAA, "AAAA"),
    (rtype::CNAME, "CNAME"),
    (rtype::NS, "NS"),
    (rtype::SOA, "SOA"),
    (rtype::MX, "MX"),
    (rtype::TXT, "TXT"),
    (rtype::SRV, "SRV"),
    (rtype::PTR, "PTR"),
    (257, "CAA"),
    (rtype::ANY, "ANY"),
    (0, "other"),
];
const RCODES: [(u16, &str); 8] = [
    (rcode::NOERROR, "NOERROR"),
    (rcode::FORMERR, "FORMERR"),
    (rcode::SERVFAIL, "SERVFAIL"),
    (rcode::NXDOMAIN, "NXDOMAIN"),
    (rcode::NOTIMP, "NOTIMP"),
    (rcode::REFUSED, "REFUSED"),
    (rcode::BADVERS, "BADVERS"),
    (u16::MAX, "dropped"),
];

const SLOTS: usize = 2 * QTYPES.len() * RCODES.len();

/// One counter per (protocol, qtype, rcode), registered on first use so `/metrics` shows
/// only the combinations seen.
fn table() -> &'static [OnceLock<Counter>; SLOTS] {
    static T: [OnceLock<Counter>; SLOTS] = [const { OnceLock::new() }; SLOTS];
    &T
}

/// Counts one query. `rcode = None` for a dropped packet.
pub fn count_query(transport: Transport, qtype: u16, rc: Option<u16>) {
    count_queries(transport, qtype, rc, 1);
}

/// Counts the queries of one receive batch with one counter update per run of queries
/// with the same labels (usually one per batch) instead of one per query.
#[derive(Debug, Default)]
pub struct QueryTally {
    run: Option<(Transport, u16, Option<u16>)>,
    n: u64,
}

impl QueryTally {
    pub fn add(&mut self, transport: Transport, qtype: u16, rc: Option<u16>) {
        let key = Some((transport, qtype, rc));
        if self.run != key {
            self.flush();
            self.run = key;
        }
        self.n += 1;
    }

    /// Adds the counted queries to the metrics.
    pub fn flush(&mut self) {
        if let Some((t, q, rc)) = self.run.take()
            && self.n > 0
        {
            count_queries(t, q, rc, self.n);
        }
        self.n = 0;
    }
}

fn count_queries(transport: Transport, qtype: u16, rc: Option<u16>, n: u64) {
    let p = usize::from(transport == Transport::Tcp);
    let q = QTYPES
        .iter()
        .position(|&(t, _)| t == qtype)
        .unwrap_or(QTYPES.len() - 1);
    let r = match rc {
        None => RCODES.len() - 1,
        Some(rc) => RCODES.iter().position(|&(c, _)| c == rc).unwrap_or(0),
    };
    table()[(p * QTYPES.len() + q) * RCODES.len() + r]
        .get_or_init(|| {
            let proto = if p == 1 { "tcp" } else { "udp" };
            metrics::counter!(QUERIES, "protocol" => proto, "qtype" => QTYPES[q].1, "rcode" => RCODES[r].1)
        })
        .increment(n);
}

/// `signpost_answers_total` of one endpoint, kept in the model: one atomic add per answer.
/// The two per-endpoint families are not registered with the recorder (at 30,000 endpoints
/// its label sets cost about 30 MiB); [`render_endpoints`] writes them from the snapshot
/// at scrape time. A reload carries each endpoint's count over to the new model
/// ([`AnswerCounter::carry_from`]), so the series continues.
#[derive(Debug, Default)]
pub struct AnswerCounter(AtomicU64);

impl AnswerCounter {
    /// Counts one answer that included this endpoint.
    pub fn increment(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Adds the count of the same endpoint in the model being replaced.
    pub fn carry_from(&self, old: &AnswerCounter) {
        self.0.fetch_add(old.get(), Ordering::Relaxed);
    }
}

/// Appends `signpost_answers_total` (endpoints that answered at least once) and
/// `signpost_endpoint_status` (every endpoint, 1 for its current status) to a `/metrics`
/// page, from `snap`.
pub fn render_endpoints(snap: &Snapshot, out: &mut String) {
    use std::fmt::Write as _;
    let m = &snap.model;
    let _ = writeln!(
        out,
        "# HELP {ANSWERS} Profile answers that included an endpoint, by profile and endpoint\n# TYPE {ANSWERS} counter"
    );
    for p in &m.profiles {
        for e in &p.endpoints {
            let n = e.answer_count.get();
            if n > 0 {
                let _ = writeln!(
                    out,
                    "{ANSWERS}{{profile=\"{}\",endpoint=\"{}\"}} {n}",
                    Escaped(&p.key),
                    Escaped(&e.name)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP {ENDPOINT_STATUS} 1 for the endpoint's current status (labels profile, endpoint, site, status)\n# TYPE {ENDPOINT_STATUS} gauge"
    );
    for (p, states) in m.profiles.iter().zip(&snap.endpoints) {
        for (e, st) in p.endpoints.iter().zip(states) {
            let site = e.site.map_or("", |s| m.sites[s as usize].as_str());
            let _ = writeln!(
                out,
                "{ENDPOINT_STATUS}{{profile=\"{}\",endpoint=\"{}\",site=\"{}\",status=\"{}\"}} 1",
                Escaped(&p.key),
                Escaped(&e.name),
                Escaped(site),
                st.status.as_str()
            );
        }
    }
}

/// A label value in the Prometheus text format: `\`, `"` and newlines escaped.
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
