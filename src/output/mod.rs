//! Output records: findings, scores and dead letters, the formats they are written in, and the
//! signatures on commands.

pub mod dead_letter;
pub mod finding;
pub mod score;
pub mod sign;
pub mod time;

use serde::Serialize;

use finding::Finding;

/// A record for a downstream consumer. Each kind goes to its own topic or file.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum OutputRecord {
    /// An anomalous event or burst.
    Finding(Finding),
}

impl OutputRecord {
    /// The record's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            OutputRecord::Finding(_) => "finding",
        }
    }

    /// The agent the record is about (the Kafka message key).
    pub fn agent_id(&self) -> &str {
        match self {
            OutputRecord::Finding(f) => &f.agent_id,
        }
    }
}
