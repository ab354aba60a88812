//! Containment commands: policy (severity, corroboration, learning period, per-agent cool-down)
//! and the fleet-wide circuit breaker. Every decision not to issue a command that policy wanted
//! says why in the audit stream.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::aggregate::FindingBuilder;
use super::settings::{BreakerSettings, CommandSettings};
use crate::grants::{AgentGrants, GrantSpec};
use crate::output::OutputRecord;
use crate::output::audit::{Audit, AuditEvent};
use crate::output::command::{Action, Command, Rollback};
use crate::output::sign::Signer;
use crate::output::time::rfc3339_ms;
use crate::vocab::Severity;

/// Why a wanted command was not issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Withheld {
    /// The agent is still in its learning period.
    Learning,
    /// A command for another finding of the agent is within the cool-down.
    Cooldown,
    /// The circuit breaker is open.
    Breaker,
}

impl Withheld {
    fn bit(self) -> u8 {
        match self {
            Withheld::Learning => 1,
            Withheld::Cooldown => 2,
            Withheld::Breaker => 4,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Withheld::Learning => "learning_period",
            Withheld::Cooldown => "cooldown",
            Withheld::Breaker => "circuit_breaker_open",
        }
    }
}

/// The fleet-wide circuit breaker, in event time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Breaker {
    /// Decisions to command in the window: (event time, agent key).
    trips: VecDeque<(i64, u64)>,
    /// When open, the event time at which it closes.
    open_until: Option<i64>,
    /// Times it opened.
    pub opened: u64,
}

impl Breaker {
    /// Whether it is open.
    pub fn is_open(&self) -> bool {
        self.open_until.is_some()
    }

    /// Closes it when its cool-down has passed at event time `t`.
    pub fn tick(&mut self, t: i64, out: &mut Vec<OutputRecord>) {
        if let Some(until) = self.open_until
            && t >= until
        {
            self.open_until = None;
            out.push(OutputRecord::Audit(Audit::new(
                AuditEvent::BreakerClosed,
                until,
                None,
                "circuit breaker closed: commands resume".into(),
                json!({"opened_count": self.opened}),
            )));
        }
    }

    /// Records a decision to command `agent` at `t`; opens (or keeps open) the breaker when too
    /// many agents trip at once. `active` counts the agents active in the window.
    pub fn trip(
        &mut self,
        s: &BreakerSettings,
        t: i64,
        agent: u64,
        active: impl FnOnce(i64) -> usize,
        out: &mut Vec<OutputRecord>,
    ) {
        let window = s.window_secs as i64 * 1000;
        while self.trips.front().is_some_and(|(at, _)| *at < t - window) {
            self.trips.pop_front();
        }
        self.trips.push_back((t, agent));
        let mut agents: Vec<u64> = self.trips.iter().map(|(_, a)| *a).collect();
        agents.sort_unstable();
        agents.dedup();
        let per_minute = self
            .trips
            .iter()
            .filter(|(at, _)| *at >= t - 60_000)
            .count();
        let tripped = agents.len();
        let active = if tripped >= s.min_agents {
            active(t - window)
        } else {
            0
        };
        let share_exceeded =
            tripped >= s.min_agents && (tripped as f64) > s.max_agent_share * active.max(1) as f64;
        let rate_exceeded = per_minute > s.max_commands_per_minute;
        if !(share_exceeded || rate_exceeded) {
            return;
        }
        let until = t + s.cooldown_secs as i64 * 1000;
        if self.open_until.is_none() {
            self.opened += 1;
            let why = if share_exceeded {
                format!(
                    "{tripped} agents tripped within {} s, more than {:.1}% of the {active} active agents",
                    s.window_secs,
                    s.max_agent_share * 100.0
                )
            } else {
                format!(
                    "{per_minute} commands within a minute, more than {}",
                    s.max_commands_per_minute
                )
            };
            out.push(OutputRecord::Audit(Audit::new(
                AuditEvent::BreakerOpened,
                t,
                None,
                format!("circuit breaker opened: {why}; commands stop, findings go on"),
                json!({
                    "tripped_agents": tripped,
                    "active_agents": active,
                    "commands_last_minute": per_minute,
                    "window_secs": s.window_secs,
                    "max_agent_share": s.max_agent_share,
                    "max_commands_per_minute": s.max_commands_per_minute,
                    "closes_at": rfc3339_ms(until),
                }),
            )));
        }
        self.open_until = Some(until);
    }
}

/// What the responder needs to know about the agent and its grants.
pub struct AgentFacts<'a> {
    /// The agent's key (for the breaker).
    pub key: u64,
    /// Whether its learning period is over.
    pub mature: bool,
    /// The agent's grants, when its entitlements are known.
    pub grants: Option<&'a AgentGrants>,
}

/// Command decisions for every agent of an engine.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Responder {
    /// Per agent: event time of its last command.
    last_command: FxHashMap<Box<str>, i64>,
    /// The circuit breaker.
    pub breaker: Breaker,
    /// Commands issued.
    pub issued: u64,
    /// Commands withheld.
    pub withheld: u64,
}

impl Responder {
    /// Considers the open finding `f` after an event at `t` joined it: issues the commands
    /// policy calls for, or says in the audit stream why not.
    #[allow(clippy::too_many_arguments)]
    pub fn consider(
        &mut self,
        cs: &CommandSettings,
        bs: &BreakerSettings,
        severity: Severity,
        f: &mut FindingBuilder,
        facts: &AgentFacts<'_>,
        trigger: (&str, i64),
        active: impl FnOnce(i64) -> usize,
        signer: &Signer,
        out: &mut Vec<OutputRecord>,
    ) {
        let (event_id, t) = trigger;
        if !cs.enabled || severity < cs.min_severity {
            return;
        }
        let evidence = f.evidence(cs.evidence_score);
        let corroborated = evidence >= usize::from(cs.min_evidence)
            || (evidence >= 1 && f.event_count() >= cs.sustained_events);
        if !corroborated {
            return;
        }
        let fresh: Vec<String> = f.fresh_grants().to_vec();
        let mut wanted: Vec<(Action, String, Option<&GrantSpec>)> = fresh
            .iter()
            .map(|g| {
                let spec = facts.grants.and_then(|a| a.get(g));
                (Action::RevokeGrant, g.clone(), spec)
            })
            .collect();
        if wanted.is_empty() {
            wanted.push(match (severity, f.first_session()) {
                (Severity::Critical, _) | (_, None) => {
                    (Action::SuspendAgent, f.agent_id().to_string(), None)
                }
                (_, Some(s)) => (Action::RevokeSession, s.to_string(), None),
            });
        }
        wanted.retain(|(a, target, _)| !f.commanded(*a, target));
        if wanted.is_empty() || (fresh.is_empty() && f.has_commands()) {
            return;
        }
        let agent = f.agent_id().to_string();
        let mut withheld = None;
        if !facts.mature {
            withheld = Some(Withheld::Learning);
        } else if !f.has_commands()
            && self
                .last_command
                .get(agent.as_str())
                .is_some_and(|last| t < last + cs.cooldown_secs as i64 * 1000)
        {
            withheld = Some(Withheld::Cooldown);
        } else {
            if !f.tripped() {
                f.set_tripped();
                self.breaker.trip(bs, t, facts.key, active, out);
            }
            if self.breaker.is_open() {
                withheld = Some(Withheld::Breaker);
            }
        }
        for (action, target, spec) in wanted {
            let mut cmd = build(cs, severity, f, action, &target, spec, (event_id, t));
            match withheld {
                Some(w) => {
                    if f.note_withheld(w.bit()) {
                        self.withheld += 1;
                        out.push(OutputRecord::Audit(Audit::new(
                            AuditEvent::CommandWithheld,
                            t,
                            Some(&agent),
                            format!(
                                "{} of {target} not issued for finding {}: {}",
                                action.as_str(),
                                f.finding_id(),
                                w.as_str().replace('_', " ")
                            ),
                            json!({
                                "reason": w.as_str(),
                                "command_id": cmd.command_id,
                                "action": action.as_str(),
                                "target": target,
                                "finding_id": f.finding_id(),
                                "severity": severity.as_str(),
                            }),
                        )));
                    }
                }
                None => {
                    if let Err(e) = cmd.sign(signer) {
                        // Not issued unsigned: recorded, like a command withheld.
                        self.withheld += 1;
                        out.push(OutputRecord::Audit(Audit::new(
                            AuditEvent::CommandWithheld,
                            t,
                            Some(&agent),
                            format!(
                                "{} of {target} not issued for finding {}: it cannot be encoded for signing ({e})",
                                action.as_str(),
                                f.finding_id(),
                            ),
                            json!({
                                "reason": "unsignable",
                                "command_id": cmd.command_id,
                                "action": action.as_str(),
                                "target": target,
                                "finding_id": f.finding_id(),
                                "error": e.to_string(),
                            }),
                        )));
                        continue;
                    }
                    f.set_commanded(action, &target);
                    self.issued += 1;
                    self.last_command.insert(agent.as_str().into(), t);
                    out.push(OutputRecord::Command(cmd));
                }
            }
        }
    }
}

fn build(
    cs: &CommandSettings,
    severity: Severity,
    f: &FindingBuilder,
    action: Action,
    target: &str,
    spec: Option<&GrantSpec>,
    (event_id, t): (&str, i64),
) -> Command {
    let h = xxhash_rust::xxh3::xxh3_64(
        format!(
            "{}\u{1f}{}\u{1f}{target}\u{1f}{}",
            f.agent_id(),
            action.as_str(),
            f.finding_id()
        )
        .as_bytes(),
    );
    let secs = match action {
        Action::RevokeGrant => cs.revoke_grant_secs,
        Action::RevokeSession => cs.revoke_session_secs,
        Action::SuspendAgent => cs.suspend_agent_secs,
    };
    let detectors = f.detector_names().join(", ");
    let reason = match action {
        Action::RevokeGrant => format!(
            "finding {} ({}; {detectors}) used grant {target}, which the agent's normal behaviour never used",
            f.finding_id(),
            severity.as_str()
        ),
        Action::RevokeSession => format!(
            "finding {} ({}; {detectors}) in session {target}",
            f.finding_id(),
            severity.as_str()
        ),
        Action::SuspendAgent => format!(
            "finding {} ({}; {detectors})",
            f.finding_id(),
            severity.as_str()
        ),
    };
    Command {
        kind: "command",
        command_id: format!("cmd-{h:016x}"),
        agent_id: f.agent_id().to_string(),
        action,
        target: target.to_string(),
        severity,
        reason,
        finding_ids: vec![f.finding_id().to_string()],
        trigger_event_id: event_id.to_string(),
        issued_at: rfc3339_ms(t),
        expires_at: rfc3339_ms(t + secs as i64 * 1000),
        requires_approval: severity < cs.approval_below,
        dry_run: cs.dry_run,
        rollback: Rollback {
            action: match action {
                Action::RevokeGrant => "restore_grant",
                Action::RevokeSession => "none",
                Action::SuspendAgent => "resume_agent",
            },
            grant: spec.cloned(),
        },
        signature: None,
    }
}
