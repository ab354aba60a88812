//! Per-agent state checkpoints on the compacted state topic, and reading them back when a
//! partition is assigned.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::BorrowedMessage;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

/// Version of the envelope format.
pub const FORMAT_VERSION: u32 = 18;

/// What a checkpoint record holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StateKind {
    /// One agent's profile (keyed by agent id).
    #[default]
    Agent,
    /// What the agents of one input partition share: fleet knowledge, open findings and the
    /// event-time watermark (keyed by [`Envelope::partition_key`]).
    Partition,
}

/// One checkpoint record: the value of a state-topic message. Every record of one checkpoint of
/// a partition carries the same offset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    /// Format version ([`FORMAT_VERSION`]).
    pub v: u32,
    /// What the record holds.
    #[serde(default)]
    pub kind: StateKind,
    /// The agent (empty for a partition record).
    #[serde(default)]
    pub agent_id: String,
    /// Its declared kind, as first seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_kind: Option<String>,
    /// The input topic of the agent's events.
    pub topic: String,
    /// The input partition.
    pub partition: i32,
    /// The offset of the newest input message reflected in the state.
    pub offset: i64,
    /// The serialised agent state, base64.
    pub state: String,
    /// A repartition partition's records held back for event-time order
    /// (`drive::kafka::rekey::Reorder`, postcard, base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// The partition's place at the fleet barrier and its events parked there
    /// (`drive::kafka::barrier::Gate`, postcard, base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// A repartition partition's events parked at the fleet barrier, in order (positions and
    /// events, postcard, base64): its input is committed past them, so they are kept here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parked: Option<String>,
    /// The partition's OTLP tool calls waiting for their ancestors and the spans it remembers
    /// as ancestors (`event::otlp::SpanJoin`, postcard, base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<String>,
}

impl Envelope {
    /// The checkpoint of one agent.
    pub fn agent(
        agent_id: &str,
        agent_kind: Option<&str>,
        topic: &str,
        partition: i32,
        offset: i64,
        state: &[u8],
    ) -> Envelope {
        Envelope {
            v: FORMAT_VERSION,
            kind: StateKind::Agent,
            agent_id: agent_id.to_string(),
            agent_kind: agent_kind.map(str::to_string),
            topic: topic.to_string(),
            partition,
            offset,
            state: Self::encode_state(state),
            held: None,
            gate: None,
            parked: None,
            join: None,
        }
    }

    /// The checkpoint of a partition's shared state.
    pub fn partition(topic: &str, partition: i32, offset: i64, state: &[u8]) -> Envelope {
        Envelope {
            v: FORMAT_VERSION,
            kind: StateKind::Partition,
            agent_id: String::new(),
            agent_kind: None,
            topic: topic.to_string(),
            partition,
            offset,
            state: Self::encode_state(state),
            held: None,
            gate: None,
            parked: None,
            join: None,
        }
    }

    /// The state-topic key of a partition record (agent records are keyed by agent id).
    pub fn partition_key(topic: &str, partition: i32) -> String {
        format!("cinch.partition/{topic}/{partition}")
    }

    /// The decoded state bytes.
    pub fn state_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        Self::decode_state(&self.state)
    }

    /// Bytes encoded by [`Envelope::encode_state`].
    pub fn decode_state(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(text)
    }

    /// Encodes state bytes for [`Envelope::state`].
    pub fn encode_state(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// Reads the state topic to its end (see [`read_to_end`]) and returns the newest envelope of
/// each key that `keep` accepts. A tombstone (a record without a value) deletes its key's
/// state; records that are not checkpoints, or of another format version, are skipped and
/// reported to `observer`.
pub(crate) fn read_state(
    base: &ClientConfig,
    group: &str,
    topic: &str,
    quiet: Duration,
    keep: &dyn Fn(&Envelope) -> bool,
    observer: &dyn crate::telemetry::PipelineObserver,
) -> Result<HashMap<String, Envelope>, RdError> {
    let mut c = base.clone();
    c.set("group.id", format!("{group}.state-restore"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = c.create()?;
    let mut out = HashMap::new();
    let mut other_versions = 0u64;
    let mut unreadable = (0u64, String::new());
    read_to_end(&consumer, topic, quiet, &mut |m| {
        let key = match m.key().map(std::str::from_utf8) {
            Some(Ok(k)) => k,
            Some(Err(e)) => return skipped(&mut unreadable, m, format!("key not UTF-8: {e}")),
            None => return skipped(&mut unreadable, m, "no key".into()),
        };
        let Some(payload) = m.payload() else {
            out.remove(key);
            return;
        };
        let env = match serde_json::from_slice::<Envelope>(payload) {
            Ok(env) => env,
            Err(e) => return skipped(&mut unreadable, m, format!("not an envelope: {e}")),
        };
        if env.v != FORMAT_VERSION {
            other_versions += 1;
        } else if keep(&env) {
            out.insert(key.to_string(), env);
        }
    })?;
    if unreadable.0 > 0 {
        observer.driver_event(&crate::telemetry::DriverEvent::StateRecordsUnreadable {
            topic: topic.to_string(),
            records: unreadable.0,
            error: unreadable.1,
        });
    }
    if other_versions > 0 {
        observer.driver_event(&crate::telemetry::DriverEvent::StateOtherVersion {
            topic: topic.to_string(),
            records: other_versions,
            version: FORMAT_VERSION,
        });
    }
    Ok(out)
}

/// Counts a state record that is not a checkpoint, keeping why the first one was skipped.
fn skipped(unreadable: &mut (u64, String), m: &BorrowedMessage<'_>, why: String) {
    if unreadable.0 == 0 {
        unreadable.1 = format!("the first at {}/{}: {why}", m.partition(), m.offset());
    }
    unreadable.0 += 1;
}

/// Assigns every partition of `topic` to `consumer` from its beginning and reads what the topic
/// holds now, handing each record to `on`; the consumer stays assigned to read on. The end is
/// reached when every partition has been read (or its position has passed) up to the high
/// watermark it had when opened and then nothing more arrives for a moment (some brokers
/// under-report the watermark); a partition short of its watermark is waited for until nothing
/// arrives for `quiet`. A topic the broker reports an error for is read as empty.
pub(crate) fn read_to_end(
    consumer: &BaseConsumer,
    topic: &str,
    quiet: Duration,
    on: &mut dyn FnMut(&BorrowedMessage<'_>),
) -> Result<(), RdError> {
    let timeout = Duration::from_secs(10);
    let md = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut tpl = TopicPartitionList::new();
    let mut ends: HashMap<i32, i64> = HashMap::new();
    for t in md.topics() {
        if t.name() != topic || t.error().is_some() {
            continue;
        }
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
            let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
            if high > low {
                ends.insert(p.id(), high);
            }
        }
    }
    consumer.assign(&tpl)?;
    if ends.is_empty() {
        return Ok(());
    }
    let settle = Duration::from_millis(250).min(quiet);
    let mut last_arrival = Instant::now();
    while last_arrival.elapsed() < if ends.is_empty() { settle } else { quiet } {
        let polled = consumer.poll(Duration::from_millis(100));
        if polled.is_none() && !ends.is_empty() {
            // The consumer's position passes records it never hands over (transaction
            // markers), so a partition read to its end is known by its position too.
            if let Ok(pos) = consumer.position() {
                for e in pos.elements() {
                    if let Offset::Offset(o) = e.offset()
                        && ends.get(&e.partition()).is_some_and(|end| o >= *end)
                    {
                        ends.remove(&e.partition());
                    }
                }
            }
        }
        if let Some(Ok(m)) = polled {
            last_arrival = Instant::now();
            if let Some(end) = ends.get(&m.partition())
                && m.offset() + 1 >= *end
            {
                ends.remove(&m.partition());
            }
            on(&m);
        }
    }
    Ok(())
}
