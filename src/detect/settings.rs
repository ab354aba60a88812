//! Settings of the detectors and their fusion.

use serde::{Deserialize, Serialize};

use crate::vocab::{DetectorId, check_unit};

/// Detectors and fusion.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectSettings {
    /// Detectors to run (all by default).
    pub enabled: Vec<DetectorId>,
    /// Weight of each detector in the fusion, 0..1 (missing ones weigh 1).
    pub weights: std::collections::BTreeMap<DetectorId, f32>,
    /// A detector's reason is reported when its score reaches this.
    pub reason_floor: f32,
    /// Events scoring at or above this are not learned into the baseline at full weight:
    /// new behaviour in them is learned at most once a day, so an attacker cannot teach the
    /// baseline quickly.
    pub learn_below: f32,
    /// Fraction of a peer group using a capability above which it counts as common there.
    pub peer_common_share: f32,
    /// Smallest peer group whose statistics are trusted.
    pub min_peer_group: u32,
    /// Short activity window for rate, volume, denial and breadth detectors, in seconds.
    pub window_secs: u32,
    /// Period of fleet (peer-group) snapshots in event time, in seconds.
    pub fleet_tick_secs: u32,
}

impl Default for DetectSettings {
    fn default() -> Self {
        DetectSettings {
            enabled: DetectorId::ALL.to_vec(),
            weights: [(DetectorId::Model, 0.5)].into_iter().collect(),
            reason_floor: 0.2,
            learn_below: 0.3,
            peer_common_share: 0.25,
            min_peer_group: 3,
            window_secs: 300,
            fleet_tick_secs: 3600,
        }
    }
}

impl DetectSettings {
    /// The fusion weight of every detector, in [`DetectorId::ALL`] order.
    pub fn weights_table(&self) -> [f32; DetectorId::ALL.len()] {
        DetectorId::ALL.map(|id| self.weight(id))
    }

    /// The fusion weight of a detector (0 when disabled).
    pub fn weight(&self, id: DetectorId) -> f32 {
        if !self.enabled.contains(&id) {
            return 0.0;
        }
        self.weights.get(&id).copied().unwrap_or(1.0)
    }
}

impl DetectSettings {
    /// Appends every problem with these settings to `errs`.
    pub fn validate(&self, errs: &mut Vec<String>) {
        check_unit(errs, "detect.reason_floor", self.reason_floor);
        check_unit(errs, "detect.learn_below", self.learn_below);
        check_unit(errs, "detect.peer_common_share", self.peer_common_share);
        for (id, w) in &self.weights {
            check_unit(errs, &format!("detect.weights.{}", id.as_str()), *w);
        }
        if self.window_secs < 10 || self.window_secs > 3600 {
            errs.push(format!(
                "detect.window_secs must be within 10..3600 (got {})",
                self.window_secs
            ));
        }
        if self.fleet_tick_secs < 60 {
            errs.push(format!(
                "detect.fleet_tick_secs must be at least 60 (got {})",
                self.fleet_tick_secs
            ));
        }
    }
}
