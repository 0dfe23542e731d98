//! When is each target probed? Every distinct target (`Model::targets`) once per its
//! interval, however many endpoints share it.
//!
//! First probes are spread over the interval by a deterministic offset from the target's
//! index (a golden-ratio sequence, so any number of targets is spread evenly) instead of
//! all firing at start. A target has one probe in flight at a time, except while a failure
//! is being confirmed: then its confirmation probes start every `retry_interval` without
//! waiting for each other, and the results are applied in the order the probes started
//! ([`Pace`]). At most `max_concurrent` probes run at once; a probe waiting for a slot has
//! not started, so its `timeout` does not run. Probes run on the async runtime and only
//! talk to the publisher through a channel: nothing here can block the DNS path. A
//! scheduler belongs to one config generation and stops when dropped (or on
//! [`Scheduler::stop`]), so a reload starts a new one.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use tokio::runtime::Handle;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::hysteresis::Hysteresis;
use super::probe::{Check, ProbeOutcome};
use crate::base::Status;
use crate::model::{Model, ProbeTarget};

/// One probe's result, as sent to the publisher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// The config generation whose targets were probed; results of other generations are
    /// ignored.
    pub generation: u64,
    /// Index into `Model::targets`.
    pub target: u32,
    /// When the probe started (wall clock, for the status API).
    pub at: SystemTime,
    pub outcome: ProbeOutcome,
}

/// What the scheduler tells the publisher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeEvent {
    /// A probe finished and its result counts ([`Pace`]).
    Done(ProbeResult),
    /// A steady probe of a target has had no answer for `retry_interval` (shorter than
    /// its `timeout`): the target is in doubt until its next counted result, and its
    /// profiles answer with the short TTL (docs/health.md, "Health-aware TTL").
    Overdue {
        /// The config generation whose target it is.
        generation: u64,
        /// Index into `Model::targets`.
        target: u32,
        /// When the unanswered probe started (wall clock).
        since: SystemTime,
    },
}

impl From<ProbeResult> for ProbeEvent {
    fn from(r: ProbeResult) -> Self {
        ProbeEvent::Done(r)
    }
}

/// Scheduler limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SchedulerOptions {
    /// Probes in flight at once (each holds a socket). A target has one probe in flight
    /// at a time, at most `tolerated_failures` while a failure is being confirmed, so this
    /// only matters with many slow or hung targets: each holds a slot for up to its
    /// `timeout`, and healthy targets wait behind them once the slots are gone. Default
    /// 1024.
    pub max_concurrent: usize,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            max_concurrent: 1024,
        }
    }
}

impl SchedulerOptions {
    /// Limits for a process that may have `open_files` descriptors: a quarter of them for
    /// probes, between 64 and 4096.
    pub(crate) fn for_open_files(open_files: u64) -> Self {
        Self {
            max_concurrent: (open_files / 4).clamp(64, 4096) as usize,
        }
    }
}

/// Results on their way to the publisher. A result that can change a status is sent at
/// once; a success that only confirms one (the steady state of a healthy target) waits up
/// to [`BATCH_DELAY`] to go with others, so that thousands of probes a second wake the
/// publisher a few times a second, not thousands. One task sends them all, in order, so
/// a target's results never overtake each other.
#[derive(Default)]
struct Outbox {
    pending: Mutex<Vec<ProbeEvent>>,
    urgent: Notify,
    closed: AtomicBool,
}

/// How long a routine success may wait before it reaches the publisher.
pub(crate) const BATCH_DELAY: Duration = Duration::from_millis(100);

impl Outbox {
    /// Queues `event`; `false` once the publisher is gone.
    fn put(&self, event: ProbeEvent, urgent: bool) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
        if urgent {
            self.urgent.notify_one();
        }
        true
    }

    /// Sends queued results to `results` at once when one is urgent, else every
    /// [`BATCH_DELAY`].
    async fn forward<T: From<ProbeEvent>>(self: Arc<Self>, results: mpsc::Sender<T>) {
        let mut tick = tokio::time::interval(BATCH_DELAY);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                _ = self.urgent.notified() => {}
                _ = tick.tick() => {}
            }
            std::mem::swap(
                &mut batch,
                &mut self.pending.lock().unwrap_or_else(|e| e.into_inner()),
            );
            for r in batch.drain(..) {
                if results.send(r.into()).await.is_err() {
                    self.closed.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

/// Starts the runtime that probes run on: one thread of its own ("signpost-probe") with a
/// single-threaded scheduler, so probing never competes with the DNS threads for more
/// than one core and pays for no work stealing between threads. It lives as long as the
/// process.
pub(crate) fn probe_runtime() -> std::io::Result<Handle> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("signpost-probe".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

/// The probing of one config generation. Dropping it stops every probe.
pub(crate) struct Scheduler {
    tasks: JoinSet<()>,
    targets: usize,
}

impl Scheduler {
    /// Starts probing every target of `model` on the runtime of `handle` (the server uses
    /// [`probe_runtime`]); results go to `results`.
    pub(crate) fn start_on<C, T>(
        handle: &Handle,
        model: Arc<Model>,
        checker: Arc<C>,
        results: mpsc::Sender<T>,
        options: SchedulerOptions,
    ) -> Self
    where
        C: Check,
        T: From<ProbeEvent> + Send + 'static,
    {
        let permits = Arc::new(Semaphore::new(options.max_concurrent.max(1)));
        let outbox = Arc::new(Outbox::default());
        let mut tasks = JoinSet::new();
        tasks.spawn_on(outbox.clone().forward(results), handle);
        let start = Instant::now();
        for (i, target) in model.targets.iter().enumerate() {
            let first = start + first_offset(i, target.interval);
            let (model, checker, outbox, permits) = (
                model.clone(),
                checker.clone(),
                outbox.clone(),
                permits.clone(),
            );
            tasks.spawn_on(
                async move {
                    let target = &model.targets[i];
                    let prepared = checker.prepare(target);
                    let (checker, prepared, permits) = (&checker, &prepared, &permits);
                    // One probe: `None` once the slots are closed (never, in practice).
                    let probe = move |seq: u64| async move {
                        let permit = permits.acquire().await.ok()?;
                        let at = SystemTime::now();
                        let outcome = checker.check(target, prepared).await;
                        drop(permit);
                        Some((seq, at, outcome))
                    };
                    let mut flight = Flight(Vec::new());
                    let mut pace = Pace::new(target, first);
                    let mut successes: u32 = 0;
                    // When the latest probe started (wall clock, for an overdue notice).
                    let mut launched = SystemTime::now();
                    loop {
                        // `may_start` holds whenever nothing is in flight, so one branch
                        // is always enabled.
                        let may_start = pace.may_start();
                        let overdue_at = pace.overdue_at();
                        tokio::select! {
                            // A probe that ends when the next one is due is applied first.
                            biased;
                            done = flight.next(), if !flight.0.is_empty() => {
                                let Some::<(u64, SystemTime, ProbeOutcome)>((seq, at, outcome)) = done
                                else {
                                    return;
                                };
                                if outcome.local {
                                    // Not made: nothing is known of the target, its
                                    // status stays as it was.
                                    local_error(&outcome);
                                    pace.not_made(seq);
                                    continue;
                                }
                                if !pace.probed(seq, outcome.ok, Instant::now()) {
                                    // A later probe's result is already applied.
                                    metrics::counter!(super::PROBE_RESULTS, "outcome" => "superseded")
                                        .increment(1);
                                    continue;
                                }
                                successes = if outcome.ok {
                                    successes.saturating_add(1)
                                } else {
                                    0
                                };
                                // Only a failure, or one of the first `rise` successes after
                                // one (or after the start), can change a status.
                                let urgent = successes <= target.rise;
                                let result = ProbeResult {
                                    generation: model.generation,
                                    target: i as u32,
                                    at,
                                    outcome,
                                };
                                if !outbox.put(ProbeEvent::Done(result), urgent) {
                                    return; // the publisher is gone
                                }
                            }
                            () = tokio::time::sleep_until(pace.due), if may_start => {
                                let seq = pace.woke(Instant::now());
                                launched = SystemTime::now();
                                flight.0.push(Box::pin(probe(seq)));
                            }
                            () = tokio::time::sleep_until(overdue_at.unwrap_or(pace.due)),
                                if overdue_at.is_some() =>
                            {
                                pace.doubted();
                                let doubt = ProbeEvent::Overdue {
                                    generation: model.generation,
                                    target: i as u32,
                                    since: launched,
                                };
                                if !outbox.put(doubt, true) {
                                    return;
                                }
                            }
                        }
                    }
                },
                handle,
            );
        }
        Self {
            tasks,
            targets: model.targets.len(),
        }
    }

    /// How many targets are being probed.
    pub(crate) fn targets(&self) -> usize {
        self.targets
    }

    /// Stops every probe now (a probe in flight is abandoned and its result not sent).
    pub(crate) fn stop(mut self) {
        self.tasks.abort_all();
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// A probe that wakes this much after its deadline is late: the steady schedule then
/// restarts from the moment it woke (as a tokio `Interval` with
/// `MissedTickBehavior::Delay` does), instead of firing the missed probes in a burst.
const LATE: Duration = Duration::from_millis(5);

/// When one target's next probe starts, and which results count: a pure rule of its
/// results and the time, so the scheduler's pacing is tested exactly in paused time.
///
/// - Steady: one probe in flight, every `interval` from the target's first offset, so a
///   healthy fleet keeps the spread the offsets give it (a probe that ends after its next
///   deadline delays the schedule rather than bunching probes).
/// - Fast confirmation (DESIGN.md, "Health semantics"): once a probe of a target that is
///   not Degraded has failed, confirmation probes start every `retry_interval` after the
///   latest start (the first at once when the failed probe took longer than that), without
///   waiting for those still in flight, until the target is Degraded or a probe succeeds.
///   A refused ingress fails at once, so its retries never overlap; a hung one makes each
///   probe wait its `timeout`, and its retries overlap instead of following back to back.
///   Bounded: no more probes in flight that still count than failures the target needs
///   to be Degraded (`tolerated_failures + 1` minus the failures so far, so at most
///   `tolerated_failures`), and never more than `tolerated_failures + 1` in flight at all.
///   Retries keep the phase of the failure that began them, so targets that fail together
///   stay spread.
/// - Once the target is Degraded or a probe succeeds, the steady schedule resumes at its
///   first deadline after now: same phase as before, no extra probe.
/// - Overdue: a steady probe of a target that is not Degraded, unanswered
///   `retry_interval` after it started (when that is before its `timeout`), is reported
///   once ([`Pace::overdue_at`], [`ProbeEvent::Overdue`]). It changes no schedule; the
///   publisher shortens the TTL until the probe's result counts.
///
/// Results are applied in the order the probes started. Each probe is numbered when it
/// starts; a result is applied (to the status machine here and, sent on, to the
/// publisher's) only when no probe started after it has had its result applied already,
/// else it is *superseded* and dropped. A probe's verdict is about the target as it was
/// when the probe went out, so a later start is newer evidence whatever order the
/// answers come back in:
/// - a late success of an older probe (a slow answer) cannot undo a newer failure, nor a
///   late timeout of an older probe count after a newer success: a success from any
///   confirmation probe that is not superseded ends the confirmation at once, and the
///   older probes still in flight no longer count;
/// - a superseded failure is not counted, so Degraded still takes `tolerated_failures +
///   1` failures in a row of distinct probes in start order: dropping can make a
///   confirmation a retry longer, never shorter;
/// - the publisher receives exactly the applied results, in that order, so its status
///   machine and this one see the same sequence.
///
/// When several probes end at the same instant, the oldest is applied first. Superseded
/// probes still in flight run to their end (at most their `timeout`).
///
/// The rule keeps its own copy of the status machine (`tolerated_failures`, `rise`): the
/// scheduler never asks the publisher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pace {
    /// When the next probe starts (once [`Pace::may_start`] allows it).
    pub due: Instant,
    /// The deadline of the last steady probe (the phase of the schedule).
    grid: Instant,
    /// The target is being confirmed: its latest applied result failed and it is not
    /// Degraded.
    retrying: bool,
    /// The status machine, fed the same results as the publisher's.
    health: Hysteresis,
    interval: Duration,
    retry_interval: Duration,
    tolerated_failures: u32,
    /// The number the next probe gets: probes are numbered in the order they start.
    next: u64,
    /// When the latest probe started.
    launched: Instant,
    /// The numbers of the probes in flight, oldest first.
    in_flight: Vec<u64>,
    /// The number of the latest-started probe whose result was applied; results of
    /// probes started before it are superseded.
    applied: Option<u64>,
    timeout: Duration,
    /// The number of the latest probe reported overdue ([`Pace::overdue_at`]).
    doubted: Option<u64>,
}

impl Pace {
    /// A schedule for `target` whose first probe is at `first`.
    pub fn new(target: &ProbeTarget, first: Instant) -> Self {
        Self {
            due: first,
            grid: first,
            retrying: false,
            health: Hysteresis::new(target.tolerated_failures, target.rise),
            interval: target.interval.max(Duration::from_millis(1)),
            retry_interval: target.retry_interval,
            tolerated_failures: target.tolerated_failures,
            next: 0,
            launched: first,
            in_flight: Vec::new(),
            applied: None,
            timeout: target.timeout,
            doubted: None,
        }
    }

    /// When the steady probe in flight becomes *overdue*: `retry_interval` after it
    /// started, when that is before its `timeout` ends and it has not been reported yet.
    /// An overdue probe is not a failure (the answer may still come, and a slow answer
    /// starts no retry), but the target is in doubt: the publisher shortens its
    /// profiles' TTL until the probe's result counts, so that a hung ingress is doubted
    /// `retry_interval` after its first unanswered probe, not `timeout` after. `None`
    /// while a failure is being confirmed (the failure already makes it doubtful) and
    /// while the target is Degraded (it is in no answer).
    pub fn overdue_at(&self) -> Option<Instant> {
        if self.retrying
            || self.retry_interval >= self.timeout
            || self.health.status() == Status::Degraded
        {
            return None;
        }
        let latest = self.next.checked_sub(1)?;
        if !self.in_flight.contains(&latest) || self.doubted == Some(latest) {
            return None;
        }
        Some(self.launched + self.retry_interval)
    }

    /// The probe [`Pace::overdue_at`] named has been reported.
    pub fn doubted(&mut self) {
        self.doubted = self.next.checked_sub(1);
    }

    /// Whether the target is being confirmed (probes at `retry_interval`).
    pub fn retrying(&self) -> bool {
        self.retrying
    }

    /// Probes started and not yet ended (superseded ones included).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether another probe may start at `due`: always when none is in flight.
    pub fn may_start(&self) -> bool {
        if self.in_flight.len() > self.tolerated_failures as usize {
            return false;
        }
        let counting = self
            .in_flight
            .iter()
            .filter(|&&seq| self.applied.is_none_or(|a| seq > a))
            .count();
        let wanted = if self.retrying {
            // Failures still needed to make the target Degraded.
            (self.tolerated_failures.saturating_add(1))
                .saturating_sub(self.health.consecutive_failures())
                .max(1)
        } else {
            1
        };
        counting < wanted as usize
    }

    /// The probe due at `self.due` started at `now`; returns its number.
    pub fn woke(&mut self, now: Instant) -> u64 {
        if self.retrying {
            self.due = now + self.retry_interval;
        } else {
            self.grid = if now > self.due + LATE { now } else { self.due };
        }
        let seq = self.next;
        self.next += 1;
        self.in_flight.push(seq);
        self.launched = now;
        seq
    }

    /// Probe `seq` could not be made (a local error, [`ProbeOutcome::local`]): the status
    /// machine does not see it, and the next try comes `retry_interval` after the latest
    /// start (a confirmation keeps its own pace).
    pub fn not_made(&mut self, seq: u64) {
        self.in_flight.retain(|&s| s != seq);
        if !self.retrying {
            self.due = self.launched + self.retry_interval;
        }
    }

    /// Records that probe `seq` ended at `now` with `ok`, and sets when the next one
    /// starts. Returns whether the result is applied: `false` when it is superseded (a
    /// probe started after it has had its result applied), and then it must not reach the
    /// publisher.
    pub fn probed(&mut self, seq: u64, ok: bool, now: Instant) -> bool {
        self.in_flight.retain(|&s| s != seq);
        if self.applied.is_some_and(|a| seq < a) {
            return false;
        }
        self.applied = Some(seq);
        self.health.observe(ok);
        let was_retrying = self.retrying;
        self.retrying = !ok && self.health.status() != Status::Degraded;
        if self.retrying {
            // Every `retry_interval` from the latest start; at once when that has passed.
            self.due = self.launched + self.retry_interval;
        } else if was_retrying {
            // Back to the steady schedule, at its first deadline after now.
            let behind = now.saturating_duration_since(self.grid);
            let steps = behind.as_nanos() / self.interval.as_nanos() + 1;
            self.due = self.grid + self.interval * u32::try_from(steps).unwrap_or(u32::MAX);
            // Results of probes still in flight from the confirmation keep this deadline.
            self.grid = self.due - self.interval;
        } else {
            self.due = self.grid + self.interval;
        }
        true
    }
}

/// One target's probes in flight, oldest first: a handful at most ([`Pace::may_start`]).
struct Flight<F>(Vec<Pin<Box<F>>>);

impl<F: Future> Flight<F> {
    /// The output of the next probe to end, the oldest first when several have; pending
    /// while none is in flight. Cancel-safe: the probes stay here.
    async fn next(&mut self) -> F::Output {
        std::future::poll_fn(|cx| {
            for i in 0..self.0.len() {
                if let Poll::Ready(out) = self.0[i].as_mut().poll(cx) {
                    drop(self.0.remove(i));
                    return Poll::Ready(out);
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// Counts a probe this host could not make ([`ProbeOutcome::local`]) and says so in the
/// log, at most every [`LOCAL_ERROR_LOG_EVERY`] (with how many there were meanwhile), so
/// that a host out of file descriptors does not also flood its log.
fn local_error(outcome: &ProbeOutcome) {
    use std::sync::atomic::AtomicU64;
    static SINCE_LOGGED: AtomicU64 = AtomicU64::new(0);
    static LAST_LOGGED: Mutex<Option<Instant>> = Mutex::new(None);
    metrics::counter!(super::PROBE_LOCAL_ERRORS).increment(1);
    let n = SINCE_LOGGED.fetch_add(1, Ordering::Relaxed) + 1;
    let mut last = LAST_LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    if last.is_none_or(|t| now.duration_since(t) >= LOCAL_ERROR_LOG_EVERY) {
        *last = Some(now);
        SINCE_LOGGED.fetch_sub(n, Ordering::Relaxed);
        tracing::warn!(
            probes = n,
            reason = outcome.reason.as_deref().unwrap_or_default(),
            "probes not made for lack of local resources; the endpoints' statuses are left as they were"
        );
    }
}

/// How often [`local_error`] logs at most.
const LOCAL_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// Where in its interval target `index` is first probed: the fractional part of
/// `index × φ⁻¹`, which spreads any number of targets evenly.
pub(crate) fn first_offset(index: usize, interval: Duration) -> Duration {
    const PHI_INV: f64 = 0.618_033_988_749_894_9;
    let frac = (index as f64 * PHI_INV).fract();
    interval.mul_f64(frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Protocol, TlsSpec};
    use crate::model::ProbeTarget;

    /// A check that records when each target was probed (paused time) and takes `busy`.
    struct Recorder {
        busy: Duration,
        seen: Mutex<Vec<(u16, Duration)>>,
        start: Instant,
        in_flight: std::sync::atomic::AtomicUsize,
        max_in_flight: std::sync::atomic::AtomicUsize,
    }

    impl Recorder {
        fn new(busy: Duration) -> Arc<Self> {
            Arc::new(Self {
                busy,
                seen: Mutex::new(Vec::new()),
                start: Instant::now(),
                in_flight: Default::default(),
                max_in_flight: Default::default(),
            })
        }
    }

    impl Check for Recorder {
        type Prepared = ();

        fn prepare(&self, _: &ProbeTarget) {}

        async fn check(&self, target: &ProbeTarget, _: &()) -> ProbeOutcome {
            use std::sync::atomic::Ordering::SeqCst;
            let n = self.in_flight.fetch_add(1, SeqCst) + 1;
            self.max_in_flight.fetch_max(n, SeqCst);
            self.seen
                .lock()
                .unwrap()
                .push((target.port, self.start.elapsed()));
            tokio::time::sleep(self.busy).await;
            self.in_flight.fetch_sub(1, SeqCst);
            ProbeOutcome {
                ok: true,
                rtt: self.busy,
                reason: None,
                local: false,
            }
        }
    }

    /// The result an event carries; these tests expect no overdue notice.
    fn done(e: ProbeEvent) -> ProbeResult {
        match e {
            ProbeEvent::Done(r) => r,
            other => panic!("expected a result, got {other:?}"),
        }
    }

    fn model(ports: &[(u16, u64)]) -> Arc<Model> {
        let targets = ports
            .iter()
            .map(|&(port, interval_ms)| ProbeTarget {
                addr: "127.0.0.1".parse().unwrap(),
                port,
                protocol: Protocol::Tcp,
                path: "/".into(),
                host: None,
                headers: vec![],
                expected_status: vec![],
                body_contains: None,
                interval: Duration::from_millis(interval_ms),
                timeout: Duration::from_millis(interval_ms),
                tolerated_failures: 0,
                rise: 1,
                retry_interval: Duration::from_millis(interval_ms),
                tls: TlsSpec::default(),
                reuse_connection: false,
            })
            .collect();
        let mut m = Model::default();
        m.generation = 7;
        m.targets = targets;
        Arc::new(m)
    }

    #[test]
    fn first_offsets_are_spread_over_the_interval() {
        let interval = Duration::from_secs(10);
        let mut offs: Vec<Duration> = (0..100).map(|i| first_offset(i, interval)).collect();
        assert!(offs.iter().all(|&o| o < interval));
        offs.sort();
        // No two first probes closer than a fraction of the even spacing, no big gap.
        let gaps: Vec<Duration> = offs.windows(2).map(|w| w[1] - w[0]).collect();
        let even = interval / 100;
        assert!(gaps.iter().all(|&g| g > even / 4), "{gaps:?}");
        assert!(gaps.iter().all(|&g| g < even * 3), "{gaps:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn each_target_is_probed_once_per_interval_from_its_offset() {
        let rec = Recorder::new(Duration::from_millis(10));
        let (tx, mut rx) = mpsc::channel::<ProbeEvent>(64);
        let m = model(&[(1, 1000), (2, 1000), (3, 500)]);
        let sched = Scheduler::start_on(
            &Handle::current(),
            m,
            rec.clone(),
            tx,
            SchedulerOptions::default(),
        );
        assert_eq!(sched.targets(), 3);
        tokio::time::sleep(Duration::from_millis(3_050)).await;
        drop(sched);
        let seen = rec.seen.lock().unwrap().clone();
        for (port, interval) in [(1u16, 1000u64), (2, 1000), (3, 500)] {
            let times: Vec<Duration> = seen.iter().filter(|s| s.0 == port).map(|s| s.1).collect();
            let first = first_offset(usize::from(port - 1), Duration::from_millis(interval));
            // Exact up to the timer's 1 ms resolution: no drift from the probe's own time.
            for (k, t) in times.iter().enumerate() {
                let want = first + Duration::from_millis(interval) * k as u32;
                assert!(
                    *t >= want && *t - want <= Duration::from_millis(1),
                    "port {port} probe {k}: {t:?}"
                );
            }
            let want = (3050 - first.as_millis() as u64).div_ceil(interval) as usize;
            assert!(
                times.len() == want || times.len() + 1 == want,
                "port {port}: {times:?}"
            );
        }
        let mut got = 0;
        while let Ok(r) = rx.try_recv() {
            let r = done(r);
            assert_eq!(r.generation, 7);
            assert!(r.outcome.ok);
            got += 1;
        }
        assert!(got >= 10, "{got} results");
    }

    /// A check that answers from a script: `ok` for each probe in turn, after 10 ms.
    struct Script(Mutex<std::collections::VecDeque<bool>>);

    impl Check for Script {
        type Prepared = ();

        fn prepare(&self, _: &ProbeTarget) {}

        async fn check(&self, _: &ProbeTarget, _: &()) -> ProbeOutcome {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let ok = self.0.lock().unwrap().pop_front().unwrap_or(true);
            ProbeOutcome {
                ok,
                rtt: Duration::from_millis(10),
                reason: None,
                local: false,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn results_that_can_change_a_status_go_at_once_routine_ones_in_batches() {
        // rise = 1: the first success and every failure are urgent; a success after a
        // success is routine.
        let script = Arc::new(Script(Mutex::new([true, true, false, true].into())));
        let (tx, mut rx) = mpsc::channel::<ProbeEvent>(64);
        let start = Instant::now();
        let sched = Scheduler::start_on(
            &Handle::current(),
            model(&[(1, 1000)]),
            script,
            tx,
            SchedulerOptions::default(),
        );
        let mut got = Vec::new();
        while got.len() < 4 {
            let r = done(rx.recv().await.unwrap());
            got.push((r.outcome.ok, start.elapsed()));
        }
        drop(sched);
        let ms = |d: Duration| d.as_millis() as u64;
        // Probes end at 10, 1010, 2010 and 3010 ms.
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            [true, true, false, true]
        );
        assert!(ms(got[0].1) <= 11, "first success: {got:?}");
        assert!(
            (1011..=1010 + BATCH_DELAY.as_millis() as u64).contains(&ms(got[1].1)),
            "routine success waits for the batch: {got:?}"
        );
        assert!(ms(got[2].1) <= 2011, "failure: {got:?}");
        assert!(
            ms(got[3].1) <= 3011,
            "first success after a failure: {got:?}"
        );
    }

    /// How an ingress answers a probe that starts in a phase.
    #[derive(Clone, Copy, Debug)]
    enum Phase {
        /// Succeeds in 1 ms.
        Up,
        /// Fails in 1 ms (connection refused, a 503).
        Refused,
        /// Fails at the target's `timeout`.
        Hung,
        /// Succeeds after this many ms.
        Slow(u64),
    }

    /// An ingress that answers each probe as the phase it starts in says: a list of
    /// (from ms after the start, phase). Records when each probe started and how many were
    /// in flight at most, per target; a result's `reason` holds its probe's start (ms).
    struct Faulty {
        start: Instant,
        phases: Vec<(u64, Phase)>,
        seen: Mutex<Vec<(u16, Duration)>>,
        /// Per target: probes in flight now, and at most.
        flight: Mutex<std::collections::HashMap<u16, (usize, usize)>>,
    }

    impl Faulty {
        /// Works until `fault` (ms after the start), then refuses (fails in 1 ms) or hangs
        /// (fails at the target's `timeout`); healthy again from `heal`.
        fn new(fault: u64, heal: u64, hung: bool) -> Arc<Self> {
            let down = if hung { Phase::Hung } else { Phase::Refused };
            Self::phases(&[(0, Phase::Up), (fault, down), (heal, Phase::Up)])
        }

        fn phases(phases: &[(u64, Phase)]) -> Arc<Self> {
            Arc::new(Self {
                start: Instant::now(),
                phases: phases.to_vec(),
                seen: Mutex::new(Vec::new()),
                flight: Mutex::default(),
            })
        }

        /// Start times of target `port`'s probes, in ms since the start.
        fn starts(&self, port: u16) -> Vec<u64> {
            let seen = self.seen.lock().unwrap();
            seen.iter()
                .filter(|s| s.0 == port)
                .map(|s| s.1.as_millis() as u64)
                .collect()
        }

        /// The most probes target `port` had in flight at once.
        fn max_in_flight(&self, port: u16) -> usize {
            self.flight.lock().unwrap().get(&port).map_or(0, |f| f.1)
        }
    }

    impl Check for Faulty {
        type Prepared = ();

        fn prepare(&self, _: &ProbeTarget) {}

        async fn check(&self, target: &ProbeTarget, _: &()) -> ProbeOutcome {
            let t = self.start.elapsed();
            self.seen.lock().unwrap().push((target.port, t));
            let ms = t.as_millis() as u64;
            let phase = self
                .phases
                .iter()
                .rev()
                .find(|p| p.0 <= ms)
                .map_or(Phase::Up, |p| p.1);
            let (ok, busy) = match phase {
                Phase::Up => (true, Duration::from_millis(1)),
                Phase::Refused => (false, Duration::from_millis(1)),
                Phase::Hung => (false, target.timeout),
                Phase::Slow(d) => (true, Duration::from_millis(d)),
            };
            {
                let mut flight = self.flight.lock().unwrap();
                let f = flight.entry(target.port).or_default();
                f.0 += 1;
                f.1 = f.1.max(f.0);
            }
            tokio::time::sleep(busy).await;
            self.flight.lock().unwrap().get_mut(&target.port).unwrap().0 -= 1;
            ProbeOutcome {
                ok,
                rtt: busy,
                reason: Some(ms.to_string()),
                local: false,
            }
        }
    }

    /// Default timings: interval 10 s, timeout 5 s, tolerated_failures 3, rise 2,
    /// retry_interval `retry` ms.
    fn defaults(targets: u16, retry: u64) -> Arc<Model> {
        let mut m = (*model(&[(1, 10_000)])).clone_targets(targets);
        for t in &mut m.targets {
            t.timeout = Duration::from_secs(5);
            t.tolerated_failures = 3;
            t.rise = 2;
            t.retry_interval = Duration::from_millis(retry);
        }
        Arc::new(m)
    }

    impl Model {
        fn clone_targets(&self, n: u16) -> Model {
            let mut m = Model::default();
            m.generation = self.generation;
            m.targets = (1..=n)
                .map(|port| ProbeTarget {
                    port,
                    ..self.targets[0].clone()
                })
                .collect();
            m
        }
    }

    /// Probes one target at the default timings (retry_interval `retry` ms) for `secs`,
    /// checks its probes started at `want` (ms) and returns what the publisher got, as
    /// [`run_for`] does.
    async fn one_target(
        check: &Arc<Faulty>,
        retry: u64,
        secs: u64,
        want: &[u64],
    ) -> Vec<(u64, bool)> {
        let got = run_for(defaults(1, retry), check.clone(), secs).await;
        assert_eq!(check.starts(1), want);
        got
    }

    /// Checks that each of 100 targets failing together from 25 s keeps its own phase:
    /// its steady probes up to the first one after the fault (`f`), then one at each of
    /// `f + retries`, then steady again from `f + resume × interval`. Exact to the timer's
    /// 1 ms resolution. Returns every start, sorted.
    fn assert_spread(check: &Faulty, retries: [u64; 3], resume: u64) -> Vec<u64> {
        let mut all = Vec::new();
        for port in 1..=100u16 {
            let off =
                first_offset(usize::from(port - 1), Duration::from_secs(10)).as_millis() as u64;
            // The first probe after the fault.
            let f = (0..)
                .map(|k| off + 10_000 * k)
                .find(|&t| t >= 25_000)
                .unwrap();
            let mut want: Vec<u64> = (0..)
                .map(|k| off + 10_000 * k)
                .take_while(|&t| t <= f)
                .collect();
            want.extend(retries.map(|r| f + r));
            want.extend(
                (resume..)
                    .map(|k| f + 10_000 * k)
                    .take_while(|&t| t < 60_000),
            );
            let got = check.starts(port);
            assert_eq!(got.len(), want.len(), "target {port}: {got:?} vs {want:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(g >= w && g - w <= 1, "target {port}: {got:?} vs {want:?}");
            }
            all.extend(got);
        }
        all.sort_unstable();
        all
    }

    /// The most of the sorted `starts` in a window of `width` ms that begins in `from`
    /// (at 100 ms steps).
    fn busiest(starts: &[u64], from: std::ops::Range<u64>, width: u64) -> usize {
        from.step_by(100)
            .map(|t| starts.iter().filter(|&&s| s >= t && s < t + width).count())
            .max()
            .unwrap()
    }

    /// Probes `m` for `secs`; returns the results the publisher got, in order, as (the
    /// probe's start in ms, ok).
    async fn run_for(m: Arc<Model>, check: Arc<Faulty>, secs: u64) -> Vec<(u64, bool)> {
        overdue_for(m, check, secs).await.1
    }

    /// As [`run_for`], with when (ms after the start) each overdue notice reached the
    /// publisher.
    async fn overdue_for(
        m: Arc<Model>,
        check: Arc<Faulty>,
        secs: u64,
    ) -> (Vec<u64>, Vec<(u64, bool)>) {
        let (tx, mut rx) = mpsc::channel::<ProbeEvent>(4096);
        let start = Instant::now();
        let options = SchedulerOptions::default();
        let sched = Scheduler::start_on(&Handle::current(), m, check, tx, options);
        let drain = tokio::spawn(async move {
            let (mut overdue, mut done) = (Vec::new(), Vec::new());
            while let Some(e) = rx.recv().await {
                match e {
                    ProbeEvent::Overdue { generation, .. } => {
                        assert_eq!(generation, 7);
                        overdue.push(start.elapsed().as_millis() as u64);
                    }
                    ProbeEvent::Done(r) => {
                        let at = r.outcome.reason.as_deref().unwrap().parse().unwrap();
                        done.push((at, r.outcome.ok));
                    }
                }
            }
            (overdue, done)
        });
        tokio::time::sleep(Duration::from_secs(secs)).await;
        drop(sched);
        drain.await.unwrap()
    }

    /// A host out of file descriptors from `from` until `until` (ms after the start): its
    /// probes are not made then ([`ProbeOutcome::local`]); else the target answers
    /// `ok`.
    struct Starved {
        start: Instant,
        from: u64,
        until: u64,
        ok: bool,
        seen: Mutex<Vec<u64>>,
    }

    impl Check for Starved {
        type Prepared = ();

        fn prepare(&self, _: &ProbeTarget) {}

        async fn check(&self, _: &ProbeTarget, _: &()) -> ProbeOutcome {
            let t = self.start.elapsed().as_millis() as u64;
            self.seen.lock().unwrap().push(t);
            tokio::time::sleep(Duration::from_millis(1)).await;
            let local = (self.from..self.until).contains(&t);
            ProbeOutcome {
                ok: self.ok && !local,
                rtt: Duration::from_millis(1),
                reason: local.then(|| "not probed, this host is short of resources".into()),
                local,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn probes_not_made_for_local_errors_leave_the_status_alone() {
        for ok in [true, false] {
            // Out of descriptors from 25 s to 33.5 s: the probe at 30 s and the tries a
            // retry_interval apart are not made, and none of them reaches the publisher
            // (whose status stays as it was); the first one made (34 s) resumes the
            // steady schedule from there.
            let check = Arc::new(Starved {
                start: Instant::now(),
                from: 25_000,
                until: 33_500,
                ok,
                seen: Mutex::new(Vec::new()),
            });
            let (tx, mut rx) = mpsc::channel::<ProbeEvent>(4096);
            let sched = Scheduler::start_on(
                &Handle::current(),
                defaults(1, 1_000),
                check.clone(),
                tx,
                SchedulerOptions::default(),
            );
            tokio::time::sleep(Duration::from_millis(55_000)).await;
            drop(sched);
            let mut results = Vec::new();
            while let Ok(r) = rx.try_recv() {
                results.push(done(r).outcome);
            }
            let starts = check.seen.lock().unwrap().clone();
            // (A failing target is Degraded from its first probe, so it is not retried
            // either: the same schedule.)
            assert_eq!(
                starts,
                [
                    0, 10_000, 20_000, 30_000, 31_000, 32_000, 33_000, 34_000, 44_000, 54_000
                ],
                "ok = {ok}"
            );
            assert!(results.iter().all(|o| !o.local), "{results:?}");
            let made = starts
                .iter()
                .filter(|t| !(25_000..33_500).contains(*t))
                .count();
            assert_eq!(
                results.len(),
                made,
                "every probe made, and only those, reported"
            );
            assert!(results.iter().all(|o| o.ok == ok));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_target_is_confirmed_every_retry_interval_then_probed_at_interval() {
        // Target 0 is first probed at 0 s. The fault at 25 s: the probe at 30 s fails,
        // three retries a second apart make it Degraded (tolerated_failures = 3), then
        // the steady schedule resumes at 40 s.
        let check = Faulty::new(25_000, u64::MAX, false);
        let want = [
            0, 10_000, 20_000, 30_000, 31_000, 32_000, 33_000, 40_000, 50_000, 60_000,
        ];
        one_target(&check, 1_000, 61, &want).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_target_is_retried_every_retry_interval_with_probes_overlapping() {
        // The probe at 30 s times out at 35 s (failure 1). The first retry is overdue
        // (31 s): it starts at once; the next two follow a second apart without waiting
        // for the ones in flight, and time out at 40, 41 and 42 s: Degraded at 42 s, 17 s
        // after the fault (22 s when the fault lands just after a probe). Three in flight
        // at most (the failures still needed), none started after that: the next probe
        // is the steady one at 50 s.
        let check = Faulty::new(25_000, u64::MAX, true);
        let want = [
            0, 10_000, 20_000, 30_000, 35_000, 36_000, 37_000, 50_000, 60_000, 70_000,
        ];
        let got = one_target(&check, 1_000, 71, &want).await;
        assert_eq!(check.max_in_flight(1), 3);
        // Every result counts, in start order.
        let fails: Vec<u64> = got.iter().filter(|r| !r.1).map(|r| r.0).collect();
        assert_eq!(fails, [30_000, 35_000, 36_000, 37_000, 50_000, 60_000]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_target_is_out_within_the_bound_wherever_the_fault_lands() {
        // Acceptance: interval + timeout + (tolerated_failures - 1) × retry_interval +
        // timeout = 22 s after the fault at the defaults, whatever the phase. Degraded
        // once the fourth failure in a row (tolerated_failures + 1) is applied.
        for fault in [20_001, 22_500, 25_000, 29_999, 30_000] {
            let check = Faulty::new(fault, u64::MAX, true);
            let got = run_for(defaults(1, 1_000), check.clone(), 60).await;
            let mut h = Hysteresis::new(3, 2);
            let degraded = got
                .iter()
                .find(|r| {
                    h.observe(r.1);
                    h.status() == Status::Degraded
                })
                .expect("never Degraded");
            // A hung probe's result comes at its start + timeout.
            let at = degraded.0 + 5_000;
            assert!(
                at - fault <= 22_000,
                "fault at {fault}: Degraded at {at} ({got:?})"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn hung_targets_that_fail_together_stay_spread() {
        // 100 targets, all hung from 25 s on. Each keeps its own phase: its first failure
        // at its first probe after the fault + 5 s, its retries then at 1 s steps;
        // Degraded at f + 12 s, the steady schedule resumes at f + 20 s.
        let check = Faulty::new(25_000, u64::MAX, true);
        run_for(defaults(100, 1_000), check.clone(), 60).await;
        let all = assert_spread(&check, [5_000, 6_000, 7_000], 2);
        for port in 1..=100u16 {
            assert!(check.max_in_flight(port) <= 3, "target {port}");
        }
        // No herd: during the confirmations (25 s to 47 s) at most 5 probes start in any
        // 100 ms, and in a second the 10 steady probes plus those of the about 30 targets
        // whose first failure came in the last 3 s (a retry a second each): at most 42.
        let most = |width| busiest(&all, 25_000..47_000, width);
        assert!(most(100) <= 5, "{} probes in 100 ms", most(100));
        assert!(most(1_000) <= 42, "{} probes in one second", most(1_000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_old_success_cannot_undo_a_newer_failure() {
        // Refused from 25 s; probes starting in [30.5 s, 31.5 s) get a slow success (3 s);
        // refused again after. The probe at 30 s fails; the retry at 31 s answers
        // "ok" only at 34 s, after the retries at 32 and 33 s (started later) failed: its
        // success is superseded and dropped, so the retry at 34 s is the fourth failure in
        // a row: Degraded. Applied in arrival order, the late success would have reset the
        // count and kept a refusing ingress Online.
        let check = Faulty::phases(&[
            (0, Phase::Up),
            (25_000, Phase::Refused),
            (30_500, Phase::Slow(3_000)),
            (31_500, Phase::Refused),
        ]);
        let want = [
            0, 10_000, 20_000, 30_000, 31_000, 32_000, 33_000, 34_000, 40_000, 50_000,
        ];
        let got = one_target(&check, 1_000, 51, &want).await;
        // From 30 s on, only failures, and none from the probe at 31 s.
        let after: Vec<(u64, bool)> = got.into_iter().filter(|r| r.0 >= 30_000).collect();
        assert!(after.iter().all(|r| !r.1), "{after:?}");
        assert_eq!(
            after.iter().map(|r| r.0).collect::<Vec<_>>(),
            [30_000, 32_000, 33_000, 34_000, 40_000, 50_000],
            "31 s's success is superseded; Degraded at 34 s: steady probes from 40 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_of_a_later_probe_ends_the_confirmation_at_once() {
        // Hung from 25 s until 35.5 s, up after. The probe at 30 s times out at 35 s;
        // the retry at 35 s hangs, the one at 36 s succeeds at once: the confirmation ends
        // there (steady again, next probe at 40 s), and the timeout of the retry at 35 s
        // (at 40 s, older than that success) does not count.
        let check = Faulty::phases(&[(0, Phase::Up), (25_000, Phase::Hung), (35_500, Phase::Up)]);
        let want = [0, 10_000, 20_000, 30_000, 35_000, 36_000, 40_000, 50_000];
        let got = one_target(&check, 1_000, 51, &want).await;
        let after: Vec<(u64, bool)> = got.into_iter().filter(|r| r.0 >= 30_000).collect();
        assert_eq!(
            after,
            [
                (30_000, false),
                (36_000, true),
                (40_000, true),
                (50_000, true)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_ends_the_confirmation_and_keeps_the_phase() {
        // Fails at 30 s, healthy again at 31.5 s: the retry at 32 s succeeds; the next
        // probe is at 40 s, as if nothing happened.
        let check = Faulty::new(25_000, 31_500, false);
        let want = [0, 10_000, 20_000, 30_000, 31_000, 32_000, 40_000, 50_000];
        one_target(&check, 1_000, 51, &want).await;
    }

    #[tokio::test(start_paused = true)]
    async fn retry_interval_equal_to_interval_is_todays_schedule() {
        let check = Faulty::new(25_000, u64::MAX, false);
        let want = [0, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000];
        one_target(&check, 10_000, 71, &want).await;
    }

    #[tokio::test(start_paused = true)]
    async fn targets_that_fail_together_stay_spread() {
        // 100 targets, all refusing from 25 s on. Each target keeps its own phase: its
        // retries follow its first failure at 1 s steps, its steady probes its offset.
        let check = Faulty::new(25_000, u64::MAX, false);
        run_for(defaults(100, 1_000), check.clone(), 60).await;
        let all = assert_spread(&check, [1_000, 2_000, 3_000], 1);
        // No herd: steady, 100 targets at 10 s are 10 probes a second and at most 2 in any
        // 100 ms. While they are confirmed (25 s to 38 s), about 40 targets (those that
        // failed in the last 3 s) probe once a second each: at most 42 in a second, and
        // still at most 5 in any 100 ms, never all 100 at once.
        let steady_max = busiest(&all, 0..25_000, 100);
        let confirm_max = busiest(&all, 25_000..38_000, 100);
        assert!(steady_max <= 2, "{steady_max}");
        assert!(confirm_max <= 5, "{confirm_max}");
        let second_max = busiest(&all, 25_000..38_000, 1_000);
        assert!(second_max <= 42, "{second_max} probes in one second");
    }

    /// A schedule started now for a target probed every 10 s, with these
    /// `tolerated_failures`, `rise` and `retry_interval` (ms), whose first probe succeeded
    /// 1 ms after the start; and its start.
    fn pace(tolerated_failures: u32, rise: u32, retry_ms: u64) -> (Instant, Pace) {
        let mut target = model(&[(1, 10_000)]).targets[0].clone();
        target.tolerated_failures = tolerated_failures;
        target.rise = rise;
        target.retry_interval = Duration::from_millis(retry_ms);
        let t0 = Instant::now();
        let mut p = Pace::new(&target, t0);
        let s = p.woke(t0);
        assert!(!p.may_start(), "one probe in flight while steady");
        assert!(p.probed(s, true, t0 + Duration::from_millis(1)));
        (t0, p)
    }

    #[test]
    fn pace_rules() {
        let ms = Duration::from_millis;
        let (t0, mut p) = pace(1, 1, 1_000);
        // A quick success: the next probe one interval later.
        assert_eq!(p.due, t0 + ms(10_000));
        // Woken 2 ms late (timer slack): still on the grid.
        let s = p.woke(t0 + ms(10_002));
        assert!(p.probed(s, false, t0 + ms(10_004)));
        assert!(p.retrying());
        assert_eq!(
            p.due,
            t0 + ms(11_002),
            "retry_interval after the failed start"
        );
        let s = p.woke(t0 + ms(11_002));
        // The second failure: Degraded (tolerated_failures = 1); back to the grid.
        assert!(p.probed(s, false, t0 + ms(11_500)));
        assert!(!p.retrying());
        assert_eq!(p.due, t0 + ms(20_000));
        // Degraded targets fail at the steady pace.
        let s = p.woke(t0 + ms(20_000));
        assert!(p.probed(s, false, t0 + ms(20_001)));
        assert_eq!(p.due, t0 + ms(30_000));
        // A slow steady probe (ends after its next deadline): the next starts at once and
        // the schedule restarts from there (as tokio's `Delay`).
        let s = p.woke(t0 + ms(30_000));
        assert!(p.probed(s, true, t0 + ms(41_000)));
        assert_eq!(p.due, t0 + ms(40_000));
        p.woke(t0 + ms(41_000));
        assert_eq!(p.grid, t0 + ms(41_000));
    }

    #[test]
    fn pace_overlaps_confirmation_probes_and_applies_results_in_start_order() {
        let ms = Duration::from_millis;
        let (t0, mut p) = pace(3, 2, 1_000);
        // A hung probe: a slow probe is not a failure, nothing else starts.
        let a = p.woke(t0 + ms(10_000));
        assert!(!p.may_start());
        // It times out: confirmation. The first retry is overdue (10 s + 1 s): at once.
        assert!(p.probed(a, false, t0 + ms(15_000)));
        assert!(p.retrying() && p.may_start());
        assert_eq!(p.due, t0 + ms(11_000));
        let b = p.woke(t0 + ms(15_000));
        assert_eq!(p.due, t0 + ms(16_000), "the next retry does not wait for b");
        assert!(p.may_start());
        let c = p.woke(t0 + ms(16_000));
        let d = p.woke(t0 + ms(17_000));
        // Three more failures make it Degraded: three in flight are enough.
        assert_eq!(p.in_flight(), 3);
        assert!(!p.may_start());
        // A late success of b, after c (started later) failed: superseded.
        assert!(p.probed(c, false, t0 + ms(17_500)));
        assert!(!p.probed(b, true, t0 + ms(17_900)), "b is older than c");
        assert!(p.retrying());
        assert_eq!(p.health.consecutive_failures(), 2);
        // b no longer counts: two failures needed, one (d) in flight that counts.
        assert!(p.may_start());
        assert_eq!(p.due, t0 + ms(18_000));
        let e = p.woke(t0 + ms(18_000));
        assert!(!p.may_start());
        // e answers first and succeeds: the confirmation ends at once, d no longer counts,
        // the steady schedule resumes at 20 s.
        assert!(p.probed(e, true, t0 + ms(18_010)));
        assert!(!p.retrying());
        assert_eq!(p.due, t0 + ms(20_000));
        assert_eq!(p.health.consecutive_failures(), 0);
        assert!(
            p.may_start(),
            "d is superseded: it holds no steady probe back"
        );
        // d times out later: superseded, it does not count as a failure after e.
        assert!(!p.probed(d, false, t0 + ms(22_000)));
        assert_eq!(p.health.status(), Status::Online);
        assert_eq!(p.in_flight(), 0);
    }

    #[test]
    fn pace_bounds_probes_in_flight() {
        let ms = Duration::from_millis;
        let (t0, mut p) = pace(2, 1, 100);
        let a = p.woke(t0 + ms(10_000));
        assert!(p.probed(a, false, t0 + ms(10_001)));
        // Two failures needed: two retries in flight, no third.
        let b = p.woke(t0 + ms(10_100));
        let c = p.woke(t0 + ms(10_200));
        assert!(!p.may_start());
        // c fails first: b is superseded, one failure needed and none that counts in
        // flight, so one more may start, beside b: three in flight (tolerated + 1).
        assert!(p.probed(c, false, t0 + ms(10_250)));
        assert!(p.may_start());
        let d = p.woke(t0 + ms(10_300));
        assert_eq!(p.in_flight(), 2);
        assert!(!p.may_start());
        // d fails: Degraded, three failures in a row (a, c, d); b's result is dropped.
        assert!(p.probed(d, false, t0 + ms(10_301)));
        assert_eq!(p.health.status(), Status::Degraded);
        assert!(!p.retrying());
        assert_eq!(p.due, t0 + ms(20_000));
        assert!(!p.probed(b, true, t0 + ms(10_400)));
        assert_eq!(p.health.status(), Status::Degraded);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_unanswered_for_retry_interval_is_reported_overdue_once() {
        // Probes at 0 and 10 s answer in 1 ms; the one at 20 s takes 1.5 s (overdue at
        // 21 s, then a success: no retry); from 25 s the ingress hangs: the probe at 30 s
        // is overdue at 31 s and fails at 35 s; its confirmation retries (35, 36, 37 s)
        // are not reported, the failure already is; Degraded at 42 s, the steady probe
        // after (50 s) is not reported either.
        let check = Faulty::phases(&[
            (0, Phase::Up),
            (15_000, Phase::Slow(1_500)),
            (25_000, Phase::Hung),
        ]);
        let (overdue, done) = overdue_for(defaults(1, 1_000), check.clone(), 56).await;
        assert_eq!(overdue, [21_000, 31_000]);
        assert_eq!(
            check.starts(1),
            [0, 10_000, 20_000, 30_000, 35_000, 36_000, 37_000, 50_000]
        );
        assert_eq!(&done[..3], [(0, true), (10_000, true), (20_000, true)]);
        assert!(done[3..].iter().all(|&(_, ok)| !ok), "{done:?}");

        // Fast confirmation off (`retry_interval = interval`, longer than `timeout`):
        // nothing is ever overdue, the schedule is the steady one.
        let check = Faulty::phases(&[
            (0, Phase::Up),
            (15_000, Phase::Slow(1_500)),
            (25_000, Phase::Hung),
        ]);
        let (overdue, _) = overdue_for(defaults(1, 10_000), check.clone(), 56).await;
        assert!(overdue.is_empty(), "{overdue:?}");
        assert_eq!(check.starts(1), [0, 10_000, 20_000, 30_000, 40_000, 50_000]);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded() {
        // 50 targets whose probes take longer than their interval, 8 slots.
        let rec = Recorder::new(Duration::from_millis(900));
        let (tx, mut rx) = mpsc::channel::<ProbeEvent>(1024);
        let ports: Vec<(u16, u64)> = (1..=50).map(|p| (p, 200)).collect();
        let sched = Scheduler::start_on(
            &Handle::current(),
            model(&ports),
            rec.clone(),
            tx,
            SchedulerOptions { max_concurrent: 8 },
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(sched);
        use std::sync::atomic::Ordering::SeqCst;
        assert_eq!(rec.max_in_flight.load(SeqCst), 8);
        // 8 slots × 5 s / 0.9 s per probe.
        let mut n = 0;
        while let Ok(r) = rx.try_recv() {
            done(r);
            n += 1;
        }
        assert!((40..=48).contains(&n), "{n} probes finished");
    }

    #[tokio::test(start_paused = true)]
    async fn stop_ends_probing() {
        let rec = Recorder::new(Duration::from_millis(1));
        let (tx, _rx) = mpsc::channel::<ProbeEvent>(1024);
        let sched = Scheduler::start_on(
            &Handle::current(),
            model(&[(1, 100)]),
            rec.clone(),
            tx,
            SchedulerOptions::default(),
        );
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        sched.stop();
        let before = rec.seen.lock().unwrap().len();
        assert!(before >= 9, "{before}");
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert_eq!(rec.seen.lock().unwrap().len(), before);
    }
}
