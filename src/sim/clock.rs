//! Calendar arithmetic on epoch milliseconds, and RFC 3339 formatting.
//!
//! Hand-written so that formatting millions of timestamps costs no allocation.

/// One second in milliseconds.
pub(crate) const SEC: i64 = 1000;
/// One minute in milliseconds.
pub(crate) const MIN: i64 = 60 * SEC;
/// One hour in milliseconds.
pub(crate) const HOUR: i64 = 60 * MIN;
/// One day in milliseconds.
pub(crate) const DAY: i64 = 24 * HOUR;

/// Civil date `(year, month 1..=12, day 1..=31)` of a day number counted from 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm.
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Number of days in a month.
pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// A local calendar view of an instant for an agent at a fixed UTC offset.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LocalTime {
    /// Civil year.
    pub year: i64,
    /// Month 1..=12.
    pub month: u32,
    /// Day of month 1..=31.
    pub day: u32,
    /// Hour of day as a fraction (0.0..24.0).
    pub hour: f64,
    /// Day of week, 0 = Sunday.
    pub weekday: u32,
}

impl LocalTime {
    /// The local time at `t_ms` for a UTC offset of `off_ms`.
    pub(crate) fn at(t_ms: i64, off_ms: i64) -> LocalTime {
        let l = t_ms + off_ms;
        let days = l.div_euclid(DAY);
        let (year, month, day) = civil_from_days(days);
        LocalTime {
            year,
            month,
            day,
            hour: l.rem_euclid(DAY) as f64 / HOUR as f64,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// Saturday or Sunday.
    pub(crate) fn is_weekend(&self) -> bool {
        self.weekday == 0 || self.weekday == 6
    }

    /// The last three days of a month or its first day (closing the books).
    pub(crate) fn is_month_end(&self) -> bool {
        self.day + 2 >= days_in_month(self.year, self.month) || self.day == 1
    }
}

/// Start of the local calendar day containing `t_ms`, as a UTC instant.
pub(crate) fn local_midnight(t_ms: i64, off_ms: i64) -> i64 {
    (t_ms + off_ms).div_euclid(DAY) * DAY - off_ms
}

fn push2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10 % 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

/// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn write_rfc3339_ms(buf: &mut Vec<u8>, t_ms: i64) {
    let days = t_ms.div_euclid(DAY);
    let rem = t_ms.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    push2(buf, y / 100);
    push2(buf, y % 100);
    buf.push(b'-');
    push2(buf, m);
    buf.push(b'-');
    push2(buf, d);
    buf.push(b'T');
    let secs = (rem / SEC) as u32;
    push2(buf, secs / 3600);
    buf.push(b':');
    push2(buf, secs / 60 % 60);
    buf.push(b':');
    push2(buf, secs % 60);
    buf.push(b'.');
    let ms = (rem % SEC) as u32;
    buf.push(b'0' + (ms / 100) as u8);
    push2(buf, ms % 100);
    buf.push(b'Z');
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` as a string.
pub(crate) fn rfc3339_ms(t_ms: i64) -> String {
    let mut buf = Vec::with_capacity(24);
    write_rfc3339_ms(&mut buf, t_ms);
    // ASCII digits and separators: always UTF-8.
    String::from_utf8(buf).unwrap_or_default()
}

/// `YYYY-MM-DD` of the UTC day containing `t_ms` shifted by `off_ms`.
pub(crate) fn date_parts(t_ms: i64, off_ms: i64) -> (i64, u32, u32) {
    civil_from_days((t_ms + off_ms).div_euclid(DAY))
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    // Not RFC 3339: `None`, as documented.
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_chrono() {
        for &t in &[
            0i64,
            1_767_571_200_000,
            1_767_571_200_123 + 13 * HOUR + 7 * MIN + 9 * SEC,
            951_782_400_000,
        ] {
            let ours = rfc3339_ms(t);
            assert_eq!(parse_rfc3339(&ours), Some(t), "{ours}");
        }
        assert_eq!(rfc3339_ms(1_767_571_200_000), "2026-01-05T00:00:00.000Z");
    }

    #[test]
    fn local_calendar() {
        // 2026-01-05 is a Monday.
        let t = parse_rfc3339("2026-01-05T03:00:00Z").unwrap_or_default();
        let utc = LocalTime::at(t, 0);
        assert_eq!((utc.year, utc.month, utc.day, utc.weekday), (2026, 1, 5, 1));
        let la = LocalTime::at(t, -8 * HOUR);
        assert_eq!((la.day, la.weekday), (4, 0));
        assert!(la.is_weekend());
        assert!((la.hour - 19.0).abs() < 1e-9);
        let jan30 = LocalTime::at(t + 25 * DAY, 0);
        assert!(jan30.is_month_end());
        assert!(!utc.is_month_end());
        assert_eq!(local_midnight(t, -8 * HOUR), t - 3 * HOUR - 16 * HOUR);
    }
}
