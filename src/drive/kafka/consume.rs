//! The consumer loop: polls, dispatches messages to workers by partition, pauses when their
//! queues are full, and at commit points checkpoints state and commits input offsets; handles
//! rebalances.
//!
//! A commit point stops the workers at a message boundary. Every partition that moved on is
//! checkpointed at the offset of its last dispatched message, then:
//! - `at_least_once`: the outputs produced so far are flushed (acknowledged), then the
//!   checkpoints, and only then the input offsets are committed. A crash before the commit
//!   replays messages whose outputs were already delivered; the restored checkpoint, never
//!   older than the commit, tells which ones, so state is never updated twice.
//! - `exactly_once`: the checkpoints and the input offsets (`send_offsets_to_transaction`)
//!   join the outputs in the open transaction, which is committed. An abortable error aborts it
//!   and rewinds: the workers forget their partitions, which are restored from the state topic
//!   and re-read from the committed offsets. A fatal error (this instance was fenced) stops
//!   the run.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::Producer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::Partition;
use super::barrier::Publish;
use super::deliveries::Deliveries;
use super::fleet_topic::FleetLink;
use super::produce::{Output, base_config};
use super::side;
use super::state::{Envelope, StateKind, read_state};
use super::worker::{
    CommitPoint, Links, ResponseCtx, Slot, StateRecord, Tally, WorkItem, Worker, WorkerStats,
};
use super::{KafkaError, PipelineObserver, RunOptions, RunSummary};
use crate::config::{KafkaSettings, Settings};
use crate::telemetry::DriverEvent;

/// What the workers handed back at a commit point: their checkpoint records, the offsets their
/// partitions with parked events may be committed to, and the senders whose dropping lets them go
/// on.
type Stopped = (Vec<StateRecord>, Vec<(Partition, i64)>, Vec<Sender<()>>);

/// What the consumer loop and the rebalance callbacks share.
pub(crate) struct Shared {
    kafka: KafkaSettings,
    base: ClientConfig,
    /// Queues to the workers; emptied at shutdown, which ends the workers.
    workers: Mutex<Vec<SyncSender<WorkItem>>>,
    n_workers: usize,
    out: Arc<Output>,
    observer: Arc<dyn PipelineObserver>,
    /// Messages polled but not yet accepted by their worker (bounded by librdkafka's
    /// prefetch: the partitions are paused while it is not empty).
    backlog: Mutex<VecDeque<OwnedMessage>>,
    topics: Mutex<HashMap<String, Arc<str>>>,
    /// Per partition, the offset to commit at the next commit point.
    pending: Mutex<HashMap<Partition, i64>>,
    /// Messages of an older epoch are skipped by the workers (after a rewind).
    epoch: Arc<AtomicU64>,
    /// A failure met in a rebalance callback, which stops the run.
    failure: Mutex<Option<KafkaError>>,
    /// Close open findings at the final commit point (`RunOptions::close_findings_at_exit`).
    close_at_exit: bool,
    assignment_changed: AtomicBool,
    assigned: AtomicBool,
    /// A commit was refused for a rebalance in progress: periodic commit points wait for the
    /// next assignment.
    rebalancing: AtomicBool,
    /// Transactions aborted and rewound.
    aborts: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a transaction commit came to.
enum Committed {
    Yes,
    /// Aborted: the partitions must be rewound.
    Aborted,
}

impl Shared {
    fn topic(&self, name: &str) -> Arc<str> {
        let mut t = lock(&self.topics);
        if let Some(a) = t.get(name) {
            return a.clone();
        }
        let a: Arc<str> = name.into();
        t.insert(name.to_string(), a.clone());
        a
    }

    /// The worker that owns a partition.
    fn worker_of(&self, topic: &str, partition: i32) -> usize {
        let t = self
            .kafka
            .input_topics
            .iter()
            .position(|x| x == topic)
            .unwrap_or(0);
        (t * 31 + partition.max(0) as usize) % self.n_workers
    }

    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_secs(self.kafka.shutdown_deadline_secs)
    }

    fn parts_of(&self, tpl: &TopicPartitionList) -> Vec<Partition> {
        tpl.elements()
            .iter()
            .map(|e| (self.topic(e.topic()), e.partition()))
            .collect()
    }

    /// Stops every worker at a commit point; returns their checkpoint records and the senders
    /// whose dropping lets them go on.
    fn barrier(
        &self,
        drop: &[Partition],
        close: bool,
        discard: bool,
        deadline: Instant,
    ) -> Result<Stopped, KafkaError> {
        let (tx, rx) = mpsc::channel();
        let mut resumes = Vec::new();
        for w in lock(&self.workers).iter() {
            let (resume_tx, resume) = mpsc::channel();
            let point = CommitPoint {
                drop: drop.to_vec(),
                close,
                discard,
                reply: tx.clone(),
                resume,
            };
            if w.send(WorkItem::Checkpoint(point)).is_ok() {
                resumes.push(resume_tx);
            }
        }
        let (mut records, mut caps) = (Vec::new(), Vec::new());
        for _ in 0..resumes.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(r) => {
                    records.extend(r.records);
                    caps.extend(r.caps);
                }
                Err(_) => {
                    return Err(KafkaError::Thread(
                        "a worker did not reach the commit point within the deadline".into(),
                    ));
                }
            }
        }
        Ok((records, caps, resumes))
    }

    /// A commit point: checkpoints, then commits the input offsets dispatched so far (see the
    /// module documentation). `drop` partitions are forgotten afterwards (revoked).
    fn commit_point(
        &self,
        consumer: &BaseConsumer<Ctx>,
        drop: &[Partition],
        close: bool,
    ) -> Result<(), KafkaError> {
        let started = Instant::now();
        let deadline = self.deadline();
        let (records, caps, resumes) = self.barrier(drop, close, false, deadline)?;
        let offsets = std::mem::take(&mut *lock(&self.pending));
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in &offsets {
            // A partition with events parked for the fleet is committed up to the message of the
            // first (read again after a restart); its dispatched offset waits for a later commit.
            let cap = caps
                .iter()
                .find(|((ct, cp), _)| ct == t && cp == p)
                .map_or(*o, |(_, c)| (*c).min(*o));
            tpl.add_partition_offset(t, *p, Offset::Offset(cap))?;
        }
        let result = if self.out.transactional {
            match self.commit_transaction(consumer, &records, &tpl, deadline) {
                Ok(Committed::Yes) => Ok(true),
                Ok(Committed::Aborted) => {
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                    std::mem::drop(resumes);
                    self.observer.checkpoint(started.elapsed().as_secs_f64());
                    return self.rewind(consumer, drop);
                }
                Err(e) => Err(e),
            }
        } else {
            self.commit_outputs(consumer, &records, &tpl, deadline)
        };
        std::mem::drop(resumes);
        {
            let mut pending = lock(&self.pending);
            for (k, _) in &caps {
                if let Some(o) = offsets.get(k)
                    && !drop.contains(k)
                {
                    pending.entry(k.clone()).or_insert(*o);
                }
            }
        }
        if !matches!(result, Ok(true)) {
            // Not committed: keep the offsets of the partitions still owned for the next attempt.
            let mut pending = lock(&self.pending);
            for (k, o) in offsets {
                if !drop.contains(&k) {
                    pending.entry(k).or_insert(o);
                }
            }
        }
        self.observer.checkpoint(started.elapsed().as_secs_f64());
        result.map(|_| ())
    }

    /// Hands checkpoint records to the producer, for the state topic.
    fn send_checkpoints(&self, records: &[StateRecord]) {
        for r in records {
            self.out.send(&self.out.topics.state, &r.key, &r.payload);
        }
    }

    /// Waits until every record produced so far is acknowledged.
    fn flush(&self, deadline: Instant) -> Result<(), KafkaError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(e) = self.out.producer.flush(left) {
            return Err(KafkaError::Delivery(format!(
                "outputs were not acknowledged in time: {e}"
            )));
        }
        match self.out.deliveries.failure() {
            Some(f) => Err(KafkaError::Delivery(f)),
            None => Ok(()),
        }
    }

    /// `at_least_once`: outputs, then checkpoints, then offsets. Returns whether the offsets
    /// were committed.
    fn commit_outputs(
        &self,
        consumer: &BaseConsumer<Ctx>,
        records: &[StateRecord],
        tpl: &TopicPartitionList,
        deadline: Instant,
    ) -> Result<bool, KafkaError> {
        self.flush(deadline)?;
        if !records.is_empty() {
            self.send_checkpoints(records);
            self.flush(deadline)?;
        }
        // A refused commit (a rebalance in progress) loses nothing: the checkpoints are
        // delivered, and the partition's next reader skips what they reflect. The offsets of
        // partitions still owned are committed at the first commit point after the new
        // assignment (committing with a stale generation would make the member rejoin again).
        if tpl.count() > 0
            && let Err(e) = consumer.commit(tpl, CommitMode::Sync)
        {
            self.observer
                .driver_event(&DriverEvent::OffsetsNotCommitted {
                    error: e.to_string(),
                });
            self.rebalancing.store(true, Ordering::Release);
            return Ok(false);
        }
        Ok(true)
    }

    /// `exactly_once`: checkpoints and offsets join the transaction, which is committed and a
    /// new one begun.
    fn commit_transaction(
        &self,
        consumer: &BaseConsumer<Ctx>,
        records: &[StateRecord],
        tpl: &TopicPartitionList,
        deadline: Instant,
    ) -> Result<Committed, KafkaError> {
        let producer = &self.out.producer;
        self.send_checkpoints(records);
        let meta = consumer.group_metadata();
        if meta.is_none() && tpl.count() > 0 {
            return Err(KafkaError::Thread(
                "the consumer has no group metadata to commit offsets in a transaction".into(),
            ));
        }
        let attempt = || -> Result<(), RdError> {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(meta) = &meta
                && tpl.count() > 0
            {
                producer.send_offsets_to_transaction(tpl, meta, left)?;
            }
            producer.commit_transaction(left)
        };
        loop {
            match attempt() {
                Ok(()) => {
                    producer.begin_transaction()?;
                    return Ok(Committed::Yes);
                }
                Err(RdError::Transaction(e)) if e.txn_requires_abort() => {
                    self.observer
                        .driver_event(&DriverEvent::TransactionAborted {
                            error: e.to_string(),
                        });
                    let left = deadline.saturating_duration_since(Instant::now());
                    producer.abort_transaction(left)?;
                    self.out.deliveries.clear();
                    self.aborts.fetch_add(1, Ordering::AcqRel);
                    producer.begin_transaction()?;
                    return Ok(Committed::Aborted);
                }
                Err(RdError::Transaction(e)) if e.is_retriable() && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// After an aborted transaction: every worker forgets its partitions, which are restored
    /// from the state topic and read again from their committed offsets.
    fn rewind(
        &self,
        consumer: &BaseConsumer<Ctx>,
        revoked: &[Partition],
    ) -> Result<(), KafkaError> {
        let deadline = self.deadline();
        let (_, _, resumes) = self.barrier(&[], false, true, deadline)?;
        std::mem::drop(resumes);
        lock(&self.backlog).clear();
        lock(&self.pending).clear();
        let assignment = consumer.assignment()?;
        let parts: Vec<Partition> = self
            .parts_of(&assignment)
            .into_iter()
            .filter(|p| !revoked.contains(p))
            .collect();
        if parts.is_empty() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let committed = consumer.committed(left)?;
        for e in committed.elements() {
            let part = (self.topic(e.topic()), e.partition());
            if !parts.contains(&part) {
                continue;
            }
            let offset = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            consumer.seek(e.topic(), e.partition(), offset, left)?;
        }
        self.restore(&parts);
        Ok(())
    }

    /// Reads the state of these partitions and hands it to their workers, before any of
    /// their messages.
    fn restore(&self, parts: &[Partition]) {
        let started = Instant::now();
        let keep = |env: &Envelope| {
            parts
                .iter()
                .any(|(t, p)| **t == *env.topic && *p == env.partition)
        };
        match read_state(
            &self.base,
            &self.kafka.group_id,
            &self.kafka.state_topic,
            Duration::from_secs(15),
            &keep,
            self.observer.as_ref(),
        ) {
            Ok(states) => {
                let mut by_part: HashMap<Partition, (Option<Box<Envelope>>, Vec<Envelope>)> =
                    HashMap::new();
                for env in states.into_values() {
                    let part = (self.topic(&env.topic), env.partition);
                    let entry = by_part.entry(part).or_default();
                    match env.kind {
                        StateKind::Partition => entry.0 = Some(Box::new(env)),
                        StateKind::Agent => entry.1.push(env),
                    }
                }
                for (partition, (shared, mut agents)) in by_part {
                    agents.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
                    let w = self.worker_of(&partition.0, partition.1);
                    let tx = lock(&self.workers).get(w).cloned();
                    let item = WorkItem::Restore {
                        partition,
                        shared,
                        agents,
                    };
                    // Without a queue (emptied at shutdown) the run is ending, and the state
                    // stays on the state topic for the partition's next owner; a worker gone
                    // stops the run.
                    if tx.is_some_and(|tx| tx.send(item).is_err()) {
                        self.record_failure(KafkaError::Thread(format!(
                            "worker {w} stopped before a partition's state was restored"
                        )));
                    }
                }
            }
            Err(e) => self.observer.driver_event(&DriverEvent::StateUnreadable {
                topic: self.kafka.state_topic.clone(),
                error: e.to_string(),
            }),
        }
        self.observer.restore(started.elapsed().as_secs_f64());
    }

    fn record_failure(&self, e: KafkaError) {
        let mut f = lock(&self.failure);
        if f.is_none() {
            *f = Some(e);
        }
    }
}

/// The consumer's context: rebalance callbacks.
pub struct Ctx {
    shared: Arc<Shared>,
}

impl ClientContext for Ctx {
    /// librdkafka's statistics (every `statistics.interval.ms`): consumer lag per partition.
    fn stats_raw(&self, statistics: &[u8]) {
        let observed = std::str::from_utf8(statistics)
            .map_err(|e| e.to_string())
            .and_then(|json| {
                crate::telemetry::observe_statistics(json, self.shared.observer.as_ref())
                    .map_err(|e| e.to_string())
            });
        if let Err(error) = observed {
            self.shared
                .observer
                .driver_event(&DriverEvent::StatisticsUnreadable { error });
        }
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let sh = &self.shared;
        let parts = sh.parts_of(tpl);
        if parts.is_empty() {
            return;
        }
        // Messages not yet dispatched are left to the partitions' next owner.
        lock(&sh.backlog).retain(|m| {
            !parts
                .iter()
                .any(|(t, p)| &**t == m.topic() && *p == m.partition())
        });
        // The checkpoints must be on the state topic, and the offsets committed, before the
        // partitions' next owner reads them.
        if let Err(e) = sh.commit_point(consumer, &parts, false) {
            sh.observer.driver_event(&DriverEvent::CheckpointFailed {
                error: e.to_string(),
            });
            sh.record_failure(e);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else {
            return;
        };
        let sh = &self.shared;
        resume_assigned(consumer, tpl);
        sh.assignment_changed.store(true, Ordering::Release);
        sh.rebalancing.store(false, Ordering::Release);
        let parts = sh.parts_of(tpl);
        if !parts.is_empty() {
            sh.restore(&parts);
        }
        let now_assigned = consumer
            .assignment()
            .map(|a| a.count() > 0)
            .unwrap_or(false);
        if now_assigned != sh.assigned.swap(now_assigned, Ordering::AcqRel) {
            sh.observer.ready(now_assigned);
        }
    }
}

/// Resumes partitions just assigned. librdkafka keeps an application's pause on a partition
/// across its revocation: one paused here (a full backlog, events parked for the fleet) and
/// revoked before it was resumed would come back paused and never be read again. A partition
/// assigned starts resumed; the consumer loop pauses it again if it must.
fn resume_assigned<C: ConsumerContext>(consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
    let mut parts = TopicPartitionList::new();
    for e in tpl.elements() {
        parts.add_partition(e.topic(), e.partition());
    }
    if parts.count() > 0 {
        // librdkafka's resume never fails as a whole; a partition it does not know yet has no
        // pause to lift.
        let _ = consumer.resume(&parts);
    }
}

fn consumer_config(k: &KafkaSettings) -> ClientConfig {
    let mut c = base_config(k);
    c.set("group.id", &k.group_id)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    if !k.properties.contains_key("statistics.interval.ms") {
        c.set("statistics.interval.ms", "5000");
    }
    for (key, value) in [
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
        ("queued.max.messages.kbytes", "16384"),
    ] {
        if !k.properties.contains_key(key) {
            c.set(key, value);
        }
    }
    c
}

/// The response context of the workers, the channel feedback arrives on, and the side-input
/// threads (entitlements file and topic, feedback topic), which stop with `stop`.
#[allow(clippy::type_complexity)]
fn side_inputs(
    settings: &Settings,
    options: &RunOptions,
    stop: &Arc<AtomicBool>,
) -> Result<
    (
        ResponseCtx,
        mpsc::Receiver<crate::decide::suppress::Feedback>,
        Vec<JoinHandle<()>>,
    ),
    KafkaError,
> {
    let k = &settings.kafka;
    let g = &settings.grants;
    let base = base_config(k);
    let mut threads = Vec::new();
    let ents = if options.entitlements.is_some()
        || !g.entitlements_path.is_empty()
        || !g.entitlements_topic.is_empty()
    {
        let shared = match &options.entitlements {
            Some(e) => e.clone(),
            None if !g.entitlements_path.is_empty() => crate::grants::shared(
                crate::drive::files::entitlements(std::path::Path::new(&g.entitlements_path))?,
            ),
            None => crate::grants::shared(Default::default()),
        };
        let initial = (**shared.load()).clone();
        let feed = side::EntitlementsFeed::new(initial, shared.clone(), options.observer.clone());
        if !g.entitlements_path.is_empty() {
            threads.push(
                feed.watch_file(
                    g.entitlements_path.clone().into(),
                    Duration::from_secs(g.reload_secs),
                    stop.clone(),
                )
                .map_err(|e| KafkaError::Thread(e.to_string()))?,
            );
        }
        if !g.entitlements_topic.is_empty() {
            threads.push(feed.follow_topic(
                &base,
                &k.group_id,
                &g.entitlements_topic,
                stop.clone(),
            )?);
        }
        Some(shared)
    } else {
        None
    };
    let (tx, rx) = mpsc::channel();
    for fb in &options.feedback {
        // `rx` is alive (it is returned below), and the channel is unbounded: this cannot fail.
        let _ = tx.send(fb.clone());
    }
    if !settings.feedback.topic.is_empty() {
        threads.push(side::follow_feedback(
            &base,
            &k.group_id,
            &settings.feedback.topic,
            tx,
            stop.clone(),
            options.observer.clone(),
        )?);
    }
    let ml = &settings.ml;
    let model = match &options.model {
        Some(m) => Some(m.clone()),
        None => crate::drive::files::model_for(ml)?.map(|m| crate::ml::shared(Some(m))),
    };
    if let Some(m) = &model {
        let groups = m.load().as_ref().map_or(0, |m| m.groups());
        options.observer.model_loaded(groups, true);
        if !ml.model_path.is_empty() {
            threads.push(
                side::watch_model(
                    m.clone(),
                    ml.model_path.clone().into(),
                    Duration::from_secs(ml.reload_secs),
                    options.observer.clone(),
                    stop.clone(),
                )
                .map_err(|e| KafkaError::Thread(e.to_string()))?,
            );
        }
    }
    let signer = match &options.signer {
        Some(s) => s.clone(),
        None if !settings.commands.signing_key.is_empty() => Arc::new(crate::drive::files::signer(
            std::path::Path::new(&settings.commands.signing_key),
        )?),
        None => Arc::new(crate::drive::files::fresh_signer()),
    };
    Ok((
        ResponseCtx {
            ents,
            model,
            signer,
            breakers_open: Arc::new(std::sync::atomic::AtomicI64::new(0)),
        },
        rx,
        threads,
    ))
}

/// What the consumer loop keeps of the fleet barrier: the partitions it paused because their
/// events are parked, and when each partition last received a message.
struct FleetWatch {
    /// The parked set's version last acted on.
    parked_version: u64,
    /// Partitions paused for parked events.
    paused: HashSet<Partition>,
    /// When each partition held here last received a message (or was first seen here).
    last_seen: HashMap<Partition, Instant>,
    last_idle_check: Instant,
    /// Whether the parked partitions must be paused again (a resume of every partition).
    repause: bool,
}

impl Default for FleetWatch {
    fn default() -> Self {
        FleetWatch {
            parked_version: 0,
            paused: HashSet::new(),
            last_seen: HashMap::new(),
            last_idle_check: Instant::now(),
            repause: false,
        }
    }
}

impl FleetWatch {
    /// A message of a partition arrived.
    fn seen(&mut self, topic: &Arc<str>, partition: i32) {
        let now = Instant::now();
        match self.last_seen.get_mut(&(topic.clone(), partition)) {
            Some(t) => *t = now,
            None => {
                self.last_seen.insert((topic.clone(), partition), now);
            }
        }
    }

    /// The assignment changed (its new partitions start resumed): the parked ones are paused
    /// again.
    fn reassigned(&mut self) {
        self.repause = true;
    }

    /// Every partition was resumed: the parked ones are paused again, and no partition counts
    /// as idle for the time it was paused.
    fn resumed(&mut self) {
        self.repause = true;
        let now = Instant::now();
        self.last_seen.values_mut().for_each(|t| *t = now);
    }

    /// Pauses the partitions whose events are parked for the fleet, and resumes those whose
    /// events went (unless every partition is paused for a full backlog).
    fn pause_parked(&mut self, consumer: &BaseConsumer<Ctx>, link: &FleetLink, all_paused: bool) {
        let v = link.parked_version();
        if v == self.parked_version && !self.repause {
            return;
        }
        self.parked_version = v;
        let now = link.parked();
        let tpl = |parts: &mut dyn Iterator<Item = &Partition>| {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in parts {
                tpl.add_partition(t, *p);
            }
            tpl
        };
        let pause = if self.repause {
            tpl(&mut now.iter())
        } else {
            tpl(&mut now.difference(&self.paused))
        };
        if pause.count() > 0 {
            // librdkafka's pause never fails as a whole; a partition it no longer knows
            // (revoked meanwhile) is skipped, and needs no pause.
            let _ = consumer.pause(&pause);
        }
        if !all_paused {
            let resume = tpl(&mut self.paused.difference(&now));
            if resume.count() > 0 {
                // As with pause.
                let _ = consumer.resume(&resume);
            }
        }
        // A partition resumed starts its idle clock again: it was not idle while paused.
        let resumed = Instant::now();
        for p in self.paused.difference(&now) {
            self.last_seen.insert(p.clone(), resumed);
        }
        self.repause = false;
        self.paused = now;
    }

    /// Advances every partition held here that received nothing for `idle_secs` to the
    /// furthest tick of the fleet, when the fleet waits for some partition.
    fn advance_idle(
        &mut self,
        consumer: &BaseConsumer<Ctx>,
        link: &FleetLink,
        shared: &Shared,
        senders: &[SyncSender<WorkItem>],
        routes: &super::rekey::Routes,
        idle_secs: u32,
    ) {
        self.last_idle_check = Instant::now();
        let board = link.board();
        let Some(furthest) = board.furthest() else {
            return;
        };
        if board.frontier().is_some_and(|f| f >= furthest) {
            return;
        }
        let Ok(assigned) = consumer.assignment() else {
            return;
        };
        let idle = Duration::from_secs(u64::from(idle_secs));
        let now = Instant::now();
        // What was received on partitions since revoked says nothing of them when they return.
        let held: HashSet<Partition> = assigned
            .elements()
            .iter()
            .map(|e| (shared.topic(e.topic()), e.partition()))
            .collect();
        self.last_seen.retain(|p, _| held.contains(p));
        for e in assigned.elements() {
            if routes.unkeyed.contains_key(e.topic()) {
                continue;
            }
            let part: Partition = (shared.topic(e.topic()), e.partition());
            if self.paused.contains(&part) {
                continue;
            }
            let since = *self.last_seen.entry(part.clone()).or_insert(now);
            if now.duration_since(since) < idle {
                continue;
            }
            let w = shared.worker_of(&part.0, part.1);
            // A worker whose queue is full is busy: its partitions are not idle.
            let _ = senders[w].try_send(WorkItem::Idle {
                partition: part,
                upto: furthest,
            });
        }
    }
}

/// The whole pipeline, on the calling (blocking) thread, until `stop` is set or a failure.
pub(crate) fn pipeline(
    settings: Settings,
    options: RunOptions,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, KafkaError> {
    let k = settings.kafka.clone();
    if super::startup::await_brokers(&k, &stop)? == super::startup::Brokers::Stopped {
        // Nothing was started.
        return Ok(RunSummary::default());
    }
    let deliveries = Arc::new(Deliveries::default());
    let out = Arc::new(Output::new(&k, deliveries.clone())?);
    let epoch = Arc::new(AtomicU64::new(0));
    let routes = Arc::new(super::rekey::prepare(&base_config(&k), &k)?);
    let link = super::fleet_topic::prepare(
        &base_config(&k),
        &k,
        &routes,
        settings.detect.fleet_tick_secs / 60,
        out.clone(),
        options.observer.clone(),
    )?;
    let (response, feedback_rx, mut side) = side_inputs(&settings, &options, &stop)?;
    let mut senders = Vec::new();
    let mut handles: Vec<JoinHandle<WorkerStats>> = Vec::new();
    let tally = Arc::new(Tally::new(k.workers));
    for i in 0..k.workers {
        let (tx, rx) = mpsc::sync_channel(k.channel_capacity);
        senders.push(tx);
        let w = Worker::new(
            settings.clone(),
            out.clone(),
            options.observer.clone(),
            epoch.clone(),
            response.clone(),
            Links {
                routes: routes.clone(),
                fleet: link.clone(),
            },
            Slot {
                tally: tally.clone(),
                index: i,
            },
        );
        let h = std::thread::Builder::new()
            .name(format!("cinch-worker-{i}"))
            .spawn(move || w.run(rx))
            .map_err(|e| KafkaError::Thread(e.to_string()))?;
        handles.push(h);
    }
    if let Some(link) = &link {
        link.set_workers(senders.clone());
        side.push(super::fleet_topic::spawn_reader(
            &base_config(&k),
            link.clone(),
            stop.clone(),
        )?);
    }
    let shared = Arc::new(Shared {
        base: base_config(&k),
        kafka: k.clone(),
        workers: Mutex::new(senders.clone()),
        n_workers: senders.len(),
        out: out.clone(),
        observer: options.observer.clone(),
        backlog: Mutex::new(VecDeque::new()),
        topics: Mutex::new(HashMap::new()),
        pending: Mutex::new(HashMap::new()),
        epoch: epoch.clone(),
        failure: Mutex::new(None),
        close_at_exit: options.close_findings_at_exit,
        assignment_changed: AtomicBool::new(false),
        assigned: AtomicBool::new(false),
        rebalancing: AtomicBool::new(false),
        aborts: AtomicU64::new(0),
    });
    let consumer: BaseConsumer<Ctx> = consumer_config(&k).create_with_context(Ctx {
        shared: shared.clone(),
    })?;
    let subscription = routes.subscription(&k);
    let topics: Vec<&str> = subscription.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;

    let mut messages = 0u64;
    let mut paused = false;
    let high_water = (k.channel_capacity * k.workers).max(16);
    let interval = Duration::from_millis(k.commit_interval_ms);
    let mut last_commit = Instant::now();
    let mut failure: Option<KafkaError> = None;
    let mut fleet = FleetWatch::default();
    while !stop.load(Ordering::Acquire) {
        if let Some(e) = lock(&shared.failure).take() {
            failure = Some(e);
            break;
        }
        while let Ok(fb) = feedback_rx.try_recv() {
            let fb = Arc::new(fb);
            for (w, tx) in senders.iter().enumerate() {
                if tx.send(WorkItem::Feedback(fb.clone())).is_err() {
                    return Err(KafkaError::Thread(format!("worker {w} stopped")));
                }
            }
        }
        if let Some(f) = deliveries.failure()
            && !out.transactional
        {
            failure = Some(KafkaError::Delivery(f));
            break;
        }
        // Hand the backlog to the workers, in order, while they accept it.
        let backlog_len = {
            let mut backlog = lock(&shared.backlog);
            let mut pending = lock(&shared.pending);
            let current = epoch.load(Ordering::Acquire);
            while let Some(m) = backlog.pop_front() {
                let topic = shared.topic(m.topic());
                let w = shared.worker_of(&topic, m.partition());
                let (p, o) = (m.partition(), m.offset());
                let item = WorkItem::Message {
                    epoch: current,
                    topic: topic.clone(),
                    partition: p,
                    offset: o,
                    payload: m.payload().map(<[u8]>::to_vec),
                };
                match senders[w].try_send(item) {
                    Ok(()) => {
                        messages += 1;
                        pending.insert((topic, p), o + 1);
                    }
                    Err(TrySendError::Full(_)) => {
                        backlog.push_front(m);
                        break;
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        return Err(KafkaError::Thread(format!("worker {w} stopped")));
                    }
                }
            }
            backlog.len()
        };
        // Pause when the backlog reaches a queue's worth per worker; resume once it is empty. The gap
        // avoids a pause for every message, which would discard librdkafka's prefetch each time.
        let changed = shared.assignment_changed.swap(false, Ordering::AcqRel);
        if changed {
            fleet.reassigned();
        }
        if backlog_len >= high_water && (!paused || changed) {
            if let Ok(a) = consumer.assignment() {
                // librdkafka's pause never fails as a whole; a partition it no longer knows
                // (revoked meanwhile) is skipped, and needs no pause.
                let _ = consumer.pause(&a);
            }
            paused = true;
        } else if backlog_len == 0 && paused {
            // librdkafka resumes each partition after the last message it handed over (what
            // it had prefetched was purged at the pause), and those are in the backlog.
            if let Ok(a) = consumer.assignment() {
                // As with pause: it never fails as a whole, and skips only partitions revoked.
                let _ = consumer.resume(&a);
            }
            paused = false;
            // Partitions with events parked for the fleet stay paused; the others start their
            // idle clocks again.
            fleet.resumed();
        }
        if let Some(link) = &link {
            fleet.pause_parked(&consumer, link, paused);
            if !paused && fleet.last_idle_check.elapsed() >= Duration::from_secs(1) {
                fleet.advance_idle(
                    &consumer,
                    link,
                    &shared,
                    &senders,
                    &routes,
                    k.fleet_idle_secs,
                );
            }
        }
        let wait = if backlog_len > 0 { 5 } else { 50 };
        match consumer.poll(Duration::from_millis(wait)) {
            Some(Ok(m)) => {
                if link.is_some() {
                    fleet.seen(&shared.topic(m.topic()), m.partition());
                }
                lock(&shared.backlog).push_back(m.detach());
            }
            Some(Err(e)) => shared.observer.driver_event(&DriverEvent::ConsumerError {
                error: e.to_string(),
            }),
            None => {}
        }
        if last_commit.elapsed() >= interval && !shared.rebalancing.load(Ordering::Acquire) {
            if let Err(e) = shared.commit_point(&consumer, &[], false) {
                failure = Some(e);
                break;
            }
            last_commit = Instant::now();
        }
    }

    // Shutdown: the workers finish what they were given; a last commit point checkpoints it and
    // commits the offsets; then the group is left, so the partitions move at once.
    options.observer.ready(false);
    lock(&shared.backlog).clear();
    if failure.is_none()
        && let Err(e) = shared.commit_point(&consumer, &[], shared.close_at_exit)
    {
        failure = Some(e);
    }
    if failure.is_none() {
        consumer.unsubscribe();
        let leave = Instant::now() + Duration::from_secs(2);
        while Instant::now() < leave
            && consumer
                .assignment()
                .map(|a| a.count() > 0)
                .unwrap_or(false)
        {
            // Polled to run the revoke callbacks. A message handed over now comes after the
            // last commit: the partition's next owner reads it again.
            if let Some(Err(e)) = consumer.poll(Duration::from_millis(50)) {
                shared.observer.driver_event(&DriverEvent::ConsumerError {
                    error: e.to_string(),
                });
            }
        }
        if let Some(e) = lock(&shared.failure).take() {
            failure = Some(e);
        }
    }
    drop(consumer);
    stop.store(true, Ordering::Release);
    for h in side {
        if h.join().is_err() && failure.is_none() {
            failure = Some(KafkaError::Thread(
                "a side-input thread (entitlements, feedback or model) panicked".into(),
            ));
        }
    }
    // Closing the queues ends the workers.
    if let Some(link) = &link {
        link.set_workers(Vec::new());
    }
    drop(senders);
    lock(&shared.workers).clear();
    let mut summary = RunSummary {
        messages,
        ..RunSummary::default()
    };
    for h in handles {
        let st = h
            .join()
            .map_err(|_| KafkaError::Thread("a worker panicked".into()))?;
        summary.input.add(&st.input);
        summary.already_reflected += st.already_reflected;
        summary.findings += st.sent.findings;
        summary.outputs += st.sent.outputs;
        summary.checkpoints += st.checkpoints;
        summary.restored_agents += st.restored_agents;
        summary.agents += st.agents;
        summary.evicted_agents += st.evicted_retired + st.evicted_held;
        summary.skipped_spans += st.skipped_spans;
        summary.agent_from_resource += st.agent_from_resource;
        summary.joined_spans += st.joined_spans;
        summary.join_fallbacks += st.join_fallbacks;
        summary.rekeyed += st.rekeyed;
        summary.repartition_duplicates += st.repartition_duplicates;
        summary.repartition_late += st.repartition_late;
        summary.fleet_idle += st.fleet_idle;
        summary.fleet_parked += st.fleet_parked;
    }
    summary.fleet_published = link.as_ref().map_or(0, |l| l.published());
    summary.delivered = deliveries.delivered.load(Ordering::Acquire);
    summary.aborted_transactions = shared.aborts.load(Ordering::Acquire);
    match failure {
        Some(f) => Err(f),
        None => Ok(summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext};

    /// A consumer that resumes what it is assigned, as the pipeline's does.
    struct Resuming;
    impl ClientContext for Resuming {}
    impl ConsumerContext for Resuming {
        fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
            if let Rebalance::Assign(tpl) = rebalance {
                resume_assigned(consumer, tpl);
            }
        }
    }

    /// A consumer that does not.
    struct Plain;
    impl ClientContext for Plain {}
    impl ConsumerContext for Plain {}

    fn config(brokers: &str, group: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "200");
        c
    }

    fn produce(producer: &BaseProducer, topic: &str, partition: i32, tag: &str) {
        for i in 0..5 {
            let v = format!("{tag}-{partition}-{i}");
            producer
                .send(
                    BaseRecord::<str, str>::to(topic)
                        .partition(partition)
                        .payload(&v),
                )
                .expect("queued");
        }
        producer.flush(Duration::from_secs(10)).expect("flushed");
    }

    /// Polls `a` (and `b`, to keep it in the group) for `secs`, until `until` holds of the
    /// messages tagged `tag` `a` got, by partition, and the number of partitions it holds.
    fn poll<C: ConsumerContext, D: ConsumerContext>(
        a: &BaseConsumer<C>,
        b: Option<&BaseConsumer<D>>,
        tag: &str,
        secs: u64,
        until: &dyn Fn(&HashMap<i32, usize>, usize) -> bool,
    ) -> HashMap<i32, usize> {
        let mut got = HashMap::new();
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if let Some(Ok(m)) = a.poll(Duration::from_millis(50))
                && m.payload().is_some_and(|p| p.starts_with(tag.as_bytes()))
            {
                *got.entry(m.partition()).or_insert(0) += 1;
            }
            if let Some(b) = b {
                // Only kept polling; what it reads is not looked at.
                let _ = b.poll(Duration::from_millis(10));
            }
            let n = a.assignment().map(|t| t.count()).unwrap_or(0);
            if until(&got, n) {
                break;
            }
        }
        got
    }

    /// Pauses every partition of `a`, lets a second consumer take one of them and leave, and
    /// returns what `a` then reads of five new messages on each partition (the partition that
    /// came back is read from the start, nothing being committed: only the new ones count).
    fn paused_revoked_and_assigned_again<C: ConsumerContext + 'static>(
        ctx: C,
    ) -> HashMap<i32, usize> {
        let mock: MockCluster<'static, DefaultProducerContext> =
            MockCluster::new(1).expect("mock cluster");
        let topic = "paused";
        mock.create_topic(topic, 2, 1).expect("topic");
        let brokers = mock.bootstrap_servers();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .expect("producer");
        let a: BaseConsumer<C> = config(&brokers, "g").create_with_context(ctx).expect("a");
        a.subscribe(&[topic]).expect("subscribe");
        produce(&producer, topic, 0, "old");
        produce(&producer, topic, 1, "old");
        let first = poll::<C, Plain>(&a, None, "old", 30, &|g, _| g.values().sum::<usize>() == 10);
        assert_eq!(
            first.values().sum::<usize>(),
            10,
            "a reads both partitions first"
        );
        a.pause(&a.assignment().expect("assignment"))
            .expect("paused");
        let b: BaseConsumer<Plain> = config(&brokers, "g").create_with_context(Plain).expect("b");
        b.subscribe(&[topic]).expect("subscribe");
        poll(&a, Some(&b), "", 30, &|_, n| n == 1);
        assert_eq!(
            a.assignment().expect("assignment").count(),
            1,
            "b took a partition"
        );
        // The loop resumes what it still holds once its backlog is gone.
        a.resume(&a.assignment().expect("assignment"))
            .expect("resumed");
        drop(b);
        poll::<C, Plain>(&a, None, "", 30, &|_, n| n == 2);
        assert_eq!(
            a.assignment().expect("assignment").count(),
            2,
            "the partition came back"
        );
        produce(&producer, topic, 0, "new");
        produce(&producer, topic, 1, "new");
        poll::<C, Plain>(&a, None, "new", 8, &|g, _| g.values().sum::<usize>() == 10)
    }

    #[test]
    fn a_partition_paused_then_revoked_is_read_again_when_it_comes_back() {
        // Without the resume on assignment, librdkafka keeps the returned partition paused.
        let plain = std::thread::spawn(|| paused_revoked_and_assigned_again(Plain));
        let got = paused_revoked_and_assigned_again(Resuming);
        assert_eq!(got.get(&0), Some(&5), "{got:?}");
        assert_eq!(got.get(&1), Some(&5), "{got:?}");
        let plain = plain.join().expect("plain consumer");
        assert_eq!(plain.values().sum::<usize>(), 5, "{plain:?}");
    }
}
