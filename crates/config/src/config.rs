//! The node's configuration file (TOML). Every field has a default (see [`DEFAULT_CONFIG`],
//! which documents them); unknown fields are errors, so a typo never silently does nothing.
//! Precedence: command-line flags over the file over the defaults. Relative paths are taken
//! relative to the configuration file's directory.

use crate::SetupError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The default configuration, with every field explained. `NodeConfig::default()` equals it.
pub const DEFAULT_CONFIG: &str = r#"# Starling node configuration. Every field is optional; these are the defaults.

# Roles this node runs: "validator" (votes in the committees its key belongs to in the
# genesis) and/or "relay" (follows and verifies finalized blocks, serves the API).
roles = ["relay"]

# Where chain data is kept (one store per shard). Created by `starling init`.
data_dir = "starling-data"

# The node's signing key (`starling keys generate`); validators sign consensus messages with it.
key_file = "node.key"

# The network's genesis file.
genesis = "genesis.toml"

[p2p]
# Open peer-to-peer network (libp2p: transaction gossip, the certified block feed, sync).
# Validators and relays both listen here.
listen = "127.0.0.1:7000"
# Peers to contact first, as host:port (a relay names some validators' p2p.listen).
bootstrap = []
max_peers = 50

[validator]
# Authenticated validator-to-validator transport. Must match the validator's address in the
# genesis (other validators dial it there).
listen = "127.0.0.1:7100"
# Shortest time between a block and the next, in milliseconds; an idle shard makes an empty
# block every five intervals.
block_interval_ms = 200

[api]
# HTTP API and web app.
listen = "127.0.0.1:8080"

[metrics]
# Prometheus metrics at /metrics.
listen = "127.0.0.1:9090"

[relay]
# Shards a relay follows; empty means all.
shards = []

[mempool]
# Most pending transactions per shard, and per account.
max_txs = 100000
max_per_account = 64

[chat]
# Mailbox relays this node names for its accounts' chat devices, as "<node key>@host:port"
# (the relay's node key and p2p.listen). Mail waits there while this node is offline; with
# none, only this node takes its accounts' mail.
relays = []
# How often each chat device puts fresh keys in each of its chats (post-compromise
# security), in seconds. Membership changes also bring new keys.
key_update_secs = 86400

[log]
# tracing filter, e.g. "info" or "starling=debug,info". RUST_LOG overrides it.
filter = "info"
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Validator,
    Relay,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pConfig {
    pub listen: String,
    pub bootstrap: Vec<String>,
    pub max_peers: u32,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7000".into(),
            bootstrap: Vec::new(),
            max_peers: 50,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    pub listen: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidatorConfig {
    pub listen: String,
    pub block_interval_ms: u64,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7100".into(),
            block_interval_ms: 200,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    pub shards: Vec<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    pub max_txs: usize,
    pub max_per_account: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_txs: 100_000,
            max_per_account: 64,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    pub relays: Vec<String>,
    pub key_update_secs: u64,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            relays: Vec::new(),
            key_update_secs: 86_400,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    pub roles: Vec<Role>,
    pub data_dir: PathBuf,
    pub key_file: PathBuf,
    pub genesis: PathBuf,
    pub p2p: P2pConfig,
    pub validator: ValidatorConfig,
    pub api: ListenConfig,
    pub metrics: ListenConfig,
    pub relay: RelayConfig,
    pub mempool: MempoolConfig,
    pub chat: ChatConfig,
    pub log: LogConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            roles: vec![Role::Relay],
            data_dir: "starling-data".into(),
            key_file: "node.key".into(),
            genesis: "genesis.toml".into(),
            p2p: P2pConfig::default(),
            validator: ValidatorConfig::default(),
            api: ListenConfig {
                listen: "127.0.0.1:8080".into(),
            },
            metrics: ListenConfig {
                listen: "127.0.0.1:9090".into(),
            },
            relay: RelayConfig::default(),
            mempool: MempoolConfig::default(),
            chat: ChatConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
        }
    }
}

impl NodeConfig {
    /// Loads and validates a configuration file; relative paths become relative to its directory.
    pub fn load(path: &Path) -> Result<NodeConfig, SetupError> {
        let text = std::fs::read_to_string(path).map_err(|e| SetupError::io(path, e))?;
        let mut cfg = Self::parse(&text, &path.display().to_string())?;
        if let Some(base) = path.parent().filter(|b| !b.as_os_str().is_empty()) {
            for p in [&mut cfg.data_dir, &mut cfg.key_file, &mut cfg.genesis] {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        Ok(cfg)
    }

    pub fn parse(text: &str, label: &str) -> Result<NodeConfig, SetupError> {
        let cfg: NodeConfig = toml::from_str(text).map_err(|e| SetupError::Toml {
            path: label.into(),
            message: e.to_string(),
        })?;
        cfg.validate(label)?;
        Ok(cfg)
    }

    pub fn validate(&self, label: &str) -> Result<(), SetupError> {
        let bad = |field: &str, msg: String| SetupError::invalid(label, field, msg);
        if self.roles.is_empty() {
            return Err(bad(
                "roles",
                "at least one of \"validator\", \"relay\"".into(),
            ));
        }
        for (i, r) in self.roles.iter().enumerate() {
            if self.roles[..i].contains(r) {
                return Err(bad("roles", format!("{r:?} listed twice")));
            }
        }
        for (field, addr) in [
            ("p2p.listen", &self.p2p.listen),
            ("validator.listen", &self.validator.listen),
            ("api.listen", &self.api.listen),
            ("metrics.listen", &self.metrics.listen),
        ] {
            addr.parse::<SocketAddr>()
                .map_err(|_| bad(field, format!("`{addr}` is not host:port")))?;
        }
        for (i, b) in self.p2p.bootstrap.iter().enumerate() {
            b.parse::<SocketAddr>().map_err(|_| {
                bad(
                    &format!("p2p.bootstrap[{i}]"),
                    format!("`{b}` is not host:port"),
                )
            })?;
        }
        if self.chat.relays.len() > starling_types::tx::MAX_CHAT_RELAYS {
            return Err(bad("chat.relays", "at most 4 relays".into()));
        }
        if !(1..=365 * 86_400).contains(&self.chat.key_update_secs) {
            return Err(bad("chat.key_update_secs", "must be 1 to 31536000".into()));
        }
        for (i, r) in self.chat.relays.iter().enumerate() {
            starling_types::Endpoint::parse(r).map_err(|e| bad(&format!("chat.relays[{i}]"), e))?;
        }
        if !(10..=60_000).contains(&self.validator.block_interval_ms) {
            return Err(bad(
                "validator.block_interval_ms",
                "must be between 10 and 60000".into(),
            ));
        }
        if self.mempool.max_txs == 0 || self.mempool.max_per_account == 0 {
            return Err(bad("mempool", "limits must be positive".into()));
        }
        if self.mempool.max_per_account > self.mempool.max_txs {
            return Err(bad(
                "mempool.max_per_account",
                "must not exceed max_txs".into(),
            ));
        }
        Ok(())
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}
