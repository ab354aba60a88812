//! Settings of decisions: findings, commands, the circuit breaker and analyst feedback.

use serde::{Deserialize, Serialize};

use crate::vocab::{MAX_COUNT, MAX_DURATION_SECS, Severity, check_at_most, check_unit};

/// Decisions.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecideSettings {
    /// An event scoring at or above this opens or joins a finding.
    pub finding_threshold: f32,
    /// Score at which a finding is at least `medium`.
    pub medium: f32,
    /// Score at which a finding is at least `high`.
    pub high: f32,
    /// Score at which a finding is `critical` (with two or more detectors agreeing).
    pub critical: f32,
    /// A finding closes when no anomalous event of its agent arrives for this long.
    pub aggregate_gap_secs: u32,
    /// A finding closes at the latest this long after it opened.
    pub aggregate_max_secs: u32,
    /// Most event ids listed in one finding (the count is always exact).
    pub max_events_per_finding: usize,
    /// An anomalous event whose strong reasons (detector and resource pattern) were all
    /// reported for its agent within this many seconds opens no new finding (0 disables).
    pub repeat_window_secs: u32,
    /// A closed finding that only shows the agent taking up actions new to it, with no sign of
    /// harm, no outside destination and no command, is held this long (event time) before it
    /// is emitted: if by then enough of the agent's peers took up the same actions, it was
    /// the agent's part in a roll-out and goes to the audit stream instead (0: never held).
    pub rollout_hold_secs: u32,
    /// Other agents of the peer group that must have taken up each of a held finding's new
    /// actions since it opened for it to count as a roll-out.
    pub rollout_followers: u32,
}

impl Default for DecideSettings {
    fn default() -> Self {
        DecideSettings {
            finding_threshold: 0.6,
            medium: 0.7,
            high: 0.85,
            critical: 0.95,
            aggregate_gap_secs: 900,
            aggregate_max_secs: 3600,
            max_events_per_finding: 500,
            repeat_window_secs: 86_400,
            rollout_hold_secs: 21_600,
            rollout_followers: 2,
        }
    }
}

impl DecideSettings {
    /// `aggregate_gap_secs` and `aggregate_max_secs` in milliseconds of event time.
    pub fn aggregate_ms(&self) -> (i64, i64) {
        (
            self.aggregate_gap_secs as i64 * 1000,
            self.aggregate_max_secs as i64 * 1000,
        )
    }

    /// Appends every problem with these settings to `errs`.
    pub fn validate(&self, errs: &mut Vec<String>) {
        check_unit(errs, "decide.finding_threshold", self.finding_threshold);
        check_unit(errs, "decide.medium", self.medium);
        check_unit(errs, "decide.high", self.high);
        check_unit(errs, "decide.critical", self.critical);
        if !(self.medium <= self.high && self.high <= self.critical) {
            errs.push("decide.medium <= decide.high <= decide.critical must hold".into());
        }
        if self.aggregate_gap_secs == 0 || self.aggregate_gap_secs > self.aggregate_max_secs {
            errs.push(
                "decide.aggregate_gap_secs must be > 0 and <= decide.aggregate_max_secs".into(),
            );
        }
        if self.max_events_per_finding == 0 {
            errs.push("decide.max_events_per_finding must be at least 1".into());
        }
        check_at_most(
            errs,
            "decide.rollout_hold_secs",
            self.rollout_hold_secs.into(),
            7 * 86_400,
        );
        if self.rollout_followers == 0 {
            errs.push("decide.rollout_followers must be at least 1".into());
        }
    }
}

/// Containment commands: when one is issued, what it does and how long it lasts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CommandSettings {
    /// Whether commands are decided at all (findings are unaffected).
    pub enabled: bool,
    /// Commands are marked `dry_run`: SOAR tooling records them but does not act.
    pub dry_run: bool,
    /// Lowest finding severity that issues a command...
    pub min_severity: Severity,
    /// ...except for a finding in which the agent acted from a new network of an address class
    /// it never came from (the internet, for a workload that only ever called from private
    /// networks): credentials used outside the places the agent runs are taken up from this
    /// severity.
    pub outside_class_min_severity: Severity,
    /// Commands below this severity carry `requires_approval = true`.
    pub approval_below: Severity,
    /// Corroboration: at least this many independent lines of evidence (detector families
    /// scoring at least `evidence_score`: what was accessed, when it reached beyond the
    /// agent's own territory; how much, when data moved in bulk; refusals, origin, timing,
    /// order; plus use of a grant the agent never used)...
    pub min_evidence: u8,
    /// Score at which a detector's reason counts as evidence.
    pub evidence_score: f32,
    /// ...or a sustained run of at least this many anomalous events in the finding, with at
    /// least one line of evidence.
    pub sustained_events: u64,
    /// A name (authority, path segment) new to the agent reaches beyond its territory when
    /// fewer than this share of its peers use it.
    pub reach_peer_share: f32,
    /// After a command for an agent, no command for another finding of that agent for this
    /// many seconds of event time.
    pub cooldown_secs: u64,
    /// `revoke_grant` lasts this many seconds (`expires_at`).
    pub revoke_grant_secs: u64,
    /// `revoke_session` lasts this many seconds.
    pub revoke_session_secs: u64,
    /// `suspend_agent` lasts this many seconds.
    pub suspend_agent_secs: u64,
    /// `narrow` lasts this many seconds.
    pub narrow_secs: u64,
    /// `require_approval` lasts this many seconds.
    pub require_approval_secs: u64,
    /// `quarantine` lasts this many seconds.
    pub quarantine_secs: u64,
    /// Most `narrow` commands for one finding (one per new resource pattern).
    pub max_narrowed_patterns: usize,
    /// Ed25519 private key (PKCS#8 PEM, from `cinch keygen`) that signs commands; empty: an
    /// ephemeral key is generated and the run says so (`--signing-key` overrides it).
    pub signing_key: String,
}

impl Default for CommandSettings {
    fn default() -> Self {
        CommandSettings {
            enabled: true,
            dry_run: true,
            min_severity: Severity::High,
            outside_class_min_severity: Severity::Medium,
            approval_below: Severity::Critical,
            min_evidence: 2,
            evidence_score: 0.5,
            sustained_events: 5,
            reach_peer_share: 0.05,
            cooldown_secs: 3600,
            revoke_grant_secs: 7 * 86_400,
            revoke_session_secs: 3600,
            suspend_agent_secs: 86_400,
            narrow_secs: 86_400,
            require_approval_secs: 4 * 3600,
            quarantine_secs: 4 * 3600,
            max_narrowed_patterns: 3,
            signing_key: String::new(),
        }
    }
}

impl CommandSettings {
    /// Appends every problem with these settings to `errs`.
    pub fn validate(&self, errs: &mut Vec<String>) {
        for (name, v) in [
            ("commands.revoke_grant_secs", self.revoke_grant_secs),
            ("commands.revoke_session_secs", self.revoke_session_secs),
            ("commands.suspend_agent_secs", self.suspend_agent_secs),
            ("commands.narrow_secs", self.narrow_secs),
            ("commands.require_approval_secs", self.require_approval_secs),
            ("commands.quarantine_secs", self.quarantine_secs),
        ] {
            if v == 0 {
                errs.push(format!("{name} must be at least 1: every command expires"));
            }
        }
        for (name, v) in [
            ("commands.revoke_grant_secs", self.revoke_grant_secs),
            ("commands.revoke_session_secs", self.revoke_session_secs),
            ("commands.suspend_agent_secs", self.suspend_agent_secs),
            ("commands.narrow_secs", self.narrow_secs),
            ("commands.require_approval_secs", self.require_approval_secs),
            ("commands.quarantine_secs", self.quarantine_secs),
            ("commands.cooldown_secs", self.cooldown_secs),
        ] {
            check_at_most(errs, name, v, MAX_DURATION_SECS);
        }
        if self.max_narrowed_patterns > 64 {
            errs.push(format!(
                "commands.max_narrowed_patterns must be at most 64, not {}",
                self.max_narrowed_patterns
            ));
        }
        check_at_most(
            errs,
            "commands.sustained_events",
            self.sustained_events,
            MAX_COUNT,
        );
        if self.min_evidence == 0 {
            errs.push("commands.min_evidence must be at least 1".into());
        }
        check_unit(errs, "commands.evidence_score", self.evidence_score);
        check_unit(errs, "commands.reach_peer_share", self.reach_peer_share);
    }
}

/// The fleet-wide circuit breaker: when too many agents trip at once, that is a broken
/// detector or a fleet-wide release, not an attack on everyone, so commands stop (findings go
/// on) until it closes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    /// Window of event time over which tripped agents are counted, in seconds.
    pub window_secs: u64,
    /// Opens when more than this share of the agents active in the window trip...
    pub max_agent_share: f64,
    /// ...and at least this many agents trip (small fleets);
    pub min_agents: usize,
    /// or when more than this many commands would be issued within a minute.
    pub max_commands_per_minute: usize,
    /// Closes this many seconds of event time after it last tripped.
    pub cooldown_secs: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            window_secs: 600,
            max_agent_share: 0.05,
            min_agents: 3,
            max_commands_per_minute: 20,
            cooldown_secs: 1800,
        }
    }
}

impl BreakerSettings {
    /// Appends every problem with these settings to `errs`.
    pub fn validate(&self, errs: &mut Vec<String>) {
        if !(self.max_agent_share > 0.0 && self.max_agent_share <= 1.0) {
            errs.push(format!(
                "breaker.max_agent_share must be within (0, 1] (got {})",
                self.max_agent_share
            ));
        }
        if self.window_secs < 60 {
            errs.push(format!(
                "breaker.window_secs must be at least 60 (got {})",
                self.window_secs
            ));
        }
        if self.max_commands_per_minute == 0 {
            errs.push("breaker.max_commands_per_minute must be at least 1".into());
        }
        check_at_most(
            errs,
            "breaker.window_secs",
            self.window_secs,
            MAX_DURATION_SECS,
        );
        check_at_most(
            errs,
            "breaker.cooldown_secs",
            self.cooldown_secs,
            MAX_DURATION_SECS,
        );
    }
}

/// Analyst feedback: a finding marked false positive suppresses its pattern for its agent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackSettings {
    /// Feedback file (JSON lines), read at start (`--feedback` overrides it); empty: none.
    pub path: String,
    /// Topic of feedback records (`cinch run`); empty: none.
    pub topic: String,
    /// A suppression lasts this many days unless the feedback says otherwise.
    pub suppression_days: u32,
}

impl Default for FeedbackSettings {
    fn default() -> Self {
        FeedbackSettings {
            path: String::new(),
            topic: String::new(),
            suppression_days: 30,
        }
    }
}

impl FeedbackSettings {
    /// Appends every problem with these settings to `errs`.
    pub fn validate(&self, errs: &mut Vec<String>) {
        if self.suppression_days == 0 {
            errs.push("feedback.suppression_days must be at least 1".into());
        }
    }
}
