//! The message decoder: splits a message into records and decodes each in its format.
//!
//! A message (a Kafka message value, or one line or document of a file) holds one record, a
//! CloudTrail S3 delivery object `{"Records":[...]}`, a JSON array of records, or several such
//! documents one after another. Every record yields exactly one [`Decoded`], in input order.
//!
//! Containers are decoded element by element: the elements are found by a string- and
//! escape-aware bracket matcher ([`super::scan`]) and each is decoded on its own, so that a
//! broken element is one rejection and its neighbours decode. When a broken element hides where
//! it ends (a cut string, a lost bracket), decoding resumes at the next element that opens like
//! the others (its first key: `{"eventVersion"`).
//!
//! An object with a top-level `Records` array is a delivery only when it has no member naming
//! an event of its own (`agent_id`, `action`, `class_uid`, `kind`, `auditID`, `eventVersion`,
//! ...); otherwise it is one record and `Records` one of its fields.

use std::cell::RefCell;
use std::sync::LazyLock;

use memchr::memmem;
use serde::de::IgnoredAny;

use super::mcp_audit::Audit;
use super::message::{Message, MessageKind};
use super::otlp::{JoinSettings, JoinStateError, SpanJoin};
use super::scan::{find_signature, signature, skip_ws_from, value_end};
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

/// Why a record is not an MCP gateway audit event: it lacks `member`, or has a native event's
/// `agent_id`.
fn not_an_audit_event(member: &'static str) -> RejectReason {
    if member == "agent_id" {
        RejectReason::InvalidField {
            format: "mcp_audit",
            field: "agent_id",
            detail: "a native event's member: this is not an MCP gateway audit event".to_string(),
        }
    } else {
        RejectReason::MissingField {
            format: "mcp_audit",
            field: member,
        }
    }
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

/// Top-level members that make an object an event of its own rather than a delivery of records.
const EVENT_KEYS: &[&[u8]] = &[
    b"agent_id",
    b"action",
    b"event_id",
    b"class_uid",
    b"kind",
    b"auditID",
    b"apiVersion",
    b"eventVersion",
    b"eventID",
    b"userIdentity",
    b"resourceSpans",
    b"loggedAt",
];

/// How many ways of opening (first keys) of a container's elements are remembered for finding
/// the element after a broken one.
const MAX_SHAPES: usize = 8;

/// Where an element of a container ends, as the bracket matcher sees it.
struct Extent {
    /// End of the element's value.
    value: usize,
    /// End of the element's bytes (any junk after its value included).
    end: usize,
    /// Where scanning goes on: past the comma, or past the container's end.
    next: usize,
    /// Whether the container (or the text) ended after this element.
    closed: bool,
}

/// The extent of the element starting at `start`: its value, then anything up to the comma or
/// the closing bracket that follows at the container's level (`whole`: whether a bracket ends
/// the container because it is well-formed up to it).
fn extent(msg: &[u8], whole: &WellFormed, start: usize, delivery: bool) -> Extent {
    let value = value_end(msg, start).unwrap_or(msg.len());
    let mut end = value;
    loop {
        let q = skip_ws_from(msg, end);
        let (next, closed) = match msg.get(q) {
            None => (msg.len(), true),
            Some(b',') => (q + 1, false),
            Some(b']') if closes(msg, q, delivery) || whole.ends_at(msg, q) => (q + 1, true),
            // Junk after the value belongs to the element.
            Some(_) => {
                end = value_end(msg, q).unwrap_or(msg.len());
                continue;
            }
        };
        return Extent {
            value,
            end,
            next,
            closed,
        };
    }
}

/// Whether the `]` at `at` closes its container: it is followed by the end of the message or by
/// another document, or, for a delivery's `Records`, by the delivery's `}` or its next member.
/// Otherwise it belongs to a broken element and the container goes on.
fn closes(msg: &[u8], at: usize, delivery: bool) -> bool {
    let next = skip_ws_from(msg, at + 1);
    match msg.get(next) {
        None | Some(b'{' | b'[') => true,
        Some(b'}') => delivery,
        Some(b',') => delivery && msg.get(skip_ws_from(msg, next + 1)) == Some(&b'"'),
        Some(_) => false,
    }
}

/// Containers up to this size are parsed whole, once, by [`WellFormed`].
const WELL_FORMED_MAX: usize = 1 << 20;

/// Whether a `]` closes the array opened at `open` because the array up to it is well-formed
/// JSON, whatever follows it (`closes` judges a `]` by what follows it, which a stream of
/// documents such as `[1]` then `5` does not tell). The array is parsed the first time a `]`
/// needs this judgement, at most once, and only if it fits in [`WELL_FORMED_MAX`] bytes (an
/// array nested deeper than serde_json's recursion limit does not parse, and its `]` is judged
/// by `closes` alone).
struct WellFormed {
    open: usize,
    end: std::cell::OnceCell<Option<usize>>,
}

impl WellFormed {
    fn new(open: usize) -> WellFormed {
        WellFormed {
            open,
            end: std::cell::OnceCell::new(),
        }
    }

    /// Whether the `]` at `at` ends the well-formed array.
    fn ends_at(&self, msg: &[u8], at: usize) -> bool {
        let end = self.end.get_or_init(|| {
            let open = self.open;
            if msg.get(open) != Some(&b'[') {
                return None;
            }
            let window = &msg[open..msg.len().min(open.saturating_add(WELL_FORMED_MAX))];
            let mut values = serde_json::Deserializer::from_slice(window).into_iter::<IgnoredAny>();
            match values.next() {
                Some(Ok(_)) => Some(open + values.byte_offset()),
                _ => None,
            }
        });
        *end == Some(at + 1)
    }
}

/// The end of the element that starts at `start` and is followed by the one at `next`: before
/// the white space and the comma between them.
fn end_before(msg: &[u8], start: usize, next: usize) -> usize {
    let trim = |mut end: usize| {
        while end > start && super::scan::is_ws(msg[end - 1]) {
            end -= 1;
        }
        end
    };
    let end = trim(next);
    if end > start + 1 && msg[end - 1] == b',' {
        trim(end - 1)
    } else {
        end
    }
}

/// Whether a rejected element may not end where the matcher says (its bytes are not one JSON
/// value, or too many of them). An oversize element that is one whole JSON value ends where it
/// should: the elements after it are records of their own, never pieces of it.
fn may_be_misframed(rej: &Rejected<'_>) -> bool {
    match rej.reason {
        RejectReason::NotJson(_)
        | RejectReason::TrailingData(_)
        | RejectReason::TooDeep(_)
        | RejectReason::InvalidUtf8 { .. } => true,
        RejectReason::Oversize { .. } => serde_json::from_slice::<IgnoredAny>(rej.raw).is_err(),
        _ => false,
    }
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
        let start = skip_ws(bytes);
        // One object (not a delivery), the common case: decoded in one pass.
        if bytes.get(start) == Some(&b'{')
            && !(self.accepts_deliveries() && has(&KEYS.records, bytes))
        {
            match std::str::from_utf8(bytes) {
                Ok(text) => {
                    if !self.object(text, 0, true, sink) {
                        return;
                    }
                }
                Err(e) => {
                    let single = value_end(bytes, start)
                        .is_none_or(|end| skip_ws_from(bytes, end) == bytes.len());
                    if single {
                        sink(Err(Rejected {
                            reason: RejectReason::InvalidUtf8 {
                                offset: e.valid_up_to(),
                            },
                            raw: bytes,
                            offset: 0,
                        }));
                        return;
                    }
                }
            }
        }
        self.documents(bytes, sink);
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

    /// Decodes a message that is not one plain object: documents one after another, arrays and
    /// deliveries element by element.
    fn documents<'a>(&self, msg: &'a [u8], sink: &mut dyn FnMut(Decoded<'a>)) {
        let mut pos = skip_ws(msg);
        if pos == msg.len() {
            sink(Err(Rejected {
                reason: RejectReason::NotJson(
                    "empty message: EOF while parsing a value".to_owned(),
                ),
                raw: msg,
                offset: 0,
            }));
            return;
        }
        let mut first = true;
        while pos < msg.len() {
            pos = match msg[pos] {
                b'[' => self.container(msg, pos, false, sink),
                b'{' => match self.delivery_records(msg, pos) {
                    Some(open) => self.delivery(msg, open, sink),
                    None => {
                        let end = value_end(msg, pos).unwrap_or(msg.len());
                        self.whole_object(msg, pos, end, first, sink);
                        end
                    }
                },
                _ => self.other(msg, pos, first, sink),
            };
            first = false;
            pos = skip_ws_from(msg, pos);
        }
    }

    /// Decodes the object `msg[start..end]`, one document of a message (`first` when no other
    /// came before it).
    fn whole_object<'a>(
        &self,
        msg: &'a [u8],
        start: usize,
        end: usize,
        first: bool,
        sink: &mut dyn FnMut(Decoded<'a>),
    ) {
        let bytes = &msg[start..end];
        let max = self.config.max_record_bytes;
        let reason = if bytes.len() > max {
            RejectReason::Oversize {
                size: bytes.len(),
                limit: max,
            }
        } else {
            match std::str::from_utf8(bytes) {
                Ok(doc) => {
                    let mut later = |d: Decoded<'a>| {
                        sink(d.map_err(|mut r| {
                            if let (false, RejectReason::NotJson(m)) = (first, &r.reason) {
                                r.reason = RejectReason::TrailingData(m.clone());
                            }
                            r
                        }))
                    };
                    self.object(doc, start, false, &mut later);
                    return;
                }
                Err(e) => RejectReason::InvalidUtf8 {
                    offset: e.valid_up_to(),
                },
            }
        };
        sink(Err(Rejected {
            reason,
            raw: bytes,
            offset: start,
        }));
    }

    /// Decodes what is neither an object nor an array at the top of a message. First in the
    /// message, it makes the whole message one rejected record; after other documents, a JSON
    /// scalar is one rejected record and anything else rejects the rest of the message. Returns
    /// where decoding goes on.
    fn other<'a>(
        &self,
        msg: &'a [u8],
        start: usize,
        first: bool,
        sink: &mut dyn FnMut(Decoded<'a>),
    ) -> usize {
        if !first
            && let Some(end) = value_end(msg, start)
            && serde_json::from_slice::<IgnoredAny>(&msg[start..end]).is_ok()
        {
            let bytes = &msg[start..end];
            sink(Err(Rejected {
                reason: not_an_object(bytes),
                raw: bytes,
                offset: start,
            }));
            return end;
        }
        let (raw, offset) = if first {
            (msg, 0)
        } else {
            (&msg[start..], start)
        };
        let reason = match std::str::from_utf8(raw) {
            Err(e) => RejectReason::InvalidUtf8 {
                offset: e.valid_up_to(),
            },
            Ok(text) => match serde_json::from_str::<IgnoredAny>(text) {
                Ok(_) => not_an_object(raw),
                Err(e) => match refine(wire::classify_syntax(e.to_string()), raw) {
                    RejectReason::NotJson(m) if !first => RejectReason::TrailingData(m),
                    other => other,
                },
            },
        };
        sink(Err(Rejected {
            reason,
            raw,
            offset,
        }));
        msg.len()
    }

    /// When the object opening at `start` is a delivery (a top-level `Records` array and no
    /// member naming an event of its own), the position of the array's `[`.
    fn delivery_records(&self, msg: &[u8], start: usize) -> Option<usize> {
        if !self.accepts_deliveries() || !has(&KEYS.records, &msg[start..]) {
            return None;
        }
        let mut records = None;
        let mut pos = start + 1;
        loop {
            pos = skip_ws_from(msg, pos);
            if msg.get(pos) != Some(&b'"') {
                break;
            }
            let (key_end, closed) = super::scan::string_scan(msg, pos);
            if !closed {
                break;
            }
            let key = &msg[pos + 1..key_end - 1];
            pos = skip_ws_from(msg, key_end);
            if msg.get(pos) != Some(&b':') {
                break;
            }
            pos = skip_ws_from(msg, pos + 1);
            let Some(&first) = msg.get(pos) else { break };
            if key == b"Records" && first == b'[' && records.is_none() {
                records = Some(pos);
            } else if EVENT_KEYS.contains(&key) {
                return None;
            }
            // A `Records` array that does not close ends the search: what follows is unknown.
            let Some(end) = value_end(msg, pos) else {
                break;
            };
            pos = skip_ws_from(msg, end);
            if msg.get(pos) != Some(&b',') {
                break;
            }
            pos += 1;
        }
        records
    }

    /// Decodes the records of a delivery whose `Records` array opens at `open`; returns where
    /// the delivery ends.
    fn delivery<'a>(&self, msg: &'a [u8], open: usize, sink: &mut dyn FnMut(Decoded<'a>)) -> usize {
        let mut pos = skip_ws_from(msg, self.container(msg, open, true, sink));
        // The members after the array, up to the closing brace.
        loop {
            match msg.get(pos) {
                Some(b'}') => return pos + 1,
                Some(b',') => {}
                _ => return pos,
            }
            let key = skip_ws_from(msg, pos + 1);
            if msg.get(key) != Some(&b'"') {
                return pos;
            }
            let colon = skip_ws_from(msg, super::scan::string_end(msg, key));
            if msg.get(colon) != Some(&b':') {
                return pos;
            }
            let value = skip_ws_from(msg, colon + 1);
            match (value < msg.len()).then(|| value_end(msg, value)).flatten() {
                Some(end) => pos = skip_ws_from(msg, end),
                None => return pos,
            }
        }
    }

    /// Decodes the elements of the container whose `[` is at `open` (the `Records` array of a
    /// delivery when `delivery`), each on its own; returns the position past its closing bracket
    /// (or the end of the message).
    ///
    /// A container in which nothing decodes and whose elements are not all JSON values (a line
    /// of garbage that happens to open with `[`) is one rejection rather than one per piece; so
    /// is one that holds nothing but commas (`[,]` is no JSON, and no empty container).
    fn container<'a>(
        &self,
        msg: &'a [u8],
        open: usize,
        delivery: bool,
        sink: &mut dyn FnMut(Decoded<'a>),
    ) -> usize {
        // How the decoded elements open (their first keys; a few kinds at most).
        let mut shapes: Vec<&'a [u8]> = Vec::new();
        // Rejections before the first element that decodes.
        let mut held: Vec<Rejected<'a>> = Vec::new();
        let mut decoded = false;
        let mut misframed = false;
        let mut elements = 0usize;
        let mut commas = 0usize;
        let whole = WellFormed::new(open);
        let mut pos = open + 1;
        let (end, closed) = loop {
            pos = skip_ws_from(msg, pos);
            match msg.get(pos) {
                None => break (msg.len(), false),
                Some(b']') if closes(msg, pos, delivery) || whole.ends_at(msg, pos) => {
                    break (pos + 1, true);
                }
                // An empty place between commas holds no record.
                Some(b',') => {
                    commas += 1;
                    pos += 1;
                    continue;
                }
                Some(_) => {}
            }
            let start = pos;
            elements += 1;
            let ext = extent(msg, &whole, start, delivery);
            let mut results = [Some(self.element(msg, start, ext.end)), None];
            let mut next = (!ext.closed).then_some(ext.next);
            if let Some(Err(rej)) = &results[0]
                && may_be_misframed(rej)
            {
                misframed = true;
                if let Some(at) = self.resync(msg, &whole, start, &ext, &shapes, delivery) {
                    // The element ends before the next one that opens like the others.
                    results[0] = Some(self.element(msg, start, end_before(msg, start, at)));
                    next = Some(at);
                } else if ext.value < ext.end
                    && let ok @ Ok(_) = self.element(msg, start, ext.value)
                {
                    // A whole record followed by junk: the record, and the junk on its own.
                    let junk = skip_ws_from(msg, ext.value);
                    let raw = &msg[junk..ext.end];
                    results = [
                        Some(ok),
                        Some(Err(Rejected {
                            reason: RejectReason::TrailingData(format!(
                                "{} bytes after an element",
                                raw.len()
                            )),
                            raw,
                            offset: junk,
                        })),
                    ];
                }
            }
            for result in results.into_iter().flatten() {
                match result {
                    Ok(ev) => {
                        if let Some(sig) = signature(&msg[start..ext.end])
                            && shapes.len() < MAX_SHAPES
                            && !shapes.contains(&sig)
                        {
                            shapes.push(sig);
                        }
                        if !decoded {
                            decoded = true;
                            for rej in held.drain(..) {
                                sink(Err(rej));
                            }
                        }
                        sink(Ok(ev));
                    }
                    Err(rej) if decoded => sink(Err(rej)),
                    Err(rej) => held.push(rej),
                }
            }
            match next {
                Some(at) => pos = at,
                None => break (ext.next, ext.next <= msg.len() && ext.closed),
            }
        };
        if (elements == 0 && (!closed || commas > 0)) || (misframed && held.len() > 1) {
            // Cut short or only commas before its first element, or nothing in it decodes: one
            // rejection.
            let raw = &msg[open..end];
            let err = serde_json::from_slice::<IgnoredAny>(raw)
                .err()
                .map_or_else(|| "not a list of records".to_owned(), |e| e.to_string());
            sink(Err(Rejected {
                reason: refine(wire::classify_syntax(err), raw),
                raw,
                offset: open,
            }));
        } else {
            for rej in held {
                sink(Err(rej));
            }
        }
        end
    }

    /// Where the element after the broken one at `start` begins, when the matcher's `ext` is
    /// not to be trusted: the next object that opens like one of the container's elements
    /// (`shapes`, or else like the broken element itself) or, before it, the next object after
    /// a comma that decodes as a record; taken when it lies inside the broken element's extent,
    /// or when what the matcher found after the broken element is no object (a fragment of it:
    /// a member `"key": value` split off at its comma, or junk).
    fn resync(
        &self,
        msg: &[u8],
        whole: &WellFormed,
        start: usize,
        ext: &Extent,
        shapes: &[&[u8]],
        delivery: bool,
    ) -> Option<usize> {
        let own = signature(&msg[start..ext.end]);
        let limit = ext
            .end
            .saturating_add(self.config.max_record_bytes)
            .min(msg.len());
        let shaped = shapes
            .iter()
            .copied()
            .chain(own)
            .filter_map(|sig| find_signature(&msg[..limit], start + 1, sig))
            .min();
        let next = self
            .record_start(msg, start + 1, shaped.unwrap_or(limit).min(ext.end))
            .or(shaped);
        if let Some(next) = next
            && next < ext.end
        {
            return Some(next);
        }
        let after = skip_ws_from(msg, ext.next);
        if ext.closed || msg.get(after).is_none_or(|&b| b == b'{') {
            return None;
        }
        // What follows is a fragment: it goes with the broken element, up to the next object
        // that opens like the others, or else the next object or the container's end.
        if next.is_some() {
            return next;
        }
        let mut at = after;
        loop {
            let e = extent(msg, whole, at, delivery);
            if e.closed {
                return Some(
                    if e.next <= msg.len() && msg.get(e.next - 1) == Some(&b']') {
                        e.next - 1
                    } else {
                        msg.len()
                    },
                );
            }
            at = skip_ws_from(msg, e.next);
            if msg.get(at).is_none_or(|&b| b == b'{') {
                return Some(at);
            }
        }
    }

    /// The first object in `msg[from..to]` that follows a comma (or an opening or closing
    /// bracket), ends before a comma or closing bracket, and decodes as a record.
    fn record_start(&self, msg: &[u8], from: usize, to: usize) -> Option<usize> {
        const TRIES: usize = 64;
        let mut tries = 0;
        for p in memchr::memchr_iter(b'{', msg.get(from..to)?) {
            let at = from + p;
            let before = msg[..at].iter().rposition(|&b| !super::scan::is_ws(b));
            if !before.is_some_and(|i| matches!(msg[i], b',' | b'[' | b'}' | b']'))
                || msg.get(skip_ws_from(msg, at + 1)) != Some(&b'"')
            {
                continue;
            }
            tries += 1;
            if tries > TRIES {
                return None;
            }
            let Some(end) = value_end(msg, at) else {
                continue;
            };
            if matches!(msg.get(skip_ws_from(msg, end)), None | Some(b',' | b']'))
                && self.element(msg, at, end).is_ok()
            {
                return Some(at);
            }
        }
        None
    }

    /// Decodes one object document `doc`, at `offset` in its message. Returns true when `doc`
    /// is the whole message (`whole`) and turned out to hold more than one document (the caller
    /// then decodes it document by document).
    fn object<'a>(
        &self,
        doc: &'a str,
        offset: usize,
        whole: bool,
        sink: &mut dyn FnMut(Decoded<'a>),
    ) -> bool {
        let bytes = doc.as_bytes();
        let max = self.config.max_record_bytes;
        let reject = |sink: &mut dyn FnMut(Decoded<'a>), reason| {
            sink(Err(Rejected {
                reason,
                raw: bytes,
                offset,
            }))
        };
        if matches!(self.config.format, FormatChoice::Auto | FormatChoice::Otlp)
            && has(&KEYS.resource_spans, bytes)
        {
            // Only an object with a `resourceSpans` member is an export request; one that
            // merely holds the name (in a value, or deeper down) is decoded as a record below.
            let batch = super::otlp::decode_json(doc, &mut self.join.borrow_mut());
            if let Some(batch) = batch.transpose() {
                self.spans(batch, bytes, offset, sink);
                return false;
            }
        }
        let forced_mcp = self.config.format == FormatChoice::McpAudit;
        if forced_mcp || (self.config.format == FormatChoice::Auto && looks_like_mcp_audit(bytes)) {
            let decoded = match super::mcp_audit::decode(doc) {
                Ok(Audit::Event(batch)) => Some(Ok(batch)),
                Err(reason) => Some(Err(reason)),
                // Without `--format mcp_audit`, another format's record that holds the members
                // deeper down: decoded as that format below.
                Ok(Audit::Not(member)) => forced_mcp.then(|| Err(not_an_audit_event(member))),
            };
            if let Some(decoded) = decoded {
                self.spans(decoded, bytes, offset, sink);
                return false;
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
        false
    }

    /// Emits the tool-call events of an OTLP export request, or its rejection, and counts the
    /// spans that are not tool calls.
    fn spans<'a>(
        &self,
        batch: Result<super::otlp::Batch<'a>, RejectReason>,
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

    /// The state of the waiting OTLP tool calls and remembered spans for a checkpoint, in
    /// about `max_bytes` (see [`SpanJoin::export`]); calls that do not fit are released to
    /// `sink` without their ancestors.
    pub fn export_join(
        &self,
        max_bytes: usize,
        sink: &mut dyn FnMut(Decoded<'static>),
    ) -> Result<Option<Vec<u8>>, JoinStateError> {
        let mut events = Vec::new();
        let exported = self.join.borrow_mut().export(max_bytes, &mut events);
        for ev in events {
            sink(Ok(ev));
        }
        match exported {
            Ok((state, from_resource)) => {
                self.agent_from_resource
                    .set(self.agent_from_resource.get() + from_resource);
                Ok(state)
            }
            Err(e) => {
                // Unwritable state: the calls still waiting are released now instead, so none
                // is lost.
                self.flush_spans(sink);
                Err(e)
            }
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

    /// Decodes the element `msg[start..end]` of a container.
    fn element<'a>(&self, msg: &'a [u8], start: usize, end: usize) -> Decoded<'a> {
        let bytes = &msg[start..end];
        let max = self.config.max_record_bytes;
        let result = if bytes.len() > max {
            Err(RejectReason::Oversize {
                size: bytes.len(),
                limit: max,
            })
        } else {
            match std::str::from_utf8(bytes) {
                Err(e) => Err(RejectReason::InvalidUtf8 {
                    offset: e.valid_up_to(),
                }),
                Ok(item) if item.starts_with('{') => {
                    self.decode_record(item).map_err(|r| refine(r, bytes))
                }
                Ok(item) => match serde_json::from_str::<IgnoredAny>(item) {
                    Ok(_) => Err(not_an_object(bytes)),
                    Err(e) => Err(refine(wire::classify_syntax(e.to_string()), bytes)),
                },
            }
        };
        result.map_err(|reason| Rejected {
            reason,
            raw: bytes,
            offset: start,
        })
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
    fn only_a_top_level_resource_spans_member_makes_an_export_request() {
        let d = Decoder::default();
        let named = NATIVE.replacen("\"action\":\"", "\"action\":\"resourceSpans", 1);
        assert!(named.contains("resourceSpans"));
        assert_eq!(codes(&d, named.as_bytes()), ["ok"], "a native event");
        let deeper = r#"{"x":{"resourceSpans":[]},"agent_id":"a"}"#;
        assert_eq!(codes(&d, deeper.as_bytes()), ["missing_field"]);
        let forced = Decoder::new(DecodeConfig {
            format: FormatChoice::Otlp,
            ..DecodeConfig::default()
        });
        assert_eq!(codes(&forced, deeper.as_bytes()), ["missing_field"]);
        assert_eq!(
            codes(&forced, br#"{"resourceSpans":[]}"#),
            Vec::<&str>::new()
        );
        assert_eq!(
            codes(&forced, br#"{"resourceSpans":null}"#),
            ["invalid_field"]
        );
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
        // A well-formed array ends at its `]` whatever document follows it, a bare value too.
        let msg = format!("[\n{NATIVE}\n]\n5\r\n");
        assert_eq!(codes(&d, msg.as_bytes()), ["ok", "unknown_format"]);
        assert_eq!(
            codes(&d, b"[\n \n5\r\r]\n5\r\r\r"),
            ["unknown_format", "unknown_format"]
        );
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
