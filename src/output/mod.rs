//! Output records: findings, recommendations, commands, audit records, scores and dead letters,
//! the formats they are written in, and command signatures.

pub mod audit;
pub mod command;
pub mod dead_letter;
pub mod finding;
pub mod recommendation;
pub(crate) mod score;
pub mod settings;
pub mod sign;
pub mod time;

use serde::Serialize;

use crate::vocab::FindingFormat;
use audit::Audit;
use command::Command;
use finding::Finding;
use recommendation::Recommendation;

/// A record for a downstream consumer. Each kind goes to its own topic or file.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum OutputRecord {
    /// An anomalous event or burst.
    Finding(Finding),
    /// A least-privilege change to a grant.
    Recommendation(Recommendation),
    /// A signed containment order.
    Command(Command),
    /// Why something was or was not done.
    Audit(Audit),
}

impl OutputRecord {
    /// The record's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            OutputRecord::Finding(_) => "finding",
            OutputRecord::Recommendation(_) => "recommendation",
            OutputRecord::Command(_) => "command",
            OutputRecord::Audit(_) => "audit",
        }
    }

    /// The agent the record is about (the Kafka message key).
    pub fn agent_id(&self) -> &str {
        match self {
            OutputRecord::Finding(f) => &f.agent_id,
            OutputRecord::Recommendation(r) => &r.agent_id,
            OutputRecord::Command(c) => &c.agent_id,
            OutputRecord::Audit(a) => a.agent_id.as_deref().unwrap_or(""),
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
