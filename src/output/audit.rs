//! The audit record: why cinch did, or did not do, something.

use serde::Serialize;
use serde_json::Value;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    /// A command was decided but not issued (learning period, cool-down, circuit breaker).
    CommandWithheld,
    /// The circuit breaker opened: commands stop, findings go on.
    BreakerOpened,
    /// The circuit breaker closed.
    BreakerClosed,
    /// Feedback created a suppression.
    SuppressionCreated,
    /// A suppression hid a finding.
    SuppressionApplied,
    /// A suppression lapsed.
    SuppressionExpired,
    /// Feedback named a finding the engine does not know.
    FeedbackRejected,
    /// Feedback confirmed a finding (true positive): recorded, nothing suppressed.
    FeedbackConfirmed,
    /// A finding held back until the agent's peers could follow was not emitted: they took up
    /// the same new actions (a roll-out).
    RolloutAbsorbed,
}

/// An audit record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Audit {
    /// Always `audit`.
    pub kind: &'static str,
    /// Stable id.
    pub audit_id: String,
    /// What happened.
    pub event: AuditEvent,
    /// Event time (RFC 3339) at which it happened.
    pub time: String,
    /// The agent concerned, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// One sentence.
    pub message: String,
    /// Details (ids, counts, thresholds).
    pub details: Value,
}

impl Audit {
    /// An audit record whose id derives from its event, time, agent and details.
    pub fn new(
        event: AuditEvent,
        time_ms: i64,
        agent_id: Option<&str>,
        message: String,
        details: Value,
    ) -> Audit {
        let key = format!(
            "{event:?}\u{1f}{time_ms}\u{1f}{}\u{1f}{details}",
            agent_id.unwrap_or("")
        );
        let h = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
        Audit {
            kind: "audit",
            audit_id: format!("aud-{h:016x}"),
            event,
            time: crate::output::time::rfc3339_ms(time_ms),
            agent_id: agent_id.map(str::to_string),
            message,
            details,
        }
    }
}
