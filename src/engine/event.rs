//! The per-event path: observe the event in its agent's profile, score it, decide, share what
//! is new with the fleet, learn, and put a reported finding to the command policy.

use std::sync::Arc;

use super::Engine;
use super::agent::{Agent, Learned};
use super::tools::{CallFacts, EffectTable};
use crate::config::Settings;
use crate::decide::aggregate::PeerUse;
use crate::decide::respond::AgentFacts;
use crate::decide::{Decider, Disposition};
use crate::detect::{self, Ctx, ModelView, PeerView, Verdict};
use crate::event::AccessEvent;
use crate::fleet::{Delta, Fleet, GroupStats, UseKind};
use crate::grants::AgentGrants;
use crate::grants::usage::Use;
use crate::ml::{EVENT_DIM, Model, event_vector};
use crate::output::OutputRecord;
use crate::profile::counter::{Decay, Minute, minute_of};
use crate::profile::keys::{EventKeys, key, ns};
use crate::profile::{Capacity, Learning, Observation};
use crate::vocab::DetectorId;

/// What scoring an event found.
struct Scored {
    /// The event's tool call, when it carries content.
    call: Option<CallFacts>,
    obs: Observation,
    learned: Option<Learned>,
    verdict: Verdict,
    features: Option<[f32; EVENT_DIM]>,
}

/// What scoring reads of the engine (borrowed field by field, beside the agent being scored).
struct Scoring<'a> {
    settings: &'a Settings,
    cap: &'a Capacity,
    decay: Decay,
    weights: &'a [f32; DetectorId::ALL.len()],
    model: Option<&'a Model>,
    model_detector: bool,
    tap: bool,
    explain_all: bool,
    effects: &'a EffectTable,
}

/// How an event was judged, for what its agent learns from it.
struct Judged<'a> {
    /// The grant the event was attributed to.
    grant: Option<&'a str>,
    /// Whether the agent's entitlements are known.
    covered: bool,
    anomalous: bool,
    disposition: Disposition,
}

impl Engine {
    /// Scores one event, learns from it, and appends any records it completes to `out`.
    pub fn process(&mut self, ev: &AccessEvent<'_>, out: &mut Vec<OutputRecord>) -> Verdict {
        let before = out.len();
        if ev.time_ms > self.watermark_ms {
            self.tick(ev.time_ms, out);
        }
        let now = minute_of(ev.time_ms);
        let keys = self.key_cache.keys(ev);
        let agent = match self.agents.get_mut(ev.agent_id.as_ref()) {
            Some(a) => a,
            None => {
                let a = Agent::new(ev, &self.cap, now);
                if !self.evicted.remove(&a.key) {
                    self.fleet.new_agent(&a.groups);
                }
                self.agents.entry(ev.agent_id.as_ref().into()).or_insert(a)
            }
        };
        agent.touched = true;
        let scoring = Scoring {
            settings: &self.settings,
            cap: &self.cap,
            decay: self.decay,
            weights: &self.weights,
            model: self.model.as_deref(),
            model_detector: self.model_detector,
            tap: self.tap,
            explain_all: self.explain_all,
            effects: &self.effects,
        };
        let ents = Arc::clone(&self.ents);
        let sanctioned = keys.destination && ents.names_exactly(&ev.resource);
        let mut scored = scoring.score(
            agent,
            &mut self.fleet,
            &self.decider,
            (ev, &keys, sanctioned),
            now,
        );
        self.last_features = scored.features;
        let grants = ents.agent(&ev.agent_id);
        let grant = attribute(grants, ev);
        if scored.verdict.reach
            && (sanctioned
                || grants.is_some_and(|g| {
                    g.names_place_for(&ev.action, &ev.resource, |id| {
                        agent.ledger.normal_uses(id) > 0
                    })
                }))
        {
            // A place named by a grant the agent works through is its territory, new to it or
            // not. A grant its normal behaviour never used gives it no territory: reaching a
            // place through it is what a standing, forgotten grant is abused for. A destination
            // the organisation's grants name exactly is a partner, not beyond its reach.
            scored.verdict.reach = false;
        }
        let fresh = grant.is_some_and(|g| agent.ledger.normal_uses(g) == 0);
        let disposition = self.decider.on_event(
            &self.settings.decide,
            ev,
            &keys.pattern,
            &scored.verdict,
            grant,
            fresh,
            out,
        );
        if disposition == Disposition::Reported {
            // What the finding that took the event changed, for telling a roll-out its peers
            // follow from the agent's own change.
            let new_action = scored
                .verdict
                .new_action
                .then(|| {
                    peer_group(&self.settings, &self.fleet, agent, scored.learned, |g| {
                        g.agents
                    })
                })
                .flatten()
                .map(|(g, s, _)| PeerUse {
                    group: g,
                    key: keys.action,
                    action: ev.action.to_string(),
                    users: s.users(UseKind::Action, keys.action),
                    own_pending: !scored.obs.action.seen,
                    at_due: None,
                });
            self.decider
                .note_change(&ev.agent_id, new_action, keys.destination);
        }
        share_with_fleet(&mut self.fleet, agent, &keys, &scored, now);
        let anomalous = scored.verdict.score >= self.settings.decide.finding_threshold;
        let judged = Judged {
            grant,
            covered: grants.is_some(),
            anomalous,
            disposition,
        };
        scoring.learn(agent, ev, &keys, &scored, &judged);
        learn_tool_call(&mut self.fleet, agent, &scored, anomalous, now);
        let facts = AgentFacts {
            key: agent.key,
            mature: scored.obs.maturity >= 1.0,
            grants,
        };
        if disposition == Disposition::Reported && self.settings.commands.enabled {
            self.respond(ev, &facts, out);
        }
        self.after_event(scored.obs.late, anomalous, before, out);
        scored.verdict
    }

    /// Counts the event, applies the feedback due and follows up the records it completed.
    fn after_event(
        &mut self,
        late: bool,
        anomalous: bool,
        before: usize,
        out: &mut Vec<OutputRecord>,
    ) {
        self.stats.events += 1;
        self.stats.late += u64::from(late);
        self.stats.anomalous += u64::from(anomalous);
        if !self.feedback.is_empty() {
            self.apply_feedback(self.watermark_ms, out);
        }
        self.after_decisions(before, out);
    }
}

impl Scoring<'_> {
    /// Observes the event in its agent's profile and scores it.
    fn score(
        &self,
        agent: &mut Agent,
        fleet: &mut Fleet,
        decider: &Decider,
        (ev, keys, sanctioned): (&AccessEvent<'_>, &EventKeys<'_>, bool),
        now: Minute,
    ) -> Scored {
        let settings = self.settings;
        let mut obs = agent.profile.observe(
            keys,
            ev.bytes.unwrap_or(0),
            &settings.profile,
            self.cap,
            settings.detect.window_secs.div_ceil(60),
            self.decay,
        );
        let call = CallFacts::of(ev, self.effects);
        let p = &settings.profile;
        if call.is_some()
            && (p.learning_sessions, p.learning_calls) != (0, 0)
            && let Some(tools) = agent.tools.as_deref()
        {
            // An AI agent's learning period is counted in sessions and calls, not days.
            obs.maturity = obs
                .maturity
                .max(tools.maturity(p.learning_sessions, p.learning_calls));
        }
        let learned = self
            .model
            .and_then(|m| agent.learned_group(m, ev, keys, &settings.ml, fleet));
        // The model judges (and learns from) agents past their learning period: its features
        // include how familiar the agent is with what it does, which says nothing while
        // everything is new.
        let features = ((self.model.is_some() || self.tap) && obs.maturity >= 1.0)
            .then(|| event_vector(ev, &obs));
        let tool = call.as_ref().map(|facts| {
            agent.tools.get_or_insert_with(Default::default).view(
                facts,
                &fleet.snapshot,
                agent.key,
                now,
            )
        });
        let ctx = Ctx {
            ev,
            keys,
            obs: &obs,
            peers: peer_view(settings, fleet, agent, learned, keys, call.is_some(), now),
            settings: &settings.detect,
            weights: self.weights,
            model: self.model_view(ev, learned, features),
            tool: tool.as_ref(),
            sanctioned,
        };
        let mut verdict = detect::evaluate(&ctx);
        self.judge(&mut verdict, &ctx, learned, decider);
        Scored {
            call,
            obs,
            learned,
            verdict,
            features,
        }
    }

    /// The learned model's view of the event, when it takes part in the fusion (and judges
    /// events of its kind, see [`crate::ml::Model::judges`]).
    fn model_view(
        &self,
        ev: &AccessEvent<'_>,
        learned: Option<Learned>,
        features: Option<[f32; EVENT_DIM]>,
    ) -> Option<ModelView<'_>> {
        let ml = &self.settings.ml;
        self.model
            .filter(|m| self.model_detector && m.judges(ev))
            .zip(features)
            .map(|(m, f)| ModelView {
                model: m,
                rarity: m.rarity(learned.map(|l| l.group), &f),
                features: f,
                from: ml.rarity_from,
                full: ml.rarity_full,
            })
    }

    /// Calibrates the fused score, keeps the model from opening a finding alone, and explains
    /// the reasons that will be read.
    fn judge(
        &self,
        verdict: &mut Verdict,
        ctx: &Ctx<'_>,
        learned: Option<Learned>,
        decider: &Decider,
    ) {
        let settings = self.settings;
        let group = learned.map(|l| l.group);
        if let Some(m) = self.model
            && settings.ml.calibrate
            && m.judges(ctx.ev)
        {
            verdict.score = m.calibrate(group, verdict.score);
            verdict.without_model = m.calibrate(group, verdict.without_model);
        }
        let threshold = settings.decide.finding_threshold;
        if verdict.without_model < threshold && verdict.score >= threshold {
            // The learned model ranks and corroborates, but cannot open a finding by itself,
            // calibrated or not.
            verdict.score = detect::round4(threshold - 1e-4);
        }
        if verdict.score >= threshold {
            verdict.reach = detect::novelty::reach(ctx, settings.commands.reach_peer_share);
            verdict.foreign = detect::source::foreign(ctx);
            verdict.outside_class = detect::source::outside_class(ctx);
            // Steered by an order in data: its values came from an instructing result, or it
            // obeys one the user never asked for.
            verdict.instructed = ctx
                .tool
                .is_some_and(|t| t.steering == detect::Steering::Instructed || t.unasked);
            verdict.new_action = ctx.obs.action.count < 1.0;
        }
        if self.explain_all || verdict.score >= threshold {
            // Without score lines, only the reasons its finding keeps: all of them when the
            // event opens one, else those stronger than the open finding's.
            let open = if self.explain_all {
                None
            } else {
                decider.joinable(&settings.decide, &ctx.ev.agent_id, ctx.ev.time_ms)
            };
            detect::explain_reasons(verdict, ctx, |r| open.is_none_or(|f| f.keeps(r)));
        }
    }

    /// Learns the event into the agent's baseline, at a pace set by how it was judged, and
    /// records its use of the grant it was attributed to.
    fn learn(
        &self,
        agent: &mut Agent,
        ev: &AccessEvent<'_>,
        keys: &EventKeys<'_>,
        scored: &Scored,
        judged: &Judged<'_>,
    ) {
        // What the baseline learns is decided by the statistical detectors alone, so a model
        // never changes the agent's own baseline.
        let settings = self.settings;
        let score = scored.verdict.without_model.min(scored.verdict.score);
        let pace = if score < settings.detect.learn_below
            || judged.disposition == Disposition::Suppressed
        {
            Learning::Full
        } else if score < settings.decide.finding_threshold {
            Learning::Provisional
        } else {
            Learning::Slow
        };
        agent
            .profile
            .learn(keys, ev.bytes, &scored.obs, pace, self.cap, self.decay);
        agent.ledger.observe(ev.time_ms);
        match judged.grant {
            Some(g) => agent.ledger.record(&Use {
                grant: g,
                time_ms: ev.time_ms,
                action: (keys.action, &ev.action),
                pattern: (keys.pattern_id, &keys.pattern),
                intent: keys.intent.zip(ev.intent.as_deref()),
                anomalous: judged.anomalous && judged.disposition != Disposition::Suppressed,
            }),
            None if judged.covered => agent.ledger.uncovered += 1,
            None => {}
        }
    }
}

/// The grant that allowed the event: attributed from the agent's entitlements when known, else
/// the one the event names.
fn attribute<'a>(grants: Option<&'a AgentGrants>, ev: &'a AccessEvent<'_>) -> Option<&'a str> {
    match grants {
        Some(g) => g.attribute(ev.grant.as_deref(), &ev.action, &ev.resource),
        None => ev.grant.as_deref(),
    }
}

/// The peer group an agent is judged against, with its key and the agents it is judged among
/// (`members` of the group): its family, then its learned group, then its declared kind (the
/// first whose members are enough, `detect.min_peer_group`).
fn peer_group<'f>(
    settings: &Settings,
    fleet: &'f Fleet,
    agent: &Agent,
    learned: Option<Learned>,
    members: impl Fn(&GroupStats) -> u32,
) -> Option<(u64, &'f GroupStats, u32)> {
    let min_group = settings.detect.min_peer_group;
    [
        Some(agent.groups[0]),
        learned.map(|l| l.key),
        Some(agent.groups[1]),
    ]
    .into_iter()
    .flatten()
    .filter_map(|g| fleet.snapshot.group(g).map(|s| (g, s, members(s))))
    .find(|&(_, _, n)| n >= min_group)
}

/// The peers an event is judged against: the agent's family, then its learned group, then its
/// declared kind (the first large enough), and the fleet's view of a destination.
///
/// An AI agent's tool call is judged among the agents of the group that share a tool with it
/// (the tool called or one it used before): agents given other tools say nothing of which of
/// its own tools it should call.
fn peer_view<'f>(
    settings: &Settings,
    fleet: &'f Fleet,
    agent: &Agent,
    learned: Option<Learned>,
    keys: &EventKeys<'_>,
    tool_call: bool,
    now: Minute,
) -> PeerView<'f> {
    let snap = &fleet.snapshot;
    let members = |g: &GroupStats| {
        if tool_call {
            let tools = std::iter::once(keys.action).chain(agent.profile.known_actions());
            g.sharing(tools).min(g.agents)
        } else {
            g.agents
        }
    };
    let (group, members) = peer_group(settings, fleet, agent, learned, members)
        .map_or((None, 0), |(_, g, n)| (Some(g), n));
    let destination = keys.destination.then(|| {
        let dest = key(ns::PREFIX, keys.prefix());
        let since: Minute = now.saturating_sub(7 * 1440);
        snap.destination(dest)
            .map_or((0, 0), |d| (d.agents, d.recent_others(agent.key, since)))
    });
    PeerView {
        group,
        members,
        fleet_agents: snap.agents,
        fleet_days: snap.days(now),
        destination,
    }
}

/// Learns the event's tool call into the agent's memory, and tells the fleet about the
/// counterparties new to the agent.
fn learn_tool_call(
    fleet: &mut Fleet,
    agent: &mut Agent,
    scored: &Scored,
    anomalous: bool,
    now: Minute,
) {
    let (Some(facts), Some(tools)) = (scored.call.as_ref(), agent.tools.as_mut()) else {
        return;
    };
    for dest in tools.learn(facts, anomalous) {
        fleet.record(Delta::Destination {
            dest,
            agent: agent.key,
            minute: now,
        });
    }
}

/// Fleet knowledge: the agent's first uses and new destinations, applied at the next tick.
fn share_with_fleet(
    fleet: &mut Fleet,
    agent: &Agent,
    keys: &EventKeys<'_>,
    scored: &Scored,
    now: Minute,
) {
    let (obs, learned) = (&scored.obs, scored.learned);
    let groups = || agent.groups.into_iter().chain(learned.map(|l| l.key));
    for (kind, lookup, k) in [
        (UseKind::Action, obs.action, keys.action),
        (UseKind::Pattern, obs.pattern, keys.pattern_id),
        (UseKind::Prefix, obs.prefix, keys.prefix_id),
    ]
    .into_iter()
    .chain(obs.names.iter().map(|&(k, l)| (UseKind::Name, l, k)))
    {
        if !lookup.seen {
            for group in groups() {
                fleet.record(Delta::FirstUse {
                    group,
                    kind,
                    key: k,
                });
            }
        }
    }
    if let (Some(i), Some((_, on_prefix, with_action))) = (keys.intent, obs.intent) {
        for (kind, count, k) in [
            (UseKind::IntentPrefix, on_prefix, keys.prefix_id),
            (UseKind::IntentAction, with_action, keys.action),
        ] {
            if count == 0.0 {
                for group in groups() {
                    fleet.record(Delta::FirstUse {
                        group,
                        kind,
                        key: crate::profile::keys::pair(i, k),
                    });
                }
            }
        }
    }
    if keys.destination && obs.prefix.count < 1.0 {
        fleet.record(Delta::Destination {
            dest: key(ns::PREFIX, keys.prefix()),
            agent: agent.key,
            minute: now,
        });
    }
}

impl Engine {
    /// Puts the agent's open finding to the command policy. Commands are signed with the
    /// engine's key; without one none is issued.
    fn respond(
        &mut self,
        ev: &AccessEvent<'_>,
        facts: &AgentFacts<'_>,
        out: &mut Vec<OutputRecord>,
    ) {
        let Some(signer) = &self.signer else {
            return;
        };
        let agents = &self.agents;
        self.decider.respond(
            (
                &self.settings.decide,
                &self.settings.commands,
                &self.settings.breaker,
            ),
            &ev.agent_id,
            facts,
            (&ev.event_id, ev.time_ms),
            |since| {
                agents
                    .values()
                    .filter(|a| a.ledger.last_ms >= since)
                    .count()
            },
            signer,
            out,
        );
    }
}
