//! The shared vocabulary of settings and records: severities, detector ids, input and
//! finding formats. It imports nothing of the engine, so every module can use it.

use serde::{Deserialize, Serialize};

/// Finding severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Investigate.
    Medium,
    /// Investigate now.
    High,
    /// Contain now.
    Critical,
}

impl Severity {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// The detectors.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum DetectorId {
    /// First use of an action, resource area, resource pattern or action on a pattern.
    Novelty,
    /// A source address or network the agent has not used.
    Source,
    /// A burst of events against the agent's own peak for this time of day.
    Rate,
    /// Bytes moved, per event and per window, against the agent's own history.
    Volume,
    /// Denials and errors: permission probing.
    Denial,
    /// An unlikely action transition within a session.
    Sequence,
    /// Many distinct resources in a short window: enumeration, scraping.
    Breadth,
    /// Activity at an hour or day the agent is not active.
    TimeOfDay,
    /// Behaviour rare among the agent's peers, or a destination spreading across agents.
    Peer,
    /// Access that sessions with the same stated intent never need.
    Intent,
    /// A combination of hour, volume, pace and familiarity the learned event model finds rare
    /// for the agent's peer group (needs a model, see `cinch train`).
    Model,
    /// A tool call reaching a counterparty (account, mail address, host, ...) the agent never
    /// dealt with, weighted by the call's effect.
    Counterparty,
    /// An outward tool call to a destination that appeared only in data the agent read (a tool
    /// result), never in the user's request: the signature of a prompt injection.
    Provenance,
    /// A place (resource area, pattern or member of a stable set) the agent took up recently
    /// whose daily use keeps growing faster than the agent's other activity: a slow ramp that
    /// teaches the baseline a little each day (poisoning).
    Trend,
}

/// Independent lines of evidence (see [`DetectorId::family`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Evidence {
    /// What was accessed: new to the agent, its peers or its stated intent.
    Access,
    /// How much: rate, volume, breadth.
    Amount,
    /// Refused attempts.
    Refusal,
    /// Where from.
    Origin,
    /// When.
    Timing,
    /// In what order.
    Order,
    /// Use of a grant the agent's normal behaviour never used.
    Privilege,
    /// An unlikely combination of when, how much, how fast and how familiar (the learned
    /// event model).
    Combination,
    /// Data the agent read steering whom it reaches.
    Steering,
}

impl DetectorId {
    /// Every detector, in fusion order.
    pub const ALL: [DetectorId; 14] = [
        DetectorId::Novelty,
        DetectorId::Source,
        DetectorId::Rate,
        DetectorId::Volume,
        DetectorId::Denial,
        DetectorId::Sequence,
        DetectorId::Breadth,
        DetectorId::TimeOfDay,
        DetectorId::Peer,
        DetectorId::Intent,
        DetectorId::Model,
        DetectorId::Counterparty,
        DetectorId::Provenance,
        DetectorId::Trend,
    ];

    /// The line of evidence the detector belongs to. Detectors of one family tend to fire
    /// together (a first use is also rare among peers and unusual for the stated intent), so
    /// corroboration counts families, not detectors.
    pub fn family(self) -> Evidence {
        match self {
            DetectorId::Novelty | DetectorId::Peer | DetectorId::Intent => Evidence::Access,
            DetectorId::Rate | DetectorId::Volume | DetectorId::Breadth => Evidence::Amount,
            DetectorId::Denial => Evidence::Refusal,
            DetectorId::Source => Evidence::Origin,
            DetectorId::TimeOfDay => Evidence::Timing,
            DetectorId::Sequence => Evidence::Order,
            DetectorId::Model => Evidence::Combination,
            DetectorId::Counterparty => Evidence::Access,
            DetectorId::Provenance => Evidence::Steering,
            DetectorId::Trend => Evidence::Amount,
        }
    }

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorId::Novelty => "novelty",
            DetectorId::Source => "source",
            DetectorId::Rate => "rate",
            DetectorId::Volume => "volume",
            DetectorId::Denial => "denial",
            DetectorId::Sequence => "sequence",
            DetectorId::Breadth => "breadth",
            DetectorId::TimeOfDay => "time_of_day",
            DetectorId::Peer => "peer",
            DetectorId::Intent => "intent",
            DetectorId::Model => "model",
            DetectorId::Counterparty => "counterparty",
            DetectorId::Provenance => "provenance",
            DetectorId::Trend => "trend",
        }
    }

    /// Whether the detector judges the agent against its own baseline (and so is damped while
    /// the agent is still in its learning period).
    pub fn is_self_baseline(self) -> bool {
        !matches!(
            self,
            DetectorId::Peer | DetectorId::Counterparty | DetectorId::Provenance
        )
    }

    /// How the behaviour this detector flags stands against its baseline: never seen before
    /// (a first action, resource area, address or intent use), seen far more than usual
    /// (bursts of events, bytes, failures or distinct resources), or seen rarely (an unlikely
    /// transition, a quiet hour, behaviour few peers show).
    pub fn observed_pattern(self) -> ObservedPattern {
        match self {
            DetectorId::Novelty
            | DetectorId::Source
            | DetectorId::Intent
            | DetectorId::Counterparty
            | DetectorId::Provenance => ObservedPattern::Unseen,
            DetectorId::Rate
            | DetectorId::Volume
            | DetectorId::Denial
            | DetectorId::Breadth
            | DetectorId::Trend => ObservedPattern::Frequent,
            DetectorId::Sequence | DetectorId::TimeOfDay | DetectorId::Peer | DetectorId::Model => {
                ObservedPattern::Rare
            }
        }
    }

    /// The quantity the detector compares with its baseline, in a few words.
    pub fn observation_parameter(self) -> &'static str {
        match self {
            DetectorId::Novelty => "resource pattern or action used by the agent",
            DetectorId::Source => "source address of the agent",
            DetectorId::Rate => "events of the agent per window",
            DetectorId::Volume => "bytes moved by the agent",
            DetectorId::Denial => "denied or failed calls of the agent",
            DetectorId::Sequence => "action following the previous one in a session",
            DetectorId::Breadth => "distinct resources accessed per window",
            DetectorId::TimeOfDay => "hour of the week (UTC) of the activity",
            DetectorId::Peer => "resource pattern or action, among the agent's peers",
            DetectorId::Intent => "resource pattern or action, for the session's stated intent",
            DetectorId::Model => {
                "hour, volume, pace and familiarity of the event, among the agent's learned peer group"
            }
            DetectorId::Counterparty => "counterparties reached by the agent's tool calls",
            DetectorId::Provenance => {
                "where the destination of an outward tool call first appeared in the session"
            }
            DetectorId::Trend => "daily use of a place the agent took up recently",
        }
    }
}

/// How an observed behaviour stands against its baseline, in the terms of a frequency analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObservedPattern {
    /// Seen far more often than the baseline allows.
    Frequent,
    /// Seen, but seldom.
    Rare,
    /// Never seen in the baseline.
    Unseen,
}

impl ObservedPattern {
    /// The OCSF name (`FREQUENT`, `RARE`, `UNSEEN`).
    pub fn as_str(self) -> &'static str {
        match self {
            ObservedPattern::Frequent => "FREQUENT",
            ObservedPattern::Rare => "RARE",
            ObservedPattern::Unseen => "UNSEEN",
        }
    }
}

/// Which formats the decoder accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FormatChoice {
    /// Detect the format of every record on its own.
    #[default]
    Auto,
    /// Only native events.
    Native,
    /// Only OCSF.
    Ocsf,
    /// Only CloudTrail.
    Cloudtrail,
    /// Only Kubernetes audit.
    K8sAudit,
    /// Only OpenTelemetry traces (OTLP JSON; on Kafka, OTLP protobuf too).
    Otlp,
    /// Only MCP gateway audit events.
    McpAudit,
}

/// How finding records are written.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingFormat {
    /// The cinch record, with the OCSF Detection Finding in its `ocsf` member.
    #[default]
    Native,
    /// The OCSF Detection Finding alone.
    Ocsf,
}

impl FindingFormat {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingFormat::Native => "native",
            FindingFormat::Ocsf => "ocsf",
        }
    }
}

/// Appends an error to `errs` when `v` is above `max`.
pub(crate) fn check_at_most(errs: &mut Vec<String>, name: &str, v: u64, max: u64) {
    if v > max {
        errs.push(format!("{name} must be at most {max} (got {v})"));
    }
}

/// The longest duration any setting accepts, in seconds: ten years. Event times are
/// milliseconds in an `i64`, so every sum of a time and a setting stays far from overflow.
pub(crate) const MAX_DURATION_SECS: u64 = 10 * 365 * 86_400;

/// The largest count any event-count setting accepts.
pub(crate) const MAX_COUNT: u64 = 1_000_000_000;

/// Appends an error to `errs` unless `v` lies within `0..=1`.
pub(crate) fn check_unit(errs: &mut Vec<String>, name: &str, v: f32) {
    if !(0.0..=1.0).contains(&v) || v.is_nan() {
        errs.push(format!("{name} must be within 0..1 (got {v})"));
    }
}
