//! MCP gateway audit events (ToolHive's audit log): a team running agents behind an MCP gateway
//! needs no tracing.
//!
//! An `mcp_tool_call` event (and an `mcp_resource_read`) is an access event:
//! - `event_id`: `metadata.auditId`; `time`: `loggedAt`;
//! - `agent_id`: `subjects.client_name` (the MCP client: the agent), else `subjects.user_id`,
//!   else `subjects.user`; kind `ai_agent`;
//! - `action`: the tool's name (`target.name`); a resource read is `mcp:resources/read`;
//! - `resource`: `mcp://<component>/<tool or resource>`;
//! - `outcome`: `success`, `denied`, or `error` (`failure`, `error`, `application_error`);
//! - `source_ip`: `source.value`; `session_id`: `source.extra.session_id` when present;
//! - with request and response data enabled on the gateway, the call's `arguments` from
//!   `data.request.params.arguments` and its `result` from `data.response.result`.
//!
//! Other audit events (`mcp_tools_list`, `mcp_initialize`, `mcp_ping`, ...) are skipped and
//! counted.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

use super::native::check_len;
use super::otlp::Batch;
use super::tool::ToolCall;
use super::{AccessEvent, Format, Outcome, RejectReason, time};

const FORMAT: &str = "mcp_audit";

#[derive(Deserialize)]
struct Wire {
    /// Checked present by [`Members`] before the event is read.
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    metadata: Metadata,
    #[serde(rename = "loggedAt")]
    logged_at: Option<String>,
    #[serde(default)]
    source: Source,
    outcome: Option<String>,
    subjects: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    component: String,
    #[serde(default)]
    target: std::collections::BTreeMap<String, String>,
    data: Option<Value>,
    agent_id: Option<IgnoredAny>,
}

#[derive(Default, Deserialize)]
struct Metadata {
    #[serde(rename = "auditId")]
    audit_id: Option<String>,
}

#[derive(Default, Deserialize)]
struct Source {
    #[serde(default)]
    value: String,
    #[serde(default)]
    extra: std::collections::BTreeMap<String, Value>,
}

fn raw(v: &Value) -> Option<Cow<'static, RawValue>> {
    if v.is_null() {
        return None;
    }
    // A parsed value always encodes (its map keys are strings): `None` never happens.
    serde_json::value::to_raw_value(v).ok().map(Cow::Owned)
}

/// The top-level members that tell an audit event from a record of another format, read
/// alone when the record is not a well-formed audit event.
#[derive(Deserialize)]
struct Top {
    #[serde(rename = "type")]
    kind: Option<IgnoredAny>,
    #[serde(rename = "loggedAt")]
    logged_at: Option<IgnoredAny>,
    subjects: Option<IgnoredAny>,
    agent_id: Option<IgnoredAny>,
}

/// Which of those members a record has: `type`, `loggedAt`, `subjects`, `agent_id`.
struct Members([bool; 4]);

impl Members {
    /// The member that makes the record no audit event, if one does: a missing `type`,
    /// `loggedAt` or `subjects`, or a native event's `agent_id`.
    fn disqualifying(&self) -> Option<&'static str> {
        let [kind, logged, subjects, agent] = self.0;
        [
            (!kind, "type"),
            (!logged, "loggedAt"),
            (!subjects, "subjects"),
            (agent, "agent_id"),
        ]
        .into_iter()
        .find_map(|(bad, member)| bad.then_some(member))
    }
}

/// What a record turned out to be.
#[derive(Debug)]
pub enum Audit {
    /// An audit event: a batch of one event, or of none (a skipped event type).
    Event(Batch<'static>),
    /// Not an audit event: the record lacks this top-level member (`type`, `loggedAt` or
    /// `subjects`), or has a native event's `agent_id`. The members may still occur deeper in
    /// the record, which is what made it look like one.
    Not(&'static str),
}

/// Decodes one record that looks like an audit event (see [`Audit`]).
pub fn decode(record: &str) -> Result<Audit, RejectReason> {
    let w: Wire = match serde_json::from_str(record) {
        Ok(w) => w,
        Err(e) => {
            // Not a well-formed audit event: a record of another format, or a broken one.
            let not = serde_json::from_str::<Top>(record).ok().and_then(|t| {
                Members([
                    t.kind.is_some(),
                    t.logged_at.is_some(),
                    t.subjects.is_some(),
                    t.agent_id.is_some(),
                ])
                .disqualifying()
            });
            return match not {
                Some(member) => Ok(Audit::Not(member)),
                None => Err(RejectReason::InvalidField {
                    format: FORMAT,
                    field: "type",
                    detail: e.to_string(),
                }),
            };
        }
    };
    let members = Members([
        w.kind.is_some(),
        w.logged_at.is_some(),
        w.subjects.is_some(),
        w.agent_id.is_some(),
    ]);
    match members.disqualifying() {
        Some(member) => Ok(Audit::Not(member)),
        None => decode_event(w).map(Audit::Event),
    }
}

/// Decodes one audit event: a batch of one event, or of none (a skipped event type).
fn decode_event(w: Wire) -> Result<Batch<'static>, RejectReason> {
    let mut batch = Batch::default();
    // `type` is present: `decode` checked it.
    let (action, target) = match w.kind.as_deref().unwrap_or_default() {
        "mcp_tool_call" => {
            let name = w
                .target
                .get("name")
                .cloned()
                .ok_or(RejectReason::MissingField {
                    format: FORMAT,
                    field: "target.name",
                })?;
            (name.clone(), name)
        }
        "mcp_resource_read" => (
            "mcp:resources/read".to_string(),
            // A read that names no resource is a read of the server's: `mcp://<component>/`.
            w.target.get("name").cloned().unwrap_or_default(),
        ),
        _ => {
            batch.skipped = 1;
            return Ok(batch);
        }
    };
    let event_id = w.metadata.audit_id.ok_or(RejectReason::MissingField {
        format: FORMAT,
        field: "metadata.auditId",
    })?;
    let logged = w.logged_at.ok_or(RejectReason::MissingField {
        format: FORMAT,
        field: "loggedAt",
    })?;
    let time_ms = time::parse_rfc3339_ms(&logged).ok_or_else(|| RejectReason::InvalidField {
        format: FORMAT,
        field: "loggedAt",
        detail: format!("expected an RFC 3339 time, found {logged:?}"),
    })?;
    let time_ms = time::check_range(time_ms, || logged.clone())?;
    let agent = ["client_name", "user_id", "user"]
        .iter()
        .find_map(|k| w.subjects.as_ref()?.get(*k).filter(|v| !v.is_empty()))
        .cloned()
        .ok_or(RejectReason::MissingField {
            format: FORMAT,
            field: "subjects",
        })?;
    // The same bounds as every format's: an empty or oversized id or name is a dead letter.
    check_len(&event_id, FORMAT, "metadata.auditId", 1, 256)?;
    check_len(&agent, FORMAT, "subjects", 1, 512)?;
    check_len(&action, FORMAT, "target.name", 1, 256)?;
    let resource = format!("mcp://{}/{}", w.component, target);
    check_len(&resource, FORMAT, "target", 0, 4096)?;
    let outcome = match w.outcome.as_deref() {
        Some("denied") => Outcome::Denied,
        Some("success") | None => Outcome::Success,
        Some(_) => Outcome::Error,
    };
    let (arguments, result) = match &w.data {
        Some(d) => (
            raw(&d["request"]["params"]["arguments"]),
            raw(&d["response"]["result"]),
        ),
        None => (None, None),
    };
    let tool = (arguments.is_some() || result.is_some()).then(|| {
        Box::new(ToolCall {
            arguments,
            result,
            request: None,
        })
    });
    batch.events.push(AccessEvent {
        format: Format::McpAudit,
        event_id: Cow::Owned(event_id),
        time_ms,
        agent_id: Cow::Owned(agent),
        agent_kind: Some(Cow::Borrowed("ai_agent")),
        resource: Cow::Owned(resource),
        action: Cow::Owned(action),
        outcome,
        session_id: w
            .source
            .extra
            .get("session_id")
            .and_then(Value::as_str)
            .map(|s| Cow::Owned(s.to_string())),
        source_ip: (!w.source.value.is_empty()).then_some(Cow::Owned(w.source.value)),
        bytes: None,
        grant: None,
        intent: None,
        attributes: None,
        tool,
    });
    Ok(batch)
}
