//! The message decoder: splits a message into records and decodes each in its format.
//!
//! A message (a Kafka message value, or one line or document of a file) holds one record, a
//! CloudTrail S3 delivery object `{"Records":[...]}`, a JSON array of records, or several such
//! documents one after another. Every record yields exactly one [`Decoded`], in input order.

use std::cell::RefCell;
use std::sync::LazyLock;

use memchr::memmem;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::message::{Message, MessageKind};
use super::otlp::{JoinSettings, SpanJoin};
use super::wire::{self, MAX_DEPTH, skip_ws};
use super::{
    AccessEvent, Decoded, Format, RejectReason, Rejected, cloudtrail, k8s_audit, native, ocsf,
    sniff,
};
use crate::vocab::FormatChoice;

/// Key names searched for in records, with their searchers built once.
struct Keys {
    records: memmem::Finder<'static>,
    agent_id: memmem::Finder<'static>,
    class_uid: memmem::Finder<'static>,
    event_version: memmem::Finder<'static>,
    user_identity: memmem::Finder<'static>,
    k8s_audit: memmem::Finder<'static>,
    resource_spans: memmem::Finder<'static>,
    logged_at: memmem::Finder<'static>,
    subjects: memmem::Finder<'static>,
    kind: memmem::Finder<'static>,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    records: memmem::Finder::new(b"\"Records\""),
    agent_id: memmem::Finder::new(b"\"agent_id\""),
    class_uid: memmem::Finder::new(b"\"class_uid\""),
    event_version: memmem::Finder::new(b"\"eventVersion\""),
    user_identity: memmem::Finder::new(b"\"userIdentity\""),
    k8s_audit: memmem::Finder::new(b"audit.k8s.io/"),
    resource_spans: memmem::Finder::new(b"\"resourceSpans\""),
    logged_at: memmem::Finder::new(b"\"loggedAt\""),
    subjects: memmem::Finder::new(b"\"subjects\""),
    kind: memmem::Finder::new(b"\"type\""),
});

/// Whether a record looks like an MCP gateway audit event (its `type`, `loggedAt` and
/// `subjects`).
fn looks_like_mcp_audit(bytes: &[u8]) -> bool {
    let keys = &*KEYS;
    has(&keys.logged_at, bytes) && has(&keys.subjects, bytes) && has(&keys.kind, bytes)
}

fn has(finder: &memmem::Finder<'_>, bytes: &[u8]) -> bool {
    finder.find(bytes).is_some()
}

/// Default limit on the size of one record: 1 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// Decoder settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeConfig {
    /// Which formats are accepted (`Auto` detects each record's format).
    pub format: FormatChoice,
    /// Largest accepted record, in bytes. A container (`{"Records":[...]}` or an array) may be
    /// larger; the limit applies to each record in it.
    pub max_record_bytes: usize,
    /// How OTLP tool calls wait for ancestors that arrive in later export requests.
    pub join: JoinSettings,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            format: FormatChoice::Auto,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            join: JoinSettings::default(),
        }
    }
}

/// Decodes messages into access events and rejections. It holds its settings, counts of what it
/// skipped, and the OTLP tool calls waiting for their ancestors ([`SpanJoin`]).
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    config: DecodeConfig,
    /// OTLP tool calls waiting for ancestors from later export requests.
    join: RefCell<SpanJoin>,
    /// OTLP spans and gateway audit events that were not tool calls, skipped.
    skipped_spans: std::cell::Cell<u64>,
    /// OTLP tool call spans whose agent came from the resource.
    agent_from_resource: std::cell::Cell<u64>,
}

/// A CloudTrail S3 delivery object.
#[derive(Deserialize)]
struct Delivery<'a> {
    #[serde(borrow, rename = "Records")]
    records: Option<Vec<&'a RawValue>>,
}

/// Byte offset of `part` within `whole` (`part` must be a sub-slice of `whole`).
fn offset_in(whole: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

impl Decoder {
    /// A decoder with these settings.
    pub fn new(config: DecodeConfig) -> Self {
        Decoder {
            join: RefCell::new(SpanJoin::new(config.join)),
            config,
            skipped_spans: Default::default(),
            agent_from_resource: Default::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &DecodeConfig {
        &self.config
    }

    /// Decodes one message and calls `sink` once per record, in order, with either the event or
    /// the rejection (carrying that record's bytes and byte offset in the message). Never panics;
    /// an empty container yields nothing.
    pub fn decode_message<'a>(&self, bytes: &'a [u8], sink: &mut dyn FnMut(Decoded<'a>)) {
        let max = self.config.max_record_bytes;
        if bytes.len() > max && !self.may_be_container(bytes) {
            sink(Err(Rejected {
                reason: RejectReason::Oversize {
                    size: bytes.len(),
                    limit: max,
                },
                raw: bytes,
                offset: 0,
            }));
            return;
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                sink(Err(Rejected {
                    reason: RejectReason::InvalidUtf8 {
                        offset: e.valid_up_to(),
                    },
                    raw: bytes,
                    offset: 0,
                }));
                return;
            }
        };
        if self.document(text, text, true, sink) {
            self.stream(text, sink);
        }
    }

    /// Decodes one message read by the source (an oversize or unreadable message becomes a
    /// rejection).
    pub fn decode_input<'a>(&self, message: &Message<'a>, sink: &mut dyn FnMut(Decoded<'a>)) {
        match &message.kind {
            MessageKind::Complete => self.decode_message(message.bytes, sink),
            MessageKind::Oversize { size, limit } => sink(Err(Rejected {
                reason: RejectReason::Oversize {
                    size: usize::try_from(*size).unwrap_or(usize::MAX),
                    limit: *limit,
                },
                raw: message.bytes,
                offset: 0,
            })),
            MessageKind::Unreadable { detail } => sink(Err(Rejected {
                reason: RejectReason::NotJson(detail.clone()),
                raw: message.bytes,
                offset: 0,
            })),
        }
    }

    /// Decodes a message into a vector (convenience for tests and small inputs).
    pub fn decode_to_vec<'a>(&self, bytes: &'a [u8]) -> Vec<Decoded<'a>> {
        let mut out = Vec::new();
        self.decode_message(bytes, &mut |d| out.push(d));
        out
    }

    /// Decodes one record (a single JSON object) in the configured format(s).
    pub fn decode_record<'a>(&self, record: &'a str) -> Result<AccessEvent<'a>, RejectReason> {
        let format = match self.config.format {
            FormatChoice::Native => Format::Native,
            FormatChoice::Ocsf => Format::Ocsf,
            FormatChoice::Cloudtrail => Format::Cloudtrail,
            FormatChoice::K8sAudit => Format::K8sAudit,
            FormatChoice::Otlp => Format::Otlp,
            FormatChoice::McpAudit => Format::McpAudit,
            FormatChoice::Auto => {
                // Key names found anywhere in the record tell which decoder to try first; the
                // decoder then checks them at the top level. Only when no guess holds does a
                // separate detection pass run.
                let bytes = record.as_bytes();
                let keys = &*KEYS;
                if has(&keys.agent_id, bytes) {
                    let w = native::parse_wire(record)?;
                    if w.agent_id.is_some() && w.action.is_some() {
                        return native::from_wire(w);
                    }
                }
                if has(&keys.class_uid, bytes) {
                    match ocsf::decode(record) {
                        Err(RejectReason::MissingField {
                            field: "class_uid", ..
                        }) => {}
                        other => return other,
                    }
                }
                if has(&keys.event_version, bytes) && has(&keys.user_identity, bytes) {
                    match cloudtrail::decode(record) {
                        Err(RejectReason::MissingField {
                            field: "eventVersion" | "userIdentity",
                            ..
                        }) => {}
                        other => return other,
                    }
                }
                if has(&keys.k8s_audit, bytes)
                    && let Some(result) = k8s_audit::decode_if_audit_event(record)
                {
                    return result;
                }
                sniff::detect(record)?
            }
        };
        match format {
            Format::Native => native::decode(record),
            Format::Ocsf => ocsf::decode(record),
            Format::Cloudtrail => cloudtrail::decode(record),
            Format::K8sAudit => k8s_audit::decode(record),
            // An export request is a container of spans, decoded before records are; a record
            // that reaches here is not one.
            Format::Otlp => Err(RejectReason::MissingField {
                format: "otlp",
                field: "resourceSpans",
            }),
            Format::McpAudit => Err(RejectReason::MissingField {
                format: "mcp_audit",
                field: "loggedAt",
            }),
        }
    }

    fn accepts_deliveries(&self) -> bool {
        matches!(
            self.config.format,
            FormatChoice::Auto | FormatChoice::Cloudtrail
        )
    }

    /// Whether an over-limit message may still be a container of records within the limit.
    fn may_be_container(&self, bytes: &[u8]) -> bool {
        match bytes.get(skip_ws(bytes)) {
            Some(b'[') => true,
            Some(b'{') => self.accepts_deliveries() && has(&KEYS.records, bytes),
            _ => false,
        }
    }

    /// Decodes one document of `msg`. Returns true when `doc` is the whole message and turned
    /// out to hold more than one document (the caller then decodes it as a stream).
    fn document<'a>(
        &self,
        msg: &'a str,
        doc: &'a str,
        whole: bool,
        sink: &mut dyn FnMut(Decoded<'a>),
    ) -> bool {
        let bytes = doc.as_bytes();
        let offset = offset_in(msg, doc);
        let max = self.config.max_record_bytes;
        let reject = |sink: &mut dyn FnMut(Decoded<'a>), reason| {
            sink(Err(Rejected {
                reason,
                raw: bytes,
                offset,
            }))
        };
        match bytes.get(skip_ws(bytes)) {
            None => {
                reject(
                    sink,
                    RejectReason::NotJson("empty message: EOF while parsing a value".to_owned()),
                );
            }
            Some(b'[') => match serde_json::from_str::<Vec<&'a RawValue>>(doc) {
                Ok(items) => {
                    for item in items {
                        self.element(msg, item.get(), sink);
                    }
                }
                Err(e) => {
                    let reason = refine(wire::classify_syntax(e.to_string()), bytes);
                    if whole && reason.code() == "trailing_data" {
                        return true;
                    }
                    reject(sink, reason);
                }
            },
            Some(b'{') => {
                if matches!(self.config.format, FormatChoice::Auto | FormatChoice::Otlp)
                    && has(&KEYS.resource_spans, bytes)
                {
                    let batch = super::otlp::decode_json(doc, &mut self.join.borrow_mut());
                    self.spans(batch, bytes, offset, sink);
                    return false;
                }
                if matches!(
                    self.config.format,
                    FormatChoice::Auto | FormatChoice::McpAudit
                ) && !has(&KEYS.agent_id, bytes)
                    && looks_like_mcp_audit(bytes)
                {
                    self.spans(super::mcp_audit::decode(doc), bytes, offset, sink);
                    return false;
                }
                if self.accepts_deliveries() && has(&KEYS.records, bytes) {
                    // `Records` that is not an array fails here and is decoded as a record.
                    match serde_json::from_str::<Delivery<'a>>(doc) {
                        Ok(Delivery {
                            records: Some(items),
                        }) => {
                            for item in items {
                                self.element(msg, item.get(), sink);
                            }
                            return false;
                        }
                        Err(e) if whole && e.to_string().starts_with("trailing characters") => {
                            return true;
                        }
                        _ => {}
                    }
                }
                if bytes.len() > max {
                    reject(
                        sink,
                        RejectReason::Oversize {
                            size: bytes.len(),
                            limit: max,
                        },
                    );
                    return false;
                }
                match self.decode_record(doc) {
                    Ok(ev) => sink(Ok(ev)),
                    Err(RejectReason::TrailingData(_)) if whole => return true,
                    Err(reason) => reject(sink, refine(reason, bytes)),
                }
            }
            Some(_) => {
                if bytes.len() > max {
                    reject(
                        sink,
                        RejectReason::Oversize {
                            size: bytes.len(),
                            limit: max,
                        },
                    );
                    return false;
                }
                match serde_json::from_str::<IgnoredAny>(doc) {
                    Ok(_) => reject(sink, not_an_object(bytes)),
                    Err(e) => {
                        let reason = refine(wire::classify_syntax(e.to_string()), bytes);
                        if whole && reason.code() == "trailing_data" {
                            return true;
                        }
                        reject(sink, reason);
                    }
                }
            }
        }
        false
    }

    /// Emits the tool-call events of an OTLP export request, or its rejection, and counts the
    /// spans that are not tool calls.
    fn spans<'a>(
        &self,
        batch: Result<super::otlp::Batch, RejectReason>,
        raw: &'a [u8],
        offset: usize,
        sink: &mut dyn FnMut(Decoded<'a>),
    ) {
        match batch {
            Ok(b) => {
                self.skipped_spans.set(self.skipped_spans.get() + b.skipped);
                self.agent_from_resource
                    .set(self.agent_from_resource.get() + b.agent_from_resource);
                for ev in b.events {
                    sink(Ok(ev));
                }
            }
            Err(reason) => sink(Err(Rejected {
                reason,
                raw,
                offset,
            })),
        }
    }

    /// Decodes an OTLP protobuf export request (the Collector's Kafka exporter's default
    /// encoding, `otlp_proto`).
    pub fn decode_otlp_proto<'a>(&self, bytes: &'a [u8], sink: &mut dyn FnMut(Decoded<'a>)) {
        let batch = super::otlp::decode_proto(bytes, &mut self.join.borrow_mut());
        self.spans(batch, bytes, 0, sink);
    }

    /// Releases every OTLP tool call still waiting for its ancestors, with the agent named on
    /// the span or else its resource's (at the end of an input, and before a checkpoint).
    pub fn flush_spans(&self, sink: &mut dyn FnMut(Decoded<'static>)) {
        let mut events = Vec::new();
        let from_resource = self.join.borrow_mut().flush(&mut events);
        self.agent_from_resource
            .set(self.agent_from_resource.get() + from_resource);
        for ev in events {
            sink(Ok(ev));
        }
    }

    /// Exchanges the decoder's waiting OTLP tool calls with `other` (a driver that decodes
    /// several partitions with one decoder keeps each partition's apart).
    pub fn swap_join(&self, other: &mut SpanJoin) {
        std::mem::swap(&mut *self.join.borrow_mut(), other);
    }

    /// OTLP tool calls waiting for their ancestors now, released when their ancestor arrived
    /// in a later request, and released without it, so far.
    pub fn join_counts(&self) -> (usize, u64, u64) {
        let j = self.join.borrow();
        (j.pending(), j.joined(), j.fell_back())
    }

    /// Spans that were not tool calls, skipped so far.
    pub fn skipped_spans(&self) -> u64 {
        self.skipped_spans.get()
    }

    /// Tool call spans whose agent was taken from the resource so far.
    pub fn agent_from_resource(&self) -> u64 {
        self.agent_from_resource.get()
    }

    /// Decodes one element of a container.
    fn element<'a>(&self, msg: &'a str, item: &'a str, sink: &mut dyn FnMut(Decoded<'a>)) {
        let bytes = item.as_bytes();
        let offset = offset_in(msg, item);
        let max = self.config.max_record_bytes;
        let result = if bytes.len() > max {
            Err(RejectReason::Oversize {
                size: bytes.len(),
                limit: max,
            })
        } else if item.starts_with('{') {
            self.decode_record(item).map_err(|r| refine(r, bytes))
        } else {
            Err(not_an_object(bytes))
        };
        sink(result.map_err(|reason| Rejected {
            reason,
            raw: bytes,
            offset,
        }));
    }

    /// Decodes a message holding several documents one after another.
    fn stream<'a>(&self, msg: &'a str, sink: &mut dyn FnMut(Decoded<'a>)) {
        let mut docs = serde_json::Deserializer::from_str(msg).into_iter::<&'a RawValue>();
        loop {
            match docs.next() {
                None => break,
                Some(Ok(doc)) => {
                    self.document(msg, doc.get(), false, sink);
                }
                Some(Err(e)) => {
                    let end = docs.byte_offset().min(msg.len());
                    let rest = msg.get(end..).unwrap_or("");
                    let start = end + skip_ws(rest.as_bytes());
                    let raw = &msg.as_bytes()[start.min(msg.len())..];
                    let reason = match refine(wire::classify_syntax(e.to_string()), raw) {
                        RejectReason::NotJson(m) => RejectReason::TrailingData(m),
                        other => other,
                    };
                    sink(Err(Rejected {
                        reason,
                        raw,
                        offset: start,
                    }));
                    break;
                }
            }
        }
    }
}

/// Replaces a "not JSON" or "unknown format" verdict by `TooDeep` when the bytes nest deeper
/// than the parser accepts.
fn refine(reason: RejectReason, bytes: &[u8]) -> RejectReason {
    match reason {
        RejectReason::NotJson(ref m) | RejectReason::UnknownFormat(ref m)
            if wire::nesting_exceeds(bytes, MAX_DEPTH) =>
        {
            RejectReason::TooDeep(format!("nesting deeper than {MAX_DEPTH} levels ({m})"))
        }
        other => other,
    }
}

/// The rejection of a JSON value that is not an object.
fn not_an_object(bytes: &[u8]) -> RejectReason {
    if wire::nesting_exceeds(bytes, MAX_DEPTH) {
        return RejectReason::TooDeep(format!("nesting deeper than {MAX_DEPTH} levels"));
    }
    let found = match bytes.get(skip_ws(bytes)) {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    };
    RejectReason::UnknownFormat(format!("expected a JSON object, found {found}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NATIVE: &str = r#"{"event_id":"e1","time":"2024-05-01T12:00:00Z","agent_id":"a","action":"s3:GetObject","resource":"s3://b/k"}"#;

    fn codes(d: &Decoder, msg: &[u8]) -> Vec<&'static str> {
        d.decode_to_vec(msg)
            .iter()
            .map(|r| match r {
                Ok(_) => "ok",
                Err(rej) => rej.reason.code(),
            })
            .collect()
    }

    #[test]
    fn single_array_and_delivery() {
        let d = Decoder::default();
        assert_eq!(codes(&d, NATIVE.as_bytes()), ["ok"]);
        let arr = format!("[{NATIVE}, 5, {NATIVE}]");
        let out = d.decode_to_vec(arr.as_bytes());
        assert_eq!(out.len(), 3);
        let rej = out[1].as_ref().unwrap_err();
        assert_eq!(rej.raw, b"5");
        assert_eq!(rej.offset, arr.find(", 5").unwrap() + 2);
        assert_eq!(rej.reason.code(), "unknown_format");
        assert_eq!(codes(&d, b"[]"), Vec::<&str>::new());
        assert_eq!(codes(&d, br#"{"Records":[]}"#), Vec::<&str>::new());
        assert_eq!(codes(&d, b" [ ] "), Vec::<&str>::new());
    }

    #[test]
    fn concatenated_documents() {
        let d = Decoder::default();
        let msg = format!("{NATIVE}{NATIVE} {NATIVE}");
        assert_eq!(codes(&d, msg.as_bytes()), ["ok", "ok", "ok"]);
        let msg = format!("{NATIVE} garbage");
        let out = d.decode_to_vec(msg.as_bytes());
        assert_eq!(out.len(), 2);
        let rej = out[1].as_ref().unwrap_err();
        assert_eq!(rej.reason.code(), "trailing_data");
        assert_eq!(rej.raw, b"garbage");
        assert_eq!(rej.offset, NATIVE.len() + 1);
        let msg = br#"{"Records":[]}{"Records":[{"x":1}]}"#;
        assert_eq!(codes(&d, msg), ["unknown_format"]);
    }

    #[test]
    fn message_level_rejections() {
        let d = Decoder::default();
        assert_eq!(
            d.decode_to_vec(b"{\"a\":\"\xff\"}")[0]
                .as_ref()
                .unwrap_err()
                .reason,
            RejectReason::InvalidUtf8 { offset: 6 }
        );
        assert_eq!(codes(&d, b""), ["not_json"]);
        assert_eq!(codes(&d, b"   "), ["not_json"]);
        assert_eq!(codes(&d, b"{\"event_id\":"), ["not_json"]);
        assert_eq!(codes(&d, b"42"), ["unknown_format"]);
        assert_eq!(codes(&d, b"\"x\""), ["unknown_format"]);
        assert_eq!(codes(&d, b"{}"), ["unknown_format"]);
        assert_eq!(codes(&d, "[".repeat(100_000).as_bytes()), ["too_deep"]);
        let balanced = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(codes(&d, balanced.as_bytes()), ["too_deep"]);
        let deep_obj = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
        assert_eq!(codes(&d, deep_obj.as_bytes()), ["too_deep"]);
    }

    #[test]
    fn size_limit_applies_per_record() {
        let d = Decoder::new(DecodeConfig {
            format: FormatChoice::Auto,
            max_record_bytes: 200,
            ..DecodeConfig::default()
        });
        let big = format!(
            r#"{{"event_id":"e","time":0,"agent_id":"a","action":"x","resource":"{}"}}"#,
            "r".repeat(300)
        );
        assert_eq!(codes(&d, big.as_bytes()), ["oversize"]);
        let many = format!("[{NATIVE},{NATIVE},{big}]");
        assert_eq!(codes(&d, many.as_bytes()), ["ok", "ok", "oversize"]);
        // An oversize non-container is rejected before any parsing: even invalid UTF-8.
        let mut junk = vec![b'x'; 300];
        junk[5] = 0xff;
        assert_eq!(codes(&d, &junk), ["oversize"]);
    }

    #[test]
    fn explicit_format_only_tries_that_format() {
        let d = Decoder::new(DecodeConfig {
            format: FormatChoice::Ocsf,
            ..DecodeConfig::default()
        });
        assert_eq!(
            d.decode_to_vec(NATIVE.as_bytes())[0]
                .as_ref()
                .unwrap_err()
                .reason,
            RejectReason::MissingField {
                format: "ocsf",
                field: "class_uid"
            }
        );
        let d = Decoder::new(DecodeConfig {
            format: FormatChoice::Native,
            ..DecodeConfig::default()
        });
        assert_eq!(codes(&d, NATIVE.as_bytes()), ["ok"]);
        // Deliveries are a CloudTrail container: with another format they are one record.
        assert_eq!(codes(&d, br#"{"Records":[]}"#), ["missing_field"]);
    }
}
