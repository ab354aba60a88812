//! `manifest.json`: the settings, counts, time range, ground truth on grants and the benign
//! drift of a simulation.

use std::collections::BTreeMap;

use serde::Serialize;

use super::archetypes::Archetype;
use super::attacks::{self, AttackPlan};
use super::clock::{DAY, rfc3339_ms};
use super::drift;
use super::fleet::{self, World};
use super::writer::Stats;
use super::{ATTACKS_FILE, ENTITLEMENTS_FILE, LABELS_FILE, SimConfig};

/// The manifest document.
#[derive(Serialize)]
pub(crate) struct Manifest<'a> {
    /// Always `cinch simulate`.
    pub generator: &'static str,
    /// Version of this layout.
    pub format_version: u32,
    /// The settings (without the output directory).
    pub args: &'a SimConfig,
    /// The period.
    pub time_range: TimeRange,
    /// Clean days before the first attack.
    pub baseline_days: u32,
    /// Counts.
    pub counts: Counts,
    /// The external destination shared by campaign injections.
    pub campaign_destination: &'a str,
    /// Per agent, the grants it holds but never uses in benign traffic.
    pub unused_grants: BTreeMap<&'a str, Vec<&'a str>>,
    /// The files.
    pub files: Files,
    /// The benign drift injected.
    pub drift: drift::DriftManifest,
}

/// The simulated period and where events actually fall.
#[derive(Serialize)]
pub(crate) struct TimeRange {
    /// Start of the period.
    pub start: String,
    /// End of the period (exclusive).
    pub end: String,
    /// Earliest time an attack may start.
    pub attacks_from: String,
    /// Time of the first event.
    pub first_event: Option<String>,
    /// Time of the last event.
    pub last_event: Option<String>,
}

/// What was written.
#[derive(Serialize)]
pub(crate) struct Counts {
    /// Events.
    pub events: u64,
    /// Benign events.
    pub benign_events: u64,
    /// Attack events.
    pub attack_events: u64,
    /// Agents.
    pub agents: u32,
    /// Attacks with at least one event.
    pub attacks: usize,
    /// Agents per archetype.
    pub agents_per_archetype: BTreeMap<&'static str, u32>,
    /// Events per archetype.
    pub events_per_archetype: BTreeMap<&'static str, u64>,
    /// Mean events per agent and day, per archetype.
    pub events_per_agent_day: BTreeMap<&'static str, f64>,
    /// Attacks per scenario.
    pub attacks_per_scenario: BTreeMap<&'static str, usize>,
    /// Attack events per scenario.
    pub attack_events_per_scenario: BTreeMap<&'static str, u64>,
    /// Events per outcome.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Events carrying a grant id.
    pub events_with_grant: u64,
}

/// Names of the files beside the manifest.
#[derive(Serialize)]
pub(crate) struct Files {
    /// Events file.
    pub events: String,
    /// Labels file.
    pub labels: &'static str,
    /// Attacks file.
    pub attacks: &'static str,
    /// Entitlements file.
    pub entitlements: &'static str,
}

/// Describes a finished simulation.
pub(crate) fn build<'a>(
    cfg: &'a SimConfig,
    start_ms: i64,
    world: &'a World,
    plans: &[AttackPlan],
    stats: &Stats,
    campaign: &'a str,
    events_file: String,
) -> Manifest<'a> {
    let end = world.end_ms();
    let counts = fleet::archetype_counts(cfg.agents);
    let mut attacks_per_scenario = BTreeMap::new();
    let mut attack_events_per_scenario = BTreeMap::new();
    for s in &cfg.scenarios {
        attacks_per_scenario.insert(s.name(), 0usize);
        attack_events_per_scenario.insert(s.name(), 0u64);
    }
    let mut n_attacks = 0;
    for (p, st) in plans.iter().zip(&stats.per_attack) {
        if st.0 > 0 {
            n_attacks += 1;
            *attacks_per_scenario.entry(p.scenario.name()).or_default() += 1;
            *attack_events_per_scenario
                .entry(p.scenario.name())
                .or_default() += st.0;
        }
    }
    Manifest {
        generator: "cinch simulate",
        format_version: 1,
        args: cfg,
        time_range: TimeRange {
            start: rfc3339_ms(start_ms),
            end: rfc3339_ms(end),
            attacks_from: rfc3339_ms(start_ms + attacks::baseline_days(cfg.days) as i64 * DAY),
            first_event: stats.first_ms.map(rfc3339_ms),
            last_event: stats.last_ms.map(rfc3339_ms),
        },
        baseline_days: attacks::baseline_days(cfg.days),
        counts: Counts {
            events: stats.events,
            benign_events: stats.events - stats.attack_events,
            attack_events: stats.attack_events,
            agents: cfg.agents,
            attacks: n_attacks,
            agents_per_archetype: Archetype::ALL
                .iter()
                .zip(&counts)
                .map(|(a, &n)| (a.name(), n))
                .collect(),
            events_per_archetype: Archetype::ALL
                .iter()
                .zip(&stats.per_archetype)
                .map(|(a, &n)| (a.name(), n))
                .collect(),
            events_per_agent_day: Archetype::ALL
                .iter()
                .zip(&stats.per_archetype)
                .zip(&counts)
                .filter(|(_, c)| **c > 0)
                .map(|((a, &n), &c)| {
                    let v = n as f64 / (c as f64 * cfg.days as f64);
                    (a.name(), (v * 10.0).round() / 10.0)
                })
                .collect(),
            attacks_per_scenario,
            attack_events_per_scenario,
            outcomes: [
                ("success", stats.outcomes[0]),
                ("denied", stats.outcomes[1]),
                ("error", stats.outcomes[2]),
            ]
            .into_iter()
            .collect(),
            events_with_grant: stats.with_grant,
        },
        campaign_destination: campaign,
        unused_grants: world
            .agents
            .iter()
            .map(|a| {
                (
                    a.id.as_str(),
                    a.grants[a.used_grants..]
                        .iter()
                        .map(|g| g.id.as_str())
                        .collect(),
                )
            })
            .collect(),
        files: Files {
            events: events_file,
            labels: LABELS_FILE,
            attacks: ATTACKS_FILE,
            entitlements: ENTITLEMENTS_FILE,
        },
        drift: drift::describe(world),
    }
}
