//! `starling`: the command-line entry point (benchmarks today; node roles and devnet next).

mod bench;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "starling",
    version,
    about = "Starling: a decentralized social network on a sharded BFT ledger"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure a part of the system and print the figures.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Bench { which } => bench::run(which),
    }
}
