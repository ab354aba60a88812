//! The Kafka driver (`cinch run`): a consumer group in, one topic per output kind out, at least
//! once.
//!
//! - One consumer (`cooperative-sticky` assignment, offsets stored by hand) polls on a blocking
//!   thread and dispatches each message, by partition, to one of `workers` engine threads over
//!   bounded queues. Input is keyed by agent id, so each agent's events stay in order on one
//!   thread, which owns that agent's state. When a queue is full the assigned partitions are
//!   paused until it drains: memory stays bounded whatever the backlog.
//! - An input offset is stored (and later committed) only when every output it caused, and
//!   every earlier message of its partition, has been acknowledged by the broker
//!   ([`tracker`]). Offsets are committed on revoke and on shutdown, and periodically.
//! - Each worker checkpoints the agents it touched to the compacted state topic (every
//!   `checkpoint_every_events` events, and on revoke and shutdown). When a partition is
//!   assigned, the state topic is read to its end and the agents of that partition restored
//!   before any of its messages is processed; events already reflected in a restored state
//!   are not applied again ([`state`]).

mod consume;
mod produce;
pub mod state;
mod tracker;
mod worker;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::Settings;

/// Errors that stop the pipeline (bad records never do).
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// A Kafka client could not be created or failed.
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// An output could not be delivered; the offsets of its input were not committed.
    #[error("{0}")]
    Delivery(String),
    /// The settings are invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A pipeline thread stopped unexpectedly.
    #[error("a pipeline thread stopped unexpectedly: {0}")]
    Thread(String),
}

pub use crate::telemetry::{NoopObserver as NoObserver, PipelineObserver};
pub use produce::send_waiting;

/// Options of [`run_with`].
#[derive(Clone)]
pub struct RunOptions {
    /// Receives the pipeline's measurements.
    pub observer: Arc<dyn PipelineObserver>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            observer: Arc::new(NoObserver),
        }
    }
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions").finish_non_exhaustive()
    }
}

/// Counts of a finished run. `records == events + dead_letters` always holds.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    /// Input messages consumed.
    pub messages: u64,
    /// Records in them (a message may hold several).
    pub records: u64,
    /// Valid events (processed, or already reflected in restored state).
    pub events: u64,
    /// Events skipped because a restored state already reflected them.
    pub already_reflected: u64,
    /// Records dead-lettered.
    pub dead_letters: u64,
    /// Dead letters by reason code.
    pub dead_by_reason: BTreeMap<&'static str, u64>,
    /// Processed events by input format.
    pub by_format: BTreeMap<&'static str, u64>,
    /// Findings produced.
    pub findings: u64,
    /// Output records produced (findings, dead letters, ...; not checkpoints or scores).
    pub outputs: u64,
    /// Messages acknowledged by the broker (outputs, scores and checkpoints).
    pub delivered: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Agent states restored from the state topic.
    pub restored_agents: u64,
    /// Agents held at the end.
    pub agents: usize,
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cinch run: {} messages, {} records: {} events, {} dead-lettered",
            self.messages, self.records, self.events, self.dead_letters
        )?;
        if !self.dead_by_reason.is_empty() {
            let parts: Vec<String> = self
                .dead_by_reason
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            write!(f, " ({})", parts.join(", "))?;
        }
        write!(
            f,
            "\n  {} agents, {} findings, {} outputs, {} checkpoints, {} agents restored, {} events already reflected",
            self.agents,
            self.findings,
            self.outputs,
            self.checkpoints,
            self.restored_agents,
            self.already_reflected
        )
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
