//! Per-agent state checkpoints on the compacted state topic, and reading them back when a
//! partition is assigned.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

/// Version of the envelope format.
pub const FORMAT_VERSION: u32 = 1;

/// One checkpoint record: the value of a state-topic message keyed by agent id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Format version ([`FORMAT_VERSION`]).
    pub v: u32,
    /// The agent.
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
}

impl Envelope {
    /// The decoded state bytes.
    pub fn state_bytes(&self) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.state)
            .ok()
    }

    /// Encodes state bytes for [`Envelope::state`].
    pub fn encode_state(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// Reads the state topic to its end (the high watermark of every partition when it was
/// opened, or until nothing arrives for `quiet`) and returns the newest envelope of each agent
/// that `keep` accepts.
pub(crate) fn read_state(
    base: &ClientConfig,
    group: &str,
    topic: &str,
    quiet: Duration,
    keep: &dyn Fn(&Envelope) -> bool,
) -> Result<HashMap<String, Envelope>, RdError> {
    let mut c = base.clone();
    c.set("group.id", format!("{group}.state-restore"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = c.create()?;
    let timeout = Duration::from_secs(10);
    let md = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut tpl = TopicPartitionList::new();
    let mut ends: HashMap<i32, i64> = HashMap::new();
    for t in md.topics() {
        if t.name() != topic || t.error().is_some() {
            continue;
        }
        for p in t.partitions() {
            let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
            if high > low {
                tpl.add_partition_offset(topic, p.id(), Offset::Offset(low))?;
                ends.insert(p.id(), high);
            }
        }
    }
    let mut out = HashMap::new();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer.assign(&tpl)?;
    let mut last_arrival = Instant::now();
    while !ends.is_empty() && last_arrival.elapsed() < quiet {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            last_arrival = Instant::now();
            if let Some(end) = ends.get(&m.partition())
                && m.offset() + 1 >= *end
            {
                ends.remove(&m.partition());
            }
            let Some(env) = m
                .payload()
                .and_then(|p| serde_json::from_slice::<Envelope>(p).ok())
            else {
                continue;
            };
            if env.v == FORMAT_VERSION && keep(&env) {
                out.insert(env.agent_id.clone(), env);
            }
        }
    }
    Ok(out)
}
