//! Hybrid logical clock: wall-clock milliseconds plus a logical counter, so that times
//! taken on different nodes order like the events they stamp even when the wall clocks
//! disagree a little (Kulkarni et al., "Logical Physical Clocks", 2014).
//!
//! Pure: the wall clock is an argument. A drain made after one was seen (locally or from a
//! peer) always gets a greater time, so "last writer wins" means what an operator expects.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One hybrid-logical-clock time. Orders by wall time, then by the logical counter; the
/// node name that made it is the final tiebreak (see [`DrainRecord`](super::drains::DrainRecord)).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (the greatest wall time seen).
    #[serde(rename = "ms")]
    pub wall_ms: u64,
    /// Events at the same `wall_ms`, counted.
    #[serde(rename = "n", default)]
    pub logical: u32,
}

impl Hlc {
    pub const fn new(wall_ms: u64, logical: u32) -> Self {
        Self { wall_ms, logical }
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.wall_ms, self.logical)
    }
}

/// A node's clock: the last time it handed out or saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    last: Hlc,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last time handed out or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A new time for a local event at wall time `wall_ms`: greater than every time this
    /// clock has handed out or observed.
    pub fn tick(&mut self, wall_ms: u64) -> Hlc {
        self.last = if wall_ms > self.last.wall_ms {
            Hlc::new(wall_ms, 0)
        } else {
            Self::bump(self.last)
        };
        self.last
    }

    /// Takes in a time seen from a peer (a received record) at local wall time `wall_ms`;
    /// returns the clock's new time, greater than both `remote` and every earlier time.
    pub fn observe(&mut self, remote: Hlc, wall_ms: u64) -> Hlc {
        let top = self.last.max(remote);
        self.last = if wall_ms > top.wall_ms {
            Hlc::new(wall_ms, 0)
        } else {
            Self::bump(top)
        };
        self.last
    }

    /// The next time after `t`; a saturated counter moves to the next millisecond.
    fn bump(t: Hlc) -> Hlc {
        match t.logical.checked_add(1) {
            Some(n) => Hlc::new(t.wall_ms, n),
            None => Hlc::new(t.wall_ms.saturating_add(1), 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks at the wall clock times of the rows: the time follows the wall clock when it
    /// moves on, and counts within a millisecond and when the wall clock steps back.
    #[test]
    fn tick_follows_the_wall_clock_and_counts_when_it_does_not_move_on() {
        let mut c = Clock::new();
        // (wall clock ms, the event's wall ms, counter)
        let rows = [
            (1_000, 1_000, 0),
            (1_005, 1_005, 0),
            (1_005, 1_005, 1),
            (990, 1_005, 2),
            (1_006, 1_006, 0),
        ];
        for (wall, ms, n) in rows {
            assert_eq!(c.tick(wall), Hlc::new(ms, n), "tick at {wall}");
        }
    }

    #[test]
    fn observe_moves_past_a_peer_ahead_of_us() {
        let mut c = Clock::new();
        c.tick(1_000);
        let seen = c.observe(Hlc::new(5_000, 7), 1_001);
        assert_eq!(seen, Hlc::new(5_000, 8));
        // A local event after it is later than the peer's, though our wall clock is behind.
        let next = c.tick(1_002);
        assert!(next > Hlc::new(5_000, 7));
        assert_eq!(next, Hlc::new(5_000, 9));
    }

    #[test]
    fn observe_of_an_older_time_keeps_our_order() {
        let mut c = Clock::new();
        c.tick(2_000);
        assert_eq!(c.observe(Hlc::new(1_000, 3), 2_000), Hlc::new(2_000, 1));
        assert_eq!(c.observe(Hlc::new(1_000, 3), 3_000), Hlc::new(3_000, 0));
    }

    #[test]
    fn a_saturated_counter_moves_to_the_next_millisecond() {
        let mut c = Clock::new();
        c.observe(Hlc::new(10, u32::MAX), 0);
        assert_eq!(c.last(), Hlc::new(11, 0));
        assert!(c.tick(0) > Hlc::new(10, u32::MAX));
    }

    #[test]
    fn times_order_by_wall_then_counter() {
        assert!(Hlc::new(1, 9) < Hlc::new(2, 0));
        assert!(Hlc::new(2, 0) < Hlc::new(2, 1));
        assert_eq!(Hlc::new(5, 3).to_string(), "5.3");
    }
}
