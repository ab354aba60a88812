//! Settings of the Kafka driver.

use serde::{Deserialize, Serialize};

/// The Kafka driver: brokers, consumer group, topics, workers and checkpoints.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Consumer group id; every instance of one deployment uses the same.
    pub group_id: String,
    /// Topics of access events (keyed by agent id).
    pub input_topics: Vec<String>,
    /// Input topics whose messages are OTLP protobuf export requests (the OpenTelemetry
    /// Collector's Kafka exporter with its default `otlp_proto` encoding; list them in
    /// `input_topics` too). Messages of other topics are JSON, OTLP JSON included.
    pub otlp_proto_topics: Vec<String>,
    /// Input topics whose messages are not keyed by agent id (the OpenTelemetry Collector's
    /// Kafka exporter keys spans by trace id or not at all; CloudTrail from Firehose or S3
    /// notifications arrives unkeyed; list them in `input_topics` too). Each event of such a
    /// topic is re-keyed by its agent id through an internal repartition topic,
    /// `<group_id>-<topic>-repartition`, which cinch creates and reads, so that every agent has
    /// one baseline whatever partition its events arrived on.
    pub unkeyed_topics: Vec<String>,
    /// Partitions of each repartition topic cinch creates (default: those of the unkeyed topic).
    /// An existing repartition topic is used as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repartition_partitions: Option<i32>,
    /// Seconds of event time a repartition partition holds events back to put each agent's in
    /// event-time order (events from several input partitions arrive interleaved). An event
    /// older than events already released is processed at once and counted as late, never
    /// dropped. Held events are part of the partition's checkpoint.
    pub repartition_order_secs: u32,
    /// When set, fleet knowledge (peer-group statistics, fleet rarity of actions, resources and
    /// destinations, campaign destinations) is shared by every input partition, whatever
    /// instance holds it, through this compacted topic (single partition; cinch creates it):
    /// each partition's engine publishes what it learned per fleet tick of event time
    /// (`detect.fleet_tick_secs`), and every engine applies the same merged knowledge at the same
    /// tick. Unset, each partition's engine knows only its own partition's agents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet_topic: Option<String>,
    /// With `fleet_topic`: a partition that received nothing for this many seconds of wall
    /// clock while other partitions wait for its fleet tick is taken to be idle, and its tick
    /// advanced to theirs (an idle partition would otherwise hold every engine at its tick).
    pub fleet_idle_secs: u32,
    /// Findings topic.
    pub findings_topic: String,
    /// Least-privilege recommendations topic.
    pub recommendations_topic: String,
    /// Containment commands topic.
    pub commands_topic: String,
    /// Dead letters topic (rejected input records).
    pub dead_letters_topic: String,
    /// Audit topic.
    pub audit_topic: String,
    /// Compacted topic of per-agent state checkpoints, keyed by agent id.
    pub state_topic: String,
    /// When set, one score line per valid event goes to this topic (off by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scores_topic: Option<String>,
    /// Engine threads. Each owns the agents of the partitions dispatched to it.
    pub workers: usize,
    /// Messages queued per worker; when a queue is full, consumption pauses until it drains.
    pub channel_capacity: usize,
    /// Every this many milliseconds (of wall clock; results never depend on it) the pipeline
    /// checkpoints the partitions that moved on and commits their input offsets.
    pub commit_interval_ms: u64,
    /// Delivery guarantee: `at_least_once` (outputs may repeat after a crash, with the same
    /// ids) or `exactly_once` (Kafka transactions: outputs, checkpoints and input offsets
    /// commit together; downstream consumers read with `isolation.level=read_committed`).
    pub guarantee: Guarantee,
    /// Transactional id of this instance's producer in `exactly_once` mode (default: the group
    /// id, the host name and the process id). Zombie instances are fenced by the consumer
    /// group's generation, so each live instance needs only a distinct id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactional_id: Option<String>,
    /// On shutdown, in-flight work is drained and offsets committed within this many seconds.
    pub shutdown_deadline_secs: u64,
    /// At start-up, a broker must answer a metadata request within this many seconds, or the
    /// run stops with an error naming the brokers and librdkafka's reason (instead of retrying
    /// forever against brokers none of which is reachable).
    pub startup_timeout_secs: u64,
    /// librdkafka properties passed verbatim to every client (`security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `ssl.ca.location`, ...).
    pub properties: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            brokers: "127.0.0.1:9092".into(),
            group_id: "cinch".into(),
            input_topics: vec!["cinch.events".into()],
            otlp_proto_topics: Vec::new(),
            unkeyed_topics: Vec::new(),
            repartition_partitions: None,
            repartition_order_secs: 60,
            fleet_topic: None,
            fleet_idle_secs: 10,
            findings_topic: "cinch.findings".into(),
            recommendations_topic: "cinch.recommendations".into(),
            commands_topic: "cinch.commands".into(),
            dead_letters_topic: "cinch.dead-letters".into(),
            audit_topic: "cinch.audit".into(),
            state_topic: "cinch.state".into(),
            scores_topic: None,
            workers: 2,
            channel_capacity: 16_384,
            commit_interval_ms: 1000,
            guarantee: Guarantee::AtLeastOnce,
            transactional_id: None,
            shutdown_deadline_secs: 30,
            startup_timeout_secs: 30,
            properties: Default::default(),
        }
    }
}

impl KafkaSettings {
    /// The internal topic through which the events of the unkeyed input topic `topic` are
    /// re-keyed by agent id.
    pub fn repartition_topic(&self, topic: &str) -> String {
        format!("{}-{topic}-repartition", self.group_id)
    }

    /// Appends every problem with these settings to `errs`.
    pub fn validate(&self, errs: &mut Vec<String>) {
        if self.brokers.trim().is_empty() {
            errs.push("kafka.brokers must not be empty".into());
        } else if let Err(e) = check_brokers(&self.brokers) {
            errs.push(format!("kafka.brokers: {e}"));
        }
        let topics = self
            .input_topics
            .iter()
            .chain(&self.otlp_proto_topics)
            .chain([
                &self.findings_topic,
                &self.recommendations_topic,
                &self.commands_topic,
                &self.dead_letters_topic,
                &self.audit_topic,
                &self.state_topic,
            ])
            .chain(self.scores_topic.as_ref());
        for t in topics {
            if !t.trim().is_empty()
                && let Err(e) = check_topic(t)
            {
                errs.push(format!("kafka topic `{}`: {e}", t.escape_debug()));
            }
        }
        if self.group_id.trim().is_empty() {
            errs.push("kafka.group_id must not be empty".into());
        }
        if self.input_topics.is_empty() || self.input_topics.iter().any(|t| t.trim().is_empty()) {
            errs.push("kafka.input_topics must list at least one non-empty topic".into());
        }
        for t in &self.otlp_proto_topics {
            if !self.input_topics.contains(t) {
                errs.push(format!(
                    "kafka.otlp_proto_topics: {t} is not one of kafka.input_topics"
                ));
            }
        }
        for t in &self.unkeyed_topics {
            if !self.input_topics.contains(t) {
                errs.push(format!(
                    "kafka.unkeyed_topics: {t} is not one of kafka.input_topics"
                ));
            } else if let Err(e) = check_topic(&self.repartition_topic(t)) {
                errs.push(format!(
                    "kafka.unkeyed_topics: {t}: its repartition topic: {e}"
                ));
            }
        }
        if let Some(n) = self.repartition_partitions
            && !(1..=10_000).contains(&n)
        {
            errs.push(format!(
                "kafka.repartition_partitions must be within 1..10000 (got {n})"
            ));
        }
        if self.repartition_order_secs > 86_400 {
            errs.push(format!(
                "kafka.repartition_order_secs must be within 0..86400 (got {})",
                self.repartition_order_secs
            ));
        }
        if let Some(t) = &self.fleet_topic {
            if let Err(e) = check_topic(t) {
                errs.push(format!("kafka.fleet_topic: {e}"));
            } else if self.input_topics.contains(t) || self.state_topic == *t {
                errs.push(format!(
                    "kafka.fleet_topic ({t}) must not also be an input or the state topic"
                ));
            }
        }
        if let Some(t) = &self.fleet_topic
            && let Some(u) = self
                .unkeyed_topics
                .iter()
                .find(|u| self.repartition_topic(u) == *t)
        {
            errs.push(format!(
                "kafka.fleet_topic ({t}) must not be the repartition topic of {u}"
            ));
        }
        if !(1..=3600).contains(&self.fleet_idle_secs) {
            errs.push(format!(
                "kafka.fleet_idle_secs must be within 1..3600 (got {})",
                self.fleet_idle_secs
            ));
        }
        for (name, t) in [
            ("findings_topic", &self.findings_topic),
            ("recommendations_topic", &self.recommendations_topic),
            ("commands_topic", &self.commands_topic),
            ("dead_letters_topic", &self.dead_letters_topic),
            ("audit_topic", &self.audit_topic),
            ("state_topic", &self.state_topic),
        ] {
            if t.trim().is_empty() {
                errs.push(format!("kafka.{name} must not be empty"));
            } else if self.input_topics.contains(t) {
                errs.push(format!(
                    "kafka.{name} ({t}) must not also be an input topic"
                ));
            }
        }
        if let Some(t) = &self.scores_topic
            && t.trim().is_empty()
        {
            errs.push("kafka.scores_topic must not be empty when set".into());
        }
        if !(1..=256).contains(&self.workers) {
            errs.push(format!(
                "kafka.workers must be within 1..256 (got {})",
                self.workers
            ));
        }
        if !(1..=1_000_000).contains(&self.channel_capacity) {
            errs.push(format!(
                "kafka.channel_capacity must be within 1..1000000 (got {})",
                self.channel_capacity
            ));
        }
        if !(10..=600_000).contains(&self.commit_interval_ms) {
            errs.push(format!(
                "kafka.commit_interval_ms must be within 10..600000 (got {})",
                self.commit_interval_ms
            ));
        }
        if let Some(t) = &self.transactional_id
            && t.trim().is_empty()
        {
            errs.push("kafka.transactional_id must not be empty when set".into());
        }
        if !(1..=3600).contains(&self.shutdown_deadline_secs) {
            errs.push(format!(
                "kafka.shutdown_deadline_secs must be within 1..3600 (got {})",
                self.shutdown_deadline_secs
            ));
        }
        if !(1..=600).contains(&self.startup_timeout_secs) {
            errs.push(format!(
                "kafka.startup_timeout_secs must be within 1..600 (got {})",
                self.startup_timeout_secs
            ));
        }
        for key in [
            "group.id",
            "enable.auto.offset.store",
            "enable.auto.commit",
            "partition.assignment.strategy",
            "transactional.id",
        ] {
            if self.properties.contains_key(key) {
                errs.push(format!(
                    "kafka.properties.\"{key}\" is set by cinch and cannot be overridden"
                ));
            }
        }
    }
}

/// The delivery guarantee of `cinch run`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// Every input record is processed at least once; after a crash some outputs may be
    /// produced again, identical and with the same ids.
    #[default]
    AtLeastOnce,
    /// Outputs, state checkpoints and input offsets are committed in one Kafka transaction.
    ExactlyOnce,
}

/// Checks a broker list: `host:port[,host:port...]`, each host a name or an address (IPv6 in
/// brackets), each port 1..65535, no scheme; at most 64 brokers and 4096 characters.
pub(crate) fn check_brokers(list: &str) -> Result<(), String> {
    if list.len() > 4096 {
        return Err(format!("{} characters; at most 4096", list.len()));
    }
    let brokers: Vec<&str> = list.split(',').map(str::trim).collect();
    if brokers.len() > 64 {
        return Err(format!("{} brokers; at most 64", brokers.len()));
    }
    for b in brokers {
        if b.contains("://") {
            return Err(format!("`{b}` has a scheme; give host:port"));
        }
        let Some((host, port)) = b.rsplit_once(':') else {
            return Err(format!("`{b}` is not host:port"));
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let name_ok = !host.is_empty()
            && host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'));
        if !name_ok && host.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("`{b}`: `{host}` is not a host name or address"));
        }
        if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
            return Err(format!("`{b}`: `{port}` is not a port (1..65535)"));
        }
    }
    Ok(())
}

/// Checks a topic name as Kafka does: 1 to 249 characters of `a-z A-Z 0-9 . _ -`, and not
/// `.` or `..`.
pub(crate) fn check_topic(name: &str) -> Result<(), String> {
    if name.len() > 249 {
        return Err(format!("{} characters; at most 249", name.len()));
    }
    if name == "." || name == ".." {
        return Err("`.` and `..` are not topic names".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "`{}` is not allowed (only a-z, A-Z, 0-9, `.`, `_` and `-`)",
            c.escape_debug()
        ));
    }
    Ok(())
}
