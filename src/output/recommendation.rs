//! The recommendation record: a least-privilege change to one of an agent's grants.

use serde::Serialize;

use crate::grants::GrantSpec;

/// What the recommendation changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Remove the grant: it was not used.
    Remove,
    /// Narrow the grant to what was used.
    Narrow,
}

/// How soon to act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Routine tidying.
    Normal,
    /// An anomalous finding used the excess.
    High,
}

/// What the recommendation rests on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    /// The lookback window, in days.
    pub lookback_days: u32,
    /// Days of the agent's history observed, up to the lookback window.
    pub observed_days: f64,
    /// Events of the agent observed over that history.
    pub events_observed: u64,
    /// Normal uses of the grant in the lookback window.
    pub uses: u64,
    /// Uses by anomalous events (they never justify a grant).
    pub anomalous_uses: u64,
    /// Last normal use (RFC 3339), if any.
    pub last_use: Option<String>,
    /// Actions used under the grant.
    pub observed_actions: Vec<String>,
    /// Generalised resource patterns used under the grant (`*` for collapsed segments).
    pub observed_resources: Vec<String>,
    /// Stated intents of the sessions that used it.
    pub intents: Vec<String>,
    /// One sentence on how the grant was used.
    pub justification: String,
}

/// A least-privilege change (CONTRACT.md section 3).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    /// Always `recommendation`.
    pub kind: &'static str,
    /// Stable id: the same agent, grant, change and proposal give the same id.
    pub recommendation_id: String,
    /// The agent.
    pub agent_id: String,
    /// The grant id.
    pub grant: String,
    /// `remove` or `narrow`.
    pub change: Change,
    /// `normal`, or `high` when a finding used the excess.
    pub priority: Priority,
    /// Event time at which it was made (RFC 3339).
    pub time: String,
    /// The grant as it is.
    pub current: GrantSpec,
    /// The grant as proposed (empty lists for `remove`).
    pub proposed: GrantSpec,
    /// What it rests on.
    pub evidence: Evidence,
    /// One sentence: why.
    pub reason: String,
    /// Findings whose events used the excess.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub finding_ids: Vec<String>,
}
