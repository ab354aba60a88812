//! Detectors, one file each, and their fusion.
//!
//! Every detector reads the same [`Ctx`] (the event, its keys, the profile's observation and the
//! peer view) and returns a score in `[0, 1]`. Only when a score reaches the reason floor is its
//! one-sentence explanation written, so quiet events cost no formatting.

pub(crate) mod breadth;
pub(crate) mod counterparty;
pub(crate) mod denial;
pub(crate) mod intent;
pub(crate) mod novelty;
pub(crate) mod peer;
pub(crate) mod provenance;
pub(crate) mod rarity;
pub(crate) mod rate;
pub(crate) mod sequence;
pub mod settings;
pub(crate) mod source;
pub(crate) mod time_of_day;
pub(crate) mod trend;
pub(crate) mod volume;

use serde::{Deserialize, Serialize};

use crate::event::AccessEvent;
use crate::fleet::{GroupStats, UseKind};
use crate::profile::Observation;
use crate::profile::keys::EventKeys;
use crate::vocab::DetectorId;
pub use counterparty::{NewCounterparty, Steering, ToolView};
use settings::DetectSettings;

/// What the peers say about an event.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerView<'a> {
    /// The peer group used (declared kind or family), when large enough.
    pub group: Option<&'a GroupStats>,
    /// The agents of the group the event is judged among: all of them, or for an AI agent's
    /// tool call those that share a tool with the agent (the most agents of the group that
    /// used any one of its tools).
    pub members: u32,
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
        self.group.map(|g| g.share_among(kind, key, self.members))
    }

    /// Size of the peer group: the agents the event is judged among.
    pub fn size(&self) -> u32 {
        self.group.map_or(0, |_| self.members)
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
    /// What the event's tool call reaches, for an AI agent's tool call with content.
    pub tool: Option<&'a ToolView>,
    /// The event's outside destination is named exactly by a grant of the organisation's
    /// entitlements (see [`crate::grants::Entitlements::names_exactly`]): a sanctioned partner,
    /// not an unknown party.
    pub sanctioned: bool,
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
    /// The event comes from where the agent's own use would not (set for anomalous events
    /// only; see [`source::foreign`]).
    pub foreign: bool,
    /// The event comes from a new network of an address class the agent never came from (set
    /// for anomalous events only; see [`source::outside_class`]).
    pub outside_class: bool,
    /// The event is a tool call whose argument values came from a tool result that addressed
    /// the agent with instructions ([`Steering::Instructed`]; set for anomalous events only).
    pub instructed: bool,
    /// The event's action is one the agent has not been using (set for anomalous events
    /// only): a new kind of act, not only a new place for a familiar one.
    pub new_action: bool,
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
        DetectorId::Model => rarity::score(c),
        DetectorId::Counterparty => counterparty::score(c),
        DetectorId::Provenance => provenance::score(c),
        DetectorId::Trend => trend::score(c),
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
        DetectorId::Model => rarity::explain(c),
        DetectorId::Counterparty => counterparty::explain(c),
        DetectorId::Provenance => provenance::explain(c),
        DetectorId::Trend => trend::explain(c),
    }
}

/// Runs every enabled detector and fuses their scores. The reasons' explanations are left empty
/// (see [`explain_reasons`]).
///
/// Fusion is a weighted noisy-OR, `1 - prod(1 - w_i * s_i)`, over the scores that reach the
/// reason floor: independent pieces of evidence reinforce each other, and many faint signals do
/// not add up to an alarm. Rate and breadth measure the same burst and enter once (their maximum). Self-baseline detectors are damped by the agent's maturity, so a
/// new agent is judged mainly by its peers.
pub(crate) fn evaluate(c: &Ctx<'_>) -> Verdict {
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
        foreign: false,
        outside_class: false,
        instructed: false,
        new_action: false,
    }
}

/// Writes the sentence of each reason that `wanted` selects. [`evaluate`] leaves them empty,
/// because most are read nowhere: the engine explains what is written out (every reason with
/// score lines on, else the reasons a finding keeps).
pub(crate) fn explain_reasons(
    verdict: &mut Verdict,
    c: &Ctx<'_>,
    wanted: impl Fn(&Reason) -> bool,
) {
    for r in &mut verdict.reasons {
        if r.explanation.is_empty() && wanted(r) {
            r.explanation = explain(r.detector, c);
        }
    }
}

/// Rounds to four decimals (scores are reported at that precision).
pub(crate) fn round4(x: f32) -> f32 {
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
