//! The consumer loop: polls, dispatches messages to workers by partition, pauses when their
//! queues are full, stores offsets as outputs are acknowledged, and handles rebalances.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::Producer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::produce::{Output, base_config};
use super::state::read_state;
use super::tracker::{Partition, Tracker};
use super::worker::{WorkItem, Worker, WorkerStats};
use super::{KafkaError, PipelineObserver, RunOptions, RunSummary};
use crate::config::{KafkaSettings, Settings};

/// What the consumer loop and the rebalance callbacks share.
pub(crate) struct Shared {
    kafka: KafkaSettings,
    base: ClientConfig,
    /// Queues to the workers; emptied at shutdown, which ends the workers.
    workers: Mutex<Vec<SyncSender<WorkItem>>>,
    n_workers: usize,
    tracker: Arc<Tracker>,
    out: Arc<Output>,
    observer: Arc<dyn PipelineObserver>,
    /// Messages polled but not yet accepted by their worker (bounded by librdkafka's
    /// prefetch: the partitions are paused while it is not empty).
    backlog: Mutex<VecDeque<OwnedMessage>>,
    topics: Mutex<HashMap<String, Arc<str>>>,
    assignment_changed: AtomicBool,
    assigned: AtomicBool,
}

impl Shared {
    fn backlog(&self) -> MutexGuard<'_, VecDeque<OwnedMessage>> {
        self.backlog.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn workers(&self) -> MutexGuard<'_, Vec<SyncSender<WorkItem>>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn topic(&self, name: &str) -> Arc<str> {
        let mut t = self.topics.lock().unwrap_or_else(|e| e.into_inner());
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

    fn deadline(&self) -> Duration {
        Duration::from_secs(self.kafka.shutdown_deadline_secs)
    }

    /// Stores the offsets whose outputs are all acknowledged.
    fn store_offsets(&self, consumer: &BaseConsumer<Ctx>) {
        let done = self.tracker.committable();
        if done.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in done {
            let _ = tpl.add_partition_offset(&t, p, Offset::Offset(o));
        }
        // A partition revoked meanwhile cannot be stored; its new owner re-reads it.
        let _ = consumer.store_offsets(&tpl);
    }

    /// Waits (up to the deadline) until nothing is in flight on these partitions.
    fn drain(&self, parts: Option<&[Partition]>, deadline: Instant) {
        while self.tracker.in_flight(parts) > 0
            && Instant::now() < deadline
            && self.tracker.failure().is_none()
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The consumer's context: rebalance callbacks.
pub(crate) struct Ctx {
    shared: Arc<Shared>,
}

impl ClientContext for Ctx {
    /// librdkafka's statistics (every `statistics.interval.ms`): consumer lag per partition.
    fn stats_raw(&self, statistics: &[u8]) {
        if let Ok(json) = std::str::from_utf8(statistics) {
            let _ = crate::telemetry::observe_statistics(json, self.shared.observer.as_ref());
        }
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let sh = &self.shared;
        let parts: Vec<Partition> = tpl
            .elements()
            .iter()
            .map(|e| (sh.topic(e.topic()), e.partition()))
            .collect();
        if parts.is_empty() {
            return;
        }
        let deadline = Instant::now() + sh.deadline();
        // Messages not yet dispatched are left to the partition's next owner.
        sh.backlog().retain(|m| {
            !parts
                .iter()
                .any(|(t, p)| &**t == m.topic() && *p == m.partition())
        });
        let (tx, rx) = mpsc::channel();
        let mut asked = 0;
        let workers = sh.workers().clone();
        for w in &workers {
            let item = WorkItem::Revoke {
                partitions: parts.clone(),
                done: tx.clone(),
            };
            if w.send(item).is_ok() {
                asked += 1;
            }
        }
        for _ in 0..asked {
            let left = deadline.saturating_duration_since(Instant::now());
            if rx.recv_timeout(left).is_err() {
                break;
            }
        }
        sh.drain(Some(&parts), deadline);
        // The checkpoints must be on the state topic before the partitions' next owner reads it.
        let _ = sh
            .out
            .producer
            .flush(deadline.saturating_duration_since(Instant::now()));
        sh.store_offsets(consumer);
        let _ = consumer.commit_consumer_state(CommitMode::Sync);
        sh.tracker.remove(&parts);
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else {
            return;
        };
        let sh = &self.shared;
        sh.assignment_changed.store(true, Ordering::Release);
        let parts: Vec<Partition> = tpl
            .elements()
            .iter()
            .map(|e| (sh.topic(e.topic()), e.partition()))
            .collect();
        let now_assigned = consumer
            .assignment()
            .map(|a| a.count() > 0)
            .unwrap_or(false);
        if !parts.is_empty() {
            let started = Instant::now();
            let keep = |env: &super::state::Envelope| {
                parts
                    .iter()
                    .any(|(t, p)| **t == *env.topic && *p == env.partition)
            };
            match read_state(
                &sh.base,
                &sh.kafka.group_id,
                &sh.kafka.state_topic,
                Duration::from_secs(2),
                &keep,
            ) {
                Ok(states) => {
                    let mut states: Vec<_> = states.into_values().collect();
                    states.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
                    for env in states {
                        let w = sh.worker_of(&env.topic, env.partition);
                        let tx = sh.workers().get(w).cloned();
                        if let Some(tx) = tx {
                            let _ = tx.send(WorkItem::Restore(Box::new(env)));
                        }
                    }
                }
                Err(e) => eprintln!(
                    "cinch run: cannot read state topic {}: {e}; the assigned partitions start from empty profiles",
                    sh.kafka.state_topic
                ),
            }
            sh.observer.restore(started.elapsed().as_secs_f64());
        }
        if now_assigned != sh.assigned.swap(now_assigned, Ordering::AcqRel) {
            sh.observer.ready(now_assigned);
        }
    }
}

fn consumer_config(k: &KafkaSettings) -> ClientConfig {
    let mut c = base_config(k);
    c.set("group.id", &k.group_id)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    if !k.properties.contains_key("statistics.interval.ms") {
        c.set("statistics.interval.ms", "5000");
    }
    for (key, value) in [
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "1000"),
        ("auto.offset.reset", "earliest"),
        ("queued.max.messages.kbytes", "16384"),
    ] {
        if !k.properties.contains_key(key) {
            c.set(key, value);
        }
    }
    c
}

/// The whole pipeline, on the calling (blocking) thread, until `stop` is set or an output
/// cannot be delivered.
pub(crate) fn pipeline(
    settings: Settings,
    options: RunOptions,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, KafkaError> {
    let k = settings.kafka.clone();
    let tracker = Arc::new(Tracker::default());
    let out = Arc::new(Output::new(&k, tracker.clone())?);
    let mut senders = Vec::new();
    let mut handles: Vec<JoinHandle<WorkerStats>> = Vec::new();
    for i in 0..k.workers {
        let (tx, rx) = mpsc::sync_channel(k.channel_capacity);
        senders.push(tx);
        let w = Worker::new(settings.clone(), out.clone(), options.observer.clone());
        let h = std::thread::Builder::new()
            .name(format!("cinch-worker-{i}"))
            .spawn(move || w.run(rx))
            .map_err(|e| KafkaError::Thread(e.to_string()))?;
        handles.push(h);
    }
    let shared = Arc::new(Shared {
        base: base_config(&k),
        kafka: k.clone(),
        workers: Mutex::new(senders.clone()),
        n_workers: senders.len(),
        tracker: tracker.clone(),
        out: out.clone(),
        observer: options.observer.clone(),
        backlog: Mutex::new(VecDeque::new()),
        topics: Mutex::new(HashMap::new()),
        assignment_changed: AtomicBool::new(false),
        assigned: AtomicBool::new(false),
    });
    let consumer: BaseConsumer<Ctx> = consumer_config(&k).create_with_context(Ctx {
        shared: shared.clone(),
    })?;
    let topics: Vec<&str> = k.input_topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;

    let mut messages = 0u64;
    let mut paused = false;
    let high_water = (k.channel_capacity * k.workers).max(16);
    let mut last_store = Instant::now();
    let mut next_offset: HashMap<Partition, i64> = HashMap::new();
    let mut failure = None;
    while !stop.load(Ordering::Acquire) {
        if let Some(f) = tracker.failure() {
            failure = Some(f);
            break;
        }
        // Hand the backlog to the workers, in order, while they accept it.
        let backlog_len = {
            let mut backlog = shared.backlog();
            while let Some(m) = backlog.pop_front() {
                let topic = shared.topic(m.topic());
                let w = shared.worker_of(&topic, m.partition());
                let (p, o) = (m.partition(), m.offset());
                let item = WorkItem::Message {
                    topic: topic.clone(),
                    partition: p,
                    offset: o,
                    payload: m.payload().map(<[u8]>::to_vec),
                };
                tracker.begin(&topic, p, o);
                match senders[w].try_send(item) {
                    Ok(()) => {
                        messages += 1;
                        next_offset.insert((topic, p), o + 1);
                    }
                    Err(TrySendError::Full(_)) => {
                        tracker.forget(&topic, p, o);
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
        if backlog_len >= high_water && (!paused || changed) {
            if let Ok(a) = consumer.assignment() {
                let _ = consumer.pause(&a);
            }
            paused = true;
        } else if backlog_len == 0 && paused {
            if let Ok(a) = consumer.assignment() {
                let _ = consumer.resume(&a);
                // Restart each fetcher at the next offset to hand over: what librdkafka had
                // prefetched before the pause was discarded.
                for e in a.elements() {
                    let key = (shared.topic(e.topic()), e.partition());
                    if let Some(next) = next_offset.get(&key) {
                        let _ = consumer.seek(
                            e.topic(),
                            e.partition(),
                            Offset::Offset(*next),
                            Duration::ZERO,
                        );
                    }
                }
            }
            paused = false;
        }
        let wait = if backlog_len > 0 { 5 } else { 50 };
        match consumer.poll(Duration::from_millis(wait)) {
            Some(Ok(m)) => shared.backlog().push_back(m.detach()),
            Some(Err(e)) => eprintln!("cinch run: consumer: {e}"),
            None => {}
        }
        if last_store.elapsed() >= Duration::from_millis(100) {
            shared.store_offsets(&consumer);
            last_store = Instant::now();
        }
    }

    // Shutdown: let the workers finish what they hold, checkpoint, then commit.
    options.observer.ready(false);
    let deadline = Instant::now() + shared.deadline();
    shared.backlog().clear();
    // Closing the queues ends the workers once they have drained them.
    drop(senders);
    shared.workers().clear();
    let mut summary = RunSummary {
        messages,
        ..RunSummary::default()
    };
    for h in handles {
        let st = h
            .join()
            .map_err(|_| KafkaError::Thread("a worker panicked".into()))?;
        summary.records += st.records;
        summary.events += st.events;
        summary.already_reflected += st.already_reflected;
        summary.dead_letters += st.dead_letters;
        for (k, v) in st.dead_by_reason {
            *summary.dead_by_reason.entry(k).or_default() += v;
        }
        for (k, v) in st.by_format {
            *summary.by_format.entry(k).or_default() += v;
        }
        summary.findings += st.findings;
        summary.outputs += st.outputs;
        summary.checkpoints += st.checkpoints;
        summary.restored_agents += st.restored_agents;
        summary.agents += st.agents;
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = out.producer.flush(left);
    shared.drain(None, deadline);
    if failure.is_none() {
        failure = tracker.failure();
    }
    shared.store_offsets(&consumer);
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
    // Leave the group cleanly (serving the revocation), so the partitions move at once.
    consumer.unsubscribe();
    let leave = Instant::now() + Duration::from_secs(2);
    while Instant::now() < leave
        && consumer
            .assignment()
            .map(|a| a.count() > 0)
            .unwrap_or(false)
    {
        let _ = consumer.poll(Duration::from_millis(50));
    }
    drop(consumer);
    summary.delivered = tracker.delivered.load(Ordering::Acquire);
    match failure {
        Some(f) => Err(KafkaError::Delivery(f)),
        None => Ok(summary),
    }
}
