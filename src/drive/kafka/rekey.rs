//! Unkeyed input: events re-keyed by agent id through an internal repartition topic.
//!
//! Pipelines do not always key by agent: the OpenTelemetry Collector's Kafka exporter keys spans
//! by trace id (or not at all), and CloudTrail from Firehose arrives unkeyed. An agent whose
//! events land in several partitions would get several unrelated baselines. For a topic listed in
//! `kafka.unkeyed_topics`, as Kafka Streams does:
//!
//! 1. The worker that holds an input partition decodes each message and sends every event, as a
//!    [`Rekeyed`] record, to `<group_id>-<topic>-repartition`, in the partition murmur2 gives its
//!    agent id (as a Java producer keyed by agent id would, and as `cinch replay --partitions`
//!    does). Rejected records are dead-lettered there and then. The input offset is committed
//!    only at a commit point, after the producer has had every record before it acknowledged
//!    (or, `exactly_once`, in the same transaction).
//! 2. The repartition topic is an input like any keyed one, with one engine per partition. Its
//!    partitions receive one agent's events from several input partitions, interleaved: each
//!    holds events back ([`Reorder`]) for `kafka.repartition_order_secs` of event time and
//!    releases them in event-time order. A record whose input position was already seen (a
//!    message re-read after a crash, before its offset was committed) is dropped as a duplicate.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};

use super::KafkaError;
use crate::config::KafkaSettings;
use crate::event::AccessEvent;

/// Where an event came from: the input partition, the message's offset and the event's index
/// among those the message (or a flush of waiting tool calls after it) gave. Positions of one
/// input partition only grow.
pub(crate) type Position = (i32, i64, u32);

/// A record of a repartition topic: one event and where it came from.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Rekeyed<'a> {
    /// The input position.
    pub(crate) from: Position,
    /// The event, as decoded from the input.
    #[serde(borrow)]
    pub(crate) event: AccessEvent<'a>,
}

/// Where the events of one unkeyed input topic go.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// The repartition topic.
    pub(crate) topic: String,
    /// Its partitions.
    pub(crate) partitions: usize,
}

/// The unkeyed topics of a run and their repartition topics.
#[derive(Clone, Debug, Default)]
pub(crate) struct Routes {
    /// Per unkeyed input topic.
    pub(crate) unkeyed: HashMap<String, Route>,
    /// The repartition topics, read as inputs.
    pub(crate) internal: HashSet<String>,
}

impl Routes {
    /// Every topic the consumer subscribes to: the inputs, then the repartition topics.
    pub(crate) fn subscription(&self, k: &KafkaSettings) -> Vec<String> {
        let mut topics = k.input_topics.clone();
        let mut internal: Vec<&String> = self.internal.iter().collect();
        internal.sort();
        topics.extend(internal.into_iter().cloned());
        topics
    }
}

/// Creates the repartition topic of every unkeyed input topic that lacks one (with the input's
/// partition count, or `kafka.repartition_partitions`) and returns the routes. Topics that
/// exist are used as they are.
pub(crate) fn prepare(base: &ClientConfig, k: &KafkaSettings) -> Result<Routes, KafkaError> {
    let mut routes = Routes::default();
    if k.unkeyed_topics.is_empty() {
        return Ok(routes);
    }
    let timeout = Duration::from_secs(k.startup_timeout_secs);
    let probe: BaseConsumer = base.create()?;
    let partitions_of = |topic: &str| partitions_of(&probe, topic, timeout);
    let mut wanted = Vec::new();
    for input in &k.unkeyed_topics {
        let topic = k.repartition_topic(input);
        let partitions = match partitions_of(&topic)? {
            Some(n) => n,
            None => {
                let n = match k.repartition_partitions {
                    Some(n) => n as usize,
                    None => partitions_of(input)?.ok_or_else(|| {
                        KafkaError::Repartition(format!(
                            "the unkeyed input topic {input} does not exist, so its repartition \
                             topic's partitions are unknown (create it, or set \
                             kafka.repartition_partitions)"
                        ))
                    })?,
                };
                wanted.push((topic.clone(), n));
                n
            }
        };
        routes.internal.insert(topic.clone());
        routes
            .unkeyed
            .insert(input.clone(), Route { topic, partitions });
    }
    if !wanted.is_empty() {
        create(base, &wanted, &[], timeout)?;
    }
    Ok(routes)
}

/// The number of partitions of `topic`, or `None` when it does not exist.
pub(crate) fn partitions_of(
    probe: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<Option<usize>, KafkaError> {
    let md = probe.fetch_metadata(Some(topic), timeout)?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .filter(|n| *n > 0))
}

/// Creates topics, each with its partition count, the brokers' default replication and the
/// topic settings `configs`; one that exists already (another instance created it first) is no
/// error.
pub(crate) fn create(
    base: &ClientConfig,
    topics: &[(String, usize)],
    configs: &[(&str, &str)],
    timeout: Duration,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = base.create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(t, n)| {
            configs.iter().fold(
                NewTopic::new(t, *n as i32, TopicReplication::Fixed(-1)),
                |nt, (k, v)| nt.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(timeout));
    let results = futures_executor::block_on(admin.create_topics(&new, &opts))?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => {
                return Err(KafkaError::Repartition(format!(
                    "cannot create the topic {t}: {e}"
                )));
            }
        }
    }
    Ok(())
}

/// A record held back until event time passes it.
#[derive(Debug, Serialize, Deserialize)]
struct Held {
    time_ms: i64,
    event_id: String,
    from: Position,
    /// The [`Rekeyed`] record as received.
    bytes: Vec<u8>,
}

impl Held {
    fn key(&self) -> (i64, &str, Position) {
        (self.time_ms, &self.event_id, self.from)
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// Reversed, so that the heap's top is the earliest record.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other.key().cmp(&self.key())
    }
}

/// What [`Reorder::admit`] did with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// Held until event time passes it.
    Held,
    /// Older than an event already released: it goes next, out of order.
    Late,
    /// Its input position was seen before: dropped.
    Duplicate,
}

/// The records of one repartition partition held back to be released in event-time order, and
/// the newest input position seen per input partition. Events of the same time go in event id
/// order (then input position): the order the producer gave them is lost once they are spread
/// over partitions, and the event ids make the order one that does not depend on the spread.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Reorder {
    held: BinaryHeap<Held>,
    /// The newest event time admitted.
    newest_ms: i64,
    /// The newest event time released.
    released_ms: i64,
    /// Per input partition, the newest position admitted.
    seen: BTreeMap<i32, (i64, u32)>,
}

impl Reorder {
    /// Takes the record of an event (its time and id) from input position `from`.
    pub(crate) fn admit(
        &mut self,
        time_ms: i64,
        event_id: &str,
        from: Position,
        bytes: &[u8],
    ) -> Admitted {
        let (partition, offset, index) = from;
        if self
            .seen
            .get(&partition)
            .is_some_and(|&last| (offset, index) <= last)
        {
            return Admitted::Duplicate;
        }
        self.seen.insert(partition, (offset, index));
        self.newest_ms = self.newest_ms.max(time_ms);
        self.held.push(Held {
            time_ms,
            event_id: event_id.to_string(),
            from,
            bytes: bytes.to_vec(),
        });
        if time_ms < self.released_ms {
            Admitted::Late
        } else {
            Admitted::Held
        }
    }

    /// The earliest record whose time is at least `order_ms` behind the newest admitted (or
    /// that is late), if any.
    pub(crate) fn next_ready(&mut self, order_ms: i64) -> Option<Vec<u8>> {
        let top = self.held.peek()?;
        if top.time_ms > self.newest_ms.saturating_sub(order_ms) && top.time_ms >= self.released_ms
        {
            return None;
        }
        self.take()
    }

    /// The earliest record held, whatever its time (the end of the input).
    pub(crate) fn take(&mut self) -> Option<Vec<u8>> {
        let h = self.held.pop()?;
        self.released_ms = self.released_ms.max(h.time_ms);
        Some(h.bytes)
    }

    /// Records held.
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(r: &mut Reorder, order_ms: i64) -> Vec<u8> {
        std::iter::from_fn(|| r.next_ready(order_ms))
            .map(|b| b[0])
            .collect()
    }

    #[test]
    fn records_come_out_in_event_time_order_once_the_order_window_passes_them() {
        let mut r = Reorder::default();
        // Two input partitions, each in order, interleaved.
        assert_eq!(r.admit(3_000, "", (1, 0, 0), &[3]), Admitted::Held);
        assert_eq!(r.admit(1_000, "", (0, 0, 0), &[1]), Admitted::Held);
        assert_eq!(r.admit(4_000, "", (1, 1, 0), &[4]), Admitted::Held);
        assert_eq!(drain(&mut r, 2_000), vec![1]);
        assert_eq!(r.admit(2_000, "", (0, 1, 0), &[2]), Admitted::Held);
        assert_eq!(drain(&mut r, 2_000), vec![2]);
        assert_eq!(r.admit(9_000, "", (0, 2, 0), &[9]), Admitted::Held);
        assert_eq!(drain(&mut r, 2_000), vec![3, 4]);
        assert_eq!(r.len(), 1);
        // Older than what was released: late, and out at once.
        assert_eq!(r.admit(2_500, "", (1, 2, 0), &[25]), Admitted::Late);
        assert_eq!(drain(&mut r, 2_000), vec![25]);
        assert_eq!(r.take(), Some(vec![9]));
        assert_eq!(r.take(), None);
    }

    #[test]
    fn a_position_seen_before_is_a_duplicate() {
        let mut r = Reorder::default();
        assert_eq!(r.admit(1_000, "", (0, 5, 0), &[1]), Admitted::Held);
        assert_eq!(r.admit(1_000, "", (0, 5, 1), &[2]), Admitted::Held);
        assert_eq!(r.admit(1_000, "", (0, 5, 1), &[2]), Admitted::Duplicate);
        assert_eq!(r.admit(1_000, "", (0, 4, 9), &[2]), Admitted::Duplicate);
        assert_eq!(r.admit(1_000, "", (1, 4, 9), &[3]), Admitted::Held);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn ties_in_time_go_in_event_id_then_input_position_order_and_survive_a_checkpoint() {
        let mut r = Reorder::default();
        r.admit(1_000, "e-2", (0, 1, 0), &[3]);
        r.admit(1_000, "e-1", (1, 0, 0), &[2]);
        r.admit(1_000, "e-1", (0, 7, 0), &[1]);
        let bytes = postcard::to_allocvec(&r).unwrap();
        let mut back: Reorder = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            back.admit(1_000, "e-1", (0, 7, 0), &[1]),
            Admitted::Duplicate
        );
        assert_eq!(drain(&mut back, 0), vec![1, 2, 3]);
    }
}
