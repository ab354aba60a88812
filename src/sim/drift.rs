//! Benign drift: changes that a naive detector flags but that are not attacks.
//!
//! Per-agent drift (growing working sets, redeploys to new addresses) lives in each agent's
//! profile; this module holds the fleet-wide part (a tool rolled out to a whole archetype on one
//! day) and describes all of it for the manifest.

use serde::Serialize;

use super::archetypes::Archetype;
use super::clock::{DAY, LocalTime, rfc3339_ms};
use super::fleet::{World, ip_string};

/// A new tool rolled out to every agent of one archetype at the same instant.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rollout {
    /// Who gets it.
    pub archetype: Archetype,
    /// The new action.
    pub action: &'static str,
    /// The action it mostly replaces.
    pub replaces: &'static str,
    /// Day of the period it starts.
    pub day: u32,
    /// Instant it starts.
    pub from_ms: i64,
}

/// Fleet-wide drift decisions.
#[derive(Clone, Debug)]
pub(crate) struct DriftPlan {
    /// The roll-out of semantic knowledge-base search to support agents.
    pub rollout: Rollout,
}

impl DriftPlan {
    /// Plans the drift: the roll-out happens on the first weekday (UTC) at or after the middle
    /// of the period.
    pub(crate) fn plan(start_ms: i64, days: u32) -> DriftPlan {
        let mut day = days / 2;
        while day + 1 < days && LocalTime::at(start_ms + day as i64 * DAY, 0).is_weekend() {
            day += 1;
        }
        DriftPlan {
            rollout: Rollout {
                archetype: Archetype::SupportAgent,
                action: "kb:SemanticSearch",
                replaces: "kb:Search",
                day,
                from_ms: start_ms + day as i64 * DAY,
            },
        }
    }
}

/// The drift section of the manifest.
#[derive(Serialize)]
pub(crate) struct DriftManifest {
    rollouts: Vec<RolloutManifest>,
    redeploys: Vec<RedeployManifest>,
    working_set_growth: Vec<GrowthManifest>,
    month_end_days: Vec<String>,
    note: &'static str,
}

#[derive(Serialize)]
struct RolloutManifest {
    archetype: &'static str,
    action: &'static str,
    replaces: &'static str,
    day: u32,
    from: String,
}

#[derive(Serialize)]
struct RedeployManifest {
    agent_id: String,
    time: String,
    source_ips: Vec<String>,
}

/// One addition to an agent's working set.
#[derive(Serialize)]
pub(crate) struct GrowthManifest {
    /// Agent.
    pub agent_id: String,
    /// First day of the period it is used.
    pub day: u32,
    /// What was added (a table, repository, namespace, account...).
    pub added: String,
}

/// Describes the benign drift of a world.
pub(crate) fn describe(w: &World) -> DriftManifest {
    let r = w.drift.rollout;
    let mut month_end_days = Vec::new();
    for d in 0..w.days {
        let lt = LocalTime::at(w.day_start(d), 0);
        if lt.is_month_end() {
            month_end_days.push(format!("{:04}-{:02}-{:02}", lt.year, lt.month, lt.day));
        }
    }
    DriftManifest {
        rollouts: vec![RolloutManifest {
            archetype: r.archetype.name(),
            action: r.action,
            replaces: r.replaces,
            day: r.day,
            from: rfc3339_ms(r.from_ms),
        }],
        redeploys: w
            .agents
            .iter()
            .filter_map(|a| {
                a.redeploy.as_ref().map(|r| RedeployManifest {
                    agent_id: a.id.clone(),
                    time: rfc3339_ms(r.time_ms),
                    source_ips: r.ips.iter().map(|&ip| ip_string(ip)).collect(),
                })
            })
            .collect(),
        working_set_growth: w
            .agents
            .iter()
            .flat_map(|a| {
                super::archetypes::growth(&a.profile)
                    .into_iter()
                    .map(|(day, added)| GrowthManifest {
                        agent_id: a.id.clone(),
                        day,
                        added,
                    })
            })
            .collect(),
        month_end_days,
        note: "month-end days raise analyst and finance activity; weekends lower human-driven agents",
    }
}
