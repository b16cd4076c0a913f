//! `starling`: the command-line entry point: create a network (keys, genesis, init), run a
//! node or a whole devnet, and measure it (bench).

mod bench;
mod client;
mod node;
mod setup;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: a node allocates and frees small buffers from
/// many threads at once (blocks, transactions, tree nodes), where glibc's allocator spent about
/// a fifth of a loaded devnet's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Node and account keys.
    Keys {
        #[command(subcommand)]
        cmd: setup::KeysCmd,
    },
    /// Create or check a genesis file.
    Genesis {
        #[command(subcommand)]
        cmd: setup::GenesisCmd,
    },
    /// The node configuration file.
    Config {
        #[command(subcommand)]
        cmd: setup::ConfigCmd,
    },
    /// Prepare a node's data directory from a genesis.
    Init(setup::InitArgs),
    /// Run a node's roles (validator) from its configuration and data directory.
    Node(node::NodeArgs),
    /// Run a whole network in this process: validators, every shard, and the HTTP API.
    Devnet(node::DevnetArgs),
    /// Accounts held by a node: create, import, log in and out, export.
    Account {
        #[command(subcommand)]
        cmd: client::AccountCmd,
        #[command(flatten)]
        opts: client::ClientOpts,
    },
    #[command(flatten)]
    Social(client::SocialCmd),
    /// End-to-end encrypted chat: set up, list, start, send, read, members, safety numbers.
    Chat {
        #[command(subcommand)]
        cmd: client::ChatCmd,
        #[command(flatten)]
        opts: client::ClientOpts,
    },
    /// Governance: the foundations, memberships (a registrar admits and revokes) and
    /// sponsorships of other accounts' fees.
    Gov {
        #[command(subcommand)]
        cmd: client::gov::GovCmd,
        #[command(flatten)]
        opts: client::ClientOpts,
    },
    /// Fetch a record with its light-client proof and check it against the genesis
    /// committee: the record, its state proof, the block header and its certificate.
    Proof(client::proof::ProofArgs),
    /// Measure a part of the system and print the figures.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,starling=info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not in a log file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Bench { which } => bench::run(which),
        Command::Proof(args) => client::proof::run(args),
        Command::Account { cmd, opts } => client::account(cmd, opts),
        Command::Social(cmd) => client::social(cmd),
        Command::Chat { cmd, opts } => client::chat(cmd, opts),
        Command::Gov { cmd, opts } => client::gov::run(cmd, opts),
        Command::Keys { cmd } => setup::keys(cmd),
        Command::Genesis { cmd } => setup::genesis(cmd),
        Command::Config { cmd } => setup::config(cmd),
        Command::Init(args) => setup::init(args),
        Command::Node(args) => node::node(args),
        Command::Devnet(args) => node::devnet(args),
    }
}
