//! Settings of the learned models.

use serde::{Deserialize, Serialize};

/// The learned models.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MlSettings {
    /// Apply a model: learned peer groups, the `model` detector and score calibration.
    pub enabled: bool,
    /// Model file written by `cinch train`, reloaded by `cinch run` when it changes; empty: the
    /// default model built into cinch (`models/default.json`, trained on simulated traffic).
    /// `--model` overrides it.
    pub model_path: String,
    /// Seconds between checks of the model file for changes (`cinch run`).
    pub reload_secs: u64,
    /// An agent is assigned to its nearest learned peer group once it has this many events...
    pub assign_min_events: u32,
    /// ...spread over at least this many days.
    pub assign_min_days: f64,
    /// The `model` detector starts scoring an event when at most this share of its group's
    /// training events were as unlikely, as `-log10` of the share (3 = one in a thousand)...
    pub rarity_from: f32,
    /// ...and scores 1 at this `-log10` share (5 = one in a hundred thousand).
    pub rarity_full: f32,
    /// Map fused scores through the model's per-group calibration, so that a score cuts off
    /// the same share of traffic in every group.
    pub calibrate: bool,
}

impl Default for MlSettings {
    fn default() -> Self {
        MlSettings {
            enabled: true,
            model_path: String::new(),
            reload_secs: 5,
            assign_min_events: 200,
            assign_min_days: 1.0,
            rarity_from: 3.0,
            rarity_full: 5.0,
            calibrate: false,
        }
    }
}

impl MlSettings {
    /// Appends every problem with these settings to `errs`.
    pub fn validate(&self, errs: &mut Vec<String>) {
        if self.reload_secs == 0 {
            errs.push("ml.reload_secs must be at least 1".into());
        }
        crate::vocab::check_at_most(
            errs,
            "ml.reload_secs",
            self.reload_secs,
            crate::vocab::MAX_DURATION_SECS,
        );
        if !(self.assign_min_days >= 0.0 && self.assign_min_days <= 365.0) {
            errs.push(format!(
                "ml.assign_min_days must be within 0..365 (got {})",
                self.assign_min_days
            ));
        }
        if !(self.rarity_from >= 0.0
            && self.rarity_from < self.rarity_full
            && self.rarity_full <= 12.0)
        {
            errs.push(format!(
                "0 <= ml.rarity_from < ml.rarity_full <= 12 must hold (got {} and {})",
                self.rarity_from, self.rarity_full
            ));
        }
    }
}
