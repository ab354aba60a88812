//! A worker thread: owns one engine per input partition it is given, processes each partition's
//! messages in order, produces the outputs and, at commit points, hands back the checkpoints of
//! the partitions that moved on.
//!
//! One engine per partition (fleet knowledge, open findings and event-time watermark included)
//! makes every result a function of that partition's messages alone: the same whatever the
//! number of workers or instances, however partitions interleave or move between instances.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::produce::Output;
use super::state::Envelope;
use super::{Partition, PipelineObserver};
use crate::config::Settings;
use crate::decide::suppress::Feedback;
use crate::drive::counts::InputCounts;
use crate::engine::Engine;
use crate::event::{DecodeConfig, Decoder};
use crate::grants::SharedEntitlements;
use crate::output::OutputRecord;
use crate::output::audit::AuditEvent;
use crate::output::dead_letter::DeadLetter;
use crate::output::finding::FindingFormat;
use crate::output::score::ScoreLine;
use crate::output::sign::Signer;

/// Work for a worker, in the order it must be done.
pub(crate) enum WorkItem {
    /// An input message, dispatched in `epoch` (messages of an abandoned epoch are skipped).
    Message {
        epoch: u64,
        topic: Arc<str>,
        partition: i32,
        offset: i64,
        payload: Option<Vec<u8>>,
    },
    /// The restored state of a newly assigned partition, sent before any of its messages.
    Restore {
        partition: Partition,
        shared: Option<Box<Envelope>>,
        agents: Vec<Envelope>,
    },
    /// A commit point.
    Checkpoint(CommitPoint),
    /// Analyst feedback, for the partition engine that knows its finding.
    Feedback(Arc<Feedback>),
}

/// What every engine of a run shares for its response side.
#[derive(Clone)]
pub(crate) struct ResponseCtx {
    /// Entitlements, kept up to date by the side inputs.
    pub(crate) ents: Option<SharedEntitlements>,
    /// The learned model, kept up to date by the side inputs.
    pub(crate) model: Option<crate::ml::SharedModel>,
    /// The key that signs commands.
    pub(crate) signer: Arc<Signer>,
    /// Partitions whose circuit breaker is open, over all workers.
    pub(crate) breakers_open: Arc<AtomicI64>,
}

/// Feedback remembered for partitions assigned later.
const FEEDBACK_KEPT: usize = 10_000;

/// A commit point: checkpoint every partition that moved on, reply with the records, forget the
/// partitions in `drop`, then wait until `resume` closes (the commit is done).
pub(crate) struct CommitPoint {
    /// Partitions to forget after their checkpoint (revoked).
    pub(crate) drop: Vec<Partition>,
    /// Close every open finding first (a demo's end).
    pub(crate) close: bool,
    /// Forget every partition without a checkpoint (a transaction was aborted: their state is
    /// restored again from the state topic).
    pub(crate) discard: bool,
    pub(crate) reply: Sender<Vec<StateRecord>>,
    pub(crate) resume: Receiver<()>,
}

/// One state-topic record of a checkpoint.
pub(crate) struct StateRecord {
    pub(crate) key: String,
    pub(crate) payload: Vec<u8>,
}

/// A worker's counts.
#[derive(Clone, Debug, Default)]
pub(crate) struct WorkerStats {
    pub(crate) input: InputCounts,
    pub(crate) already_reflected: u64,
    pub(crate) findings: u64,
    pub(crate) outputs: u64,
    pub(crate) checkpoints: u64,
    pub(crate) restored_agents: u64,
    pub(crate) agents: usize,
}

/// The engine of one input partition and where it stands.
struct Shard {
    engine: Engine,
    /// Offset of the newest message reflected in the engine.
    offset: i64,
    /// Whether messages were processed since the last checkpoint.
    dirty: bool,
    /// Messages at or below this offset are already reflected in the restored state.
    reflected: i64,
    /// Restored agents whose own checkpoint is newer than the partition's: their events at or
    /// below the offset are already reflected.
    agents_ahead: FxHashMap<Box<str>, i64>,
    /// Circuit-breaker openings already reported, and whether it is open.
    breaker: (u64, bool),
}

impl Shard {
    fn new(settings: &Settings, response: &ResponseCtx) -> Shard {
        let mut engine = Engine::new(settings.clone());
        engine.set_explain_all(settings.kafka.scores_topic.is_some());
        if let Some(e) = &response.ents {
            engine.set_entitlements(e.clone());
        }
        engine.set_signer(response.signer.clone());
        if let Some(m) = &response.model {
            engine.set_model(m.clone());
        }
        Shard {
            engine,
            offset: -1,
            dirty: false,
            reflected: -1,
            agents_ahead: FxHashMap::default(),
            breaker: (0, false),
        }
    }

    /// Reports circuit-breaker changes of the engine.
    fn watch_breaker(&mut self, observer: &dyn PipelineObserver, open: &AtomicI64) {
        let st = self.engine.stats();
        for _ in self.breaker.0..st.breaker_trips {
            observer.breaker_opened();
        }
        self.breaker.0 = st.breaker_trips;
        if st.breaker_open != self.breaker.1 {
            self.breaker.1 = st.breaker_open;
            let d = if st.breaker_open { 1 } else { -1 };
            let now = open.fetch_add(d, Ordering::AcqRel) + d;
            observer.breakers_open(now.max(0) as usize);
        }
    }

    /// Reports that the shard's breaker no longer counts (the partition is forgotten).
    fn forget_breaker(&mut self, observer: &dyn PipelineObserver, open: &AtomicI64) {
        if self.breaker.1 {
            self.breaker.1 = false;
            let now = open.fetch_sub(1, Ordering::AcqRel) - 1;
            observer.breakers_open(now.max(0) as usize);
        }
    }
}

pub(crate) struct Worker {
    settings: Settings,
    shards: FxHashMap<Partition, Shard>,
    decoder: Decoder,
    out: Arc<Output>,
    observer: Arc<dyn PipelineObserver>,
    epoch: Arc<AtomicU64>,
    records: Vec<OutputRecord>,
    stats: WorkerStats,
    response: ResponseCtx,
    /// Feedback received, for partitions assigned later.
    feedback: VecDeque<Arc<Feedback>>,
}

impl Worker {
    pub(crate) fn new(
        settings: Settings,
        out: Arc<Output>,
        observer: Arc<dyn PipelineObserver>,
        epoch: Arc<AtomicU64>,
        response: ResponseCtx,
    ) -> Worker {
        let decoder = Decoder::new(DecodeConfig {
            format: settings.decode.format,
            max_record_bytes: settings.decode.max_record_bytes,
        });
        Worker {
            settings,
            shards: FxHashMap::default(),
            decoder,
            out,
            observer,
            epoch,
            records: Vec::new(),
            stats: WorkerStats::default(),
            response,
            feedback: VecDeque::new(),
        }
    }

    /// Hands feedback to the partition engine that knows its finding, and keeps it for
    /// partitions assigned later.
    fn feedback(&mut self, fb: Arc<Feedback>) {
        for shard in self.shards.values_mut() {
            if shard.engine.knows_finding(&fb.agent_id, &fb.finding_id) {
                shard.engine.add_feedback((*fb).clone());
            }
        }
        if self.feedback.len() >= FEEDBACK_KEPT {
            self.feedback.pop_front();
        }
        self.feedback.push_back(fb);
    }

    /// Runs until the channel closes.
    pub(crate) fn run(mut self, rx: Receiver<WorkItem>) -> WorkerStats {
        while let Ok(item) = rx.recv() {
            match item {
                WorkItem::Message {
                    epoch,
                    topic,
                    partition,
                    offset,
                    payload,
                } => {
                    if epoch == self.epoch.load(Ordering::Acquire) {
                        self.message(topic, partition, offset, payload.as_deref());
                    }
                }
                WorkItem::Restore {
                    partition,
                    shared,
                    agents,
                } => self.restore(partition, shared, agents),
                WorkItem::Checkpoint(point) => self.commit_point(point),
                WorkItem::Feedback(fb) => self.feedback(fb),
            }
        }
        self.stats
    }

    fn message(&mut self, topic: Arc<str>, partition: i32, offset: i64, payload: Option<&[u8]>) {
        let started = Instant::now();
        let source = format!("{topic}/{partition}/{offset}");
        let bytes = payload.unwrap_or_default();
        let Worker {
            settings,
            shards,
            decoder,
            out,
            observer,
            records,
            stats,
            response,
            ..
        } = self;
        let shard = shards
            .entry((topic, partition))
            .or_insert_with(|| Shard::new(settings, response));
        if offset <= shard.offset {
            // Delivered twice: the engine has seen it.
            return;
        }
        let replayed = offset <= shard.reflected;
        shard.offset = offset;
        shard.dirty = true;
        decoder.decode_message(bytes, &mut |decoded| {
            match decoded {
                Ok(ev) => {
                    stats.input.event();
                    let agent: &str = &ev.agent_id;
                    if replayed {
                        stats.already_reflected += 1;
                        observer.already_reflected();
                        return;
                    }
                    if let Some(&upto) = shard.agents_ahead.get(agent) {
                        if offset <= upto {
                            stats.already_reflected += 1;
                            observer.already_reflected();
                            return;
                        }
                        shard.agents_ahead.remove(agent);
                    }
                    observer.input_event(ev.format, ev.outcome);
                    stats.input.scored(ev.format);
                    let verdict = shard.engine.process(&ev, records);
                    if let Some(t) = &out.topics.scores {
                        let line = ScoreLine {
                            event_id: &ev.event_id,
                            agent_id: agent,
                            time: crate::output::time::rfc3339_ms_inline(ev.time_ms),
                            score: verdict.score,
                            reasons: &verdict.reasons,
                        };
                        if let Ok(v) = serde_json::to_vec(&line) {
                            out.send(t, agent, &v);
                        }
                    }
                    let findings = settings.output.finding_format;
                    emit(out, observer.as_ref(), stats, records, findings);
                    shard.watch_breaker(observer.as_ref(), &response.breakers_open);
                }
                Err(rej) => {
                    stats.input.dead_letter(rej.reason.code());
                    if replayed {
                        // Its dead letter was delivered before the restored checkpoint.
                        return;
                    }
                    observer.dead_letter(rej.reason.code());
                    let dl = DeadLetter::new(&rej, source.as_str(), None);
                    stats.outputs += 1;
                    out.send(&out.topics.dead_letters, &source, dl.to_json().as_bytes());
                }
            }
        });
        self.observer
            .decision_latency(started.elapsed().as_secs_f64());
    }

    /// Checkpoints the partitions that moved on, replies, forgets `drop`, and waits for the
    /// commit.
    fn commit_point(&mut self, point: CommitPoint) {
        let mut state = Vec::new();
        if point.discard {
            for shard in self.shards.values_mut() {
                shard.forget_breaker(self.observer.as_ref(), &self.response.breakers_open);
            }
            self.shards.clear();
        } else {
            if point.close {
                for shard in self.shards.values_mut() {
                    shard.engine.finish(&mut self.records);
                    shard.dirty = true;
                }
                emit(
                    &self.out,
                    self.observer.as_ref(),
                    &mut self.stats,
                    &mut self.records,
                    self.settings.output.finding_format,
                );
            }
            let mut dirty: Vec<(&Partition, &mut Shard)> =
                self.shards.iter_mut().filter(|(_, s)| s.dirty).collect();
            dirty.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (p, shard) in dirty {
                checkpoint(p, shard, &mut state);
                shard.dirty = false;
                self.stats.checkpoints += 1;
            }
            self.stats.agents = self.shards.values().map(|s| s.engine.agents()).sum();
            for p in &point.drop {
                if let Some(mut shard) = self.shards.remove(p) {
                    shard.forget_breaker(self.observer.as_ref(), &self.response.breakers_open);
                }
            }
        }
        self.observer.agents(
            self.shards.values().map(|s| s.engine.agents()).sum(),
            self.shards.values().map(|s| s.engine.state_bytes()).sum(),
        );
        if point.reply.send(state).is_ok() {
            // Closed (not a message) when the commit is done.
            let _ = point.resume.recv();
        }
    }

    fn restore(
        &mut self,
        partition: Partition,
        shared: Option<Box<Envelope>>,
        agents: Vec<Envelope>,
    ) {
        let mut shard = Shard::new(&self.settings, &self.response);
        if let Some(env) = shared
            && let Some(bytes) = env.state_bytes()
            && shard.engine.import_shared(&bytes).is_ok()
        {
            shard.reflected = env.offset;
        }
        for env in agents {
            let Some(bytes) = env.state_bytes() else {
                continue;
            };
            if shard
                .engine
                .import_agent(&env.agent_id, env.agent_kind.as_deref(), &bytes)
                .is_ok()
            {
                self.stats.restored_agents += 1;
                if env.offset > shard.reflected {
                    shard
                        .agents_ahead
                        .insert(env.agent_id.as_str().into(), env.offset);
                }
            }
        }
        for fb in &self.feedback {
            if shard.engine.knows_finding(&fb.agent_id, &fb.finding_id) {
                shard.engine.add_feedback((**fb).clone());
            }
        }
        self.shards.insert(partition, shard);
    }
}

/// Sends the records the engine completed, findings in the given format.
fn emit(
    out: &Output,
    observer: &dyn PipelineObserver,
    stats: &mut WorkerStats,
    records: &mut Vec<OutputRecord>,
    findings: FindingFormat,
) {
    for rec in records.drain(..) {
        let mut v = Vec::with_capacity(1024);
        if rec.write_json(&mut v, findings).is_ok() {
            observer.output(rec.kind());
            stats.outputs += 1;
            match &rec {
                OutputRecord::Finding(_) => stats.findings += 1,
                OutputRecord::Audit(a) => {
                    if let Some(id) = a.details["suppression_id"].as_str() {
                        match a.event {
                            AuditEvent::SuppressionCreated => {
                                if let Ok(v) = serde_json::to_value(a) {
                                    observer.suppression_created(id, &v);
                                }
                            }
                            AuditEvent::SuppressionExpired => observer.suppression_expired(id),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
            out.send(out.topics.for_kind(rec.kind()), rec.agent_id(), &v);
        }
    }
}

/// The checkpoint of one partition: the agents touched since the last one, then the
/// partition's shared state, all at the partition's offset.
fn checkpoint(p: &Partition, shard: &mut Shard, state: &mut Vec<StateRecord>) {
    let (topic, partition) = (p.0.to_string(), p.1);
    for agent in shard.engine.take_touched() {
        let Some(bytes) = shard.engine.export_agent(&agent) else {
            continue;
        };
        let env = Envelope::agent(
            &agent,
            shard.engine.agent_kind(&agent),
            &topic,
            partition,
            shard.offset,
            &bytes,
        );
        if let Ok(payload) = serde_json::to_vec(&env) {
            state.push(StateRecord {
                key: agent.to_string(),
                payload,
            });
        }
    }
    let env = Envelope::partition(
        &topic,
        partition,
        shard.offset,
        &shard.engine.export_shared(),
    );
    if let Ok(payload) = serde_json::to_vec(&env) {
        state.push(StateRecord {
            key: Envelope::partition_key(&topic, partition),
            payload,
        });
    }
}
