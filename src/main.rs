//! The `cinch` binary: parses arguments and calls the library.

use clap::{Parser, Subcommand};

/// mimalloc: the decoders and the engine allocate many small, short-lived strings, and the
/// agents' state many small tables, which it serves faster and with less overhead per block
/// than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cinch",
    version,
    about = "Runtime least privilege for AI agents and other non-human identities"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the full engine over a file (or `-` for stdin), in input order.
    Replay(cinch::cli::replay::ReplayArgs),
    /// Run the engine on Kafka: a consumer group in, one topic per output kind out.
    Run(cinch::cli::run::RunArgs),
    /// The whole Kafka pipeline on an embedded broker with simulated traffic, no set-up.
    Demo(cinch::cli::demo::DemoArgs),
    /// Write a labelled synthetic fleet (events or OpenTelemetry spans, labels, attacks).
    Simulate(cinch::cli::simulate::SimulateArgs),
    /// Learn peer groups, event models and score calibration from history.
    Train(cinch::cli::train::TrainArgs),
    /// Score a labelled dataset and print detection quality.
    Eval(cinch::cli::eval::EvalArgs),
    /// Write an Ed25519 key pair for signing commands.
    Keygen(cinch::cli::keygen::KeygenArgs),
    /// Check the signatures of command records; exit 1 if any fails.
    Verify(cinch::cli::verify::VerifyArgs),
    /// A policy decision point that enforces signed commands (Cedar policies over HTTP).
    Authorize(cinch::cli::authorize::AuthorizeArgs),
    /// Score real AI-agent trajectories and print detection quality per episode.
    Trajectories(cinch::cli::trajectories::TrajectoriesArgs),
    /// Size a deployment: instances, memory, partitions and state-topic size for a fleet.
    Plan(cinch::cli::plan::PlanArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay(args) => cinch::cli::replay::run(args),
        Command::Demo(args) => cinch::cli::demo::run(args),
        Command::Run(args) => cinch::cli::run::run(args),
        Command::Eval(args) => cinch::cli::eval::run(args),
        Command::Trajectories(args) => cinch::cli::trajectories::run(args),
        Command::Simulate(args) => {
            cinch::cli::simulate::run(args).map(|()| std::process::ExitCode::SUCCESS)
        }
        Command::Train(args) => {
            cinch::cli::train::run(args).map(|()| std::process::ExitCode::SUCCESS)
        }
        Command::Keygen(args) => {
            cinch::cli::keygen::run(args).map(|()| std::process::ExitCode::SUCCESS)
        }
        Command::Verify(args) => cinch::cli::verify::run(args),
        Command::Authorize(args) => cinch::cli::authorize::run(args),
        Command::Plan(args) => cinch::cli::plan::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cinch: error: {}", message(&e));
            std::process::ExitCode::from(2)
        }
    }
}

/// The error and its causes, each cause once: an error whose message already ends with its
/// cause's text (`cannot open input x: No such file or directory`) does not repeat it.
fn message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !msg.ends_with(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    msg
}
