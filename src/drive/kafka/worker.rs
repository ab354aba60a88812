//! A worker thread: owns an engine and a decoder, processes the messages of its partitions in
//! order, produces the outputs and checkpoints the agents it touched.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::PipelineObserver;
use super::produce::Output;
use super::state::{Envelope, FORMAT_VERSION};
use super::tracker::{Partition, Tag};
use crate::config::Settings;
use crate::engine::Engine;
use crate::event::{DecodeConfig, Decoder};
use crate::output::OutputRecord;
use crate::output::dead_letter::DeadLetter;
use crate::output::score::ScoreLine;

/// Work for a worker, in the order it must be done.
pub(crate) enum WorkItem {
    /// An input message (already registered with the tracker).
    Message {
        topic: Arc<str>,
        partition: i32,
        offset: i64,
        payload: Option<Vec<u8>>,
    },
    /// A restored agent state, sent before any message of its partition.
    Restore(Box<Envelope>),
    /// These partitions are being revoked: checkpoint, forget their agents, then acknowledge.
    Revoke {
        partitions: Vec<Partition>,
        done: Sender<()>,
    },
}

/// A worker's counts.
#[derive(Clone, Debug, Default)]
pub(crate) struct WorkerStats {
    pub(crate) records: u64,
    pub(crate) events: u64,
    pub(crate) dead_letters: u64,
    pub(crate) dead_by_reason: BTreeMap<&'static str, u64>,
    pub(crate) by_format: BTreeMap<&'static str, u64>,
    pub(crate) already_reflected: u64,
    pub(crate) findings: u64,
    pub(crate) outputs: u64,
    pub(crate) checkpoints: u64,
    pub(crate) restored_agents: u64,
    pub(crate) agents: usize,
}

pub(crate) struct Worker {
    engine: Engine,
    decoder: Decoder,
    out: Arc<Output>,
    observer: Arc<dyn PipelineObserver>,
    checkpoint_every: u64,
    since_checkpoint: u64,
    /// Each agent's input partition and the newest offset reflected in its state.
    home: FxHashMap<Box<str>, (Arc<str>, i32, i64)>,
    /// Restored agents: events at or below this offset are already in their state.
    restored: FxHashMap<Box<str>, i64>,
    records: Vec<OutputRecord>,
    stats: WorkerStats,
}

impl Worker {
    pub(crate) fn new(
        settings: Settings,
        out: Arc<Output>,
        observer: Arc<dyn PipelineObserver>,
    ) -> Worker {
        let decoder = Decoder::new(DecodeConfig {
            format: settings.decode.format,
            max_record_bytes: settings.decode.max_record_bytes,
        });
        let checkpoint_every = settings.kafka.checkpoint_every_events;
        Worker {
            engine: Engine::new(settings),
            decoder,
            out,
            observer,
            checkpoint_every,
            since_checkpoint: 0,
            home: FxHashMap::default(),
            restored: FxHashMap::default(),
            records: Vec::new(),
            stats: WorkerStats::default(),
        }
    }

    /// Runs until the channel closes, then closes open findings and checkpoints.
    pub(crate) fn run(mut self, rx: Receiver<WorkItem>) -> WorkerStats {
        while let Ok(item) = rx.recv() {
            match item {
                WorkItem::Message {
                    topic,
                    partition,
                    offset,
                    payload,
                } => {
                    let tag = Tag(Some((topic.clone(), partition, offset)));
                    self.message(&topic, partition, offset, payload.as_deref(), &tag);
                    self.out.tracker.done(&tag);
                }
                WorkItem::Restore(env) => self.restore(*env),
                WorkItem::Revoke { partitions, done } => {
                    self.checkpoint(&Tag(None));
                    let gone: Vec<Box<str>> = self
                        .home
                        .iter()
                        .filter(|(_, (t, p, _))| {
                            partitions.iter().any(|(pt, pp)| pt == t && pp == p)
                        })
                        .map(|(a, _)| a.clone())
                        .collect();
                    for a in gone {
                        self.engine.remove_agent(&a);
                        self.home.remove(&a);
                        self.restored.remove(&a);
                    }
                    self.report_agents();
                    let _ = done.send(());
                }
            }
        }
        let none = Tag(None);
        self.engine.finish(&mut self.records);
        self.flush_records(&none);
        self.checkpoint(&none);
        self.stats.findings = self.engine.stats().findings;
        self.stats.agents = self.engine.agents();
        self.stats
    }

    fn message(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        offset: i64,
        payload: Option<&[u8]>,
        tag: &Tag,
    ) {
        let started = Instant::now();
        let source = format!("{topic}/{partition}/{offset}");
        let bytes = payload.unwrap_or_default();
        let Worker {
            engine,
            decoder,
            out,
            observer,
            home,
            restored,
            records,
            stats,
            since_checkpoint,
            ..
        } = self;
        decoder.decode_message(bytes, &mut |decoded| {
            stats.records += 1;
            match decoded {
                Ok(ev) => {
                    stats.events += 1;
                    let agent: &str = &ev.agent_id;
                    if let Some(&upto) = restored.get(agent) {
                        if offset <= upto {
                            stats.already_reflected += 1;
                            observer.already_reflected();
                            return;
                        }
                        restored.remove(agent);
                    }
                    observer.input_event(ev.format, ev.outcome);
                    *stats.by_format.entry(ev.format.as_str()).or_default() += 1;
                    let verdict = engine.process(&ev, records);
                    *since_checkpoint += 1;
                    match home.get_mut(agent) {
                        Some(h) => *h = (topic.clone(), partition, offset),
                        None => {
                            home.insert(agent.into(), (topic.clone(), partition, offset));
                        }
                    }
                    if let Some(t) = &out.topics.scores {
                        let line = ScoreLine {
                            event_id: &ev.event_id,
                            agent_id: agent,
                            time: crate::output::time::rfc3339_ms(ev.time_ms),
                            score: verdict.score,
                            reasons: &verdict.reasons,
                        };
                        if let Ok(v) = serde_json::to_vec(&line) {
                            out.send(t, agent, &v, tag);
                        }
                    }
                    for rec in records.drain(..) {
                        if let Ok(v) = serde_json::to_vec(&rec) {
                            observer.output(rec.kind());
                            stats.outputs += 1;
                            out.send(out.topics.for_kind(rec.kind()), rec.agent_id(), &v, tag);
                        }
                    }
                }
                Err(rej) => {
                    stats.dead_letters += 1;
                    *stats.dead_by_reason.entry(rej.reason.code()).or_default() += 1;
                    observer.dead_letter(rej.reason.code());
                    let dl = DeadLetter::new(&rej, source.as_str(), None);
                    stats.outputs += 1;
                    out.send(
                        &out.topics.dead_letters,
                        &source,
                        dl.to_json().as_bytes(),
                        tag,
                    );
                }
            }
        });
        self.observer
            .decision_latency(started.elapsed().as_secs_f64());
        if self.since_checkpoint >= self.checkpoint_every {
            self.checkpoint(tag);
        }
    }

    fn flush_records(&mut self, tag: &Tag) {
        for rec in self.records.drain(..) {
            if let Ok(v) = serde_json::to_vec(&rec) {
                self.observer.output(rec.kind());
                self.stats.outputs += 1;
                self.out.send(
                    self.out.topics.for_kind(rec.kind()),
                    rec.agent_id(),
                    &v,
                    tag,
                );
            }
        }
    }

    /// Writes the state of every agent touched since the last checkpoint; the message `tag`
    /// is not complete until they are delivered.
    fn checkpoint(&mut self, tag: &Tag) {
        let started = Instant::now();
        self.since_checkpoint = 0;
        let touched = self.engine.take_touched();
        if touched.is_empty() {
            return;
        }
        for agent in touched {
            let (Some(bytes), Some((topic, partition, offset))) =
                (self.engine.export_agent(&agent), self.home.get(&agent))
            else {
                continue;
            };
            let env = Envelope {
                v: FORMAT_VERSION,
                agent_id: agent.to_string(),
                agent_kind: self.engine.agent_kind(&agent).map(str::to_string),
                topic: topic.to_string(),
                partition: *partition,
                offset: *offset,
                state: Envelope::encode_state(&bytes),
            };
            if let Ok(v) = serde_json::to_vec(&env) {
                self.out.send(&self.out.topics.state, &agent, &v, tag);
            }
        }
        self.stats.checkpoints += 1;
        self.observer.checkpoint(started.elapsed().as_secs_f64());
        self.report_agents();
    }

    fn restore(&mut self, env: Envelope) {
        let Some(bytes) = env.state_bytes() else {
            return;
        };
        if self
            .engine
            .import_agent(&env.agent_id, env.agent_kind.as_deref(), &bytes)
            .is_ok()
        {
            self.stats.restored_agents += 1;
            let agent: Box<str> = env.agent_id.as_str().into();
            self.home.insert(
                agent.clone(),
                (env.topic.as_str().into(), env.partition, env.offset),
            );
            self.restored.insert(agent, env.offset);
        }
    }

    fn report_agents(&self) {
        self.observer
            .agents(self.engine.agents(), self.engine.state_bytes());
    }
}
