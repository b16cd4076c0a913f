//! `starling init`: prepares a node's data directory from a genesis.
//!
//! Layout: `<data_dir>/genesis.toml` (a copy of the genesis), `<data_dir>/shards/<id>/` (one
//! chain store per shard the node keeps), and `<data_dir>/GENESIS_ID`, written last: a data
//! directory without it was never fully initialized, and `init` starts it over.

use crate::config::{NodeConfig, Role};
use crate::genesis::Genesis;
use crate::SetupError;
use starling_store::{ChainStore, DEFAULT_TREE_BITS};
use starling_types::{Hash, PublicKey, ShardId};
use std::path::{Path, PathBuf};

const GENESIS_ID_FILE: &str = "GENESIS_ID";

#[derive(Debug)]
pub struct InitReport {
    pub data_dir: PathBuf,
    pub genesis_id: Hash,
    pub shards: Vec<ShardId>,
}

/// The shards a node keeps: all if it validates, all (or the chosen) if it relays.
pub fn shards_for(
    config: &NodeConfig,
    genesis: &Genesis,
    _node_key: &PublicKey,
) -> Result<Vec<ShardId>, SetupError> {
    let mut shards = Vec::new();
    if config.has(Role::Validator) {
        // Committees are redrawn every epoch over every shard (rule E1), and a validator
        // outside the genesis joins through the registry: a validator keeps every shard.
        // (`shards` lists in the genesis only shape the epoch-0 committees.)
        shards.extend(genesis.shards());
    }
    if config.has(Role::Relay) {
        if config.relay.shards.is_empty() {
            shards.extend(genesis.shards());
        } else {
            for s in &config.relay.shards {
                if !genesis.committees.contains_key(&ShardId(*s)) {
                    return Err(SetupError::invalid(
                        "config",
                        "relay.shards",
                        format!("shard {s} is not in the genesis"),
                    ));
                }
                shards.push(ShardId(*s));
            }
        }
    }
    shards.sort();
    shards.dedup();
    Ok(shards)
}

/// Initializes `config.data_dir` for `genesis` (read from `genesis_path`).
pub fn init(
    config: &NodeConfig,
    genesis_path: &Path,
    node_key: &PublicKey,
) -> Result<InitReport, SetupError> {
    let genesis = Genesis::load(genesis_path)?;
    let dir = &config.data_dir;
    let id_file = dir.join(GENESIS_ID_FILE);
    if id_file.exists() {
        return Err(SetupError::Exists(format!(
            "{} (already initialized)",
            dir.display()
        )));
    }
    let shards = shards_for(config, &genesis, node_key)?;
    let shard_root = dir.join("shards");
    if shard_root.exists() {
        // An earlier init stopped part way: nothing beyond genesis was ever written there.
        std::fs::remove_dir_all(&shard_root).map_err(|e| SetupError::io(&shard_root, e))?;
    }
    std::fs::create_dir_all(&shard_root).map_err(|e| SetupError::io(&shard_root, e))?;
    std::fs::copy(genesis_path, dir.join("genesis.toml"))
        .map_err(|e| SetupError::io(genesis_path, e))?;
    for shard in &shards {
        ChainStore::create_with(
            &shard_root.join(shard.0.to_string()),
            genesis.params.clone(),
            *shard,
            &genesis.allocations,
            genesis.foundation_treasury_per_shard,
            DEFAULT_TREE_BITS,
            &genesis.ledger_validators(),
        )?;
        tracing::info!(shard = %shard, "initialized shard store");
    }
    let id = genesis.id();
    std::fs::write(&id_file, format!("{id}\n")).map_err(|e| SetupError::io(&id_file, e))?;
    Ok(InitReport {
        data_dir: dir.clone(),
        genesis_id: id,
        shards,
    })
}

/// Opens the genesis and shard stores of an initialized data directory.
pub fn open(data_dir: &Path) -> Result<(Genesis, Vec<ChainStore>), SetupError> {
    let id_file = data_dir.join(GENESIS_ID_FILE);
    let recorded = std::fs::read_to_string(&id_file).map_err(|e| SetupError::io(&id_file, e))?;
    let genesis = Genesis::load(&data_dir.join("genesis.toml"))?;
    if recorded.trim() != genesis.id().to_hex() {
        return Err(SetupError::invalid(
            &data_dir.display().to_string(),
            "genesis.toml",
            "does not match the genesis this data directory was initialized with",
        ));
    }
    let mut stores = Vec::new();
    let shard_root = data_dir.join("shards");
    for shard in genesis.shards() {
        let path = shard_root.join(shard.0.to_string());
        if path.exists() {
            stores.push(ChainStore::open(&path)?);
        }
    }
    Ok((genesis, stores))
}
