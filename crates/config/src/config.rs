//! The node's configuration file (TOML). Every field has a default (see [`DEFAULT_CONFIG`],
//! which documents them); unknown fields are errors, so a typo never silently does nothing.
//! Precedence: command-line flags over the file over the defaults. Relative paths are taken
//! relative to the configuration file's directory.

use crate::SetupError;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
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
# Reverse proxies (addresses or CIDR blocks, e.g. "10.0.0.0/8") whose X-Forwarded-For
# header names the client. Rate limits count clients by address (IPv6 by /64); a request
# from anyone else is counted by its own address, whatever the header says.
trusted_proxies = []
# Host names the API and web app answer to, besides IP addresses and localhost (which
# always work): add the name users type when the node is served under one, e.g.
# "starling.example.org". Other names are refused, so a web page cannot point its own
# name at this node (DNS rebinding). "*" allows any name.
allowed_hosts = []

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
# How often the random key this node sends chat requests to other nodes under is replaced,
# in seconds: the nodes it deposits with can link its requests for at most that long.
anon_key_secs = 3600

[onboarding]
# Pay the base fees of accounts signed up on this node's web app, from an account the
# operator funds: the file of its secret key (`starling keys generate`). Unset: sign ups are
# not funded, and a new account exists once someone sends it SPEND or sponsors it. Each new
# account gets `amount` SPEND set aside for its fees only (at most the genesis's
# sponsorship_cap); `starling gov sponsor <account> --end`, signed by that key, ends it and
# what is left comes back. At most `per_hour` sign ups are funded an hour.
# key_file = "onboarding.key"
amount = 200000000
per_hour = 60

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

/// The HTTP API: where it listens, whom it believes about client addresses, and the host
/// names it answers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: String,
    pub trusted_proxies: Vec<String>,
    pub allowed_hosts: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            trusted_proxies: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

/// Most entries in `api.trusted_proxies` and in `api.allowed_hosts`.
pub const MAX_API_LIST: usize = 64;

impl ApiConfig {
    /// The trusted proxies, parsed (the configuration was validated).
    pub fn proxies(&self) -> Result<Vec<IpNet>, String> {
        self.trusted_proxies.iter().map(|p| p.parse()).collect()
    }
}

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `2001:db8::/32`); a bare
/// address is the network of that address alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, String> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("a prefix of {addr} is at most {max} bits"));
        }
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an address or a CIDR block"))?;
        let addr = canonical_ip(addr);
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .map_err(|_| format!("`{s}`: the prefix is not a number"))?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Self::new(addr, prefix)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is; others unchanged.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `name` can be a host name in `api.allowed_hosts`: `*`, or dot-separated labels of
/// letters, digits and hyphens.
fn valid_host_name(name: &str) -> bool {
    name == "*"
        || (!name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
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
    pub anon_key_secs: u64,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            relays: Vec::new(),
            key_update_secs: 86_400,
            anon_key_secs: 3_600,
        }
    }
}

/// Sponsoring sign ups' fees from the operator's key (see [`DEFAULT_CONFIG`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnboardingConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    pub amount: u64,
    pub per_hour: u32,
}

impl Default for OnboardingConfig {
    fn default() -> Self {
        Self {
            key_file: None,
            amount: 200_000_000,
            per_hour: 60,
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
    pub api: ApiConfig,
    pub metrics: ListenConfig,
    pub relay: RelayConfig,
    pub mempool: MempoolConfig,
    pub chat: ChatConfig,
    pub onboarding: OnboardingConfig,
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
            api: ApiConfig::default(),
            metrics: ListenConfig {
                listen: "127.0.0.1:9090".into(),
            },
            relay: RelayConfig::default(),
            mempool: MempoolConfig::default(),
            chat: ChatConfig::default(),
            onboarding: OnboardingConfig::default(),
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
            let onboarding = cfg.onboarding.key_file.as_mut();
            for p in [&mut cfg.data_dir, &mut cfg.key_file, &mut cfg.genesis]
                .into_iter()
                .chain(onboarding)
            {
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
        for (field, list) in [
            ("api.trusted_proxies", &self.api.trusted_proxies),
            ("api.allowed_hosts", &self.api.allowed_hosts),
        ] {
            if list.len() > MAX_API_LIST {
                return Err(bad(field, format!("at most {MAX_API_LIST} entries")));
            }
        }
        for (i, p) in self.api.trusted_proxies.iter().enumerate() {
            p.parse::<IpNet>()
                .map_err(|e| bad(&format!("api.trusted_proxies[{i}]"), e))?;
        }
        for (i, h) in self.api.allowed_hosts.iter().enumerate() {
            if !valid_host_name(h) {
                return Err(bad(
                    &format!("api.allowed_hosts[{i}]"),
                    format!("`{h}` is not a host name (no scheme, port or path)"),
                ));
            }
        }
        if self.chat.relays.len() > starling_types::tx::MAX_CHAT_RELAYS {
            return Err(bad("chat.relays", "at most 4 relays".into()));
        }
        if !(1..=365 * 86_400).contains(&self.chat.key_update_secs) {
            return Err(bad("chat.key_update_secs", "must be 1 to 31536000".into()));
        }
        if !(1..=7 * 86_400).contains(&self.chat.anon_key_secs) {
            return Err(bad("chat.anon_key_secs", "must be 1 to 604800".into()));
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
        if self.onboarding.amount == 0 || !(1..=10_000).contains(&self.onboarding.per_hour) {
            return Err(bad(
                "onboarding",
                "amount must be positive and per_hour 1 to 10000".into(),
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
