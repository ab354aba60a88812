//! The finding record, with its OCSF Detection Finding (class 2004) rendering.

use serde::Serialize;
use serde_json::{Value, json};

use crate::detect::Reason;
use crate::vocab::Severity;

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

/// Name of the analytic that fuses the detectors.
const ANALYTIC: &str = "cinch behavioural baseline";

impl Finding {
    /// Fills the `ocsf` member.
    pub fn with_ocsf(mut self) -> Self {
        self.ocsf = Some(self.to_ocsf());
        self
    }

    /// The OCSF rendering: the `ocsf` member when filled, else computed.
    pub fn ocsf_value(&self) -> std::borrow::Cow<'_, Value> {
        match &self.ocsf {
            Some(v) => std::borrow::Cow::Borrowed(v),
            None => std::borrow::Cow::Owned(self.to_ocsf()),
        }
    }

    /// The finding as an OCSF 1.8.0 Detection Finding (class_uid 2004, activity Create, no
    /// profiles), valid under `configs/schemas/ocsf-1.8.0-detection_finding.schema.json`.
    ///
    /// - `finding_info`: id, title, the reasons' sentences as `desc`, the detectors as `types`
    ///   and `related_analytics`, first and last event times, the events as `related_events`.
    /// - `anomaly_analyses`: one per reason, targeting the agent, with the detector's
    ///   observation parameter, its pattern (`FREQUENT`, `RARE` or `UNSEEN`, see
    ///   [`crate::vocab::DetectorId::observed_pattern`]) and the reason's sentence as the
    ///   observation.
    /// - `evidences`: the agent as actor (one per session, with the session), each action as
    ///   an API operation, each source as source endpoint, and the events' counts as data.
    /// - `resources`: the resources, as targets; `observables`: agent, addresses, resources.
    /// - `unmapped`: the fused score and each detector's score, as in the native record.
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
        let message = self
            .reasons
            .first()
            .map_or_else(|| title.clone(), |r| r.explanation.clone());
        let user = json!({
            "uid": self.agent_id,
            "name": self.agent_id,
            "type_id": 99,
            "type": self.agent_kind.as_deref().unwrap_or("Agent"),
        });

        let mut observables = vec![json!({
            "name": "evidences[0].actor.user.uid",
            "type_id": 31,
            "type": "User Object: uid",
            "value": self.agent_id,
        })];
        let mut evidences = Vec::new();
        if self.sessions.is_empty() {
            evidences.push(json!({"name": "actor", "actor": {"user": user}}));
        }
        for s in &self.sessions {
            evidences.push(json!({
                "name": "actor",
                "actor": {"user": user, "session": {"uid": s}},
            }));
        }
        for a in &self.actions {
            evidences.push(json!({"name": "action", "api": {"operation": a}}));
        }
        for ip in self.source_ips.iter().filter(|s| !s.is_empty()) {
            let at = format!("evidences[{}].src_endpoint", evidences.len());
            if is_ip(ip) {
                observables.push(json!({
                    "name": format!("{at}.ip"),
                    "type_id": 2,
                    "type": "IP Address",
                    "value": ip,
                }));
                evidences.push(json!({"name": "source", "src_endpoint": {"ip": ip}}));
            } else {
                evidences.push(json!({"name": "source", "src_endpoint": {"name": ip}}));
            }
        }
        evidences.push(json!({
            "name": "events",
            "data": {
                "event_count": self.event_count,
                "denied_events": self.denied_events,
                "bytes": self.bytes,
                "resource_patterns": self.resource_patterns,
                "grants": self.grants,
                "intents": self.intents,
            },
        }));

        let mut resources = Vec::new();
        for r in self.resources.iter().filter(|r| !r.is_empty()) {
            observables.push(json!({
                "name": format!("resources[{}].uid", resources.len()),
                "type_id": 10,
                "type": "Resource UID",
                "value": r,
            }));
            resources.push(json!({"uid": r, "name": r, "role_id": 1, "role": "Target"}));
        }

        let analyses = self
            .reasons
            .iter()
            .map(|r| self.anomaly_analysis(r))
            .collect::<Vec<_>>();
        let related_analytics = self
            .reasons
            .iter()
            .map(|r| {
                json!({
                    "uid": format!("cinch-{}", r.detector.as_str()),
                    "name": r.detector.as_str(),
                    "type_id": 2,
                    "type": "Behavioral",
                })
            })
            .collect::<Vec<_>>();
        let detector_scores = self
            .reasons
            .iter()
            .map(|r| (r.detector.as_str().to_string(), json!(r.score)))
            .collect::<serde_json::Map<_, _>>();
        let related_events = self
            .event_ids
            .iter()
            .map(|id| json!({"uid": id}))
            .collect::<Vec<_>>();

        let mut ocsf = json!({
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
            "is_alert": true,
            "time": self.first_ms,
            "start_time": self.first_ms,
            "end_time": self.last_ms,
            "duration": self.last_ms - self.first_ms,
            "count": self.event_count,
            "message": message,
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
                "analytic": {"type_id": 2, "type": "Behavioral", "name": ANALYTIC, "uid": "cinch-fusion"},
                "related_analytics": related_analytics,
                "related_events": related_events,
                "related_events_count": self.event_count,
            },
            "anomaly_analyses": analyses,
            "evidences": evidences,
            "resources": resources,
            "observables": observables,
            "unmapped": self.unmapped(detector_scores),
        });
        // Members in name order at every depth, whichever map serde_json was built with.
        ocsf.sort_all_objects();
        ocsf
    }

    /// The `unmapped` member: the fused score, each detector's score and, for an AI agent, the
    /// agent as OCSF 1.9's `ai_agent` object names it (OCSF 1.8, in use here, has no such
    /// object in `evidences`).
    fn unmapped(&self, detector_scores: serde_json::Map<String, Value>) -> Value {
        let mut v = json!({"score": self.score, "detector_scores": detector_scores});
        if self.agent_kind.as_deref() == Some("ai_agent") {
            v["ai_agent"] = json!({
                "uid": self.agent_id,
                "name": self.agent_id,
                "type": "AI Agent",
            });
        }
        v
    }

    /// One reason as an OCSF anomaly analysis of the agent: the detector's observation
    /// parameter and pattern, observed as the reason's sentence (which names the observed value
    /// and its baseline) over the finding's time span.
    fn anomaly_analysis(&self, r: &Reason) -> Value {
        json!({
            "analysis_targets": [{"name": self.agent_id, "type": "Agent"}],
            "anomalies": [{
                "observation_parameter": r.detector.observation_parameter(),
                "observation_type": "Frequency Analysis",
                "observed_pattern": r.detector.observed_pattern().as_str(),
                "observations": [{
                    "value": r.explanation,
                    "timespan": {"start_time": self.first_ms, "end_time": self.last_ms},
                }],
            }],
        })
    }
}

/// Whether `s` is an IPv4 or IPv6 address as OCSF writes them.
fn is_ip(s: &str) -> bool {
    s.len() <= 40 && s.parse::<std::net::IpAddr>().is_ok()
}
