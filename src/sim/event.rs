//! The simulator's compact in-memory event, before it is written as a native JSON line.

use crate::event::Outcome;

/// Free-form attributes, rendered as a small JSON object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attr {
    /// `{"tool": <derived from the action>, "step": <position in the session>}` (AI agents).
    Tool,
    /// `{"job": ...}` (scheduled pipelines).
    Job(&'static str),
    /// `{"component": ...}` (infrastructure workloads).
    Component(&'static str),
}

/// One generated access event.
#[derive(Clone, Debug)]
pub(crate) struct SimEvent {
    /// Event time, epoch milliseconds.
    pub time_ms: i64,
    /// Index of the agent in the fleet.
    pub agent: u32,
    /// Tie-breaker, unique per agent: generation day and counter, or attack and counter.
    pub seq: u64,
    /// The action.
    pub action: &'static str,
    /// The resource.
    pub resource: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Session id (rendered as `s-<16 hex>`).
    pub session: u64,
    /// Source address, IPv4 packed big-endian.
    pub ip: u32,
    /// Data volume.
    pub bytes: u64,
    /// Index into the agent's grants, when the event carries one.
    pub grant: Option<u8>,
    /// The session's stated purpose.
    pub intent: Option<&'static str>,
    /// Attributes.
    pub attr: Attr,
    /// Position of the event in its session (1-based).
    pub step: u16,
    /// Index of the attack this event belongs to (ground truth, never written into the event).
    pub attack: Option<u16>,
}

impl SimEvent {
    /// The total order of the output: time, then agent, then generation order.
    pub(crate) fn key(&self) -> (i64, u32, u64) {
        (self.time_ms, self.agent, self.seq)
    }
}
