//! The pure pipeline: profile -> detect -> decide, for decoded events.
//!
//! Synchronous, deterministic and driven by event time: no I/O, no wall clock, no global state.
//! Drivers (replay over files, the Kafka consumer, the embedded demo) feed it decoded events and
//! deliver what it returns.

use rustc_hash::FxHashMap;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::config::Settings;
use crate::decide::respond::AgentFacts;
use crate::decide::suppress::{Feedback, Suppression};
use crate::decide::{Decider, Disposition};
use crate::detect::{self, Ctx, ModelView, PeerView, Verdict};
use crate::event::AccessEvent;
use crate::fleet::{Delta, Fleet, UseKind};
use crate::grants::usage::Use;
use crate::grants::{Entitlements, Ledger, SharedEntitlements, recommend};
use crate::ml::{Behaviour, EVENT_DIM, Model, SharedModel, event_vector};
use crate::output::OutputRecord;
use crate::output::sign::Signer;
use crate::profile::counter::{Decay, Minute};
use crate::profile::generalise::generalise;
use crate::profile::keys::{EventKeys, key, ns};
use crate::profile::{AgentProfile, Capacity, Learning};

/// One agent's state.
#[derive(Debug)]
struct Agent {
    key: u64,
    /// Peer groups: the agent's family (its id with numbers collapsed) and its declared kind.
    groups: [u64; 2],
    /// The declared kind, as first seen (kept for checkpoints).
    kind: Option<Box<str>>,
    profile: AgentProfile,
    /// What it did with its grants.
    ledger: Ledger,
    /// Its behaviour profile, accumulated until it is assigned to a learned peer group.
    behaviour: Behaviour,
    /// The learned peer group it was assigned to.
    learned: Option<Learned>,
    /// Its state changed since the last [`Engine::take_touched`].
    touched: bool,
}

/// An agent's learned peer group.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Learned {
    /// The model that assigned it ([`Model::id`]).
    model: u64,
    /// The group.
    group: u16,
    /// The group's fleet key.
    key: u64,
}

/// An agent's checkpointed state.
#[derive(serde::Serialize, serde::Deserialize)]
struct AgentState {
    profile: Vec<u8>,
    ledger: Ledger,
    behaviour: Behaviour,
    learned: Option<Learned>,
}

/// Running counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Events processed.
    pub events: u64,
    /// Events at or above the finding threshold.
    pub anomalous: u64,
    /// Events that arrived later than the allowed lateness.
    pub late: u64,
    /// Findings emitted.
    pub findings: u64,
    /// Anomalous events not reported again (same agent, detectors and pattern within the
    /// repeat window).
    pub repeats: u64,
    /// Recommendations emitted.
    pub recommendations: u64,
    /// Commands issued.
    pub commands: u64,
    /// Commands policy wanted but withheld (learning period, cool-down, circuit breaker).
    pub commands_withheld: u64,
    /// Times the circuit breaker opened.
    pub breaker_trips: u64,
    /// Whether the circuit breaker is open.
    pub breaker_open: bool,
    /// Anomalous events hidden by suppressions.
    pub suppressed: u64,
}

/// The detection engine for a set of agents.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    cap: Capacity,
    decay: Decay,
    /// Boxed, so the table holds a pointer per agent (and grows by moving pointers).
    agents: FxHashMap<Box<str>, Box<Agent>>,
    fleet: Fleet,
    decider: Decider,
    watermark_ms: i64,
    stats: EngineStats,
    /// Whether [`Engine::import_shared`] restored the fleet, which then already counts the
    /// agents imported after it.
    shared_restored: bool,
    /// Entitlements (shared, reloadable).
    ents: SharedEntitlements,
    /// The key that signs commands (an ephemeral one is made at the first command if unset).
    signer: Option<Arc<Signer>>,
    /// Event time of the next recommendation review.
    next_review_ms: i64,
    /// Feedback waiting for its event time.
    feedback: VecDeque<Feedback>,
    /// The learned model in force, if any (shared, reloadable).
    model: SharedModel,
    /// Whether to keep the feature vector of the last event (for training).
    tap: bool,
    /// The feature vector of the last event, when a model is in force or the tap is on and the
    /// agent is past its learning period.
    last_features: Option<[f32; EVENT_DIM]>,
    /// The detectors' fusion weights, looked up once.
    weights: [f32; detect::DetectorId::ALL.len()],
    /// Whether the `model` detector takes part in the fusion (else its rarity is not computed).
    model_detector: bool,
    /// Whether every verdict's reasons are explained, or only those that reach a finding.
    explain_all: bool,
}

/// What an engine holds beyond its agents' profiles: fleet knowledge, open findings and the
/// event-time watermark (serialised by [`Engine::export_shared`]).
#[derive(serde::Serialize)]
struct SharedRef<'a> {
    fleet: &'a Fleet,
    decider: &'a Decider,
    watermark_ms: i64,
    next_review_ms: i64,
}

#[derive(serde::Deserialize)]
struct SharedOwned {
    fleet: Fleet,
    decider: Decider,
    watermark_ms: i64,
    next_review_ms: i64,
}

impl Engine {
    /// An engine with validated settings.
    pub fn new(settings: Settings) -> Self {
        let cap = Capacity::for_bytes(settings.profile.max_bytes_per_agent);
        let decay = Decay::with_half_life_days(settings.profile.half_life_days);
        let settings_weights = settings.detect.weights_table();
        let model_detector = settings.detect.weight(detect::DetectorId::Model) > 0.0;
        Engine {
            settings,
            cap,
            decay,
            agents: FxHashMap::default(),
            fleet: Fleet::default(),
            decider: Decider::default(),
            watermark_ms: i64::MIN,
            stats: EngineStats::default(),
            shared_restored: false,
            ents: crate::grants::shared(Entitlements::default()),
            signer: None,
            next_review_ms: i64::MIN,
            feedback: VecDeque::new(),
            model: crate::ml::shared(None::<Model>),
            tap: false,
            last_features: None,
            model_detector,
            weights: settings_weights,
            explain_all: true,
        }
    }

    /// Whether every verdict [`Engine::process`] returns has its reasons explained (the
    /// default), or only the reasons findings quote (of a verdict that reaches the finding
    /// threshold, those its finding keeps: each detector's strongest). Turn it off when verdicts
    /// are not written anywhere (no score lines): formatting sentences nobody reads is most of
    /// the cost of an unusual event.
    pub fn set_explain_all(&mut self, on: bool) {
        self.explain_all = on;
    }

    /// Uses this learned model (shared with other engines; replaced whole on reload).
    pub fn set_model(&mut self, model: SharedModel) {
        self.model = model;
    }

    /// Keeps the event-model features of each event, for [`Engine::last_features`].
    pub fn set_feature_tap(&mut self, on: bool) {
        self.tap = on;
    }

    /// The event-model features of the last event processed (with a model in force or the
    /// feature tap on, for an agent past its learning period).
    pub fn last_features(&self) -> Option<&[f32; EVENT_DIM]> {
        self.last_features.as_ref()
    }

    /// The learned peer group of an agent, under the model in force.
    pub fn learned_group(&self, agent_id: &str) -> Option<u16> {
        let model = self.model.load();
        let id = model.as_ref()?.id();
        self.agents
            .get(agent_id)?
            .learned
            .filter(|l| l.model == id)
            .map(|l| l.group)
    }

    /// Uses these entitlements (shared with other engines; replaced whole on reload).
    pub fn set_entitlements(&mut self, ents: SharedEntitlements) {
        self.ents = ents;
    }

    /// Signs commands with this key.
    pub fn set_signer(&mut self, signer: Arc<Signer>) {
        self.signer = Some(signer);
    }

    /// The key that signs commands, if one is set or was made.
    pub fn signer(&self) -> Option<&Arc<Signer>> {
        self.signer.as_ref()
    }

    /// Queues analyst feedback. Feedback with a time takes effect once the event at that time
    /// has been processed; feedback without one after the next event.
    pub fn add_feedback(&mut self, fb: Feedback) {
        let at = fb.time_ms.unwrap_or(i64::MIN);
        let i = self
            .feedback
            .partition_point(|f| f.time_ms.unwrap_or(i64::MIN) <= at);
        self.feedback.insert(i, fb);
    }

    /// Whether feedback naming this finding of this agent belongs to this engine.
    pub fn knows_finding(&self, agent_id: &str, finding_id: &str) -> bool {
        self.decider.suppressions.knows(agent_id, finding_id)
    }

    /// The suppressions in force.
    pub fn suppressions(&self) -> Vec<&Suppression> {
        self.decider.suppressions.list()
    }

    fn apply_feedback(&mut self, now: i64, out: &mut Vec<OutputRecord>) {
        while self
            .feedback
            .front()
            .is_some_and(|f| f.time_ms.is_none_or(|t| t <= now))
        {
            if let Some(fb) = self.feedback.pop_front() {
                self.decider.suppressions.apply(
                    &fb,
                    now,
                    self.settings.feedback.suppression_days,
                    out,
                );
            }
        }
    }

    /// Reviews the grants of every agent with known entitlements, in agent order.
    fn review(&mut self, now: i64, out: &mut Vec<OutputRecord>) {
        let ents = self.ents.load();
        let mut ids: Vec<&Box<str>> = self
            .agents
            .keys()
            .filter(|a| ents.agent(a).is_some())
            .collect();
        ids.sort_unstable();
        let ids: Vec<Box<str>> = ids.into_iter().cloned().collect();
        let families = self.family_use(None);
        let none = recommend::Peers::default();
        for id in ids {
            if let (Some(grants), Some(a)) = (ents.agent(&id), self.agents.get_mut(&id)) {
                let peers = families.get(&a.groups[0]).unwrap_or(&none);
                let before = out.len();
                recommend::review(
                    &id,
                    grants,
                    peers,
                    &mut a.ledger,
                    now,
                    &self.settings.grants,
                    out,
                );
                if out.len() > before {
                    // Its ledger now remembers the emission: checkpoint it with the rest.
                    a.touched = true;
                }
            }
        }
    }

    /// What the agents of each family (or of `only` that one) did under each grant.
    fn family_use(&self, only: Option<u64>) -> FxHashMap<u64, recommend::Peers> {
        let mut families: FxHashMap<u64, recommend::Peers> = FxHashMap::default();
        for a in self.agents.values() {
            if only.is_some_and(|f| f != a.groups[0]) {
                continue;
            }
            let peers = families.entry(a.groups[0]).or_default();
            for u in a.ledger.grants() {
                peers.entry(u.grant.as_ref().into()).or_default().add(u);
            }
        }
        families
    }

    /// High-priority recommendations for the grants used by findings just closed.
    fn after_findings(&mut self, records: &[OutputRecord], out: &mut Vec<OutputRecord>) {
        let ents = self.ents.load();
        for r in records {
            let OutputRecord::Finding(f) = r else {
                continue;
            };
            let (Some(grants), Some(family)) = (
                ents.agent(&f.agent_id),
                self.agents.get(f.agent_id.as_str()).map(|a| a.groups[0]),
            ) else {
                continue;
            };
            let peers = self
                .family_use(Some(family))
                .remove(&family)
                .unwrap_or_default();
            let Some(a) = self.agents.get_mut(f.agent_id.as_str()) else {
                continue;
            };
            let before = out.len();
            for g in &f.grants {
                recommend::after_finding(
                    &f.agent_id,
                    grants,
                    g,
                    &f.finding_id,
                    &f.resources,
                    &peers,
                    &mut a.ledger,
                    f.last_ms,
                    &self.settings.grants,
                    out,
                );
            }
            if out.len() > before {
                a.touched = true;
            }
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Counts so far.
    pub fn stats(&self) -> EngineStats {
        let d = &self.decider;
        EngineStats {
            repeats: d.repeats,
            commands: d.responder.issued,
            commands_withheld: d.responder.withheld,
            breaker_trips: d.responder.breaker.opened,
            breaker_open: d.responder.breaker.is_open(),
            suppressed: d.suppressions.hidden_events,
            ..self.stats.clone()
        }
    }

    /// Number of agents tracked.
    pub fn agents(&self) -> usize {
        self.agents.len()
    }

    /// Scores one event, learns from it, and appends any records it completes to `out`.
    pub fn process(&mut self, ev: &AccessEvent<'_>, out: &mut Vec<OutputRecord>) -> Verdict {
        let before = out.len();
        let now = crate::profile::counter::minute_of(ev.time_ms);
        if ev.time_ms > self.watermark_ms {
            self.watermark_ms = ev.time_ms;
            self.fleet
                .advance(now, self.settings.detect.fleet_tick_secs / 60);
            self.decider
                .advance(&self.settings.decide, self.watermark_ms, out);
            self.decider.responder.breaker.tick(self.watermark_ms, out);
            self.decider.suppressions.expire(self.watermark_ms, out);
            let interval = self.settings.grants.recommend_interval_secs as i64 * 1000;
            if self.next_review_ms == i64::MIN {
                self.next_review_ms = (ev.time_ms.div_euclid(interval) + 1) * interval;
            } else if ev.time_ms >= self.next_review_ms {
                self.review(self.next_review_ms, out);
                self.next_review_ms = (ev.time_ms.div_euclid(interval) + 1) * interval;
            }
        }
        let ents = self.ents.load();
        let grants = ents.agent(&ev.agent_id);
        let keys = EventKeys::of(ev);
        let agent = match self.agents.get_mut(ev.agent_id.as_ref()) {
            Some(a) => a,
            None => {
                let a = new_agent(ev, &self.cap, now);
                self.fleet.new_agent(&a.groups);
                self.agents.entry(ev.agent_id.as_ref().into()).or_insert(a)
            }
        };
        agent.touched = true;
        let obs = agent.profile.observe(
            &keys,
            ev.bytes.unwrap_or(0),
            &self.settings.profile,
            &self.cap,
            self.settings.detect.window_secs.div_ceil(60),
            self.decay,
        );
        let model_guard = self.model.load();
        let model = model_guard.as_deref();
        let learned = match model {
            Some(m) => learned_group(agent, m, ev, &keys, &self.settings.ml, &mut self.fleet),
            None => None,
        };
        let snap = &self.fleet.snapshot;
        let min_group = self.settings.detect.min_peer_group;
        // Peers: the agent's family, then its learned group, then its declared kind.
        let group = [
            Some(agent.groups[0]),
            learned.map(|l| l.key),
            Some(agent.groups[1]),
        ]
        .into_iter()
        .flatten()
        .filter_map(|g| snap.group(g))
        .find(|g| g.agents >= min_group);
        let learned_group = learned.map(|l| l.group);
        // The model judges (and learns from) agents past their learning period: its features
        // include how familiar the agent is with what it does, which says nothing while
        // everything is new.
        self.last_features =
            ((model.is_some() || self.tap) && obs.maturity >= 1.0).then(|| event_vector(ev, &obs));
        let model_view = model
            .filter(|_| self.model_detector)
            .zip(self.last_features)
            .map(|(m, f)| ModelView {
                model: m,
                rarity: m.rarity(learned_group, &f),
                features: f,
                from: self.settings.ml.rarity_from,
                full: self.settings.ml.rarity_full,
            });
        let destination = keys.destination.then(|| {
            let dest = key(ns::PREFIX, keys.prefix());
            let since: Minute = now.saturating_sub(7 * 1440);
            snap.destination(dest)
                .map_or((0, 0), |d| (d.agents, d.recent_others(agent.key, since)))
        });
        let ctx = Ctx {
            ev,
            keys: &keys,
            obs: &obs,
            peers: PeerView {
                group,
                fleet_agents: snap.agents,
                fleet_days: snap.days(now),
                destination,
            },
            settings: &self.settings.detect,
            weights: &self.weights,
            model: model_view,
        };
        let mut verdict = detect::evaluate(&ctx);
        if let Some(m) = model
            && self.settings.ml.calibrate
        {
            verdict.score = m.calibrate(learned_group, verdict.score);
            verdict.without_model = m.calibrate(learned_group, verdict.without_model);
        }
        let threshold = self.settings.decide.finding_threshold;
        if verdict.without_model < threshold && verdict.score >= threshold {
            // The learned model ranks and corroborates, but cannot open a finding by itself,
            // calibrated or not.
            verdict.score = detect::round4(threshold - 1e-4);
        }
        if verdict.score >= threshold {
            verdict.reach = detect::novelty::reach(&ctx, self.settings.commands.reach_peer_share);
        }
        if self.explain_all || verdict.score >= threshold {
            // Without score lines, only the reasons its finding keeps: all of them when the
            // event opens one, else those stronger than the open finding's.
            let open = if self.explain_all {
                None
            } else {
                self.decider
                    .joinable(&self.settings.decide, &ev.agent_id, ev.time_ms)
            };
            detect::explain_reasons(&mut verdict, &ctx, |r| open.is_none_or(|f| f.keeps(r)));
        }
        let grant = match grants {
            Some(g) => g.attribute(ev.grant.as_deref(), &ev.action, &ev.resource),
            None => ev.grant.as_deref(),
        };
        let fresh = grant.is_some_and(|g| agent.ledger.normal_uses(g) == 0);
        let disposition = self.decider.on_event(
            &self.settings.decide,
            ev,
            &keys.pattern,
            &verdict,
            grant,
            fresh,
            out,
        );

        // Fleet knowledge: first uses and new destinations, applied at the next tick.
        for (kind, lookup, k) in [
            (UseKind::Action, obs.action, keys.action),
            (UseKind::Pattern, obs.pattern, keys.pattern_id),
            (UseKind::Prefix, obs.prefix, keys.prefix_id),
        ]
        .into_iter()
        .chain(obs.names.iter().map(|&(k, l)| (UseKind::Name, l, k)))
        {
            if !lookup.seen {
                for group in agent.groups.into_iter().chain(learned.map(|l| l.key)) {
                    self.fleet.record(Delta::FirstUse {
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
                    for group in agent.groups.into_iter().chain(learned.map(|l| l.key)) {
                        self.fleet.record(Delta::FirstUse {
                            group,
                            kind,
                            key: crate::profile::keys::pair(i, k),
                        });
                    }
                }
            }
        }
        if keys.destination && obs.prefix.count < 1.0 {
            self.fleet.record(Delta::Destination {
                dest: key(ns::PREFIX, keys.prefix()),
                agent: agent.key,
                minute: now,
            });
        }

        // What the baseline learns is decided by the statistical detectors alone, so a model
        // never changes the agent's own baseline.
        let judged = verdict.without_model.min(verdict.score);
        let pace = if judged < self.settings.detect.learn_below
            || disposition == Disposition::Suppressed
        {
            Learning::Full
        } else if judged < self.settings.decide.finding_threshold {
            Learning::Provisional
        } else {
            Learning::Slow
        };
        agent
            .profile
            .learn(&keys, ev.bytes, &obs, pace, &self.cap, self.decay);
        let anomalous = verdict.score >= self.settings.decide.finding_threshold;
        agent.ledger.observe(ev.time_ms);
        match grant {
            Some(g) => agent.ledger.record(&Use {
                grant: g,
                time_ms: ev.time_ms,
                action: (keys.action, &ev.action),
                pattern: (keys.pattern_id, &keys.pattern),
                intent: keys.intent.zip(ev.intent.as_deref()),
                anomalous: anomalous && disposition != Disposition::Suppressed,
            }),
            None if grants.is_some() => agent.ledger.uncovered += 1,
            None => {}
        }
        let (agent_key, mature) = (agent.key, obs.maturity >= 1.0);

        if disposition == Disposition::Reported && self.settings.commands.enabled {
            let signer = self
                .signer
                .get_or_insert_with(|| Arc::new(Signer::generate()))
                .clone();
            let agents = &self.agents;
            self.decider.respond(
                &self.settings,
                &ev.agent_id,
                &AgentFacts {
                    key: agent_key,
                    mature,
                    grants,
                },
                (&ev.event_id, ev.time_ms),
                |since| {
                    agents
                        .values()
                        .filter(|a| a.ledger.last_ms >= since)
                        .count()
                },
                &signer,
                out,
            );
        }

        self.stats.events += 1;
        if obs.late {
            self.stats.late += 1;
        }
        if anomalous {
            self.stats.anomalous += 1;
        }
        drop(ents);
        drop(model_guard);
        if !self.feedback.is_empty() {
            self.apply_feedback(self.watermark_ms, out);
        }
        self.after_decisions(before, out);
        verdict
    }

    fn after_decisions(&mut self, before: usize, out: &mut Vec<OutputRecord>) {
        if out.len() > before {
            let new: Vec<OutputRecord> = out[before..]
                .iter()
                .filter(|r| matches!(r, OutputRecord::Finding(f) if !f.grants.is_empty()))
                .cloned()
                .collect();
            if !new.is_empty() {
                self.after_findings(&new, out);
            }
            for r in &out[before..] {
                match r {
                    OutputRecord::Finding(_) => self.stats.findings += 1,
                    OutputRecord::Recommendation(_) => self.stats.recommendations += 1,
                    _ => {}
                }
            }
        }
    }

    /// Closes everything still open (end of input or shutdown), reviews every agent's grants,
    /// and appends the records.
    pub fn finish(&mut self, out: &mut Vec<OutputRecord>) {
        let before = out.len();
        self.decider.finish(&self.settings.decide, out);
        if self.watermark_ms != i64::MIN {
            self.after_decisions(before, out);
            let before = out.len();
            self.review(self.watermark_ms, out);
            self.after_decisions(before, out);
        }
    }

    /// The serialised state of an agent (for checkpoints), if tracked. Restore it with
    /// [`Engine::import_agent`], together with [`Engine::agent_kind`].
    pub fn export_agent(&self, agent_id: &str) -> Option<Vec<u8>> {
        self.agents.get(agent_id).and_then(|a| {
            postcard::to_stdvec(&AgentState {
                profile: a.profile.to_bytes(),
                ledger: a.ledger.clone(),
                behaviour: a.behaviour.clone(),
                learned: a.learned,
            })
            .ok()
        })
    }

    /// The declared kind of a tracked agent, as first seen.
    pub fn agent_kind(&self, agent_id: &str) -> Option<&str> {
        self.agents.get(agent_id).and_then(|a| a.kind.as_deref())
    }

    /// Restores an agent's state exported by [`Engine::export_agent`], replacing any state the
    /// engine holds for it. Its peer groups are recomputed from the id and kind.
    pub fn import_agent(
        &mut self,
        agent_id: &str,
        kind: Option<&str>,
        bytes: &[u8],
    ) -> Result<(), postcard::Error> {
        let state: AgentState = postcard::from_bytes(bytes)?;
        let profile = AgentProfile::from_bytes(&state.profile)?;
        let (agent_key, groups) = identity(agent_id, kind);
        let mut agent = Box::new(Agent {
            key: agent_key,
            groups,
            kind: kind.map(Into::into),
            profile,
            ledger: state.ledger,
            behaviour: state.behaviour,
            learned: state.learned,
            touched: false,
        });
        let replaced = self.agents.remove(agent_id);
        agent.touched = replaced.as_ref().is_some_and(|a| a.touched);
        if self.agents.insert(agent_id.into(), agent).is_none()
            && replaced.is_none()
            && !self.shared_restored
        {
            self.fleet.new_agent(&groups);
            if let Some(l) = state.learned {
                self.fleet.join(l.key);
            }
        }
        Ok(())
    }

    /// The serialised state shared by the engine's agents: fleet knowledge, open findings and
    /// repeat memory, and the event-time watermark. With [`Engine::export_agent`] of every
    /// agent it is the engine's whole state.
    pub fn export_shared(&self) -> Vec<u8> {
        postcard::to_stdvec(&SharedRef {
            fleet: &self.fleet,
            decider: &self.decider,
            watermark_ms: self.watermark_ms,
            next_review_ms: self.next_review_ms,
        })
        .unwrap_or_default()
    }

    /// Restores state exported by [`Engine::export_shared`]. Call it before importing the
    /// agents, which the restored fleet already counts.
    pub fn import_shared(&mut self, bytes: &[u8]) -> Result<(), postcard::Error> {
        let s: SharedOwned = postcard::from_bytes(bytes)?;
        self.fleet = s.fleet;
        self.decider = s.decider;
        self.watermark_ms = s.watermark_ms;
        self.next_review_ms = s.next_review_ms;
        self.shared_restored = true;
        Ok(())
    }

    /// The agents whose state changed since the last call (for incremental checkpoints).
    pub fn take_touched(&mut self) -> Vec<Box<str>> {
        let mut v: Vec<Box<str>> = self
            .agents
            .iter_mut()
            .filter(|(_, a)| a.touched)
            .map(|(id, a)| {
                a.touched = false;
                id.clone()
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Approximate memory held by all agent profiles, in bytes.
    pub fn state_bytes(&self) -> usize {
        self.agents
            .values()
            .map(|a| a.profile.allocated_bytes())
            .sum()
    }
}

/// An agent's key and peer groups: its family (its id with numbers collapsed) and its kind.
fn identity(agent_id: &str, kind: Option<&str>) -> (u64, [u64; 2]) {
    let family = generalise(agent_id);
    let kind = kind.unwrap_or("unknown");
    (
        key(ns::GROUP, agent_id),
        [
            key(ns::GROUP, &format!("family:{family}")),
            key(ns::GROUP, &format!("kind:{kind}")),
        ],
    )
}

fn new_agent(ev: &AccessEvent<'_>, cap: &Capacity, now: Minute) -> Box<Agent> {
    let (agent_key, groups) = identity(&ev.agent_id, ev.agent_kind.as_deref());
    Box::new(Agent {
        key: agent_key,
        groups,
        kind: ev.agent_kind.as_deref().map(Into::into),
        profile: AgentProfile::new(cap, now),
        ledger: Ledger::default(),
        behaviour: Behaviour::default(),
        learned: None,
        touched: false,
    })
}

/// The agent's learned peer group under `model`: kept while the model that assigned it is in
/// force; otherwise its behaviour is accumulated until it has enough history, and it then joins
/// the nearest group, bringing what it is known to use into the group's statistics.
fn learned_group(
    agent: &mut Agent,
    model: &Model,
    ev: &AccessEvent<'_>,
    keys: &EventKeys<'_>,
    settings: &crate::config::MlSettings,
    fleet: &mut Fleet,
) -> Option<Learned> {
    if let Some(l) = agent.learned
        && l.model == model.id()
    {
        return Some(l);
    }
    if !agent.behaviour.ready(settings) {
        agent.behaviour.add(ev, keys);
        if !agent.behaviour.ready(settings) {
            return None;
        }
    }
    let group = model.assign(&agent.behaviour.vector());
    let l = Learned {
        model: model.id(),
        group,
        key: model.group_key(group),
    };
    agent.learned = Some(l);
    fleet.join(l.key);
    for (kind, key) in agent.profile.known_uses() {
        fleet.record(Delta::FirstUse {
            group: l.key,
            kind,
            key,
        });
    }
    Some(l)
}
