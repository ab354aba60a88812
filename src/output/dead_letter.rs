//! The dead-letter record: a rejected input record, why it was rejected, where it came from and
//! (the first 64 KiB of) its original bytes. Schema: `configs/schemas/dead_letter.schema.json`.

use std::borrow::Cow;

use base64::Engine as _;
use serde::Serialize;

use crate::event::{RejectReason, Rejected};

/// At most this many bytes of the original record are kept.
pub(crate) const MAX_RAW_BYTES: usize = 64 << 10;

/// One dead-letter output record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeadLetter<'a> {
    /// Always `dead_letter`.
    pub kind: &'static str,
    /// Bounded reason code ([`RejectReason::code`]).
    pub reason_code: &'static str,
    /// Human-readable reason.
    pub reason: String,
    /// The format the record was attributed to, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Cow<'a, str>>,
    /// Where the record came from: a file path, `stdin` or a topic.
    pub source: Cow<'a, str>,
    /// 1-based line number where the message started (files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Byte offset of the record within its message.
    pub offset: u64,
    /// Byte offset of the record from the start of the input (after decompression; files and
    /// standard input only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_offset: Option<u64>,
    /// The kept bytes, when they are valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<Cow<'a, str>>,
    /// The kept bytes in standard base64, when they are not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
    /// Whether the kept bytes are only a prefix of the record.
    pub raw_truncated: bool,
    /// Length of the original record in bytes.
    pub raw_bytes: u64,
}

impl<'a> DeadLetter<'a> {
    /// The value of the `kind` field.
    pub const KIND: &'static str = "dead_letter";

    /// The dead letter of a rejected record from `source` (a path, `stdin` or a topic), whose
    /// message started on `line` (files only).
    pub fn new(
        rejected: &Rejected<'a>,
        source: impl Into<Cow<'a, str>>,
        line: Option<u64>,
    ) -> Self {
        let raw = rejected.raw;
        let raw_bytes = match rejected.reason {
            RejectReason::Oversize { size, .. } => size.max(raw.len()),
            _ => raw.len(),
        } as u64;
        let mut kept = &raw[..raw.len().min(MAX_RAW_BYTES)];
        let raw_truncated = (kept.len() as u64) < raw_bytes;
        let (text, base64) = match std::str::from_utf8(kept) {
            Ok(s) => (Some(Cow::Borrowed(s)), None),
            // A cut through a multi-byte character: keep the whole characters before it.
            Err(e) if raw_truncated && e.error_len().is_none() => {
                kept = &kept[..e.valid_up_to()];
                // Valid up to there: this succeeds.
                (std::str::from_utf8(kept).ok().map(Cow::Borrowed), None)
            }
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(kept)),
            ),
        };
        DeadLetter {
            kind: Self::KIND,
            reason_code: rejected.reason.code(),
            reason: rejected.reason.to_string(),
            format: rejected.reason.format().map(Cow::Borrowed),
            source: source.into(),
            line,
            offset: rejected.offset as u64,
            input_offset: None,
            raw: text,
            raw_base64: base64,
            raw_truncated,
            raw_bytes,
        }
    }

    /// The same dead letter, from a message that starts `message_offset` bytes into its input.
    pub fn in_input(mut self, message_offset: u64) -> Self {
        self.input_offset = Some(message_offset + self.offset);
        self
    }

    /// The record as one line of JSON (without the line break).
    pub fn to_json(&self) -> String {
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(d: &DeadLetter<'_>) -> Value {
        serde_json::from_str(&d.to_json()).unwrap()
    }

    #[test]
    fn utf8_record() {
        let rej = Rejected {
            reason: RejectReason::MissingField {
                format: "native",
                field: "agent_id",
            },
            raw: br#"{"event_id":"e"}"#,
            offset: 12,
        };
        let v = json(&DeadLetter::new(&rej, "events.jsonl", Some(7)));
        assert_eq!(v["kind"], "dead_letter");
        assert_eq!(v["reason_code"], "missing_field");
        assert_eq!(v["reason"], "missing required field `agent_id` (native)");
        assert_eq!(v["format"], "native");
        assert_eq!(v["source"], "events.jsonl");
        assert_eq!(v["line"], 7);
        assert_eq!(v["offset"], 12);
        assert_eq!(v["raw"], r#"{"event_id":"e"}"#);
        assert!(v.get("raw_base64").is_none());
        assert_eq!(v["raw_truncated"], false);
        assert_eq!(v["raw_bytes"], 16);
    }

    #[test]
    fn binary_record_is_base64() {
        let rej = Rejected {
            reason: RejectReason::InvalidUtf8 { offset: 1 },
            raw: b"a\xffb",
            offset: 0,
        };
        let v = json(&DeadLetter::new(&rej, "cinch.events", None));
        assert_eq!(v["raw_base64"], "Yf9i");
        assert!(v.get("raw").is_none());
        assert!(v.get("line").is_none());
        assert!(v.get("format").is_none());
    }

    #[test]
    fn long_record_is_truncated_on_a_char_boundary() {
        let text = "é".repeat(MAX_RAW_BYTES); // 2 bytes per char
        let rej = Rejected {
            reason: RejectReason::Oversize {
                size: text.len(),
                limit: 1 << 20,
            },
            raw: text.as_bytes(),
            offset: 0,
        };
        let d = DeadLetter::new(&rej, "stdin", Some(1));
        assert!(d.raw_truncated);
        assert_eq!(d.raw_bytes, text.len() as u64);
        assert_eq!(d.raw.as_deref().unwrap().len(), MAX_RAW_BYTES);
        // A 3-byte character cut by the limit is dropped, not base64-encoded.
        let text = format!("a{}", "€".repeat(MAX_RAW_BYTES));
        let rej = Rejected {
            reason: RejectReason::NotJson("x".into()),
            raw: text.as_bytes(),
            offset: 0,
        };
        let d = DeadLetter::new(&rej, "stdin", None);
        assert!(d.raw.as_deref().unwrap().len() <= MAX_RAW_BYTES);
        assert!(d.raw_base64.is_none());
        // An oversize message from the source keeps its prefix and reports the full size.
        let rej = Rejected {
            reason: RejectReason::Oversize {
                size: 10 << 20,
                limit: 1 << 20,
            },
            raw: &text.as_bytes()[..100],
            offset: 0,
        };
        let d = DeadLetter::new(&rej, "f", Some(3));
        assert_eq!(d.raw_bytes, 10 << 20);
        assert!(d.raw_truncated);
    }
}
