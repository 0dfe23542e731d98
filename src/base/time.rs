//! Timestamps as signpost writes them.

use std::time::SystemTime;

/// RFC 3339 UTC with seconds, e.g. `2026-11-21T10:00:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
