//! Loading everything a server needs (config, zones) into a snapshot, and running it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::admin::{AdminState, Command, ReloadDone, ReloadError};
use crate::drain::{AuditEntry, Drains, audit, rfc3339};
use crate::snapshot::ReloadReport;

use crate::cluster::{
    Cluster, ClusterKey, ClusterOptions, DrainSet, HealthMode, KeyError, StartError,
};
use crate::config::{Config, Problems};
use crate::dns::server;
use crate::health::{Prober, Scheduler, SchedulerOptions};
use crate::publisher::{ClusterLink, Event, Publisher, PublisherOptions};
use crate::snapshot::{Shared, Snapshot};
use crate::zone;

/// Exit status for configuration errors (EX_USAGE).
pub const EXIT_CONFIG: i32 = 64;

/// A validated config and the snapshot compiled from it.
pub struct Loaded {
    pub config: Config,
    pub snapshot: Snapshot,
}

/// Reads and validates the config and every zone file; every problem is reported.
pub fn load(path: &Path, generation: u64) -> Result<Loaded, Problems> {
    let (config, mut problems) = Config::read(path, None);
    let zones = zone::load_dir(&config.zones.dir, &mut problems);
    if let Err(e) = admin_token(&config) {
        problems.push(crate::config::Problem::new(
            path,
            "admin.token_file",
            e.to_string(),
        ));
    }
    // The model's checks (names that must exist, addresses, zones) run even after
    // problems in single values, so that one `check` reports every problem.
    let model = match crate::model::compile(&config, zones, generation) {
        Ok(mut model) if problems.is_empty() => {
            model.fingerprint = fingerprint(&config);
            model
        }
        Ok(_) => return Err(problems),
        Err(more) => {
            let omitted = more.omitted();
            for p in more.0 {
                // A key already reported bad is not blamed again as a consequence.
                let echo = !p.location.is_empty()
                    && problems.0.iter().any(|q| {
                        q.file == p.file
                            && !q.location.is_empty()
                            && p.location.starts_with(&q.location)
                    });
                if !echo {
                    problems.push(p);
                }
            }
            problems.add_omitted(omitted);
            return Err(problems);
        }
    };
    let snapshot = crate::status::initial_snapshot(Arc::new(model));
    Ok(Loaded { config, snapshot })
}

/// A digest of what decides answers — sites, monitors, profiles, geography and every
/// zone file — leaving out what is naturally per instance (listen addresses, state
/// directory, `[cluster]`): the instances of a cluster compare it to see that they
/// serve the same config. SHA-256, first 16 hex digits.
fn fingerprint(config: &Config) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let answers = serde_json::json!({
        "sites": config.sites,
        "monitors": config.monitors,
        "profiles": config.profiles,
        "geo": config.geo,
    });
    ctx.update(answers.to_string().as_bytes());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&config.zones.dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        // The files `zone::load_dir` serves: regular ones (reading a FIFO would block).
        .filter(|p| p.extension().is_some_and(|e| e == "zone") && p.is_file())
        .collect();
    files.sort();
    for f in files {
        ctx.update(f.file_name().unwrap_or_default().as_encoded_bytes());
        ctx.update(&std::fs::read(&f).unwrap_or_default());
    }
    ctx.finish().as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why `serve` could not join the cluster `[cluster]` describes.
#[derive(Debug, thiserror::Error)]
enum JoinError {
    #[error("cluster.node is not set and the host name cannot be read; set cluster.node")]
    NoNode,
    #[error("cluster.listen = {0:?} is not an address")]
    Listen(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot restore cluster drains from {}: {source}", dir.display())]
    Drains {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Joins the cluster `[cluster]` describes.
async fn start_cluster(
    spec: &crate::config::cluster::ClusterSpec,
    state_dir: &Path,
) -> Result<(Arc<Cluster>, ClusterLink), JoinError> {
    let node = spec.node_name().ok_or(JoinError::NoNode)?;
    let site = spec.site_name().unwrap_or_else(|| node.clone());
    let listen = spec
        .listen_addr()
        .ok_or_else(|| JoinError::Listen(spec.listen.clone()))?;
    let key = match &spec.key_file {
        Some(p) => ClusterKey::load(p)?,
        None => ClusterKey::insecure_default(),
    };
    let (drains, warnings) = DrainSet::load(state_dir).map_err(|source| JoinError::Drains {
        dir: state_dir.to_path_buf(),
        source,
    })?;
    for w in warnings {
        warn!("{w}");
    }
    let mut opts = ClusterOptions::new(node.clone(), listen, key);
    opts.peers = spec.peers.clone();
    opts.gossip_interval = spec.gossip_interval.0;
    opts.drains = drains;
    let cluster = Arc::new(Cluster::start(opts).await?);
    let mode = match spec.health {
        crate::config::cluster::ClusterHealth::Majority => HealthMode::Majority,
        crate::config::cluster::ClusterHealth::Local => HealthMode::Local,
    };
    info!(node, site, %listen, peers = spec.peers.len(), ?mode, "cluster joined");
    let link = ClusterLink::new(cluster.clone(), mode, site);
    Ok((cluster, link))
}

/// The admin bearer token, if configured; an error when it is needed and missing.
pub fn admin_token(config: &Config) -> Result<Option<String>, crate::admin::TokenError> {
    let token = match &config.admin.token_file {
        Some(p) => Some(crate::admin::read_token(p)?),
        None => None,
    };
    if let Some(addr) = config.admin_listen {
        crate::admin::check_listen(addr, token.as_deref())?;
    }
    Ok(token)
}

/// `signpost check`: prints every problem; returns the exit status.
pub fn check(path: &Path) -> i32 {
    match load(path, 1) {
        Ok(l) => {
            println!(
                "{}: OK ({} zone(s), {} profile(s))",
                path.display(),
                l.snapshot.zones().len(),
                l.config.profiles.len()
            );
            0
        }
        Err(problems) => {
            eprintln!("{problems}");
            eprintln!("{}: {} error(s)", path.display(), problems.len());
            EXIT_CONFIG
        }
    }
}

/// `signpost serve`: validates, binds, serves until SIGTERM/SIGINT. Returns the exit status.
pub fn serve(path: &Path) -> i32 {
    let loaded = match load(path, 1) {
        Ok(l) => l,
        Err(problems) => {
            // Through the log, so that `--log-format json` is JSON from the first line.
            for p in &problems.0 {
                error!(file = %p.file.display(), key = %p.location, "{p}");
            }
            error!(
                "{}: {} error(s); not starting",
                path.display(),
                problems.len()
            );
            return EXIT_CONFIG;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("signpost-rt")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(run(loaded, path.to_path_buf()))
}

/// The signals `serve` handles: SIGHUP (reload), SIGTERM and SIGINT (stop).
const HANDLED_SIGNALS: [libc::c_int; 3] = [libc::SIGHUP, libc::SIGTERM, libc::SIGINT];

fn mask_signals(how: libc::c_int) {
    // SAFETY: sigemptyset/sigaddset fill a local set; pthread_sigmask changes only the
    // calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in HANDLED_SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// Holds back SIGHUP, SIGTERM and SIGINT on the calling thread and every thread it starts
/// from now on, until [`unblock_signals`]. `main` calls it first thing, so that a signal
/// that comes while the server starts (a large zone can take a while to load) waits for
/// its handler instead of killing the process with the default action.
pub fn block_signals() {
    mask_signals(libc::SIG_BLOCK);
}

/// Lets SIGHUP, SIGTERM and SIGINT through on the calling thread again (those that came
/// meanwhile are delivered now).
pub fn unblock_signals() {
    mask_signals(libc::SIG_UNBLOCK);
}

/// The handled signals' streams, installed before they are let through.
struct Signals {
    hup: Option<tokio::signal::unix::Signal>,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers, then lets the signals through on this thread (the one
    /// `serve` runs on; the runtime's threads keep them blocked). A signal held back
    /// since the start is delivered to its stream now.
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let hup = match signal(SignalKind::hangup()) {
            Ok(h) => Some(h),
            Err(e) => {
                warn!(error = %e, "no SIGHUP handler; reload with the API");
                None
            }
        };
        let term = signal(SignalKind::terminate())?;
        let int = signal(SignalKind::interrupt())?;
        unblock_signals();
        Ok(Self { hup, term, int })
    }
}

async fn run(loaded: Loaded, config_path: PathBuf) -> i32 {
    let Loaded { config, snapshot } = loaded;
    // Before anything answers (and before the signals held back since the start are let
    // through): a SIGTERM that comes as soon as DNS is served stops the server cleanly.
    let Signals {
        hup,
        mut term,
        mut int,
    } = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot install the SIGTERM and SIGINT handlers");
            return 1;
        }
    };
    let config = release_parsed_profiles(config);
    let metrics_handle = crate::metrics::install();
    crate::metrics::loaded(SystemTime::now());
    for z in snapshot.zones() {
        info!(zone = %z.origin, file = %z.file.display(), names = z.nodes.len(), "zone loaded");
    }
    let drains = match Drains::load(&config.state.dir, SystemTime::now()) {
        Ok((d, warnings)) => {
            for w in warnings {
                warn!("{w}");
            }
            d
        }
        Err(e) => {
            error!("cannot restore drains: {e}");
            return 1;
        }
    };
    match crate::drain::repair_audit(&config.state.dir) {
        Ok(0) => {}
        Ok(cut) => warn!(
            file = %crate::drain::audit_path(&config.state.dir).display(),
            bytes = cut,
            "the audit log ended with a partial line (a write cut short by a crash or a full disk); cut it off"
        ),
        Err(e) => warn!(
            file = %crate::drain::audit_path(&config.state.dir).display(),
            error = %e,
            "cannot check the end of the audit log"
        ),
    }
    if !drains.is_empty() {
        info!(
            sites = drains.sites.len(),
            endpoints = drains.endpoints.len(),
            "drains restored"
        );
    }
    let token = match admin_token(&config) {
        Ok(t) => t,
        Err(e) => {
            error!("{e}");
            return EXIT_CONFIG;
        }
    };
    // Before any socket: every TCP client and probe holds a descriptor.
    let open_files = raise_open_files_limit();
    let shared: Shared = Arc::new(ArcSwap::from_pointee(snapshot));
    let stop = Arc::new(AtomicBool::new(false));
    let per_addr = match config.dns.udp_sockets {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };

    // Bind everything first, so a busy port fails the start before anything serves.
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for &addr in &config.dns_listen {
        match server::bind_udp(addr, per_addr) {
            Ok(socks) => {
                let bound = socks[0].local_addr().unwrap_or(addr);
                server::log_listen("udp", bound, socks.len());
                udp.extend(socks);
            }
            Err(e) => {
                error!(%addr, error = %e, "cannot bind UDP (dns.listen); is another server on that port?");
                return 1;
            }
        }
        match server::bind_tcp(addr).and_then(tokio::net::TcpListener::from_std) {
            Ok(l) => {
                server::log_listen("tcp", l.local_addr().unwrap_or(addr), 1);
                tcp.push(l);
            }
            Err(e) => {
                error!(%addr, error = %e, "cannot bind TCP (dns.listen); is another server on that port?");
                return 1;
            }
        }
    }
    let admin_addr = config.admin_listen.expect("validated at load");
    let admin_listener = match tokio::net::TcpListener::bind(admin_addr).await {
        Ok(l) => l,
        Err(e) => {
            error!(addr = %admin_addr, error = %e, "cannot bind the admin API (admin.listen); is another process on that port?");
            return 1;
        }
    };
    info!(addr = %admin_listener.local_addr().unwrap_or(admin_addr), token = token.is_some(), "admin API listening");

    // The first snapshot DNS answers from already holds the restored drains: a drained
    // endpoint is not answered for a moment after a restart.
    let model = shared.load().model.clone();
    let mut publisher = Publisher::new(model.clone(), shared.clone(), PublisherOptions::default())
        .with_drains(drains, config.state.dir.clone(), SystemTime::now());
    let mut cluster = None;
    if let Some(spec) = &config.cluster {
        match start_cluster(spec, &config.state.dir).await {
            Ok((c, link)) => {
                let mode = link.mode();
                publisher = publisher.with_cluster(link, SystemTime::now());
                cluster = Some((c, mode));
            }
            Err(e) => {
                error!("cannot join the cluster: {e}");
                return 1;
            }
        }
    }
    publisher.publish(SystemTime::now());

    let mut threads = Vec::new();
    // One limiter for every UDP socket: the kernel spreads a client's queries over them.
    let rate_limit = crate::dns::ratelimit::RateLimiter::new(config.dns.rate_limit).map(Arc::new);
    if rate_limit.is_some() {
        info!(
            per_second = config.dns.rate_limit,
            "UDP answers limited per client /24 (IPv6 /56)"
        );
    }
    for (i, sock) in udp.into_iter().enumerate() {
        let (s, st, rl) = (shared.clone(), stop.clone(), rate_limit.clone());
        let t = std::thread::Builder::new()
            .name(format!("signpost-udp-{i}"))
            .spawn(move || server::udp_loop(sock, s, st, rl));
        match t {
            Ok(t) => threads.push(t),
            Err(e) => {
                error!(error = %e, "cannot start a UDP thread");
                return 1;
            }
        }
    }
    let mut tasks = Vec::new();
    let tcp_table = Arc::new(server::TcpTable::new(server::TcpLimits::from_config(
        &config.dns,
    )));
    for l in tcp {
        tasks.push(tokio::spawn(server::tcp_accept_loop(
            l,
            shared.clone(),
            tcp_table.clone(),
        )));
    }

    // The publisher is the only writer of `shared` from here on: probe results, drains
    // and reloads all reach it as events.
    let (events, events_rx) = mpsc::channel::<Event>(4096);
    let publisher_task = tokio::spawn(publisher.run(events_rx, SystemTime::now()));
    if let Some(c) = &cluster {
        let mut changes = c.0.subscribe();
        let events = events.clone();
        tasks.push(tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                if events.send(Event::Cluster).await.is_err() {
                    return;
                }
            }
        }));
    }
    let prober = Arc::new(Prober::new());
    let options = SchedulerOptions::for_open_files(open_files);
    let probe_rt = match crate::health::scheduler::probe_runtime() {
        Ok(h) => h,
        Err(e) => {
            error!("cannot start the probe thread: {e}");
            return 1;
        }
    };
    let scheduler = Scheduler::start_on(
        &probe_rt,
        model.clone(),
        prober.clone(),
        events.clone(),
        options,
    );
    let endpoints: usize = model.profiles.iter().map(|p| p.endpoints.len()).sum();
    info!(
        targets = scheduler.targets(),
        endpoints,
        max_concurrent = options.max_concurrent,
        "probing"
    );

    let (commands, commands_rx) = mpsc::channel::<Command>(64);
    let token_cell = Arc::new(arc_swap::ArcSwapOption::from(token.map(Arc::new)));
    let admin_spec = config.admin.clone();
    let controller = Controller {
        token: token_cell.clone(),
        config_path,
        config,
        events: events.clone(),
        prober,
        scheduler: Some(scheduler),
        scheduler_options: options,
        probe_rt,
        shared: shared.clone(),
    };
    let controller_task = tokio::spawn(controller.run(commands_rx, commands.clone(), hup));
    let admin_state = Arc::new(AdminState {
        snapshot: shared.clone(),
        commands,
        token: token_cell,
        metrics: metrics_handle.clone(),
        cluster: cluster.clone(),
        options: crate::admin::AdminOptions::from_spec(&admin_spec),
    });
    tasks.push(tokio::spawn(crate::admin::serve(
        admin_listener,
        admin_state,
    )));
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            metrics_handle.run_upkeep();
        }
    }));

    info!(generation = shared.load().generation(), "signpost serving");

    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    info!("shutting down");
    controller_task.abort();
    drop(events);
    publisher_task.abort();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    for t in threads {
        while !t.is_finished() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    info!("stopped");
    0
}

/// The compiled model holds everything serving needs from profiles and monitors; their
/// parsed form is large (about 20 MB at 10,000 profiles × 3 endpoints) and parsing peaked
/// far higher. Drops it and hands the freed heap back to the system (issue 6: RSS).
fn release_parsed_profiles(mut config: Config) -> Config {
    config.profiles = Default::default();
    config.monitors = Default::default();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; no pointer changes.
    unsafe {
        libc::malloc_trim(0);
    }
    config
}

/// Handles admin commands: drains go straight to the publisher; reloads (from the API or
/// SIGHUP) load and validate the new config here, off the publisher, then hand it over
/// and restart probing for the new generation.
struct Controller {
    config_path: PathBuf,
    /// The config being served.
    config: Config,
    events: mpsc::Sender<Event>,
    prober: Arc<Prober>,
    scheduler: Option<Scheduler>,
    scheduler_options: SchedulerOptions,
    probe_rt: tokio::runtime::Handle,
    shared: Shared,
    /// The admin API's bearer token: read again from `admin.token_file` on every reload.
    token: Arc<arc_swap::ArcSwapOption<String>>,
}

impl Controller {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        own: mpsc::Sender<Command>,
        mut hup: Option<tokio::signal::unix::Signal>,
    ) {
        drop(own);
        loop {
            let cmd = tokio::select! {
                c = commands.recv() => match c { Some(c) => c, None => return },
                _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => {
                    let (reply, _) = oneshot::channel();
                    Command::Reload { caller: "SIGHUP".to_owned(), reply }
                }
            };
            match cmd {
                Command::Reload { caller, reply } => {
                    let r = self.reload(&caller).await;
                    let _ = reply.send(r);
                }
                Command::Writer(cmd) => {
                    if self.events.send(Event::Command(cmd)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn reload(&mut self, caller: &str) -> Result<ReloadDone, ReloadError> {
        let generation = self.shared.load().generation() + 1;
        let path = self.config_path.clone();
        let loaded = tokio::task::spawn_blocking(move || load(&path, generation))
            .await
            .map_err(|e| ReloadError::Task(e.to_string()))?;
        let time = rfc3339(SystemTime::now());
        let result = match loaded {
            Err(problems) => {
                let message = problems.to_string();
                error!(
                    caller,
                    "reload rejected, still serving generation {}:\n{message}",
                    generation - 1
                );
                let report = ReloadReport {
                    time,
                    ok: false,
                    generation: generation - 1,
                    message: message.clone(),
                };
                let (done, wait) = oneshot::channel();
                if self
                    .events
                    .send(Event::ReloadFailed { report, done })
                    .await
                    .is_ok()
                {
                    // Answer once status shows the failure.
                    let _ = wait.await;
                }
                Err(ReloadError::Rejected {
                    serving: generation - 1,
                    problems: message,
                })
            }
            Ok(Loaded { config, snapshot }) => {
                let restart = restart_needed(&self.config, &config);
                let model = snapshot.model.clone();
                let (done, wait) = oneshot::channel();
                let report = ReloadReport {
                    time,
                    ok: true,
                    generation,
                    message: restart.clone(),
                };
                if self
                    .events
                    .send(Event::NewModel {
                        model: model.clone(),
                        report,
                        done,
                    })
                    .await
                    .is_err()
                {
                    return Err(ReloadError::ShuttingDown);
                }
                let _ = wait.await;
                if let Some(old) = self.scheduler.take() {
                    old.stop();
                }
                self.scheduler = Some(Scheduler::start_on(
                    &self.probe_rt,
                    model,
                    self.prober.clone(),
                    self.events.clone(),
                    self.scheduler_options,
                ));
                // `load` read and checked the token file.
                let token = admin_token(&config).ok().flatten();
                let token_changed = self.token.load().as_deref() != token.as_ref();
                if token_changed {
                    self.token.store(token.map(Arc::new));
                    info!(caller, "the admin token changed: the new one is in force");
                }
                self.config = release_parsed_profiles(config);
                crate::metrics::loaded(SystemTime::now());
                info!(caller, generation, "reloaded");
                let mut message = format!("reloaded: serving generation {generation}");
                if token_changed {
                    message.push_str("; the admin token changed: the old one no longer works");
                }
                if !restart.is_empty() {
                    message.push_str(&format!("; {restart}"));
                }
                Ok(ReloadDone {
                    generation,
                    message,
                })
            }
        };
        let entry = AuditEntry {
            time: rfc3339(SystemTime::now()),
            caller: caller.to_owned(),
            action: "reload".to_owned(),
            target: self.config_path.display().to_string(),
            reason: String::new(),
            result: match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!(
                    "error: {}",
                    e.to_string().lines().next().unwrap_or_default()
                ),
            },
        };
        if let Err(e) = audit(&self.config.state.dir, &entry) {
            error!(error = %e, "cannot write the audit log");
        }
        result
    }
}

/// Settings a reload cannot apply to a running server.
fn restart_needed(old: &Config, new: &Config) -> String {
    let mut keys = Vec::new();
    if old.dns != new.dns {
        keys.push("dns");
    }
    // The token file is read again on every reload; the listener and its limits need a
    // restart.
    for (key, changed) in [
        ("admin.listen", old.admin.listen != new.admin.listen),
        (
            "admin.allowed_hosts",
            old.admin.allowed_hosts != new.admin.allowed_hosts,
        ),
        (
            "admin.max_connections",
            old.admin.max_connections != new.admin.max_connections,
        ),
        (
            "admin.request_timeout",
            old.admin.request_timeout != new.admin.request_timeout,
        ),
    ] {
        if changed {
            keys.push(key);
        }
    }
    if old.state != new.state {
        keys.push("state.dir");
    }
    if keys.is_empty() {
        String::new()
    } else {
        format!("changes to {} take effect after a restart", keys.join(", "))
    }
}

/// Raises the soft limit on open files to the hard limit (every probe and TCP client holds
/// a socket, and the usual soft limit of 1024 is low for a server); returns the soft limit
/// now in force.
fn raise_open_files_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}
