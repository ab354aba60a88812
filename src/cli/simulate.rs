//! `cinch simulate`: write a labelled synthetic fleet.

use std::path::PathBuf;

use anyhow::Context;

use crate::sim::{self, SimConfig};

/// Arguments of `cinch simulate`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulateArgs {
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
    /// Write `events.jsonl.gz` instead of `events.jsonl`.
    #[arg(long)]
    pub gzip: bool,
}

impl From<SimulateArgs> for SimConfig {
    fn from(a: SimulateArgs) -> Self {
        SimConfig {
            agents: a.agents,
            days: a.days,
            seed: a.seed,
            start: a.start,
            attack_share: a.attack_share,
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
