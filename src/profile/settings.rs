//! Settings of per-agent profiles.

use serde::{Deserialize, Serialize};

/// Per-agent behavioural profiles.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileSettings {
    /// Hard memory bound of one agent's profile, in bytes, whatever its traffic.
    pub max_bytes_per_agent: usize,
    /// Half-life of baseline counts, in days of event time.
    pub half_life_days: f64,
    /// An agent is in its learning period until it has this many days of history...
    pub learning_days: f64,
    /// ...and this many learned events. Until then it is judged mainly against its peers.
    pub learning_events: u32,
    /// An AI agent whose events carry tool calls counts its learning period in sessions and
    /// calls instead (its whole life may be hours): it is past it after this many sessions...
    pub learning_sessions: u32,
    /// ...and this many tool calls (both 0: such agents count days and events too).
    pub learning_calls: u32,
    /// How late (event time behind the agent's newest event) an event may arrive and still
    /// count in short activity windows. Later events are scored and counted as late.
    pub max_lateness_secs: u32,
    /// An agent without an event for this many days of event time is evicted from memory (0:
    /// never). Checked at every hour of event time; a returning agent starts a new baseline.
    /// The default is where a baseline has decayed to under 5% (over four half-lives).
    pub evict_idle_days: f64,
}

impl Default for ProfileSettings {
    fn default() -> Self {
        ProfileSettings {
            max_bytes_per_agent: 64 * 1024,
            half_life_days: 21.0,
            learning_days: 3.0,
            learning_events: 150,
            learning_sessions: 20,
            learning_calls: 100,
            max_lateness_secs: 900,
            evict_idle_days: 90.0,
        }
    }
}

impl ProfileSettings {
    /// The idle time after which an agent is evicted, in minutes; `None` for never.
    pub fn evict_idle_minutes(&self) -> Option<u32> {
        (self.evict_idle_days > 0.0).then(|| (self.evict_idle_days * 1440.0).ceil() as u32)
    }

    /// Appends every problem with these settings to `errs`.
    pub fn validate(&self, errs: &mut Vec<String>) {
        if self.max_bytes_per_agent < super::MIN_PROFILE_BYTES {
            errs.push(format!(
                "profile.max_bytes_per_agent must be at least {} (got {})",
                super::MIN_PROFILE_BYTES,
                self.max_bytes_per_agent
            ));
        }
        if !(self.half_life_days > 0.0 && self.half_life_days <= 3650.0) {
            errs.push(format!(
                "profile.half_life_days must be within (0, 3650] (got {})",
                self.half_life_days
            ));
        }
        if !(self.learning_days >= 0.0 && self.learning_days <= 365.0) {
            errs.push(format!(
                "profile.learning_days must be within 0..365 (got {})",
                self.learning_days
            ));
        }
        if !(self.evict_idle_days >= 0.0 && self.evict_idle_days <= 3650.0) {
            errs.push(format!(
                "profile.evict_idle_days must be within 0..3650, 0 for never (got {})",
                self.evict_idle_days
            ));
        }
        if self.learning_sessions > 100_000 || self.learning_calls > 10_000_000 {
            errs.push(format!(
                "profile.learning_sessions must be at most 100000 and profile.learning_calls at most 10000000 (got {} and {})",
                self.learning_sessions, self.learning_calls
            ));
        }
    }
}
