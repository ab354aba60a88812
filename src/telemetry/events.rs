//! Typed internal events of the drivers: one variant per thing that happens, each with its own
//! fields. Every event has a bounded name (the `event` label of `cinch_driver_events_total`) and
//! a one-line message; the observer both logs and counts it, so nothing a driver reports
//! bypasses the telemetry.

use std::fmt;

/// Something a driver reports.
#[derive(Clone, Debug, PartialEq)]
pub enum DriverEvent {
    /// Input offsets could not be committed (a rebalance is under way).
    OffsetsNotCommitted {
        /// The broker's error.
        error: String,
    },
    /// An exactly-once transaction was aborted; the pipeline rewinds to the last commit.
    TransactionAborted {
        /// The cause.
        error: String,
    },
    /// The state topic could not be read: the assigned partitions start from empty state.
    StateUnreadable {
        /// The state topic.
        topic: String,
        /// The cause.
        error: String,
    },
    /// State-topic records that are not checkpoints (a key that is not UTF-8, a value that is
    /// not an envelope) were skipped: their agents start cold.
    StateRecordsUnreadable {
        /// The state topic.
        topic: String,
        /// How many records.
        records: u64,
        /// Why the first of them was skipped.
        error: String,
    },
    /// Checkpoint records of another format version were skipped: their agents start cold.
    StateOtherVersion {
        /// The state topic.
        topic: String,
        /// How many records.
        records: u64,
        /// The version this build writes.
        version: u32,
    },
    /// Revoked partitions could not be checkpointed.
    CheckpointFailed {
        /// The cause.
        error: String,
    },
    /// The consumer reported an error.
    ConsumerError {
        /// The error.
        error: String,
    },
    /// A side input (entitlements or feedback topic) could not be read.
    SideInputError {
        /// The topic.
        topic: String,
        /// The error.
        error: String,
    },
    /// The entitlements file was reloaded.
    EntitlementsReloaded {
        /// The file.
        path: String,
        /// Agents with entitlements.
        agents: usize,
        /// Grants in all.
        grants: usize,
    },
    /// Entitlements (a file or a topic record) were rejected; those in force are kept.
    EntitlementsRejected {
        /// Why.
        error: String,
    },
    /// A side-input record was skipped.
    RecordSkipped {
        /// Why.
        reason: String,
    },
    /// The model file was reloaded.
    ModelReloaded {
        /// The file.
        path: String,
        /// Its peer groups.
        groups: usize,
        /// Events it was trained on.
        events: u64,
    },
    /// A model file was rejected; the model in force is kept.
    ModelRejected {
        /// Why.
        error: String,
    },
    /// An output record could not be serialised and was not sent.
    OutputUnwritable {
        /// The topic it was for.
        topic: String,
        /// Why.
        error: String,
    },
    /// A librdkafka statistics document could not be read: the consumer-lag gauges keep their
    /// last values.
    StatisticsUnreadable {
        /// Why.
        error: String,
    },
}

impl DriverEvent {
    /// Every event name, in a fixed order (bounded metric labels).
    pub const NAMES: [&'static str; 15] = [
        "offsets_not_committed",
        "transaction_aborted",
        "state_unreadable",
        "state_other_version",
        "checkpoint_failed",
        "consumer_error",
        "side_input_error",
        "entitlements_reloaded",
        "entitlements_rejected",
        "record_skipped",
        "model_reloaded",
        "model_rejected",
        "output_unwritable",
        "state_records_unreadable",
        "statistics_unreadable",
    ];

    /// The event's stable name.
    pub fn name(&self) -> &'static str {
        let i = match self {
            DriverEvent::OffsetsNotCommitted { .. } => 0,
            DriverEvent::TransactionAborted { .. } => 1,
            DriverEvent::StateUnreadable { .. } => 2,
            DriverEvent::StateOtherVersion { .. } => 3,
            DriverEvent::CheckpointFailed { .. } => 4,
            DriverEvent::ConsumerError { .. } => 5,
            DriverEvent::SideInputError { .. } => 6,
            DriverEvent::EntitlementsReloaded { .. } => 7,
            DriverEvent::EntitlementsRejected { .. } => 8,
            DriverEvent::RecordSkipped { .. } => 9,
            DriverEvent::ModelReloaded { .. } => 10,
            DriverEvent::ModelRejected { .. } => 11,
            DriverEvent::OutputUnwritable { .. } => 12,
            DriverEvent::StateRecordsUnreadable { .. } => 13,
            DriverEvent::StatisticsUnreadable { .. } => 14,
        };
        Self::NAMES[i]
    }
}

impl fmt::Display for DriverEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverEvent::OffsetsNotCommitted { error } => {
                write!(
                    f,
                    "offsets not committed ({error}); the checkpoints cover them"
                )
            }
            DriverEvent::TransactionAborted { error } => {
                write!(
                    f,
                    "transaction aborted ({error}); rewinding to the last commit"
                )
            }
            DriverEvent::StateUnreadable { topic, error } => write!(
                f,
                "cannot read state topic {topic}: {error}; the assigned partitions start from empty state"
            ),
            DriverEvent::StateRecordsUnreadable {
                topic,
                records,
                error,
            } => write!(
                f,
                "{records} records in {topic} are not checkpoints ({error}) and were not restored: their agents start cold"
            ),
            DriverEvent::StateOtherVersion {
                topic,
                records,
                version,
            } => write!(
                f,
                "{records} checkpoint records in {topic} are of another format version (this build writes {version}) and were not restored: their agents start cold"
            ),
            DriverEvent::CheckpointFailed { error } => {
                write!(f, "cannot checkpoint revoked partitions: {error}")
            }
            DriverEvent::ConsumerError { error } => write!(f, "consumer: {error}"),
            DriverEvent::SideInputError { topic, error } => write!(f, "reading {topic}: {error}"),
            DriverEvent::EntitlementsReloaded {
                path,
                agents,
                grants,
            } => write!(
                f,
                "entitlements reloaded from {path}: {agents} agents, {grants} grants"
            ),
            DriverEvent::EntitlementsRejected { error } => {
                write!(f, "{error}; the entitlements in force are kept")
            }
            DriverEvent::RecordSkipped { reason } => write!(f, "{reason}; the record is skipped"),
            DriverEvent::ModelReloaded {
                path,
                groups,
                events,
            } => write!(
                f,
                "model reloaded from {path}: {groups} peer groups, trained on {events} events"
            ),
            DriverEvent::ModelRejected { error } => {
                write!(f, "{error}; the model in force is kept")
            }
            DriverEvent::OutputUnwritable { topic, error } => {
                write!(
                    f,
                    "an output record for {topic} could not be written: {error}"
                )
            }
            DriverEvent::StatisticsUnreadable { error } => write!(
                f,
                "cannot read librdkafka's statistics: {error}; the consumer lag gauges keep their last values"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_its_own_name() {
        let ev = DriverEvent::ModelRejected {
            error: "bad file".into(),
        };
        assert_eq!(ev.name(), "model_rejected");
        assert_eq!(ev.to_string(), "bad file; the model in force is kept");
        let mut names = DriverEvent::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DriverEvent::NAMES.len());
    }
}
