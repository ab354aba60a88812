//! The event model and one decoder per input format.
//!
//! A record (one JSON object) is decoded into an [`AccessEvent`], which borrows from the input
//! bytes wherever it can, so the hot path copies nothing. Records that cannot be decoded become a
//! [`Rejected`] with a typed [`RejectReason`]; drivers turn them into dead letters.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub mod cloudtrail;
mod decoder;
pub mod k8s_audit;
pub mod mcp_audit;
pub(crate) mod message;
pub mod native;
pub mod ocsf;
pub mod otlp;
mod otlp_json;
mod otlp_proto;
pub mod parties;
pub(crate) mod scan;
pub mod settings;
pub mod sniff;
pub mod time;
pub(crate) mod tool;
pub(crate) mod wire;

pub use decoder::{DEFAULT_MAX_RECORD_BYTES, DecodeConfig, Decoder};
pub use message::{KEPT_BYTES, Message, MessageKind};

/// The format a record was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// cinch's own event format (CONTRACT.md section 1).
    Native,
    /// OCSF API Activity, Authentication and similar classes.
    Ocsf,
    /// AWS CloudTrail records.
    Cloudtrail,
    /// Kubernetes audit events (`audit.k8s.io/v1`).
    K8sAudit,
    /// OpenTelemetry spans of AI agents' tool calls (OTLP JSON or protobuf).
    Otlp,
    /// MCP gateway audit events (ToolHive).
    McpAudit,
}

impl Format {
    /// Every format, in a fixed order (useful for bounded metric labels).
    pub const ALL: [Format; 6] = [
        Format::Native,
        Format::Ocsf,
        Format::Cloudtrail,
        Format::K8sAudit,
        Format::Otlp,
        Format::McpAudit,
    ];

    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Ocsf => "ocsf",
            Format::Cloudtrail => "cloudtrail",
            Format::K8sAudit => "k8s_audit",
            Format::Otlp => "otlp",
            Format::McpAudit => "mcp_audit",
        }
    }
}

/// What an access resulted in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The access was allowed and completed.
    #[default]
    Success,
    /// The access was refused by an authorisation check.
    Denied,
    /// The access failed for another reason.
    Error,
}

impl Outcome {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

/// One decoded access event. Borrows from the input record where the text needs no unescaping.
///
/// It serialises to JSON and reads back unchanged: that is how events cross the internal
/// repartition topic of an unkeyed input (see `drive::kafka::rekey`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessEvent<'a> {
    /// The format the record was decoded from.
    pub format: Format,
    /// Unique id (1..256 chars).
    #[serde(borrow)]
    pub event_id: Cow<'a, str>,
    /// Event time, epoch milliseconds (1970 <= t < 2100).
    pub time_ms: i64,
    /// The non-human identity.
    #[serde(borrow)]
    pub agent_id: Cow<'a, str>,
    /// Kind of identity (`ai_agent`, `service_account`, `aws_role`, ...), when known.
    #[serde(borrow)]
    pub agent_kind: Option<Cow<'a, str>>,
    /// What it did (`s3:GetObject`, `s3.amazonaws.com:GetObject`, `k8s:list`, ...).
    #[serde(borrow)]
    pub action: Cow<'a, str>,
    /// What it did it to (may be empty).
    #[serde(borrow)]
    pub resource: Cow<'a, str>,
    /// How the access ended.
    pub outcome: Outcome,
    /// The task or run this access belongs to.
    #[serde(borrow)]
    pub session_id: Option<Cow<'a, str>>,
    /// Where the call came from, verbatim (never assumed to be a valid address).
    #[serde(borrow)]
    pub source_ip: Option<Cow<'a, str>>,
    /// Data volume moved.
    pub bytes: Option<u64>,
    /// Id of the entitlement that authorised the access.
    #[serde(borrow)]
    pub grant: Option<Cow<'a, str>>,
    /// The agent's stated purpose for the task.
    #[serde(borrow)]
    pub intent: Option<Cow<'a, str>>,
    /// Free-form attributes carried into evidence.
    pub attributes: Option<Cow<'a, RawValue>>,
    /// For a tool call of an AI agent: its arguments, its result and the user's request.
    #[serde(borrow)]
    pub tool: Option<Box<tool::ToolCall<'a>>>,
}

impl AccessEvent<'_> {
    /// A copy that owns its data.
    pub fn into_owned(self) -> AccessEvent<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        AccessEvent {
            format: self.format,
            event_id: own(self.event_id),
            time_ms: self.time_ms,
            agent_id: own(self.agent_id),
            agent_kind: self.agent_kind.map(own),
            action: own(self.action),
            resource: own(self.resource),
            outcome: self.outcome,
            session_id: self.session_id.map(own),
            source_ip: self.source_ip.map(own),
            bytes: self.bytes,
            grant: self.grant.map(own),
            intent: self.intent.map(own),
            attributes: self.attributes.map(|a| Cow::Owned(a.into_owned())),
            tool: self.tool.map(|t| Box::new(t.into_owned())),
        }
    }
}

/// Why a record was rejected. The code is a bounded label (safe for metrics).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The bytes are not valid UTF-8.
    #[error("invalid UTF-8 at byte {offset}")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The bytes are not a JSON document (or are truncated).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON nested deeper than the decoder accepts.
    #[error("JSON nested too deeply: {0}")]
    TooDeep(String),
    /// A record larger than the limit.
    #[error("record of {size} bytes exceeds the limit of {limit} bytes")]
    Oversize {
        /// Size of the record.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// No known format matches the record.
    #[error("unrecognised format: {0}")]
    UnknownFormat(String),
    /// A required field is absent.
    #[error("missing required field `{field}` ({format})")]
    MissingField {
        /// Format the record was detected as.
        format: &'static str,
        /// Field path.
        field: &'static str,
    },
    /// A field has the wrong type or an invalid value.
    #[error("invalid field `{field}` ({format}): {detail}")]
    InvalidField {
        /// Format the record was detected as.
        format: &'static str,
        /// Field path.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The event time lies outside 1970..2100.
    #[error("time {detail} is outside the accepted range 1970-01-01 .. 2100-01-01")]
    TimeOutOfRange {
        /// The time as given.
        detail: String,
    },
    /// Bytes left over after a complete JSON document.
    #[error("trailing data after JSON document: {0}")]
    TrailingData(String),
}

impl RejectReason {
    /// A bounded, stable code for the reason (for metrics and the `reason_code` field).
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::InvalidUtf8 { .. } => "invalid_utf8",
            RejectReason::NotJson(_) => "not_json",
            RejectReason::TooDeep(_) => "too_deep",
            RejectReason::Oversize { .. } => "oversize",
            RejectReason::UnknownFormat(_) => "unknown_format",
            RejectReason::MissingField { .. } => "missing_field",
            RejectReason::InvalidField { .. } => "invalid_field",
            RejectReason::TimeOutOfRange { .. } => "time_out_of_range",
            RejectReason::TrailingData(_) => "trailing_data",
        }
    }

    /// The format the record was attributed to, when the reason says (`native`, `ocsf`,
    /// `cloudtrail`, `k8s_audit`).
    pub fn format(&self) -> Option<&'static str> {
        match self {
            RejectReason::MissingField { format, .. }
            | RejectReason::InvalidField { format, .. } => {
                Format::ALL.iter().map(|f| f.as_str()).find(|f| f == format)
            }
            _ => None,
        }
    }
}

/// A record that could not be decoded: the reason and the record's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected<'a> {
    /// Why.
    pub reason: RejectReason,
    /// The record's bytes as received (the driver keeps at most 64 KiB of them).
    pub raw: &'a [u8],
    /// Byte offset of the record within the message it came from.
    pub offset: usize,
}

/// One record's result.
pub type Decoded<'a> = Result<AccessEvent<'a>, Rejected<'a>>;
