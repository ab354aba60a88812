use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cinch", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a labelled synthetic fleet (events, labels, entitlements).
    Simulate(cinch::cli::simulate::SimulateArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Simulate(args) => cinch::cli::simulate::run(args),
    }
}
