//! `cinch simulate`: write a labelled synthetic fleet.

use std::path::PathBuf;

use anyhow::Context;

use crate::sim::{self, Scenario, SimConfig, SimKind};

/// Arguments of `cinch simulate`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulateArgs {
    /// What to simulate: `fleet` writes service accounts, workloads and AI agents as native
    /// events (`events.jsonl`) with entitlements; `llm` writes LLM agents (banking, mail,
    /// workspace, travel and research assistants) as OpenTelemetry GenAI spans in OTLP JSON
    /// (`spans.jsonl`), with prompt injections planted in tool results. Both write
    /// `labels.csv`, `attacks.csv` and `manifest.json`.
    #[arg(long, value_enum, default_value_t = SimKind::Fleet)]
    pub kind: SimKind,
    /// Number of agents in the fleet.
    #[arg(long, default_value_t = 100)]
    pub agents: u32,
    /// Number of days to simulate.
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    /// Seed; the same seed and arguments give byte-identical output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Start of the period (RFC 3339).
    #[arg(long, default_value = sim::DEFAULT_START)]
    pub start: String,
    /// Share of agents that suffer one attack each, after the baseline period.
    #[arg(long, default_value_t = 0.2)]
    pub attack_share: f64,
    /// Attack scenarios of a `fleet`, assigned round-robin: a comma-separated list of
    /// scenario names, `default` (the seven scenarios of the quality table) or `all` (those and
    /// the opt-in `baseline_poisoning`), e.g. `--scenarios baseline_poisoning` or
    /// `--scenarios default,baseline_poisoning`.
    #[arg(long, default_value = "default", value_parser = parse_scenarios)]
    pub scenarios: Scenarios,
    /// Compress the events file (`events.jsonl.gz`, or `spans.jsonl.gz` for `--kind llm`).
    #[arg(long)]
    pub gzip: bool,
}

/// The attack scenarios of `--scenarios`, in round-robin order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenarios(pub Vec<Scenario>);

fn parse_scenarios(list: &str) -> Result<Scenarios, String> {
    Scenario::parse_list(list).map(Scenarios)
}

impl From<SimulateArgs> for SimConfig {
    fn from(a: SimulateArgs) -> Self {
        SimConfig {
            kind: a.kind,
            agents: a.agents,
            days: a.days,
            seed: a.seed,
            start: a.start,
            attack_share: a.attack_share,
            scenarios: a.scenarios.0,
            gzip: a.gzip,
            out: a.out,
        }
    }
}

/// Runs the simulation and prints a one-line summary to stderr.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let out = args.out.clone();
    let cfg = SimConfig::from(args);
    let summary =
        sim::simulate(&cfg).with_context(|| format!("simulating into {}", out.display()))?;
    eprintln!("{summary}");
    Ok(())
}
