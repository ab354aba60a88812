//! Event times: RFC 3339 strings or integer epoch milliseconds, limited to 1970..2100.
//!
//! The common shapes (`2023-07-10T11:42:36Z`, `2024-01-02T03:04:05.123456+02:00`) are parsed by a
//! small hand-written parser; anything else falls back to chrono's RFC 3339 parser.

use super::RejectReason;
use super::wire::Loose;

/// First accepted instant, epoch milliseconds (1970-01-01T00:00:00Z).
pub(crate) const MIN_MS: i64 = 0;
/// First rejected instant, epoch milliseconds (2100-01-01T00:00:00Z).
pub(crate) const MAX_MS: i64 = 4_102_444_800_000;

/// Checks that an epoch-millisecond time lies in `[MIN_MS, MAX_MS)`.
pub(crate) fn check_range(ms: i64, given: impl FnOnce() -> String) -> Result<i64, RejectReason> {
    if (MIN_MS..MAX_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(RejectReason::TimeOutOfRange { detail: given() })
    }
}

/// Parses an RFC 3339 timestamp into epoch milliseconds (fractions below a millisecond are
/// truncated). Returns `None` when the text is not RFC 3339. The result is not range-checked.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    fast_rfc3339(s.as_bytes()).or_else(|| {
        // Not RFC 3339: `None`, as documented.
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis())
    })
}

/// Decodes a time field given as an RFC 3339 string, an integer of epoch milliseconds, or a
/// string of digits holding epoch milliseconds.
pub(crate) fn from_loose(
    value: &Loose<'_>,
    format: &'static str,
    field: &'static str,
) -> Result<i64, RejectReason> {
    match value {
        Loose::Str(s) => {
            let s = s.as_ref();
            let ms = if !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()) {
                // Nineteen digits may exceed an i64: `None`, rejected below as invalid.
                s.parse::<i64>().ok()
            } else {
                parse_rfc3339_ms(s)
            };
            match ms {
                Some(ms) => check_range(ms, || s.to_owned()),
                None => Err(RejectReason::InvalidField {
                    format,
                    field,
                    detail: format!(
                        "expected an RFC 3339 time or epoch milliseconds, found {}",
                        value.describe()
                    ),
                }),
            }
        }
        Loose::U64(n) => {
            let ms = i64::try_from(*n).unwrap_or(i64::MAX);
            check_range(ms, || n.to_string())
        }
        Loose::I64(n) => check_range(*n, || n.to_string()),
        Loose::Null => Err(RejectReason::MissingField { format, field }),
        other => Err(RejectReason::InvalidField {
            format,
            field,
            detail: format!(
                "expected an RFC 3339 string or integer epoch milliseconds, found {} ({})",
                other.type_name(),
                other.describe()
            ),
        }),
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        _ => 28,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM)`; leap seconds and other rarities go to chrono.
fn fast_rfc3339(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let min = digits(&b[14..16])?;
    let sec = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                frac_ms = frac_ms * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            frac_ms *= 10;
        }
    }
    let offset_s: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = digits(&b[i + 1..i + 3])?;
            let om = digits(&b[i + 4..i + 6])?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec) - offset_s;
    Some(secs * 1000 + frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn chrono_ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn fast_parser_agrees_with_chrono() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2023-07-10T11:42:36Z",
            "2024-02-29T23:59:59.999Z",
            "2019-01-01T00:00:00.123456Z",
            "2024-01-02T03:04:05.1+02:00",
            "2024-01-02T03:04:05-07:30",
            "2099-12-31T23:59:59.999999999Z",
            "2000-03-01t00:00:00z",
        ] {
            assert_eq!(fast_rfc3339(s.as_bytes()), Some(chrono_ms(s)), "{s}");
        }
    }

    #[test]
    fn rejects_impossible_dates() {
        for s in [
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-01-01T24:00:00Z",
            "2023-01-01T00:00:00",
            "2023-01-01T00:00:00.Z",
            "2023-01-01",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339_ms(s), None, "{s}");
        }
    }

    #[test]
    fn leap_second_falls_back_to_chrono() {
        assert!(parse_rfc3339_ms("2016-12-31T23:59:60Z").is_some());
    }

    #[test]
    fn range_is_enforced() {
        let f = |s: &'static str| from_loose(&Loose::Str(Cow::Borrowed(s)), "native", "time");
        assert_eq!(f("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(f("2099-12-31T23:59:59.999Z"), Ok(MAX_MS - 1));
        assert_eq!(
            f("2100-01-01T00:00:00Z").unwrap_err().code(),
            "time_out_of_range"
        );
        assert_eq!(
            f("9999-12-31T23:59:59Z").unwrap_err().code(),
            "time_out_of_range"
        );
        assert_eq!(
            f("1969-12-31T23:59:59.999Z").unwrap_err().code(),
            "time_out_of_range"
        );
        assert_eq!(f("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(f("not a time").unwrap_err().code(), "invalid_field");
        let n = |v: Loose<'static>| from_loose(&v, "native", "time");
        assert_eq!(n(Loose::U64(1_700_000_000_000)), Ok(1_700_000_000_000));
        assert_eq!(
            n(Loose::U64(u64::MAX)).unwrap_err().code(),
            "time_out_of_range"
        );
        assert_eq!(n(Loose::I64(-1)).unwrap_err().code(), "time_out_of_range");
        assert_eq!(n(Loose::F64(1.5)).unwrap_err().code(), "invalid_field");
        assert_eq!(n(Loose::Bool(true)).unwrap_err().code(), "invalid_field");
    }
}
