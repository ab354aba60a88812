//! Shared building blocks of the zero-copy decoders: loosely typed field values, borrowed
//! strings, nested-object access over [`RawValue`] slices, serde error classification and a
//! nesting-depth scanner.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;
use serde_json::value::RawValue;

use super::RejectReason;

/// The nesting depth serde_json accepts when it builds values; deeper input is rejected.
pub(crate) const MAX_DEPTH: usize = 128;

/// A JSON value seen loosely: strings are kept (borrowed when they hold no escapes), numbers and
/// booleans by value, containers only by kind. Lets a decoder report which field has the wrong
/// type instead of failing the whole record with a positional serde message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Loose<'a> {
    /// A string.
    Str(Cow<'a, str>),
    /// A non-negative integer.
    U64(u64),
    /// A negative integer.
    I64(i64),
    /// A number with a fraction or exponent.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// `null`.
    Null,
    /// An array (contents skipped).
    Array,
    /// An object (contents skipped).
    Object,
}

impl Loose<'_> {
    /// JSON type name, for error details.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Loose::Str(_) => "a string",
            Loose::U64(_) | Loose::I64(_) => "an integer",
            Loose::F64(_) => "a number",
            Loose::Bool(_) => "a boolean",
            Loose::Null => "null",
            Loose::Array => "an array",
            Loose::Object => "an object",
        }
    }

    /// A short rendering of the value for error details (strings are cut at 64 chars).
    pub(crate) fn describe(&self) -> String {
        match self {
            Loose::Str(s) => {
                let cut: String = s.chars().take(64).collect();
                if cut.len() < s.len() {
                    format!("{cut:?}...")
                } else {
                    format!("{cut:?}")
                }
            }
            Loose::U64(n) => n.to_string(),
            Loose::I64(n) => n.to_string(),
            Loose::F64(n) => n.to_string(),
            Loose::Bool(b) => b.to_string(),
            Loose::Null => "null".to_owned(),
            Loose::Array => "[...]".to_owned(),
            Loose::Object => "{...}".to_owned(),
        }
    }

    /// The value as a non-negative integer: integers, and floats without a fraction.
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match *self {
            Loose::U64(n) => Some(n),
            Loose::F64(f) if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => {
                Some(f as u64)
            }
            _ => None,
        }
    }
}

struct LooseVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for LooseVisitor<'a> {
    type Value = Loose<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Loose::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(if v >= 0 {
            Loose::U64(v as u64)
        } else {
            Loose::I64(v)
        })
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Loose::U64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Loose::F64(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Object)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor(std::marker::PhantomData))
    }
}

/// A string that borrows from the input when it holds no escapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CowStr<'a>(pub Cow<'a, str>);

struct CowStrVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for CowStrVisitor<'a> {
    type Value = CowStr<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Owned(v)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CowStrVisitor(std::marker::PhantomData))
    }
}

/// The members of a JSON object, in order, with their values as raw slices.
#[derive(Debug, Default)]
pub(crate) struct RawMap<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawMap<'a> {
    /// The value of the first member with this key.
    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

struct RawMapVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for RawMapVisitor<'a> {
    type Value = RawMap<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<CowStr<'a>, &'a RawValue>()? {
            out.push((k.0, v));
        }
        Ok(RawMap(out))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawMap<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RawMapVisitor(std::marker::PhantomData))
    }
}

/// A nested object decoded in the same pass as its parent; any other JSON type (or `null`)
/// is skipped and gives `None`. For members that only enrich an event.
#[derive(Debug)]
pub(crate) struct Obj<T>(pub Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

struct ObjVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Obj(None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Obj(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Obj(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Obj(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Obj(None))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Obj(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Obj(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Obj(None))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjVisitor(std::marker::PhantomData))
    }
}

/// The elements of a nested array decoded in the same pass as its parent; any other JSON type
/// gives no elements.
#[derive(Debug)]
pub(crate) struct Items<T>(pub Vec<T>);

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items(Vec::new())
    }
}

struct ItemsVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ItemsVisitor<T> {
    type Value = Items<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<T>()? {
            out.push(item);
        }
        Ok(Items(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Items(Vec::new()))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Items(Vec::new()))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Items(Vec::new()))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Items(Vec::new()))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Items(Vec::new()))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Items(Vec::new()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Items(Vec::new()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Items(Vec::new()))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Items<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemsVisitor(std::marker::PhantomData))
    }
}

/// Index of the first byte that is not JSON whitespace.
pub(crate) fn skip_ws(b: &[u8]) -> usize {
    b.iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(b.len())
}

/// First non-whitespace byte of a raw value.
fn first_byte(raw: &RawValue) -> Option<u8> {
    let b = raw.get().as_bytes();
    b.get(skip_ws(b)).copied()
}

/// JSON type name of a raw value, for error details.
pub(crate) fn raw_type_name(raw: &RawValue) -> &'static str {
    match first_byte(raw) {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Whether a raw value is absent or JSON `null`.
pub(crate) fn is_null(raw: Option<&RawValue>) -> bool {
    raw.is_none_or(|r| r.get().trim() == "null")
}

/// A raw value as a string, borrowing when it holds no escapes. `None` for any other type.
pub(crate) fn raw_str<'a>(raw: Option<&'a RawValue>) -> Option<Cow<'a, str>> {
    let s = raw?
        .get()
        .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b'"' || b[b.len() - 1] != b'"' {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        return Some(Cow::Borrowed(inner));
    }
    // Valid JSON still (a raw value), but an escaped lone surrogate no Rust string can hold:
    // not a string here either.
    serde_json::from_str::<String>(s).ok().map(Cow::Owned)
}

/// A raw value as a non-empty string, or `None`.
pub(crate) fn raw_nonempty_str<'a>(raw: Option<&'a RawValue>) -> Option<Cow<'a, str>> {
    raw_str(raw).filter(|s| !s.is_empty())
}

/// A raw value seen loosely.
pub(crate) fn raw_loose<'a>(raw: &'a RawValue) -> Loose<'a> {
    serde_json::from_str::<Loose<'a>>(raw.get()).unwrap_or(Loose::Null)
}

/// A raw value as a non-negative integer (integral floats accepted), or `None`.
pub(crate) fn raw_u64(raw: Option<&RawValue>) -> Option<u64> {
    let raw = raw?;
    match first_byte(raw) {
        Some(b'0'..=b'9') => raw_loose(raw).as_u64(),
        _ => None,
    }
}

/// A string field that must be present, non-empty and a string.
pub(crate) fn required_str<'a>(
    raw: Option<&'a RawValue>,
    format: &'static str,
    field: &'static str,
) -> Result<Cow<'a, str>, RejectReason> {
    if is_null(raw) {
        return Err(RejectReason::MissingField { format, field });
    }
    match raw_str(raw) {
        Some(s) if s.is_empty() => Err(RejectReason::MissingField { format, field }),
        Some(s) => Ok(s),
        None => Err(RejectReason::InvalidField {
            format,
            field,
            detail: format!(
                "expected a string, found {}",
                raw.map_or("null", raw_type_name)
            ),
        }),
    }
}

/// Parses a nested object into `T`. `Ok(None)` when absent or null; `InvalidField` when the
/// value is not an object.
pub(crate) fn nested<'a, T: Deserialize<'a>>(
    raw: Option<&'a RawValue>,
    format: &'static str,
    field: &'static str,
) -> Result<Option<T>, RejectReason> {
    let Some(raw) = raw else { return Ok(None) };
    match first_byte(raw) {
        Some(b'{') => {
            serde_json::from_str::<T>(raw.get())
                .map(Some)
                .map_err(|e| RejectReason::InvalidField {
                    format,
                    field,
                    detail: e.to_string(),
                })
        }
        Some(b'n') => Ok(None),
        _ => Err(RejectReason::InvalidField {
            format,
            field,
            detail: format!("expected an object, found {}", raw_type_name(raw)),
        }),
    }
}

/// Like [`nested`], but a value of the wrong shape is ignored instead of rejected. For fields
/// that only enrich an event.
pub(crate) fn nested_lenient<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Option<T> {
    let raw = raw?;
    if first_byte(raw) != Some(b'{') {
        return None;
    }
    // The wrong shape is ignored, as documented: these fields only enrich an event.
    serde_json::from_str::<T>(raw.get()).ok()
}

/// The elements of a raw JSON array, or `None` when the value is not an array.
pub(crate) fn raw_array<'a>(raw: Option<&'a RawValue>) -> Option<Vec<&'a RawValue>> {
    let raw = raw?;
    if first_byte(raw) != Some(b'[') {
        return None;
    }
    // A raw value is valid JSON, and this one is an array: it always parses.
    serde_json::from_str::<Vec<&'a RawValue>>(raw.get()).ok()
}

/// The first element of a raw JSON array.
pub(crate) fn raw_first(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw_array(raw)?.into_iter().next()
}

/// Maps a serde_json error on a whole record to a reject reason. `fields` are the field names
/// of the format, used to name the field of a data error (e.g. a duplicate field).
pub(crate) fn classify(
    e: &serde_json::Error,
    format: &'static str,
    fields: &[&'static str],
) -> RejectReason {
    let msg = e.to_string();
    match e.classify() {
        Category::Data => {
            let field = backticked(&msg)
                .and_then(|name| fields.iter().copied().find(|f| *f == name))
                .unwrap_or("record");
            RejectReason::InvalidField {
                format,
                field,
                detail: msg,
            }
        }
        _ => classify_syntax(msg),
    }
}

/// Maps a syntax, EOF or I/O error message to a reject reason.
pub(crate) fn classify_syntax(msg: String) -> RejectReason {
    if msg.starts_with("recursion limit exceeded") {
        RejectReason::TooDeep(msg)
    } else if msg.starts_with("trailing characters") {
        RejectReason::TrailingData(msg)
    } else {
        RejectReason::NotJson(msg)
    }
}

/// The first name quoted in backticks in a serde message.
fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// Whether the brackets of `text` nest deeper than `limit` (strings are skipped; the text need
/// not be valid JSON).
pub(crate) fn nesting_exceeds(text: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                // Skip to the closing quote, honouring escapes.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &text[i.min(text.len())..]) {
                        None => return false,
                        Some(p) => {
                            let at = i + p;
                            if text[at] == b'\\' {
                                i = at + 2;
                            } else {
                                i = at;
                                break;
                            }
                        }
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

/// 64-bit FNV-1a hash, for stable ids derived from record bytes.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Serialises an owned attributes object. Its callers pass JSON values and maps with string
/// keys, whose encoding cannot fail: `None` never happens.
pub(crate) fn owned_raw<T: serde::Serialize>(value: &T) -> Option<Cow<'static, RawValue>> {
    // JSON values and maps with string keys always encode.
    serde_json::value::to_raw_value(value).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_str_borrows_plain_strings_and_unescapes_others() {
        let raw: &RawValue = serde_json::from_str(r#""abc""#).unwrap();
        assert!(matches!(raw_str(Some(raw)), Some(Cow::Borrowed("abc"))));
        let raw: &RawValue = serde_json::from_str(r#""a\"b\u00e9""#).unwrap();
        assert_eq!(raw_str(Some(raw)).unwrap(), "a\"bé");
        let raw: &RawValue = serde_json::from_str("12").unwrap();
        assert_eq!(raw_str(Some(raw)), None);
    }

    #[test]
    fn nesting_scanner_skips_strings() {
        assert!(!nesting_exceeds(br#"{"a":"[[[[[[[["}"#, 3));
        assert!(nesting_exceeds(b"[[[[", 3));
        assert!(!nesting_exceeds(b"[[[]]]", 3));
        assert!(!nesting_exceeds(br#"["\"[[[[", 2"#, 3));
        assert!(!nesting_exceeds(br#""\"#, 3));
    }

    #[test]
    fn classify_names_duplicate_fields() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct W {
            a: Option<u8>,
        }
        let e = serde_json::from_str::<W>(r#"{"a":1,"a":2}"#).unwrap_err();
        match classify(&e, "native", &["a"]) {
            RejectReason::InvalidField { field, .. } => assert_eq!(field, "a"),
            other => panic!("unexpected {other:?}"),
        }
        let e = serde_json::from_str::<W>(r#"{"a":1"#).unwrap_err();
        assert_eq!(classify(&e, "native", &["a"]).code(), "not_json");
        let e = serde_json::from_str::<W>(r#"{"a":1} x"#).unwrap_err();
        assert_eq!(classify(&e, "native", &["a"]).code(), "trailing_data");
    }

    #[test]
    fn loose_as_u64() {
        assert_eq!(Loose::U64(5).as_u64(), Some(5));
        assert_eq!(Loose::F64(5.0).as_u64(), Some(5));
        assert_eq!(Loose::F64(5.5).as_u64(), None);
        assert_eq!(Loose::I64(-5).as_u64(), None);
    }
}
