//! `cinch replay`: the full engine over a file or stdin.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::drive::replay::{ReplayOptions, replay};
use crate::vocab::FindingFormat;
use crate::vocab::FormatChoice;

/// Arguments of `cinch replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Input file (JSON lines, a JSON array, CloudTrail S3 objects; optionally gzip), or `-` for stdin.
    #[arg(long)]
    pub input: PathBuf,
    /// Where findings (and other decision records) go; default stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Writes one score line for every valid input event.
    #[arg(long)]
    pub scores_out: Option<PathBuf>,
    /// Where dead letters go; default: the same destination as `--out`.
    #[arg(long)]
    pub dead_letter: Option<PathBuf>,
    /// Where audit records go; default: the same destination as `--out`.
    #[arg(long)]
    pub audit: Option<PathBuf>,
    /// Entitlements (JSON or YAML) of the agents; overrides `grants.entitlements_path`.
    #[arg(long)]
    pub entitlements: Option<PathBuf>,
    /// Ed25519 private key (PKCS#8 PEM, from `cinch keygen`) that signs commands; overrides
    /// `commands.signing_key`. Without one, an ephemeral key is generated.
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Analyst feedback (JSON lines) marking findings false positive; overrides `feedback.path`.
    #[arg(long)]
    pub feedback: Option<PathBuf>,
    /// Model file from `cinch train`; switches the learned models on (overrides `ml.model_path`).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Settings file (TOML); default: the built-in defaults (see configs/cinch.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Input format; overrides the config.
    #[arg(long, value_enum)]
    pub format: Option<FormatChoice>,
    /// Shape of finding records: `native` (the cinch record, with the OCSF Detection Finding in
    /// its `ocsf` member) or `ocsf` (the OCSF Detection Finding alone); overrides the config.
    #[arg(long, value_enum)]
    pub finding_format: Option<FindingFormat>,
    /// Never show a progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Run one engine per partition, agents spread over them as a Kafka producer keyed by agent
    /// id spreads them (murmur2), with fleet knowledge merged at every fleet tick, as a
    /// deployment with that many input partitions runs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub partitions: u16,
    /// With more than one partition: each engine keeps fleet knowledge of its own partition's
    /// agents only (as instances that share no fleet knowledge would), to measure what merging
    /// is worth.
    #[arg(long)]
    pub split_fleet: bool,
    /// Share the partitions out over this many threads (the partitions are as many as the
    /// threads unless `--partitions` says more). The outputs are those of `--partitions` on one
    /// thread, byte for byte.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

/// Runs the subcommand.
pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let mut settings = super::load_settings(args.config.as_deref())?;
    if let Some(f) = args.format {
        settings.decode.format = f;
    }
    if let Some(f) = args.finding_format {
        settings.output.finding_format = f;
    }
    let model = super::load_model(&mut settings, args.model.as_deref(), "cinch replay")?;
    let response = super::Response::load(
        &settings,
        args.entitlements.as_deref(),
        args.signing_key.as_deref(),
        args.feedback.as_deref(),
        "cinch replay",
        false,
    )?;
    let ephemeral = response.ephemeral;
    let opts = ReplayOptions {
        input: args.input,
        out: args.out,
        scores_out: args.scores_out,
        dead_letter: args.dead_letter,
        audit: args.audit,
        entitlements: response.entitlements,
        signer: Some(response.signer),
        feedback: response.feedback,
        model: model.map(std::sync::Arc::new),
        progress: !args.quiet && std::io::stderr().is_terminal(),
        partitions: usize::from(args.partitions),
        split_fleet: args.split_fleet,
        threads: usize::from(args.threads),
    };
    let summary = replay(settings, &opts)?;
    eprintln!("{summary}");
    if ephemeral && summary.commands > 0 {
        eprintln!(
            "cinch replay: no signing key was given, so the commands were signed with an ephemeral key (key_id {}) that was not saved; create one with `cinch keygen` and pass --signing-key",
            summary.key_id.as_deref().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}
