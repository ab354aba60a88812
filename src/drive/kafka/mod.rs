//! The Kafka driver (`cinch run`): a consumer group in, one topic per output kind out, at least
//! once or exactly once.
//!
//! - One consumer (`cooperative-sticky` assignment) polls on a blocking thread and dispatches
//!   each message, by partition, to one of `workers` engine threads over bounded queues. Each
//!   worker holds one engine per input partition, so every result depends only on that
//!   partition's messages: the same whatever the number of workers or instances and however
//!   partitions move. When a queue is full the assigned partitions are paused until it drains:
//!   memory stays bounded whatever the backlog.
//! - Every `commit_interval_ms`, and on revoke and shutdown, a commit point checkpoints the
//!   partitions that moved on to the compacted state topic (each agent's profile keyed by agent
//!   id, and the partition's shared state) and commits their input offsets: after every output
//!   is acknowledged (`at_least_once`), or in one transaction with the outputs
//!   (`exactly_once`) ([`consume`]).
//! - At start-up a broker must answer within `startup_timeout_secs`, or the run stops with an
//!   error naming the brokers and librdkafka's reason ([`startup`]).
//! - Events of topics not keyed by agent id (`unkeyed_topics`) are re-keyed through an internal
//!   repartition topic, read as an input, whose partitions put each agent's events back in
//!   event-time order ([`rekey`]).
//! - With `fleet_topic`, fleet knowledge is shared by every partition whatever instance holds
//!   it: each partition publishes what it learned per fleet tick, and every partition applies
//!   the same merged knowledge at the same event-time barrier ([`barrier`], [`fleet_topic`]).
//! - When a partition is assigned, the state topic is read to its end and the partition
//!   restored before any of its messages is processed; messages already reflected in the
//!   restored state are not applied again ([`state`]).

mod barrier;
mod consume;
mod deliveries;
mod fleet_topic;
mod produce;
mod rekey;
pub mod settings;
mod side;
mod startup;
pub(crate) mod state;
mod worker;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::counts::InputCounts;
use crate::config::Settings;

/// Errors that stop the pipeline (bad records never do).
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// A Kafka client could not be created or failed.
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// No broker answered at start-up within `kafka.startup_timeout_secs`.
    #[error(
        "kafka: no broker of {brokers} answered within {secs} s (kafka.startup_timeout_secs): {reason}"
    )]
    Unreachable {
        /// The bootstrap brokers.
        brokers: String,
        /// The timeout.
        secs: u64,
        /// librdkafka's reason for the last error it met.
        reason: String,
    },
    /// An output could not be delivered; the offsets of its input were not committed.
    #[error("{0}")]
    Delivery(String),
    /// A repartition topic of an unkeyed input could not be prepared.
    #[error("kafka: {0}")]
    Repartition(String),
    /// The fleet topic could not be prepared.
    #[error("kafka: {0}")]
    Fleet(String),
    /// The settings are invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A pipeline thread stopped unexpectedly.
    #[error("a pipeline thread stopped unexpectedly: {0}")]
    Thread(String),
    /// The entitlements file could not be read.
    #[error(transparent)]
    Entitlements(#[from] crate::grants::EntitlementsError),
    /// The signing key could not be read.
    #[error(transparent)]
    SigningKey(#[from] crate::output::sign::SignError),
    /// The model could not be loaded.
    #[error(transparent)]
    Model(#[from] crate::ml::ModelError),
}

pub use crate::telemetry::{NoopObserver as NoObserver, PipelineObserver};

/// An input partition: topic and partition number.
pub(crate) type Partition = (Arc<str>, i32);
pub use produce::send_waiting;

/// Options of [`run_with`].
#[derive(Clone)]
pub struct RunOptions {
    /// Receives the pipeline's measurements.
    pub observer: Arc<dyn PipelineObserver>,
    /// Close every open finding when the run ends (a demo, or a test that ends its input). A
    /// deployment leaves them open: they are checkpointed and continue when the partitions'
    /// next owner reads on.
    pub close_findings_at_exit: bool,
    /// Entitlements shared by every engine. When `None`, they come from the settings
    /// (`grants.entitlements_path`, `grants.entitlements_topic`), or are unknown; either way
    /// the file and topic of the settings keep them up to date.
    pub entitlements: Option<crate::grants::SharedEntitlements>,
    /// The key that signs commands; `None`: the settings' `commands.signing_key`, else an
    /// ephemeral one.
    pub signer: Option<Arc<crate::output::sign::Signer>>,
    /// Feedback to apply from the start (a file); `feedback.topic` adds more while running.
    pub feedback: Vec<crate::decide::suppress::Feedback>,
    /// The learned model shared by every engine. When `None` and `ml.enabled`, it is loaded
    /// from `ml.model_path` (or the built-in default); a model path is watched and reloaded
    /// when the file changes either way.
    pub model: Option<crate::ml::SharedModel>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            observer: Arc::new(NoObserver),
            close_findings_at_exit: false,
            entitlements: None,
            signer: None,
            feedback: Vec::new(),
            model: None,
        }
    }
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions").finish_non_exhaustive()
    }
}

/// Counts of a finished run.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    /// Input messages consumed.
    pub messages: u64,
    /// The records in them (a message may hold several): valid events (scored, or already
    /// reflected in restored state) and dead letters.
    pub input: InputCounts,
    /// Events skipped because a restored state already reflected them.
    pub already_reflected: u64,
    /// Findings produced.
    pub findings: u64,
    /// Output records produced (findings, dead letters, ...; not checkpoints or scores).
    pub outputs: u64,
    /// Records acknowledged by the broker (outputs, scores and checkpoints).
    pub delivered: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Agent states restored from the state topic.
    pub restored_agents: u64,
    /// Agents held at the end.
    pub agents: usize,
    /// Agents evicted from memory after `profile.evict_idle_days` without an event.
    pub evicted_agents: u64,
    /// Transactions aborted and rewound (`exactly_once`).
    pub aborted_transactions: u64,
    /// OpenTelemetry spans that were not tool calls, skipped (not dead-lettered).
    pub skipped_spans: u64,
    /// Tool call spans whose agent came from the resource, for want of one on the span or an
    /// `invoke_agent` ancestor.
    pub agent_from_resource: u64,
    /// Tool call spans joined with an ancestor from a later export request.
    pub joined_spans: u64,
    /// Tool call spans released without their ancestor (it did not arrive in time, too many
    /// waited, or a checkpoint came first).
    pub join_fallbacks: u64,
    /// Events of unkeyed topics sent to their repartition topics (`kafka.unkeyed_topics`).
    pub rekeyed: u64,
    /// Repartition records dropped because their input position was seen before (a message
    /// re-keyed again after a crash, before its offset was committed).
    pub repartition_duplicates: u64,
    /// Repartition records older than events of their partition already released: processed
    /// out of event-time order.
    pub repartition_late: u64,
    /// Fleet-topic records published by this instance's partitions (`kafka.fleet_topic`).
    pub fleet_published: u64,
    /// Partitions with nothing to read advanced to the fleet's tick (`kafka.fleet_idle_secs`).
    pub fleet_idle: u64,
    /// Events still parked for the fleet at the end: not processed; their input offsets are not
    /// committed, so the partitions' next owner reads and processes them.
    pub fleet_parked: usize,
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cinch run: {} messages, {} records: {} events, {} dead-lettered{}",
            self.messages,
            self.input.records,
            self.input.events,
            self.input.dead_letters,
            self.input.dead_reasons()
        )?;
        write!(
            f,
            "\n  {} agents{}, {} findings, {} outputs, {} checkpoints, {} agents restored, {} events already reflected",
            self.agents,
            crate::drive::replay::evicted_note(self.evicted_agents),
            self.findings,
            self.outputs,
            self.checkpoints,
            self.restored_agents,
            self.already_reflected
        )?;
        if self.skipped_spans > 0
            || self.agent_from_resource > 0
            || self.joined_spans > 0
            || self.join_fallbacks > 0
        {
            write!(
                f,
                "\n  OpenTelemetry: {} spans that are not tool calls skipped; {} tool calls took their agent from the resource; {} joined with an ancestor from a later request, {} released without it",
                self.skipped_spans,
                self.agent_from_resource,
                self.joined_spans,
                self.join_fallbacks
            )?;
        }
        if self.rekeyed > 0 || self.repartition_duplicates > 0 || self.repartition_late > 0 {
            write!(
                f,
                "\n  unkeyed input: {} events re-keyed by agent; {} repartition records dropped as duplicates, {} processed late",
                self.rekeyed, self.repartition_duplicates, self.repartition_late
            )?;
        }
        if self.fleet_published > 0 || self.fleet_parked > 0 {
            write!(
                f,
                "\n  fleet: {} fleet-topic records published, {} idle partitions advanced, {} events parked (for the next owner)",
                self.fleet_published, self.fleet_idle, self.fleet_parked
            )?;
        }
        Ok(())
    }
}

/// Runs the pipeline until `shutdown` completes, then drains in-flight work, checkpoints,
/// commits and returns the counts.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary, KafkaError> {
    run_with(settings, RunOptions::default(), shutdown).await
}

/// [`run`] with options (an observer for metrics).
pub async fn run_with(
    settings: Settings,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary, KafkaError> {
    settings.validate()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let mut handle =
        tokio::task::spawn_blocking(move || consume::pipeline(settings, options, flag));
    tokio::pin!(shutdown);
    let joined = tokio::select! {
        res = &mut handle => res,
        () = &mut shutdown => {
            stop.store(true, Ordering::Release);
            handle.await
        }
    };
    joined.map_err(|e| KafkaError::Thread(e.to_string()))?
}
