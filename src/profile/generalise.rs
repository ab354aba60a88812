//! Resource generalisation: ids, dates, hashes and numbers collapse to placeholders so that an
//! agent touching a new object key or customer id as part of its routine is not novel.
//!
//! `s3://raw/2026/10/01/part-0001.json.gz` becomes `s3://raw/{date}/part-{n}.json.gz`, and
//! `crm://customers/8812/orders` becomes `crm://customers/{n}/orders`. The prefix (scheme,
//! authority and first path segment) is a coarser pattern used for "new area" novelty.

use std::borrow::Cow;

/// Generalises `resource` into a pattern. Returns the input unchanged (borrowed) when nothing
/// needs collapsing, so the common case allocates nothing.
pub(crate) fn generalise(resource: &str) -> Cow<'_, str> {
    if !resource.bytes().any(|b| b.is_ascii_digit()) {
        return Cow::Borrowed(resource);
    }
    let mut out = String::with_capacity(resource.len());
    let (head, path) = split_head(resource);
    out.push_str(head);
    let segments: smallvec::SmallVec<[&str; 16]> = path.split('/').collect();
    let mut i = 0;
    let mut first = true;
    while i < segments.len() {
        if !first {
            out.push('/');
        }
        first = false;
        // A date written as three path segments: YYYY/MM/DD (optionally /HH).
        if i + 2 < segments.len()
            && is_year(segments[i])
            && is_num_in(segments[i + 1], 1, 12)
            && is_num_in(segments[i + 2], 1, 31)
        {
            out.push_str("{date}");
            i += 3;
            if i < segments.len() && i + 1 < segments.len() && is_num_in(segments[i], 0, 23) {
                i += 1;
            }
            continue;
        }
        generalise_segment(segments[i], &mut out);
        i += 1;
    }
    Cow::Owned(out)
}

/// The first calendar date named in a resource (`.../2026/10/01/...`, `dt=2026-10-01`,
/// `20261001`), as days since 1970-01-01. Lets a detector tell reads of current data from reads
/// of old partitions.
pub(crate) fn resource_day(resource: &str) -> Option<i64> {
    let b = resource.as_bytes();
    let num = |s: usize, n: usize| -> Option<u32> {
        if s + n <= b.len() && b[s..s + n].iter().all(u8::is_ascii_digit) {
            // At most four ASCII digits: always a u32.
            resource[s..s + n].parse().ok()
        } else {
            None
        }
    };
    for i in 0..b.len().saturating_sub(7) {
        let boundary = i == 0 || !b[i - 1].is_ascii_digit();
        if !boundary || !(b[i] == b'1' || b[i] == b'2') {
            continue;
        }
        let Some(y) = num(i, 4).filter(|y| (1970..2100).contains(y)) else {
            continue;
        };
        let sep = b.get(i + 4).copied();
        let date = match sep {
            Some(b'/') | Some(b'-') if b.get(i + 7).copied() == sep => {
                num(i + 5, 2).zip(num(i + 8, 2))
            }
            Some(c) if c.is_ascii_digit() && b.get(i + 8).is_none_or(|c| !c.is_ascii_digit()) => {
                num(i + 4, 2).zip(num(i + 6, 2))
            }
            _ => None,
        };
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
        if let Some(day) = date.and_then(|(m, d)| chrono::NaiveDate::from_ymd_opt(y as i32, m, d)) {
            return Some((day - epoch).num_days());
        }
    }
    None
}

/// The coarse area of a resource: scheme and authority plus the first path segment, generalised.
/// `postgres://hr/payroll` -> `postgres://hr`, `s3://raw/2026/..` -> `s3://raw`,
/// `mailto:x@evil.example` -> `@evil.example` (the destination domain).
pub fn prefix(pattern: &str) -> &str {
    if let Some(rest) = pattern.strip_prefix("mailto:") {
        return match rest.rfind('@') {
            Some(at) => &pattern[7 + at..],
            None => pattern,
        };
    }
    let (head, path) = split_head(pattern);
    if head.ends_with("://") {
        // scheme://authority[/...]
        match path.find('/') {
            Some(slash) => &pattern[..head.len() + slash],
            None => pattern,
        }
    } else if pattern.starts_with("arn:") {
        // arn:partition:service:region:account:resource-type/...
        let mut colons = 0;
        for (i, b) in pattern.bytes().enumerate() {
            if b == b':' {
                colons += 1;
            }
            if colons == 5 {
                let rest = &pattern[i + 1..];
                let end = rest
                    .find(['/', ':'])
                    .map(|p| i + 1 + p)
                    .unwrap_or(pattern.len());
                return &pattern[..end];
            }
        }
        pattern
    } else {
        match path.find('/') {
            Some(slash) if slash > 0 => &pattern[..head.len() + slash],
            _ => pattern,
        }
    }
}

/// Whether a resource names an outside destination (a recipient, a URL, an account) rather than
/// an internal object. Peers excuse new capabilities but never new destinations.
pub(crate) fn is_destination(resource: &str) -> bool {
    resource.starts_with("mailto:")
        || resource.starts_with("http://")
        || resource.starts_with("https://")
        || resource.starts_with("iban:")
        || resource.starts_with("account:")
        || resource.starts_with("payee:")
}

/// The names of places a generalised pattern mentions: its authority and path segments (or,
/// for other forms such as ARNs and `mailto:`, the parts between separators), without the
/// scheme, without any part that holds a placeholder, and without a final file name (a last
/// segment with an extension names an object in a place, not a place).
/// `ci://org/web-frontend/pipelines/{n}` names `org`, `web-frontend` and `pipelines`; the same
/// repository reached through `git://org/web-frontend` shares two of them.
pub fn names(pattern: &str) -> impl Iterator<Item = &str> {
    let (_, rest) = split_head(pattern);
    let rest = if pattern.starts_with("arn:") || pattern.starts_with("mailto:") {
        pattern.split_once(':').map_or(rest, |(_, r)| r)
    } else {
        rest
    };
    let rest = match rest.rsplit_once('/') {
        Some((dir, file)) if file.contains('.') => dir,
        _ => rest,
    };
    rest.split(['/', ':', '@'])
        .filter(|s| !s.is_empty() && !s.contains('{'))
}

/// Splits `scheme://` off a resource (the head is empty without one).
fn split_head(resource: &str) -> (&str, &str) {
    // Each colon is a candidate; resources are short and have few.
    let b = resource.as_bytes();
    for p in memchr::memchr_iter(b':', b) {
        if b[p + 1..].starts_with(b"//") {
            return resource.split_at(p + 3);
        }
    }
    ("", resource)
}

fn is_year(s: &str) -> bool {
    s.len() == 4
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s.starts_with("19") || s.starts_with("20"))
}

fn is_num_in(s: &str, lo: u32, hi: u32) -> bool {
    (1..=2).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|v| (lo..=hi).contains(&v))
}

/// Generalises one path segment token by token (tokens are separated by `-_.=:@,;+ `).
fn generalise_segment(seg: &str, out: &mut String) {
    if seg.is_empty() {
        return;
    }
    if is_uuid(seg) {
        out.push_str("{uuid}");
        return;
    }
    // Dates inside a segment: 2026-10-01, 20261001, 2026-10-01T12:00:00Z.
    let mut rest = seg;
    while !rest.is_empty() {
        let tok_end = rest
            .bytes()
            .position(|b| {
                matches!(
                    b,
                    b'-' | b'_' | b'.' | b'=' | b':' | b'@' | b',' | b';' | b'+' | b' '
                )
            })
            .unwrap_or(rest.len());
        if let Some(len) = date_len(rest) {
            out.push_str("{date}");
            rest = &rest[len..];
            continue;
        }
        let tok = &rest[..tok_end];
        out.push_str(classify_token(tok).unwrap_or(tok));
        if tok_end < rest.len() {
            out.push_str(&rest[tok_end..tok_end + 1]);
            rest = &rest[tok_end + 1..];
        } else {
            rest = "";
        }
    }
}

/// Length of an ISO date (with optional time) at the start of `s`.
fn date_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.end <= b.len() && b[r].iter().all(u8::is_ascii_digit);
    if b.len() >= 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && is_year(&s[..4])
    {
        let mut n = 10;
        if b.len() >= 19
            && (b[10] == b'T' || b[10] == b' ')
            && digits(11..13)
            && b[13] == b':'
            && digits(14..16)
            && b[16] == b':'
            && digits(17..19)
        {
            n = 19;
            if b.len() > n && b[n] == b'Z' {
                n += 1;
            }
        }
        return Some(n);
    }
    if b.len() >= 8
        && digits(0..8)
        && (b.len() == 8 || !b[8].is_ascii_alphanumeric())
        && is_year(&s[..4])
    {
        // ASCII digits, checked above: these parse.
        let m: u32 = s[4..6].parse().ok()?;
        let d: u32 = s[6..8].parse().ok()?;
        if (1..=12).contains(&m) && (1..=31).contains(&d) {
            return Some(8);
        }
    }
    None
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The placeholder for an id-like token, or `None` to keep the token.
fn classify_token(tok: &str) -> Option<&'static str> {
    let digits = tok.bytes().filter(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    if digits == tok.len() {
        return Some("{n}");
    }
    let hex = tok.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && tok.len() >= 8 {
        return Some("{hex}");
    }
    // Mixed letters and digits: an id when digits make up a good part of it (`cus8812`,
    // `a1b2c3d4`, `i-0abc..` handled by the hex rule), but keep names like `v2` or `s3`.
    if tok.len() >= 6 && digits * 4 >= tok.len() {
        return Some("{id}");
    }
    // A name followed by a number: `part0001`, `shard12`.
    let alpha_end = tok.find(|c: char| c.is_ascii_digit()).unwrap_or(tok.len());
    if alpha_end > 0
        && tok[alpha_end..].bytes().all(|b| b.is_ascii_digit())
        && tok.len() - alpha_end >= 3
    {
        return Some("{id}");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_parts_without_scheme_or_placeholder() {
        fn n(p: &str) -> Vec<&str> {
            names(p).collect()
        }
        assert_eq!(
            n("ci://org/web-frontend/pipelines/{n}"),
            ["org", "web-frontend", "pipelines"]
        );
        assert_eq!(n("git://org/web-frontend"), ["org", "web-frontend"]);
        assert_eq!(
            n("secrets://ci/web-frontend/deploy-token"),
            ["ci", "web-frontend", "deploy-token"]
        );
        assert_eq!(
            n("s3://orders-curated/refunds/dt={date}/compacted.parquet"),
            ["orders-curated", "refunds"]
        );
        assert_eq!(n("https://files.example"), ["files.example"]);
        assert_eq!(
            n("arn:aws:iam::{account}:role/deploy"),
            ["aws", "iam", "role", "deploy"]
        );
        assert_eq!(n("mailto:drop@verify-{id}.example"), ["drop"]);
        assert!(n("{uuid}").is_empty());
    }

    #[test]
    fn the_scheme_is_split_at_the_first_colon_slash_slash() {
        for r in [
            "s3://raw/x",
            "arn:aws:s3:::bucket/key",
            "a:b://c/d",
            "mailto:x@y.example",
            "://x",
            "x://",
            "x:/",
            "x:",
            "",
            "postgres://hr/payroll",
        ] {
            let want = match r.find("://") {
                Some(p) => r.split_at(p + 3),
                None => ("", r),
            };
            assert_eq!(split_head(r), want, "{r}");
        }
    }

    #[test]
    fn dates_and_numbers_collapse() {
        assert_eq!(
            generalise("s3://raw/2026/10/01/part-0001.json.gz"),
            "s3://raw/{date}/part-{n}.json.gz"
        );
        assert_eq!(generalise("crm://customers/8812"), "crm://customers/{n}");
        assert_eq!(
            generalise("crm://customers/8812/orders/2026-10-01"),
            "crm://customers/{n}/orders/{date}"
        );
        assert_eq!(
            generalise("s3://logs/3f2a9c1e-8b7d-4c6e-9a5f-0123456789ab"),
            "s3://logs/{uuid}"
        );
        assert_eq!(generalise("3f2a9c1e-8b7d-4c6e-9a5f-0123456789ab"), "{uuid}");
        assert_eq!(
            generalise("git://org/repo/commit/9fceb02d0ae598e95dc970b74767f19372d61af8"),
            "git://org/repo/commit/{hex}"
        );
    }

    #[test]
    fn names_stay() {
        assert_eq!(generalise("postgres://hr/payroll"), "postgres://hr/payroll");
        assert_eq!(generalise("s3://bucket-v2/data"), "s3://bucket-v2/data");
        assert_eq!(
            generalise("arn:aws:s3:::my-bucket"),
            "arn:aws:s3:::my-bucket"
        );
    }

    #[test]
    fn same_pattern_for_new_ids() {
        assert_eq!(
            generalise("crm://customers/1"),
            generalise("crm://customers/99999")
        );
        assert_eq!(
            generalise("mailto:cus77812@customer.example"),
            generalise("mailto:cus10293@customer.example")
        );
        assert_ne!(
            generalise("postgres://crm/customers"),
            generalise("postgres://hr/payroll")
        );
    }

    #[test]
    fn dates_in_resources() {
        let d = |s| resource_day(s);
        assert_eq!(d("s3://raw/2026/01/05/part-1.gz"), d("x/2026-01-05"));
        assert_eq!(d("s3://raw/dt=20260105/x"), d("x/2026-01-05"));
        assert_eq!(
            d("s3://raw/2026/01/05/x").unwrap() - d("s3://raw/2025/12/31/x").unwrap(),
            5
        );
        assert_eq!(d("crm://customers/c20261"), None);
        assert_eq!(d("s3://raw/2026/13/05/x"), None);
        assert_eq!(d("kb://articles"), None);
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix("postgres://hr/payroll"), "postgres://hr");
        assert_eq!(prefix("s3://raw/{date}/part-{n}.json.gz"), "s3://raw");
        assert_eq!(prefix("mailto:drop@evil.example"), "@evil.example");
        assert_eq!(
            prefix("arn:aws:iam::{n}:role/admin"),
            "arn:aws:iam::{n}:role"
        );
        assert_eq!(prefix("k8s"), "k8s");
    }
}
