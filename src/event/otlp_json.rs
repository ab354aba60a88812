//! The OTLP JSON encoding of a trace export request, read in place.
//!
//! `opentelemetry-proto`'s serde types own every string and buffer each attribute value before
//! they look at it; these types borrow strings that hold no escapes from the input, decode span
//! and trace ids into inline buffers and read attribute values in one pass. They accept what
//! `opentelemetry-proto`'s types accept in every member the decoder reads (the same names, types
//! and defaults: hex ids with an optional `0x`, times as integers or strings of digits,
//! `intValue` as an integer or a string); members it does not read (span events and links, the
//! instrumentation scope, entity references) are skipped without being checked.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use smallvec::SmallVec;

/// A span or trace id, decoded from hex (8 or 16 bytes in valid OTLP, held in place).
pub(super) type Id = SmallVec<[u8; 16]>;

/// An `ExportTraceServiceRequest`.
#[derive(Debug, Default)]
pub(super) struct Request<'a> {
    pub resource_spans: Vec<ResourceSpans<'a>>,
}

/// A JSON object read as an export request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Envelope<'a> {
    /// `None` when the object has no `resourceSpans` member: it is not an export request.
    #[serde(borrow, deserialize_with = "present")]
    resource_spans: Option<Vec<ResourceSpans<'a>>>,
}

/// A member that is present: `null` is refused, as `opentelemetry-proto`'s types refuse it.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Whether a JSON object has a `resourceSpans` member (`None` when it is not a JSON object).
pub(super) fn has_resource_spans(text: &str) -> Option<bool> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "resourceSpans", default, deserialize_with = "present")]
        resource_spans: Option<IgnoredAny>,
    }
    // Not a JSON object: the caller keeps the export request's own error.
    serde_json::from_str::<Probe>(text)
        .ok()
        .map(|p| p.resource_spans.is_some())
}

/// The spans of one resource.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ResourceSpans<'a> {
    #[serde(borrow)]
    pub resource: Option<Resource<'a>>,
    #[serde(borrow)]
    pub scope_spans: Vec<ScopeSpans<'a>>,
    #[serde(borrow)]
    schema_url: Cow<'a, str>,
}

/// A resource: its attributes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Resource<'a> {
    #[serde(borrow)]
    pub attributes: Vec<KeyValue<'a>>,
    dropped_attributes_count: u32,
    entity_refs: IgnoredAny,
}

/// The spans of one instrumentation scope.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ScopeSpans<'a> {
    scope: IgnoredAny,
    #[serde(borrow)]
    pub spans: Vec<Span<'a>>,
    #[serde(borrow)]
    schema_url: Cow<'a, str>,
}

/// A span.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Span<'a> {
    #[serde(deserialize_with = "hex_id")]
    pub trace_id: Id,
    #[serde(deserialize_with = "hex_id")]
    pub span_id: Id,
    #[serde(borrow)]
    trace_state: Cow<'a, str>,
    #[serde(deserialize_with = "hex_id")]
    pub parent_span_id: Id,
    flags: u32,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    kind: i32,
    #[serde(deserialize_with = "nanos")]
    pub start_time_unix_nano: u64,
    #[serde(deserialize_with = "nanos")]
    pub end_time_unix_nano: u64,
    #[serde(borrow)]
    pub attributes: Vec<KeyValue<'a>>,
    dropped_attributes_count: u32,
    events: IgnoredAny,
    dropped_events_count: u32,
    links: IgnoredAny,
    dropped_links_count: u32,
    #[serde(borrow)]
    pub status: Option<Status<'a>>,
}

/// A span's status.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Status<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
    pub code: i32,
}

/// An attribute.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct KeyValue<'a> {
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    #[serde(borrow, default)]
    pub value: Option<AnyValue<'a>>,
    #[serde(default, rename = "keyStrindex")]
    _key_strindex: i32,
}

/// An attribute's value: the string it holds, if it is a string. The other kinds are read (and
/// their types checked) but not kept.
#[derive(Debug, Default)]
pub(super) struct AnyValue<'a> {
    pub string: Option<Cow<'a, str>>,
}

/// An `arrayValue`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ArrayValue<'a> {
    #[serde(borrow)]
    values: Vec<AnyValue<'a>>,
}

/// A `kvlistValue`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KeyValueList<'a> {
    #[serde(borrow)]
    values: Vec<KeyValue<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for AnyValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = AnyValue<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object for AnyValue")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<AnyValue<'a>, M::Error> {
                // The last member that holds a value decides the kind, as with
                // `opentelemetry-proto`'s types; a `null` member holds none.
                let mut string: Option<Cow<'a, str>> = None;
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    let other = match key.as_ref() {
                        "stringValue" => {
                            if let Some(Text(s)) = map.next_value::<Option<Text<'a>>>()? {
                                string = Some(s);
                            }
                            false
                        }
                        "boolValue" => map.next_value::<Option<bool>>()?.is_some(),
                        "intValue" => map.next_value::<Option<IntValue>>()?.is_some(),
                        "doubleValue" => map.next_value::<Option<f64>>()?.is_some(),
                        "arrayValue" => map.next_value::<Option<ArrayValue<'a>>>()?.is_some(),
                        "kvlistValue" => map.next_value::<Option<KeyValueList<'a>>>()?.is_some(),
                        "bytesValue" => map.next_value::<Option<Text<'a>>>()?.is_some(),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            false
                        }
                    };
                    if other {
                        string = None;
                    }
                }
                Ok(AnyValue { string })
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A string, borrowed from the input when it holds no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// An `intValue`: an integer, or a string holding one.
struct IntValue;

impl<'de> Deserialize<'de> for IntValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string holding one")
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<IntValue, E> {
                Ok(IntValue)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntValue, E> {
                i64::try_from(v).map(|_| IntValue).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntValue, E> {
                v.parse::<i64>().map(|_| IntValue).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Nanoseconds since the epoch: an integer, or a string holding one.
fn nanos<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a u64 integer or a string containing a u64 integer")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(E::custom)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.parse::<u64>().map_err(E::custom)
        }
    }
    d.deserialize_any(V)
}

/// A hex-encoded id (an optional `0x` prefix, any even number of digits).
fn hex_id<'de, D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Id;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string representing hex-encoded bytes")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
            let digits = v
                .strip_prefix("0x")
                .or_else(|| v.strip_prefix("0X"))
                .unwrap_or(v)
                .len();
            if digits.is_multiple_of(2) && digits <= 32 {
                let mut id = Id::from_elem(0, digits / 2);
                const_hex::decode_to_slice(v, &mut id).map_err(E::custom)?;
                Ok(id)
            } else {
                const_hex::decode(v).map(Id::from_vec).map_err(E::custom)
            }
        }
    }
    d.deserialize_str(V)
}

/// Parses an export request: `None` when the object has no `resourceSpans` member.
pub(super) fn parse(text: &str) -> Result<Option<Request<'_>>, serde_json::Error> {
    let envelope: Envelope<'_> = serde_json::from_str(text)?;
    Ok(envelope
        .resource_spans
        .map(|resource_spans| Request { resource_spans }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_times_and_string_attributes_are_read_in_place() {
        let text = r#"{"resourceSpans":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"support"}}]},
          "scopeSpans":[{"scope":{"name":"x"},"spans":[{
            "traceId":"0AF7651916CD43DD8448EB211C80319C","spanId":"0xb7ad6b7169203331",
            "name":"execute_tool","startTimeUnixNano":"1714564800000000000",
            "endTimeUnixNano":1714564800500000000,"kind":3,
            "events":[{"anything":[1,2]}],
            "attributes":[
              {"key":"a","value":{"stringValue":"plain"}},
              {"key":"b","value":{"stringValue":"esc\"aped"}},
              {"key":"c","value":{"intValue":"42"}},
              {"key":"d","value":{"stringValue":"x","boolValue":true}},
              {"key":"e","value":{"boolValue":true,"stringValue":"y"}},
              {"key":"f","value":{"arrayValue":{"values":[{"stringValue":"z"}]}}},
              {"key":"g","value":null}],
            "status":{"code":2}}]}]}]}"#;
        let req = parse(text).expect("parses");
        let req = req.expect("a request");
        let rs = &req.resource_spans[0];
        let span = &rs.scope_spans[0].spans[0];
        assert_eq!(
            span.trace_id[..],
            const_hex::decode("0af7651916cd43dd8448eb211c80319c").unwrap()
        );
        assert_eq!(
            span.span_id[..],
            [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]
        );
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.start_time_unix_nano, 1_714_564_800_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_714_564_800_500_000_000);
        let s = |i: usize| {
            span.attributes[i]
                .value
                .as_ref()
                .and_then(|v| v.string.as_deref())
        };
        assert_eq!(s(0), Some("plain"));
        assert!(matches!(
            span.attributes[0]
                .value
                .as_ref()
                .and_then(|v| v.string.as_ref()),
            Some(Cow::Borrowed(_))
        ));
        assert_eq!(s(1), Some("esc\"aped"));
        assert_eq!(s(2), None);
        assert_eq!(s(3), None, "the last member with a value decides");
        assert_eq!(s(4), Some("y"));
        assert_eq!(s(5), None);
        assert!(span.attributes[6].value.is_none());
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
    }

    #[test]
    fn what_opentelemetry_proto_refuses_in_a_member_read_is_refused() {
        for bad in [
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"xyz"}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"abc"}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":-1}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":1.5}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":5}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SERVER"}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"value":{}}]}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":{"intValue":"x"}}]}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":{"stringValue":1}}]}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a","name":"b"}]}]}]}"#,
            r#"{"resourceSpans":{}}"#,
        ] {
            assert!(parse(bad).is_err(), "accepted {bad}");
            let old: Result<
                opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
                _,
            > = serde_json::from_str(bad);
            assert!(old.is_err(), "opentelemetry-proto accepts {bad}");
        }
    }
}
