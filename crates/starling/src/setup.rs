//! `starling keys`, `starling genesis`, `starling config`, `starling init`: creating a network.

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use starling_node::config::{NodeConfig, DEFAULT_CONFIG};
use starling_node::genesis::{
    AllocationEntry, Amount, FoundationEntry, Genesis, GenesisFile, ValidatorEntry,
};
use starling_node::{init, keyfile};
use starling_types::KeyType;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KeyKind {
    Ed25519,
    Secp256k1,
}

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Generate a key file (mode 0600) and print its public key.
    Generate {
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = KeyKind::Ed25519)]
        r#type: KeyKind,
    },
    /// Print the public key and shard point of a key file.
    Show {
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum GenesisCmd {
    /// Write a new genesis file with the default parameters.
    New(GenesisNew),
    /// Validate a genesis file and print its id and committees.
    Check { path: PathBuf },
}

#[derive(Args, Debug)]
pub struct GenesisNew {
    #[arg(long)]
    chain_id: String,
    #[arg(long, default_value_t = 2)]
    account_shards: u16,
    /// Blocks per consensus epoch (committees change only between epochs).
    #[arg(long, default_value_t = 1_000)]
    epoch_blocks: u64,
    /// A validator: `ed25519:<hex>` or `ed25519:<hex>@host:port`. Repeat for each.
    #[arg(long = "validator", required = true)]
    validators: Vec<String>,
    /// A foundation: `Name=<key>`. At least three.
    #[arg(long = "foundation", required = true)]
    foundations: Vec<String>,
    /// An initial balance: `<key>=<amount>` or `<key>=<amount>:<spend|urc|core>`.
    #[arg(long = "alloc")]
    allocations: Vec<String>,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Print the default node configuration, with every field explained.
    Default,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The node configuration file (defaults apply to anything it leaves out).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides `data_dir` from the configuration.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Overrides `genesis` from the configuration.
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// Overrides `key_file` from the configuration.
    #[arg(long)]
    key: Option<PathBuf>,
}

pub fn keys(cmd: KeysCmd) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::Generate { out, r#type } => {
            let t = match r#type {
                KeyKind::Ed25519 => KeyType::Ed25519,
                KeyKind::Secp256k1 => KeyType::Secp256k1,
            };
            let key = keyfile::generate(&out, t, &mut rand_core::OsRng)?;
            println!("{}", key.public_key());
        }
        KeysCmd::Show { key } => {
            let key = keyfile::read(&key)?;
            let pk = key.public_key();
            println!("{pk}\nshard point {:#018x}", pk.shard_point().0);
        }
    }
    Ok(())
}

pub fn genesis(cmd: GenesisCmd) -> anyhow::Result<()> {
    match cmd {
        GenesisCmd::New(a) => {
            let mut g = GenesisFile::template(&a.chain_id, a.account_shards);
            g.epochs.blocks = a.epoch_blocks;
            for v in &a.validators {
                let (key, address) = match v.split_once('@') {
                    Some((k, addr)) => (k.to_owned(), Some(addr.to_owned())),
                    None => (v.clone(), None),
                };
                g.validators.push(ValidatorEntry {
                    key,
                    address,
                    shards: None,
                });
            }
            for f in &a.foundations {
                let Some((name, account)) = f.split_once('=') else {
                    bail!("--foundation `{f}`: expected Name=<key>");
                };
                g.foundations
                    .push(FoundationEntry::new(name, account.into()));
            }
            for al in &a.allocations {
                let Some((account, rest)) = al.split_once('=') else {
                    bail!("--alloc `{al}`: expected <key>=<amount>[:<asset>]");
                };
                let (amount, asset) = rest.split_once(':').unwrap_or((rest, "spend"));
                g.allocations.push(AllocationEntry {
                    account: account.into(),
                    asset: asset.into(),
                    amount: Amount::Text(amount.into()),
                });
            }
            // Validate before writing, so a bad flag never leaves a bad file behind.
            let genesis = Genesis::from_file(&g, "genesis")?;
            if a.out.exists() {
                bail!(
                    "{} already exists; refusing to overwrite it",
                    a.out.display()
                );
            }
            std::fs::write(&a.out, g.to_toml()?)
                .with_context(|| format!("writing {}", a.out.display()))?;
            println!("wrote {} (genesis id {})", a.out.display(), genesis.id());
        }
        GenesisCmd::Check { path } => {
            let g = Genesis::load(&path)?;
            println!("genesis id {}", g.id());
            println!("chain id {}", g.params.chain_id);
            for (shard, committee) in &g.committees {
                println!("shard {shard}: {} validators", committee.len());
            }
        }
    }
    Ok(())
}

pub fn config(cmd: ConfigCmd) -> anyhow::Result<()> {
    match cmd {
        ConfigCmd::Default => print!("{DEFAULT_CONFIG}"),
    }
    Ok(())
}

pub fn init(args: InitArgs) -> anyhow::Result<()> {
    let mut cfg = match &args.config {
        Some(p) => NodeConfig::load(p)?,
        None => NodeConfig::default(),
    };
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(g) = args.genesis {
        cfg.genesis = g;
    }
    if let Some(k) = args.key {
        cfg.key_file = k;
    }
    let key = keyfile::read(&cfg.key_file)?;
    let report = init::init(&cfg, &cfg.genesis, &key.public_key())?;
    let shards: Vec<String> = report.shards.iter().map(|s| s.to_string()).collect();
    println!(
        "initialized {} for genesis {} (shards {})",
        report.data_dir.display(),
        report.genesis_id,
        shards.join(", ")
    );
    Ok(())
}
