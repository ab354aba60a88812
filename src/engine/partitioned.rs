//! Several engines, each holding the agents of one partition, as a Kafka deployment spreads
//! them: events are routed by agent id with the Kafka producer's own partitioner, and fleet
//! knowledge is merged across the engines at every fleet tick (see [`crate::fleet::Exchange`]).

use std::sync::Arc;

use super::{Engine, EngineStats};
use crate::config::Settings;
use crate::decide::suppress::{Feedback, Suppression};
use crate::detect::Verdict;
use crate::event::AccessEvent;
use crate::fleet::Exchange;
use crate::grants::Entitlements;
use crate::ml::Model;
use crate::output::OutputRecord;
use crate::output::sign::Signer;
use crate::profile::counter::minute_of;

/// The partition a Kafka producer's default partitioner gives a record keyed by `key`, of
/// `partitions` (murmur2 of the key, sign bit cleared, modulo the count).
pub fn partition_of(key: &[u8], partitions: usize) -> usize {
    let hash = murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff;
    hash as usize % partitions.max(1)
}

/// Engines that each hold the agents of one partition.
#[derive(Debug)]
pub struct Partitioned {
    engines: Vec<Engine>,
    /// Merges the engines' fleet knowledge; `None` when each engine keeps its own (one engine,
    /// or engines that do not share).
    exchange: Option<Exchange>,
}

impl Partitioned {
    /// `partitions` engines (at least one) with `settings`. With `share_fleet`, fleet knowledge
    /// (peer groups, first uses, destinations) is merged across them at every fleet tick, so an
    /// agent's scores do not depend on the partition it is in; without it each engine knows only
    /// its own partition's agents, as independent instances would.
    pub fn new(settings: Settings, partitions: usize, share_fleet: bool) -> Partitioned {
        let n = partitions.max(1);
        let tick_min = settings.detect.fleet_tick_secs / 60;
        let mut engines: Vec<Engine> = (0..n).map(|_| Engine::new(settings.clone())).collect();
        let exchange = (share_fleet && n > 1).then(|| {
            for e in &mut engines {
                e.fleet.share();
            }
            Exchange::new(tick_min)
        });
        Partitioned { engines, exchange }
    }

    /// The engines, in partition order.
    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }

    fn route(&self, agent_id: &str) -> usize {
        match self.engines.len() {
            1 => 0,
            n => partition_of(agent_id.as_bytes(), n),
        }
    }

    /// Scores one event in the engine of its agent's partition, after bringing every engine's
    /// fleet knowledge to the tick the event crosses.
    pub fn process(&mut self, ev: &AccessEvent<'_>, out: &mut Vec<OutputRecord>) -> Verdict {
        if let Some(x) = &mut self.exchange {
            let now = minute_of(ev.time_ms);
            if x.due(now) {
                x.tick(now, self.engines.iter_mut().map(|e| &mut e.fleet));
            }
        }
        let i = self.route(&ev.agent_id);
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
        self.engines[0].signer()
    }

    /// Hands feedback to the engine of its agent.
    pub fn add_feedback(&mut self, fb: Feedback) {
        let i = self.route(&fb.agent_id);
        self.engines[i].add_feedback(fb);
    }

    /// The counts of all engines added up (the breaker is open when any engine's is).
    pub fn stats(&self) -> EngineStats {
        let mut sum = EngineStats::default();
        for s in self.engines.iter().map(Engine::stats) {
            sum.events += s.events;
            sum.anomalous += s.anomalous;
            sum.late += s.late;
            sum.findings += s.findings;
            sum.repeats += s.repeats;
            sum.recommendations += s.recommendations;
            sum.commands += s.commands;
            sum.commands_withheld += s.commands_withheld;
            sum.breaker_trips += s.breaker_trips;
            sum.breaker_open |= s.breaker_open;
            sum.suppressed += s.suppressed;
            sum.evicted += s.evicted;
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

    /// Closes everything still open in every engine, in partition order.
    pub fn finish(&mut self, out: &mut Vec<OutputRecord>) {
        for e in &mut self.engines {
            e.finish(out);
        }
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
