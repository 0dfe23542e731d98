//! When is each target probed? Every distinct target (`Model::targets`) once per its
//! interval, however many endpoints share it.
//!
//! First probes are spread over the interval by a deterministic offset from the target's
//! index (a golden-ratio sequence, so any number of targets is spread evenly) instead of
//! all firing at start. At most `max_concurrent` probes run at once; a probe waiting for a
//! slot has not started, so its `timeout` does not run. Probes run on the async runtime and
//! only talk to the publisher through a channel: nothing here can block the DNS path. A
//! scheduler belongs to one config generation and stops when dropped (or on [`Scheduler::stop`]),
//! so a reload starts a new one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::runtime::Handle;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::probe::{Check, ProbeOutcome};
use crate::model::Model;

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

/// Scheduler limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SchedulerOptions {
    /// Probes in flight at once (each holds a socket). A target never has more than one
    /// probe in flight, so this only matters with many slow or hung targets: each holds a
    /// slot for up to its `timeout`, and healthy targets wait behind them once the slots
    /// are gone. Default 1024.
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
    pending: Mutex<Vec<ProbeResult>>,
    urgent: Notify,
    closed: AtomicBool,
}

/// How long a routine success may wait before it reaches the publisher.
pub(crate) const BATCH_DELAY: Duration = Duration::from_millis(100);

impl Outbox {
    /// Queues `result`; `false` once the publisher is gone.
    fn put(&self, result: ProbeResult, urgent: bool) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(result);
        if urgent {
            self.urgent.notify_one();
        }
        true
    }

    /// Sends queued results to `results` at once when one is urgent, else every
    /// [`BATCH_DELAY`].
    async fn forward<T: From<ProbeResult>>(self: Arc<Self>, results: mpsc::Sender<T>) {
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
    /// Starts probing every target of `model` on the current runtime; results go to
    /// `results`. Must be called inside a tokio runtime.
    #[cfg(test)]
    pub(crate) fn start<C, T>(
        model: Arc<Model>,
        checker: Arc<C>,
        results: mpsc::Sender<T>,
        options: SchedulerOptions,
    ) -> Self
    where
        C: Check,
        T: From<ProbeResult> + Send + 'static,
    {
        Self::start_on(&Handle::current(), model, checker, results, options)
    }

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
        T: From<ProbeResult> + Send + 'static,
    {
        let permits = Arc::new(Semaphore::new(options.max_concurrent.max(1)));
        let outbox = Arc::new(Outbox::default());
        let mut tasks = JoinSet::new();
        tasks.spawn_on(outbox.clone().forward(results), handle);
        let start = Instant::now();
        for (i, target) in model.targets.iter().enumerate() {
            let first = start + first_offset(i, target.interval);
            let interval = target.interval;
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
                    let mut tick = tokio::time::interval_at(first, interval);
                    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    let mut successes: u32 = 0;
                    loop {
                        tick.tick().await;
                        let Ok(permit) = permits.acquire().await else {
                            return;
                        };
                        let at = SystemTime::now();
                        let outcome = checker.check(target, &prepared).await;
                        drop(permit);
                        successes = if outcome.ok {
                            successes.saturating_add(1)
                        } else {
                            0
                        };
                        // Only a failure, or one of the first `rise` successes after one
                        // (or after the start), can change a status.
                        let urgent = successes <= target.rise;
                        let result = ProbeResult {
                            generation: model.generation,
                            target: i as u32,
                            at,
                            outcome,
                        };
                        if !outbox.put(result, urgent) {
                            return; // the publisher is gone
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
            }
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
        let (tx, mut rx) = mpsc::channel::<ProbeResult>(64);
        let m = model(&[(1, 1000), (2, 1000), (3, 500)]);
        let sched = Scheduler::start(m, rec.clone(), tx, SchedulerOptions::default());
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
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn results_that_can_change_a_status_go_at_once_routine_ones_in_batches() {
        // rise = 1: the first success and every failure are urgent; a success after a
        // success is routine.
        let script = Arc::new(Script(Mutex::new([true, true, false, true].into())));
        let (tx, mut rx) = mpsc::channel::<ProbeResult>(64);
        let start = Instant::now();
        let sched = Scheduler::start(model(&[(1, 1000)]), script, tx, SchedulerOptions::default());
        let mut got = Vec::new();
        while got.len() < 4 {
            let r = rx.recv().await.unwrap();
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

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded() {
        // 50 targets whose probes take longer than their interval, 8 slots.
        let rec = Recorder::new(Duration::from_millis(900));
        let (tx, mut rx) = mpsc::channel::<ProbeResult>(1024);
        let ports: Vec<(u16, u64)> = (1..=50).map(|p| (p, 200)).collect();
        let sched = Scheduler::start(
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
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert!((40..=48).contains(&n), "{n} probes finished");
    }

    #[tokio::test(start_paused = true)]
    async fn stop_ends_probing() {
        let rec = Recorder::new(Duration::from_millis(1));
        let (tx, _rx) = mpsc::channel::<ProbeResult>(1024);
        let sched = Scheduler::start(
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
