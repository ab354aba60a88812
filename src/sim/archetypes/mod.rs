//! The behavioural archetypes of the fleet. Each file holds one archetype: its working set,
//! grants, schedule and the Markov chain its sessions follow.

use serde::Serialize;

use super::event::{Attr, SimEvent};
use super::fleet::{Agent, Params, World};
use super::grants::{Grant, Unused};
use super::rng::{Domain, SimRng, stream};
use super::sessions::Emitter;

pub(crate) mod analyst;
pub(crate) mod coding;
pub(crate) mod etl;
pub(crate) mod finance;
pub(crate) mod infra;
pub(crate) mod support;

/// A kind of agent with its own behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Archetype {
    /// Scheduled ETL jobs moving data from raw to curated buckets and the warehouse.
    DataPipeline,
    /// LLM agents answering customer-support tickets.
    SupportAgent,
    /// LLM coding agents working in a few repositories.
    CodingAgent,
    /// LLM analyst agents querying databases and writing reports.
    AnalystAgent,
    /// Workloads polling Kubernetes clusters around the clock.
    InfraBot,
    /// LLM agents reconciling payments with the ledger.
    FinanceAgent,
}

impl Archetype {
    /// Every archetype, in fleet order.
    pub const ALL: [Archetype; 6] = [
        Archetype::DataPipeline,
        Archetype::SupportAgent,
        Archetype::CodingAgent,
        Archetype::AnalystAgent,
        Archetype::InfraBot,
        Archetype::FinanceAgent,
    ];

    /// Stable snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            Archetype::DataPipeline => "data_pipeline",
            Archetype::SupportAgent => "support_agent",
            Archetype::CodingAgent => "coding_agent",
            Archetype::AnalystAgent => "analyst_agent",
            Archetype::InfraBot => "infra_bot",
            Archetype::FinanceAgent => "finance_agent",
        }
    }

    /// The `agent_kind` its events carry.
    pub fn agent_kind(self) -> &'static str {
        match self {
            Archetype::DataPipeline => "service_account",
            Archetype::InfraBot => "workload",
            _ => "ai_agent",
        }
    }

    /// Whether its activity follows people's working hours (LLM agents driven by requests).
    pub fn human_driven(self) -> bool {
        self.agent_kind() == "ai_agent"
    }

    /// Share of the fleet.
    pub(crate) fn share(self) -> f64 {
        match self {
            Archetype::DataPipeline => 0.18,
            Archetype::SupportAgent => 0.25,
            Archetype::CodingAgent => 0.17,
            Archetype::AnalystAgent => 0.15,
            Archetype::InfraBot => 0.12,
            Archetype::FinanceAgent => 0.13,
        }
    }
}

/// Archetype-specific working set and schedule of one agent.
#[derive(Clone, Debug)]
pub(crate) enum Profile {
    /// Data pipeline.
    Pipeline(etl::EtlProfile),
    /// Support agent.
    Support(support::SupportProfile),
    /// Coding agent.
    Coding(coding::CodingProfile),
    /// Analyst agent.
    Analyst(analyst::AnalystProfile),
    /// Infrastructure bot.
    Infra(infra::InfraProfile),
    /// Finance agent.
    Finance(finance::FinanceProfile),
}

/// What an archetype contributes to a new agent.
pub(crate) struct Built {
    /// Agent id.
    pub id: String,
    /// Working set and schedule.
    pub profile: Profile,
    /// The grants its work uses.
    pub grants: Vec<Grant>,
    /// Grants it may additionally hold without using them.
    pub unused: &'static [Unused],
}

/// Builds the `k`-th agent of an archetype.
pub(crate) fn build(arch: Archetype, rng: &mut SimRng, k: u32, p: &Params) -> Built {
    match arch {
        Archetype::DataPipeline => etl::build(rng, k, p),
        Archetype::SupportAgent => support::build(rng, k, p),
        Archetype::CodingAgent => coding::build(rng, k, p),
        Archetype::AnalystAgent => analyst::build(rng, k, p),
        Archetype::InfraBot => infra::build(rng, k, p),
        Archetype::FinanceAgent => finance::build(rng, k, p),
    }
}

/// Appends an agent's benign events for sessions starting on day `day`.
pub(crate) fn day(w: &World, a: &Agent, day: u32, out: &mut Vec<SimEvent>) {
    let mut rng = stream(w.seed, Domain::Day, a.idx as u64, day as u64);
    let mut em = Emitter::for_day(out, a.idx, day);
    let rng = &mut rng;
    match &a.profile {
        Profile::Pipeline(p) => etl::day(w, a, p, day, rng, &mut em),
        Profile::Support(p) => support::day(w, a, p, day, rng, &mut em),
        Profile::Coding(p) => coding::day(w, a, p, day, rng, &mut em),
        Profile::Analyst(p) => analyst::day(w, a, p, day, rng, &mut em),
        Profile::Infra(p) => infra::day(w, a, p, day, rng, &mut em),
        Profile::Finance(p) => finance::day(w, a, p, day, rng, &mut em),
    }
}

/// One ordinary session (or run, or polling burst) of the agent starting at `t`.
pub(crate) fn session(w: &World, a: &Agent, rng: &mut SimRng, t: i64, em: &mut Emitter) {
    match &a.profile {
        Profile::Pipeline(p) => etl::hourly_run(w, a, p, rng, t, em),
        Profile::Support(p) => support::session(w, a, p, rng, t, false, em),
        Profile::Coding(p) => coding::session(w, a, p, rng, t, em),
        Profile::Analyst(p) => analyst::session(w, a, p, rng, t, em),
        Profile::Infra(p) => infra::burst(w, a, p, rng, t, em),
        Profile::Finance(p) => finance::session(w, a, p, rng, t, em),
    }
}

/// The stated purpose of a new session (none for agents that state none).
pub(crate) fn intent(a: &Agent, rng: &mut SimRng) -> Option<&'static str> {
    let intents: &[(&'static str, f64)] = match a.archetype {
        Archetype::SupportAgent => &support::INTENTS,
        Archetype::CodingAgent => &coding::INTENTS,
        Archetype::AnalystAgent => &analyst::INTENTS,
        Archetype::FinanceAgent => &finance::INTENTS,
        _ => return None,
    };
    super::sessions::Session::intent(rng, intents)
}

/// The attribute style of a new session.
pub(crate) fn attr(a: &Agent, rng: &mut SimRng) -> Attr {
    match a.archetype {
        Archetype::DataPipeline => {
            if rand::Rng::gen_bool(rng, 0.8) {
                Attr::Job(etl::HOURLY)
            } else {
                Attr::Job(etl::NIGHTLY)
            }
        }
        Archetype::InfraBot => Attr::Component(infra::POLLER),
        _ => Attr::Tool,
    }
}

/// A batch of accesses an attack makes through one action.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The action.
    pub action: &'static str,
    /// The resources, in order.
    pub resources: Vec<String>,
    /// Median bytes per access.
    pub bytes_median: f64,
    /// Median gap between accesses at the agent's normal pace, in ms.
    pub gap_ms: f64,
}

/// Many distinct objects read through the agent's normal read action.
pub(crate) fn bulk_reads(w: &World, a: &Agent, rng: &mut SimRng, n: usize, t: i64) -> Plan {
    match &a.profile {
        Profile::Pipeline(p) => etl::bulk_reads(w, p, rng, n, t),
        Profile::Support(p) => support::bulk_reads(p, rng, n),
        Profile::Coding(_) => coding::bulk_reads(rng, n),
        Profile::Analyst(p) => analyst::bulk_reads(p, rng, n),
        Profile::Infra(p) => infra::bulk_reads(p, rng, n),
        Profile::Finance(p) => finance::bulk_reads(p, rng, n),
    }
}

/// Another team's resources, through the agent's usual action at its usual pace.
pub(crate) fn lateral(w: &World, a: &Agent, rng: &mut SimRng, n: usize, t: i64) -> Plan {
    match &a.profile {
        Profile::Pipeline(p) => etl::lateral(w, p, rng, n, t),
        Profile::Support(_) => support::lateral(rng, n),
        Profile::Coding(p) => coding::lateral(p, rng, n),
        Profile::Analyst(p) => analyst::lateral(p, rng, n),
        Profile::Infra(p) => infra::lateral(p, rng, n),
        Profile::Finance(p) => finance::lateral(p, rng, n),
    }
}

/// Additions to the working set over the period: `(first day, what)`.
pub(crate) fn growth(p: &Profile) -> Vec<(u32, String)> {
    match p {
        Profile::Pipeline(p) => p.growth(),
        Profile::Support(_) => Vec::new(),
        Profile::Coding(p) => p.growth(),
        Profile::Analyst(p) => p.growth(),
        Profile::Infra(p) => p.growth(),
        Profile::Finance(p) => p.growth(),
    }
}

/// Day from which a working-set item added during the period is used (`0` for the initial set).
pub(crate) fn growth_day(rng: &mut SimRng, p: &Params) -> u32 {
    if p.days < 3 {
        return 0;
    }
    let lo = (p.days as f64 * 0.15) as u32;
    let hi = (p.days as f64 * 0.9) as u32;
    rand::Rng::gen_range(rng, lo.max(1)..hi.max(lo.max(1) + 1))
}

/// Zero-padded number with at least `width` digits.
pub(crate) fn num(n: u32, width: usize) -> String {
    format!("{n:0width$}")
}
