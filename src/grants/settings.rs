//! Settings of entitlements, grant usage and least-privilege recommendations.

use serde::{Deserialize, Serialize};

use crate::vocab::{MAX_COUNT, MAX_DURATION_SECS, check_at_most};

/// Entitlements, grant usage and least-privilege recommendations.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrantsSettings {
    /// Entitlements file (JSON or YAML, CONTRACT.md section 2), reloaded when it changes; empty:
    /// none (`--entitlements` overrides it).
    pub entitlements_path: String,
    /// Compacted topic of entitlements keyed by agent id (`cinch run`); empty: none. A record's
    /// value is the agent's grants, `{"grant-id": {"actions": [...], "resources": [...]}}`; a
    /// tombstone makes them unknown again.
    pub entitlements_topic: String,
    /// Seconds between checks of the entitlements file for changes.
    pub reload_secs: u64,
    /// Lookback window: a grant unused for this many days is proposed for removal.
    pub lookback_days: u32,
    /// No recommendation before an agent has this many days of observed history...
    pub min_history_days: f64,
    /// ...and this many observed events.
    pub min_events: u64,
    /// Recommendations are reviewed every this many seconds of event time (and at the end of
    /// a replay).
    pub recommend_interval_secs: u64,
    /// A narrowing proposes at most this many resource patterns (else the resources are left
    /// as they are).
    pub max_proposed_resources: usize,
    /// A grant is narrowed only when its use has not spread for this many days: no action and
    /// no resource container (bucket, database, repository, mail domain) first used within
    /// them.
    pub narrow_stable_days: f64,
}

impl Default for GrantsSettings {
    fn default() -> Self {
        GrantsSettings {
            entitlements_path: String::new(),
            entitlements_topic: String::new(),
            reload_secs: 10,
            lookback_days: 30,
            min_history_days: 7.0,
            min_events: 100,
            recommend_interval_secs: 86_400,
            max_proposed_resources: 10,
            narrow_stable_days: 7.0,
        }
    }
}

impl GrantsSettings {
    /// Appends every problem with these settings to `errs`.
    pub fn validate(&self, errs: &mut Vec<String>) {
        if self.lookback_days == 0 {
            errs.push("grants.lookback_days must be at least 1".into());
        }
        if !(self.min_history_days >= 0.0 && self.min_history_days <= 3650.0) {
            errs.push(format!(
                "grants.min_history_days must be within 0..3650 (got {})",
                self.min_history_days
            ));
        }
        if self.recommend_interval_secs < 60 {
            errs.push(format!(
                "grants.recommend_interval_secs must be at least 60 (got {})",
                self.recommend_interval_secs
            ));
        }
        if !(self.narrow_stable_days >= 0.0 && self.narrow_stable_days <= 3650.0) {
            errs.push(format!(
                "grants.narrow_stable_days must be within 0..3650 (got {})",
                self.narrow_stable_days
            ));
        }
        if self.max_proposed_resources == 0 {
            errs.push("grants.max_proposed_resources must be at least 1".into());
        }
        if self.reload_secs == 0 {
            errs.push("grants.reload_secs must be at least 1".into());
        }
        check_at_most(
            errs,
            "grants.reload_secs",
            self.reload_secs,
            MAX_DURATION_SECS,
        );
        check_at_most(
            errs,
            "grants.recommend_interval_secs",
            self.recommend_interval_secs,
            MAX_DURATION_SECS,
        );
        check_at_most(
            errs,
            "grants.lookback_days",
            self.lookback_days.into(),
            3650,
        );
        check_at_most(errs, "grants.min_events", self.min_events, MAX_COUNT);
    }
}
