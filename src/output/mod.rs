//! Output records: findings, scores and dead letters, and the formats they are written in.

pub mod dead_letter;
pub mod finding;
pub mod score;
pub mod time;

use serde::Serialize;

use finding::{Finding, FindingFormat};

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

    /// Writes the record as one JSON object, a finding in the given format.
    pub fn write_json<W: std::io::Write>(
        &self,
        w: W,
        findings: FindingFormat,
    ) -> serde_json::Result<()> {
        match (self, findings) {
            (OutputRecord::Finding(f), FindingFormat::Ocsf) => {
                serde_json::to_writer(w, f.ocsf_value().as_ref())
            }
            _ => serde_json::to_writer(w, self),
        }
    }
}
