//! The admin listener's connections: at most `admin.max_connections` at once, and none
//! waits on its client longer than `admin.request_timeout`.
//!
//! A connection is *waiting* while signpost waits for its client: from accept until the
//! request's head and body have arrived, and from handing over an answer until the next
//! request has (so writing the answer to a client that does not read, and an idle
//! keep-alive, count too). It is *busy* while signpost works on a whole request. A
//! connection waiting longer than the timeout is closed. When every slot is taken, a new
//! connection closes the one that has waited longest, so a client holding half-sent
//! requests cannot keep a well-behaved one out: its request, sent whole, is served at
//! once. Only when every slot is busy does a new connection wait (in the listen backlog)
//! for one to finish.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

const BUSY: u64 = u64::MAX;

/// One connection's slot.
#[derive(Debug)]
pub struct Slot {
    base: Instant,
    timeout: Duration,
    /// Milliseconds after `base` the connection began waiting for its client; [`BUSY`]
    /// while a request is being worked on.
    waiting_since: AtomicU64,
    /// Notified when the connection is to close (a newer one took its slot).
    close: Notify,
}

impl Slot {
    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// The request has arrived whole: it is worked on, with no deadline.
    pub fn busy(&self) {
        self.waiting_since.store(BUSY, Ordering::Relaxed);
    }

    /// Waiting for the client again (its answer handed over).
    pub fn waiting(&self) {
        self.waiting_since.store(self.now_ms(), Ordering::Relaxed);
    }

    fn since_ms(&self) -> Option<u64> {
        match self.waiting_since.load(Ordering::Relaxed) {
            BUSY => None,
            ms => Some(ms),
        }
    }

    /// When the client's time runs out; `None` while busy.
    pub fn deadline(&self) -> Option<Instant> {
        self.since_ms()
            .map(|ms| self.base + Duration::from_millis(ms) + self.timeout)
    }

    /// Resolves when a newer connection took this one's slot.
    pub async fn evicted(&self) {
        self.close.notified().await;
    }
}

/// Every open connection's slot.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    timeout: Duration,
    base: Instant,
    open: Mutex<(u64, HashMap<u64, Arc<Slot>>)>,
    freed: Notify,
}

/// A connection's hold on its slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Held {
    slots: Arc<Slots>,
    id: u64,
    pub slot: Arc<Slot>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.1.remove(&self.id).is_some() {
            self.slots.freed.notify_one();
        }
    }
}

/// How a slot was found for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// A free slot.
    Free,
    /// The slot of the connection that had waited longest, which is being closed.
    Evicted,
}

impl Slots {
    pub fn new(max: usize, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            timeout,
            base: Instant::now(),
            open: Mutex::new((0, HashMap::new())),
            freed: Notify::new(),
        })
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A slot for a new connection (waiting from now): a free one, else the one whose
    /// connection has waited longest (that connection is told to close); while every slot
    /// is busy, waits for one to be freed.
    pub async fn admit(self: &Arc<Self>) -> (Held, Admitted) {
        loop {
            // Registered before looking, so a slot freed meanwhile is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(held) = self.try_admit() {
                return held;
            }
            freed.await;
        }
    }

    fn try_admit(self: &Arc<Self>) -> Option<(Held, Admitted)> {
        let mut guard = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (next, open) = &mut *guard;
        let mut how = Admitted::Free;
        if open.len() >= self.max {
            let (&oldest, _) = open
                .iter()
                .filter_map(|(id, s)| s.since_ms().map(|ms| (id, ms)))
                .min_by_key(|&(_, ms)| ms)?;
            if let Some(s) = open.remove(&oldest) {
                s.close.notify_one();
            }
            how = Admitted::Evicted;
        }
        let slot = Arc::new(Slot {
            base: self.base,
            timeout: self.timeout,
            waiting_since: AtomicU64::new(0),
            close: Notify::new(),
        });
        slot.waiting();
        *next += 1;
        let id = *next;
        open.insert(id, slot.clone());
        Some((
            Held {
                slots: self.clone(),
                id,
                slot,
            },
            how,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_slots_close_the_longest_waiting_then_wait_for_busy_ones() {
        let slots = Slots::new(2, Duration::from_secs(10));
        let (a, how) = slots.admit().await;
        assert_eq!(how, Admitted::Free);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (b, _) = slots.admit().await;
        b.slot.waiting();
        assert_eq!(slots.len(), 2);
        // Full: `a` has waited longest and is told to close.
        let (c, how) = slots.admit().await;
        assert_eq!(how, Admitted::Evicted);
        tokio::time::timeout(Duration::from_millis(100), a.slot.evicted())
            .await
            .expect("the oldest waiting connection is told to close");
        assert_eq!(slots.len(), 2);
        drop(a);
        assert_eq!(slots.len(), 2, "an evicted slot is not freed twice");
        // Both busy: a new connection waits until one is done.
        b.slot.busy();
        c.slot.busy();
        assert!(slots.try_admit().is_none());
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.admit().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(b);
        let (_d, how) = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("admitted once a slot is freed")
            .unwrap();
        assert_eq!(how, Admitted::Free);
        assert_eq!(slots.len(), 2);
        assert!(c.slot.deadline().is_none());
        c.slot.waiting();
        assert!(c.slot.deadline().unwrap() > Instant::now() + Duration::from_secs(9));
    }
}
