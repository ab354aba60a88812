//! `cinch train`: learn peer groups, event models and score calibration from history.

use std::path::PathBuf;

use anyhow::Context;

use crate::drive::history::{FileHistory, StderrProgress, write_model};
use crate::ml::train::{TrainOptions, train};

/// Arguments of `cinch train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// History to learn from: files in any input format (optionally gzip), or directories of
    /// them, read in the order given.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Where the model file goes (JSON), e.g. `models/prod.json`.
    #[arg(long)]
    pub out: PathBuf,
    /// Settings file (TOML) for the engine passes; default: the built-in defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Most peer groups tried (the number kept is chosen by silhouette).
    #[arg(long, default_value_t = 12)]
    pub max_groups: usize,
    /// Fewest agents a peer group may have; default: `detect.min_peer_group`.
    #[arg(long)]
    pub min_group: Option<usize>,
    /// Most Gaussian-mixture components tried per group (the number kept is chosen by BIC).
    #[arg(long, default_value_t = 6)]
    pub max_components: usize,
    /// Events each group's mixture is fitted on, at most (a deterministic sample).
    #[arg(long, default_value_t = 20_000)]
    pub sample: usize,
    /// Seed of the k-means and EM initialisation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the subcommand.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let settings = super::load_settings(args.config.as_deref())?;
    if args.max_groups < 2 || args.max_components == 0 || args.sample < 100 {
        anyhow::bail!(
            "--max-groups must be at least 2, --max-components at least 1 and --sample at least 100"
        );
    }
    let progress = StderrProgress::start(args.quiet);
    let mut history = FileHistory::new(&args.input, &settings)?;
    let opts = TrainOptions {
        min_group: args
            .min_group
            .unwrap_or(settings.detect.min_peer_group as usize)
            .max(1),
        settings,
        max_groups: args.max_groups,
        max_components: args.max_components,
        sample: args.sample,
        seed: args.seed,
    };
    let (file, _) = train(&mut history, &opts, &progress).context("training")?;
    write_model(&file, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    if !args.quiet {
        eprintln!(
            "cinch train: wrote {} ({} peer groups, {} events from {} agents, {:.1} s); use it with `--model {}` or `[ml] enabled = true, model_path = \"{}\"`",
            args.out.display(),
            file.peer_groups.centroids.len(),
            file.training.events,
            file.training.agents,
            file.training.seconds,
            args.out.display(),
            args.out.display()
        );
    }
    Ok(())
}
