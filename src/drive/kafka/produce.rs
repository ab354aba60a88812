//! The producer: output records to their topics, each delivery counted. In `exactly_once` mode it
//! is transactional.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};

use super::deliveries::Deliveries;
use crate::config::{Guarantee, KafkaSettings};

/// Hands one record to a plain producer, waiting (and serving delivery callbacks) while its
/// queue is full. For feeders such as the demo and tests, which produce input at their own pace.
pub fn send_waiting(producer: &BaseProducer, topic: &str, key: &str, payload: &[u8]) {
    let mut rec = BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match producer.send(rec) {
            Ok(()) => break,
            Err((_, r)) => {
                rec = r;
                producer.poll(Duration::from_millis(10));
            }
        }
    }
    producer.poll(Duration::ZERO);
}

/// Counts delivery reports.
pub(crate) struct DeliveryContext {
    pub(crate) deliveries: Arc<Deliveries>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.deliveries.delivered(),
            Err((e, m)) => self.deliveries.fail(format!(
                "a record for {} was not delivered: {e}",
                rdkafka::Message::topic(m)
            )),
        }
    }
}

/// The output topics.
#[derive(Clone, Debug)]
pub(crate) struct Topics {
    pub(crate) findings: String,
    pub(crate) recommendations: String,
    pub(crate) commands: String,
    pub(crate) dead_letters: String,
    pub(crate) audit: String,
    pub(crate) state: String,
    pub(crate) scores: Option<String>,
}

impl Topics {
    pub(crate) fn of(k: &KafkaSettings) -> Topics {
        Topics {
            findings: k.findings_topic.clone(),
            recommendations: k.recommendations_topic.clone(),
            commands: k.commands_topic.clone(),
            dead_letters: k.dead_letters_topic.clone(),
            audit: k.audit_topic.clone(),
            state: k.state_topic.clone(),
            scores: k.scores_topic.clone(),
        }
    }

    /// The topic of an output record's kind.
    pub(crate) fn for_kind(&self, kind: &str) -> &str {
        match kind {
            "finding" => &self.findings,
            "recommendation" => &self.recommendations,
            "command" => &self.commands,
            "dead_letter" => &self.dead_letters,
            _ => &self.audit,
        }
    }
}

/// The shared producer and where its outputs go.
pub(crate) struct Output {
    pub(crate) producer: ThreadedProducer<DeliveryContext>,
    pub(crate) deliveries: Arc<Deliveries>,
    pub(crate) topics: Topics,
    /// Whether the producer is transactional.
    pub(crate) transactional: bool,
}

/// The base client configuration: brokers and the pass-through properties.
pub(crate) fn base_config(k: &KafkaSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers);
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    c
}

/// The transactional id of this instance: configured, or the group id, host name and process id.
pub(crate) fn transactional_id(k: &KafkaSettings) -> String {
    k.transactional_id.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        format!("{}-{host}-{}", k.group_id, std::process::id())
    })
}

impl Output {
    /// The producer of a run; in `exactly_once` mode its transactions are initialised and the
    /// first one begun.
    pub(crate) fn new(k: &KafkaSettings, deliveries: Arc<Deliveries>) -> Result<Output, RdError> {
        let mut c = base_config(k);
        if !k.properties.contains_key("enable.idempotence") {
            c.set("enable.idempotence", "true");
        }
        if !k.properties.contains_key("linger.ms") {
            c.set("linger.ms", "5");
        }
        let transactional = k.guarantee == Guarantee::ExactlyOnce;
        if transactional {
            c.set("transactional.id", transactional_id(k));
        }
        let producer: ThreadedProducer<DeliveryContext> =
            c.create_with_context(DeliveryContext {
                deliveries: deliveries.clone(),
            })?;
        if transactional {
            let timeout = Duration::from_secs(k.shutdown_deadline_secs);
            producer.init_transactions(timeout)?;
            producer.begin_transaction()?;
        }
        Ok(Output {
            producer,
            deliveries,
            topics: Topics::of(k),
            transactional,
        })
    }

    /// Sends one record. Waits while the producer's queue is full. An error other than a full
    /// queue is recorded as a failure.
    pub(crate) fn send(&self, topic: &str, key: &str, payload: &[u8]) {
        self.send_to(topic, None, key, payload);
    }

    /// Sends one record to a given partition (`None`: the one the partitioner picks), as
    /// [`Output::send`] does.
    pub(crate) fn send_to(&self, topic: &str, partition: Option<i32>, key: &str, payload: &[u8]) {
        let mut record = BaseRecord::to(topic).key(key).payload(payload);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    self.deliveries
                        .fail(format!("cannot produce to {topic}: {e}"));
                    return;
                }
            }
        }
    }
}
