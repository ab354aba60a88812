//! The fleet topic (`kafka.fleet_topic`): created at start-up, read whole by every instance into
//! its [`Board`], and written by the partitions the instance holds (see [`super::barrier`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::barrier::{Board, FleetRecord, Publish, member_name};
use super::produce::Output;
use super::rekey::Routes;
use super::worker::WorkItem;
use super::{KafkaError, Partition, PipelineObserver};
use crate::config::KafkaSettings;
use crate::telemetry::DriverEvent;

/// Seconds a fleet topic's records are kept (a partition restored from a checkpoint older than
/// this no longer finds the windows it missed).
const RETENTION_SECS: u64 = 7 * 86_400;

/// Milliseconds the fleet reader lets the broker hold a fetch with nothing new (unless
/// `kafka.properties` sets `fetch.wait.max.ms`).
const READER_FETCH_WAIT_MS: u32 = 10;

/// An instance's link to the fleet: its board, and the fleet topic it publishes to.
pub(crate) struct FleetLink {
    board: Board,
    topic: String,
    out: Arc<Output>,
    observer: Arc<dyn PipelineObserver>,
    /// Partitions with parked events: the consumer pauses them.
    parked: Mutex<HashSet<Partition>>,
    /// Bumped when `parked` changes.
    parked_version: AtomicU64,
    /// Records published by this instance.
    published: AtomicU64,
    /// The workers' queues, to wake them when the fleet's frontier moves.
    wake: Mutex<Vec<SyncSender<WorkItem>>>,
}

impl Publish for FleetLink {
    fn publish(&self, rec: FleetRecord) {
        let key = rec.key();
        match serde_json::to_vec(&rec) {
            Ok(v) => {
                self.out.send_to(&self.topic, Some(0), &key, &v);
                self.published.fetch_add(1, Ordering::AcqRel);
                self.observer.fleet_record("published");
            }
            // A window of numbers always serialises; were it not to, the other instances
            // would wait for this partition's idle rule.
            Err(e) => self.observer.driver_event(&DriverEvent::OutputUnwritable {
                topic: self.topic.clone(),
                error: e.to_string(),
            }),
        }
        // A partition held here is a member: never a stranger.
        if let Ok(true) = self.board.add(rec) {
            self.wake_all();
        }
    }

    fn board(&self) -> &Board {
        &self.board
    }
}

impl FleetLink {
    /// Marks a partition as having parked events (or none any more).
    pub(crate) fn set_parked(&self, p: &Partition, parked: bool) {
        let mut set = self
            .parked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = if parked {
            set.insert(p.clone())
        } else {
            set.remove(p)
        };
        if changed {
            self.parked_version.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The version of the parked set (it changes whenever the set does).
    pub(crate) fn parked_version(&self) -> u64 {
        self.parked_version.load(Ordering::Acquire)
    }

    /// The partitions with parked events.
    pub(crate) fn parked(&self) -> HashSet<Partition> {
        self.parked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Hands the link the workers' queues (an empty list lets them close).
    pub(crate) fn set_workers(&self, workers: Vec<SyncSender<WorkItem>>) {
        *self
            .wake
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = workers;
    }

    /// Tells every worker the fleet's frontier moved. A worker whose queue is full has messages
    /// to process, and looks at the board before each.
    fn wake_all(&self) {
        let workers = self
            .wake
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for w in workers.iter() {
            match w.try_send(WorkItem::Fleet) {
                Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }

    /// Records this instance published.
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }
}

/// The fleet's members (every partition of every scored input topic: keyed inputs and
/// repartition topics) and a board for them; creates the fleet topic if it does not exist.
/// `None` without `kafka.fleet_topic`.
pub(crate) fn prepare(
    base: &ClientConfig,
    k: &KafkaSettings,
    routes: &Routes,
    tick_min: u32,
    out: Arc<Output>,
    observer: Arc<dyn PipelineObserver>,
) -> Result<Option<Arc<FleetLink>>, KafkaError> {
    let Some(topic) = &k.fleet_topic else {
        return Ok(None);
    };
    let timeout = Duration::from_secs(k.startup_timeout_secs);
    let probe: BaseConsumer = base.create()?;
    let mut members = Vec::new();
    for t in routes
        .subscription(k)
        .iter()
        .filter(|t| !routes.unkeyed.contains_key(*t))
    {
        let n = super::rekey::partitions_of(&probe, t, timeout)?.ok_or_else(|| {
            KafkaError::Fleet(format!(
                "the input topic {t} does not exist: with kafka.fleet_topic every input topic must \
                 exist at start-up (the fleet is made of their partitions)"
            ))
        })?;
        members.extend((0..n as i32).map(|p| member_name(t, p)));
    }
    if super::rekey::partitions_of(&probe, topic, timeout)?.is_none() {
        let retention = (RETENTION_SECS * 1000).to_string();
        super::rekey::create(
            base,
            &[(topic.clone(), 1)],
            &[
                ("cleanup.policy", "compact,delete"),
                ("retention.ms", retention.as_str()),
            ],
            timeout,
        )
        .map_err(|e| KafkaError::Fleet(format!("cannot create the fleet topic {topic}: {e}")))?;
    }
    Ok(Some(Arc::new(FleetLink {
        board: Board::new(&members, tick_min),
        topic: topic.clone(),
        out,
        observer,
        parked: Mutex::new(HashSet::new()),
        parked_version: AtomicU64::new(0),
        published: AtomicU64::new(0),
        wake: Mutex::new(Vec::new()),
    })))
}

/// Reads the fleet topic from its beginning into the board until `stop`; each time the fleet's
/// frontier moves, every worker is told.
pub(crate) fn spawn_reader(
    base: &ClientConfig,
    link: Arc<FleetLink>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, KafkaError> {
    let mut cfg = base.clone();
    // A boundary waits on every instance for the records of the others: the reader asks the
    // broker for them without waiting long for more (a broker that holds a fetch for its full
    // wait would otherwise add half a second to every fleet tick).
    if cfg.get("fetch.wait.max.ms").is_none() {
        cfg.set("fetch.wait.max.ms", READER_FETCH_WAIT_MS.to_string());
    }
    cfg.set("group.id", format!("{}-reader", link.topic))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("isolation.level", "read_uncommitted");
    let consumer: BaseConsumer = cfg.create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&link.topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    std::thread::Builder::new()
        .name("cinch-fleet".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        let Some(bytes) = m.payload() else { continue };
                        match serde_json::from_slice::<FleetRecord>(bytes) {
                            Ok(rec) => {
                                link.observer.fleet_record("received");
                                match link.board.add(rec) {
                                    Ok(true) => link.wake_all(),
                                    Ok(false) => {}
                                    Err(rec) => {
                                        link.observer.driver_event(&DriverEvent::ConsumerError {
                                            error: format!(
                                                "{}/0/{}: a fleet record of {}, which is not a \
                                                 partition of this deployment's inputs: ignored",
                                                link.topic,
                                                m.offset(),
                                                rec.member
                                            ),
                                        })
                                    }
                                }
                            }
                            Err(e) => link.observer.driver_event(&DriverEvent::ConsumerError {
                                error: format!(
                                    "{}/0/{}: not a fleet record: {e}",
                                    link.topic,
                                    m.offset()
                                ),
                            }),
                        }
                    }
                    Some(Err(e)) => link.observer.driver_event(&DriverEvent::ConsumerError {
                        error: format!("fleet topic {}: {e}", link.topic),
                    }),
                    None => {}
                }
            }
        })
        .map_err(|e| KafkaError::Thread(e.to_string()))
}
