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
    /// Closed findings held back until the agent's peers could follow its change (see
    /// [`FindingBuilder::may_be_rollout`]), with the event time at which each is judged, in
    /// the order they come due (that time, then first event time and id).
    #[serde(default)]
    held: Vec<(i64, FindingBuilder)>,
    /// Held findings not emitted because the agent's peers took up the same new actions: a
    /// roll-out, reported in the audit stream instead.
    #[serde(default)]
    pub absorbed: u64,
}

/// How many agents of a peer group used an action, as the fleet knows it now.
pub(crate) trait PeerUses {
    /// Agents of `group` that used the action `key`.
    fn action_users(&self, group: u64, key: u64) -> u32;
}

impl<F: Fn(u64, u64) -> u32> PeerUses for F {
    fn action_users(&self, group: u64, key: u64) -> u32 {
        self(group, key)
    }
}

/// What closing findings reads beyond the decision settings.
pub(crate) struct Closing<'a> {
    /// Lowest score of a reason that counts as a line of evidence (`commands.evidence_score`).
    pub evidence_score: f32,
    /// The peer groups' use of actions.
    pub peers: &'a dyn PeerUses,
}

impl<'a> Closing<'a> {
    /// Closing under `commands` (its evidence score) with the fleet's `peers`.
    pub fn new(commands: &CommandSettings, peers: &'a dyn PeerUses) -> Self {
        Closing {
            evidence_score: commands.evidence_score,
            peers,
        }
    }
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
        let (gap, max) = settings.aggregate_ms();
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
        let (gap, max) = settings.aggregate_ms();
        self.open.get(agent).filter(|f| f.accepts(t, gap, max))
    }

    /// Notes what the event the agent's open finding just took changed (see
    /// [`FindingBuilder::note_change`]).
    pub fn note_change(
        &mut self,
        agent: &str,
        new_action: Option<aggregate::PeerUse>,
        outward: bool,
    ) {
        if let Some(f) = self.open.get_mut(agent) {
            f.note_change(new_action, outward);
        }
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

    /// What an anomalous event reports: its strong reasons (or, when several weak ones made it
    /// anomalous together, the strongest of them), each keyed on its detector and the event's
    /// resource pattern. When a tool call's values came from a tool result that
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
        // The learned model only corroborates: what was reported is keyed on the statistical
        // detectors.
        let statistical = move || {
            verdict
                .reasons
                .iter()
                .filter(|r| r.detector != DetectorId::Model && r.score > 0.0)
        };
        let strong = statistical().map(|r| r.score).fold(0.0, f32::max).min(0.5);
        statistical()
            .filter(move |r| r.score >= strong)
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
    /// deterministic order (first event time, then id), and judges the held findings due.
    pub fn advance(
        &mut self,
        settings: &DecideSettings,
        closing: &Closing<'_>,
        watermark_ms: i64,
        out: &mut Vec<OutputRecord>,
    ) {
        if !self.open.is_empty() && watermark_ms >= self.next_deadline {
            let (gap, max) = settings.aggregate_ms();
            let mut due: Vec<Box<str>> = self
                .open
                .iter()
                .filter(|(_, f)| f.deadline(gap, max) <= watermark_ms)
                .map(|(k, _)| k.clone())
                .collect();
            self.close(settings, closing, &mut due, out);
            self.next_deadline = self
                .open
                .values()
                .map(|f| f.deadline(gap, max))
                .min()
                .unwrap_or(i64::MAX);
        }
        self.release(settings, closing, watermark_ms, false, out);
    }

    /// Keeps, for every finding held for a roll-out (or open, but past its deadline and to be
    /// held when it closes) whose due time falls before `boundary_ms`, the peers' counts of
    /// its new actions as they stand: the fleet is about to apply the window of changes that
    /// ends at `boundary_ms`, which its due time does not reach. A held finding is then judged
    /// against the snapshot in force at its due time, whenever its engine next sees an event,
    /// so one engine and the engines of any number of partitions judge it alike.
    pub fn freeze_due(
        &mut self,
        settings: &DecideSettings,
        closing: &Closing<'_>,
        boundary_ms: i64,
    ) {
        for (_, f) in self.held.iter_mut().take_while(|(at, _)| *at < boundary_ms) {
            f.freeze(closing.peers);
        }
        if settings.rollout_hold_secs == 0 || self.next_deadline >= boundary_ms {
            return;
        }
        let (gap, max) = settings.aggregate_ms();
        let hold = settings.rollout_hold_secs as i64 * 1000;
        for f in self.open.values_mut() {
            if f.deadline(gap, max) + hold < boundary_ms && f.may_be_rollout(closing.evidence_score)
            {
                f.freeze(closing.peers);
            }
        }
    }

    /// Closes every open finding and judges every held one (end of input, shutdown) as of
    /// event time `now_ms`.
    pub fn finish(
        &mut self,
        settings: &DecideSettings,
        closing: &Closing<'_>,
        now_ms: i64,
        out: &mut Vec<OutputRecord>,
    ) {
        let mut all: Vec<Box<str>> = self.open.keys().cloned().collect();
        self.close(settings, closing, &mut all, out);
        self.next_deadline = i64::MAX;
        self.release(settings, closing, now_ms, true, out);
    }

    fn close(
        &mut self,
        settings: &DecideSettings,
        closing: &Closing<'_>,
        agents: &mut [Box<str>],
        out: &mut Vec<OutputRecord>,
    ) {
        let mut done: Vec<FindingBuilder> =
            agents.iter().filter_map(|a| self.open.remove(a)).collect();
        done.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        let (gap, max) = settings.aggregate_ms();
        for f in done {
            if settings.rollout_hold_secs > 0 && f.may_be_rollout(closing.evidence_score) {
                let at = f.deadline(gap, max) + settings.rollout_hold_secs as i64 * 1000;
                let i = self
                    .held
                    .partition_point(|(t, h)| (*t, h.order_key()) < (at, f.order_key()));
                self.held.insert(i, (at, f));
            } else {
                self.emit(settings, f, out);
            }
        }
    }

    /// Judges the held findings due by event time `upto` (with `all`, every held finding, as
    /// of `upto`), in the order they came due: each is emitted, unless enough of its agent's
    /// peers took up every one of its new actions since, which makes it a roll-out (an audit
    /// record says so).
    fn release(
        &mut self,
        settings: &DecideSettings,
        closing: &Closing<'_>,
        upto: i64,
        all: bool,
        out: &mut Vec<OutputRecord>,
    ) {
        let due = if all {
            self.held.len()
        } else {
            self.held.partition_point(|(at, _)| *at <= upto)
        };
        if due == 0 {
            return;
        }
        let due: Vec<(i64, FindingBuilder)> = self.held.drain(..due).collect();
        for (at, f) in due {
            let followers = f.followers(closing.peers);
            let need = settings.rollout_followers;
            if followers.is_empty() || followers.iter().any(|(_, n)| *n < need) {
                self.emit(settings, f, out);
                continue;
            }
            self.absorbed += 1;
            // Judged at its due time, or at the newest event time for one judged at the end.
            let t = at.min(upto);
            out.push(OutputRecord::Audit(absorbed(settings, &f, &followers, t)));
        }
    }
}

/// The audit record of a held finding that a roll-out absorbed.
fn absorbed(
    settings: &DecideSettings,
    f: &FindingBuilder,
    followers: &[(&str, u32)],
    t: i64,
) -> crate::output::audit::Audit {
    use crate::output::audit::{Audit, AuditEvent};
    let list = followers
        .iter()
        .map(|(a, n)| format!("{a} by {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let severity = f.severity(settings);
    Audit::new(
        AuditEvent::RolloutAbsorbed,
        t,
        Some(f.agent_id()),
        format!(
            "finding {} ({}) not emitted: the agent's peers took up its new actions since ({list}): a roll-out, not this agent's own change",
            f.finding_id(),
            severity.as_str()
        ),
        serde_json::json!({
            "finding_id": f.finding_id(),
            "severity": severity.as_str(),
            "first_seen": crate::output::time::rfc3339_ms(f.first_ms()),
            "event_count": f.event_count(),
            "actions": followers
                .iter()
                .map(|(a, n)| serde_json::json!({"action": a, "followers": n}))
                .collect::<Vec<_>>(),
            "min_followers": settings.rollout_followers,
            "hold_secs": settings.rollout_hold_secs,
        }),
    )
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::aggregate::PeerUse;
    use super::*;
    use crate::output::audit::{Audit, AuditEvent};
    use crate::vocab::DetectorId;

    const T0: i64 = 1_767_571_200_000;
    const MIN: i64 = 60_000;

    /// What an event of the agent changed.
    #[derive(Clone, Copy)]
    enum Change {
        /// It took up an action new to the agent.
        NewAction,
        /// Its action was one the agent uses.
        Familiar,
        /// It reached an outside destination with a new action.
        Outward,
    }

    /// One agent's anomalous events through a decider, with a peer group in which `users`
    /// agents use every action.
    struct Fixture {
        ds: DecideSettings,
        users: u32,
        d: Decider,
        out: Vec<OutputRecord>,
    }

    impl Fixture {
        fn new(users: u32) -> Self {
            Fixture {
                ds: DecideSettings::default(),
                users,
                d: Decider::default(),
                out: Vec::new(),
            }
        }

        fn with(
            &mut self,
            f: impl FnOnce(&mut Decider, &DecideSettings, &Closing<'_>, &mut Vec<OutputRecord>),
        ) {
            let users = self.users;
            let peers = move |_: u64, _: u64| users;
            let closing = Closing {
                evidence_score: 0.5,
                peers: &peers,
            };
            f(&mut self.d, &self.ds, &closing, &mut self.out);
        }

        /// An anomalous event at minute `i`: critical novelty and peer rarity.
        fn event(&mut self, i: i64, action: &'static str, change: Change) {
            let mut ev = respond::tests::event(0, "kb://articles", None);
            ev.event_id = Cow::Owned(format!("e-{i}"));
            ev.time_ms = T0 + i * MIN;
            ev.agent_id = Cow::Borrowed("support-1");
            ev.action = Cow::Borrowed(action);
            let mut v = respond::tests::verdict(
                &[(DetectorId::Novelty, 0.9), (DetectorId::Peer, 0.7)],
                false,
            );
            v.score = 0.97;
            v.without_model = 0.97;
            v.new_action = !matches!(change, Change::Familiar);
            self.with(|d, ds, closing, out| {
                d.advance(ds, closing, ev.time_ms, out);
                let disposition = d.on_event(ds, &ev, "kb://articles", &v, None, false, out);
                assert_eq!(disposition, Disposition::Reported);
            });
            let new_action = v.new_action.then(|| PeerUse {
                group: 7,
                key: action.len() as u64,
                action: action.to_string(),
                users: 0,
                own_pending: true,
                at_due: None,
            });
            let outward = matches!(change, Change::Outward);
            self.d.note_change("support-1", new_action, outward);
        }

        fn advance(&mut self, minute: i64) {
            self.with(|d, ds, closing, out| d.advance(ds, closing, T0 + minute * MIN, out));
        }

        fn finish(&mut self, minute: i64) {
            self.with(|d, ds, closing, out| d.finish(ds, closing, T0 + minute * MIN, out));
        }

        /// The fleet is about to apply the window that ends at minute `boundary`.
        fn window(&mut self, boundary: i64) {
            self.with(|d, ds, closing, _| d.freeze_due(ds, closing, T0 + boundary * MIN));
        }

        fn findings(&self) -> usize {
            self.out
                .iter()
                .filter(|r| matches!(r, OutputRecord::Finding(_)))
                .count()
        }

        fn absorbed(&self) -> Vec<&Audit> {
            self.out
                .iter()
                .filter_map(|r| match r {
                    OutputRecord::Audit(a) if a.event == AuditEvent::RolloutAbsorbed => Some(a),
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn an_event_anomalous_only_by_weak_reasons_repeats_the_finding_of_its_strongest() {
        // A daily job's new pattern: reported on the first day; the next day's run is anomalous
        // again, though only its novelty (now weaker) and a little pace make it so.
        let mut fx = Fixture::new(0);
        let mut at = |minute: i64, reasons: &[(DetectorId, f32)]| {
            let mut ev = respond::tests::event(0, "s3://lake/pageviews/compacted.parquet", None);
            ev.time_ms = T0 + minute * MIN;
            ev.event_id = Cow::Owned(format!("e-{minute}"));
            let mut v = respond::tests::verdict(reasons, false);
            v.score = 0.7;
            let mut disposition = Disposition::Normal;
            fx.with(|d, ds, closing, out| {
                d.advance(ds, closing, ev.time_ms, out);
                disposition = d.on_event(ds, &ev, "s3://lake/{table}", &v, None, false, out);
            });
            disposition
        };
        let first = at(0, &[(DetectorId::Novelty, 0.69), (DetectorId::Rate, 0.22)]);
        assert_eq!(first, Disposition::Reported);
        let next_day = at(
            23 * 60,
            &[(DetectorId::Novelty, 0.45), (DetectorId::Rate, 0.3)],
        );
        assert_eq!(next_day, Disposition::Repeat);
        // Weak reasons led by another detector are news.
        let other = at(
            23 * 60 + 90,
            &[(DetectorId::Rate, 0.45), (DetectorId::Novelty, 0.3)],
        );
        assert_eq!(other, Disposition::Reported);
    }

    #[test]
    fn a_new_tool_its_peers_take_up_within_the_hold_is_a_rollout_not_a_finding() {
        // The agent's own first use counts among the group's users, so three users are two
        // followers.
        let mut x = Fixture::new(3);
        x.event(0, "kb:SemanticSearch", Change::NewAction);
        x.advance(24 * 60);
        assert_eq!(x.findings(), 0);
        let a = x.absorbed();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].agent_id.as_deref(), Some("support-1"));
        assert_eq!(a[0].details["actions"][0]["action"], "kb:SemanticSearch");
        assert_eq!(a[0].details["actions"][0]["followers"], 2);
        assert_eq!(a[0].details["severity"], "critical");
        // Judged when the hold is over: the finding's deadline (15 min quiet) plus six hours.
        assert_eq!(a[0].time, "2026-01-05T06:15:00.000Z");
        assert_eq!(x.d.absorbed, 1);
    }

    #[test]
    fn a_new_tool_too_few_peers_take_up_is_emitted_when_the_hold_ends() {
        let mut x = Fixture::new(2);
        x.event(0, "kb:SemanticSearch", Change::NewAction);
        // Closed after 15 quiet minutes, but held: nothing yet, an hour or five later.
        x.advance(60);
        x.advance(5 * 60);
        assert!(x.out.is_empty());
        x.advance(6 * 60 + 15);
        assert_eq!(x.findings(), 1);
        assert!(x.absorbed().is_empty());
        assert_eq!(x.d.absorbed, 0);
    }

    #[test]
    fn a_change_that_reaches_outward_or_mixes_in_familiar_acts_is_not_held() {
        // Mail to a new address: who the agent sends to is never a roll-out.
        let mut x = Fixture::new(8);
        x.event(0, "mail:Send", Change::Outward);
        x.advance(20);
        assert_eq!(x.findings(), 1);
        // An event of the finding on a familiar action: it shows more than the roll-out. Held
        // findings are also judged at the end of the input.
        let mut x = Fixture::new(8);
        x.event(0, "kb:SemanticSearch", Change::NewAction);
        x.event(1, "kb:Search", Change::Familiar);
        x.finish(2);
        assert_eq!(x.findings(), 1);
        assert!(x.absorbed().is_empty());
    }

    #[test]
    fn holding_can_be_switched_off() {
        let mut x = Fixture::new(8);
        x.ds.rollout_hold_secs = 0;
        x.event(0, "kb:SemanticSearch", Change::NewAction);
        x.advance(20);
        assert_eq!(x.findings(), 1);
    }

    #[test]
    fn a_held_finding_is_judged_at_the_end_of_the_input() {
        let mut x = Fixture::new(3);
        x.event(0, "kb:SemanticSearch", Change::NewAction);
        x.finish(30);
        let a = x.absorbed();
        assert_eq!(a.len(), 1);
        // As of the last event time, not of a hold that the input did not reach.
        assert_eq!(a[0].time, "2026-01-05T00:30:00.000Z");
    }

    #[test]
    fn a_held_finding_counts_the_followers_of_the_fleet_in_force_at_its_due_time() {
        // Due at 06:15. Peers who follow after it are not counted, however late its engine
        // gets to judge it: the window that ends at 07:00 holds changes from after 06:15.
        let mut x = Fixture::new(1);
        x.event(0, "kb:SemanticSearch", Change::NewAction);
        x.advance(20);
        x.window(6 * 60);
        x.window(7 * 60);
        x.users = 3;
        x.advance(30 * 60);
        assert_eq!(x.findings(), 1);
        assert!(x.absorbed().is_empty());
        // A window that ends at or before the due time holds changes from before it: counted.
        let mut x = Fixture::new(1);
        x.event(0, "kb:SemanticSearch", Change::NewAction);
        x.advance(20);
        x.window(6 * 60);
        x.users = 3;
        x.window(6 * 60 + 15);
        x.advance(30 * 60);
        assert_eq!(x.findings(), 0);
        assert_eq!(x.absorbed().len(), 1);
        // A finding still open, but past its deadline, keeps the counts the same way: it is
        // judged alike whether its engine closed it before the window or only after.
        let mut x = Fixture::new(1);
        x.event(0, "kb:SemanticSearch", Change::NewAction);
        x.window(7 * 60);
        x.users = 3;
        x.advance(30 * 60);
        assert_eq!(x.findings(), 1);
        assert!(x.absorbed().is_empty());
    }
}
