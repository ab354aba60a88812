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
//! Other spans are skipped and counted, not dead-lettered.

use std::borrow::Cow;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::value::RawValue;

use super::tool::ToolCall;
use super::{AccessEvent, Format, Outcome, RejectReason};

/// The format's name in rejections.
const FORMAT: &str = "otlp";
/// How far up the span tree an agent is looked for.
const MAX_HOPS: usize = 32;

/// What one export request held.
#[derive(Debug, Default)]
pub struct Batch {
    /// One event per tool call span.
    pub events: Vec<AccessEvent<'static>>,
    /// Spans that are not tool calls.
    pub skipped: u64,
    /// Tool call spans whose agent came from the resource, for want of an agent on the span
    /// or an `invoke_agent` ancestor in the request.
    pub agent_from_resource: u64,
}

/// Decodes an OTLP JSON export request.
pub fn decode_json(text: &str) -> Result<Batch, RejectReason> {
    let req: ExportTraceServiceRequest =
        serde_json::from_str(text).map_err(|e| RejectReason::InvalidField {
            format: FORMAT,
            field: "resourceSpans",
            detail: e.to_string(),
        })?;
    from_request(&req)
}

/// Decodes an OTLP protobuf export request.
pub fn decode_proto(bytes: &[u8]) -> Result<Batch, RejectReason> {
    let req = <ExportTraceServiceRequest as prost::Message>::decode(bytes).map_err(|e| {
        RejectReason::InvalidField {
            format: FORMAT,
            field: "resourceSpans",
            detail: format!("not an OTLP protobuf export request: {e}"),
        }
    })?;
    from_request(&req)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

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
    serde_json::to_string(s)
        .ok()
        .and_then(|j| RawValue::from_string(j).ok())
        .map(Cow::Owned)
}

fn is_tool_call(span: &Span) -> bool {
    attr(&span.attributes, "gen_ai.operation.name") == Some("execute_tool")
        || attr(&span.attributes, "mcp.method.name") == Some("tools/call")
}

fn agent_of(span: &Span) -> Option<&str> {
    attr(&span.attributes, "gen_ai.agent.id")
        .or_else(|| attr(&span.attributes, "gen_ai.agent.name"))
}

fn from_request(req: &ExportTraceServiceRequest) -> Result<Batch, RejectReason> {
    let mut batch = Batch::default();
    // Every span of the request by id, for the ancestors of tool calls.
    let spans: rustc_hash::FxHashMap<&[u8], &Span> = req
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter()))
        .map(|s| (s.span_id.as_slice(), s))
        .collect();
    let by_id = |id: &[u8]| spans.get(id).copied();
    for rs in &req.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        for span in rs.scope_spans.iter().flat_map(|ss| ss.spans.iter()) {
            if !is_tool_call(span) {
                batch.skipped += 1;
                continue;
            }
            if span.span_id.is_empty() {
                return Err(RejectReason::MissingField {
                    format: FORMAT,
                    field: "spanId",
                });
            }
            // The nearest `invoke_agent` ancestor in this request.
            let mut invoke: Option<&Span> = None;
            let mut parent = span.parent_span_id.as_slice();
            for _ in 0..MAX_HOPS {
                let Some(p) = (!parent.is_empty()).then(|| by_id(parent)).flatten() else {
                    break;
                };
                if attr(&p.attributes, "gen_ai.operation.name") == Some("invoke_agent") {
                    invoke = Some(p);
                    break;
                }
                parent = p.parent_span_id.as_slice();
            }
            let agent = match agent_of(span).or_else(|| invoke.and_then(agent_of)) {
                Some(a) => a.to_string(),
                None => {
                    batch.agent_from_resource += 1;
                    let service = attr(resource, "service.name").unwrap_or("unknown_service");
                    match attr(resource, "service.instance.id") {
                        Some(i) => format!("{service}/{i}"),
                        None => service.to_string(),
                    }
                }
            };
            let tool = attr(&span.attributes, "gen_ai.tool.name")
                .unwrap_or(span.name.as_str())
                .to_string();
            let session = attr(&span.attributes, "gen_ai.conversation.id")
                .or_else(|| invoke.and_then(|p| attr(&p.attributes, "gen_ai.conversation.id")))
                .or_else(|| attr(&span.attributes, "mcp.session.id"))
                .map_or_else(|| hex(&span.trace_id), str::to_string);
            let time_ms = i64::try_from(span.start_time_unix_nano / 1_000_000).unwrap_or(i64::MAX);
            if !(0..super::time::MAX_MS).contains(&time_ms) {
                return Err(RejectReason::TimeOutOfRange {
                    detail: format!("startTimeUnixNano {}", span.start_time_unix_nano),
                });
            }
            let failed = span
                .status
                .as_ref()
                .is_some_and(|s| s.code == StatusCode::Error as i32);
            let arguments =
                attr(&span.attributes, "gen_ai.tool.call.arguments").and_then(json_string);
            let result = attr(&span.attributes, "gen_ai.tool.call.result").and_then(json_string);
            let request = invoke
                .and_then(|p| attr(&p.attributes, "gen_ai.input.messages"))
                .map(|r| Cow::Owned(r.to_string()));
            let tool_call =
                (arguments.is_some() || result.is_some() || request.is_some()).then(|| {
                    Box::new(ToolCall {
                        arguments,
                        result,
                        request,
                    })
                });
            batch.events.push(AccessEvent {
                format: Format::Otlp,
                event_id: Cow::Owned(hex(&span.span_id)),
                time_ms,
                agent_id: Cow::Owned(agent),
                agent_kind: Some(Cow::Borrowed("ai_agent")),
                resource: Cow::Owned(format!("tool:{tool}")),
                action: Cow::Owned(tool),
                outcome: if failed {
                    Outcome::Error
                } else {
                    Outcome::Success
                },
                session_id: Some(Cow::Owned(session)),
                source_ip: None,
                bytes: None,
                grant: None,
                intent: None,
                attributes: None,
                tool: tool_call,
            });
        }
    }
    Ok(batch)
}
