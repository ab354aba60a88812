//! cinch's own event format (CONTRACT.md section 1).
//!
//! Records are deserialised straight into a borrowed struct: strings without escapes point into
//! the input, unknown fields are skipped, and every field is loosely typed so that a missing or
//! mistyped field is reported by name.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::tool::ToolCall;
use super::wire::{self, Loose};
use super::{AccessEvent, Format, Outcome, RejectReason, time};

const FORMAT: &str = "native";

/// The required fields of the native format.
pub const REQUIRED: &[&str] = &["event_id", "time", "agent_id", "action", "resource"];

/// Field names of the native format (the required ones first).
pub const FIELDS: &[&str] = &[
    "event_id",
    "time",
    "agent_id",
    "action",
    "resource",
    "outcome",
    "agent_kind",
    "session_id",
    "source_ip",
    "bytes",
    "grant",
    "intent",
    "attributes",
    "arguments",
    "result",
    "request",
];

/// The native record as it arrives: every field optional and loosely typed.
#[derive(Debug, Deserialize)]
pub(crate) struct NativeWire<'a> {
    #[serde(borrow)]
    pub event_id: Option<Loose<'a>>,
    #[serde(borrow)]
    pub time: Option<Loose<'a>>,
    #[serde(borrow)]
    pub agent_id: Option<Loose<'a>>,
    #[serde(borrow)]
    pub action: Option<Loose<'a>>,
    #[serde(borrow)]
    pub resource: Option<Loose<'a>>,
    #[serde(borrow)]
    pub outcome: Option<Loose<'a>>,
    #[serde(borrow)]
    pub agent_kind: Option<Loose<'a>>,
    #[serde(borrow)]
    pub session_id: Option<Loose<'a>>,
    #[serde(borrow)]
    pub source_ip: Option<Loose<'a>>,
    #[serde(borrow)]
    pub bytes: Option<Loose<'a>>,
    #[serde(borrow)]
    pub grant: Option<Loose<'a>>,
    #[serde(borrow)]
    pub intent: Option<Loose<'a>>,
    #[serde(borrow)]
    pub attributes: Option<&'a RawValue>,
    #[serde(borrow)]
    pub arguments: Option<&'a RawValue>,
    #[serde(borrow)]
    pub result: Option<&'a RawValue>,
    #[serde(borrow)]
    pub request: Option<Loose<'a>>,
}

/// Parses the wire struct of one record (a JSON object).
pub(crate) fn parse_wire(record: &str) -> Result<NativeWire<'_>, RejectReason> {
    serde_json::from_str::<NativeWire<'_>>(record).map_err(|e| wire::classify(&e, FORMAT, FIELDS))
}

/// Decodes one native record (a JSON object).
pub fn decode(record: &str) -> Result<AccessEvent<'_>, RejectReason> {
    from_wire(parse_wire(record)?)
}

/// A required string of `min..=max` characters.
fn required<'a>(
    v: Option<Loose<'a>>,
    field: &'static str,
    min: usize,
    max: usize,
) -> Result<Cow<'a, str>, RejectReason> {
    match v {
        None | Some(Loose::Null) => Err(RejectReason::MissingField {
            format: FORMAT,
            field,
        }),
        Some(Loose::Str(s)) => {
            check_len(&s, FORMAT, field, min, max)?;
            Ok(s)
        }
        Some(other) => Err(type_error(field, "a string", &other)),
    }
}

/// Checks the length of a string in characters (`min` is 0 or 1).
pub(crate) fn check_len(
    s: &str,
    format: &'static str,
    field: &'static str,
    min: usize,
    max: usize,
) -> Result<(), RejectReason> {
    if s.chars().take(min).count() < min {
        return Err(RejectReason::InvalidField {
            format,
            field,
            detail: if s.is_empty() {
                "must not be empty".to_owned()
            } else {
                format!("shorter than {min} characters")
            },
        });
    }
    // The byte length bounds the character count from above, so counting is rarely needed.
    if s.len() > max {
        let n = s.chars().count();
        if n > max {
            return Err(RejectReason::InvalidField {
                format,
                field,
                detail: format!("longer than {max} characters ({n})"),
            });
        }
    }
    Ok(())
}

/// An optional string; empty strings count as absent.
fn optional<'a>(
    v: Option<Loose<'a>>,
    field: &'static str,
) -> Result<Option<Cow<'a, str>>, RejectReason> {
    match v {
        None | Some(Loose::Null) => Ok(None),
        Some(Loose::Str(s)) if s.is_empty() => Ok(None),
        Some(Loose::Str(s)) => Ok(Some(s)),
        Some(other) => Err(type_error(field, "a string", &other)),
    }
}

fn type_error(field: &'static str, expected: &str, found: &Loose<'_>) -> RejectReason {
    RejectReason::InvalidField {
        format: FORMAT,
        field,
        detail: format!(
            "expected {expected}, found {} ({})",
            found.type_name(),
            found.describe()
        ),
    }
}

/// Validates and maps the wire struct.
pub(crate) fn from_wire(w: NativeWire<'_>) -> Result<AccessEvent<'_>, RejectReason> {
    let event_id = required(w.event_id, "event_id", 1, 256)?;
    let time_ms = match w.time {
        None => {
            return Err(RejectReason::MissingField {
                format: FORMAT,
                field: "time",
            });
        }
        Some(t) => time::from_loose(&t, FORMAT, "time")?,
    };
    let agent_id = required(w.agent_id, "agent_id", 1, 512)?;
    let action = required(w.action, "action", 1, 256)?;
    let resource = required(w.resource, "resource", 0, 4096)?;
    let outcome = match w.outcome {
        None | Some(Loose::Null) => Outcome::Success,
        Some(Loose::Str(s)) => parse_outcome(&s).ok_or_else(|| RejectReason::InvalidField {
            format: FORMAT,
            field: "outcome",
            detail: format!(
                "expected success, denied or error, found {}",
                Loose::Str(s.clone()).describe()
            ),
        })?,
        Some(other) => return Err(type_error("outcome", "a string", &other)),
    };
    let bytes = match w.bytes {
        None | Some(Loose::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| type_error("bytes", "an integer >= 0", &v))?,
        ),
    };
    let attributes = match w.attributes {
        None => None,
        Some(raw) => {
            let text = raw.get();
            if !text.starts_with('{') {
                return Err(RejectReason::InvalidField {
                    format: FORMAT,
                    field: "attributes",
                    detail: format!("expected an object, found {}", wire::raw_type_name(raw)),
                });
            }
            if wire::nesting_exceeds(text.as_bytes(), wire::MAX_DEPTH) {
                return Err(RejectReason::TooDeep(format!(
                    "attributes nest deeper than {} levels",
                    wire::MAX_DEPTH
                )));
            }
            Some(Cow::Borrowed(raw))
        }
    };
    let tool = tool_call(w.arguments, w.result, optional(w.request, "request")?)?;
    Ok(AccessEvent {
        format: Format::Native,
        event_id,
        time_ms,
        agent_id,
        agent_kind: optional(w.agent_kind, "agent_kind")?,
        action,
        resource,
        outcome,
        session_id: optional(w.session_id, "session_id")?,
        source_ip: optional(w.source_ip, "source_ip")?,
        bytes,
        grant: optional(w.grant, "grant")?,
        intent: optional(w.intent, "intent")?,
        attributes,
        tool,
    })
}

/// A tool call's arguments, result and request, when any is present. Arguments and results
/// are any JSON value (an object, or a string holding one); `null` counts as absent.
fn tool_call<'a>(
    arguments: Option<&'a RawValue>,
    result: Option<&'a RawValue>,
    request: Option<Cow<'a, str>>,
) -> Result<Option<Box<ToolCall<'a>>>, RejectReason> {
    let keep = |raw: Option<&'a RawValue>, field: &'static str| -> Result<_, RejectReason> {
        match raw {
            None => Ok(None),
            Some(r) if r.get() == "null" => Ok(None),
            Some(r) => {
                if wire::nesting_exceeds(r.get().as_bytes(), wire::MAX_DEPTH) {
                    return Err(RejectReason::TooDeep(format!(
                        "{field} nest deeper than {} levels",
                        wire::MAX_DEPTH
                    )));
                }
                Ok(Some(Cow::Borrowed(r)))
            }
        }
    };
    let arguments = keep(arguments, "arguments")?;
    let result = keep(result, "result")?;
    if arguments.is_none() && result.is_none() && request.is_none() {
        return Ok(None);
    }
    Ok(Some(Box::new(ToolCall {
        arguments,
        result,
        request,
    })))
}

/// Parses an outcome name (ASCII case-insensitive).
pub(crate) fn parse_outcome(s: &str) -> Option<Outcome> {
    if s.eq_ignore_ascii_case("success") {
        Some(Outcome::Success)
    } else if s.eq_ignore_ascii_case("denied") {
        Some(Outcome::Denied)
    } else if s.eq_ignore_ascii_case("error") {
        Some(Outcome::Error)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"event_id":"e-1","time":"2024-05-01T12:00:00.250Z","agent_id":"agent-7","agent_kind":"ai_agent","action":"s3:GetObject","resource":"s3://bucket/key","outcome":"denied","session_id":"run-42","source_ip":"10.0.0.1","bytes":1024,"grant":"g-1","intent":"summarise reports","attributes":{"model":"x","tool":"s3"},"extra":[1,2,{"a":null}]}"#;

    #[test]
    fn decodes_every_field_and_borrows() {
        let ev = decode(GOOD).unwrap();
        assert_eq!(ev.format, Format::Native);
        assert_eq!(ev.event_id, "e-1");
        assert_eq!(ev.time_ms, 1_714_564_800_250);
        assert_eq!(ev.agent_id, "agent-7");
        assert!(matches!(ev.agent_id, Cow::Borrowed(_)));
        assert_eq!(ev.agent_kind.as_deref(), Some("ai_agent"));
        assert_eq!(ev.action, "s3:GetObject");
        assert_eq!(ev.resource, "s3://bucket/key");
        assert_eq!(ev.outcome, Outcome::Denied);
        assert_eq!(ev.session_id.as_deref(), Some("run-42"));
        assert_eq!(ev.source_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(ev.bytes, Some(1024));
        assert_eq!(ev.grant.as_deref(), Some("g-1"));
        assert_eq!(ev.intent.as_deref(), Some("summarise reports"));
        assert_eq!(ev.attributes.unwrap().get(), r#"{"model":"x","tool":"s3"}"#);
    }

    #[test]
    fn minimal_record_gets_defaults() {
        let ev = decode(
            r#"{"event_id":"e","time":1700000000000,"agent_id":"a","action":"x","resource":""}"#,
        )
        .unwrap();
        assert_eq!(ev.outcome, Outcome::Success);
        assert_eq!(ev.resource, "");
        assert_eq!(ev.time_ms, 1_700_000_000_000);
        assert!(ev.bytes.is_none() && ev.session_id.is_none() && ev.attributes.is_none());
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let ev = decode(
            r#"{"event_id":"e\u0031","time":0,"agent_id":"a\"b","action":"x","resource":"r\/s"}"#,
        )
        .unwrap();
        assert_eq!(ev.event_id, "e1");
        assert_eq!(ev.agent_id, "a\"b");
        assert_eq!(ev.resource, "r/s");
    }

    fn reason(rec: &str) -> RejectReason {
        decode(rec).unwrap_err()
    }

    fn invalid_field(rec: &str) -> &'static str {
        match reason(rec) {
            RejectReason::InvalidField { field, .. } => field,
            other => panic!("expected InvalidField, got {other:?}"),
        }
    }

    #[test]
    fn field_rules() {
        let base = |k: &str, v: &str| {
            let mut m: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(GOOD).unwrap();
            m.insert(k.to_owned(), serde_json::from_str(v).unwrap());
            serde_json::to_string(&m).unwrap()
        };
        assert_eq!(invalid_field(&base("event_id", r#""""#)), "event_id");
        assert_eq!(
            invalid_field(&base("event_id", &format!("{:?}", "x".repeat(257)))),
            "event_id"
        );
        assert!(decode(&base("event_id", &format!("{:?}", "é".repeat(256)))).is_ok());
        assert_eq!(
            invalid_field(&base("agent_id", &format!("{:?}", "a".repeat(513)))),
            "agent_id"
        );
        assert_eq!(invalid_field(&base("action", "7")), "action");
        assert_eq!(
            invalid_field(&base("resource", &format!("{:?}", "r".repeat(4097)))),
            "resource"
        );
        assert_eq!(invalid_field(&base("outcome", r#""maybe""#)), "outcome");
        assert_eq!(invalid_field(&base("bytes", "-1")), "bytes");
        assert_eq!(invalid_field(&base("bytes", "1.5")), "bytes");
        assert_eq!(invalid_field(&base("bytes", r#""12""#)), "bytes");
        assert_eq!(invalid_field(&base("attributes", "[1]")), "attributes");
        assert_eq!(invalid_field(&base("attributes", r#""x""#)), "attributes");
        assert_eq!(invalid_field(&base("session_id", "{}")), "session_id");
        assert_eq!(invalid_field(&base("time", "true")), "time");
        assert_eq!(reason(&base("time", "-5")).code(), "time_out_of_range");
        assert_eq!(
            reason(&base("time", r#""9999-01-01T00:00:00Z""#)).code(),
            "time_out_of_range"
        );
        assert_eq!(
            invalid_field(
                r#"{"event_id":"a","event_id":"b","time":0,"agent_id":"a","action":"x","resource":""}"#
            ),
            "event_id"
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let full: serde_json::Map<String, serde_json::Value> = serde_json::from_str(GOOD).unwrap();
        for field in ["event_id", "time", "agent_id", "action", "resource"] {
            let mut m = full.clone();
            m.remove(field);
            let rec = serde_json::to_string(&m).unwrap();
            assert_eq!(
                reason(&rec),
                RejectReason::MissingField {
                    format: "native",
                    field: FIELDS.iter().copied().find(|f| *f == field).unwrap()
                }
            );
            let mut m = full.clone();
            m.insert(field.to_owned(), serde_json::Value::Null);
            assert_eq!(
                reason(&serde_json::to_string(&m).unwrap()).code(),
                "missing_field"
            );
        }
    }
}
