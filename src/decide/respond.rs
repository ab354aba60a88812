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
use crate::vocab::{DetectorId, Severity};

/// Why a wanted command was not issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Withheld {
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
pub(crate) struct Breaker {
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
pub(crate) struct AgentFacts<'a> {
    /// The agent's key (for the breaker).
    pub key: u64,
    /// Whether its learning period is over.
    pub mature: bool,
    /// The agent's grants, when its entitlements are known.
    pub grants: Option<&'a AgentGrants>,
}

/// Command decisions for every agent of an engine.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Responder {
    /// Per agent: event time of its last command, and the highest step on the ladder of the
    /// commands of its last finding with any.
    last_command: FxHashMap<Box<str>, (i64, u8)>,
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
        let outside = || {
            severity >= cs.outside_class_min_severity && f.outside_class_origin(cs.evidence_score)
        };
        if !cs.enabled || (severity < cs.min_severity && !outside()) {
            return;
        }
        let Some(step) = climb(cs, severity, f, facts) else {
            return;
        };
        let top = f.top_level();
        let wanted: Vec<Wanted<'_>> = step
            .wanted
            .into_iter()
            .filter(|w| {
                // A grant the harm went through is revoked whatever else was ordered.
                (w.action == Action::RevokeGrant && !f.commanded(w.action, &w.target))
                    || w.action.level() > top
                    || (w.action == Action::Narrow
                        && top == w.action.level()
                        && !f.commanded(w.action, &w.target))
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let level = wanted.iter().map(|w| w.action.level()).max().unwrap_or(0);
        let agent = f.agent_id().to_string();
        let mut withheld = None;
        if !facts.mature {
            withheld = Some(Withheld::Learning);
        } else if !f.has_commands()
            && self
                .last_command
                .get(agent.as_str())
                .is_some_and(|&(last, last_level)| {
                    t < last + cs.cooldown_secs as i64 * 1000 && level <= last_level
                })
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
        for w in wanted {
            let (action, target) = (w.action, w.target.clone());
            let mut cmd = build(cs, severity, f, &w, (event_id, t));
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
                                "severity": severity.as_str(),
                                "error": e.to_string(),
                            }),
                        )));
                        continue;
                    }
                    f.set_commanded(action, &target);
                    self.issued += 1;
                    let last = self
                        .last_command
                        .entry(agent.as_str().into())
                        .or_insert((t, 0));
                    *last = (t, last.1.max(action.level()));
                    out.push(OutputRecord::Command(cmd));
                }
            }
        }
    }
}

/// A command the ladder calls for.
struct Wanted<'g> {
    action: Action,
    target: String,
    grant: Option<&'g GrantSpec>,
    /// Why this step and not the next, and what would raise it.
    why: String,
}

/// The step of the ladder a finding has reached, and the commands it calls for.
struct Step<'g> {
    wanted: Vec<Wanted<'g>>,
}

impl Step<'_> {
    /// A step calling for one command, through no particular grant.
    fn one(action: Action, target: String, why: String) -> Self {
        Step {
            wanted: vec![Wanted {
                action,
                target,
                grant: None,
                why,
            }],
        }
    }
}

/// Climbs the response ladder for finding `f`: from least to most disruptive, each step with
/// the evidence it needs.
///
/// - Change without harm (a corroborated finding with no reach outside the agent's
///   territory, no bulk movement, no repeated refusals, no unused grant and no steering):
///   at most `narrow`, denying only the new resource patterns the finding reached. None when it
///   reached none (a new address, a new pace or hour alone change no permission).
/// - Reach to one new place beyond the agent's territory as the only sign of harm, by actions
///   the agent uses and with no line saying the session's purpose rules it out (a support bot's
///   first mail to a new outside domain): `narrow` of that place, which removes all the harm the
///   finding shows.
/// - One sign of harm, corroborated only by a sustained run: `require_approval` of the agent's
///   outward and privileged actions.
/// - Harm corroborated by `min_evidence` lines: `revoke_grant` of each grant the agent's normal
///   behaviour never used; otherwise `revoke_session` of its session, or `quarantine` (read
///   only) when the events carry none; `suspend_agent` when the finding is critical.
fn climb<'g>(
    cs: &CommandSettings,
    severity: Severity,
    f: &FindingBuilder,
    facts: &AgentFacts<'g>,
) -> Option<Step<'g>> {
    let min = cs.evidence_score;
    let evidence = f.evidence(min);
    let harm = f.harm(min);
    let sustained = f.event_count() >= cs.sustained_events;
    let corroborated =
        |lines: usize| lines >= usize::from(cs.min_evidence) || (lines >= 1 && sustained);
    let agent = f.agent_id();
    let raise_to_approval = "raised to require_approval by a sign of harm: reach outside the \
        agent's and its peers' territory, bulk data movement, repeated refusals, use of a grant \
        it never used, or steering by data it read";
    if harm.is_empty() {
        if !corroborated(evidence.max(f.change_evidence(min))) {
            return None;
        }
        let wanted = f
            .new_patterns(min)
            .take(cs.max_narrowed_patterns)
            .map(|p| Wanted {
                action: Action::Narrow,
                target: p.to_string(),
                grant: None,
                why: format!(
                    "narrow: {p} is new to the agent but the finding shows change, not harm \
                     (nothing beyond its own territory), so only {p} is denied; {raise_to_approval}"
                ),
            })
            .collect();
        return Some(Step { wanted });
    }
    let signs = harm.join(", ");
    if let (["reach"], Some(place)) = (harm.as_slice(), only(f.new_patterns(min)))
        && !f.new_action()
        && !f.has_line(DetectorId::Intent, min)
    {
        // The one sign of harm is one new place, reached by an act the agent does anyway and
        // which the session's purpose does not rule out: denying that place removes all the
        // harm shown.
        return corroborated(evidence).then(|| {
            Step::one(
                Action::Narrow,
                place.to_string(),
                format!(
                    "narrow: the one sign of harm is reach to one place beyond the agent's \
                     territory, {place}, by an action it uses and that its session's purpose \
                     does not rule out, so only {place} is denied; raised to revocation by a \
                     second new place, a new kind of action, an act outside the session's \
                     purpose or another sign of harm (bulk data movement, repeated \
                     refusals, use of a grant it never used, steering by data it read)"
                ),
            )
        });
    }
    if evidence < usize::from(cs.min_evidence) {
        return corroborated(evidence).then(|| {
            Step::one(
                Action::RequireApproval,
                agent.to_string(),
                format!(
                    "require_approval: a sign of harm ({signs}) over a sustained run of {} \
                     anomalous events, but {evidence} line of evidence where revocation needs {}; \
                     raised to revocation by another independent line of evidence",
                    f.event_count(),
                    cs.min_evidence
                ),
            )
        });
    }
    let lines = format!("{evidence} lines of evidence with harm ({signs})");
    let fresh = f.fresh_grants();
    let mut wanted: Vec<Wanted<'g>> = fresh
        .iter()
        .map(|g| Wanted {
            action: Action::RevokeGrant,
            target: g.clone(),
            grant: facts.grants.and_then(|a| a.get(g)),
            why: format!(
                "revoke_grant: {lines}, through grant {g}, which the agent's normal behaviour \
                 never used; raised to suspend_agent when the finding turns critical"
            ),
        })
        .collect();
    if !wanted.is_empty() {
        // The grants the harm went through are revoked; the rest of the agent's work goes on.
    } else if severity >= Severity::Critical {
        wanted.push(Wanted {
            action: Action::SuspendAgent,
            target: agent.to_string(),
            grant: None,
            why: format!("suspend_agent: {lines}, and the finding is critical"),
        });
    } else {
        wanted.push(match f.first_session() {
            Some(s) => Wanted {
                action: Action::RevokeSession,
                target: s.to_string(),
                grant: None,
                why: format!(
                    "revoke_session: {lines}; raised to suspend_agent when the finding turns \
                     critical"
                ),
            },
            None => Wanted {
                action: Action::Quarantine,
                target: agent.to_string(),
                grant: None,
                why: format!(
                    "quarantine: {lines}, and no session to end, so the agent may only read and \
                     list; raised to suspend_agent when the finding turns critical"
                ),
            },
        });
    }
    Some(Step { wanted })
}

/// The one item of `items`, if there is exactly one.
fn only<T>(mut items: impl Iterator<Item = T>) -> Option<T> {
    let first = items.next()?;
    items.next().is_none().then_some(first)
}

fn build(
    cs: &CommandSettings,
    severity: Severity,
    f: &FindingBuilder,
    w: &Wanted<'_>,
    (event_id, t): (&str, i64),
) -> Command {
    let (action, target) = (w.action, w.target.as_str());
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
        Action::Narrow => cs.narrow_secs,
        Action::RequireApproval => cs.require_approval_secs,
        Action::Quarantine => cs.quarantine_secs,
    };
    let detectors = f.detector_names().join(", ");
    let reason = format!(
        "finding {} ({}; {detectors}): {}",
        f.finding_id(),
        severity.as_str(),
        w.why
    );
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
        expires_at: rfc3339_ms(t.saturating_add((secs as i64).saturating_mul(1000))),
        requires_approval: severity < cs.approval_below,
        dry_run: cs.dry_run,
        rollback: Rollback {
            action: action.rollback(),
            grant: w.grant.cloned(),
        },
        signature: None,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::decide::settings::DecideSettings;
    use crate::detect::{Reason, Verdict};
    use crate::event::{AccessEvent, Format, Outcome};
    use crate::vocab::DetectorId;

    pub(crate) fn event(
        i: u64,
        resource: &str,
        session: Option<&'static str>,
    ) -> AccessEvent<'static> {
        AccessEvent {
            format: Format::Native,
            event_id: Cow::Owned(format!("e-{i}")),
            time_ms: 1_767_571_200_000 + i as i64 * 1000,
            agent_id: Cow::Borrowed("etl-1"),
            agent_kind: None,
            action: Cow::Borrowed("s3:GetObject"),
            resource: Cow::Owned(resource.to_owned()),
            outcome: Outcome::Success,
            session_id: session.map(Cow::Borrowed),
            source_ip: None,
            bytes: None,
            grant: None,
            intent: None,
            attributes: None,
            tool: None,
        }
    }

    /// A verdict with `reasons`; an event that reaches beyond the agent's territory does so
    /// with an action new to the agent (see `one_place_reached_by_a_familiar_act_is_narrowed`
    /// for a familiar one).
    pub(crate) fn verdict(reasons: &[(DetectorId, f32)], reach: bool) -> Verdict {
        Verdict {
            score: 0.9,
            reasons: reasons
                .iter()
                .map(|&(detector, score)| Reason {
                    detector,
                    score,
                    explanation: String::new(),
                })
                .collect(),
            strong: reasons.len() as u8,
            without_model: 0.9,
            reach,
            foreign: false,
            outside_class: false,
            instructed: false,
            new_action: reach,
        }
    }

    /// A finding of `n` events on `pattern`, each with `reasons`.
    fn finding(
        n: u64,
        pattern: &str,
        reasons: &[(DetectorId, f32)],
        reach: bool,
        session: Option<&'static str>,
    ) -> FindingBuilder {
        let ds = DecideSettings::default();
        let v = verdict(reasons, reach);
        let mut f = FindingBuilder::open(&ds, &event(0, pattern, session), pattern, &v, None);
        for i in 1..n {
            f.add(&ds, &event(i, pattern, session), pattern, &v, None);
        }
        f
    }

    fn steps(f: &FindingBuilder, severity: Severity) -> Vec<(Action, String)> {
        let facts = AgentFacts {
            key: 1,
            mature: true,
            grants: None,
        };
        climb(&CommandSettings::default(), severity, f, &facts)
            .map(|s| s.wanted.into_iter().map(|w| (w.action, w.target)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn change_without_harm_narrows_only_the_new_pattern() {
        // New to the agent and sustained, but inside its territory: narrow, nothing more.
        let f = finding(
            6,
            "s3://raw/new/{id}.parquet",
            &[(DetectorId::Novelty, 0.9), (DetectorId::Source, 0.8)],
            false,
            Some("s-1"),
        );
        assert_eq!(
            steps(&f, Severity::Critical),
            vec![(Action::Narrow, "s3://raw/new/{id}.parquet".to_owned())]
        );
        // A new address and hour on familiar places change no permission: no command.
        let f = finding(
            6,
            "s3://raw/{id}.parquet",
            &[(DetectorId::Source, 0.9), (DetectorId::TimeOfDay, 0.8)],
            false,
            Some("s-1"),
        );
        assert!(steps(&f, Severity::Critical).is_empty());
    }

    #[test]
    fn harm_climbs_from_approval_to_revocation_to_suspension() {
        let reach = [(DetectorId::Novelty, 0.9)];
        // One sign of harm over a sustained run: approval of outward actions.
        let f = finding(6, "s3://hr/{id}", &reach, true, Some("s-1"));
        assert_eq!(
            steps(&f, Severity::High),
            vec![(Action::RequireApproval, "etl-1".to_owned())]
        );
        // Too short a run for one line of evidence: nothing.
        let f = finding(2, "s3://hr/{id}", &reach, true, Some("s-1"));
        assert!(steps(&f, Severity::High).is_empty());
        // Harm corroborated by a second line: the session is revoked...
        let two = [(DetectorId::Novelty, 0.9), (DetectorId::Source, 0.8)];
        let f = finding(2, "s3://hr/{id}", &two, true, Some("s-1"));
        assert_eq!(
            steps(&f, Severity::High),
            vec![(Action::RevokeSession, "s-1".to_owned())]
        );
        // ...or, without a session, the agent is quarantined...
        let f = finding(2, "s3://hr/{id}", &two, true, None);
        assert_eq!(
            steps(&f, Severity::High),
            vec![(Action::Quarantine, "etl-1".to_owned())]
        );
        // ...and a critical finding suspends it.
        assert_eq!(
            steps(&f, Severity::Critical),
            vec![(Action::SuspendAgent, "etl-1".to_owned())]
        );
    }

    #[test]
    fn one_place_reached_by_a_familiar_act_is_narrowed() {
        let two = [(DetectorId::Novelty, 0.9), (DetectorId::Source, 0.8)];
        let familiar = |reasons: &[(DetectorId, f32)], patterns: &[&str]| {
            let ds = DecideSettings::default();
            let mut v = verdict(reasons, true);
            v.new_action = false;
            let mut f =
                FindingBuilder::open(&ds, &event(0, patterns[0], None), patterns[0], &v, None);
            for (i, p) in patterns.iter().enumerate().skip(1) {
                f.add(&ds, &event(i as u64, p, None), p, &v, None);
            }
            f
        };
        // Harm shown only as reach to one place, by an act the agent does: that place is denied.
        let f = familiar(&two, &["mailto:a@new.example"]);
        assert_eq!(
            steps(&f, Severity::Critical),
            vec![(Action::Narrow, "mailto:a@new.example".to_owned())]
        );
        // A second new place, or a line saying the session's purpose rules it out, goes on up.
        let f = familiar(&two, &["mailto:a@new.example", "mailto:b@other.example"]);
        assert_eq!(
            steps(&f, Severity::Critical),
            vec![(Action::SuspendAgent, "etl-1".to_owned())]
        );
        let purpose = [
            (DetectorId::Novelty, 0.9),
            (DetectorId::Source, 0.8),
            (DetectorId::Intent, 0.8),
        ];
        let f = familiar(&purpose, &["mailto:a@new.example"]);
        assert_eq!(
            steps(&f, Severity::Critical),
            vec![(Action::SuspendAgent, "etl-1".to_owned())]
        );
    }

    #[test]
    fn a_finding_climbs_but_never_steps_down() {
        let cs = CommandSettings::default();
        let bs = BreakerSettings::default();
        let signer = Signer::from_seed(&[3; 32]);
        let facts = AgentFacts {
            key: 1,
            mature: true,
            grants: None,
        };
        let mut responder = Responder::default();
        let mut out = Vec::new();
        let reach = [(DetectorId::Novelty, 0.9)];
        let mut f = finding(6, "s3://hr/{id}", &reach, true, Some("s-1"));
        let mut consider = |f: &mut FindingBuilder, sev, out: &mut Vec<OutputRecord>| {
            responder.consider(&cs, &bs, sev, f, &facts, ("e-9", 1), |_| 100, &signer, out)
        };
        consider(&mut f, Severity::High, &mut out);
        consider(&mut f, Severity::High, &mut out);
        // A second line of evidence joins: the session is revoked.
        let ds = DecideSettings::default();
        let two = verdict(&[(DetectorId::Source, 0.8)], true);
        f.add(
            &ds,
            &event(7, "s3://hr/x", Some("s-1")),
            "s3://hr/{id}",
            &two,
            None,
        );
        consider(&mut f, Severity::High, &mut out);
        consider(&mut f, Severity::Critical, &mut out);
        let actions: Vec<(Action, String)> = out
            .iter()
            .filter_map(|o| match o {
                OutputRecord::Command(c) => Some((c.action, c.reason.clone())),
                _ => None,
            })
            .collect();
        let names: Vec<Action> = actions.iter().map(|(a, _)| *a).collect();
        assert_eq!(
            names,
            [
                Action::RequireApproval,
                Action::RevokeSession,
                Action::SuspendAgent
            ]
        );
        // Each says why this step, and what would raise it.
        assert!(actions[0].1.contains("raised to revocation"), "{actions:?}");
        assert!(
            actions[1].1.contains("raised to suspend_agent"),
            "{actions:?}"
        );
    }
}
