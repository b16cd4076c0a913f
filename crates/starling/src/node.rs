//! `starling node` (run the roles of one node) and `starling devnet` (a whole network in one
//! process).

use anyhow::Context as _;
use clap::Args;
use commonware_runtime::{Metrics as _, Runner as _, Supervisor as _};
use starling_accounts as accounts;
use starling_api::{self as api, MetricsFn};
use starling_node::config::{NodeConfig, Role};
use starling_node::devnet::{self, DevnetSpec};
use starling_node::{builder, init, keyfile};
use starling_node_api::Node;
use starling_types::Endpoint;
use starling_validator::ValidatorSpec;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node configuration file (defaults apply to anything it leaves out).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides `data_dir` from the configuration.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Overrides `api.listen` from the configuration.
    #[arg(long)]
    api: Option<String>,
    /// Worker threads of the runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Args, Debug, Clone)]
pub struct DevnetArgs {
    /// Where the devnet keeps its data; an existing devnet there is resumed.
    #[arg(long, default_value = "starling-devnet")]
    pub data_dir: PathBuf,
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub api: SocketAddr,
    /// Validators (each in every shard's committee). Only used when the devnet is created.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Account shards, besides the global shard. Only used when the devnet is created.
    #[arg(long, default_value_t = 2)]
    pub account_shards: u16,
    /// Shortest time between blocks, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub block_interval_ms: u64,
    /// Worker threads of the runtime.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// A second handle on the same secret (the validator and the open network each own one).
fn same_key(key: &starling_crypto::SecretKey) -> anyhow::Result<starling_crypto::SecretKey> {
    Ok(starling_crypto::SecretKey::from_seed(
        key.public_key().key_type,
        &key.to_seed(),
    )?)
}

fn mempool_config(cfg: &NodeConfig) -> starling_mempool::MempoolConfig {
    starling_mempool::MempoolConfig {
        max_txs: cfg.mempool.max_txs,
        max_per_account: cfg.mempool.max_per_account,
        ..starling_mempool::MempoolConfig::default()
    }
}

fn runtime(storage: PathBuf, threads: usize) -> commonware_runtime::tokio::Runner {
    commonware_runtime::tokio::Runner::new(
        commonware_runtime::tokio::Config::new()
            .with_storage_directory(storage)
            .with_worker_threads(threads.max(1)),
    )
}

fn metrics_of(context: &commonware_runtime::tokio::Context) -> MetricsFn {
    // Every context shares the runtime's registry; a child encodes all of it.
    let context = context.child("metrics");
    Arc::new(move || context.encode())
}

/// Serves the API for `node` on `listen`; once it is bound, prints what `intro` says of the
/// address, then the address itself.
async fn serve_api(
    listen: SocketAddr,
    node: Node,
    services: api::Services,
    metrics: MetricsFn,
    options: api::ApiOptions,
    intro: impl FnOnce(SocketAddr) -> String,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the API to {listen}"))?;
    let addr = listener.local_addr()?;
    print!("{}", intro(addr));
    println!("API listening on http://{addr}/api/v1/status");
    api::serve(listener, node, services, metrics, options).await;
    Ok(())
}

/// The operator's sponsorship of sign ups (`[onboarding]`), if its key is configured.
fn onboarding(
    cfg: &NodeConfig,
    genesis: &starling_node::genesis::Genesis,
) -> anyhow::Result<Option<accounts::Faucet>> {
    let o = &cfg.onboarding;
    let Some(path) = &o.key_file else {
        return Ok(None);
    };
    let cap = genesis.params.sponsorship_cap;
    if u128::from(o.amount) > cap {
        anyhow::bail!(
            "onboarding.amount {} is above the network's sponsorship_cap {cap}",
            o.amount
        );
    }
    let key = keyfile::read(path).context("reading onboarding.key_file")?;
    tracing::info!(sponsor = %key.public_key(), amount = o.amount, per_hour = o.per_hour, "sponsoring sign ups' fees");
    Ok(Some(accounts::Faucet {
        keys: vec![key],
        amount: o.amount.into(),
        grant: accounts::Grant::Sponsor,
        per_hour: o.per_hour,
    }))
}

pub fn node(args: NodeArgs) -> anyhow::Result<()> {
    let mut cfg = match &args.config {
        Some(p) => NodeConfig::load(p)?,
        None => NodeConfig::default(),
    };
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(a) = args.api {
        cfg.api.listen = a;
    }
    cfg.validate("command line")?;
    let key = keyfile::read(&cfg.key_file)?;
    let (genesis, stores) = init::open(&cfg.data_dir)?;
    let api_listen: SocketAddr = cfg.api.listen.parse()?;
    let api_options = api::ApiOptions::from_config(&cfg.api).map_err(anyhow::Error::msg)?;
    let p2p_listen: SocketAddr = cfg.p2p.listen.parse()?;
    let bootstrap = cfg
        .p2p
        .bootstrap
        .iter()
        .map(|b| b.parse::<SocketAddr>())
        .collect::<Result<Vec<_>, _>>()?;
    let validator = cfg.has(Role::Validator);
    let spec = ValidatorSpec {
        key: same_key(&key)?,
        listen: cfg.validator.listen.parse()?,
        partition_prefix: String::new(),
        mempool: mempool_config(&cfg),
        block_interval: Duration::from_millis(cfg.validator.block_interval_ms),
    };
    let open = builder::OpenNetwork {
        key: same_key(&key)?,
        listen: p2p_listen,
        bootstrap,
        data_dir: cfg.data_dir.clone(),
        faucet: onboarding(&cfg, &genesis)?,
    };
    let relays = cfg
        .chat
        .relays
        .iter()
        .map(|r| Endpoint::parse(r).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let chat = builder::RelayChat {
        relays,
        key_update: Duration::from_secs(cfg.chat.key_update_secs),
        anon_key: Duration::from_secs(cfg.chat.anon_key_secs),
    };
    runtime(cfg.data_dir.join("consensus"), args.threads).start(|context| async move {
        let (node, services) = if validator {
            builder::validator(&context, genesis, stores, spec, open).await?
        } else {
            builder::relay(genesis, stores, open, chat, context.child("net"))?
        };
        let shards: Vec<String> = node.shards().keys().map(|s| s.to_string()).collect();
        let doing = if validator { "validating" } else { "relaying" };
        println!("{doing} shards {}", shards.join(", "));
        if !validator {
            println!("chat reachable at {}@{p2p_listen}", key.public_key());
        }
        serve_api(
            api_listen,
            node,
            services,
            metrics_of(&context),
            api_options,
            |_| String::new(),
        )
        .await
    })
}

/// Runs a devnet until the process is stopped.
pub fn devnet(args: DevnetArgs) -> anyhow::Result<()> {
    let spec = DevnetSpec {
        data_dir: args.data_dir.clone(),
        validators: args.validators,
        account_shards: args.account_shards,
    };
    let prepared = devnet::prepare(&spec)?;
    println!(
        "{} devnet in {} ({} validators, {} account shards, chain {})",
        if prepared.resumed {
            "resuming"
        } else {
            "created"
        },
        args.data_dir.display(),
        prepared.validators.len(),
        prepared.genesis.params.shard_map.ranges().len(),
        prepared.genesis.params.chain_id,
    );
    let block_interval = Duration::from_millis(args.block_interval_ms);
    runtime(args.data_dir.join("consensus"), args.threads).start(|context| async move {
        let mut validator_p2p = Vec::new();
        for (i, v) in prepared.validators.into_iter().enumerate() {
            let (genesis, stores) = init::open(&v.data_dir)?;
            let spec = ValidatorSpec {
                key: same_key(&v.key)?,
                listen: v.listen,
                partition_prefix: format!("v{i}-"),
                mempool: starling_mempool::MempoolConfig::default(),
                block_interval,
            };
            let open = builder::OpenNetwork {
                key: same_key(&v.key)?,
                listen: v.p2p,
                bootstrap: Vec::new(),
                data_dir: v.data_dir.clone(),
                faucet: None,
            };
            let ctx = context.child("validator").with_attribute("index", i);
            let rng = context.child("net").with_attribute("index", i);
            builder::validator_only(ctx, rng, genesis, stores, spec, &open).await?;
            validator_p2p.push(v.p2p);
        }
        // The relay follows every shard over the open network and serves the API; its sign
        // ups are funded by devnet users kept for it, and it is its accounts' chat home.
        let (genesis, stores) = init::open(&prepared.relay.data_dir)?;
        let relay_key = prepared.relay.key.public_key();
        let open = builder::OpenNetwork {
            key: prepared.relay.key,
            listen: prepared.relay.p2p,
            bootstrap: validator_p2p,
            data_dir: prepared.relay.data_dir,
            faucet: Some(accounts::Faucet {
                keys: devnet::faucet_keys(),
                amount: devnet::FAUCET_AMOUNT,
                grant: accounts::Grant::Transfer,
                per_hour: u32::MAX,
            }),
        };
        let chat = builder::RelayChat {
            relays: Vec::new(),
            key_update: Duration::from_secs(86_400),
            anon_key: Duration::from_secs(3_600),
        };
        let rng = context.child("net").with_attribute("index", "relay");
        let (relay, services) = builder::relay(genesis, stores, open, chat, rng)?;
        println!("chat relay at {relay_key}@{}", prepared.relay.p2p);
        let data_dir = args.data_dir.clone();
        serve_api(
            args.api,
            relay,
            services,
            metrics_of(&context),
            api::ApiOptions::default(),
            move |addr| devnet_banner(addr, &data_dir),
        )
        .await
    })
}

/// What `starling devnet` says first, in plain lines: where the web app, the API and the data
/// are, and how to stop it.
fn devnet_banner(api: SocketAddr, data_dir: &std::path::Path) -> String {
    let data = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!(
        "\nThe devnet is running.\n  \
         web app  http://{api}/\n  \
         API      http://{api}/api/v1  (status: /api/v1/status, OpenAPI: /api/v1/openapi.json)\n  \
         data     {}  (kept: the same command resumes it; delete it to start afresh)\n  \
         stop     Ctrl-C\n\n",
        data.display()
    )
}
