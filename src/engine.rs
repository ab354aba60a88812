//! The pure pipeline: profile -> detect -> decide, for decoded events.
//!
//! Synchronous, deterministic and driven by event time: no I/O, no wall clock, no global state.
//! Drivers (replay over files, the Kafka consumer, the embedded demo) feed it decoded events and
//! deliver what it returns.

use rustc_hash::FxHashMap;

use crate::config::Settings;
use crate::decide::Decider;
use crate::detect::{self, Ctx, PeerView, Verdict};
use crate::event::AccessEvent;
use crate::fleet::{Delta, Fleet, UseKind};
use crate::output::OutputRecord;
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
}

/// The detection engine for a set of agents.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    cap: Capacity,
    decay: Decay,
    agents: FxHashMap<Box<str>, Agent>,
    fleet: Fleet,
    decider: Decider,
    watermark_ms: i64,
    stats: EngineStats,
    /// Agents whose state changed since the last [`Engine::take_touched`].
    touched: rustc_hash::FxHashSet<Box<str>>,
    /// Whether [`Engine::import_shared`] restored the fleet, which then already counts the
    /// agents imported after it.
    shared_restored: bool,
}

/// What an engine holds beyond its agents' profiles: fleet knowledge, open findings and the
/// event-time watermark (serialised by [`Engine::export_shared`]).
#[derive(serde::Serialize)]
struct SharedRef<'a> {
    fleet: &'a Fleet,
    decider: &'a Decider,
    watermark_ms: i64,
}

#[derive(serde::Deserialize)]
struct SharedOwned {
    fleet: Fleet,
    decider: Decider,
    watermark_ms: i64,
}

impl Engine {
    /// An engine with validated settings.
    pub fn new(settings: Settings) -> Self {
        let cap = Capacity::for_bytes(settings.profile.max_bytes_per_agent);
        let decay = Decay::with_half_life_days(settings.profile.half_life_days);
        Engine {
            settings,
            cap,
            decay,
            agents: FxHashMap::default(),
            fleet: Fleet::default(),
            decider: Decider::default(),
            watermark_ms: i64::MIN,
            stats: EngineStats::default(),
            touched: Default::default(),
            shared_restored: false,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Counts so far.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
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
        }
        let keys = EventKeys::of(ev);
        if !self.touched.contains(ev.agent_id.as_ref()) {
            self.touched.insert(ev.agent_id.as_ref().into());
        }
        let agent = match self.agents.get_mut(ev.agent_id.as_ref()) {
            Some(a) => a,
            None => {
                let a = new_agent(ev, &self.cap, now);
                self.fleet.new_agent(&a.groups);
                self.agents.entry(ev.agent_id.as_ref().into()).or_insert(a)
            }
        };
        let obs = agent.profile.observe(
            &keys,
            ev.bytes.unwrap_or(0),
            &self.settings.profile,
            &self.cap,
            self.settings.detect.window_secs.div_ceil(60),
            self.decay,
        );
        let snap = &self.fleet.snapshot;
        let min_group = self.settings.detect.min_peer_group;
        let group = agent
            .groups
            .iter()
            .filter_map(|g| snap.group(*g))
            .find(|g| g.agents >= min_group);
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
        };
        let verdict = detect::evaluate(&ctx);

        // Fleet knowledge: first uses and new destinations, applied at the next tick.
        for (kind, lookup, k) in [
            (UseKind::Action, obs.action, keys.action),
            (UseKind::Pattern, obs.pattern, keys.pattern_id),
            (UseKind::Prefix, obs.prefix, keys.prefix_id),
        ] {
            if !lookup.seen {
                for &group in &agent.groups {
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
                    for &group in &agent.groups {
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

        let pace = if verdict.score < self.settings.detect.learn_below {
            Learning::Full
        } else if verdict.score < self.settings.decide.finding_threshold {
            Learning::Provisional
        } else {
            Learning::Slow
        };
        agent
            .profile
            .learn(&keys, ev.bytes, &obs, pace, &self.cap, self.decay);

        self.stats.events += 1;
        if obs.late {
            self.stats.late += 1;
        }
        if verdict.score >= self.settings.decide.finding_threshold {
            self.stats.anomalous += 1;
        }
        self.decider
            .on_event(&self.settings.decide, ev, &keys.pattern, &verdict, out);
        self.stats.repeats = self.decider.repeats;
        self.stats.findings += count_findings(&out[before..]);
        verdict
    }

    /// Closes everything still open (end of input or shutdown) and appends the records.
    pub fn finish(&mut self, out: &mut Vec<OutputRecord>) {
        let before = out.len();
        self.decider.finish(&self.settings.decide, out);
        self.stats.findings += count_findings(&out[before..]);
    }

    /// The serialised state of an agent (for checkpoints), if tracked. Restore it with
    /// [`Engine::import_agent`], together with [`Engine::agent_kind`].
    pub fn export_agent(&self, agent_id: &str) -> Option<Vec<u8>> {
        self.agents.get(agent_id).map(|a| a.profile.to_bytes())
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
        let profile = AgentProfile::from_bytes(bytes)?;
        let (agent_key, groups) = identity(agent_id, kind);
        let agent = Agent {
            key: agent_key,
            groups,
            kind: kind.map(Into::into),
            profile,
        };
        if self.agents.insert(agent_id.into(), agent).is_none() && !self.shared_restored {
            self.fleet.new_agent(&groups);
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
        self.shared_restored = true;
        Ok(())
    }

    /// The agents whose state changed since the last call (for incremental checkpoints).
    pub fn take_touched(&mut self) -> Vec<Box<str>> {
        let mut v: Vec<Box<str>> = self.touched.drain().collect();
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

fn count_findings(records: &[OutputRecord]) -> u64 {
    records
        .iter()
        .filter(|r| matches!(r, OutputRecord::Finding(_)))
        .count() as u64
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

fn new_agent(ev: &AccessEvent<'_>, cap: &Capacity, now: Minute) -> Agent {
    let (agent_key, groups) = identity(&ev.agent_id, ev.agent_kind.as_deref());
    Agent {
        key: agent_key,
        groups,
        kind: ev.agent_kind.as_deref().map(Into::into),
        profile: AgentProfile::new(cap, now),
    }
}
