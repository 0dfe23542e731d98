//! End to end through corporate DNS: a corporate resolver (BIND, or Unbound) follows the
//! delegation of `gslb.corp.example` to two signpost instances, one per site, and a client
//! resolves the app name through it and fetches the app over HTTP while sites fail.
//!
//! Every host is a network namespace this test creates (`common::netns`: names
//! `spe2e-<pid>-<n>-<role>`, deleted on drop, even on panic). Every address is inside
//! 198.18.0.0/15 (RFC 2544's benchmark range) and exists only inside those namespaces:
//!
//! ```text
//!   client   eth0 198.18.1.10   dig, curl (its resolv.conf names 198.18.1.1)
//!      │
//!   corp     to-client 198.18.1.1   the corporate resolver: BIND, or Unbound
//!            lo        198.18.0.53  BIND, authoritative for corp.example (+ a private root)
//!            routes between its three links
//!      ├── to-a 198.18.10.1 ── site-a  eth0 198.18.10.53  signpost :53, admin :8053
//!      │                                    198.18.10.80  ingress :80 ("site-a")
//!      └── to-b 198.18.20.1 ── site-b  eth0 198.18.20.53  signpost :53, admin :8053
//!                                           198.18.20.80  ingress :80 ("site-b")
//! ```
//!
//! corp.example delegates gslb.corp.example to ns-a (198.18.10.53) and ns-b (198.18.20.53)
//! with glue. Both signposts run the same config: `app.gslb.corp.example`, weighted 3:1
//! over the two ingresses, an http monitor every 1 s, TTL 5 s.
//!
//! Needs root (namespaces, veths, port 53) and Debian's bind9, bind9-dnsutils, unbound,
//! iproute2 and curl. When not root the tests fail saying so, unless `SIGNPOST_SKIP_NETNS=1`.
//! The measured failover times are written to stderr (not captured) as `e2e-failover:` lines.
#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::netns::{
    self, APP, INTERVAL, Ingresses, Net, PROBE_TIMEOUT, RESOLVER, RISE, Reply, SiteNet,
    TOLERATED_FAILURES, ZONE, detection_worst, tools,
};
use common::run_bounded;

// The settings under test; docs/deploy.md records the failover times measured with them.
const TTL: Duration = Duration::from_secs(5);
const WEIGHT_A: u32 = 3;
const WEIGHT_B: u32 = 1;

/// Room for a loaded 2-core machine (process start-up, poll granularity) on top of the
/// formula, in the assertions on measured times.
const LOAD_SLACK: Duration = Duration::from_secs(6);
/// How long the client must see only the expected site before a failover counts as done:
/// longer than the TTL, so a stale cached answer or a lagging instance would show.
const SETTLE: Duration = Duration::from_secs(8);
/// What a lost name server may add for the client when a whole site is cut off: the
/// resolver's retries against it, up to one retry of the client's stub resolver (4 s).
const DEAD_NS: Duration = Duration::from_secs(4);
/// Pause between two polls of the client.
const POLL: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Site {
    A,
    B,
}

impl Site {
    const ALL: [Site; 2] = [Site::A, Site::B];
    const NETS: [SiteNet; 2] = [
        SiteNet {
            name: "site-a",
            octet: 10,
        },
        SiteNet {
            name: "site-b",
            octet: 20,
        },
    ];

    fn net(self) -> SiteNet {
        Self::NETS[self as usize]
    }

    fn name(self) -> &'static str {
        self.net().name
    }

    /// The site's signpost (DNS on :53, admin API on :8053).
    fn ns(self) -> Ipv4Addr {
        self.net().ns()
    }

    /// The site's ingress: the answer for the app name.
    fn ingress(self) -> Ipv4Addr {
        self.net().ingress()
    }

    fn admin_url(self) -> String {
        format!("http://{}:8053", self.ns())
    }

    fn of_ingress(addr: Ipv4Addr) -> Option<Site> {
        Site::ALL.into_iter().find(|s| s.ingress() == addr)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolver {
    Bind,
    Unbound,
}

impl Resolver {
    fn name(self) -> &'static str {
        match self {
            Resolver::Bind => "bind",
            Resolver::Unbound => "unbound",
        }
    }
}

/// Unbound's tools (BIND's are in `netns::tools`).
struct UnboundTools {
    unbound: PathBuf,
    unbound_control: PathBuf,
}

fn unbound_tools() -> &'static UnboundTools {
    static TOOLS: OnceLock<UnboundTools> = OnceLock::new();
    TOOLS.get_or_init(|| UnboundTools {
        unbound: common::tool("unbound"),
        unbound_control: common::tool("unbound-control"),
    })
}

/// What the client sees, in this test's terms.
trait SiteReply {
    /// The site whose ingress is the whole answer, if it is exactly one of them.
    fn only_site(&self) -> Option<Site>;
    fn brief(&self) -> String;
}

impl SiteReply for Reply {
    fn only_site(&self) -> Option<Site> {
        match (self.status.as_str(), self.answers.as_slice()) {
            ("NOERROR", [(_, addr)]) => Site::of_ingress(*addr),
            _ => None,
        }
    }

    fn brief(&self) -> String {
        match self.only_site() {
            Some(s) => s.name().to_owned(),
            None => format!("{} {:?}", self.status, self.answers),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The lab: the network of `common::netns`, BIND/Unbound, two signposts, two ingresses.

struct Lab {
    resolver: Resolver,
    /// Dropped before `net` (the processes, the namespaces).
    ingress: Ingresses,
    net: Net,
}

impl Lab {
    /// Builds the network and starts everything; `None` when skipped explicitly.
    fn start(resolver: Resolver) -> Option<Lab> {
        let net = Net::start(&Site::NETS, resolver == Resolver::Bind)?;
        let mut lab = Lab {
            resolver,
            ingress: Ingresses::new(),
            net,
        };
        lab.write_configs();
        for site in Site::ALL {
            lab.start_ingress(site);
            lab.start_signpost(site);
        }
        lab.start_resolver();
        for site in Site::ALL {
            lab.wait_for("signpost", || {
                let r = lab.dig_direct(site, ZONE, "SOA");
                (r.status == "NOERROR").then_some(()).ok_or(r.brief())
            });
        }
        lab.wait_for("the corporate resolver", || {
            let r = lab.resolve_name(&format!("ns-a.{ZONE}"));
            (r.status == "NOERROR" && !r.answers.is_empty())
                .then_some(())
                .ok_or(r.brief())
        });
        Some(lab)
    }

    fn netns(&self, role: &str) -> String {
        self.net.netns(role)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.net.path(file)
    }

    fn write_configs(&self) {
        let d = self.net.dir.path().display().to_string();
        for site in Site::ALL {
            fs::create_dir_all(self.path(&format!("state-{}", site.name()))).expect("state dir");
        }
        // The delegated zone, served by both instances.
        self.net.write_signpost_zone(&Site::NETS);
        // One config for both instances; each overrides its addresses and state dir through
        // the environment (SIGNPOST__DNS__LISTEN, …) as a container deployment would.
        let mut conf = format!(
            "{}{}[[sites]]\nname = \"site-a\"\n[[sites]]\nname = \"site-b\"\n\n\
             [profiles.\"{APP}\"]\nmethod = \"weighted\"\nttl = {}\nmonitor = \"ingress\"\n",
            self.net.config_head(),
            netns::monitor_toml(),
            TTL.as_secs()
        );
        for (site, weight) in [(Site::A, WEIGHT_A), (Site::B, WEIGHT_B)] {
            conf.push_str(&format!(
                "\n[[profiles.\"{APP}\".endpoints]]\nname = \"{0}\"\nsite = \"{0}\"\n\
                 address = \"{1}\"\nweight = {weight}\n",
                site.name(),
                site.ingress()
            ));
        }
        fs::write(self.path("signpost.toml"), conf).expect("signpost.toml");

        // Unbound: stub zones for corp.example (BIND) and gslb.corp.example (both
        // signposts); the root hints point at the private root only.
        fs::write(
            self.path("root.hints"),
            format!(
                ".                3600000 IN NS ns.corp.example.\n\
                 ns.corp.example. 3600000 IN A  {}\n",
                netns::CORP_AUTH
            ),
        )
        .expect("root hints");
        fs::write(
            self.path("unbound.conf"),
            format!(
                "server:\n    interface: {}\n    port: 53\n    do-ip6: no\n\
                 \x20   access-control: 0.0.0.0/0 refuse\n    access-control: 198.18.1.0/24 allow\n\
                 \x20   username: \"\"\n    chroot: \"\"\n    directory: \"{d}\"\n\
                 \x20   pidfile: \"{d}/unbound.pid\"\n    use-syslog: no\n    logfile: \"\"\n\
                 \x20   verbosity: 1\n    num-threads: 1\n    module-config: \"iterator\"\n\
                 \x20   root-hints: \"{d}/root.hints\"\n    serve-expired: no\n    prefetch: no\n\
                 stub-zone:\n    name: \"corp.example\"\n    stub-addr: {}\n\
                 stub-zone:\n    name: \"{ZONE}\"\n    stub-addr: {}\n    stub-addr: {}\n\
                 remote-control:\n    control-enable: yes\n\
                 \x20   control-interface: \"{d}/unbound.ctl\"\n    control-use-cert: no\n",
                RESOLVER,
                netns::CORP_AUTH,
                Site::A.ns(),
                Site::B.ns()
            ),
        )
        .expect("unbound.conf");
    }

    fn start_signpost(&mut self, site: Site) {
        let state = self
            .path(&format!("state-{}", site.name()))
            .display()
            .to_string();
        let mut cmd = self.net.signpost(site.name(), &self.path("signpost.toml"));
        cmd.envs([
            ("SIGNPOST__DNS__LISTEN", format!("{}:53", site.ns())),
            ("SIGNPOST__ADMIN__LISTEN", format!("{}:8053", site.ns())),
            ("SIGNPOST__STATE__DIR", state),
        ]);
        self.net.spawn(&format!("signpost-{}", site.name()), cmd);
    }

    fn start_resolver(&mut self) {
        self.net.start_named();
        if self.resolver == Resolver::Unbound {
            self.wait_for("BIND (authoritative for corp.example)", || {
                let r = self.dig("corp", netns::CORP_AUTH, "corp.example", "SOA", &["+norec"]);
                (r.status == "NOERROR").then_some(()).ok_or(r.brief())
            });
            let conf = self.path("unbound.conf").display().to_string();
            let unbound = self
                .net
                .in_netns("corp", &unbound_tools().unbound, &["-d", "-c", &conf]);
            self.net.spawn("unbound", unbound);
        }
    }

    /// Polls `ready` until it succeeds, for at most 20 s; fails early if a process died.
    fn wait_for(&self, what: &str, ready: impl FnMut() -> Result<(), String>) {
        self.net.wait_for(what, ready);
    }

    // -- what the client and the operator do ----------------------------------------------

    /// `dig` from a namespace.
    fn dig(&self, role: &str, server: Ipv4Addr, name: &str, qtype: &str, extra: &[&str]) -> Reply {
        self.net.dig(role, server, name, qtype, extra)
    }

    /// Asks one signpost directly from the client, without recursion.
    fn dig_direct(&self, site: Site, name: &str, qtype: &str) -> Reply {
        self.dig("client", site.ns(), name, qtype, &["+norec"])
    }

    /// The client resolves a name through the corporate resolver; like a stub resolver it
    /// asks again once after 4 s without an answer.
    fn resolve_name(&self, name: &str) -> Reply {
        self.dig("client", RESOLVER, name, "A", &["+tries=2"])
    }

    fn resolve(&self) -> Reply {
        self.resolve_name(APP)
    }

    /// How many of `n` queries (+norec, straight to `site`'s signpost) answered each site.
    fn direct_counts(&self, site: Site, n: usize) -> [usize; 2] {
        let batch = self.path(&format!("batch-{}-{n}", site.name()));
        let line = format!("@{} {APP} A +norec +short +tries=2 +timeout=2\n", site.ns());
        fs::write(&batch, line.repeat(n)).expect("dig batch");
        let out = run_bounded(
            Command::new(&tools().ip)
                .args(["netns", "exec", &self.netns("client")])
                .arg(&tools().dig)
                .arg("-f")
                .arg(&batch),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut counts = [0; 2];
        for addr in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse::<Ipv4Addr>().ok())
        {
            match Site::of_ingress(addr) {
                Some(Site::A) => counts[0] += 1,
                Some(Site::B) => counts[1] += 1,
                None => panic!("{} answered {addr}, not an ingress", site.name()),
            }
        }
        counts
    }

    /// Drops the app name from the resolver's cache, so the next query reaches signpost.
    fn flush_resolver(&self) {
        match self.resolver {
            Resolver::Bind => self.net.flush_bind(APP),
            Resolver::Unbound => {
                let mut cmd = self
                    .net
                    .in_netns("corp", &unbound_tools().unbound_control, &[]);
                cmd.arg("-c")
                    .arg(self.path("unbound.conf"))
                    .args(["flush", APP]);
                self.net.run_ok("flushing the resolver's cache", &mut cmd);
            }
        }
    }

    /// Flushes and resolves until the resolver holds `site` in its cache (the answer a
    /// client gets for the next TTL), so a failover is measured from a cached `site`.
    fn prime_cache(&self, site: Site) {
        for _ in 0..40 {
            self.flush_resolver();
            if self.resolve().only_site() == Some(site) {
                return;
            }
        }
        panic!(
            "the resolver never answered {} in 40 fresh resolutions",
            site.name()
        );
    }

    /// Polls the signposts at `instances` directly until none answers `gone` any more (20
    /// queries each, so a weighted draw cannot hide it); returns when the last one stopped.
    fn detection(&self, instances: &[Site], gone: Site, t0: Instant, limit: Duration) -> Duration {
        let mut pending: Vec<Site> = instances.to_vec();
        while t0.elapsed() < limit {
            let now = t0.elapsed();
            pending.retain(|&ns| {
                let counts = self.direct_counts(ns, 20);
                let answered = counts[0] + counts[1];
                let still = if gone == Site::A {
                    counts[0]
                } else {
                    counts[1]
                };
                answered < 15 || still > 0
            });
            if pending.is_empty() {
                return now;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{pending:?} still answer {} after {limit:?}", gone.name());
    }

    /// The client fetches the app by name (its stub resolver asks the corporate resolver).
    fn fetch(&self) -> Result<String, String> {
        let out = run_bounded(
            Command::new(&tools().ip)
                .args(["netns", "exec", &self.netns("client")])
                .arg(&tools().curl)
                .args(["-4", "-sS", "--noproxy", "*", "--max-time", "10"])
                .arg(format!("http://{APP}/")),
            Duration::from_secs(15),
        )?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Runs the signpost CLI inside `site`'s namespace against that site's admin API.
    fn cli(&self, site: Site, args: &[&str]) -> Result<String, String> {
        let admin = site.admin_url();
        let token = self.path("admin.token").display().to_string();
        let out = run_bounded(
            common::command_in_netns(
                &tools().ip,
                &self.netns(site.name()),
                self.net.dir.path(),
                args,
            )
            .args(["--admin", &admin, "--token-file", &token])
            .env("NO_COLOR", "1"),
            Duration::from_secs(40),
        )?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    // -- failures --------------------------------------------------------------------------

    /// Starts (or restarts) `site`'s app.
    fn start_ingress(&mut self, site: Site) {
        self.ingress.start(&self.net, site.net());
    }

    /// Stops `site`'s app: its port refuses connections from now on.
    fn stop_ingress(&mut self, site: Site) {
        self.ingress.stop(site.net());
    }

    /// Takes `site`'s only link down, inside its namespace: its ingress and its signpost
    /// are unreachable from everywhere else.
    fn cut_off(&self, site: Site) {
        self.net.link(site.name(), false);
    }

    /// Polls the client until, for `SETTLE`, every answer through the resolver is `site`
    /// alone and every fetch of the app reaches `site`. Measures from `t0` to the first poll
    /// of that final run, and the slowest lookup on the way; panics after `limit`.
    fn wait_until_only(&self, site: Site, t0: Instant, limit: Duration) -> Failover {
        let mut streak: Option<Instant> = None;
        let mut history: Vec<String> = Vec::new();
        let mut others: Vec<Run> = Vec::new();
        let mut slowest = Duration::ZERO;
        while t0.elapsed() < limit {
            let now = Instant::now();
            let reply = self.resolve();
            slowest = slowest.max(now.elapsed());
            let outcome = if reply.only_site() != Some(site) {
                let kind = match reply.only_site() {
                    Some(s) => s.name().to_owned(),
                    None => reply.status.split(' ').next().unwrap_or("?").to_owned(),
                };
                Err((kind, reply.brief()))
            } else {
                match self.fetch() {
                    Ok(body) if body == site.name() => Ok(()),
                    Ok(body) => Err(("fetch-other".to_owned(), format!("fetch got {body:?}"))),
                    Err(e) => Err(("fetch-failed".to_owned(), format!("fetch failed: {e}"))),
                }
            };
            match outcome {
                Ok(()) => {
                    let since = *streak.get_or_insert(now);
                    if since.elapsed() >= SETTLE {
                        return Failover {
                            took: since - t0,
                            others,
                            slowest,
                        };
                    }
                }
                Err((kind, detail)) => {
                    streak = None;
                    history.push(format!("{:>6.2}s {detail}", (now - t0).as_secs_f64()));
                    let at = (now - t0).as_secs_f64();
                    match others.last_mut() {
                        Some(run) if run.kind == kind => {
                            run.count += 1;
                            run.last = at;
                        }
                        _ => others.push(Run {
                            kind,
                            count: 1,
                            first: at,
                            last: at,
                        }),
                    }
                }
            }
            std::thread::sleep(POLL);
        }
        let tail = history[history.len().saturating_sub(15)..].join("\n  ");
        panic!(
            "the client did not settle on {} alone within {limit:?}; last other outcomes:\n  {tail}",
            site.name()
        );
    }

    /// Polls (flushing the resolver's cache each time) until the client has seen both sites.
    fn wait_until_both(&self, limit: Duration) {
        let start = Instant::now();
        let mut seen = [false; 2];
        while start.elapsed() < limit {
            self.flush_resolver();
            match self.resolve().only_site() {
                Some(Site::A) => seen[0] = true,
                Some(Site::B) => seen[1] = true,
                None => {}
            }
            if seen == [true, true] {
                return;
            }
            std::thread::sleep(POLL);
        }
        panic!("the client did not see both sites again within {limit:?} (seen {seen:?})");
    }
}

/// saw before, in order.
struct Failover {
    took: Duration,
    others: Vec<Run>,
    /// The longest the client waited for one lookup through the resolver (a dead name
    /// server costs the resolver retries; the client may retry too).
    slowest: Duration,
}

/// Consecutive polls with the same unwanted outcome: the other site, SERVFAIL, TIMEOUT
/// (no answer within dig's 4 s), a failed fetch; seconds after the failure.
struct Run {
    kind: String,
    count: usize,
    first: f64,
    last: f64,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.count == 1 {
            write!(f, "{} at {:.1} s", self.kind, self.first)
        } else {
            write!(
                f,
                "{} ×{} ({:.1}–{:.1} s)",
                self.kind, self.count, self.first, self.last
            )
        }
    }
}

/// Writes a measured failover to stderr, past the test harness's capture.
fn report(
    scenario: &str,
    resolver: Resolver,
    event: &str,
    detected: Duration,
    f: &Failover,
    formula: Duration,
) {
    let others: Vec<String> = f.others.iter().map(Run::to_string).collect();
    let _ = writeln!(
        io::stderr(),
        "e2e-failover: scenario {scenario} ({event}) via {}: signpost stopped answering \
         site-a after {:.1} s; the client resolves and fetches only site-b after {:.1} s \
         (formula {:.1} s; interval {}, timeout {}, tolerated_failures {TOLERATED_FAILURES}, \
         rise {RISE}, ttl {} s; site-a cached at the failure); slowest lookup {:.1} s; \
         before that the client got: {}",
        resolver.name(),
        detected.as_secs_f64(),
        f.took.as_secs_f64(),
        formula.as_secs_f64(),
        humantime::format_duration(INTERVAL),
        humantime::format_duration(PROBE_TIMEOUT),
        TTL.as_secs(),
        f.slowest.as_secs_f64(),
        if others.is_empty() {
            "nothing else".to_owned()
        } else {
            others.join(", ")
        }
    );
}

// ---------------------------------------------------------------------------------------
// Scenarios.

/// Detection within the worst case and failover within `formula` (detection + TTL + …),
/// each plus [`LOAD_SLACK`].
fn assert_within(detected: Duration, f: &Failover, formula: Duration) {
    assert!(
        detected <= detection_worst() + LOAD_SLACK,
        "detection took {detected:?}, more than {:?} + {LOAD_SLACK:?}",
        detection_worst()
    );
    assert!(
        f.took <= formula + LOAD_SLACK,
        "failover took {:?}, more than {formula:?} (detection + TTL …) + {LOAD_SLACK:?}",
        f.took
    );
}

/// Measures a failover away from site-a that started at `t0`: when the signposts at
/// `instances` stopped answering site-a (polled directly), and when the client settled on
/// site-b (through the resolver), polled side by side.
fn measure_failover(
    lab: &Lab,
    instances: &[Site],
    t0: Instant,
    limit: Duration,
) -> (Duration, Failover) {
    std::thread::scope(|s| {
        let detected = s.spawn(|| lab.detection(instances, Site::A, t0, limit));
        let f = lab.wait_until_only(Site::B, t0, limit);
        (detected.join().expect("detection poll"), f)
    })
}

/// (1) Both sites up: each signpost answers by weight, and the resolver hands the client
/// an answer it caches for the TTL; fresh answers come in the same proportion.
fn both_sites_answer_by_weight(resolver: Resolver) {
    let Some(lab) = Lab::start(resolver) else {
        return;
    };
    let n = 200;
    let expected = f64::from(WEIGHT_A) / f64::from(WEIGHT_A + WEIGHT_B);
    for site in Site::ALL {
        let [a, b] = lab.direct_counts(site, n);
        eprintln!("{} direct: site-a {a}, site-b {b} of {n}", site.name());
        assert_eq!(a + b, n, "{}: every query answers one ingress", site.name());
        let share = a as f64 / n as f64;
        // 200 draws at p = 0.75: one standard deviation is 0.031; this is ±4.9 of them.
        assert!(
            (share - expected).abs() < 0.15,
            "{}: site-a got {share:.2} of the answers, expected {expected:.2}",
            site.name()
        );
    }

    // The resolver caches the answer for its TTL: repeated queries get the same one.
    lab.flush_resolver();
    let first = lab.resolve();
    let site = first
        .only_site()
        .unwrap_or_else(|| panic!("through {}: {}", resolver.name(), first.brief()));
    for _ in 0..5 {
        let r = lab.resolve();
        assert_eq!(
            r.only_site(),
            Some(site),
            "cached answer changed: {}",
            r.brief()
        );
        assert!(
            r.answers[0].0 <= TTL.as_secs() as u32,
            "TTL above the profile's: {r:?}"
        );
    }

    // With the cache flushed each time, the resolver's answers follow the weights too.
    let mut counts = [0usize; 2];
    for _ in 0..40 {
        lab.flush_resolver();
        match lab.resolve().only_site() {
            Some(Site::A) => counts[0] += 1,
            Some(Site::B) => counts[1] += 1,
            None => {}
        }
    }
    eprintln!(
        "through {}: site-a {}, site-b {}",
        resolver.name(),
        counts[0],
        counts[1]
    );
    assert_eq!(
        counts[0] + counts[1],
        40,
        "every resolution answers one ingress"
    );
    assert!(
        counts[1] >= 1 && counts[0] > counts[1],
        "expected both sites, site-a about 3× as often: {counts:?}"
    );

    let body = lab.fetch().expect("the client fetches the app");
    assert!(
        body == "site-a" || body == "site-b",
        "app answered {body:?}"
    );
}

/// (2) site-a's app stops: both signposts see its probes fail and answer site-b only;
/// within detection + TTL the client resolves and fetches site-b only. When the app
/// comes back, site-a is answered again.
fn ingress_down_fails_over(resolver: Resolver) {
    let Some(mut lab) = Lab::start(resolver) else {
        return;
    };
    lab.prime_cache(Site::A);
    let t0 = Instant::now();
    lab.stop_ingress(Site::A);
    let formula = detection_worst() + TTL;
    let limit = formula + LOAD_SLACK + SETTLE + Duration::from_secs(30);
    let (detected, f) = measure_failover(&lab, &Site::ALL, t0, limit);
    report(
        "2",
        resolver,
        "site-a's ingress stopped",
        detected,
        &f,
        formula,
    );
    assert_within(detected, &f, formula);

    // The app comes back: after `rise` good probes both sites are answered again.
    lab.start_ingress(Site::A);
    lab.wait_until_both(detection_worst() + TTL + LOAD_SLACK);
}

/// (3) site-a is cut off (link down): its ingress and its signpost are unreachable. The
/// resolver gets no answer from ns-a and moves to ns-b, whose probes of site-a fail.
fn site_cut_off_fails_over(resolver: Resolver) {
    let Some(lab) = Lab::start(resolver) else {
        return;
    };
    lab.prime_cache(Site::A);
    let t0 = Instant::now();
    lab.cut_off(Site::A);
    // Plus the resolver's time on the dead server: query timeouts before it retries the
    // other NS, usually well under a second for a server that used to answer fast.
    let formula = detection_worst() + TTL + DEAD_NS;
    let limit = formula + LOAD_SLACK + SETTLE + Duration::from_secs(40);
    let (detected, f) = measure_failover(&lab, &[Site::B], t0, limit);
    report("3", resolver, "site-a cut off", detected, &f, formula);
    let dead = lab.dig_direct(Site::A, ZONE, "SOA");
    assert!(
        dead.status.starts_with("TIMEOUT"),
        "site-a's signpost should be unreachable, got {}",
        dead.brief()
    );
    assert_within(detected, &f, formula);
}

/// (4) The operator drains site-b on both instances with the CLI; clients get site-a.
/// Undraining brings site-b back.
fn drain_with_cli(resolver: Resolver) {
    let Some(lab) = Lab::start(resolver) else {
        return;
    };
    for site in Site::ALL {
        lab.wait_for("the admin API", || lab.cli(site, &["status"]).map(|_| ()));
    }
    lab.prime_cache(Site::B);
    let t0 = Instant::now();
    for site in Site::ALL {
        let out = lab
            .cli(
                site,
                &[
                    "drain",
                    "--site",
                    "site-b",
                    "--reason",
                    "e2e: maintenance of site-b",
                ],
            )
            .unwrap_or_else(|e| panic!("drain on {}: {e}", site.name()));
        eprintln!("drain on {}: {}", site.name(), out.trim());
    }
    let took = lab
        .wait_until_only(
            Site::A,
            t0,
            TTL + SETTLE + LOAD_SLACK + Duration::from_secs(20),
        )
        .took;
    let _ = writeln!(
        io::stderr(),
        "e2e-drain: via {}: after `signpost drain --site site-b` on both instances the client \
         resolves and fetches only site-a after {:.1} s (ttl {} s; site-b cached at the drain)",
        resolver.name(),
        took.as_secs_f64(),
        TTL.as_secs()
    );
    assert!(
        took <= TTL + LOAD_SLACK,
        "drain took {took:?}, more than the TTL"
    );
    for site in Site::ALL {
        let status = lab.cli(site, &["status", "--json"]).expect("status");
        assert!(
            status.contains("e2e: maintenance of site-b"),
            "{}'s status does not show the drain:\n{status}",
            site.name()
        );
        lab.cli(site, &["undrain", "--site", "site-b"])
            .unwrap_or_else(|e| panic!("undrain on {}: {e}", site.name()));
    }
    lab.wait_until_both(Duration::from_secs(20));
}

/// One test per scenario and corporate resolver.
macro_rules! per_resolver {
    ($($test:ident: $scenario:ident with $resolver:ident;)*) => {
        $(
            #[test]
            fn $test() {
                $scenario(Resolver::$resolver);
            }
        )*
    };
}

per_resolver! {
    bind_both_sites_answer_by_weight: both_sites_answer_by_weight with Bind;
    bind_ingress_down_fails_over: ingress_down_fails_over with Bind;
    bind_site_cut_off_fails_over: site_cut_off_fails_over with Bind;
    bind_drain_site_b_with_cli: drain_with_cli with Bind;
    unbound_drain_site_b_with_cli: drain_with_cli with Unbound;
    unbound_both_sites_answer_by_weight: both_sites_answer_by_weight with Unbound;
    unbound_ingress_down_fails_over: ingress_down_fails_over with Unbound;
    unbound_site_cut_off_fails_over: site_cut_off_fails_over with Unbound;
}
