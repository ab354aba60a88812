//! Attack scenarios, injected into a share of the agents after a clean baseline period.
//!
//! Attack events use the same formats, id styles, byte scales and session machinery as benign
//! ones; only the ground truth (labels, `attacks.csv`) says which they are.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::archetypes::Archetype;
use super::fleet::World;
use super::rng::{Domain, SimRng, pick, stream};

mod poisoning;
mod scenarios;

pub(crate) use scenarios::generate;

/// An attack scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Stolen credentials enumerate many resources from a new address, fast.
    CredentialTheftEnum,
    /// Bulk reads through the agent's normal read action, from its normal address.
    BulkExfiltration,
    /// A prompt-injected agent calls a tool it never uses inside an otherwise normal session.
    PromptInjectionTool,
    /// Attempts to gain admin rights through IAM, mostly denied.
    PrivilegeEscalation,
    /// Another team's resources through the agent's usual action, pace and hours.
    LateralMovement,
    /// A few accesses an hour to sensitive resources, spread over a day.
    LowAndSlow,
    /// A replayed ordinary session, off-hours, from a new address.
    SessionReplayOffhours,
    /// A slow ramp over days of another team's data through the agent's usual action, a little
    /// more each day, so that a baseline learning from everything absorbs it (opt-in: not in
    /// [`Scenario::DEFAULT`]).
    BaselinePoisoning,
}

impl Scenario {
    /// The scenarios of a default simulation, in round-robin order.
    pub const DEFAULT: [Scenario; 7] = [
        Scenario::CredentialTheftEnum,
        Scenario::BulkExfiltration,
        Scenario::PromptInjectionTool,
        Scenario::PrivilegeEscalation,
        Scenario::LateralMovement,
        Scenario::LowAndSlow,
        Scenario::SessionReplayOffhours,
    ];

    /// Every scenario: the default ones, then the opt-in ones.
    pub const ALL: [Scenario; 8] = [
        Scenario::CredentialTheftEnum,
        Scenario::BulkExfiltration,
        Scenario::PromptInjectionTool,
        Scenario::PrivilegeEscalation,
        Scenario::LateralMovement,
        Scenario::LowAndSlow,
        Scenario::SessionReplayOffhours,
        Scenario::BaselinePoisoning,
    ];

    /// Stable snake-case name (the `scenario` column of the labels).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::CredentialTheftEnum => "credential_theft_enum",
            Scenario::BulkExfiltration => "bulk_exfiltration",
            Scenario::PromptInjectionTool => "prompt_injection_tool",
            Scenario::PrivilegeEscalation => "privilege_escalation",
            Scenario::LateralMovement => "lateral_movement",
            Scenario::LowAndSlow => "low_and_slow",
            Scenario::SessionReplayOffhours => "session_replay_offhours",
            Scenario::BaselinePoisoning => "baseline_poisoning",
        }
    }

    /// The scenario of a name (see [`Scenario::name`]).
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Parses a comma-separated list of scenario names, where `default` stands for
    /// [`Scenario::DEFAULT`] and `all` for [`Scenario::ALL`]. Repeats are dropped; the order
    /// given is the round-robin order.
    pub fn parse_list(list: &str) -> Result<Vec<Scenario>, String> {
        let mut out: Vec<Scenario> = Vec::new();
        for name in list.split(',').map(str::trim) {
            let add: Vec<Scenario> = match name {
                "default" => Scenario::DEFAULT.to_vec(),
                "all" => Scenario::ALL.to_vec(),
                _ => vec![Scenario::from_name(name).ok_or_else(|| {
                    let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                    format!(
                        "unknown scenario `{name}`: expected default, all or one of {}",
                        known.join(", ")
                    )
                })?],
            };
            for s in add {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    /// Whether the scenario can happen to an agent of this archetype (only LLM agents can be
    /// prompt-injected).
    pub fn fits(self, arch: Archetype) -> bool {
        self != Scenario::PromptInjectionTool || arch.agent_kind() == "ai_agent"
    }
}

/// One planned attack.
#[derive(Clone, Debug)]
pub(crate) struct AttackPlan {
    /// Index (also the label key).
    pub idx: u16,
    /// `atk-0001`, ...
    pub id: String,
    /// Victim agent.
    pub agent: u32,
    /// Scenario.
    pub scenario: Scenario,
    /// Day of the period it starts.
    pub day: u32,
    /// Whether it sends to the shared campaign destination.
    pub campaign: bool,
}

/// Number of clean days before any attack: 40% of the period, rounded up.
pub(crate) fn baseline_days(days: u32) -> u32 {
    ((days as f64 * 0.4).ceil() as u32).min(days.saturating_sub(1))
}

/// Chooses victims (one attack each) and scenarios, round-robin over `scenarios`. A single day
/// leaves no room for a clean baseline, so it gets no attacks.
pub(crate) fn plan(w: &World, share: f64, scenarios: &[Scenario]) -> Vec<AttackPlan> {
    let n_agents = w.agents.len();
    let n = if w.days < 2 || scenarios.is_empty() {
        0
    } else {
        ((n_agents as f64 * share).round() as usize).min(n_agents)
    };
    let mut rng = stream(w.seed, Domain::AttackPlan, 0, 0);
    let mut order: Vec<usize> = (0..n_agents).collect();
    order.shuffle(&mut rng);
    let mut taken = vec![false; n_agents];
    let baseline = baseline_days(w.days);
    let mut plans = Vec::with_capacity(n);
    let mut injections = 0;
    for i in 0..n {
        let found = (0..scenarios.len()).find_map(|j| {
            let sc = scenarios[(i + j) % scenarios.len()];
            order
                .iter()
                .find(|&&a| !taken[a] && sc.fits(w.agents[a].archetype))
                .map(|&a| (sc, a))
        });
        let Some((scenario, agent)) = found else {
            break;
        };
        taken[agent] = true;
        let campaign = scenario == Scenario::PromptInjectionTool && {
            injections += 1;
            injections % 2 == 1
        };
        let idx = plans.len() as u16;
        plans.push(AttackPlan {
            idx,
            id: format!("atk-{:04}", idx + 1),
            agent: agent as u32,
            scenario,
            day: rng.gen_range(baseline..w.days.max(baseline + 1)),
            campaign,
        });
    }
    plans
}

const WORDS: [&str; 16] = [
    "secure", "docs", "share", "invoice", "portal", "cloud", "sync", "files", "verify", "account",
    "billing", "update", "drive", "mail", "data", "transfer",
];

/// An external domain that looks like any other.
fn external_domain(rng: &mut SimRng) -> String {
    format!(
        "{}-{}{}.example",
        pick(rng, &WORDS),
        pick(rng, &WORDS),
        rng.gen_range(1..99)
    )
}

/// The destination shared by every campaign injection of a run.
pub(crate) fn campaign_destination(seed: u64) -> String {
    let mut rng = stream(seed, Domain::AttackPlan, 1, 0);
    let local = *pick(
        &mut rng,
        &["drop", "archive", "exports", "reports", "backup"],
    );
    format!("mailto:{local}@{}", external_domain(&mut rng))
}
