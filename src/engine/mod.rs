//! The pure pipeline: profile -> detect -> decide, for decoded events.
//!
//! Synchronous, deterministic and driven by event time: no I/O, no wall clock, no randomness,
//! no global state. Drivers (replay over files, the Kafka consumer, the embedded demo) feed it
//! decoded events and deliver what it returns; the model, the entitlements and the signing key
//! are handed in between events, so what an event sees never depends on timing.
//!
//! ```text
//! mod.rs    the engine's state, what it is handed, counts and checkpoints
//! event.rs  the per-event path: observe, score, decide, share with the fleet, learn, respond
//! tick.rs   the clock: what runs when event time moves on; feedback; grant reviews
//! agent.rs  one agent's state and its checkpoint
//! partitioned.rs  engines per partition, routed as Kafka does, sharing fleet knowledge
//! ```

mod agent;
mod event;
mod partitioned;
mod tick;
mod tools;

pub use partitioned::{Partitioned, partition_of};

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::config::Settings;
use crate::decide::Decider;
use crate::decide::suppress::{Feedback, Suppression};
use crate::fleet::Fleet;
use crate::grants::Entitlements;
use crate::ml::{EVENT_DIM, Model};
use crate::output::OutputRecord;
use crate::output::sign::Signer;
use crate::profile::Capacity;
use crate::profile::counter::{Decay, minute_of};
use crate::profile::keys::KeyCache;
use agent::Agent;

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
    /// Held findings not emitted because the agent's peers took up the same new actions (a
    /// roll-out).
    pub absorbed: u64,
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
    /// Agents evicted from memory after `profile.evict_idle_days` without an event.
    pub evicted: u64,
}

impl EngineStats {
    /// Adds another engine's counts (the breaker is open when either's is).
    pub fn add(&mut self, o: &EngineStats) {
        self.events += o.events;
        self.anomalous += o.anomalous;
        self.late += o.late;
        self.findings += o.findings;
        self.repeats += o.repeats;
        self.absorbed += o.absorbed;
        self.recommendations += o.recommendations;
        self.commands += o.commands;
        self.commands_withheld += o.commands_withheld;
        self.breaker_trips += o.breaker_trips;
        self.breaker_open |= o.breaker_open;
        self.suppressed += o.suppressed;
        self.evicted += o.evicted;
    }
}

/// The detection engine for a set of agents.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    cap: Capacity,
    decay: Decay,
    /// Boxed, so the table holds a pointer per agent (and grows by moving pointers).
    agents: FxHashMap<Box<str>, Box<Agent>>,
    /// The keys of agents evicted while idle: the fleet already counts them, so a returning
    /// one is not counted again.
    evicted: FxHashSet<u64>,
    pub(crate) fleet: Fleet,
    decider: Decider,
    watermark_ms: i64,
    stats: EngineStats,
    /// Whether [`Engine::import_shared`] restored the fleet, which then already counts the
    /// agents imported after it.
    shared_restored: bool,
    /// Entitlements, replaced whole between events.
    ents: Arc<Entitlements>,
    /// The key that signs commands; without one no command is issued.
    signer: Option<Arc<Signer>>,
    /// Event time of the next recommendation review.
    next_review_ms: i64,
    /// Feedback waiting for its event time.
    feedback: VecDeque<Feedback>,
    /// The learned model in force, if any, replaced whole between events.
    model: Option<Arc<Model>>,
    /// Whether to keep the feature vector of the last event (for training).
    tap: bool,
    /// The feature vector of the last event, when a model is in force or the tap is on and the
    /// agent is past its learning period.
    last_features: Option<[f32; EVENT_DIM]>,
    /// The detectors' fusion weights, looked up once.
    weights: [f32; crate::vocab::DetectorId::ALL.len()],
    /// Whether the `model` detector takes part in the fusion (else its rarity is not computed).
    model_detector: bool,
    /// Whether every verdict's reasons are explained, or only those that reach a finding.
    explain_all: bool,
    /// The effects of tools configured in `tools.effects`.
    effects: tools::EffectTable,
    /// What the keys of recent resources took from them.
    key_cache: KeyCache,
}

/// What an engine holds beyond its agents' profiles: fleet knowledge, open findings and the
/// event-time watermark (serialised by [`Engine::export_shared`]).
#[derive(serde::Serialize)]
struct SharedRef<'a> {
    fleet: &'a Fleet,
    evicted: &'a FxHashSet<u64>,
    decider: &'a Decider,
    watermark_ms: i64,
    next_review_ms: i64,
}

#[derive(serde::Deserialize)]
struct SharedOwned {
    fleet: Fleet,
    evicted: FxHashSet<u64>,
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
        let model_detector = settings.detect.weight(crate::vocab::DetectorId::Model) > 0.0;
        let effects = tools::EffectTable::new(&settings.tools);
        Engine {
            settings,
            cap,
            decay,
            agents: FxHashMap::default(),
            evicted: FxHashSet::default(),
            fleet: Fleet::default(),
            decider: Decider::default(),
            watermark_ms: i64::MIN,
            stats: EngineStats::default(),
            shared_restored: false,
            ents: Arc::new(Entitlements::default()),
            signer: None,
            next_review_ms: i64::MIN,
            feedback: VecDeque::new(),
            model: None,
            tap: false,
            last_features: None,
            model_detector,
            weights: settings_weights,
            explain_all: true,
            effects,
            key_cache: KeyCache::default(),
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

    /// Uses this learned model from the next event on (`None`: no model).
    pub fn set_model(&mut self, model: Option<Arc<Model>>) {
        self.model = model;
    }

    /// The learned model in force.
    pub fn model(&self) -> Option<&Arc<Model>> {
        self.model.as_ref()
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
        let id = self.model.as_ref()?.id();
        self.agents
            .get(agent_id)?
            .learned
            .filter(|l| l.model == id)
            .map(|l| l.group)
    }

    /// Uses these entitlements from the next event on.
    pub fn set_entitlements(&mut self, ents: Arc<Entitlements>) {
        self.ents = ents;
    }

    /// The entitlements in force.
    pub fn entitlements(&self) -> &Arc<Entitlements> {
        &self.ents
    }

    /// Signs commands with this key (without one, no command is issued).
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

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Counts so far.
    pub fn stats(&self) -> EngineStats {
        let d = &self.decider;
        EngineStats {
            repeats: d.repeats,
            absorbed: d.absorbed,
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

    /// Closes everything still open (end of input or shutdown), reviews every agent's grants,
    /// and appends the records.
    pub fn finish(&mut self, out: &mut Vec<OutputRecord>) {
        let before = out.len();
        let closing = crate::decide::Closing::new(&self.settings.commands, &self.fleet.snapshot);
        self.decider
            .finish(&self.settings.decide, &closing, self.watermark_ms, out);
        if self.watermark_ms != i64::MIN {
            self.after_decisions(before, out);
            let before = out.len();
            self.review(self.watermark_ms, out);
            self.after_decisions(before, out);
        }
    }

    /// The serialised state of an agent (for checkpoints), if tracked. Restore it with
    /// [`Engine::import_agent`], together with [`Engine::agent_kind`].
    pub fn export_agent(&self, agent_id: &str) -> Option<Result<Vec<u8>, postcard::Error>> {
        self.agents.get(agent_id).map(|a| a.export())
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
        let mut agent = Agent::import(agent_id, kind, bytes)?;
        if self.shared_restored && self.idle_at_watermark(&agent) {
            // Evicted at the restored watermark, as the engine that wrote the state did (or
            // would have, at its next hour): the fleet already counts it.
            self.evicted.insert(agent.key);
            return Ok(());
        }
        let (groups, learned) = (agent.groups, agent.learned);
        // A restored agent replacing one already held keeps its pending checkpoint.
        let replaced = self.agents.remove(agent_id);
        agent.touched = replaced.as_ref().is_some_and(|a| a.touched);
        if replaced.is_none() && !self.shared_restored {
            self.fleet.new_agent(&groups);
            if let Some(l) = learned {
                self.fleet.join(l.key);
            }
        }
        self.agents.insert(agent_id.into(), agent);
        Ok(())
    }

    /// The serialised state shared by the engine's agents: fleet knowledge, open findings and
    /// repeat memory, and the event-time watermark. With [`Engine::export_agent`] of every
    /// agent it is the engine's whole state.
    pub fn export_shared(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_stdvec(&SharedRef {
            evicted: &self.evicted,
            fleet: &self.fleet,
            decider: &self.decider,
            watermark_ms: self.watermark_ms,
            next_review_ms: self.next_review_ms,
        })
    }

    /// Restores state exported by [`Engine::export_shared`]. Call it before importing the
    /// agents, which the restored fleet already counts.
    pub fn import_shared(&mut self, bytes: &[u8]) -> Result<(), postcard::Error> {
        let s: SharedOwned = postcard::from_bytes(bytes)?;
        self.fleet = s.fleet;
        self.evicted = s.evicted;
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

    /// Memory held by the engine's cache of recent resources' keys, in bytes: a fixed cost
    /// (at most 4,096 resources), whatever the number of agents.
    pub fn resource_cache_bytes(&self) -> usize {
        self.key_cache.allocated_bytes()
    }

    /// Approximate memory held by all agent profiles, in bytes.
    pub fn state_bytes(&self) -> usize {
        self.agents
            .values()
            .map(|a| a.profile.allocated_bytes())
            .sum()
    }
}

impl Engine {
    /// Whether `agent` had no event for the eviction time as of the hour of event time the
    /// watermark is in (eviction runs on hours of event time, so live and restored engines
    /// evict the same agents).
    fn idle_at_watermark(&self, agent: &Agent) -> bool {
        let Some(idle) = self.settings.profile.evict_idle_minutes() else {
            return false;
        };
        let hour = minute_of(self.watermark_ms) / 60 * 60;
        hour.saturating_sub(agent.profile.last_minute) >= idle
    }

    /// Evicts every agent idle as of the watermark's hour.
    pub(super) fn evict_idle(&mut self) {
        if self.settings.profile.evict_idle_minutes().is_none() {
            return;
        }
        let idle: Vec<Box<str>> = self
            .agents
            .iter()
            .filter(|(_, a)| self.idle_at_watermark(a))
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            if let Some(a) = self.agents.remove(&id) {
                self.evicted.insert(a.key);
                self.stats.evicted += 1;
            }
        }
    }
}
