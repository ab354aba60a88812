//! The per-event score line of `--scores-out`.

use serde::Serialize;

use crate::detect::Reason;

/// `{"event_id", "agent_id", "score", "reasons"}` for every valid event.
#[derive(Debug, Serialize)]
pub struct ScoreLine<'a> {
    /// The event.
    pub event_id: &'a str,
    /// Its agent.
    pub agent_id: &'a str,
    /// Event time (RFC 3339), so a score file can be evaluated on its own.
    pub time: compact_str::CompactString,
    /// Fused score, 0..1.
    pub score: f32,
    /// Reasons at or above the floor.
    pub reasons: &'a [Reason],
}
