//! The producer: output records to their topics, each delivery reported to the tracker.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer,
};

use super::tracker::{Tag, Tracker};
use crate::config::KafkaSettings;

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

/// Routes delivery reports to the tracker.
pub(crate) struct DeliveryContext {
    pub(crate) tracker: Arc<Tracker>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Tag>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Box<Tag>) {
        match result {
            Ok(_) => self.tracker.delivered(&tag),
            Err((e, _)) => self
                .tracker
                .fail(format!("an output was not delivered: {e}")),
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
    pub(crate) tracker: Arc<Tracker>,
    pub(crate) topics: Topics,
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

impl Output {
    pub(crate) fn new(k: &KafkaSettings, tracker: Arc<Tracker>) -> Result<Output, RdError> {
        let mut c = base_config(k);
        if !k.properties.contains_key("enable.idempotence") {
            c.set("enable.idempotence", "true");
        }
        if !k.properties.contains_key("linger.ms") {
            c.set("linger.ms", "5");
        }
        let producer = c.create_with_context(DeliveryContext {
            tracker: tracker.clone(),
        })?;
        Ok(Output {
            producer,
            tracker,
            topics: Topics::of(k),
        })
    }

    /// Sends one record; its delivery completes one pending item of `tag`. Waits while the
    /// producer's queue is full. An error other than a full queue is recorded as a failure.
    pub(crate) fn send(&self, topic: &str, key: &str, payload: &[u8], tag: &Tag) {
        self.tracker.add(tag);
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(tag.clone()))
            .key(key)
            .payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    self.tracker.fail(format!("cannot produce to {topic}: {e}"));
                    return;
                }
            }
        }
    }
}
