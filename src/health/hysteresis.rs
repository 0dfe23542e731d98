//! What is a target's health, given its probe results so far?
//!
//! A pure state machine (DESIGN.md, "Health semantics"): a target starts
//! CheckingEndpoint; its first success makes it Online, its first failure Degraded (a
//! target that has never succeeded gets no benefit of the doubt, so a restart never
//! answers a site already known to be down); once Online, more than `tolerated_failures`
//! consecutive failures make it Degraded; `rise` consecutive successes bring a Degraded
//! target back Online. A flip is reported once, so
//! callers log and count only real transitions. Time is an argument everywhere.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{LastProbe, TargetView};
use crate::base::Status;

/// The status machine for one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hysteresis {
    tolerated_failures: u32,
    rise: u32,
    status: Status,
    failures: u32,
    successes: u32,
    transitions: u32,
}

impl Hysteresis {
    /// `tolerated_failures`: failures in a row that are still tolerated; `rise`: successes
    /// in a row needed to leave Degraded (at least 1).
    pub fn new(tolerated_failures: u32, rise: u32) -> Self {
        Self {
            tolerated_failures,
            rise: rise.max(1),
            status: Status::CheckingEndpoint,
            failures: 0,
            successes: 0,
            transitions: 0,
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// Status changes so far.
    pub fn transitions(&self) -> u32 {
        self.transitions
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    pub fn consecutive_successes(&self) -> u32 {
        self.successes
    }

    /// Records one probe result; returns `(from, to)` when the status changed.
    pub fn observe(&mut self, ok: bool) -> Option<(Status, Status)> {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
        }
        let next = match self.status {
            Status::CheckingEndpoint if ok => Status::Online,
            // Never succeeded: no benefit of the doubt.
            Status::CheckingEndpoint => Status::Degraded,
            Status::Degraded if ok && self.successes >= self.rise => Status::Online,
            Status::Online if !ok && self.failures > self.tolerated_failures => Status::Degraded,
            s => s,
        };
        if next == self.status {
            return None;
        }
        let from = self.status;
        self.status = next;
        self.transitions = self.transitions.saturating_add(1);
        Some((from, next))
    }
}

/// An exponentially weighted moving average of round-trip times, decaying with time rather
/// than per sample, so irregular probe spacing weighs samples fairly: a sample `decay`
/// after the previous one carries weight 1 − 1/e.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ewma {
    decay: Duration,
    /// Smoothed value in seconds, and when it was last updated.
    value: Option<(f64, Instant)>,
}

impl Ewma {
    pub fn new(decay: Duration) -> Self {
        Self {
            decay: decay.max(Duration::from_millis(1)),
            value: None,
        }
    }

    /// Adds a sample taken at `now`.
    pub fn observe(&mut self, now: Instant, rtt: Duration) {
        let x = rtt.as_secs_f64();
        self.value = Some(match self.value {
            None => (x, now),
            Some((v, at)) => {
                let elapsed = now.saturating_duration_since(at).as_secs_f64();
                let w = (-elapsed / self.decay.as_secs_f64()).exp();
                (v * w + x * (1.0 - w), now.max(at))
            }
        });
    }

    /// The smoothed value; `None` before the first sample.
    pub fn get(&self) -> Option<Duration> {
        self.value.map(|(v, _)| Duration::from_secs_f64(v.max(0.0)))
    }
}

/// Everything the publisher keeps about one target: status machine, smoothed RTT, last
/// probe.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetHealth {
    pub hysteresis: Hysteresis,
    pub rtt: Ewma,
    pub last: Option<LastProbe>,
    /// When the last successful probe started (wall clock).
    pub last_success: Option<SystemTime>,
    /// When the probe in flight started, while it is overdue (unanswered for
    /// `retry_interval`); cleared by the next counted result.
    pub overdue_since: Option<SystemTime>,
}

impl TargetHealth {
    /// State before any probe. The RTT average decays over five intervals.
    pub fn new(tolerated_failures: u32, rise: u32, interval: Duration) -> Self {
        Self {
            hysteresis: Hysteresis::new(tolerated_failures, rise),
            rtt: Ewma::new(interval.saturating_mul(5)),
            last: None,
            last_success: None,
            overdue_since: None,
        }
    }

    /// The probe that started at `since` is overdue; returns whether that puts the
    /// target in doubt now (it was not, and its latest counted result was no failure,
    /// which already does).
    pub fn doubt(&mut self, since: SystemTime) -> bool {
        let was = self.overdue_since.is_some() || self.last.as_ref().is_some_and(|l| !l.ok);
        self.overdue_since = Some(since);
        !was
    }

    /// Records one probe that started at `at` (wall clock) and finished at `now`; returns
    /// `(from, to)` when the status changed. Only successes feed the RTT average.
    pub fn record(
        &mut self,
        at: SystemTime,
        now: Instant,
        ok: bool,
        rtt: Duration,
        reason: Option<Arc<str>>,
    ) -> Option<(Status, Status)> {
        if ok {
            self.rtt.observe(now, rtt);
            self.last_success = Some(at);
        }
        self.overdue_since = None;
        self.last = Some(LastProbe {
            at,
            ok,
            rtt,
            reason: if ok { None } else { reason },
        });
        self.hysteresis.observe(ok)
    }

    pub fn status(&self) -> Status {
        self.hysteresis.status()
    }

    /// The read-only view a snapshot carries.
    pub fn view(&self) -> TargetView {
        TargetView {
            status: self.hysteresis.status(),
            last: self.last.clone(),
            last_success: self.last_success,
            rtt: self.rtt.get(),
            transitions: self.hysteresis.transitions(),
            consecutive_failures: self.hysteresis.consecutive_failures(),
            consecutive_successes: self.hysteresis.consecutive_successes(),
            overdue_since: self.overdue_since,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::{CheckingEndpoint as Checking, Degraded, Online};

    /// Feeds `results` ('+' success, '-' failure) and returns the status after each.
    fn run(tolerated: u32, rise: u32, results: &str) -> Vec<Status> {
        let mut h = Hysteresis::new(tolerated, rise);
        results
            .chars()
            .map(|c| {
                h.observe(c == '+');
                h.status()
            })
            .collect()
    }

    #[test]
    fn state_table() {
        // (tolerated_failures, rise, results, statuses after each result)
        let rows: &[(u32, u32, &str, &[Status])] = &[
            (0, 1, "+", &[Online]),
            (0, 1, "-", &[Degraded]),
            (3, 2, "+", &[Online]),
            // A target that has never succeeded is Degraded on its first failure, and
            // then needs `rise` successes like any Degraded target.
            (2, 2, "---", &[Degraded, Degraded, Degraded]),
            (2, 2, "-++", &[Degraded, Degraded, Online]),
            (5, 1, "-+", &[Degraded, Online]),
            // Degraded after tolerated_failures + 1 consecutive failures.
            (1, 1, "+--", &[Online, Online, Degraded]),
            (3, 2, "+----", &[Online, Online, Online, Online, Degraded]),
            // A success resets the failure count.
            (1, 1, "+-+-+-", &[Online; 6]),
            // Online again only after `rise` consecutive successes.
            (
                0,
                3,
                "-++-+++",
                &[
                    Degraded, Degraded, Degraded, Degraded, Degraded, Degraded, Online,
                ],
            ),
            (0, 1, "-+", &[Degraded, Online]),
        ];
        for (tolerated, rise, results, want) in rows {
            assert_eq!(
                &run(*tolerated, *rise, results),
                want,
                "tolerated={tolerated} rise={rise} {results}"
            );
        }
    }

    #[test]
    fn observe_reports_each_flip_once_and_counts_it() {
        let mut h = Hysteresis::new(1, 2);
        assert_eq!(h.observe(true), Some((Checking, Online)));
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some((Online, Degraded)));
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(true), None);
        assert_eq!(h.observe(true), Some((Degraded, Online)));
        assert_eq!(h.transitions(), 3);
        assert_eq!(h.consecutive_successes(), 2);
        assert_eq!(h.consecutive_failures(), 0);
    }

    #[test]
    fn rise_zero_is_treated_as_one() {
        assert_eq!(run(0, 0, "-+"), [Degraded, Online]);
    }

    fn close(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) < Duration::from_micros(10)
    }

    #[tokio::test(start_paused = true)]
    async fn ewma_decays_with_elapsed_time() {
        let decay = Duration::from_secs(10);
        let mut e = Ewma::new(decay);
        assert_eq!(e.get(), None);
        e.observe(
            tokio::time::Instant::now().into_std(),
            Duration::from_millis(100),
        );
        assert!(close(e.get().unwrap(), Duration::from_millis(100)));

        // One decay period later, the new sample carries weight 1 - 1/e.
        tokio::time::advance(decay).await;
        e.observe(
            tokio::time::Instant::now().into_std(),
            Duration::from_millis(200),
        );
        let want = 0.1 * (-1f64).exp() + 0.2 * (1.0 - (-1f64).exp());
        assert!(
            close(e.get().unwrap(), Duration::from_secs_f64(want)),
            "{:?}",
            e.get()
        );

        // After a long silence the old value is forgotten.
        tokio::time::advance(decay * 50).await;
        e.observe(
            tokio::time::Instant::now().into_std(),
            Duration::from_millis(30),
        );
        assert!(
            close(e.get().unwrap(), Duration::from_millis(30)),
            "{:?}",
            e.get()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ewma_with_frequent_samples_moves_slowly() {
        let mut e = Ewma::new(Duration::from_secs(5));
        e.observe(
            tokio::time::Instant::now().into_std(),
            Duration::from_millis(10),
        );
        // A 1 s-interval target jumps from 10 ms to 110 ms: after one probe the average
        // has moved less than a fifth of the way, after 15 probes most of the way.
        let ms = Duration::from_millis;
        let mut probes = async |n: usize| {
            for _ in 0..n {
                tokio::time::advance(Duration::from_secs(1)).await;
                e.observe(tokio::time::Instant::now().into_std(), ms(110));
            }
            e.get().unwrap()
        };
        let one = probes(1).await;
        assert!(one > ms(10) && one < ms(30), "{one:?}");
        let many = probes(14).await;
        assert!(many > ms(100) && many < ms(110), "{many:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn target_health_keeps_last_probe_and_smooths_only_successes() {
        let mut t = TargetHealth::new(0, 1, Duration::from_secs(1));
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let now = tokio::time::Instant::now().into_std();
        assert_eq!(
            t.record(at, now, true, Duration::from_millis(5), None),
            Some((Checking, Online))
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let now = tokio::time::Instant::now().into_std();
        let flip = t.record(
            at,
            now,
            false,
            Duration::from_secs(1),
            Some("timeout after 1s".into()),
        );
        assert_eq!(flip, Some((Online, Degraded)));
        let v = t.view();
        assert_eq!(v.status, Degraded);
        assert_eq!(v.transitions, 2);
        assert_eq!(v.consecutive_failures, 1);
        // The failed probe's duration does not feed the average.
        assert!(close(v.rtt.unwrap(), Duration::from_millis(5)));
        let last = v.last.unwrap();
        assert!(!last.ok);
        assert_eq!(last.reason.as_deref(), Some("timeout after 1s"));
        assert_eq!(last.rtt, Duration::from_secs(1));
        assert_eq!(last.at, at);
    }
}
