//! A worker thread: owns one engine per input partition it is given, processes each partition's
//! messages in order, produces the outputs and, at commit points, hands back the checkpoints of
//! the partitions that moved on.
//!
//! One engine per partition (fleet knowledge, open findings and event-time watermark included)
//! makes every result a function of that partition's messages alone: the same whatever the
//! number of workers or instances, however partitions interleave or move between instances.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::barrier::{Gate, Offer, Position, Publish, Tick, member_name};
use super::fleet_topic::FleetLink;
use super::produce::Output;
use super::rekey::{Admitted, Rekeyed, Reorder, Route, Routes};
use super::state::Envelope;
use super::{Partition, PipelineObserver};
use crate::config::Settings;
use crate::decide::suppress::Feedback;
use crate::detect::Verdict;
use crate::drive::counts::InputCounts;
use crate::drive::step::{Outputs, deliver, score_line, step};
use crate::engine::Engine;
use crate::event::otlp::{JoinSettings, SpanJoin};
use crate::event::{AccessEvent, Decoded, Decoder, RejectReason, Rejected};
use crate::grants::{Entitlements, SharedEntitlements};
use crate::ml::Model;
use crate::output::OutputRecord;
use crate::output::audit::AuditEvent;
use crate::output::dead_letter::DeadLetter;
use crate::output::sign::Signer;
use crate::telemetry::DriverEvent;
use crate::vocab::FindingFormat;

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
    /// The fleet's frontier moved: parked events may go.
    Fleet,
    /// A partition with nothing to read: advance it to the fleet's tick `upto`.
    Idle { partition: Partition, upto: Tick },
}

/// The internal topics a worker reads and writes besides its inputs and outputs.
pub(crate) struct Links {
    /// The unkeyed topics and their repartition topics.
    pub(crate) routes: Arc<Routes>,
    /// The fleet topic's board and publisher, when fleet knowledge is shared.
    pub(crate) fleet: Option<Arc<FleetLink>>,
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

/// What the workers of an instance hold, each in its own slot, summed for the instance's gauges
/// (every worker reports at its commit points; the gauges show the instance, not the last
/// worker to report).
pub(crate) struct Tally {
    /// Per worker: agents, bytes of their state, events held for order.
    slots: Vec<[AtomicUsize; 3]>,
}

impl Tally {
    /// Slots for `workers` workers.
    pub(crate) fn new(workers: usize) -> Tally {
        Tally {
            slots: (0..workers).map(|_| Default::default()).collect(),
        }
    }

    /// Sets worker `slot`'s figures; returns the sums over every worker.
    fn set(&self, slot: usize, figures: [usize; 3]) -> [usize; 3] {
        if let Some(mine) = self.slots.get(slot) {
            for (cell, v) in mine.iter().zip(figures) {
                cell.store(v, Ordering::Release);
            }
        }
        let mut sum = [0usize; 3];
        for s in &self.slots {
            for (total, cell) in sum.iter_mut().zip(s) {
                *total += cell.load(Ordering::Acquire);
            }
        }
        sum
    }
}

/// A worker's slot in its instance's [`Tally`].
pub(crate) struct Slot {
    pub(crate) tally: Arc<Tally>,
    pub(crate) index: usize,
}

/// Events a partition parks for the fleet before the consumer pauses it (a partition waits at a
/// tick boundary for milliseconds while the others catch up; pausing it at once would throw away
/// the consumer's prefetch at every tick).
const PAUSE_AT: usize = 4096;

/// Feedback remembered for partitions assigned later.
const FEEDBACK_KEPT: usize = 10_000;

/// How long, in wall-clock time, a partition that receives nothing keeps its OTLP tool calls
/// waiting past commit points: the join's wait.
fn join_wait(settings: &Settings) -> Duration {
    Duration::from_millis(u64::try_from(settings.decode.decoder().join.wait_ms).unwrap_or(0))
}

/// Most bytes (about) of a partition's checkpoint given to its OTLP tool calls waiting for
/// their ancestors and the spans it remembers, so that the record stays well under a broker's
/// default record size limit (1 MB).
const JOIN_STATE_MAX_BYTES: usize = 256 * 1024;

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
    pub(crate) reply: Sender<Checkpoint>,
    pub(crate) resume: Receiver<()>,
}

/// A worker's part of a commit point.
pub(crate) struct Checkpoint {
    /// The state-topic records.
    pub(crate) records: Vec<StateRecord>,
    /// Partitions with events parked for the fleet, and the offset of the message of the first:
    /// their input is committed no further (see [`Gate`]).
    pub(crate) caps: Vec<(Partition, i64)>,
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
    pub(crate) sent: Sent,
    pub(crate) checkpoints: u64,
    pub(crate) restored_agents: u64,
    pub(crate) agents: usize,
    /// Agents evicted while idle, by the engines of partitions let go of.
    pub(crate) evicted_retired: u64,
    /// Agents evicted while idle, by the engines of partitions held.
    pub(crate) evicted_held: u64,
    /// OpenTelemetry spans that were not tool calls, skipped.
    pub(crate) skipped_spans: u64,
    /// Tool call spans whose agent came from the resource.
    pub(crate) agent_from_resource: u64,
    /// Tool call spans joined with an ancestor from a later export request.
    pub(crate) joined_spans: u64,
    /// Tool call spans released without their ancestor.
    pub(crate) join_fallbacks: u64,
    /// Events of unkeyed topics sent to their repartition topics.
    pub(crate) rekeyed: u64,
    /// Repartition records dropped: their input position was seen before.
    pub(crate) repartition_duplicates: u64,
    /// Repartition records older than events already released, processed out of order.
    pub(crate) repartition_late: u64,
    /// Partitions with nothing to read advanced to the fleet's tick.
    pub(crate) fleet_idle: u64,
    /// Events parked for the fleet when the worker last checkpointed its partitions (at the end,
    /// or when they were given up): left for their next owner, to read again or to restore.
    pub(crate) fleet_parked: usize,
}

impl WorkerStats {
    /// Adds the join counts of an unkeyed partition the worker lets go of.
    fn retire_rekeying(&mut self, part: &Rekeying) {
        self.joined_spans += part.join.joined();
        self.join_fallbacks += part.join.fell_back();
    }

    /// Adds the join counts of a partition the worker lets go of.
    fn retire(&mut self, shard: &Shard) {
        self.joined_spans += shard.join.joined();
        self.join_fallbacks += shard.join.fell_back();
        self.evicted_retired += shard.engine.stats().evicted;
    }
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
    /// The partition's OTLP tool calls waiting for their ancestors (swapped into the decoder
    /// while one of its messages is decoded).
    join: SpanJoin,
    /// The state of `join` as of the last commit point, for the partition's checkpoint.
    join_state: Option<Vec<u8>>,
    /// When the partition's last message arrived (wall clock).
    last_message: Instant,
    /// A repartition partition's records held back for event-time order.
    reorder: Option<Reorder>,
    /// The partition's place at the fleet barrier (with a fleet topic).
    gate: Option<Gate>,
    /// The partition, and its name as a member of the fleet.
    partition: Partition,
    member: String,
    /// Restored from a checkpoint taken while events were parked: the records of the message at
    /// this offset before this index are already reflected.
    skip: Option<Position>,
}

/// Where the re-keying of one unkeyed input partition stands.
struct Rekeying {
    /// Offset of the newest message re-keyed.
    offset: i64,
    /// Index of the next event after that message (tool calls flushed later continue it).
    index: u32,
    /// OTLP tool calls waiting for their ancestors.
    join: SpanJoin,
    /// Whether messages were re-keyed since the last checkpoint.
    dirty: bool,
    /// When the partition's last message arrived (wall clock).
    last_message: Instant,
}

impl Rekeying {
    fn new(settings: &Settings) -> Rekeying {
        Rekeying {
            offset: -1,
            index: 0,
            join: SpanJoin::new(settings.decode.decoder().join),
            dirty: false,
            last_message: Instant::now(),
        }
    }
}

impl Shard {
    fn new(
        settings: &Settings,
        response: &ResponseCtx,
        in_force: &InForce,
        partition: &Partition,
        gated: bool,
    ) -> Shard {
        let mut engine = Engine::new(settings.clone());
        if gated {
            engine.fleet.share();
        }
        engine.set_explain_all(settings.kafka.scores_topic.is_some());
        if let Some(e) = &in_force.1 {
            engine.set_entitlements(e.clone());
        }
        engine.set_signer(response.signer.clone());
        if let Some(m) = &in_force.0 {
            engine.set_model(m.clone());
        }
        Shard {
            engine,
            offset: -1,
            dirty: false,
            reflected: -1,
            agents_ahead: FxHashMap::default(),
            breaker: (0, false),
            join: SpanJoin::new(settings.decode.decoder().join),
            join_state: None,
            last_message: Instant::now(),
            reorder: None,
            gate: gated.then(Gate::default),
            partition: partition.clone(),
            member: member_name(&partition.0, partition.1),
            skip: None,
        }
    }

    /// Whether the partition keeps its parked events in its checkpoint: a repartition
    /// partition's input is committed as far as it was read (its held events are in the
    /// checkpoint too), where an input partition's is committed only up to its first parked
    /// event, which its next owner reads again.
    fn keeps_parked(&self) -> bool {
        self.reorder.is_some()
    }

    /// Whether a decoded record of the message at `offset` is already reflected in the
    /// restored state (`replayed`: the whole message is).
    fn already_reflected(
        &mut self,
        decoded: &Result<AccessEvent<'_>, Rejected<'_>>,
        offset: i64,
        replayed: bool,
    ) -> bool {
        if replayed {
            return true;
        }
        let Ok(ev) = decoded else {
            return false;
        };
        match self.agents_ahead.get(ev.agent_id.as_ref()) {
            Some(&upto) if offset <= upto => true,
            Some(_) => {
                self.agents_ahead.remove(ev.agent_id.as_ref());
                false
            }
            None => false,
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
    /// The model and entitlements the engines were last handed.
    in_force: InForce,
    /// The unkeyed topics and their repartition topics.
    routes: Arc<Routes>,
    /// Per unkeyed input partition held, where its re-keying stands.
    rekeying: FxHashMap<Partition, Rekeying>,
    /// Where this worker's figures go for the instance's gauges.
    slot: Slot,
    /// The fleet topic's board and publisher, when fleet knowledge is shared.
    link: Option<Arc<FleetLink>>,
    /// The board's version when parked events were last looked at.
    fleet_seen: u64,
}

/// The model and the entitlements in force (`None`: the run has no such side input).
type InForce = (Option<Option<Arc<Model>>>, Option<Arc<Entitlements>>);

impl Worker {
    pub(crate) fn new(
        settings: Settings,
        out: Arc<Output>,
        observer: Arc<dyn PipelineObserver>,
        epoch: Arc<AtomicU64>,
        response: ResponseCtx,
        links: Links,
        slot: Slot,
    ) -> Worker {
        let Links {
            routes,
            fleet: link,
        } = links;
        let decoder = Decoder::new(settings.decode.decoder());
        Worker {
            settings,
            shards: FxHashMap::default(),
            decoder,
            out,
            observer,
            epoch,
            records: Vec::new(),
            stats: WorkerStats::default(),
            in_force: (
                response.model.as_ref().map(|m| m.load_full()),
                response.ents.as_ref().map(|e| e.load_full()),
            ),
            response,
            feedback: VecDeque::new(),
            routes,
            rekeying: FxHashMap::default(),
            slot,
            link,
            fleet_seen: 0,
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
                WorkItem::Fleet => self.release_parked(),
                WorkItem::Idle { partition, upto } => self.idle(partition, upto),
            }
        }
        if !self.shards.is_empty() {
            self.stats.fleet_parked = self.parked();
        }
        self.stats.skipped_spans = self.decoder.skipped_spans();
        self.stats.agent_from_resource = self.decoder.agent_from_resource();
        for shard in self.shards.values() {
            self.stats.retire(shard);
        }
        for part in self.rekeying.values() {
            self.stats.retire_rekeying(part);
        }
        self.stats
    }

    /// Hands the engines the model and entitlements in force, when they changed since the
    /// last message: they change only between messages.
    fn refresh(&mut self) {
        let model = self.response.model.as_ref().map(|m| m.load_full());
        let ents = self.response.ents.as_ref().map(|e| e.load_full());
        // The same loaded value is the same allocation: compare pointers, not contents.
        let model_ptr =
            |m: &Option<Option<Arc<Model>>>| m.as_ref().map(|m| m.as_ref().map(Arc::as_ptr));
        let ents_ptr = |e: &Option<Arc<Entitlements>>| e.as_ref().map(Arc::as_ptr);
        if model_ptr(&model) == model_ptr(&self.in_force.0)
            && ents_ptr(&ents) == ents_ptr(&self.in_force.1)
        {
            return;
        }
        for shard in self.shards.values_mut() {
            if let Some(m) = &model {
                shard.engine.set_model(m.clone());
            }
            if let Some(e) = &ents {
                shard.engine.set_entitlements(e.clone());
            }
        }
        self.in_force = (model, ents);
    }

    fn message(&mut self, topic: Arc<str>, partition: i32, offset: i64, payload: Option<&[u8]>) {
        let started = Instant::now();
        self.refresh();
        let source = format!("{topic}/{partition}/{offset}");
        // A message without a value reads as an empty one, which is dead-lettered (not JSON).
        let bytes = payload.unwrap_or_default();
        if let Some(route) = self.routes.unkeyed.get(&*topic).cloned() {
            self.rekey(&route, topic, partition, offset, bytes, &source);
            return;
        }
        self.release_parked();
        let internal = self.routes.internal.contains(&*topic);
        let order_ms = i64::from(self.settings.kafka.repartition_order_secs) * 1000;
        let mut admitted = None;
        let Worker {
            settings,
            shards,
            decoder,
            out,
            observer,
            records,
            stats,
            response,
            in_force,
            link,
            ..
        } = self;
        let link = link.as_deref();
        let shard = shards
            .entry((topic.clone(), partition))
            .or_insert_with_key(|p| Shard::new(settings, response, in_force, p, link.is_some()));
        if offset <= shard.offset {
            // Delivered twice: the engine has seen it.
            return;
        }
        let replayed = offset <= shard.reflected;
        shard.offset = offset;
        shard.dirty = true;
        shard.last_message = started;
        // A message already reflected in the restored state is decoded only to be counted: its
        // tool calls must not wait again beside the restored ones, so it is decoded on its own.
        let mut own_join = replayed.then(|| {
            SpanJoin::new(JoinSettings {
                wait_ms: 0,
                ..settings.decode.decoder().join
            })
        });
        let join = own_join.as_mut().unwrap_or(&mut shard.join);
        decoder.swap_join(join);
        let mut outputs = TopicOutputs {
            out,
            observer: observer.as_ref(),
            stats: &mut stats.sent,
            findings: settings.output.finding_format,
            source: &source,
        };
        // A repartition partition seen for the first time holds nothing yet: an empty buffer.
        let mut reorder = internal.then(|| shard.reorder.take().unwrap_or_default());
        let mut index = 0u32;
        let mut each = |decoded: Decoded<'_>| {
            let pos = (offset, index);
            index += 1;
            if shard.already_reflected(&decoded, offset, replayed)
                || shard.skip.is_some_and(|(o, n)| o == offset && pos.1 < n)
            {
                // Counted, but not processed again: its effects (outputs included) are in the
                // restored state.
                match &decoded {
                    Ok(_) => {
                        stats.input.event();
                        stats.already_reflected += 1;
                        observer.already_reflected();
                    }
                    Err(rej) => stats.input.dead_letter(rej.reason.code()),
                }
                return;
            }
            score(
                shard,
                link,
                Some(pos),
                decoded,
                &mut stats.input,
                records,
                &mut outputs,
            );
            shard.watch_breaker(outputs.observer, &response.breakers_open);
        };
        if let Some(reorder) = reorder.as_mut() {
            admitted = admit(reorder, bytes, replayed, order_ms, &mut each);
        } else {
            decode(decoder, &settings.kafka, &topic, bytes, &mut each);
        }
        decoder.swap_join(own_join.as_mut().unwrap_or(&mut shard.join));
        if reorder.is_some() {
            shard.reorder = reorder;
        }
        self.count_admitted(admitted);
        self.observer
            .decision_latency(started.elapsed().as_secs_f64());
    }

    /// Counts what became of a repartition record.
    fn count_admitted(&mut self, admitted: Option<Admitted>) {
        let stage = match admitted {
            None => return,
            Some(Admitted::Held) => "held",
            Some(Admitted::Late) => {
                self.stats.repartition_late += 1;
                "late"
            }
            Some(Admitted::Duplicate) => {
                self.stats.repartition_duplicates += 1;
                "duplicate"
            }
        };
        self.observer.repartition(stage);
    }

    /// Re-keys the events of a message of an unkeyed topic: each goes to the repartition
    /// partition of its agent; rejected records are dead-lettered here.
    fn rekey(
        &mut self,
        route: &Route,
        topic: Arc<str>,
        partition: i32,
        offset: i64,
        bytes: &[u8],
        source: &str,
    ) {
        let Worker {
            settings,
            decoder,
            out,
            observer,
            stats,
            rekeying,
            ..
        } = self;
        let part = rekeying
            .entry((topic.clone(), partition))
            .or_insert_with(|| Rekeying::new(settings));
        if offset <= part.offset {
            // Delivered twice: already re-keyed.
            return;
        }
        part.offset = offset;
        part.index = 0;
        part.dirty = true;
        part.last_message = Instant::now();
        let mut dead = TopicOutputs {
            out,
            observer: observer.as_ref(),
            stats: &mut stats.sent,
            findings: settings.output.finding_format,
            source,
        };
        let mut rekeyer = Rekeyer {
            out: dead.out,
            route,
            observer: dead.observer,
            partition,
            offset,
            index: &mut part.index,
            rekeyed: &mut stats.rekeyed,
        };
        let counts = &mut stats.input;
        let mut each = |decoded: Decoded<'_>| match decoded {
            Ok(ev) => rekeyer.send(ev),
            Err(rej) => {
                counts.dead_letter(rej.reason.code());
                let Ok(()) = dead.dead_letter(&rej);
            }
        };
        decoder.swap_join(&mut part.join);
        decode(decoder, &settings.kafka, &topic, bytes, &mut each);
        decoder.swap_join(&mut part.join);
    }

    /// Keeps each unkeyed partition's OTLP tool calls waiting for their ancestors across the
    /// commit point, in a checkpoint of the partition (as [`Worker::keep_spans`] does for a
    /// partition that is scored; those beyond [`JOIN_STATE_MAX_BYTES`], and those of a
    /// partition that received nothing for the join's wait, are re-keyed now, without their
    /// ancestors). Returns the checkpoint records.
    fn keep_rekeyed_spans(&mut self) -> Vec<StateRecord> {
        let wait = join_wait(&self.settings);
        self.flush_rekeyed_spans(|part| part.last_message.elapsed() >= wait);
        let Worker {
            decoder,
            out,
            observer,
            stats,
            rekeying,
            routes,
            ..
        } = self;
        let mut records = Vec::new();
        let mut dirty: Vec<(&Partition, &mut Rekeying)> =
            rekeying.iter_mut().filter(|(_, r)| r.dirty).collect();
        dirty.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for ((topic, partition), part) in dirty {
            let Some(route) = routes.unkeyed.get(&**topic) else {
                continue;
            };
            let rekeyer = Rekeyer {
                out,
                route,
                observer: observer.as_ref(),
                partition: *partition,
                offset: part.offset,
                index: &mut part.index,
                rekeyed: &mut stats.rekeyed,
            };
            let state = rekeyer.released(decoder, &mut part.join, |d, sink| {
                d.export_join(JOIN_STATE_MAX_BYTES, sink)
            });
            let state = match state {
                Ok(state) => state,
                Err(e) => {
                    observer.driver_event(&DriverEvent::CheckpointFailed {
                        error: format!(
                            "partition {topic}/{partition}: {e} (its waiting tool calls were re-keyed without their ancestors)"
                        ),
                    });
                    None
                }
            };
            let mut env = Envelope::partition(topic, *partition, part.offset, &[]);
            env.join = state.as_deref().map(Envelope::encode_state);
            match serde_json::to_vec(&env) {
                Ok(payload) => {
                    records.push(StateRecord {
                        key: Envelope::partition_key(topic, *partition),
                        payload,
                    });
                    part.dirty = false;
                    stats.checkpoints += 1;
                }
                // The partition stays dirty: the next commit point tries again.
                Err(e) => observer.driver_event(&DriverEvent::CheckpointFailed {
                    error: format!("partition {topic}/{partition}: {e}"),
                }),
            }
        }
        records
    }

    /// Re-keys the OTLP tool calls still waiting for their ancestors of every unkeyed partition
    /// `which` picks, so that a commit never leaves one behind.
    fn flush_rekeyed_spans(&mut self, which: impl Fn(&Rekeying) -> bool) {
        let Worker {
            decoder,
            out,
            observer,
            stats,
            rekeying,
            routes,
            ..
        } = self;
        for ((topic, partition), part) in rekeying
            .iter_mut()
            .filter(|(_, r)| r.join.pending() > 0 && which(r))
        {
            let Some(route) = routes.unkeyed.get(&**topic) else {
                continue;
            };
            let rekeyer = Rekeyer {
                out,
                route,
                observer: observer.as_ref(),
                partition: *partition,
                offset: part.offset,
                index: &mut part.index,
                rekeyed: &mut stats.rekeyed,
            };
            rekeyer.released(decoder, &mut part.join, |d, sink| d.flush_spans(sink));
        }
    }

    /// Scores every event held for event-time order (the end of the input).
    fn release_held(&mut self) {
        let Worker {
            settings,
            shards,
            out,
            observer,
            records,
            stats,
            response,
            link,
            ..
        } = self;
        for shard in shards.values_mut() {
            let Some(mut reorder) = shard.reorder.take() else {
                continue;
            };
            let mut outputs =
                TopicOutputs::unsourced(out, observer.as_ref(), &mut stats.sent, settings);
            while let Some(held) = reorder.take() {
                shard.dirty = true;
                release(&held, &mut |decoded| {
                    score(
                        shard,
                        link.as_deref(),
                        None,
                        decoded,
                        &mut stats.input,
                        records,
                        &mut outputs,
                    );
                });
            }
            shard.watch_breaker(observer.as_ref(), &response.breakers_open);
            shard.reorder = Some(reorder);
        }
    }

    /// Keeps each partition's OTLP tool calls waiting for their ancestors across the commit
    /// point: their state goes into the partition's checkpoint (those beyond
    /// [`JOIN_STATE_MAX_BYTES`] are scored now, without their ancestors). They are scored now
    /// instead where the checkpoint cannot keep them: a partition whose input is committed only
    /// up to events parked for the fleet (its later messages, and the calls they hold, are read
    /// again), and a partition that received nothing for the join's wait.
    fn keep_spans(&mut self) {
        let wait = join_wait(&self.settings);
        self.flush_spans(|shard| {
            shard
                .gate
                .as_ref()
                .is_some_and(|g| g.first_parked().is_some())
                && !shard.keeps_parked()
                || shard.last_message.elapsed() >= wait
        });
        self.release_spans(
            |shard| shard.dirty,
            |decoder, sink| decoder.export_join(JOIN_STATE_MAX_BYTES, sink),
            |shard, observer, state| {
                shard.join_state = match state {
                    Ok(state) => state,
                    Err(e) => {
                        observer.driver_event(&DriverEvent::CheckpointFailed {
                            error: format!(
                                "partition {}/{}: {e} (its waiting tool calls were scored without their ancestors)",
                                shard.partition.0, shard.partition.1
                            ),
                        });
                        None
                    }
                };
            },
        );
    }

    /// Scores the OTLP tool calls still waiting for their ancestors in every partition `which`
    /// picks, so that a checkpoint never leaves one behind.
    fn flush_spans(&mut self, which: impl Fn(&Shard) -> bool) {
        self.release_spans(
            |shard| shard.join.pending() > 0 && which(shard),
            |decoder, sink| decoder.flush_spans(sink),
            |shard, _, ()| shard.dirty = true,
        );
    }

    /// For every partition `which` picks: `release` runs with the partition's span join in the
    /// decoder and hands over the tool calls it lets go of; `keep` then records what `release`
    /// returned (and reports any failure), and the calls are scored in order, with the join back
    /// in the partition.
    fn release_spans<T>(
        &mut self,
        which: impl Fn(&Shard) -> bool,
        release: impl Fn(&Decoder, &mut dyn FnMut(Decoded<'static>)) -> T,
        keep: impl Fn(&mut Shard, &dyn PipelineObserver, T),
    ) {
        let Worker {
            settings,
            shards,
            decoder,
            out,
            observer,
            records,
            stats,
            response,
            link,
            ..
        } = self;
        for shard in shards.values_mut().filter(|s| which(s)) {
            let mut outputs =
                TopicOutputs::unsourced(out, observer.as_ref(), &mut stats.sent, settings);
            decoder.swap_join(&mut shard.join);
            let mut released = Vec::new();
            let kept = release(decoder, &mut |decoded| released.push(decoded));
            decoder.swap_join(&mut shard.join);
            keep(shard, outputs.observer, kept);
            for decoded in released {
                score(
                    shard,
                    link.as_deref(),
                    None,
                    decoded,
                    &mut stats.input,
                    records,
                    &mut outputs,
                );
                shard.watch_breaker(outputs.observer, &response.breakers_open);
            }
        }
    }

    /// Scores the parked events the fleet now allows, whenever its frontier moved since the last
    /// look (releasing may move it again: looks until it stays).
    fn release_parked(&mut self) {
        // Called before every message: the usual answer (nothing moved) costs one atomic load.
        let Some(link) = self.link.as_ref() else {
            return;
        };
        if link.board().version() == self.fleet_seen {
            return;
        }
        let link = link.clone();
        let Worker {
            settings,
            shards,
            out,
            observer,
            records,
            stats,
            response,
            fleet_seen,
            ..
        } = self;
        loop {
            let version = link.board().version();
            if version == *fleet_seen {
                return;
            }
            *fleet_seen = version;
            for shard in shards.values_mut() {
                if shard.gate.as_ref().is_none_or(|g| g.parked() == 0) {
                    continue;
                }
                let Some(mut gate) = shard.gate.take() else {
                    continue;
                };
                let mut outputs =
                    TopicOutputs::unsourced(out, observer.as_ref(), &mut stats.sent, settings);
                let released = gate.release(
                    &shard.member,
                    &mut shard.engine,
                    link.as_ref(),
                    &mut |engine, ev| {
                        // Topic outputs never fail: delivery failures are counted by the
                        // producer.
                        let Ok(()) = step(engine, Ok(ev), &mut stats.input, records, &mut outputs);
                    },
                );
                if released > 0 {
                    shard.dirty = true;
                    shard.watch_breaker(observer.as_ref(), &response.breakers_open);
                }
                if gate.parked() < PAUSE_AT {
                    link.set_parked(&shard.partition, false);
                }
                shard.gate = Some(gate);
            }
        }
    }

    /// Scores the parked events the fleet allows now, whether or not its frontier moved since
    /// the last look (events parked the worker has not looked at yet: restored, or at close).
    fn release_parked_now(&mut self) {
        self.fleet_seen = 0;
        self.release_parked();
    }

    /// Scores every parked event, whatever the fleet (a run that closes its findings at exit).
    fn release_all_parked(&mut self) {
        let Worker {
            settings,
            shards,
            out,
            observer,
            records,
            stats,
            link,
            ..
        } = self;
        for shard in shards.values_mut() {
            let Some(gate) = shard.gate.as_mut().filter(|g| g.parked() > 0) else {
                continue;
            };
            let mut outputs =
                TopicOutputs::unsourced(out, observer.as_ref(), &mut stats.sent, settings);
            let engine = &mut shard.engine;
            gate.release_all(&mut |ev| {
                // Topic outputs never fail: delivery failures are counted by the producer.
                let Ok(()) = step(engine, Ok(ev), &mut stats.input, records, &mut outputs);
            });
            shard.dirty = true;
            if let Some(link) = link {
                link.set_parked(&shard.partition, false);
            }
        }
    }

    /// A partition with nothing to read: its tick advanced to the fleet's `upto`.
    fn idle(&mut self, partition: Partition, upto: Tick) {
        let Some(link) = self.link.clone() else {
            return;
        };
        let Worker {
            settings,
            shards,
            response,
            in_force,
            stats,
            observer,
            ..
        } = self;
        let shard = shards
            .entry(partition)
            .or_insert_with_key(|p| Shard::new(settings, response, in_force, p, true));
        if let Some(gate) = shard.gate.as_mut()
            && gate.advance_idle(upto, &shard.member, &mut shard.engine, link.as_ref())
        {
            shard.dirty = true;
            stats.fleet_idle += 1;
            observer.fleet_record("idle");
        }
        self.release_parked();
    }

    /// Events parked for the fleet, over the worker's partitions.
    fn parked(&self) -> usize {
        self.shards
            .values()
            .filter_map(|s| s.gate.as_ref())
            .map(Gate::parked)
            .sum()
    }

    /// Checkpoints the partitions that moved on, replies, forgets `drop`, and waits for the
    /// commit.
    fn commit_point(&mut self, point: CommitPoint) {
        let mut state = Vec::new();
        let mut caps = Vec::new();
        if point.discard {
            for shard in self.shards.values_mut() {
                shard.forget_breaker(self.observer.as_ref(), &self.response.breakers_open);
                self.stats.retire(shard);
            }
            self.shards.clear();
            for (_, part) in self.rekeying.drain() {
                self.stats.retire_rekeying(&part);
            }
        } else {
            if point.close {
                self.flush_rekeyed_spans(|_| true);
                self.flush_spans(|_| true);
            } else {
                state = self.keep_rekeyed_spans();
                self.keep_spans();
            }
            if point.close {
                // What the fleet allows goes with its merged windows; the rest, whatever the
                // fleet. Parked events came before the held ones (a repartition partition parks
                // what it released in event-time order).
                self.release_parked_now();
                self.release_all_parked();
                self.release_held();
                for shard in self.shards.values_mut() {
                    shard.engine.finish(&mut self.records);
                    shard.dirty = true;
                }
                let mut outputs = TopicOutputs {
                    out: &self.out,
                    observer: self.observer.as_ref(),
                    stats: &mut self.stats.sent,
                    findings: self.settings.output.finding_format,
                    source: "",
                };
                let Ok(()) = deliver(&mut self.records, &mut outputs);
            }
            let mut dirty: Vec<(&Partition, &mut Shard)> =
                self.shards.iter_mut().filter(|(_, s)| s.dirty).collect();
            dirty.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (p, shard) in dirty {
                match checkpoint(p, shard, &mut state) {
                    Ok(()) => {
                        shard.dirty = false;
                        self.stats.checkpoints += 1;
                    }
                    // The partition stays dirty: the next commit point tries again.
                    Err(e) => self.observer.driver_event(&DriverEvent::CheckpointFailed {
                        error: format!("partition {}/{}: {e}", p.0, p.1),
                    }),
                }
            }
            self.stats.agents = self.shards.values().map(|s| s.engine.agents()).sum();
            self.stats.evicted_held = self.shards.values().map(|s| s.engine.stats().evicted).sum();
            // Taken before the revoked partitions are forgotten: the events they leave parked
            // are read again by their next owner, so their input is committed no further.
            self.stats.fleet_parked = self.parked();
            caps = self
                .shards
                .iter()
                .filter(|(_, s)| !s.keeps_parked())
                .filter_map(|(p, s)| Some((p.clone(), s.gate.as_ref()?.first_parked()?.0)))
                .collect();
            for p in &point.drop {
                if let Some(part) = self.rekeying.remove(p) {
                    self.stats.retire_rekeying(&part);
                }
                if let Some(mut shard) = self.shards.remove(p) {
                    if let Some(link) = &self.link {
                        link.set_parked(p, false);
                    }
                    shard.forget_breaker(self.observer.as_ref(), &self.response.breakers_open);
                    self.stats.retire(&shard);
                }
            }
        }
        let [agents, bytes, held] = self.slot.tally.set(
            self.slot.index,
            [
                self.shards.values().map(|s| s.engine.agents()).sum(),
                self.shards.values().map(|s| s.engine.state_bytes()).sum(),
                self.shards
                    .values()
                    .filter_map(|s| s.reorder.as_ref())
                    .map(Reorder::len)
                    .sum(),
            ],
        );
        self.observer.agents(agents, bytes);
        self.observer.repartition_held(held);
        if self.link.is_some() {
            let parked = self.parked();
            self.observer.fleet_parked(parked);
        }
        let reply = Checkpoint {
            records: state,
            caps,
        };
        if point.reply.send(reply).is_ok() {
            // The consumer loop closes the channel (it sends nothing) when the commit is done:
            // the error of a closed channel is the signal.
            let _ = point.resume.recv();
        }
    }

    /// Restores an unkeyed partition: where its re-keying stands, and its OTLP tool calls
    /// waiting for their ancestors.
    fn restore_rekeying(&mut self, partition: Partition, shared: Option<Box<Envelope>>) {
        let mut part = Rekeying::new(&self.settings);
        if let Some(env) = shared {
            part.offset = env.offset;
            if let Some(text) = env.join.as_deref() {
                let join = Envelope::decode_state(text)
                    .map_err(|e| format!("not base64: {e}"))
                    .and_then(|b| {
                        SpanJoin::import(self.settings.decode.decoder().join, &b)
                            .map_err(|e| e.to_string())
                    });
                match join {
                    Ok(join) => part.join = join,
                    // Reported; the partition's calls that were waiting are lost with it.
                    Err(error) => self.observer.driver_event(&DriverEvent::StateUnreadable {
                        topic: format!("{}/{} (waiting tool calls)", partition.0, partition.1),
                        error,
                    }),
                }
            }
        }
        self.rekeying.insert(partition, part);
    }

    fn restore(
        &mut self,
        partition: Partition,
        shared: Option<Box<Envelope>>,
        agents: Vec<Envelope>,
    ) {
        if self.routes.unkeyed.contains_key(&*partition.0) {
            self.restore_rekeying(partition, shared);
            return;
        }
        let gated = self.link.is_some();
        let mut shard = Shard::new(
            &self.settings,
            &self.response,
            &self.in_force,
            &partition,
            gated,
        );
        let unreadable = |what: String, error: String| DriverEvent::StateUnreadable {
            topic: format!("{}/{} ({what})", partition.0, partition.1),
            error,
        };
        // A record that cannot be restored leaves its part of the state cold, and says so.
        if let Some(env) = shared {
            let observer = self.observer.as_ref();
            let report = |what: &str| {
                let what = what.to_string();
                move |e| observer.driver_event(&unreadable(what, e))
            };
            if let Some(reorder) = read_part(env.held.as_deref(), report("held events")) {
                shard.reorder = Some(reorder);
            }
            if let Some(bytes) = env.join.as_deref().and_then(|b| {
                Envelope::decode_state(b)
                    .map_err(|e| report("waiting tool calls")(format!("not base64: {e}")))
                    // Reported just above; the partition's waiting calls stay cold.
                    .ok()
            }) {
                match SpanJoin::import(self.settings.decode.decoder().join, &bytes) {
                    Ok(join) => shard.join = join,
                    Err(e) => report("waiting tool calls")(e.to_string()),
                }
            }
            if gated
                && let Some((mut gate, skip)) = read_part::<(Gate, Option<Position>)>(
                    env.gate.as_deref(),
                    report("fleet barrier"),
                )
            {
                let parked =
                    read_part(env.parked.as_deref(), report("events parked for the fleet"));
                if let Some(events) = parked {
                    gate.restore_parked(events);
                }
                shard.gate = Some(gate);
                shard.skip = skip;
            }
            match env.state_bytes().map(|b| shard.engine.import_shared(&b)) {
                Ok(Ok(())) => {
                    shard.reflected = env.offset;
                    if gated {
                        // The restored fleet ticks at the barrier, as it did.
                        shard.engine.fleet.share();
                    }
                }
                Ok(Err(e)) => self
                    .observer
                    .driver_event(&unreadable("partition state".into(), e.to_string())),
                Err(e) => self.observer.driver_event(&unreadable(
                    "partition state".into(),
                    format!("not base64: {e}"),
                )),
            }
        }
        for env in agents {
            let restored = env.state_bytes().map(|bytes| {
                shard
                    .engine
                    .import_agent(&env.agent_id, env.agent_kind.as_deref(), &bytes)
            });
            match restored {
                Ok(Ok(())) => {
                    self.stats.restored_agents += 1;
                    if env.offset > shard.reflected {
                        shard
                            .agents_ahead
                            .insert(env.agent_id.as_str().into(), env.offset);
                    }
                }
                Ok(Err(e)) => self.observer.driver_event(&unreadable(
                    format!("agent {}", env.agent_id),
                    e.to_string(),
                )),
                Err(e) => self.observer.driver_event(&unreadable(
                    format!("agent {}", env.agent_id),
                    format!("not base64: {e}"),
                )),
            }
        }
        for fb in &self.feedback {
            if shard.engine.knows_finding(&fb.agent_id, &fb.finding_id) {
                shard.engine.add_feedback((**fb).clone());
            }
        }
        let parked = shard.gate.as_ref().map_or(0, Gate::parked);
        if parked >= PAUSE_AT
            && let Some(link) = &self.link
        {
            link.set_parked(&partition, true);
        }
        self.shards.insert(partition, shard);
        if parked > 0 {
            // Restored parked events go as soon as the fleet allows, message or not.
            self.release_parked_now();
        }
    }
}

/// Where the events of one unkeyed input message (or of a flush of its partition's waiting tool
/// calls) are re-keyed to, and how many went.
struct Rekeyer<'a> {
    out: &'a Output,
    route: &'a Route,
    observer: &'a dyn PipelineObserver,
    partition: i32,
    offset: i64,
    /// Index of the next event from the message.
    index: &'a mut u32,
    /// Events re-keyed by the worker.
    rekeyed: &'a mut u64,
}

impl Rekeyer<'_> {
    /// Runs `release` on a partition's span join, swapped into the decoder, and re-keys every
    /// tool call it releases.
    fn released<R>(
        mut self,
        decoder: &Decoder,
        join: &mut SpanJoin,
        release: impl FnOnce(&Decoder, &mut dyn FnMut(Decoded<'static>)) -> R,
    ) -> R {
        decoder.swap_join(join);
        let r = release(decoder, &mut |decoded| {
            // A released tool call is never a rejected record.
            if let Ok(ev) = decoded {
                self.send(ev);
            }
        });
        decoder.swap_join(join);
        r
    }

    /// Sends one event to the repartition partition of its agent.
    fn send(&mut self, event: AccessEvent<'_>) {
        let from = (self.partition, self.offset, *self.index);
        *self.index += 1;
        let partition =
            crate::engine::partition_of(event.agent_id.as_bytes(), self.route.partitions);
        let rec = Rekeyed { from, event };
        match serde_json::to_vec(&rec) {
            Ok(v) => {
                self.out.send_to(
                    &self.route.topic,
                    Some(partition as i32),
                    &rec.event.agent_id,
                    &v,
                );
                *self.rekeyed += 1;
                self.observer.repartition("rekeyed");
            }
            Err(e) => self.observer.driver_event(&DriverEvent::OutputUnwritable {
                topic: self.route.topic.clone(),
                error: e.to_string(),
            }),
        }
    }
}

/// Decodes a message of `topic`: OTLP protobuf when the topic is one of
/// `kafka.otlp_proto_topics`, else JSON.
fn decode<'a>(
    decoder: &Decoder,
    kafka: &crate::config::KafkaSettings,
    topic: &str,
    bytes: &'a [u8],
    each: &mut dyn FnMut(Decoded<'a>),
) {
    if kafka.otlp_proto_topics.iter().any(|t| t == topic) {
        decoder.decode_otlp_proto(bytes, each);
    } else {
        decoder.decode_message(bytes, each);
    }
}

/// A repartition record that cannot be read back, as a rejected record.
fn unreadable<'a>(bytes: &'a [u8], e: &serde_json::Error) -> Rejected<'a> {
    Rejected {
        reason: RejectReason::NotJson(format!("repartition record: {e}")),
        raw: bytes,
        offset: 0,
    }
}

/// Takes a repartition record into `reorder` and hands `each` the events it lets go, in event
/// time order. A record of a message the restored state already reflects goes to `each` at
/// once (which counts it and skips it); one that cannot be read is rejected.
fn admit(
    reorder: &mut Reorder,
    bytes: &[u8],
    replayed: bool,
    order_ms: i64,
    each: &mut dyn FnMut(Decoded<'_>),
) -> Option<Admitted> {
    let admitted = match serde_json::from_slice::<Rekeyed<'_>>(bytes) {
        Err(e) => {
            each(Err(unreadable(bytes, &e)));
            None
        }
        Ok(rec) if replayed => {
            each(Ok(rec.event));
            None
        }
        Ok(rec) => Some(reorder.admit(rec.event.time_ms, &rec.event.event_id, rec.from, bytes)),
    };
    while let Some(held) = reorder.next_ready(order_ms) {
        release(&held, each);
    }
    admitted
}

/// Scores one decoded record in its partition's engine, unless the fleet is not at the record's
/// tick yet: then it is parked (see [`super::barrier`]).
///
/// An event without a position in its partition (a tool call released from the span join at a
/// checkpoint, or at the end) is never parked: it is scored at once, with the knowledge in force.
fn score(
    shard: &mut Shard,
    link: Option<&FleetLink>,
    pos: Option<Position>,
    decoded: Decoded<'_>,
    input: &mut InputCounts,
    records: &mut Vec<OutputRecord>,
    outputs: &mut TopicOutputs<'_>,
) {
    if let (Some(link), Some(gate), Ok(ev), Some(pos)) = (link, shard.gate.as_mut(), &decoded, pos)
        && gate.offer(ev, pos, &shard.member, &mut shard.engine, link) == Offer::Parked
    {
        if gate.parked() == PAUSE_AT {
            link.set_parked(&shard.partition, true);
        }
        return;
    }
    // Topic outputs never fail: delivery failures are counted by the producer.
    let Ok(()) = step(&mut shard.engine, decoded, input, records, outputs);
}

/// Hands `each` the event of a held repartition record.
fn release(held: &[u8], each: &mut dyn FnMut(Decoded<'_>)) {
    match serde_json::from_slice::<Rekeyed<'_>>(held) {
        Ok(rec) => each(Ok(rec.event)),
        Err(e) => each(Err(unreadable(held, &e))),
    }
}

/// Counts of what a worker sent.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sent {
    pub(crate) findings: u64,
    pub(crate) outputs: u64,
}

/// Where a worker's outputs go: one topic per kind, through the shared producer.
struct TopicOutputs<'a> {
    out: &'a Output,
    observer: &'a dyn PipelineObserver,
    stats: &'a mut Sent,
    findings: FindingFormat,
    /// `topic/partition/offset` of the message being processed (the key of its dead letters).
    source: &'a str,
}

impl<'a> TopicOutputs<'a> {
    /// Outputs of records that belong to no one message (released at a checkpoint or at the
    /// end): they produce no dead letter.
    fn unsourced(
        out: &'a Output,
        observer: &'a dyn PipelineObserver,
        stats: &'a mut Sent,
        settings: &Settings,
    ) -> TopicOutputs<'a> {
        TopicOutputs {
            out,
            observer,
            stats,
            findings: settings.output.finding_format,
            source: "",
        }
    }
}

impl Outputs for TopicOutputs<'_> {
    type Error = std::convert::Infallible;

    fn scored(&mut self, ev: &AccessEvent<'_>, verdict: &Verdict) -> Result<(), Self::Error> {
        self.observer.input_event(ev.format, ev.outcome);
        if let Some(t) = &self.out.topics.scores {
            match serde_json::to_vec(&score_line(ev, verdict)) {
                Ok(v) => self.out.send(t, &ev.agent_id, &v),
                Err(e) => self.observer.driver_event(&DriverEvent::OutputUnwritable {
                    topic: t.clone(),
                    error: e.to_string(),
                }),
            }
        }
        Ok(())
    }

    fn record(&mut self, rec: &OutputRecord) -> Result<(), Self::Error> {
        let mut v = Vec::with_capacity(1024);
        if let Err(e) = rec.write_json(&mut v, self.findings) {
            self.observer.driver_event(&DriverEvent::OutputUnwritable {
                topic: self.out.topics.for_kind(rec.kind()).to_string(),
                error: e.to_string(),
            });
            return Ok(());
        }
        self.observer.output(rec.kind());
        self.stats.outputs += 1;
        match rec {
            OutputRecord::Finding(_) => self.stats.findings += 1,
            OutputRecord::Audit(a) => {
                if let Some(id) = a.details["suppression_id"].as_str() {
                    match a.event {
                        AuditEvent::SuppressionCreated => {
                            if let Ok(v) = serde_json::to_value(a) {
                                self.observer.suppression_created(id, &v);
                            }
                        }
                        AuditEvent::SuppressionExpired => self.observer.suppression_expired(id),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        self.out
            .send(self.out.topics.for_kind(rec.kind()), rec.agent_id(), &v);
        Ok(())
    }

    fn dead_letter(&mut self, rej: &Rejected<'_>) -> Result<(), Self::Error> {
        self.observer.dead_letter(rej.reason.code());
        let dl = DeadLetter::new(rej, self.source, None);
        self.stats.outputs += 1;
        self.out.send(
            &self.out.topics.dead_letters,
            self.source,
            dl.to_json().as_bytes(),
        );
        Ok(())
    }
}

/// One optional part of a partition's checkpoint (base64 of postcard); one that cannot be read
/// is reported (saying which layer failed) and left out.
fn read_part<T: serde::de::DeserializeOwned>(
    text: Option<&str>,
    report: impl FnOnce(String),
) -> Option<T> {
    let read = |text: &str| -> Result<T, String> {
        let bytes = Envelope::decode_state(text).map_err(|e| format!("not base64: {e}"))?;
        postcard::from_bytes(&bytes).map_err(|e| e.to_string())
    };
    // Reported just above; the part stays cold.
    read(text?).map_err(report).ok()
}

/// Why a partition's checkpoint could not be written.
#[derive(Debug, thiserror::Error)]
enum CheckpointError {
    /// An agent's or the partition's state could not be encoded.
    #[error("encoding state: {0}")]
    State(#[from] postcard::Error),
    /// A state record's envelope could not be encoded.
    #[error("encoding a state record: {0}")]
    Envelope(#[from] serde_json::Error),
}

/// The checkpoint of one partition: the agents touched since the last one, then the
/// partition's shared state, all at the partition's offset.
fn checkpoint(
    p: &Partition,
    shard: &mut Shard,
    state: &mut Vec<StateRecord>,
) -> Result<(), CheckpointError> {
    let (topic, partition) = (p.0.to_string(), p.1);
    // With events parked for the fleet, the checkpoint is of what came before the first: its
    // message is read again after a restart, and the records of it already reflected skipped.
    let skip = match shard.gate.as_ref().and_then(Gate::first_parked) {
        _ if shard.keeps_parked() => None,
        Some(first) => Some(first),
        None => shard.skip.filter(|(o, _)| *o > shard.offset),
    };
    let offset = skip.map_or(shard.offset, |(o, _)| o - 1);
    for agent in shard.engine.take_touched() {
        let bytes = match shard.engine.export_agent(&agent) {
            Some(Ok(bytes)) => bytes,
            Some(Err(e)) => return Err(e.into()),
            None => continue,
        };
        let env = Envelope::agent(
            &agent,
            shard.engine.agent_kind(&agent),
            &topic,
            partition,
            offset,
            &bytes,
        );
        state.push(StateRecord {
            key: agent.to_string(),
            payload: serde_json::to_vec(&env)?,
        });
    }
    let mut env = Envelope::partition(&topic, partition, offset, &shard.engine.export_shared()?);
    if let Some(reorder) = &shard.reorder {
        env.held = Some(Envelope::encode_state(&postcard::to_allocvec(reorder)?));
    }
    env.join = shard.join_state.as_deref().map(Envelope::encode_state);
    if let Some(gate) = &shard.gate {
        env.gate = Some(Envelope::encode_state(&postcard::to_allocvec(&(
            gate, skip,
        ))?));
        if shard.keeps_parked() && gate.parked() > 0 {
            env.parked = Some(Envelope::encode_state(&postcard::to_allocvec(
                gate.parked_events(),
            )?));
        }
    }
    state.push(StateRecord {
        key: Envelope::partition_key(&topic, partition),
        payload: serde_json::to_vec(&env)?,
    });
    Ok(())
}
