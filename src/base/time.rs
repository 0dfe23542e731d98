//! Timestamps as signpost writes them, and the range of times it reads.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last millisecond of the year 9999 (UTC): the latest time signpost reads from a
/// file or a peer, and the latest it writes.
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;

/// The longest drain ramp (7 days), for the API and for what is read back from files.
pub const MAX_RAMP_MS: u64 = 7 * 86_400_000;

/// RFC 3339 UTC with seconds, e.g. `2026-11-21T10:00:00Z`. Times outside 1970–9999
/// (which files and peers are not allowed to give, see [`MAX_TIME_MS`]) are written as
/// the nearest end of that range, never a panic.
pub fn rfc3339(t: SystemTime) -> String {
    let t = t.clamp(UNIX_EPOCH, time_of_ms(MAX_TIME_MS));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The time `ms` milliseconds after the Unix epoch, at most [`MAX_TIME_MS`].
pub fn time_of_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.min(MAX_TIME_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_out_of_range_are_written_at_its_ends() {
        assert_eq!(rfc3339(time_of_ms(MAX_TIME_MS)), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(time_of_ms(u64::MAX)), "9999-12-31T23:59:59Z");
        let far = UNIX_EPOCH + Duration::from_secs(i64::MAX as u64 / 2);
        assert_eq!(rfc3339(far), "9999-12-31T23:59:59Z");
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(rfc3339(before), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_764_000_000)),
            "2025-11-24T16:00:00Z"
        );
    }
}
