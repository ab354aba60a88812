//! OpenTelemetry traces (OTLP) of AI agents: each tool call span becomes an access event.
//!
//! Both encodings the OpenTelemetry Collector writes are read with `opentelemetry-proto`'s
//! types: an `ExportTraceServiceRequest` as OTLP JSON (`{"resourceSpans": [...]}`, a line of the
//! Collector's file exporter or a message of its Kafka exporter with `otlp_json`) or as protobuf
//! (the Kafka exporter's default `otlp_proto`).
//!
//! An event is an `execute_tool` span (`gen_ai.operation.name`) or an MCP `tools/call` span
//! (`mcp.method.name`):
//! - `event_id`: the span id in lowercase hex (a span delivered twice is one event);
//! - `time`: the span's start; `outcome`: `error` when its status is an error;
//! - `action`: `gen_ai.tool.name` (else the span name); `resource`: `tool:<name>`;
//! - `agent_id`: `gen_ai.agent.id` or `gen_ai.agent.name` on the span, else on its nearest
//!   `invoke_agent` ancestor in the same export request, else the resource's `service.name`
//!   (with `service.instance.id` when set);
//! - `session_id`: `gen_ai.conversation.id` (or `mcp.session.id`), else the trace id;
//! - the tool call's `arguments` and `result` from `gen_ai.tool.call.arguments` and
//!   `gen_ai.tool.call.result`, and the user's `request` from `gen_ai.input.messages` of the
//!   `invoke_agent` ancestor, when present.
//!
//! Other spans are skipped and counted, not dead-lettered. A tool call whose event would break
//! the bounds of every event (an empty or over-long tool name, span id or agent) rejects its
//! export request, as a tool call without a span id or with a start time out of range does.

use std::borrow::Cow;
use std::collections::VecDeque;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::value::RawValue;

use super::native::check_len;
use super::otlp_json as json;
use super::otlp_proto as proto;
use super::tool::ToolCall;
use super::{AccessEvent, Format, Outcome, RejectReason};

/// The format's name in rejections.
const FORMAT: &str = "otlp";
/// How far up the span tree an agent is looked for.
const MAX_HOPS: usize = 32;

/// What one export request held.
#[derive(Debug, Default)]
pub struct Batch<'a> {
    /// One event per tool call span.
    pub events: Vec<AccessEvent<'a>>,
    /// Spans that are not tool calls.
    pub skipped: u64,
    /// Tool call spans whose agent came from the resource, for want of an agent on the span
    /// or an `invoke_agent` ancestor in the request.
    pub agent_from_resource: u64,
}

/// Decodes an OTLP JSON export request, joining its tool calls with ancestors from other
/// requests through `join`.
///
/// The request is read in place (see [`super::otlp_json`]); one that does not read so is read
/// again with `opentelemetry-proto`'s types, whose judgement (and error) stands.
///
/// `Ok(None)`: the object has no `resourceSpans` member, so it is not an export request (the
/// name occurs elsewhere in it) and the caller decodes it as a record.
pub(crate) fn decode_json<'a>(
    text: &'a str,
    join: &mut SpanJoin,
) -> Result<Option<Batch<'a>>, RejectReason> {
    match super::otlp_json::parse(text) {
        Ok(None) => return Ok(None),
        Ok(Some(req)) => return from_request(&req, join).map(Some),
        Err(_) if json::has_resource_spans(text) == Some(false) => return Ok(None),
        Err(_) => {}
    }
    let req: ExportTraceServiceRequest =
        serde_json::from_str(text).map_err(|e| RejectReason::InvalidField {
            format: FORMAT,
            field: "resourceSpans",
            detail: e.to_string(),
        })?;
    from_request(&req, join).map(Some)
}

/// Decodes an OTLP protobuf export request, joining its tool calls with ancestors from other
/// requests through `join`.
///
/// The request is read in place (see [`super::otlp_proto`]); one that does not read so is read
/// again with `opentelemetry-proto`'s types, whose judgement (and error) stands.
pub(crate) fn decode_proto<'a>(
    bytes: &'a [u8],
    join: &mut SpanJoin,
) -> Result<Batch<'a>, RejectReason> {
    if let Some(req) = super::otlp_proto::parse(bytes) {
        return from_request(&req, join);
    }
    let req = <ExportTraceServiceRequest as prost::Message>::decode(bytes).map_err(|e| {
        RejectReason::InvalidField {
            format: FORMAT,
            field: "resourceSpans",
            detail: format!("not an OTLP protobuf export request: {e}"),
        }
    })?;
    from_request(&req, join)
}

/// What the decoder reads of a span, in either encoding.
trait SpanRead {
    fn trace_id(&self) -> &[u8];
    fn span_id(&self) -> &[u8];
    fn parent_span_id(&self) -> &[u8];
    fn name(&self) -> &str;
    fn start_ns(&self) -> u64;
    fn end_ns(&self) -> u64;
    /// The value of the first attribute named `key`, when it is a string.
    fn attr(&self, key: &str) -> Option<&str>;
    /// Its status is an error.
    fn failed(&self) -> bool;
}

/// The text of a span that events carry, borrowed for as long as the input (`'a`) where the
/// encoding allows.
trait SpanText<'a> {
    /// The value of the first attribute named `key`, when it is a string.
    fn attr_text(&self, key: &str) -> Option<Cow<'a, str>>;
    /// Its name.
    fn name_text(&self) -> Cow<'a, str>;
}

impl SpanText<'static> for Span {
    fn attr_text(&self, key: &str) -> Option<Cow<'static, str>> {
        self.attr(key).map(|s| Cow::Owned(s.to_owned()))
    }
    fn name_text(&self) -> Cow<'static, str> {
        Cow::Owned(self.name.clone())
    }
}

impl<'a> SpanText<'a> for json::Span<'a> {
    fn attr_text(&self, key: &str) -> Option<Cow<'a, str>> {
        json_value(&self.attributes, key).cloned()
    }
    fn name_text(&self) -> Cow<'a, str> {
        self.name.clone()
    }
}

impl<'a> SpanText<'a> for proto::Span<'a> {
    fn attr_text(&self, key: &str) -> Option<Cow<'a, str>> {
        proto_attr(&self.attributes, key).map(Cow::Borrowed)
    }
    fn name_text(&self) -> Cow<'a, str> {
        Cow::Borrowed(self.name)
    }
}

/// An export request, in either encoding.
trait RequestRead {
    type Span: SpanRead;
    /// The spans of each scope, with the index of their resource.
    fn scopes(&self) -> impl Iterator<Item = (usize, &[Self::Span])>;
    /// The value of the first attribute named `key` of resource `resource`, when it is a string.
    fn resource_attr(&self, resource: usize, key: &str) -> Option<&str>;
    /// Every span, in order.
    fn spans(&self) -> impl Iterator<Item = &Self::Span> {
        self.scopes().flat_map(|(_, spans)| spans.iter())
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

/// Implements [`SpanRead`] and [`RequestRead`] for the types of one encoding (they name their
/// members alike), with `$attr` reading an attribute list.
macro_rules! read_through {
    ([$($g:lifetime)?] $req:ty, $span:ty, $attr:ident) => {
        impl<$($g)?> SpanRead for $span {
            fn trace_id(&self) -> &[u8] {
                &self.trace_id
            }
            fn span_id(&self) -> &[u8] {
                &self.span_id
            }
            fn parent_span_id(&self) -> &[u8] {
                &self.parent_span_id
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn start_ns(&self) -> u64 {
                self.start_time_unix_nano
            }
            fn end_ns(&self) -> u64 {
                self.end_time_unix_nano
            }
            fn attr(&self, key: &str) -> Option<&str> {
                $attr(&self.attributes, key)
            }
            fn failed(&self) -> bool {
                self.status
                    .as_ref()
                    .is_some_and(|s| s.code == StatusCode::Error as i32)
            }
        }

        impl<$($g)?> RequestRead for $req {
            type Span = $span;
            fn scopes(&self) -> impl Iterator<Item = (usize, &[$span])> {
                self.resource_spans.iter().enumerate().flat_map(|(i, rs)| {
                    rs.scope_spans
                        .iter()
                        .map(move |ss| (i, ss.spans.as_slice()))
                })
            }
            fn resource_attr(&self, resource: usize, key: &str) -> Option<&str> {
                let r = self.resource_spans.get(resource)?.resource.as_ref()?;
                $attr(&r.attributes, key)
            }
        }
    };
}

read_through!([] ExportTraceServiceRequest, Span, attr);

/// The string value of the first attribute named `key`, as the request holds it.
fn json_value<'s, 'v>(attrs: &'s [json::KeyValue<'v>], key: &str) -> Option<&'s Cow<'v, str>> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.string.as_ref())
}

fn json_attr<'a>(attrs: &'a [json::KeyValue<'_>], key: &str) -> Option<&'a str> {
    json_value(attrs, key).map(|v| &**v)
}

read_through!(['a] json::Request<'a>, json::Span<'a>, json_attr);

fn proto_attr<'v>(attrs: &[proto::KeyValue<'v>], key: &str) -> Option<&'v str> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value)
}

read_through!(['a] proto::Request<'a>, proto::Span<'a>, proto_attr);

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn json_string(s: &str) -> Option<Cow<'static, RawValue>> {
    // Encoding a string cannot fail: `None` never happens.
    serde_json::value::to_raw_value(s).ok().map(Cow::Owned)
}

fn is_tool_call(span: &impl SpanRead) -> bool {
    span.attr("gen_ai.operation.name") == Some("execute_tool")
        || span.attr("mcp.method.name") == Some("tools/call")
}

fn agent_of<'a>(span: &impl SpanText<'a>) -> Option<Cow<'a, str>> {
    span.attr_text("gen_ai.agent.id")
        .or_else(|| span.attr_text("gen_ai.agent.name"))
}

/// Where the ancestors of a tool call span were found.
enum Walk<'r> {
    /// Its nearest `invoke_agent` ancestor.
    Invoke(Invoke<'r>),
    /// The root of its trace, with no `invoke_agent` on the way.
    Root,
    /// An ancestor not seen yet: this span id.
    Unknown(IdKey),
}

/// What a tool call takes from its `invoke_agent` ancestor.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Invoke<'r> {
    agent: Option<Cow<'r, str>>,
    conversation: Option<Cow<'r, str>>,
    request: Option<Cow<'r, str>>,
}

impl<'r> Invoke<'r> {
    /// What an `invoke_agent` span gives its tool calls. An agent name that no event could carry
    /// (empty, or longer than 512 characters) is no agent name.
    fn of(span: &impl SpanText<'r>) -> Invoke<'r> {
        Invoke {
            agent: agent_of(span)
                .filter(|a| check_len(a, FORMAT, "gen_ai.agent.id", 1, 512).is_ok()),
            conversation: span.attr_text("gen_ai.conversation.id"),
            request: span
                .attr_text("gen_ai.input.messages")
                .and_then(user_request),
        }
    }

    fn into_owned(self) -> Invoke<'static> {
        let own = |c: Option<Cow<'_, str>>| c.map(|s| Cow::Owned(s.into_owned()));
        Invoke {
            agent: own(self.agent),
            conversation: own(self.conversation),
            request: own(self.request),
        }
    }
}

/// The user's request in `gen_ai.input.messages`: the text of its `user` messages, one a line
/// (`[{"role": "user", "parts": [{"type": "text", "content": "Pay the bill"}]}]` gives
/// `Pay the bill`; a message whose `content` is a string, as chat APIs write it, gives that
/// string). A value that is not a list of messages with roles is taken as the request itself;
/// a list without a user's text holds no request.
fn user_request(messages: Cow<'_, str>) -> Option<Cow<'_, str>> {
    let list = match serde_json::from_str::<serde_json::Value>(&messages) {
        Ok(serde_json::Value::Array(list)) if list.iter().any(|m| m.get("role").is_some()) => list,
        _ => return Some(messages),
    };
    let mut text = String::new();
    let mut push = |t: &str| {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(t);
    };
    for m in list.iter().filter(|m| m["role"] == "user") {
        if let Some(content) = m["content"].as_str() {
            push(content);
        }
        for part in m["parts"].as_array().into_iter().flatten() {
            if part["type"] == "text"
                && let Some(t) = part["content"].as_str().or(part["text"].as_str())
            {
                push(t);
            }
        }
    }
    (!text.is_empty()).then_some(Cow::Owned(text))
}

/// A span's identity: its trace id and span id, as integers.
type IdKey = (u128, u64);

fn id_key(trace: &[u8], span: &[u8]) -> IdKey {
    let mut t = [0u8; 16];
    let mut s = [0u8; 8];
    let tn = trace.len().min(16);
    let sn = span.len().min(8);
    t[..tn].copy_from_slice(&trace[..tn]);
    s[..sn].copy_from_slice(&span[..sn]);
    (u128::from_be_bytes(t), u64::from_be_bytes(s))
}

/// A span remembered for the tool calls that arrive before or after it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Node {
    /// Its parent, `None` at a trace's root.
    parent: Option<IdKey>,
    /// What it carries when it is an `invoke_agent` span.
    invoke: Option<Invoke<'static>>,
}

/// A tool call whose ancestors have not arrived yet.
#[derive(Clone, Debug)]
struct Pending {
    event: AccessEvent<'static>,
    /// The ancestor it waits for.
    waiting_for: IdKey,
    /// The agent named on the span itself.
    own_agent: bool,
    /// The agent taken from the span's resource, should no ancestor name one.
    resource_agent: String,
}

/// Bytes counted for each stored span or call beside its text (ids, lengths, flags).
const STORED_OVERHEAD: usize = 48;

/// A [`SpanJoin`]'s state as a checkpoint keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredJoin {
    /// The newest span time seen.
    newest_ms: i64,
    /// Remembered spans, oldest first.
    known: Vec<(IdKey, Node)>,
    /// Waiting calls, oldest first.
    pending: Vec<StoredPending>,
}

/// A waiting tool call as a checkpoint keeps it: its event as JSON (as the repartition topics
/// carry events).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredPending {
    event: Vec<u8>,
    waiting_for: IdKey,
    own_agent: bool,
    resource_agent: String,
}

/// Why a join's checkpointed state could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JoinStateError {
    /// The state's encoding.
    #[error("span join state: {0}")]
    State(#[from] postcard::Error),
    /// A waiting call's event.
    #[error("waiting tool call: {0}")]
    Event(#[from] serde_json::Error),
}

/// Settings of the join of tool calls with ancestors that arrive in later export requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinSettings {
    /// How long a tool call waits for its ancestors, in span time (the newest span start or
    /// end seen): 0 decodes every export request on its own.
    pub wait_ms: i64,
    /// Most tool calls waiting at once; beyond it the oldest is released.
    pub max_pending: usize,
    /// Most spans remembered as possible ancestors; beyond it the oldest is forgotten.
    pub max_spans: usize,
}

impl Default for JoinSettings {
    fn default() -> Self {
        JoinSettings {
            wait_ms: 300_000,
            max_pending: 10_000,
            max_spans: 65_536,
        }
    }
}

/// Joins tool call spans with `invoke_agent` ancestors that arrive in later export requests.
///
/// Exporters send a span when it ends, so a tool call usually leaves before the agent run that
/// contains it, often in another request. A tool call whose chain of ancestors reaches a span
/// not seen yet waits (at most [`JoinSettings::wait_ms`] of span time, and at most
/// [`JoinSettings::max_pending`] calls at once); it is released with its agent, session and the
/// user's request once the `invoke_agent` ancestor or the trace's root arrives, and otherwise,
/// when the wait is over or [`SpanJoin::flush`] is called, with the agent named on the span, else
/// its resource's (counted in [`SpanJoin::fell_back`]). Released calls keep their own times, so the
/// engine sees them as late events, never lost.
#[derive(Clone, Debug, Default)]
pub struct SpanJoin {
    settings: JoinSettings,
    /// Spans seen that were not tool calls, by identity.
    known: rustc_hash::FxHashMap<IdKey, Node>,
    /// `known` in arrival order, for forgetting the oldest.
    order: VecDeque<IdKey>,
    /// Tool calls waiting, oldest first.
    pending: VecDeque<Pending>,
    /// The newest span time seen, in milliseconds.
    newest_ms: i64,
    /// Tool calls released when their ancestor arrived in a later request.
    joined: u64,
    /// Tool calls released without their ancestor (waited too long, too many waiting, or
    /// flushed).
    fell_back: u64,
}

impl SpanJoin {
    /// An empty join with these settings.
    pub fn new(settings: JoinSettings) -> Self {
        SpanJoin {
            settings,
            ..SpanJoin::default()
        }
    }

    /// Tool calls waiting for an ancestor now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Tool calls released when their ancestor arrived in a later request, so far.
    pub fn joined(&self) -> u64 {
        self.joined
    }

    /// Tool calls released without their ancestor, so far.
    pub fn fell_back(&self) -> u64 {
        self.fell_back
    }

    /// Releases every waiting tool call as it is (end of input, or a commit point).
    pub fn flush(&mut self, out: &mut Vec<AccessEvent<'_>>) -> u64 {
        let mut from_resource = 0;
        while let Some(p) = self.pending.pop_front() {
            from_resource += self.fall_back(p, out);
        }
        from_resource
    }

    /// The join's state for a checkpoint, so that tool calls keep waiting for their ancestors
    /// across commit points and restarts: every waiting call, then the remembered spans, newest
    /// first, as many as fit in about `max_bytes` and in a quarter of it (a span that ends after
    /// the state is taken rarely has a remembered ancestor: agent runs end after their tool
    /// calls, so the checkpoint spends little on them). While the waiting calls alone would not fit,
    /// the oldest are released into `out` as [`SpanJoin::flush`] releases them (counted in
    /// [`SpanJoin::fell_back`]). Returns the state (`None` when the join holds nothing) and how
    /// many released calls took their agent from the resource.
    pub fn export(
        &mut self,
        max_bytes: usize,
        out: &mut Vec<AccessEvent<'_>>,
    ) -> Result<(Option<Vec<u8>>, u64), JoinStateError> {
        let mut from_resource = 0;
        let mut pending = Vec::with_capacity(self.pending.len());
        let mut size = 0;
        for p in &self.pending {
            let event = serde_json::to_vec(&p.event)?;
            size += event.len() + p.resource_agent.len() + STORED_OVERHEAD;
            pending.push(StoredPending {
                event,
                waiting_for: p.waiting_for,
                own_agent: p.own_agent,
                resource_agent: p.resource_agent.clone(),
            });
        }
        let mut first = 0;
        while size > max_bytes && first < pending.len() {
            let p = &pending[first];
            size -= p.event.len() + p.resource_agent.len() + STORED_OVERHEAD;
            first += 1;
            if let Some(p) = self.pending.pop_front() {
                from_resource += self.fall_back(p, out);
            }
        }
        pending.drain(..first);
        let mut known = Vec::new();
        let mut known_size = 0;
        for key in self.order.iter().rev() {
            let Some(node) = self.known.get(key) else {
                continue;
            };
            let text = node.invoke.as_ref().map_or(0, |i| {
                [&i.agent, &i.conversation, &i.request]
                    .iter()
                    .map(|t| t.as_ref().map_or(0, |t| t.len()))
                    .sum()
            });
            size += text + STORED_OVERHEAD;
            known_size += text + STORED_OVERHEAD;
            if size > max_bytes || known_size > max_bytes / 4 {
                break;
            }
            known.push((*key, node.clone()));
        }
        known.reverse();
        if pending.is_empty() && known.is_empty() {
            return Ok((None, from_resource));
        }
        let stored = StoredJoin {
            newest_ms: self.newest_ms,
            known,
            pending,
        };
        Ok((Some(postcard::to_allocvec(&stored)?), from_resource))
    }

    /// A join with these settings holding the state [`SpanJoin::export`] gave (its counts start
    /// at zero).
    pub fn import(settings: JoinSettings, bytes: &[u8]) -> Result<SpanJoin, JoinStateError> {
        let stored: StoredJoin = postcard::from_bytes(bytes)?;
        let mut join = SpanJoin::new(settings);
        join.newest_ms = stored.newest_ms;
        for (key, node) in stored.known {
            join.remember(key, node);
        }
        for p in stored.pending {
            let event: AccessEvent<'_> = serde_json::from_slice(&p.event)?;
            join.pending.push_back(Pending {
                event: event.into_owned(),
                waiting_for: p.waiting_for,
                own_agent: p.own_agent,
                resource_agent: p.resource_agent,
            });
        }
        Ok(join)
    }

    fn fall_back(&mut self, p: Pending, out: &mut Vec<AccessEvent<'_>>) -> u64 {
        self.fell_back += 1;
        let mut ev = p.event;
        if p.own_agent {
            out.push(ev);
            0
        } else {
            ev.agent_id = Cow::Owned(p.resource_agent);
            out.push(ev);
            1
        }
    }

    fn remember(&mut self, key: IdKey, node: Node) {
        if self.settings.max_spans == 0 {
            return;
        }
        if self.known.insert(key, node).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.settings.max_spans {
                if let Some(old) = self.order.pop_front() {
                    self.known.remove(&old);
                }
            }
        }
    }

    /// Walks up from `parent` through the remembered spans.
    fn walk(&self, mut parent: Option<IdKey>) -> Walk<'static> {
        for _ in 0..MAX_HOPS {
            let Some(id) = parent else {
                return Walk::Root;
            };
            let Some(node) = self.known.get(&id) else {
                return Walk::Unknown(id);
            };
            if let Some(inv) = &node.invoke {
                return Walk::Invoke(inv.clone());
            }
            parent = node.parent;
        }
        Walk::Root
    }

    /// Releases the waiting calls whose ancestors are now known, then those that waited too
    /// long or overflow the bound. Returns how many took their agent from the resource.
    fn release(&mut self, out: &mut Vec<AccessEvent<'_>>) -> u64 {
        let mut from_resource = 0;
        let mut still = VecDeque::with_capacity(self.pending.len());
        let pending = std::mem::take(&mut self.pending);
        for mut p in pending {
            if !self.known.contains_key(&p.waiting_for) {
                still.push_back(p);
                continue;
            }
            match self.walk(Some(p.waiting_for)) {
                Walk::Unknown(id) => {
                    p.waiting_for = id;
                    still.push_back(p);
                }
                Walk::Invoke(inv) => {
                    self.joined += 1;
                    let mut ev = p.event;
                    if let Some(a) = inv.agent.filter(|_| !p.own_agent) {
                        ev.agent_id = a;
                    } else if !p.own_agent {
                        from_resource += 1;
                        ev.agent_id = Cow::Owned(p.resource_agent);
                    }
                    if let Some(c) = inv.conversation {
                        ev.session_id = Some(c);
                    }
                    if let Some(r) = inv.request {
                        ev.tool
                            .get_or_insert_with(|| {
                                Box::new(ToolCall {
                                    arguments: None,
                                    result: None,
                                    request: None,
                                })
                            })
                            .request = Some(r);
                    }
                    out.push(ev);
                }
                Walk::Root => {
                    self.joined += 1;
                    let mut ev = p.event;
                    if !p.own_agent {
                        from_resource += 1;
                        ev.agent_id = Cow::Owned(p.resource_agent);
                    }
                    out.push(ev);
                }
            }
        }
        self.pending = still;
        let horizon = self.newest_ms.saturating_sub(self.settings.wait_ms);
        while self.pending.len() > self.settings.max_pending
            || self
                .pending
                .front()
                .is_some_and(|p| p.event.time_ms < horizon)
        {
            if let Some(p) = self.pending.pop_front() {
                from_resource += self.fall_back(p, out);
            }
        }
        from_resource
    }
}

fn from_request<'a, R>(req: &R, join: &mut SpanJoin) -> Result<Batch<'a>, RejectReason>
where
    R: RequestRead,
    R::Span: SpanText<'a>,
{
    let mut batch = Batch::default();
    let wait = join.settings.wait_ms > 0;
    // Every span of the request by id, for the ancestors of tool calls.
    let spans: rustc_hash::FxHashMap<&[u8], &R::Span> =
        req.spans().map(|s| (s.span_id(), s)).collect();
    let by_id = |id: &[u8]| spans.get(id).copied();
    let mut newest = join.newest_ms;
    let mut waiting: Vec<Pending> = Vec::new();
    for (resource, scope) in req.scopes() {
        for span in scope {
            newest = newest.max(
                i64::try_from(span.end_ns().max(span.start_ns()) / 1_000_000)
                    .unwrap_or(0)
                    .min(super::time::MAX_MS),
            );
            if !is_tool_call(span) {
                batch.skipped += 1;
                continue;
            }
            if span.span_id().is_empty() {
                return Err(RejectReason::MissingField {
                    format: FORMAT,
                    field: "spanId",
                });
            }
            // The nearest `invoke_agent` ancestor in this request, else among the spans of
            // earlier requests.
            let mut invoke: Option<Invoke<'a>> = None;
            let mut unknown: Option<IdKey> = None;
            let mut parent = span.parent_span_id();
            for _ in 0..MAX_HOPS {
                if parent.is_empty() {
                    break;
                }
                let Some(p) = by_id(parent) else {
                    let id = id_key(span.trace_id(), parent);
                    match join.walk(Some(id)) {
                        Walk::Invoke(inv) => invoke = Some(inv),
                        Walk::Root => {}
                        Walk::Unknown(id) => unknown = Some(id),
                    }
                    break;
                };
                if p.attr("gen_ai.operation.name") == Some("invoke_agent") {
                    invoke = Some(Invoke::of(p));
                    break;
                }
                parent = p.parent_span_id();
            }
            let own_agent = agent_of(span);
            if let Some(a) = &own_agent {
                check_len(a, FORMAT, "gen_ai.agent.id", 1, 512)?;
            }
            let has_own_agent = own_agent.is_some();
            let resource_agent = || {
                let service = req
                    .resource_attr(resource, "service.name")
                    .filter(|s| !s.is_empty())
                    .unwrap_or("unknown_service");
                let agent = match req.resource_attr(resource, "service.instance.id") {
                    Some(i) => format!("{service}/{i}"),
                    None => service.to_string(),
                };
                check_len(&agent, FORMAT, "service.name", 1, 512).map(|()| agent)
            };
            let waits = wait && unknown.is_some();
            let agent = match own_agent.or_else(|| invoke.as_ref().and_then(|i| i.agent.clone())) {
                Some(a) => a,
                None if waits => Cow::Borrowed(""),
                None => {
                    batch.agent_from_resource += 1;
                    Cow::Owned(resource_agent()?)
                }
            };
            let tool = match span.attr_text("gen_ai.tool.name") {
                Some(name) => {
                    check_len(&name, FORMAT, "gen_ai.tool.name", 1, 256)?;
                    name
                }
                None => {
                    check_len(span.name(), FORMAT, "name", 1, 256)?;
                    span.name_text()
                }
            };
            let mut resource = String::with_capacity(5 + tool.len());
            resource.push_str("tool:");
            resource.push_str(&tool);
            let event_id = hex(span.span_id());
            check_len(&event_id, FORMAT, "spanId", 1, 256)?;
            let session = span
                .attr_text("gen_ai.conversation.id")
                .or_else(|| invoke.as_ref().and_then(|i| i.conversation.clone()))
                .or_else(|| span.attr_text("mcp.session.id"))
                .unwrap_or_else(|| Cow::Owned(hex(span.trace_id())));
            let time_ms = i64::try_from(span.start_ns() / 1_000_000).unwrap_or(i64::MAX);
            if !(0..super::time::MAX_MS).contains(&time_ms) {
                return Err(RejectReason::TimeOutOfRange {
                    detail: format!("startTimeUnixNano {}", span.start_ns()),
                });
            }
            let failed = span.failed();
            let arguments = span
                .attr("gen_ai.tool.call.arguments")
                .and_then(json_string);
            let result = span.attr("gen_ai.tool.call.result").and_then(json_string);
            let request = invoke.as_ref().and_then(|i| i.request.clone());
            let tool_call =
                (arguments.is_some() || result.is_some() || request.is_some()).then(|| {
                    Box::new(ToolCall {
                        arguments,
                        result,
                        request,
                    })
                });
            let event = AccessEvent {
                format: Format::Otlp,
                event_id: Cow::Owned(event_id),
                time_ms,
                agent_id: agent,
                agent_kind: Some(Cow::Borrowed("ai_agent")),
                resource: Cow::Owned(resource),
                action: tool,
                outcome: if failed {
                    Outcome::Error
                } else {
                    Outcome::Success
                },
                session_id: Some(session),
                source_ip: None,
                bytes: None,
                grant: None,
                intent: None,
                attributes: None,
                tool: tool_call,
            };
            match unknown.filter(|_| waits) {
                Some(waiting_for) => waiting.push(Pending {
                    event: event.into_owned(),
                    waiting_for,
                    own_agent: has_own_agent,
                    resource_agent: if has_own_agent {
                        String::new()
                    } else {
                        resource_agent()?
                    },
                }),
                None => batch.events.push(event),
            }
        }
    }
    if wait {
        // Remember this request's other spans for the tool calls that wait or will arrive.
        for span in req
            .spans()
            .filter(|s| !is_tool_call(*s) && !s.span_id().is_empty())
        {
            let invoke = (span.attr("gen_ai.operation.name") == Some("invoke_agent"))
                .then(|| Invoke::of(span).into_owned());
            let parent = (!span.parent_span_id().is_empty())
                .then(|| id_key(span.trace_id(), span.parent_span_id()));
            join.remember(
                id_key(span.trace_id(), span.span_id()),
                Node { parent, invoke },
            );
        }
        join.newest_ms = newest;
        // Calls that waited are older than this request's: they go first.
        let mut released = Vec::new();
        batch.agent_from_resource += join.release(&mut released);
        join.pending.extend(waiting);
        // A call of this request may wait for a span that an earlier request's span names as
        // its parent and that this request brought; the bounds apply to all.
        batch.agent_from_resource += join.release(&mut released);
        if !released.is_empty() {
            released.append(&mut batch.events);
            batch.events = released;
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(spans: &[(&str, &str, &str, u64)]) -> String {
        let spans: Vec<serde_json::Value> = spans
            .iter()
            .map(|(id, parent, op, secs)| {
                serde_json::json!({
                    "traceId": "000000000000000000000000000000aa",
                    "spanId": id,
                    "parentSpanId": parent,
                    "name": op,
                    "startTimeUnixNano": (secs * 1_000_000_000).to_string(),
                    "endTimeUnixNano": (secs * 1_000_000_000).to_string(),
                    "attributes": [
                        {"key": "gen_ai.operation.name", "value": {"stringValue": op}},
                        {"key": "gen_ai.agent.id", "value": {"stringValue": "runner"}},
                    ],
                })
            })
            .collect();
        serde_json::json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
            "scopeSpans": [{"spans": spans}],
        }]})
        .to_string()
    }

    fn tool(id: &str, parent: &str, secs: u64) -> (String, String, String, u64) {
        (id.into(), parent.into(), "execute_tool".into(), secs)
    }

    fn decode(join: &mut SpanJoin, spans: &[(String, String, String, u64)]) -> Vec<String> {
        let spans: Vec<(&str, &str, &str, u64)> = spans
            .iter()
            .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), *d))
            .collect();
        let text = request(&spans);
        decode_json(&text, join)
            .unwrap()
            .expect("an export request")
            .events
            .into_iter()
            .map(|e| e.event_id.into_owned())
            .collect()
    }

    /// What a batch gives downstream, for comparing two decodings.
    fn summary(b: &Batch) -> String {
        let events: Vec<String> = b
            .events
            .iter()
            .map(|e| serde_json::to_string(e).expect("an event serialises"))
            .collect();
        format!(
            "{events:?} skipped {} from resource {}",
            b.skipped, b.agent_from_resource
        )
    }

    #[test]
    fn a_request_read_in_place_decodes_as_opentelemetry_proto_reads_it() {
        let fixture = include_str!("../../fixtures/otlp/banking_agent.jsonl");
        let edge = [
            // Upper-case and 0x-prefixed ids, times as numbers, escaped strings, a status,
            // attribute values of every kind and a duplicated attribute (the first counts).
            r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}},{"key":"service.instance.id","value":{"stringValue":"i-\u0031"}}]},"scopeSpans":[{"scope":{"name":"s","version":"1"},"spans":[
              {"traceId":"0X0AF7651916CD43DD8448EB211C80319C","spanId":"0xB7AD6B7169203331","name":"run","startTimeUnixNano":1714564800000000000,"endTimeUnixNano":"1714564900000000000","attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"invoke_agent"}},{"key":"gen_ai.input.messages","value":{"stringValue":"send \"it\""}}]},
              {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"00000000000000a1","parentSpanId":"b7ad6b7169203331","name":"execute_tool x","kind":3,"startTimeUnixNano":"1714564800100000000","endTimeUnixNano":"1714564800200000000","status":{"code":2,"message":"boom"},
               "events":[{"timeUnixNano":"1","name":"e"}],"links":[],
               "attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"execute_tool"}},{"key":"gen_ai.tool.name","value":{"stringValue":"send_money"}},{"key":"gen_ai.tool.name","value":{"stringValue":"other"}},
                 {"key":"gen_ai.tool.call.arguments","value":{"stringValue":"{\"to\": \"x\"}"}},{"key":"n","value":{"intValue":"7"}},{"key":"d","value":{"doubleValue":1.5}},
                 {"key":"a","value":{"arrayValue":{"values":[{"stringValue":"q"},{"intValue":3}]}}},{"key":"k","value":{"kvlistValue":{"values":[{"key":"z","value":{"boolValue":true}}]}}},
                 {"key":"gen_ai.conversation.id","value":{"intValue":9}}]},
              {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"00000000000000a2","name":"tools/call","startTimeUnixNano":"1714564800300000000","attributes":[{"key":"mcp.method.name","value":{"stringValue":"tools/call"}},{"key":"mcp.session.id","value":{"stringValue":"m-1"}}]}
            ]}]}]}"#,
        ];
        // And the simulated LLM fleet's sessions: injections in tool results, every tool.
        let dir = tempfile::tempdir().expect("tempdir");
        crate::sim::simulate(&crate::sim::SimConfig {
            kind: crate::sim::SimKind::Llm,
            agents: 6,
            days: 2,
            seed: 11,
            out: dir.path().to_path_buf(),
            ..Default::default()
        })
        .expect("simulates");
        let simulated =
            std::fs::read_to_string(dir.path().join(crate::sim::llm::SPANS_FILE)).expect("spans");
        assert!(simulated.lines().count() > 20);
        for settings in [
            JoinSettings::default(),
            JoinSettings {
                wait_ms: 0,
                ..JoinSettings::default()
            },
        ] {
            let (mut in_place, mut owned) = (SpanJoin::new(settings), SpanJoin::new(settings));
            let mut wire = SpanJoin::new(settings);
            let mut not_in_place = 0;
            for line in fixture.lines().chain(edge).chain(simulated.lines()) {
                let req = json::parse(line)
                    .expect("reads in place")
                    .expect("an export request");
                let proto: ExportTraceServiceRequest =
                    serde_json::from_str(line).expect("opentelemetry-proto reads it");
                let a = from_request(&req, &mut in_place).expect("decodes");
                let b = from_request(&proto, &mut owned).expect("decodes");
                assert!(!a.events.is_empty() || a.skipped > 0);
                assert_eq!(summary(&a), summary(&b), "{line}");
                // The protobuf encoding, read in place, unless it holds what prost must read.
                let bytes = prost::Message::encode_to_vec(&proto);
                let c = match super::proto::parse(&bytes) {
                    Some(req) => from_request(&req, &mut wire).expect("decodes"),
                    None => {
                        not_in_place += 1;
                        decode_proto(&bytes, &mut wire).expect("decodes")
                    }
                };
                assert_eq!(summary(&c), summary(&b), "{line}");
            }
            // Only the edge case's array and key-value list attributes are left to prost.
            assert_eq!(not_in_place, 1);
            let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
            in_place.flush(&mut a);
            owned.flush(&mut b);
            wire.flush(&mut c);
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
            assert_eq!(format!("{c:?}"), format!("{b:?}"));
        }
    }

    /// A protobuf field: its key, then its length and bytes.
    fn field(tag: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        prost::encoding::encode_varint(u64::from(tag << 3 | 2), &mut out);
        prost::encoding::encode_varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn protobuf_read_in_place_merges_and_refuses_as_prost_does() {
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as Kv};
        use opentelemetry_proto::tonic::trace::v1::Status;
        let kv = |k: &str, v: Option<any_value::Value>| Kv {
            key: k.into(),
            value: Some(AnyValue { value: v }),
            ..Default::default()
        };
        let text = |s: &str| Some(any_value::Value::StringValue(s.into()));
        let tool = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "execute_tool".into(),
            start_time_unix_nano: 1_714_564_800_000_000_000,
            attributes: vec![
                kv("gen_ai.operation.name", text("execute_tool")),
                kv("gen_ai.tool.name", text("send_money")),
            ],
            ..Default::default()
        };
        // A second encoding of the same span, merged into the first: later scalars win, the
        // attributes add up, the status is merged, and an attribute's value is merged too (an
        // empty value keeps the string, an integer replaces it).
        let later = Span {
            span_id: vec![3; 8],
            start_time_unix_nano: 1_714_564_900_000_000_000,
            attributes: vec![kv("gen_ai.tool.name", text("other"))],
            status: Some(Status {
                code: 2,
                ..Default::default()
            }),
            ..Default::default()
        };
        let agent_value = |v: Option<any_value::Value>| {
            field(2, &prost::Message::encode_to_vec(&AnyValue { value: v }))
        };
        let mut merged = prost::Message::encode_to_vec(&tool);
        merged.extend(prost::Message::encode_to_vec(&later));
        // The agent attribute again, its value first kept by an empty value, then replaced.
        let mut agent = field(1, b"gen_ai.agent.id");
        agent.extend(agent_value(text("second")));
        agent.extend(agent_value(None));
        merged.extend(field(9, &agent));
        let mut mixed = field(1, b"gen_ai.conversation.id");
        mixed.extend(agent_value(text("conv")));
        mixed.extend(agent_value(Some(any_value::Value::IntValue(7))));
        merged.extend(field(9, &mixed));
        // An unknown field of each wire type is skipped.
        merged.extend([0xf8, 0x07, 0x01, 0xf9, 0x07, 0, 0, 0, 0, 0, 0, 0, 0]);
        merged.extend([0xfd, 0x07, 0, 0, 0, 0]);
        merged.extend(field(127, b"unknown"));
        let resource = |name: &str| {
            field(
                1,
                &prost::Message::encode_to_vec(
                    &opentelemetry_proto::tonic::resource::v1::Resource {
                        attributes: vec![kv("service.name", text(name))],
                        ..Default::default()
                    },
                ),
            )
        };
        let request = |span: &[u8], extra: &[u8]| {
            let mut rs = resource("svc");
            rs.extend(resource("again"));
            rs.extend(field(2, &field(2, span)));
            rs.extend_from_slice(extra);
            field(1, &rs)
        };
        let well_formed = request(&merged, &[]);
        let prost_reads = |bytes: &[u8]| {
            let req: ExportTraceServiceRequest =
                prost::Message::decode(bytes).expect("prost reads it");
            summary(&from_request(&req, &mut SpanJoin::default()).expect("decodes"))
        };
        let req = super::proto::parse(&well_formed).expect("read in place");
        let batch = from_request(&req, &mut SpanJoin::default()).expect("decodes");
        let in_place = summary(&batch);
        assert_eq!(in_place, prost_reads(&well_formed));
        let ev = &batch.events[0];
        assert_eq!(
            (&*ev.event_id, &*ev.agent_id, &*ev.action, ev.outcome),
            ("0303030303030303", "second", "send_money", Outcome::Error)
        );
        assert_eq!(ev.time_ms, 1_714_564_900_000);
        assert_eq!(
            ev.session_id.as_deref(),
            Some("01010101010101010101010101010101")
        );

        // What prost must judge: a list value, a group, a key too long, a truncated message, invalid
        // UTF-8.
        let mut list = merged.clone();
        list.extend(field(
            9,
            &prost::Message::encode_to_vec(&kv(
                "l",
                Some(any_value::Value::ArrayValue(Default::default())),
            )),
        ));
        let with_list = request(&list, &[]);
        assert!(super::proto::parse(&with_list).is_none());
        assert_eq!(
            summary(&decode_proto(&with_list, &mut SpanJoin::default()).expect("decodes")),
            in_place
        );
        let mut bad_name = merged.clone();
        bad_name.extend(field(5, &[0xff, 0xfe]));
        for bad in [
            request(&merged, &[0x0b]),
            // A key past 32 bits.
            request(&merged, &[0xca, 0xff, 0xff, 0xff, 0xfc, 0x00]),
            well_formed[..well_formed.len() - 1].to_vec(),
            request(&bad_name, &[]),
        ] {
            assert!(super::proto::parse(&bad).is_none());
            assert!(<ExportTraceServiceRequest as prost::Message>::decode(&bad[..]).is_err());
            assert!(matches!(
                decode_proto(&bad, &mut SpanJoin::default()),
                Err(RejectReason::InvalidField { .. })
            ));
        }
    }

    #[test]
    fn a_request_that_does_not_read_in_place_keeps_opentelemetry_proto_s_rejection() {
        let text = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"xyz","attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"execute_tool"}}]}]}]}]}"#;
        let old = serde_json::from_str::<ExportTraceServiceRequest>(text)
            .expect_err("refused")
            .to_string();
        match decode_json(text, &mut SpanJoin::default()) {
            Err(RejectReason::InvalidField { field, detail, .. }) => {
                assert_eq!(field, "resourceSpans");
                assert_eq!(detail, old);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_call_waits_through_intermediate_spans_until_its_agent_run_arrives() {
        let mut join = SpanJoin::new(JoinSettings::default());
        // tool <- step (next request) <- invoke_agent (the request after).
        assert!(
            decode(
                &mut join,
                &[tool("0000000000000001", "00000000000000a1", 100)]
            )
            .is_empty()
        );
        let step = (
            "00000000000000a1".into(),
            "00000000000000b1".into(),
            "chat".into(),
            101,
        );
        assert!(decode(&mut join, &[step]).is_empty(), "still waiting");
        assert_eq!(join.pending(), 1);
        let invoke = (
            "00000000000000b1".into(),
            String::new(),
            "invoke_agent".into(),
            102,
        );
        assert_eq!(decode(&mut join, &[invoke]), ["0000000000000001"]);
        assert_eq!((join.pending(), join.joined(), join.fell_back()), (0, 1, 0));
    }

    #[test]
    fn a_waiting_call_and_the_spans_it_walks_through_survive_a_checkpoint() {
        let mut join = SpanJoin::new(JoinSettings::default());
        // tool <- step (known) <- invoke_agent (not yet arrived).
        let step = (
            "00000000000000a1".into(),
            "00000000000000b1".into(),
            "chat".into(),
            101,
        );
        assert!(
            decode(
                &mut join,
                &[tool("0000000000000001", "00000000000000a1", 100), step]
            )
            .is_empty()
        );
        let mut released = Vec::new();
        let (state, _) = join.export(1 << 20, &mut released).unwrap();
        assert!(released.is_empty(), "it fits: nothing is released");
        let state = state.expect("a call waits");
        let mut restored = SpanJoin::import(JoinSettings::default(), &state).unwrap();
        assert_eq!(restored.pending(), 1);
        let invoke = (
            "00000000000000b1".into(),
            String::new(),
            "invoke_agent".into(),
            102,
        );
        assert_eq!(
            decode(&mut restored, std::slice::from_ref(&invoke)),
            ["0000000000000001"],
            "joined through the restored step"
        );
        assert_eq!((restored.joined(), restored.fell_back()), (1, 0));

        // Too little room: the call is released now, as a flush releases it, and the state
        // holds no call.
        let (small, _) = join.export(10, &mut released).unwrap();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].agent_id, "runner", "the agent on the span");
        assert_eq!(join.fell_back(), 1);
        assert!(small.is_none(), "nothing fits beside it");
        assert!(SpanJoin::import(JoinSettings::default(), b"\xff").is_err());
    }

    #[test]
    fn a_call_is_released_when_its_wait_is_over_and_older_calls_go_first() {
        let mut join = SpanJoin::new(JoinSettings {
            wait_ms: 60_000,
            ..JoinSettings::default()
        });
        assert!(
            decode(
                &mut join,
                &[tool("0000000000000001", "00000000000000f1", 100)]
            )
            .is_empty()
        );
        // Thirty seconds later it still waits; ninety seconds later it is released, before the
        // newer call that came with the request that moved time on.
        assert!(decode(&mut join, &[tool("0000000000000002", "", 130)]) == ["0000000000000002"]);
        assert_eq!(join.pending(), 1);
        assert_eq!(
            decode(&mut join, &[tool("0000000000000003", "", 190)]),
            ["0000000000000001", "0000000000000003"]
        );
        assert_eq!((join.pending(), join.joined(), join.fell_back()), (0, 0, 1));
    }

    #[test]
    fn the_oldest_call_is_released_when_too_many_wait() {
        let mut join = SpanJoin::new(JoinSettings {
            max_pending: 1,
            ..JoinSettings::default()
        });
        assert!(
            decode(
                &mut join,
                &[tool("0000000000000001", "00000000000000f1", 100)]
            )
            .is_empty()
        );
        assert_eq!(
            decode(
                &mut join,
                &[tool("0000000000000002", "00000000000000f2", 101)]
            ),
            ["0000000000000001"]
        );
        let mut rest = Vec::new();
        join.flush(&mut rest);
        assert_eq!(rest.len(), 1);
        assert_eq!(join.fell_back(), 2);
    }

    #[test]
    fn the_request_is_the_text_of_the_user_messages() {
        let messages = r#"[{"role": "system", "parts": [{"type": "text", "content": "You are helpful."}]}, {"role": "user", "parts": [{"type": "text", "content": "Pay the bill"}, {"type": "uri", "uri": "file:///bill.pdf"}, {"type": "text", "content": "in my inbox."}]}]"#;
        assert_eq!(
            user_request(Cow::Borrowed(messages)).as_deref(),
            Some("Pay the bill\nin my inbox.")
        );
        // Words of the message structure ("text", "user") are no words of the request.
        assert!(
            !user_request(Cow::Borrowed(messages))
                .unwrap()
                .contains("role")
        );
        assert_eq!(
            user_request(Cow::Borrowed(
                r#"[{"role": "user", "content": "Reply to Elena"}, {"role": "assistant", "content": "Done."}]"#
            ))
            .as_deref(),
            Some("Reply to Elena"),
            "a chat message's content string"
        );
        assert_eq!(
            user_request(Cow::Borrowed(r#"["Pay the bill"]"#)).as_deref(),
            Some(r#"["Pay the bill"]"#),
            "a list that is not of messages is the request itself"
        );
        assert_eq!(
            user_request(Cow::Borrowed("Read my latest mail")).as_deref(),
            Some("Read my latest mail"),
            "a plain value is the request itself"
        );
        assert_eq!(
            user_request(Cow::Borrowed(
                r#"[{"role": "system", "parts": [{"type": "text", "content": "Be brief."}]}]"#
            )),
            None,
            "messages without the user's text hold no request"
        );
    }
}
