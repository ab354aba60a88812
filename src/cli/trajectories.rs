//! `cinch trajectories`: detection quality on real AI-agent trajectories, per episode.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::engine::Engine;
use crate::eval::trajectories::{EpisodeReport, Via, evaluate, load, otlp_request};

/// Arguments of `cinch trajectories`.
#[derive(Debug, Args)]
pub struct TrajectoriesArgs {
    /// Trajectory files (ASSEBench / R-Judge JSON arrays, tau-bench trajectories; optionally
    /// gzip). Each is scored by its own engine.
    #[arg(long = "input", required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Write the events the trajectories became (native JSON lines, all inputs) to this file,
    /// so that `cinch replay` can read them.
    #[arg(long)]
    pub events_out: Option<PathBuf>,
    /// Write the trajectories as OpenTelemetry GenAI spans (one OTLP JSON export request an
    /// episode, all inputs) to this file, so that `cinch replay` can read them.
    #[arg(long)]
    pub spans_out: Option<PathBuf>,
    /// Feed the engine native events (one a tool call) or OTLP JSON export requests (one an
    /// episode: an `invoke_agent` span with the user's request and an `execute_tool` span a
    /// call), read by the same decoders as `cinch replay`.
    #[arg(long, value_enum, default_value_t = Via::Native)]
    pub via: Via,
    /// Settings file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs the subcommand.
pub fn run(args: TrajectoriesArgs) -> anyhow::Result<std::process::ExitCode> {
    let settings = super::load_settings(args.config.as_deref())?;
    let model = crate::drive::files::model_for(&settings.ml)?.map(Arc::new);
    let create = |p: &std::path::Path| {
        std::fs::File::create(p)
            .map(std::io::BufWriter::new)
            .with_context(|| format!("creating {}", p.display()))
    };
    let mut events_out = args.events_out.as_deref().map(create).transpose()?;
    let mut spans_out = args.spans_out.as_deref().map(create).transpose()?;
    println!(
        "{:<28} {:>8} {:>7} {:>6} {:>8} {:>7} {:>16} {:>14}",
        "file",
        "episodes",
        "unsafe",
        "calls",
        "ROC-AUC",
        "PR-AUC",
        "unsafe w/ finding",
        "safe w/ finding"
    );
    for path in &args.input {
        let episodes = load(path)?;
        if let Some(w) = events_out.as_mut() {
            for ev in episodes.iter().flat_map(|e| &e.events) {
                writeln!(w, "{ev}").context("writing events")?;
            }
        }
        if let Some(w) = spans_out.as_mut() {
            for request in episodes.iter().filter_map(otlp_request) {
                writeln!(w, "{request}").context("writing spans")?;
            }
        }
        let mut engine = Engine::new(settings.clone());
        engine.set_explain_all(false);
        engine.set_model(model.clone());
        engine.set_signer(Arc::new(crate::drive::files::fresh_signer()));
        let r: EpisodeReport = evaluate(&episodes, &mut engine, args.via);
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        println!(
            "{:<28} {:>8} {:>7} {:>6} {:>8.3} {:>7.3} {:>10}/{:<5} {:>8}/{:<5}",
            name,
            r.episodes,
            r.unsafe_episodes,
            r.calls,
            r.roc_auc,
            r.pr_auc,
            r.unsafe_with_finding,
            r.unsafe_episodes,
            r.safe_with_finding,
            r.episodes - r.unsafe_episodes
        );
        if r.joined_late > 0 {
            println!(
                "  {} tool calls scored at the end without their agent run",
                r.joined_late
            );
        }
    }
    if let Some(mut w) = events_out {
        w.flush().context("writing events")?;
    }
    if let Some(mut w) = spans_out {
        w.flush().context("writing spans")?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}
