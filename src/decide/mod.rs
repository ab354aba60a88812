//! Decisions: turning scored events into findings, commands and suppressions.
//!
//! Anomalous events of one agent that arrive close together in event time are aggregated into one
//! finding that lists them, so one burst gives one finding, not hundreds. A finding closes when
//! its agent has been quiet (no anomalous event) for `aggregate_gap_secs` of event time, when it
//! reaches `aggregate_max_secs`, or at the end of the input. While a finding is open, each event
//! that joins it is put to the command policy ([`respond`]); analyst feedback suppresses what
//! was marked false positive ([`suppress`]).

pub(crate) mod aggregate;
pub(crate) mod respond;
pub mod settings;
pub mod suppress;

use rustc_hash::FxHashMap;

use crate::detect::Verdict;
use crate::event::AccessEvent;
use crate::output::OutputRecord;
use crate::output::sign::Signer;
use crate::vocab::Severity;
use aggregate::FindingBuilder;
use respond::{AgentFacts, Responder};
use settings::{BreakerSettings, CommandSettings, DecideSettings};
use suppress::Suppressions;

/// What became of an event at the decision stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Below the finding threshold.
    Normal,
    /// Anomalous, and reported in its agent's open finding.
    Reported,
    /// Anomalous, but its agent, detectors and pattern (and, for a tool call steered by
    /// instructions, its session) were reported within the repeat window.
    Repeat,
    /// Anomalous, but covered by a suppression (analyst feedback): learned as normal.
    Suppressed,
}

/// Finding decisions for every agent.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Decider {
    open: FxHashMap<Box<str>, FindingBuilder>,
    /// Per agent: signatures already reported (see [`Decider::signatures`]: detector and
    /// resource pattern, and the session for a tool call steered by instructions), until when.
    reported: FxHashMap<Box<str>, Vec<(u64, i64)>>,
    /// Anomalous events not reported again because their agent, detectors and pattern were
    /// reported in the repeat window.
    pub repeats: u64,
    /// Earliest event time at which some open finding may close.
    next_deadline: i64,
    /// Commands, their policy and the circuit breaker.
    #[serde(default)]
    pub responder: Responder,
    /// Suppressions from analyst feedback.
    #[serde(default)]
    pub suppressions: Suppressions,
}

impl Decider {
    /// Severity for a score and the number of strong detectors.
    pub fn severity(settings: &DecideSettings, score: f32, strong: u8) -> Severity {
        if score >= settings.critical && strong >= 2 {
            Severity::Critical
        } else if score >= settings.high {
            Severity::High
        } else if score >= settings.medium {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    /// Takes one scored event. Anomalous events open or join their agent's finding; a finding
    /// that the event cannot join is closed and emitted first. `grant` is the grant that
    /// authorised the event, `fresh` whether the agent's normal behaviour never used it.
    #[allow(clippy::too_many_arguments)]
    pub fn on_event(
        &mut self,
        settings: &DecideSettings,
        ev: &AccessEvent<'_>,
        pattern: &str,
        verdict: &Verdict,
        grant: Option<&str>,
        fresh: bool,
        out: &mut Vec<OutputRecord>,
    ) -> Disposition {
        if verdict.score < settings.finding_threshold {
            return Disposition::Normal;
        }
        let gap = settings.aggregate_gap_secs as i64 * 1000;
        let max = settings.aggregate_max_secs as i64 * 1000;
        let agent: &str = &ev.agent_id;
        if self
            .suppressions
            .hides(agent, &ev.event_id, pattern, verdict, ev.time_ms, gap, out)
        {
            return Disposition::Suppressed;
        }
        let joins = self
            .open
            .get(agent)
            .is_some_and(|f| f.accepts(ev.time_ms, gap, max));
        let session = ev.session_id.as_deref();
        if !joins && self.already_reported(agent, pattern, session, verdict, ev.time_ms) {
            self.repeats += 1;
            return Disposition::Repeat;
        }
        self.remember(settings, agent, pattern, session, verdict, ev.time_ms);
        if let Some(f) = self.open.get_mut(agent) {
            if joins {
                f.add(settings, ev, pattern, verdict, grant);
                if let (Some(g), true) = (grant, fresh) {
                    f.add_fresh_grant(g);
                }
                self.next_deadline = self.next_deadline.min(f.deadline(gap, max));
                return Disposition::Reported;
            }
            if let Some(f) = self.open.remove(agent) {
                self.emit(settings, f, out);
            }
        }
        let mut f = FindingBuilder::open(settings, ev, pattern, verdict, grant);
        if let (Some(g), true) = (grant, fresh) {
            f.add_fresh_grant(g);
        }
        self.suppressions
            .remember(agent, f.finding_id(), f.signature());
        self.next_deadline = if self.open.is_empty() {
            f.deadline(gap, max)
        } else {
            self.next_deadline.min(f.deadline(gap, max))
        };
        self.open.insert(agent.into(), f);
        Disposition::Reported
    }

    /// The agent's open finding that an anomalous event at `t` would join, if any.
    pub fn joinable(
        &self,
        settings: &DecideSettings,
        agent: &str,
        t: i64,
    ) -> Option<&FindingBuilder> {
        let gap = settings.aggregate_gap_secs as i64 * 1000;
        let max = settings.aggregate_max_secs as i64 * 1000;
        self.open.get(agent).filter(|f| f.accepts(t, gap, max))
    }

    /// Puts the agent's open finding to the command policy after an event (`trigger`: its id
    /// and time) joined it.
    #[allow(clippy::too_many_arguments)]
    pub fn respond(
        &mut self,
        settings: (&DecideSettings, &CommandSettings, &BreakerSettings),
        agent: &str,
        facts: &AgentFacts<'_>,
        trigger: (&str, i64),
        active: impl FnOnce(i64) -> usize,
        signer: &Signer,
        out: &mut Vec<OutputRecord>,
    ) {
        let Some(f) = self.open.get_mut(agent) else {
            return;
        };
        let (decide, commands, breaker) = settings;
        let severity = f.severity(decide);
        self.responder.consider(
            commands, breaker, severity, f, facts, trigger, active, signer, out,
        );
    }

    fn emit(&mut self, settings: &DecideSettings, f: FindingBuilder, out: &mut Vec<OutputRecord>) {
        self.suppressions
            .remember(f.agent_id(), f.finding_id(), f.signature());
        out.push(OutputRecord::Finding(f.build(settings)));
    }

    /// What an anomalous event reports: its strong reasons, each keyed on its detector and the
    /// event's resource pattern. When a tool call's values came from a tool result that
    /// addressed the agent with instructions, its `provenance` and `counterparty` evidence
    /// belongs to its session (the text it read there, the destination it reached there), so
    /// it is keyed on the session too: an injection that takes over a new session is a new
    /// finding, not a repeat of one seen in another session that day.
    fn signatures<'v>(
        pattern: &'v str,
        session: Option<&'v str>,
        verdict: &'v Verdict,
    ) -> impl Iterator<Item = u64> + 'v {
        use crate::profile::keys::{key, pair};
        use crate::vocab::DetectorId;
        let place = key(0, pattern);
        let in_session = match session {
            Some(s) if verdict.instructed => pair(place, key(0, s)),
            _ => place,
        };
        verdict
            .reasons
            .iter()
            // The learned model only corroborates: what was reported is keyed on the
            // statistical detectors.
            .filter(|r| r.score >= 0.5 && r.detector != DetectorId::Model)
            .map(move |r| match r.detector {
                DetectorId::Provenance | DetectorId::Counterparty => {
                    pair(r.detector as u64, in_session)
                }
                _ => pair(r.detector as u64, place),
            })
    }

    fn already_reported(
        &self,
        agent: &str,
        pattern: &str,
        session: Option<&str>,
        verdict: &Verdict,
        t: i64,
    ) -> bool {
        let Some(known) = self.reported.get(agent) else {
            return false;
        };
        let mut any = false;
        for sig in Self::signatures(pattern, session, verdict) {
            any = true;
            if !known.iter().any(|(s, until)| *s == sig && *until >= t) {
                return false;
            }
        }
        any
    }

    fn remember(
        &mut self,
        settings: &DecideSettings,
        agent: &str,
        pattern: &str,
        session: Option<&str>,
        verdict: &Verdict,
        t: i64,
    ) {
        if settings.repeat_window_secs == 0 {
            return;
        }
        let until = t + settings.repeat_window_secs as i64 * 1000;
        let sigs: Vec<u64> = Self::signatures(pattern, session, verdict).collect();
        if sigs.is_empty() {
            return;
        }
        let known = self.reported.entry(agent.into()).or_default();
        known.retain(|(_, u)| *u >= t);
        for sig in sigs {
            match known.iter_mut().find(|(s, _)| *s == sig) {
                Some(k) => k.1 = until,
                None => {
                    if known.len() >= 64 {
                        known.remove(0);
                    }
                    known.push((sig, until));
                }
            }
        }
    }

    /// Closes every finding whose deadline has passed at event time `watermark_ms`, in a
    /// deterministic order (first event time, then id).
    pub fn advance(
        &mut self,
        settings: &DecideSettings,
        watermark_ms: i64,
        out: &mut Vec<OutputRecord>,
    ) {
        if self.open.is_empty() || watermark_ms < self.next_deadline {
            return;
        }
        let gap = settings.aggregate_gap_secs as i64 * 1000;
        let max = settings.aggregate_max_secs as i64 * 1000;
        let mut due: Vec<Box<str>> = self
            .open
            .iter()
            .filter(|(_, f)| f.deadline(gap, max) <= watermark_ms)
            .map(|(k, _)| k.clone())
            .collect();
        self.close(settings, &mut due, out);
        self.next_deadline = self
            .open
            .values()
            .map(|f| f.deadline(gap, max))
            .min()
            .unwrap_or(i64::MAX);
    }

    /// Closes every open finding (end of input, shutdown).
    pub fn finish(&mut self, settings: &DecideSettings, out: &mut Vec<OutputRecord>) {
        let mut all: Vec<Box<str>> = self.open.keys().cloned().collect();
        self.close(settings, &mut all, out);
        self.next_deadline = i64::MAX;
    }

    fn close(
        &mut self,
        settings: &DecideSettings,
        agents: &mut [Box<str>],
        out: &mut Vec<OutputRecord>,
    ) {
        let mut closing: Vec<FindingBuilder> =
            agents.iter().filter_map(|a| self.open.remove(a)).collect();
        closing.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        for f in closing {
            self.emit(settings, f, out);
        }
    }
}
