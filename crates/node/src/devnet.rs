//! `starling devnet`: a whole network on this machine, in one process.
//!
//! The first run writes, under the data directory: `genesis.toml`, `keys/` (validator and
//! foundation key files), and one initialized data directory per validator
//! (`validator-<i>/`). Validators listen on loopback ports picked on that first run and kept
//! in the genesis, so a second run with the same directory resumes the same network.
//!
//! Devnet users: [`USERS`] accounts whose keys anyone can derive ([`user_key`]) hold funds
//! from genesis, so clients, tests and the load generator have someone to sign as.

use crate::config::{NodeConfig, Role};
use crate::genesis::{
    AllocationEntry, Amount, FoundationEntry, Genesis, GenesisFile, ValidatorEntry,
};
use crate::{init, keyfile, SetupError};
use starling_crypto::SecretKey;
use starling_types::{Hash, KeyType};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Funded devnet accounts with public keys.
pub const USERS: u32 = 2_000;
/// SPEND each devnet user holds at genesis.
pub const USER_BALANCE: u128 = 1_000_000_000_000_000_000;
/// The chain id of every devnet.
pub const CHAIN_ID: &str = "starling-devnet";

/// The key of devnet user `i`: derived from a public seed. Never use one outside a devnet.
pub fn user_key(i: u32) -> SecretKey {
    let seed = Hash::of(&[b"starling/devnet/user", &i.to_be_bytes()]);
    #[allow(clippy::expect_used)] // every 32-byte string is an Ed25519 seed
    SecretKey::from_seed(KeyType::Ed25519, &seed.0).expect("ed25519 seed")
}

/// How many of the last devnet users fund sign ups on the devnet's relay (see
/// [`faucet_keys`]); load generators and tests use the first ones.
pub const FAUCET_USERS: u32 = 64;
/// SPEND each sign up on a devnet receives.
pub const FAUCET_AMOUNT: u128 = 1_000_000_000_000_000;

/// The devnet users whose funds go to new accounts: the relay picks one on the new account's
/// shard, so the funds arrive in one block.
pub fn faucet_keys() -> Vec<SecretKey> {
    (USERS - FAUCET_USERS..USERS).map(user_key).collect()
}

/// What a devnet looks like.
#[derive(Clone, Debug)]
pub struct DevnetSpec {
    pub data_dir: PathBuf,
    pub validators: usize,
    pub account_shards: u16,
}

/// One node of a prepared devnet.
#[derive(Debug)]
pub struct DevnetNode {
    pub key: SecretKey,
    pub data_dir: PathBuf,
    /// The validator transport (validators only).
    pub listen: SocketAddr,
    /// The open network (libp2p).
    pub p2p: SocketAddr,
}

/// A devnet ready to start.
#[derive(Debug)]
pub struct Prepared {
    pub genesis: Genesis,
    pub validators: Vec<DevnetNode>,
    /// The relay that follows every shard and serves the API.
    pub relay: DevnetNode,
    /// Whether an existing devnet was found (and is resumed).
    pub resumed: bool,
}

/// A free loopback port for a node to listen on from the first run on (see
/// [`starling_config::net::free_loopback_port`]).
fn free_port() -> Result<SocketAddr, SetupError> {
    starling_config::net::free_loopback_port()
        .map_err(|e| SetupError::io(Path::new("127.0.0.1:0"), e))
}

fn validator_dir(root: &Path, i: usize) -> PathBuf {
    root.join(format!("validator-{i}"))
}

/// The devnet's three foundations, each with a key file in `keys`. Each foundation's account
/// is its treasury and registrar: funded, so that it can act as registrar (import its key to
/// act as it). A devnet user is each one's president and three sit on each board; their
/// key files are `keys/president-<i>.key` and `keys/board-<i>-<j>.key`, to import and act as
/// them. Governance runs in short periods (a few epochs), so a proposal can be watched from
/// start to end.
fn add_foundations(file: &mut GenesisFile, keys: &Path) -> Result<(), SetupError> {
    let g = &mut file.governance.proposals;
    g.voting_epochs = 2;
    g.challenge_epochs = 10;
    g.support_epochs = 2;
    g.board_vote_epochs = 2;
    g.round_epochs = 10;
    for (i, name) in ["Americas", "Europe-Africa", "Asia-Pacific"]
        .iter()
        .enumerate()
    {
        let key = keyfile::generate(
            &keys.join(format!("foundation-{i}.key")),
            KeyType::Ed25519,
            &mut rand_core::OsRng,
        )?;
        let mut entry = FoundationEntry::new(name, key.public_key().to_text());
        let seat = |j: u32, file: &str| -> Result<String, SetupError> {
            let k = user_key(1_000 + 10 * i as u32 + j);
            keyfile::write(&keys.join(file), &k)?;
            Ok(k.public_key().to_text())
        };
        entry.president = Some(seat(9, &format!("president-{i}.key"))?);
        entry.board = (0..3)
            .map(|j| seat(j, &format!("board-{i}-{j}.key")))
            .collect::<Result<_, _>>()?;
        file.foundations.push(entry);
        file.allocations.push(AllocationEntry {
            account: key.public_key().to_text(),
            asset: "spend".into(),
            amount: Amount::from(USER_BALANCE),
        });
    }
    Ok(())
}

/// Creates the devnet under `spec.data_dir`, or finds the one already there.
pub fn prepare(spec: &DevnetSpec) -> Result<Prepared, SetupError> {
    let root = &spec.data_dir;
    let genesis_path = root.join("genesis.toml");
    let keys = root.join("keys");
    let ports_path = root.join("p2p-addresses");
    let complete = genesis_path.exists()
        && ports_path.exists()
        && root.join("relay").join("GENESIS_ID").exists()
        && (0..spec.validators).all(|i| validator_dir(root, i).join("GENESIS_ID").exists());
    let resumed = complete;
    if !complete {
        if root.exists()
            && std::fs::read_dir(root).is_ok_and(|mut d| d.next().is_some())
            && !genesis_path.exists()
        {
            return Err(SetupError::Exists(format!(
                "{} is not empty and holds no devnet; choose another --data-dir",
                root.display()
            )));
        }
        // A first run that stopped part way leaves nothing worth keeping.
        if root.exists() {
            std::fs::remove_dir_all(root).map_err(|e| SetupError::io(root, e))?;
        }
        std::fs::create_dir_all(&keys).map_err(|e| SetupError::io(&keys, e))?;
        let mut file = GenesisFile::template(CHAIN_ID, spec.account_shards);
        for i in 0..spec.validators {
            let key = keyfile::generate(
                &keys.join(format!("validator-{i}.key")),
                KeyType::Ed25519,
                &mut rand_core::OsRng,
            )?;
            file.validators.push(ValidatorEntry {
                key: key.public_key().to_text(),
                address: Some(free_port()?.to_string()),
                shards: None,
            });
        }
        add_foundations(&mut file, &keys)?;
        for i in 0..USERS {
            file.allocations.push(AllocationEntry {
                account: user_key(i).public_key().to_text(),
                asset: "spend".into(),
                amount: Amount::from(USER_BALANCE),
            });
        }
        Genesis::from_file(&file, "devnet genesis")?;
        std::fs::write(&genesis_path, file.to_toml()?)
            .map_err(|e| SetupError::io(&genesis_path, e))?;
        for i in 0..spec.validators {
            let key = keyfile::read(&keys.join(format!("validator-{i}.key")))?;
            let config = NodeConfig {
                roles: vec![Role::Validator],
                data_dir: validator_dir(root, i),
                ..NodeConfig::default()
            };
            init::init(&config, &genesis_path, &key.public_key())?;
        }
        let relay_key = keyfile::generate(
            &keys.join("relay.key"),
            KeyType::Ed25519,
            &mut rand_core::OsRng,
        )?;
        let config = NodeConfig {
            roles: vec![Role::Relay],
            data_dir: root.join("relay"),
            ..NodeConfig::default()
        };
        init::init(&config, &genesis_path, &relay_key.public_key())?;
        // Open-network addresses: one per validator, then the relay's; written last.
        let mut lines = String::new();
        for _ in 0..=spec.validators {
            lines.push_str(&format!("{}\n", free_port()?));
        }
        std::fs::write(&ports_path, lines).map_err(|e| SetupError::io(&ports_path, e))?;
    }
    let p2p: Vec<SocketAddr> = std::fs::read_to_string(&ports_path)
        .map_err(|e| SetupError::io(&ports_path, e))?
        .lines()
        .map(|l| {
            l.trim().parse().map_err(|_| {
                SetupError::invalid(
                    &ports_path.display().to_string(),
                    "address",
                    format!("`{l}` is not host:port"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let genesis = Genesis::load(&genesis_path)?;
    let mut validators = Vec::new();
    for (i, v) in genesis.validators.iter().enumerate() {
        let key = keyfile::read(&keys.join(format!("validator-{i}.key")))?;
        if key.public_key() != v.key {
            return Err(SetupError::invalid(
                &genesis_path.display().to_string(),
                "validators.key",
                format!("validator {i} does not match keys/validator-{i}.key"),
            ));
        }
        let listen = v.address.ok_or_else(|| {
            SetupError::invalid(
                &genesis_path.display().to_string(),
                "validators.address",
                "missing",
            )
        })?;
        let p2p = *p2p.get(i).ok_or_else(|| {
            SetupError::invalid(
                &ports_path.display().to_string(),
                "addresses",
                "one per validator, then the relay's",
            )
        })?;
        validators.push(DevnetNode {
            key,
            data_dir: validator_dir(root, i),
            listen,
            p2p,
        });
    }
    let relay = DevnetNode {
        key: keyfile::read(&keys.join("relay.key"))?,
        data_dir: root.join("relay"),
        listen: "127.0.0.1:0"
            .parse()
            .map_err(|_| SetupError::invalid("devnet", "relay", "address"))?,
        p2p: *p2p.get(validators.len()).ok_or_else(|| {
            SetupError::invalid(
                &ports_path.display().to_string(),
                "addresses",
                "missing the relay's",
            )
        })?,
    };
    Ok(Prepared {
        genesis,
        validators,
        relay,
        resumed,
    })
}
