//! The finding record, with its OCSF Detection Finding (class 2004) rendering.

use serde::Serialize;
use serde_json::{Value, json};

use crate::decide::finding::Severity;
use crate::detect::Reason;

/// OCSF schema version the `ocsf` member follows.
pub const OCSF_VERSION: &str = "1.8.0";

/// An anomalous event or burst of one agent.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Always `finding`.
    pub kind: &'static str,
    /// Stable id: the same input gives the same id.
    pub finding_id: String,
    /// The agent.
    pub agent_id: String,
    /// The agent's kind, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_kind: Option<String>,
    /// Time of the first anomalous event (RFC 3339).
    pub time: String,
    /// Same as `time`.
    pub first_seen: String,
    /// Time of the last anomalous event.
    pub last_seen: String,
    /// Highest event score, 0..1.
    pub score: f32,
    /// Severity.
    pub severity: Severity,
    /// Number of anomalous events (exact).
    pub event_count: u64,
    /// Their ids (up to `decide.max_events_per_finding`).
    pub event_ids: Vec<String>,
    /// The strongest reason of each detector involved, highest first.
    pub reasons: Vec<Reason>,
    /// Actions involved.
    pub actions: Vec<String>,
    /// Resources involved (first 25 distinct).
    pub resources: Vec<String>,
    /// Their generalised patterns.
    pub resource_patterns: Vec<String>,
    /// Sessions involved.
    pub sessions: Vec<String>,
    /// Source addresses involved.
    pub source_ips: Vec<String>,
    /// Grants that authorised the events, when given.
    pub grants: Vec<String>,
    /// Stated intents of the sessions.
    pub intents: Vec<String>,
    /// Events denied or failed.
    pub denied_events: u64,
    /// Bytes moved by the events.
    pub bytes: u64,
    /// First event time, epoch ms.
    #[serde(skip)]
    pub first_ms: i64,
    /// Last event time, epoch ms.
    #[serde(skip)]
    pub last_ms: i64,
    /// The same finding as an OCSF Detection Finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocsf: Option<Value>,
}

impl Finding {
    /// Fills the `ocsf` member.
    pub fn with_ocsf(mut self) -> Self {
        self.ocsf = Some(self.to_ocsf());
        self
    }

    /// The finding as an OCSF Detection Finding (class_uid 2004).
    pub fn to_ocsf(&self) -> Value {
        let (severity_id, severity) = match self.severity {
            Severity::Low => (2, "Low"),
            Severity::Medium => (3, "Medium"),
            Severity::High => (4, "High"),
            Severity::Critical => (5, "Critical"),
        };
        let title = match self.reasons.first() {
            Some(r) => format!(
                "Anomalous behaviour of {}: {}",
                self.agent_id,
                r.detector.as_str()
            ),
            None => format!("Anomalous behaviour of {}", self.agent_id),
        };
        let desc = self
            .reasons
            .iter()
            .map(|r| r.explanation.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        json!({
            "class_uid": 2004,
            "class_name": "Detection Finding",
            "category_uid": 2,
            "category_name": "Findings",
            "activity_id": 1,
            "activity_name": "Create",
            "type_uid": 200401,
            "type_name": "Detection Finding: Create",
            "severity_id": severity_id,
            "severity": severity,
            "status_id": 1,
            "status": "New",
            "time": self.first_ms,
            "risk_score": (self.score * 100.0).round() as i64,
            "metadata": {
                "version": OCSF_VERSION,
                "product": {"name": "cinch", "vendor_name": "cinch", "version": env!("CARGO_PKG_VERSION")},
                "uid": self.finding_id,
            },
            "finding_info": {
                "uid": self.finding_id,
                "title": title,
                "desc": desc,
                "first_seen_time": self.first_ms,
                "last_seen_time": self.last_ms,
                "types": self.reasons.iter().map(|r| r.detector.as_str()).collect::<Vec<_>>(),
                "analytic": {"type_id": 5, "type": "Behavioral", "name": "cinch behavioural baseline", "uid": "cinch-fusion"},
            },
            "actor": {"user": {"uid": self.agent_id, "name": self.agent_id, "type_id": 99, "type": self.agent_kind.as_deref().unwrap_or("non_human")}},
            "evidences": [{"data": {"event_ids": self.event_ids, "actions": self.actions, "source_ips": self.source_ips}}],
            "resources": self.resources.iter().map(|r| json!({"uid": r, "name": r})).collect::<Vec<_>>(),
        })
    }
}
