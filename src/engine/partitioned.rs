//! Several engines, each holding the agents of one partition, as a Kafka deployment spreads
//! them: events are routed by agent id with the Kafka producer's own partitioner, and fleet
//! knowledge is merged across the engines at every fleet tick (see [`crate::fleet::Exchange`]).

use std::sync::Arc;

use super::{Engine, EngineStats};
use crate::config::Settings;
use crate::decide::suppress::{Feedback, Suppression};
use crate::detect::Verdict;
use crate::event::AccessEvent;
use crate::fleet::{Exchange, Tick, Window};
use crate::grants::Entitlements;
use crate::ml::Model;
use crate::output::OutputRecord;
use crate::output::sign::Signer;
use crate::profile::counter::{Minute, minute_of};

/// The partition a Kafka producer's default partitioner gives a record keyed by `key`, of
/// `partitions` (murmur2 of the key, sign bit cleared, modulo the count).
pub fn partition_of(key: &[u8], partitions: usize) -> usize {
    let hash = murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff;
    hash as usize % partitions.max(1)
}

/// Engines that each hold the agents of one partition: all partitions, or the share of them one
/// thread owns (see [`Partitioned::owning`]).
#[derive(Debug)]
pub struct Partitioned {
    engines: Vec<Engine>,
    /// Number of partitions in all.
    partitions: usize,
    /// For each partition, the index of its engine here, if it is held here.
    local: Vec<Option<usize>>,
    /// When the engines' shared fleet knowledge is due for a merge; `None` when each engine keeps
    /// its own (one partition, or engines that do not share).
    exchange: Option<Exchange>,
    /// Whether every partition is held here, so that [`Partitioned::process`] merges the fleet
    /// knowledge itself.
    whole: bool,
}

impl Partitioned {
    /// `partitions` engines (at least one) with `settings`. With `share_fleet`, fleet knowledge
    /// (peer groups, first uses, destinations) is merged across them at every fleet tick, so an
    /// agent's scores do not depend on the partition it is in; without it each engine knows only
    /// its own partition's agents, as independent instances would.
    pub fn new(settings: Settings, partitions: usize, share_fleet: bool) -> Partitioned {
        Partitioned::owning(settings, partitions, |_| true, share_fleet)
    }

    /// The engines of the partitions (of `partitions` in all) for which `owns` is true. With
    /// `share_fleet` (and more than one partition) their fleets tick only at the exchange: when
    /// every partition is held here, [`Partitioned::process`] runs it; otherwise the caller does,
    /// with [`Partitioned::tick_fleet`] (as threads holding a share of the partitions each do).
    pub fn owning(
        settings: Settings,
        partitions: usize,
        owns: impl Fn(usize) -> bool,
        share_fleet: bool,
    ) -> Partitioned {
        let partitions = partitions.max(1);
        let share = share_fleet && partitions > 1;
        let exchange = share.then(|| Exchange::new(settings.detect.fleet_tick_secs / 60));
        let mut engines = Vec::new();
        let mut local = vec![None; partitions];
        for (p, slot) in local.iter_mut().enumerate() {
            if owns(p) {
                *slot = Some(engines.len());
                let mut e = Engine::new(settings.clone());
                if share {
                    e.fleet.share();
                }
                engines.push(e);
            }
        }
        Partitioned {
            whole: local.iter().all(Option::is_some),
            engines,
            partitions,
            local,
            exchange,
        }
    }

    /// The index of the engine here that holds `agent_id`, if one does.
    pub fn holder(&self, agent_id: &str) -> Option<usize> {
        match self.partitions {
            1 => self.local[0],
            n => self.local[partition_of(agent_id.as_bytes(), n)],
        }
    }

    /// Brings every engine's shared fleet knowledge to the tick that an event at `now`
    /// crosses, if one is due (nothing when the engines do not share). `merge` turns the window
    /// the engines here queued into the window merged across every engine of the fleet, or gives
    /// `None` when that cannot be had (a thread of a threaded replay stopped): the engines then
    /// keep what they know.
    pub fn tick_fleet(&mut self, now: Minute, merge: impl FnOnce(Window) -> Option<Arc<Window>>) {
        let Some(x) = &mut self.exchange else {
            return;
        };
        let end = x.window_end();
        match x.due(now) {
            Some(Tick::Start) => self.engines.iter_mut().for_each(|e| e.fleet.start(now)),
            Some(Tick::Merge) => {
                // A merge follows a start, which set the window's end.
                let boundary = end.unwrap_or(now);
                let here = Window::merge(self.engines.iter_mut().map(|e| e.fleet.take_window()));
                if let Some(all) = merge(here) {
                    for e in &mut self.engines {
                        e.apply_fleet_window(boundary, &all);
                    }
                }
            }
            None => {}
        }
    }

    /// Scores one event in the engine of its agent's partition; when every partition is held
    /// here, first brings every engine's fleet knowledge to the tick the event crosses. The
    /// event's agent must be held here (see [`Partitioned::holder`]); one that is not is scored
    /// by the first engine.
    pub fn process(&mut self, ev: &AccessEvent<'_>, out: &mut Vec<OutputRecord>) -> Verdict {
        if self.whole {
            self.tick_fleet(minute_of(ev.time_ms), |w| Some(Arc::new(w)));
        }
        let i = self.holder(&ev.agent_id).unwrap_or(0);
        self.engines[i].process(ev, out)
    }

    /// See [`Engine::set_explain_all`].
    pub fn set_explain_all(&mut self, on: bool) {
        self.engines.iter_mut().for_each(|e| e.set_explain_all(on));
    }

    /// See [`Engine::set_model`].
    pub fn set_model(&mut self, model: Option<Arc<Model>>) {
        for e in &mut self.engines {
            e.set_model(model.clone());
        }
    }

    /// See [`Engine::set_entitlements`].
    pub fn set_entitlements(&mut self, ents: Arc<Entitlements>) {
        for e in &mut self.engines {
            e.set_entitlements(Arc::clone(&ents));
        }
    }

    /// See [`Engine::set_signer`].
    pub fn set_signer(&mut self, signer: Arc<Signer>) {
        for e in &mut self.engines {
            e.set_signer(Arc::clone(&signer));
        }
    }

    /// The key that signs commands, if any.
    pub fn signer(&self) -> Option<&Arc<Signer>> {
        self.engines.first().and_then(Engine::signer)
    }

    /// Hands feedback to the engine of its agent, if it is held here.
    pub fn add_feedback(&mut self, fb: Feedback) {
        if let Some(i) = self.holder(&fb.agent_id) {
            self.engines[i].add_feedback(fb);
        }
    }

    /// The counts of all engines added up (the breaker is open when any engine's is).
    pub fn stats(&self) -> EngineStats {
        let mut sum = EngineStats::default();
        for e in &self.engines {
            sum.add(&e.stats());
        }
        sum
    }

    /// Agents tracked by all engines.
    pub fn agents(&self) -> usize {
        self.engines.iter().map(Engine::agents).sum()
    }

    /// The suppressions in force in all engines.
    pub fn suppressions(&self) -> Vec<&Suppression> {
        self.engines.iter().flat_map(Engine::suppressions).collect()
    }

    /// Closes everything still open in every engine, in partition order, handing each
    /// partition's records to `each` with the partition's number.
    pub fn finish_each(&mut self, mut each: impl FnMut(usize, &mut Vec<OutputRecord>)) {
        let mut out = Vec::new();
        for (p, i) in self.local.iter().enumerate() {
            if let Some(i) = *i {
                self.engines[i].finish(&mut out);
                each(p, &mut out);
                out.clear();
            }
        }
    }

    /// Closes everything still open in every engine, in partition order.
    pub fn finish(&mut self, out: &mut Vec<OutputRecord>) {
        self.finish_each(|_, records| out.append(records));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_where_a_kafka_producer_puts_them() {
        // Kafka's own `Utils.murmur2` test vectors: "21" hashes to -973932308, "foobar" to
        // -790332482; `toPositive` clears the sign bit.
        let positive = |h: i32| (h as u32 & 0x7fff_ffff) as usize;
        assert_eq!(partition_of(b"21", 1000), positive(-973932308) % 1000);
        assert_eq!(partition_of(b"foobar", 12), positive(-790332482) % 12);
        assert_eq!(partition_of(b"anything", 1), 0);
    }
}
