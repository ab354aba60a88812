//! Byte-level scanning of JSON text that may be broken: where a value, a string or a container
//! element ends, string- and escape-aware, without validating anything.
//!
//! A raw line break always ends a string here: JSON strings cannot hold one, so a string cut
//! short (a truncated line, a flipped quote) never swallows the lines after it.

use memchr::memchr3;

/// Whether `b` is JSON white space.
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Position just past the string opening at `start` (`text[start] == b'"'`): past its closing
/// quote, or at the line break that ends it early, or the end of the text.
#[inline]
pub(crate) fn string_end(text: &[u8], start: usize) -> usize {
    string_scan(text, start).0
}

/// [`string_end`], and whether the string was closed by its quote.
#[inline]
pub(crate) fn string_scan(text: &[u8], start: usize) -> (usize, bool) {
    let mut i = start + 1;
    while i < text.len() {
        match memchr3(b'"', b'\\', b'\n', &text[i..]) {
            None => break,
            Some(p) => {
                let at = i + p;
                match text[at] {
                    b'"' => return (at + 1, true),
                    b'\n' => return (at, false),
                    // An escape: skip the escaped byte, unless it is a line break.
                    _ => match text.get(at + 1) {
                        Some(b'\n') => return (at + 1, false),
                        Some(_) => i = at + 2,
                        None => break,
                    },
                }
            }
        }
    }
    (text.len(), false)
}

/// Position just past the scalar token starting at `start` (a number, `true`, `null` or
/// anything else that is not a string or a container): at the next white space, bracket,
/// brace, quote or comma.
#[inline]
pub(crate) fn scalar_end(text: &[u8], start: usize) -> usize {
    text[start..]
        .iter()
        .position(|&b| is_ws(b) || matches!(b, b'{' | b'[' | b'}' | b']' | b'"' | b','))
        .map_or(text.len(), |p| start + p.max(1))
}

/// Position just past the value starting at `start` (its first byte, not white space), or
/// `None` when the text ends before the value does. Containers are matched bracket for bracket
/// (either closing bracket closes either opening one); strings end at their quote or at a line
/// break.
pub(crate) fn value_end(text: &[u8], start: usize) -> Option<usize> {
    match text[start] {
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while i < text.len() {
                match text[i] {
                    b'"' => {
                        i = string_end(text, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        b'"' => match string_scan(text, start) {
            (end, true) => Some(end),
            _ => None,
        },
        _ => Some(scalar_end(text, start)),
    }
}

/// Position of the next byte at or after `from` that is not white space (or the end).
#[inline]
pub(crate) fn skip_ws_from(text: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < text.len() && is_ws(text[i]) {
        i += 1;
    }
    i
}

/// The opening of an object up to the end of its first key (`{"eventVersion"`, or with the
/// white space of a pretty-printed record), when `element` starts with one: the mark that the
/// elements of a container share, used to find the next element after a broken one.
pub(crate) fn signature(element: &[u8]) -> Option<&[u8]> {
    if element.first() != Some(&b'{') {
        return None;
    }
    let q = skip_ws_from(element, 1);
    if element.get(q) != Some(&b'"') || q > 32 {
        return None;
    }
    let rest = &element[q + 1..];
    let len = rest
        .iter()
        .take(64)
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    (len > 0 && rest[len] == b'"').then(|| &element[..q + 1 + len + 1])
}

/// The first place after `from` where `signature` starts an object that is not the value of a
/// member (not preceded by `:`), within `text`.
pub(crate) fn find_signature(text: &[u8], from: usize, signature: &[u8]) -> Option<usize> {
    let finder = memchr::memmem::Finder::new(signature);
    let mut at = from;
    while at < text.len() {
        let p = at + finder.find(&text[at..])?;
        let before = text[..p].iter().rposition(|&b| !is_ws(b));
        if before.is_none_or(|i| text[i] != b':') {
            return Some(p);
        }
        at = p + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_end_at_quotes_escapes_and_line_breaks() {
        assert_eq!(string_end(br#""ab" x"#, 0), 4);
        assert_eq!(string_end(br#""a\"b" x"#, 0), 6);
        assert_eq!(string_end(br#""a\\" x"#, 0), 5);
        assert_eq!(string_end(b"\"ab\ncd\"", 0), 3);
        assert_eq!(string_end(b"\"ab\\\ncd\"", 0), 4);
        assert_eq!(string_end(b"\"ab", 0), 3);
        assert_eq!(string_end(b"\"ab\\", 0), 4);
    }

    #[test]
    fn values_end_where_their_brackets_close() {
        let t = br#"{"a":[1,{"b":"}]"}],"c":2} tail"#;
        assert_eq!(value_end(t, 0), Some(t.len() - 5));
        assert_eq!(value_end(b"[1,2", 0), None);
        assert_eq!(value_end(b"42,", 0), Some(2));
        assert_eq!(value_end(b"\"x\",", 0), Some(3));
        assert_eq!(value_end(b"\"x", 0), None);
        // A string cut by a line break does not hide the brackets after it.
        assert_eq!(value_end(b"{\"a\":\"x\n}", 0), Some(9));
        assert_eq!(value_end(b"}", 0), Some(1));
    }

    #[test]
    fn signatures_and_where_they_recur() {
        assert_eq!(
            signature(br#"{"eventVersion":"1"}"#),
            Some(&br#"{"eventVersion""#[..])
        );
        assert_eq!(signature(b"{\n  \"k\": 1}"), Some(&b"{\n  \"k\""[..]));
        assert_eq!(signature(b"[1]"), None);
        assert_eq!(signature(br#"{"#), None);
        let t = br#"[{"k":{"k":1}},{"k":2}]"#;
        assert_eq!(find_signature(t, 2, br#"{"k""#), Some(15));
    }
}
