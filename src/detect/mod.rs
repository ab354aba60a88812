//! Detectors, one file each, and their fusion.
//!
//! Every detector reads the same [`Ctx`] (the event, its keys, the profile's observation and the
//! peer view) and returns a score in `[0, 1]`. Only when a score reaches the reason floor is its
//! one-sentence explanation written, so quiet events cost no formatting.

pub mod breadth;
pub mod denial;
pub mod intent;
pub mod model;
pub mod novelty;
pub mod peer;
pub mod rate;
pub mod sequence;
pub mod source;
pub mod time_of_day;
pub mod volume;

use serde::{Deserialize, Serialize};

use crate::config::DetectSettings;
use crate::event::AccessEvent;
use crate::fleet::{GroupStats, UseKind};
use crate::profile::Observation;
use crate::profile::keys::EventKeys;

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
}

impl DetectorId {
    /// Every detector, in fusion order.
    pub const ALL: [DetectorId; 11] = [
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
        }
    }

    /// Whether the detector judges the agent against its own baseline (and so is damped while
    /// the agent is still in its learning period).
    pub fn is_self_baseline(self) -> bool {
        !matches!(self, DetectorId::Peer)
    }

    /// How the behaviour this detector flags stands against its baseline: never seen before
    /// (a first action, resource area, address or intent use), seen far more than usual
    /// (bursts of events, bytes, failures or distinct resources), or seen rarely (an unlikely
    /// transition, a quiet hour, behaviour few peers show).
    pub fn observed_pattern(self) -> ObservedPattern {
        match self {
            DetectorId::Novelty | DetectorId::Source | DetectorId::Intent => {
                ObservedPattern::Unseen
            }
            DetectorId::Rate | DetectorId::Volume | DetectorId::Denial | DetectorId::Breadth => {
                ObservedPattern::Frequent
            }
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

/// What the peers say about an event.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerView<'a> {
    /// The peer group used (declared kind or family), when large enough.
    pub group: Option<&'a GroupStats>,
    /// Total agents in the fleet snapshot.
    pub fleet_agents: u32,
    /// Days of event time the fleet snapshots cover.
    pub fleet_days: f32,
    /// For a destination: (agents that ever contacted it, other agents that first contacted it
    /// in the last 7 days).
    pub destination: Option<(u32, u32)>,
}

impl PeerView<'_> {
    /// Share of the peer group using a key (None when there is no trusted group).
    pub fn share(&self, kind: UseKind, key: u64) -> Option<f32> {
        self.group.map(|g| g.share(kind, key))
    }

    /// Size of the peer group.
    pub fn size(&self) -> u32 {
        self.group.map_or(0, |g| g.agents)
    }
}

/// Everything a detector reads.
pub struct Ctx<'a> {
    /// The event.
    pub ev: &'a AccessEvent<'a>,
    /// Its keys.
    pub keys: &'a EventKeys<'a>,
    /// What the agent's profile says.
    pub obs: &'a Observation,
    /// What the peers say.
    pub peers: PeerView<'a>,
    /// Settings.
    pub settings: &'a DetectSettings,
    /// The fusion weight of each detector, in [`DetectorId::ALL`] order (0: disabled), from
    /// [`DetectSettings::weights_table`].
    pub weights: &'a [f32; DetectorId::ALL.len()],
    /// What the learned event model says, when a model is in force.
    pub model: Option<ModelView<'a>>,
}

/// What the learned event model says about an event.
#[derive(Clone, Copy, Debug)]
pub struct ModelView<'a> {
    /// The model.
    pub model: &'a crate::ml::Model,
    /// How rare the event is for its group.
    pub rarity: crate::ml::Rarity,
    /// The event's features.
    pub features: [f32; crate::ml::EVENT_DIM],
    /// `-log10` share where the score starts rising, and where it reaches 1.
    pub from: f32,
    /// See `from`.
    pub full: f32,
}

/// One detector's contribution to an event's score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Which detector.
    pub detector: DetectorId,
    /// Its score, 0..1.
    pub score: f32,
    /// One sentence naming the baseline and the observation.
    pub explanation: String,
}

/// The fused result for one event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// Fused score, 0..1.
    pub score: f32,
    /// Reasons at or above the floor, highest first.
    pub reasons: Vec<Reason>,
    /// Number of statistical detectors scoring at least 0.5 (the learned model is not
    /// counted: it corroborates scores, not severity or commands).
    pub strong: u8,
    /// The fused score without the learned model's contribution.
    pub without_model: f32,
    /// The event reaches beyond the agent's own territory (set for anomalous events only; see
    /// [`novelty::reach`]).
    pub reach: bool,
}

fn run(id: DetectorId, c: &Ctx<'_>) -> f32 {
    let s = match id {
        DetectorId::Novelty => novelty::score(c),
        DetectorId::Source => source::score(c),
        DetectorId::Rate => rate::score(c),
        DetectorId::Volume => volume::score(c),
        DetectorId::Denial => denial::score(c),
        DetectorId::Sequence => sequence::score(c),
        DetectorId::Breadth => breadth::score(c),
        DetectorId::TimeOfDay => time_of_day::score(c),
        DetectorId::Peer => peer::score(c),
        DetectorId::Intent => intent::score(c),
        DetectorId::Model => model::score(c),
    };
    if s.is_finite() {
        s.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn explain(id: DetectorId, c: &Ctx<'_>) -> String {
    match id {
        DetectorId::Novelty => novelty::explain(c),
        DetectorId::Source => source::explain(c),
        DetectorId::Rate => rate::explain(c),
        DetectorId::Volume => volume::explain(c),
        DetectorId::Denial => denial::explain(c),
        DetectorId::Sequence => sequence::explain(c),
        DetectorId::Breadth => breadth::explain(c),
        DetectorId::TimeOfDay => time_of_day::explain(c),
        DetectorId::Peer => peer::explain(c),
        DetectorId::Intent => intent::explain(c),
        DetectorId::Model => model::explain(c),
    }
}

/// Runs every enabled detector and fuses their scores. The reasons' explanations are left empty
/// (see [`explain_reasons`]).
///
/// Fusion is a weighted noisy-OR, `1 - prod(1 - w_i * s_i)`, over the scores that reach the
/// reason floor: independent pieces of evidence reinforce each other, and many faint signals do
/// not add up to an alarm. Rate and breadth measure the same burst and enter once (their maximum). Self-baseline detectors are damped by the agent's maturity, so a
/// new agent is judged mainly by its peers.
pub fn evaluate(c: &Ctx<'_>) -> Verdict {
    let floor = c.settings.reason_floor;
    let maturity = c.obs.maturity;
    let mut keep = 1.0f32;
    let mut model_keep = 1.0f32;
    let mut activity = 0.0f32;
    let mut reasons = Vec::new();
    let mut strong = 0u8;
    for (id, &w) in DetectorId::ALL.into_iter().zip(c.weights) {
        if w <= 0.0 {
            continue;
        }
        let mut s = run(id, c);
        if id.is_self_baseline() && !(id == DetectorId::Source && source::self_evident(c)) {
            s *= 0.3 + 0.7 * maturity;
        }
        if s < floor {
            continue;
        }
        if matches!(id, DetectorId::Rate | DetectorId::Breadth) {
            // Event rate and distinct resources measure the same burst: they count once.
            activity = activity.max(w * s);
        } else if id == DetectorId::Model {
            model_keep = 1.0 - w * s;
        } else {
            keep *= 1.0 - w * s;
        }
        if s >= 0.5 && id != DetectorId::Model {
            strong += 1;
        }
        reasons.push(Reason {
            detector: id,
            score: round4(s),
            explanation: String::new(),
        });
    }
    keep *= 1.0 - activity;
    reasons.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.detector.cmp(&b.detector))
    });
    Verdict {
        score: round4(1.0 - keep * model_keep),
        reasons,
        strong,
        without_model: round4(1.0 - keep),
        reach: false,
    }
}

/// Writes the sentence of each reason that `wanted` selects. [`evaluate`] leaves them empty,
/// because most are read nowhere: the engine explains what is written out (every reason with
/// score lines on, else the reasons a finding keeps).
pub fn explain_reasons(verdict: &mut Verdict, c: &Ctx<'_>, wanted: impl Fn(&Reason) -> bool) {
    for r in &mut verdict.reasons {
        if r.explanation.is_empty() && wanted(r) {
            r.explanation = explain(r.detector, c);
        }
    }
}

/// Rounds to four decimals (scores are reported at that precision).
pub fn round4(x: f32) -> f32 {
    (x * 10_000.0).round() / 10_000.0
}

/// Maps `x` linearly from `[lo, hi]` onto `[0, 1]`, clamped.
#[inline]
pub fn ramp(x: f32, lo: f32, hi: f32) -> f32 {
    if hi <= lo {
        return if x >= hi { 1.0 } else { 0.0 };
    }
    ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
}

/// Formats a count of days for explanations.
pub fn days(d: f32) -> String {
    if d < 1.0 {
        format!("{:.0} hours", d * 24.0)
    } else {
        format!("{d:.1} days")
    }
}
