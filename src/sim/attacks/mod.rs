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
}

impl Scenario {
    /// Every scenario, in round-robin order.
    pub const ALL: [Scenario; 7] = [
        Scenario::CredentialTheftEnum,
        Scenario::BulkExfiltration,
        Scenario::PromptInjectionTool,
        Scenario::PrivilegeEscalation,
        Scenario::LateralMovement,
        Scenario::LowAndSlow,
        Scenario::SessionReplayOffhours,
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
        }
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

/// Chooses victims (one attack each) and scenarios, round-robin over scenarios. A single day
/// leaves no room for a clean baseline, so it gets no attacks.
pub(crate) fn plan(w: &World, share: f64) -> Vec<AttackPlan> {
    let n_agents = w.agents.len();
    let n = if w.days < 2 {
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
        let found = (0..Scenario::ALL.len()).find_map(|j| {
            let sc = Scenario::ALL[(i + j) % Scenario::ALL.len()];
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
