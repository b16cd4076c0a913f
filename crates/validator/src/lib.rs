//! Running a validator: one authenticated validator-to-validator network (commonware-p2p
//! `lookup`, peers and addresses from the genesis), and per shard whose committee the node's
//! key belongs to, one consensus stack (simplex + marshal on the shard's [`ShardApp`]) plus a
//! transaction-forwarding channel.
//!
//! Channels are numbered per shard: `shard * CHANNELS_PER_SHARD + k`, `k` in [`channel`].
//! Consensus messages are signed under a namespace that names the chain and the shard, so a
//! vote for one shard can never count for another.

use commonware_cryptography::{ed25519, ChaCha20Poly1305, Signer as _};
use commonware_p2p::{authenticated::lookup, Address, AddressableManager as _, Recipients};
use commonware_runtime::{Clock, Metrics, Network, Quota, Resolver, Spawner, Storage, Supervisor};
use commonware_stream::{cups, sake};
use commonware_utils::{ordered::Map, ordered::Set, NZUsize, NZU32};
use futures::StreamExt as _;
use starling_config::genesis::Genesis;
use starling_config::SetupError;
use starling_consensus::engine::{self, Channels, EngineConfig};
use starling_consensus::ShardApp;
use starling_crypto::SecretKey;
use starling_ledger::records::{StateKey, ValidatorSet};
use starling_mempool::{Mempool, MempoolConfig};
use starling_node_api::{consensus_key, consensus_public, Node, ShardHandle};
use starling_protocol::batch::{decode_batch, encode_batch, MAX_FORWARD_TXS};
use starling_store::ChainStore;
use starling_types::{ChainId, ShardId, Tx, TxEnvelope};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Channel numbers of one shard, offsets from `shard * CHANNELS_PER_SHARD`.
pub mod channel {
    pub const VOTES: u64 = 0;
    pub const CERTIFICATES: u64 = 1;
    pub const RESOLVER: u64 = 2;
    pub const BACKFILL: u64 = 3;
    pub const BROADCAST: u64 = 4;
    pub const TXS: u64 = 5;
}
pub const CHANNELS_PER_SHARD: u64 = 8;

/// Largest message on the validator network (a block of `MAX_BLOCK_TXS` largest transactions
/// fits, with room for framing).
pub const MAX_MESSAGE_BYTES: u32 = 32 * 1024 * 1024;
/// Most transactions in one block.
pub const MAX_BLOCK_TXS: usize = 3_000;
/// Forwarded batches waiting to be sent before new ones are dropped (the local mempool still
/// has them; only the other validators' copies are lost).
const FORWARD_QUEUE: usize = 1_024;

/// Most validators the validator network connects (each channel's inbound buffer holds a burst
/// from every one of them, so this sizes memory). A larger registry is not tracked beyond the
/// set in place (logged).
pub const MAX_PEERS: usize = 32;

/// Per-peer, per-channel message rate on the validator network. Each channel's inbound
/// mailbox holds one second's burst from every peer, so this also sizes memory. Votes and
/// certificates come a few per view, blocks one per view, forwarded transactions in batches.
const CHANNEL_QUOTA: Quota = Quota::per_second(NZU32!(512));

/// What a validator runs on: a Commonware runtime with storage, the network and randomness
/// (the deterministic runtime in tests, tokio in the binary).
pub trait Runtime:
    Spawner + Clock + Metrics + Storage + Supervisor + Network + Resolver + rand_core_010::CryptoRng
{
}

impl<E> Runtime for E where
    E: Spawner
        + Clock
        + Metrics
        + Storage
        + Supervisor
        + Network
        + Resolver
        + rand_core_010::CryptoRng
{
}

/// How one validator runs.
#[derive(Debug)]
pub struct ValidatorSpec {
    pub key: SecretKey,
    /// Where the validator network listens.
    pub listen: SocketAddr,
    /// Prefix of the consensus journals' partitions in the runtime's storage directory.
    pub partition_prefix: String,
    pub mempool: MempoolConfig,
    /// The shortest time between a block and the next.
    pub block_interval: Duration,
}

/// Starts a validator on `stores` (one per shard whose committee it is in) and returns the
/// node once every shard's engine runs. Everything runs until the runtime stops.
pub async fn start_validator<E>(
    context: E,
    genesis: Genesis,
    stores: Vec<ChainStore>,
    spec: ValidatorSpec,
) -> Result<Node, SetupError>
where
    E: Runtime,
{
    let signer = consensus_key(&spec.key)?;
    let mut peers = Vec::new();
    for v in &genesis.validators {
        let addr = v.address.ok_or_else(|| {
            SetupError::invalid(
                "genesis",
                "validators.address",
                format!("validator {} has no address; validators need one", v.key),
            )
        })?;
        peers.push((consensus_public(&v.key)?, Address::Symmetric(addr)));
    }
    let peers: Map<ed25519::PublicKey, Address> = Map::try_from(peers)
        .map_err(|e| SetupError::invalid("genesis", "validators", format!("{e:?}")))?;
    let chain = genesis.params.chain_id.as_str().to_string();
    let namespace = format!("starling/{chain}/validators");
    let handshake = cups::Cups::<_, ChaCha20Poly1305>::new(
        sake::Sake {
            signer: signer.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let mut p2p_config = lookup::Config::local(
        handshake,
        namespace.as_bytes(),
        spec.listen,
        NZUsize!(MAX_PEERS),
        MAX_MESSAGE_BYTES,
        NZUsize!(4_096),
    );
    // One peer set at a time: the genesis validators, then the registry as the global shard
    // has it (see `track_registry`).
    p2p_config.tracked_peer_sets = NZUsize!(1);
    let (mut network, mut oracle) = lookup::Network::new(context.child("p2p"), p2p_config);
    let _ = oracle.track(0, peers.clone());

    let shard_map = genesis.params.shard_map.clone();
    let mut shards = BTreeMap::new();
    for store in stores {
        let shard = store.ledger().shard;
        // The genesis committee runs epoch 0; later ones come from the shard's state. A
        // validator outside the committee of an epoch follows it as an observer.
        let committee = genesis.committees.get(&shard).cloned().unwrap_or_default();
        let participants = committee
            .iter()
            .map(consensus_public)
            .collect::<Result<Vec<_>, _>>()?;
        let participants = Set::from_iter_dedup(participants);
        let mempool = Mempool::new(spec.mempool.clone(), shard, shard_map.clone());
        let app =
            ShardApp::new(store, mempool, MAX_BLOCK_TXS).with_block_interval(spec.block_interval);
        let base = u64::from(shard.0) * CHANNELS_PER_SHARD;
        let mut reg = |k: u64| network.register(base + k, CHANNEL_QUOTA);
        let channels = Channels {
            votes: reg(channel::VOTES),
            certificates: reg(channel::CERTIFICATES),
            resolver: reg(channel::RESOLVER),
            backfill: reg(channel::BACKFILL),
            broadcast: reg(channel::BROADCAST),
        };
        let (tx_sender, tx_receiver) = reg(channel::TXS);
        let others: Vec<ed25519::PublicKey> = participants
            .iter()
            .filter(|p| **p != signer.public_key())
            .cloned()
            .collect();
        let forward = spawn_forwarding(
            context.child("forward").with_attribute("shard", shard.0),
            app.clone(),
            genesis.params.chain_id.clone(),
            others,
            tx_sender,
            tx_receiver,
        );
        let config = EngineConfig {
            namespace: engine::certificate_namespace(&chain, shard),
            participants,
            signer: signer.clone(),
            partition_prefix: format!("{}shard-{}", spec.partition_prefix, shard.0),
            leader_timeout: spec.block_interval * 4 + Duration::from_secs(1),
            certification_timeout: spec.block_interval * 4 + Duration::from_secs(2),
        };
        let marshal = engine::start(
            context.child("shard").with_attribute("shard", shard.0),
            config,
            app.clone(),
            oracle.clone(),
            oracle.clone(),
            channels,
        )
        .await?;
        tracing::info!(%shard, "validating shard");
        shards.insert(shard, ShardHandle::validating(app, forward, marshal));
    }
    if shards.is_empty() {
        return Err(SetupError::invalid(
            "data_dir",
            "shards",
            "the node holds no shard",
        ));
    }
    if let Some(global) = shards.get(&ShardId::GLOBAL) {
        track_registry(
            context.child("registry"),
            global.app.clone(),
            oracle.clone(),
            peers,
        );
    }
    // Cross-shard delivery among the shards this node holds.
    let router = Arc::new(starling_consensus::cross::Router::new(
        shards.iter().map(|(s, h)| (*s, h.app.clone())).collect(),
    ));
    for h in shards.values() {
        h.app.connect(router.clone());
    }
    network.start();
    Ok(Node::new(genesis, shards))
}

/// Keeps the validator network's peer set equal to the registry on the global shard (the
/// validators and the addresses they registered), starting from the genesis validators: a
/// validator that bonds is connected to before the committees it is drawn into start.
fn track_registry<E, O>(
    context: E,
    global: ShardApp,
    mut oracle: O,
    genesis: Map<ed25519::PublicKey, Address>,
) where
    E: Spawner + Supervisor,
    O: commonware_p2p::AddressableManager<PublicKey = ed25519::PublicKey>,
{
    context.spawn(move |_| async move {
        let mut heights = global.watch_height();
        let mut current = genesis;
        let mut id = 0u64;
        while heights.next().await.is_some() {
            let Ok(Ok(Some(set))) = global.read(|v| {
                starling_ledger::actions::get_record::<_, ValidatorSet>(v, StateKey::Validators)
            }) else {
                continue;
            };
            let mut entries: Vec<(ed25519::PublicKey, Address)> = set
                .validators
                .iter()
                .filter_map(|v| {
                    let key = consensus_public(&v.consensus_key).ok()?;
                    let addr: SocketAddr = v.address.parse().ok()?;
                    Some((key, Address::Symmetric(addr)))
                })
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|a, b| a.0 == b.0);
            if entries.len() > MAX_PEERS {
                tracing::warn!(
                    registered = entries.len(),
                    max = MAX_PEERS,
                    "the registry is larger than the validator network holds; keeping the set in place"
                );
                continue;
            }
            let Ok(next) = Map::try_from(entries) else {
                continue;
            };
            if next != current && !next.is_empty() {
                id += 1;
                tracing::info!(peers = next.len(), set = id, "validator set changed");
                let _ = oracle.track(id, next.clone());
                current = next;
            }
        }
    });
}

/// Spawns the two halves of transaction forwarding for one shard: batches admitted locally go
/// to the other validators; batches from them are checked and admitted here (not forwarded
/// again: every validator of the shard is connected to every other).
fn spawn_forwarding<E, S, R>(
    context: E,
    app: ShardApp,
    chain_id: ChainId,
    others: Vec<ed25519::PublicKey>,
    mut sender: S,
    mut receiver: R,
) -> tokio::sync::mpsc::Sender<Vec<TxEnvelope>>
where
    E: Spawner + Supervisor,
    S: commonware_p2p::Sender<PublicKey = ed25519::PublicKey>,
    R: commonware_p2p::Receiver<PublicKey = ed25519::PublicKey>,
{
    let (queue, mut pending) = tokio::sync::mpsc::channel::<Vec<TxEnvelope>>(FORWARD_QUEUE);
    context.child("out").spawn(move |_| async move {
        while let Some(first) = pending.recv().await {
            let mut batch = first;
            // Take whatever else is already waiting, up to one message's worth.
            while batch.len() < MAX_FORWARD_TXS {
                match pending.try_recv() {
                    Ok(more) => batch.extend(more),
                    _ => break,
                }
            }
            for chunk in batch.chunks(MAX_FORWARD_TXS) {
                let bytes = encode_batch(chunk);
                let _ = sender.send(Recipients::Some(others.clone()), bytes, false);
            }
        }
    });
    context.child("in").spawn(move |_| async move {
        while let Ok((peer, message)) = receiver.recv().await {
            let envelopes = match decode_batch(message.as_ref()) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "malformed forwarded transactions");
                    continue;
                }
            };
            let txs: Vec<Tx> = envelopes
                .into_iter()
                .filter_map(|env| Tx::parse(&chain_id, env).ok())
                .collect();
            let _ = app.submit_batch_from(txs, starling_mempool::Source::Peer);
        }
    });
    queue
}
