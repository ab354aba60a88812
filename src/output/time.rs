//! Time formatting for output records.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike};
use compact_str::CompactString;

/// Formats epoch milliseconds as RFC 3339 with milliseconds, in UTC (`2026-01-05T09:30:00.000Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// [`rfc3339_ms`] without a heap allocation for years 0 to 9999 (the string is 24 bytes, held
/// inline); the per-event score line uses it.
pub(crate) fn rfc3339_ms_inline(ms: i64) -> CompactString {
    let Some(t) = DateTime::from_timestamp_millis(ms).filter(|t| (0..=9999).contains(&t.year()))
    else {
        return CompactString::from(rfc3339_ms(ms));
    };
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, t.year() as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    put(20, 3, t.timestamp_subsec_millis().min(999));
    CompactString::from_utf8(b).unwrap_or_else(|_| CompactString::from(rfc3339_ms(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_format_matches_chrono() {
        let mut ms: i64 = -62_167_219_200_000; // 0000-01-01
        while ms < 253_402_300_800_000 {
            assert_eq!(rfc3339_ms_inline(ms).as_str(), rfc3339_ms(ms), "at {ms}");
            ms += 987_654_321_123;
        }
        for ms in [
            0,
            1,
            999,
            1_767_225_599_999,
            1_767_225_600_000,
            -1,
            i64::MAX,
        ] {
            assert_eq!(rfc3339_ms_inline(ms).as_str(), rfc3339_ms(ms), "at {ms}");
        }
        assert_eq!(rfc3339_ms_inline(0).as_str(), "1970-01-01T00:00:00.000Z");
    }
}
