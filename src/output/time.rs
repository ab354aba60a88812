//! Time formatting for output records.

use chrono::{DateTime, SecondsFormat};

/// Formats epoch milliseconds as RFC 3339 with milliseconds, in UTC (`2026-01-05T09:30:00.000Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}
