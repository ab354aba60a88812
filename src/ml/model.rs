//! The model file (`cinch train` writes it, `replay`, `run`, `eval` and `demo` read it) and its
//! scoring form.
//!
//! A model file is JSON: its format and version, the cinch version that wrote it, the feature
//! schema, what it was trained on, the learned peer groups (standardisation and k-means
//! centroids), one event model per group plus one for the whole fleet (a Gaussian mixture and
//! the lower tail of its log-likelihood on the training events), and the calibration of the
//! fused score per group.

use serde::{Deserialize, Serialize};

use super::ModelError;
use super::features::{EVENT_DIM, EVENT_FEATURES, PROFILE_DIM, PROFILE_FEATURES};
use super::gmm::{Mixture, Scorer};
use crate::profile::keys::{key, ns};

/// The `format` every model file carries.
pub(crate) const FORMAT: &str = "cinch-model";
/// The model file format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The default model, trained on simulated traffic (`models/default.json`).
pub const DEFAULT_MODEL: &str = include_str!("../../models/default.json");

/// The names of the features, in vector order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSchema {
    /// Behaviour-profile features (peer groups).
    pub profile: Vec<String>,
    /// Per-event features (event model).
    pub event: Vec<String>,
}

impl FeatureSchema {
    /// The schema of this build.
    pub fn current() -> Self {
        FeatureSchema {
            profile: PROFILE_FEATURES.iter().map(|s| s.to_string()).collect(),
            event: EVENT_FEATURES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// What a model was trained on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// Input paths, as given.
    pub inputs: Vec<String>,
    /// Event time of the first and last event (RFC 3339).
    pub first_event: String,
    /// See `first_event`.
    pub last_event: String,
    /// Records read.
    pub records: u64,
    /// Valid events.
    pub events: u64,
    /// Records that were not valid events.
    pub dead_letters: u64,
    /// Agents.
    pub agents: u64,
    /// Events the event model learned from: those of agents past their learning period that the
    /// statistical detectors judged normal.
    pub modelled_events: u64,
    /// Valid events that were AI agents' tool calls with content (arguments, a result or the
    /// user's request). A model trained on none abstains on them: it never saw what such an
    /// agent's normal looks like. Absent in older files: none.
    #[serde(default)]
    pub tool_calls: u64,
    /// Wall time of training, in seconds.
    pub seconds: f64,
}

/// Per-feature standardisation, `(x − mean) / std`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// Means.
    pub mean: Vec<f64>,
    /// Standard deviations (floored, never 0).
    pub std: Vec<f64>,
}

impl Scale {
    /// Standardises `x` into `out`.
    #[inline]
    pub fn apply(&self, x: impl IntoIterator<Item = f64>, out: &mut [f64]) {
        for (i, v) in x.into_iter().enumerate() {
            out[i] = (v - self.mean[i]) / self.std[i];
        }
    }

    fn check(&self, dim: usize, what: &str) -> Result<(), ModelError> {
        if self.mean.len() != dim || self.std.len() != dim {
            return Err(ModelError::Invalid(format!(
                "{what} standardisation has {} means and {} deviations for {dim} features",
                self.mean.len(),
                self.std.len()
            )));
        }
        if self.std.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
            return Err(ModelError::Invalid(format!(
                "{what} standardisation has a deviation that is not positive"
            )));
        }
        Ok(())
    }
}

/// One candidate number of groups and how well it separated the agents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupCandidate {
    /// Number of groups.
    pub k: usize,
    /// Mean silhouette of the agents (higher is better).
    pub silhouette: f64,
    /// Agents in the smallest group.
    pub smallest: usize,
}

/// The learned peer groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerGroups {
    /// Clustering method (`k-means`).
    pub method: String,
    /// How the number of groups was chosen (`silhouette`).
    pub criterion: String,
    /// Every number of groups tried.
    pub candidates: Vec<GroupCandidate>,
    /// Standardisation of profile vectors.
    pub scale: Scale,
    /// Group centres in the standardised space.
    pub centroids: Vec<Vec<f64>>,
    /// Training agents per group.
    pub sizes: Vec<u64>,
}

impl PeerGroups {
    /// The group whose centre is nearest to a behaviour-profile vector, once standardised.
    pub fn assign(&self, profile: &[f64; PROFILE_DIM]) -> u16 {
        let mut z = [0.0; PROFILE_DIM];
        self.scale.apply(profile.iter().copied(), &mut z);
        let mut best = (f64::INFINITY, 0u16);
        for (i, c) in self.centroids.iter().enumerate() {
            let d: f64 = c.iter().zip(&z).map(|(a, b)| (a - b) * (a - b)).sum();
            if d < best.0 {
                best = (d, i as u16);
            }
        }
        best.1
    }
}

/// One number of mixture components tried, and its Bayesian information criterion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureCandidate {
    /// Components.
    pub components: usize,
    /// BIC on the fitting sample (lower is better).
    pub bic: f64,
}

/// The event model of one group (or of the whole fleet).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupModel {
    /// Training events of the group.
    pub events: u64,
    /// Events the mixture was fitted on (a deterministic sample of `events`).
    pub fitted_on: u64,
    /// Component counts tried.
    pub candidates: Vec<MixtureCandidate>,
    /// The mixture chosen (lowest BIC).
    pub mixture: Mixture,
    /// Lower tail of the training events' log-likelihood: `[log10 p, log-likelihood]` with `p`
    /// the share of training events at or below that log-likelihood, `p` falling from 1.
    pub tail: Vec<[f64; 2]>,
}

/// The event models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventModel {
    /// Standardisation of event vectors.
    pub scale: Scale,
    /// One per peer group, then one for the whole fleet (agents not yet assigned to a group).
    pub groups: Vec<GroupModel>,
}

/// Calibration of the fused score: per group (then the fleet), knots `[raw, calibrated]` of a
/// monotone piecewise-linear map that gives the group's scores the fleet's distribution, so a
/// score means the same share of traffic in every group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Quantile levels the knots were taken at.
    pub levels: Vec<f64>,
    /// Knots per group, then the fleet's.
    pub groups: Vec<Vec<[f64; 2]>>,
}

/// A model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Always `cinch-model`.
    pub format: String,
    /// [`FORMAT_VERSION`] of the build that wrote it.
    pub format_version: u32,
    /// Version of cinch that wrote it.
    pub cinch_version: String,
    /// The feature names, in order.
    pub feature_schema: FeatureSchema,
    /// What it learned from.
    pub training: Training,
    /// Peer groups.
    pub peer_groups: PeerGroups,
    /// Event models.
    pub event_model: EventModel,
    /// Calibration of the fused score.
    pub calibration: Option<Calibration>,
}

/// How rare an event is for its group.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rarity {
    /// `log10` of the share of the group's training events as unlikely or more.
    pub log10_p: f64,
    /// The group scored against (`None`: the whole fleet).
    pub group: Option<u16>,
}

/// A loaded model, ready to score.
#[derive(Debug)]
pub struct Model {
    file: ModelFile,
    id: u64,
    scorers: Vec<Scorer<EVENT_DIM>>,
}

impl Model {
    /// Parses and checks a model file.
    pub fn from_json(text: &str) -> Result<Model, ModelError> {
        // The header first, so a file of another format or version says so plainly.
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            format_version: Option<u32>,
            cinch_version: Option<String>,
            feature_schema: Option<FeatureSchema>,
        }
        let h: Header = serde_json::from_str(text).map_err(|e| ModelError::Parse(e.to_string()))?;
        if h.format.as_deref() != Some(FORMAT) {
            return Err(ModelError::Invalid(format!(
                "not a cinch model (format {:?}, expected \"{FORMAT}\")",
                // No `format` member is shown as an empty one.
                h.format.unwrap_or_default()
            )));
        }
        if h.format_version != Some(FORMAT_VERSION) {
            return Err(ModelError::Version {
                found: h.format_version.unwrap_or(0),
                written_by: h.cinch_version.unwrap_or_else(|| "?".into()),
            });
        }
        let current = FeatureSchema::current();
        match h.feature_schema {
            Some(s) if s == current => {}
            Some(s) => return Err(ModelError::Schema(schema_difference(&s, &current))),
            None => {
                return Err(ModelError::Invalid(
                    "the model has no feature_schema".into(),
                ));
            }
        }
        let file: ModelFile =
            serde_json::from_str(text).map_err(|e| ModelError::Parse(e.to_string()))?;
        Model::new(file, xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
    }

    /// The default model built into cinch.
    pub fn embedded() -> Result<Model, ModelError> {
        Model::from_json(DEFAULT_MODEL)
    }

    /// Checks a model built in memory (by training) and prepares it.
    pub fn new(file: ModelFile, id: u64) -> Result<Model, ModelError> {
        let g = &file.peer_groups;
        g.scale.check(PROFILE_DIM, "profile")?;
        if g.centroids.is_empty() || g.centroids.len() > u16::MAX as usize {
            return Err(ModelError::Invalid(format!(
                "the model has {} peer groups",
                g.centroids.len()
            )));
        }
        if let Some(c) = g.centroids.iter().find(|c| c.len() != PROFILE_DIM) {
            return Err(ModelError::Invalid(format!(
                "a peer-group centre has {} values for {PROFILE_DIM} profile features",
                c.len()
            )));
        }
        let e = &file.event_model;
        e.scale.check(EVENT_DIM, "event")?;
        if e.groups.len() != g.centroids.len() + 1 {
            return Err(ModelError::Invalid(format!(
                "the model has {} event models for {} peer groups (one per group and one for the fleet)",
                e.groups.len(),
                g.centroids.len()
            )));
        }
        let mut scorers = Vec::with_capacity(e.groups.len());
        for gm in &e.groups {
            if gm.tail.len() < 2
                || gm
                    .tail
                    .windows(2)
                    .any(|w| w[1][0].partial_cmp(&w[0][0]) != Some(std::cmp::Ordering::Less))
            {
                return Err(ModelError::Invalid(
                    "an event model's tail needs at least two points with falling p".into(),
                ));
            }
            scorers.push(gm.mixture.scorer(&e.scale)?);
        }
        if let Some(c) = &file.calibration
            && c.groups.len() != e.groups.len()
        {
            return Err(ModelError::Invalid(format!(
                "the calibration has {} maps for {} event models",
                c.groups.len(),
                e.groups.len()
            )));
        }
        Ok(Model { file, id, scorers })
    }

    /// The file's contents.
    pub fn file(&self) -> &ModelFile {
        &self.file
    }

    /// A fingerprint of the model (a hash of its file).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Number of learned peer groups.
    pub fn groups(&self) -> usize {
        self.file.peer_groups.centroids.len()
    }

    /// The fleet-group key of a learned group (distinct for every model).
    pub fn group_key(&self, group: u16) -> u64 {
        key(ns::GROUP, &format!("learned:{:016x}:{group}", self.id))
    }

    /// The nearest group to a behaviour-profile vector.
    pub fn assign(&self, profile: &[f64; PROFILE_DIM]) -> u16 {
        self.file.peer_groups.assign(profile)
    }

    /// How rare an event vector is for a group (`None`: the whole fleet).
    pub fn rarity(&self, group: Option<u16>, x: &[f32; EVENT_DIM]) -> Rarity {
        let i = self.index(group);
        let ll = self.scorers[i].log_likelihood(x) as f64;
        Rarity {
            log10_p: tail_log10_p(&self.file.event_model.groups[i].tail, ll),
            group,
        }
    }

    /// Whether the model judges `ev`: every event, except an AI agent's tool call with content
    /// when the model was trained on none (it would score what it never saw).
    pub fn judges(&self, ev: &crate::event::AccessEvent<'_>) -> bool {
        ev.tool.is_none() || self.file.training.tool_calls > 0
    }

    /// The calibrated fused score for a group (unchanged when the model has no calibration).
    pub fn calibrate(&self, group: Option<u16>, raw: f32) -> f32 {
        match &self.file.calibration {
            Some(c) => piecewise(&c.groups[self.index(group)], raw as f64) as f32,
            None => raw,
        }
    }

    /// Agents the group was trained on (0 for the fleet).
    pub fn group_size(&self, group: u16) -> u64 {
        self.file
            .peer_groups
            .sizes
            .get(group as usize)
            .copied()
            .unwrap_or(0)
    }

    fn index(&self, group: Option<u16>) -> usize {
        match group {
            Some(g) if (g as usize) < self.groups() => g as usize,
            _ => self.groups(),
        }
    }
}

/// `log10 p` of a log-likelihood on a tail table, interpolated between its points and
/// extrapolated beyond the last one along the last decade's slope.
pub(crate) fn tail_log10_p(tail: &[[f64; 2]], ll: f64) -> f64 {
    if !ll.is_finite() {
        return -12.0;
    }
    if ll >= tail[0][1] {
        return 0.0;
    }
    // The first point at or below `ll` (log-likelihoods fall along the table).
    let i = tail.partition_point(|t| t[1] > ll);
    if i < tail.len() {
        let ([p0, l0], [p1, l1]) = (tail[i - 1], tail[i]);
        if l0 - l1 <= f64::EPSILON {
            return p1;
        }
        return p1 + (p0 - p1) * (ll - l1) / (l0 - l1);
    }
    let last = tail[tail.len() - 1];
    let back = tail[tail.len().saturating_sub(9)];
    let slope = if back[1] - last[1] > 1e-9 {
        (back[0] - last[0]) / (back[1] - last[1])
    } else {
        std::f64::consts::LOG10_E
    };
    (last[0] - slope * (last[1] - ll)).max(-12.0)
}

/// A monotone piecewise-linear map through `knots` (`[x, y]`, x rising), fixed at 0 and 1.
fn piecewise(knots: &[[f64; 2]], x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let mut prev = [0.0, 0.0];
    for &k in knots {
        if x <= k[0] {
            if k[0] - prev[0] <= f64::EPSILON {
                return k[1];
            }
            let y = prev[1] + (k[1] - prev[1]) * (x - prev[0]) / (k[0] - prev[0]);
            return (y * 10_000.0).round() / 10_000.0;
        }
        prev = k;
    }
    if prev[0] >= 1.0 {
        return prev[1];
    }
    let y = prev[1] + (1.0 - prev[1]) * (x - prev[0]) / (1.0 - prev[0]);
    (y * 10_000.0).round() / 10_000.0
}

fn schema_difference(found: &FeatureSchema, current: &FeatureSchema) -> String {
    let describe = |kind: &str, a: &[String], b: &[String]| -> Option<String> {
        if a == b {
            return None;
        }
        let missing: Vec<&str> = b
            .iter()
            .filter(|n| !a.contains(n))
            .map(String::as_str)
            .collect();
        let extra: Vec<&str> = a
            .iter()
            .filter(|n| !b.contains(n))
            .map(String::as_str)
            .collect();
        Some(format!(
            "{kind} features differ (model has {}, this build reads {}; missing from the model: [{}]; unknown here: [{}])",
            a.len(),
            b.len(),
            missing.join(", "),
            extra.join(", ")
        ))
    };
    [
        describe("profile", &found.profile, &current.profile),
        describe("event", &found.event, &current.event),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_trained_on_no_tool_calls_does_not_judge_them() {
        use crate::event::tool::ToolCall;
        use crate::event::{AccessEvent, Format, Outcome};
        use std::borrow::Cow;
        let mut ev = AccessEvent {
            format: Format::Native,
            event_id: Cow::Borrowed("e-1"),
            time_ms: 0,
            agent_id: Cow::Borrowed("a"),
            agent_kind: None,
            action: Cow::Borrowed("send_email"),
            resource: Cow::Borrowed("tool:send_email"),
            outcome: Outcome::Success,
            session_id: None,
            source_ip: None,
            bytes: None,
            grant: None,
            intent: None,
            attributes: None,
            tool: None,
        };
        let built_in = Model::embedded().unwrap();
        assert_eq!(built_in.file().training.tool_calls, 0);
        assert!(built_in.judges(&ev), "an access event is judged");
        ev.tool = Some(Box::new(ToolCall {
            request: Some(Cow::Borrowed("mail Bob")),
            ..ToolCall::default()
        }));
        assert!(!built_in.judges(&ev), "a tool call is not");
        let mut file = built_in.file().clone();
        file.training.tool_calls = 10;
        assert!(
            Model::new(file, 1).unwrap().judges(&ev),
            "unless it learned some"
        );
    }

    #[test]
    fn the_tail_interpolates_and_extrapolates() {
        let tail = vec![[0.0, 0.0], [-1.0, -2.0], [-2.0, -4.0]];
        assert_eq!(tail_log10_p(&tail, 1.0), 0.0);
        assert!((tail_log10_p(&tail, -1.0) + 0.5).abs() < 1e-12);
        assert!((tail_log10_p(&tail, -3.0) + 1.5).abs() < 1e-12);
        // Beyond the last point: the slope of the table (one decade per 2 nats here).
        assert!((tail_log10_p(&tail, -6.0) + 3.0).abs() < 1e-12);
        assert_eq!(tail_log10_p(&tail, f64::NEG_INFINITY), -12.0);
    }

    #[test]
    fn calibration_is_monotone_and_fixed_at_the_ends() {
        let knots = vec![[0.2, 0.1], [0.6, 0.7]];
        assert_eq!(piecewise(&knots, 0.0), 0.0);
        assert!((piecewise(&knots, 0.1) - 0.05).abs() < 1e-4);
        assert!((piecewise(&knots, 0.4) - 0.4).abs() < 1e-4);
        assert!((piecewise(&knots, 0.8) - 0.85).abs() < 1e-4);
        assert_eq!(piecewise(&knots, 1.0), 1.0);
        let mut last = 0.0;
        for i in 0..=100 {
            let y = piecewise(&knots, i as f64 / 100.0);
            assert!(y >= last);
            last = y;
        }
    }

    #[test]
    fn the_embedded_model_loads() {
        let m = Model::embedded().expect("the default model loads");
        assert!(m.groups() >= 2);
    }

    #[test]
    fn a_model_of_another_schema_or_version_is_refused_by_name() {
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_MODEL).unwrap();
        v["feature_schema"]["event"][2] = "log_megabytes".into();
        let err = Model::from_json(&v.to_string()).unwrap_err().to_string();
        assert!(err.contains("event features differ"), "{err}");
        assert!(err.contains("missing from the model: [log_bytes]"), "{err}");
        assert!(err.contains("unknown here: [log_megabytes]"), "{err}");

        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_MODEL).unwrap();
        v["format_version"] = 99.into();
        let err = Model::from_json(&v.to_string()).unwrap_err().to_string();
        assert!(err.contains("format version 99"), "{err}");

        let err = Model::from_json("{\"format\":\"other\"}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a cinch model"), "{err}");
    }
}
