//! Training (`cinch train`): two passes over the history.
//!
//! 1. The engine, without a model, scores every event; each agent's behaviour profile is
//!    accumulated, and the feature vector of every event the statistical detectors judge normal
//!    is kept.
//! 2. Agents are clustered with linfa's k-means for every number of groups from 2 up, and the
//!    number with the best mean silhouette (every group at least `min_group` agents) is kept.
//! 3. Per group, and for the whole fleet, Gaussian mixtures of 1 to `max_components`
//!    components are fitted by linfa on a deterministic sample of the group's normal events; the
//!    one with the lowest BIC is kept, with the lower tail of its log-likelihood over all of the
//!    group's events.
//! 4. A second pass runs the engine with that model and records the fused scores per group,
//!    whose quantiles give the calibration.

use std::sync::Arc;

use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::{Array1, Array2};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rustc_hash::FxHashMap;

use super::ModelError;
use super::features::{Behaviour, EVENT_DIM, PROFILE_DIM};
use super::gmm::Mixture;
use super::model::{
    Calibration, EventModel, FORMAT, FORMAT_VERSION, FeatureSchema, GroupCandidate, GroupModel,
    MixtureCandidate, Model, ModelFile, PeerGroups, Scale, Training,
};
use crate::config::Settings;
use crate::engine::Engine;
use crate::event::AccessEvent;
use crate::output::OutputRecord;
use crate::profile::keys::EventKeys;

/// What to train on and how.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Engine settings for the scoring passes.
    pub settings: Settings,
    /// Most peer groups tried.
    pub max_groups: usize,
    /// Fewest agents a peer group may have.
    pub min_group: usize,
    /// Most mixture components tried per group.
    pub max_components: usize,
    /// Events a group's mixture is fitted on, at most (a deterministic sample).
    pub sample: usize,
    /// Seed of k-means and EM initialisation.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            settings: Settings::default(),
            max_groups: 12,
            min_group: 3,
            max_components: 6,
            sample: 20_000,
            seed: 1,
        }
    }
}

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The history could not be read.
    #[error(transparent)]
    Source(Box<dyn std::error::Error + Send + Sync>),
    /// An input path is unusable.
    #[error("{0}")]
    Input(String),
    /// Too little history, or a fit failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Counts of one pass over the history.
#[derive(Clone, Copy, Debug, Default)]
pub struct PassCounts {
    /// Records read.
    pub records: u64,
    /// Valid events among them.
    pub events: u64,
    /// Records that could not be decoded.
    pub dead_letters: u64,
    /// Time of the earliest event.
    pub first_ms: Option<i64>,
    /// Time of the latest event.
    pub last_ms: Option<i64>,
}

impl PassCounts {
    /// Counts a decoded record: a valid event at `time_ms`, or a dead letter.
    pub fn record(&mut self, time_ms: Option<i64>) {
        self.records += 1;
        match time_ms {
            Some(t) => {
                self.events += 1;
                self.first_ms = Some(self.first_ms.map_or(t, |f| f.min(t)));
                self.last_ms = Some(self.last_ms.map_or(t, |l| l.max(t)));
            }
            None => self.dead_letters += 1,
        }
    }
}

/// The history a model is trained on, read twice, in the same order each time. Reading it
/// (files, a topic) is the drivers' business.
pub trait History {
    /// Names of the history's parts, recorded in the model file.
    fn names(&self) -> Vec<String>;
    /// Runs `f` over every valid event, in order, and counts what was read.
    fn pass(&mut self, f: &mut dyn FnMut(&AccessEvent<'_>)) -> Result<PassCounts, TrainError>;
}

/// Where training reports its progress and reads its stopwatch (both the driver's).
pub trait Progress {
    /// Seconds since training began.
    fn seconds(&self) -> f64;
    /// One line of progress.
    fn say(&self, line: String);
}

/// What training measured, beyond the model file.
#[derive(Clone, Debug, Default)]
pub struct TrainReport {
    /// Seconds spent in each step: first pass, clustering, mixtures, calibration pass.
    pub seconds: [f64; 4],
}

/// Trains a model on the history.
pub fn train(
    history: &mut dyn History,
    opts: &TrainOptions,
    progress: &dyn Progress,
) -> Result<(ModelFile, TrainReport), TrainError> {
    let mut settings = opts.settings.clone();
    settings.commands.enabled = false;
    let say = |m: String| progress.say(m);
    let mut report = TrainReport::default();

    // Pass 1: behaviour per agent, and the features of normal events.
    let mut engine = Engine::new(settings.clone());
    engine.set_feature_tap(true);
    // Per agent: its index, its whole behaviour (for clustering), and its behaviour up to the
    // point where `cinch run` would assign it to a group (for the group it would get there).
    let mut agents: FxHashMap<Box<str>, (u32, Behaviour, Behaviour)> = FxHashMap::default();
    let mut feats: Vec<[f32; EVENT_DIM]> = Vec::new();
    let mut owner: Vec<u32> = Vec::new();
    // Whether the agent was assigned to its group when the event came (else only the fleet's
    // event model judges it).
    let mut grouped: Vec<bool> = Vec::new();
    let mut out: Vec<OutputRecord> = Vec::new();
    let threshold = settings.decide.finding_threshold;
    let ml = settings.ml.clone();
    let mut tool_calls = 0u64;
    let counts = history.pass(&mut |ev| {
        tool_calls += u64::from(ev.tool.is_some());
        let v = engine.process(ev, &mut out);
        out.clear();
        let next = agents.len() as u32;
        let (idx, whole, early) = agents
            .entry(ev.agent_id.as_ref().into())
            .or_insert_with(|| (next, Behaviour::default(), Behaviour::default()));
        let keys = EventKeys::of(ev);
        whole.add(ev, &keys);
        if !early.ready(&ml) {
            early.add(ev, &keys);
        }
        if v.score < threshold
            && let Some(f) = engine.last_features()
        {
            feats.push(*f);
            owner.push(*idx);
            grouped.push(early.ready(&ml));
        }
    })?;
    report.seconds[0] = progress.seconds();
    say(format!(
        "read {} records: {} events of {} agents ({} dead letters); {} events of agents past their learning period judged normal, in {:.1} s",
        counts.records,
        counts.events,
        agents.len(),
        counts.dead_letters,
        feats.len(),
        report.seconds[0]
    ));
    if agents.len() < 2 * opts.min_group.max(1) {
        return Err(ModelError::Fit(format!(
            "{} agents in the history; peer groups need at least {}",
            agents.len(),
            2 * opts.min_group.max(1)
        ))
        .into());
    }
    if feats.len() < 1000 {
        return Err(ModelError::Fit(format!(
            "{} normal events of agents past their learning period in the history; the event model needs at least 1000",
            feats.len()
        ))
        .into());
    }

    // Peer groups.
    let t = progress.seconds();
    let mut by_index: Vec<&(u32, Behaviour, Behaviour)> = agents.values().collect();
    by_index.sort_unstable_by_key(|(i, ..)| *i);
    let profiles: Vec<[f64; PROFILE_DIM]> = by_index.iter().map(|(_, b, _)| b.vector()).collect();
    let peer_groups = cluster(&profiles, opts)?;
    // The group each agent gets online: from its early behaviour, as `cinch run` assigns it.
    let assignment: Vec<u16> = by_index
        .iter()
        .map(|(_, _, early)| peer_groups.assign(&early.vector()))
        .collect();
    report.seconds[1] = progress.seconds() - t;
    say(format!(
        "{} peer groups (silhouette {:.3}; sizes {:?}) in {:.1} s",
        peer_groups.centroids.len(),
        peer_groups
            .candidates
            .iter()
            .find(|c| c.k == peer_groups.centroids.len())
            .map_or(0.0, |c| c.silhouette),
        peer_groups.sizes,
        report.seconds[1]
    ));

    // Event models.
    let t = progress.seconds();
    let scale = event_scale(&feats);
    let k = peer_groups.centroids.len();
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); k + 1];
    for (i, o) in owner.iter().enumerate() {
        if grouped[i] {
            members[assignment[*o as usize] as usize].push(i as u32);
        }
        members[k].push(i as u32);
    }
    let mut groups = Vec::with_capacity(k + 1);
    for (g, idx) in members.iter().enumerate() {
        let gm = fit_group(&feats, idx, &scale, opts, g)?;
        say(format!(
            "event model {}: {} events, {} components",
            if g == k {
                "fleet".to_string()
            } else {
                format!("group {g}")
            },
            idx.len(),
            gm.mixture.components.len()
        ));
        groups.push(gm);
    }
    report.seconds[2] = progress.seconds() - t;
    drop(feats);

    let mut file = ModelFile {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        cinch_version: env!("CARGO_PKG_VERSION").into(),
        feature_schema: FeatureSchema::current(),
        training: Training {
            inputs: history.names(),
            // A history without events has no first or last: empty.
            first_event: counts.first_ms.map(rfc3339).unwrap_or_default(),
            last_event: counts.last_ms.map(rfc3339).unwrap_or_default(),
            records: counts.records,
            events: counts.events,
            dead_letters: counts.dead_letters,
            agents: agents.len() as u64,
            modelled_events: owner.len() as u64,
            tool_calls,
            seconds: 0.0,
        },
        peer_groups,
        event_model: EventModel { scale, groups },
        calibration: None,
    };

    // Pass 2: fused scores per group under the uncalibrated model.
    let t = progress.seconds();
    let model = Model::new(file.clone(), 0)?;
    let mut engine = Engine::new(settings.clone());
    engine.set_model(Some(Arc::new(model)));
    let mut hist = vec![vec![0u64; BINS]; k + 1];
    history.pass(&mut |ev| {
        let v = engine.process(ev, &mut out);
        out.clear();
        // Calibrate on the background, not on what was already judged anomalous: history holds
        // incidents too, and their scores would make the groups they hit look noisy.
        if v.score >= threshold {
            return;
        }
        let bin = ((v.score.clamp(0.0, 1.0) * (BINS - 1) as f32).round()) as usize;
        if let Some(g) = engine.learned_group(&ev.agent_id) {
            hist[g as usize][bin] += 1;
        }
        hist[k][bin] += 1;
    })?;
    file.calibration = Some(calibration(&hist));
    report.seconds[3] = progress.seconds() - t;
    file.training.seconds = (progress.seconds() * 10.0).round() / 10.0;
    say(format!(
        "calibration pass in {:.1} s; trained in {:.1} s",
        report.seconds[3], file.training.seconds
    ));
    Ok((file, report))
}

/// Score histogram bins: fused scores have four decimals.
const BINS: usize = 10_001;

/// Quantile levels of the calibration.
const LEVELS: [f64; 12] = [
    0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999,
];

fn rfc3339(ms: i64) -> String {
    crate::output::time::rfc3339_ms(ms)
}

/// Means and (floored) deviations of the columns.
fn scale_of<const D: usize>(rows: impl Iterator<Item = [f64; D]> + Clone, floor: f64) -> Scale {
    let mut n = 0.0;
    let mut mean = [0.0; D];
    for r in rows.clone() {
        n += 1.0;
        for i in 0..D {
            mean[i] += r[i];
        }
    }
    for m in &mut mean {
        *m /= f64::max(n, 1.0);
    }
    let mut var = [0.0; D];
    for r in rows {
        for i in 0..D {
            var[i] += (r[i] - mean[i]).powi(2);
        }
    }
    Scale {
        mean: mean.to_vec(),
        std: var
            .iter()
            .map(|v| (v / f64::max(n, 1.0)).sqrt().max(floor))
            .collect(),
    }
}

fn event_scale(feats: &[[f32; EVENT_DIM]]) -> Scale {
    scale_of(feats.iter().map(|f| f.map(|v| v as f64)), 1e-2)
}

/// k-means for every k from 2 to `max_groups`; the best mean silhouette among the clusterings
/// whose every group has at least `min_group` agents.
fn cluster(profiles: &[[f64; PROFILE_DIM]], opts: &TrainOptions) -> Result<PeerGroups, TrainError> {
    let scale = scale_of(profiles.iter().copied(), 1e-2);
    let n = profiles.len();
    let mut z = Array2::<f64>::zeros((n, PROFILE_DIM));
    for (i, p) in profiles.iter().enumerate() {
        let mut row = [0.0; PROFILE_DIM];
        scale.apply(p.iter().copied(), &mut row);
        z.row_mut(i).assign(&Array1::from(row.to_vec()));
    }
    let min_group = opts.min_group.max(1);
    let most = opts.max_groups.min(n / min_group).max(1);
    let mut candidates = Vec::new();
    let mut best: Option<(f64, Array2<f64>, Vec<u64>)> = None;
    for k in 2..=most {
        let data = DatasetBase::from(z.clone());
        let km = KMeans::params_with_rng(k, ChaCha8Rng::seed_from_u64(opts.seed))
            .n_runs(10)
            .max_n_iterations(300)
            .tolerance(1e-6)
            .fit(&data)
            .map_err(|e| ModelError::Fit(format!("k-means with {k} groups: {e}")))?;
        let labels = km.predict(&z);
        let mut sizes = vec![0u64; k];
        for l in &labels {
            sizes[*l] += 1;
        }
        let smallest = *sizes.iter().min().unwrap_or(&0) as usize;
        let silhouette = DatasetBase::new(z.clone(), labels.clone())
            .silhouette_score()
            .map_err(|e| ModelError::Fit(format!("silhouette of {k} groups: {e}")))?;
        candidates.push(GroupCandidate {
            k,
            silhouette: (silhouette * 1e4).round() / 1e4,
            smallest,
        });
        if smallest >= min_group && best.as_ref().is_none_or(|b| silhouette > b.0) {
            best = Some((silhouette, km.centroids().clone(), sizes));
        }
    }
    let (centroids, sizes) = match best {
        Some((_, c, s)) => (c, s),
        // Too few agents for two groups of the minimum size: one group.
        None => (
            z.mean_axis(ndarray::Axis(0))
                .map(|m| m.insert_axis(ndarray::Axis(0)))
                .unwrap_or_else(|| Array2::zeros((1, PROFILE_DIM))),
            vec![n as u64],
        ),
    };
    Ok(PeerGroups {
        method: "k-means".into(),
        criterion: "silhouette".into(),
        candidates,
        scale,
        centroids: centroids.outer_iter().map(|r| r.to_vec()).collect(),
        sizes,
    })
}

/// Fits a group's mixture (component count by BIC) and tabulates its log-likelihood tail.
fn fit_group(
    feats: &[[f32; EVENT_DIM]],
    members: &[u32],
    scale: &Scale,
    opts: &TrainOptions,
    g: usize,
) -> Result<GroupModel, TrainError> {
    let standard = |i: u32| {
        let mut z = [0.0; EVENT_DIM];
        scale.apply(feats[i as usize].iter().map(|v| *v as f64), &mut z);
        z
    };
    // A deterministic sample: every step-th member.
    let step = members.len().div_ceil(opts.sample.max(1)).max(1);
    let sample: Vec<u32> = members.iter().step_by(step).copied().collect();
    if sample.len() < 10 * EVENT_DIM {
        // Too few events of its own: the group borrows nothing and is judged by a broad
        // single Gaussian of all its events (or of the standard space if it has none).
        return Ok(broad_group(feats, members.len(), &sample, scale, &standard));
    }
    let mut x = Array2::<f64>::zeros((sample.len(), EVENT_DIM));
    for (r, i) in sample.iter().enumerate() {
        x.row_mut(r).assign(&Array1::from(standard(*i).to_vec()));
    }
    let n = sample.len() as f64;
    let mut candidates = Vec::new();
    let mut best: Option<(f64, Mixture)> = None;
    for c in 1..=opts.max_components.max(1) {
        let seed = opts
            .seed
            .wrapping_mul(1000)
            .wrapping_add((g * 100 + c) as u64);
        let Ok(m) = Mixture::fit(&x, c, seed) else {
            continue;
        };
        let Ok(s) = m.scorer::<EVENT_DIM>(scale) else {
            continue;
        };
        let ll: f64 = sample
            .iter()
            .map(|i| s.log_likelihood(&feats[*i as usize]) as f64)
            .sum();
        let bic = -2.0 * ll + m.parameters(EVENT_DIM) as f64 * n.ln();
        candidates.push(MixtureCandidate {
            components: c,
            bic: bic.round(),
        });
        if best.as_ref().is_none_or(|b| bic < b.0) {
            best = Some((bic, m));
        }
    }
    let Some((_, mixture)) = best else {
        return Err(ModelError::Fit(format!("no mixture could be fitted for group {g}")).into());
    };
    let s = mixture.scorer::<EVENT_DIM>(scale)?;
    let mut lls: Vec<f64> = members
        .iter()
        .map(|i| s.log_likelihood(&feats[*i as usize]) as f64)
        .collect();
    Ok(GroupModel {
        events: members.len() as u64,
        fitted_on: sample.len() as u64,
        candidates,
        mixture,
        tail: tail(&mut lls),
    })
}

/// A single broad Gaussian for a group with too few events.
fn broad_group(
    feats: &[[f32; EVENT_DIM]],
    events: usize,
    sample: &[u32],
    scale: &Scale,
    standard: &dyn Fn(u32) -> [f64; EVENT_DIM],
) -> GroupModel {
    let rows: Vec<[f64; EVENT_DIM]> = sample.iter().map(|i| standard(*i)).collect();
    let sc = scale_of(rows.iter().copied(), 0.5);
    let mixture = Mixture {
        components: vec![super::gmm::Component {
            weight: 1.0,
            mean: sc.mean.clone(),
            precision: (0..EVENT_DIM * EVENT_DIM)
                .map(|i| {
                    if i / EVENT_DIM == i % EVENT_DIM {
                        1.0 / sc.std[i % EVENT_DIM].powi(2)
                    } else {
                        0.0
                    }
                })
                .collect(),
        }],
    };
    let tail = match mixture.scorer::<EVENT_DIM>(scale) {
        Ok(s) if rows.len() >= 2 => {
            let mut lls: Vec<f64> = sample
                .iter()
                .map(|i| s.log_likelihood(&feats[*i as usize]) as f64)
                .collect();
            self::tail(&mut lls)
        }
        _ => vec![[0.0, 0.0], [-1.0, -5.0]],
    };
    GroupModel {
        events: events as u64,
        fitted_on: rows.len() as u64,
        candidates: vec![MixtureCandidate {
            components: 1,
            bic: 0.0,
        }],
        mixture,
        tail,
    }
}

/// The lower tail: `[log10 p, ll]` at p = 10^(-i/8), down to the share that still holds ten
/// events.
fn tail(lls: &mut [f64]) -> Vec<[f64; 2]> {
    lls.sort_by(|a, b| a.total_cmp(b));
    let n = lls.len();
    let mut out = Vec::new();
    for i in 0..=96 {
        let log10_p = -(i as f64) / 8.0;
        let p = 10f64.powf(log10_p);
        if (p * n as f64) < 10.0 && out.len() >= 2 {
            break;
        }
        let idx = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        out.push([log10_p, lls[idx]]);
    }
    out
}

/// Calibration knots per group: the group's score at each quantile level, mapped to the fleet's
/// score at the same level.
fn calibration(hist: &[Vec<u64>]) -> Calibration {
    let fleet = &hist[hist.len() - 1];
    let quantile = |h: &[u64], level: f64| -> Option<f64> {
        let n: u64 = h.iter().sum();
        let above = ((1.0 - level) * n as f64).floor() as u64;
        if n == 0 || above < 20 {
            return None;
        }
        // The smallest score with at most `above` events strictly higher.
        let mut higher = 0u64;
        for (bin, c) in h.iter().enumerate().rev() {
            if higher + c > above {
                return Some(bin as f64 / (BINS - 1) as f64);
            }
            higher += c;
        }
        Some(0.0)
    };
    let groups = hist
        .iter()
        .map(|h| {
            let mut knots: Vec<[f64; 2]> = Vec::new();
            for level in LEVELS {
                let (Some(x), Some(y)) = (quantile(h, level), quantile(fleet, level)) else {
                    continue;
                };
                let last = knots.last().copied().unwrap_or([0.0, 0.0]);
                if x > last[0] && x < 1.0 {
                    knots.push([x, y.max(last[1]).min(1.0)]);
                }
            }
            knots
        })
        .collect();
    Calibration {
        levels: LEVELS.to_vec(),
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_falls_with_p() {
        let mut lls: Vec<f64> = (0..10_000).map(|i| -(i as f64) / 100.0).collect();
        let t = tail(&mut lls);
        assert!(t.len() > 20);
        assert!(
            t.windows(2)
                .all(|w| w[1][0] < w[0][0] && w[1][1] <= w[0][1])
        );
        assert_eq!(t[0], [0.0, 0.0]);
    }

    #[test]
    fn calibration_maps_a_noisy_group_onto_the_fleet() {
        // Fleet: 100k events at 0, scores spread 0..0.5; the group: scores spread 0..1.
        let mut fleet = vec![0u64; BINS];
        let mut group = vec![0u64; BINS];
        for i in 0..10_000usize {
            group[i] += 10;
            fleet[i / 2] += 10;
        }
        let c = calibration(&[group, fleet]);
        let g = &c.groups[0];
        assert!(!g.is_empty());
        for [x, y] in g {
            assert!((y - x / 2.0).abs() < 0.01, "{x} -> {y}");
        }
    }
}
