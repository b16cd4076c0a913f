//! Running a validator: one authenticated validator-to-validator network (commonware-p2p
//! `lookup`, peers and addresses from the genesis), and per shard whose committee the node's
//! key belongs to, one consensus stack (simplex + marshal on the shard's [`ShardApp`]) plus a
//! transaction-forwarding channel.
//!
//! Channels are numbered per shard: `shard * CHANNELS_PER_SHARD + k`, `k` in [`channel`].
//! Consensus messages are signed under a namespace that names the chain and the shard, so a
//! vote for one shard can never count for another.

use crate::genesis::Genesis;
use crate::SetupError;
use commonware_codec::DecodeExt as _;
use commonware_cryptography::{ed25519, ChaCha20Poly1305, Signer as _};
use commonware_p2p::{authenticated::lookup, Address, AddressableManager as _, Recipients};
use commonware_runtime::{Clock, Metrics, Network, Quota, Resolver, Spawner, Storage, Supervisor};
use commonware_stream::{cups, sake};
use commonware_utils::{ordered::Map, ordered::Set, NZUsize, NZU32};
use futures::StreamExt as _;
use starling_consensus::engine::{self, Channels, EngineConfig};
use starling_consensus::ShardApp;
use starling_crypto::SecretKey;
use starling_ledger::records::{StateKey, ValidatorSet};
use starling_mempool::{Mempool, MempoolConfig, MempoolError};
use starling_store::ChainStore;
use starling_types::{ChainId, DecodeError, Hash, ShardId, ShardMap, Tx, TxEnvelope};
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
pub use starling_protocol::batch::{decode_batch, encode_batch, MAX_FORWARD_TXS};
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

/// Why a submitted transaction was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("malformed transaction: {0}")]
    Malformed(#[from] DecodeError),
    #[error("shard {0} is not served by this node")]
    ShardNotServed(ShardId),
    #[error(transparent)]
    Rejected(#[from] MempoolError),
    #[error("the node is too busy to pass the transaction on; try again")]
    Busy,
}

/// One shard as a node holds it.
#[derive(Clone)]
pub struct ShardHandle {
    pub app: ShardApp,
    /// Forwards admitted transactions to the shard's other validators (validators only).
    forward: Option<tokio::sync::mpsc::Sender<Vec<TxEnvelope>>>,
    /// Finalized blocks and their certificates (validators only).
    marshal: Option<engine::Marshal>,
}

impl std::fmt::Debug for ShardHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardHandle")
            .field("shard", &self.app.shard())
            .field("validating", &self.marshal.is_some())
            .finish()
    }
}

/// What a running node serves: its shards and where transactions for them go.
#[derive(Clone, Debug)]
pub struct Node {
    inner: Arc<NodeInner>,
}

#[derive(Debug)]
struct NodeInner {
    genesis: Genesis,
    shard_map: ShardMap,
    shards: BTreeMap<ShardId, ShardHandle>,
    /// Transactions for shards this node does not validate, to publish on the open network
    /// (bounded: when no network takes them, submitting them is refused as busy).
    gossip: tokio::sync::mpsc::Sender<Gossip>,
    /// The other end, for the open network to take once ([`Node::take_gossip`]); while it is
    /// here no network runs, and such transactions are refused as not served.
    gossip_out: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Gossip>>>,
    /// The certificates of the newest blocks a follower verified, by shard (validators ask
    /// marshal instead): what light-client proofs carry (see [`crate::proofs`]).
    certificates: std::sync::Mutex<BTreeMap<ShardId, KeptCertificates>>,
}

/// A shard's newest certificates a follower verified, oldest first: `(height, block id,
/// certificate)`. A valid certificate may come with a block that then fails to apply, so the
/// block's id is part of the key.
type KeptCertificates = std::collections::VecDeque<(u64, Hash, Vec<u8>)>;

/// Transactions of one shard to publish on the open network.
pub type Gossip = (ShardId, Vec<TxEnvelope>);

/// Batches waiting to be published before submitting more is refused as busy.
const GOSSIP_QUEUE: usize = 1_024;

/// Certificates a follower keeps per shard, newest heights first out.
pub const CERTIFICATES_KEPT: usize = 32;

impl Node {
    /// A node that follows `stores` (applying certified blocks from the network) without
    /// validating: a relay.
    pub fn follower(genesis: Genesis, stores: Vec<ChainStore>) -> Node {
        let shard_map = genesis.params.shard_map.clone();
        let shards = stores
            .into_iter()
            .map(|store| {
                let shard = store.ledger().shard;
                // Never filled: a follower passes transactions on instead of pooling them.
                let mempool = Mempool::new(MempoolConfig::default(), shard, shard_map.clone());
                let app = ShardApp::new(store, mempool, 1);
                (
                    shard,
                    ShardHandle {
                        app,
                        forward: None,
                        marshal: None,
                    },
                )
            })
            .collect();
        Node::with_shards(genesis, shards)
    }

    fn with_shards(genesis: Genesis, shards: BTreeMap<ShardId, ShardHandle>) -> Node {
        let (gossip, gossip_out) = tokio::sync::mpsc::channel(GOSSIP_QUEUE);
        Node {
            inner: Arc::new(NodeInner {
                shard_map: genesis.params.shard_map.clone(),
                genesis,
                shards,
                gossip,
                gossip_out: std::sync::Mutex::new(Some(gossip_out)),
                certificates: std::sync::Mutex::default(),
            }),
        }
    }

    /// Whether no open network runs for this node (none took its gossip queue).
    fn open_network_stopped(&self) -> bool {
        let out = self.inner.gossip_out.lock();
        out.map_or_else(|p| p.get_ref().is_some(), |o| o.is_some())
    }

    /// The transactions to publish on the open network, for the one network that runs for
    /// this node (an error once taken).
    pub fn take_gossip(&self) -> Result<tokio::sync::mpsc::Receiver<Gossip>, SetupError> {
        let mut out = self.inner.gossip_out.lock();
        let out = out.as_mut().unwrap_or_else(|p| p.get_mut());
        out.take().ok_or_else(|| {
            SetupError::invalid(
                "p2p",
                "gossip",
                "the open network already runs for this node",
            )
        })
    }

    pub fn genesis(&self) -> &Genesis {
        &self.inner.genesis
    }

    pub fn chain_id(&self) -> &ChainId {
        &self.inner.genesis.params.chain_id
    }

    pub fn shard_map(&self) -> &ShardMap {
        &self.inner.shard_map
    }

    pub fn shards(&self) -> &BTreeMap<ShardId, ShardHandle> {
        &self.inner.shards
    }

    /// Marshal's mailbox of every shard this node validates.
    pub fn marshals(&self) -> BTreeMap<ShardId, engine::Marshal> {
        self.inner
            .shards
            .iter()
            .filter_map(|(s, h)| h.marshal.clone().map(|m| (*s, m)))
            .collect()
    }

    pub fn shard(&self, id: ShardId) -> Option<&ShardApp> {
        self.inner.shards.get(&id).map(|h| &h.app)
    }

    /// The committee of `shard`'s consensus epoch `epoch` as this node's state fixes it, or
    /// the genesis committee for a shard that records none (what `status` and proofs show).
    pub fn epoch_committee(&self, shard: ShardId, epoch: u64) -> Vec<starling_types::PublicKey> {
        self.shard(shard)
            .and_then(|app| app.epoch_committee(epoch))
            .or_else(|| self.genesis().committees.get(&shard).cloned())
            .unwrap_or_default()
    }

    /// The certificate of the block that closes epoch `epoch - 1` of `shard`, for the hand-off
    /// of epoch `epoch`'s committee: from marshal on a validator, else as a follower kept it
    /// (only if it is for the block this node holds at that height).
    pub async fn handoff_certificate(&self, shard: ShardId, epoch: u64) -> Option<Vec<u8>> {
        let handle = self.inner.shards.get(&shard)?;
        let height = handle.app.epochs().last_height(epoch.checked_sub(1)?);
        let id = handle.app.block(height).ok()??.header.id();
        if let Some(c) = self.certificate(shard, height, &id).await {
            return Some(c);
        }
        let (kept, certificate) = handle.app.handoff_certificate(epoch).ok()??;
        (kept == id).then_some(certificate)
    }

    /// Keeps the verified certificate of block `id` at `height` of `shard` (a follower calls
    /// it for every certified block it accepts); the [`CERTIFICATES_KEPT`] newest stay.
    pub fn keep_certificate(&self, shard: ShardId, height: u64, id: Hash, certificate: Vec<u8>) {
        if !self.inner.shards.contains_key(&shard) || certificate.is_empty() {
            return;
        }
        let mut all = self
            .inner
            .certificates
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let kept = all.entry(shard).or_default();
        if kept.iter().any(|(h, i, _)| *h == height && *i == id) {
            return;
        }
        kept.push_back((height, id, certificate));
        if kept.len() > CERTIFICATES_KEPT {
            kept.pop_front();
        }
    }

    /// The finalization certificate of block `id` at `height` of `shard`, if this node has
    /// it: from marshal on a validator, else from what it kept as a follower. A block
    /// finalized through a descendant's certificate has none of its own.
    pub async fn certificate(&self, shard: ShardId, height: u64, id: &Hash) -> Option<Vec<u8>> {
        let handle = self.inner.shards.get(&shard)?;
        if let Some(marshal) = &handle.marshal {
            if let Some(f) = marshal
                .get_finalization(commonware_consensus::types::Height::new(height))
                .await
                .filter(|f| f.proposal.payload == starling_consensus::digest_of(id))
            {
                return Some(commonware_codec::Encode::encode(&f).to_vec());
            }
        }
        let all = self
            .inner
            .certificates
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        all.get(&shard)?
            .iter()
            .find(|(h, i, _)| *h == height && i == id)
            .map(|(_, _, c)| c.clone())
    }

    /// Admits signed transactions to their shards' mempools (signatures checked in one batch
    /// per shard) and forwards the admitted ones to the other validators of each shard. One
    /// result per envelope, in order: the transaction hash and its shard, or why not.
    pub fn submit(&self, envelopes: Vec<TxEnvelope>) -> Vec<Result<(Hash, ShardId), SubmitError>> {
        let mut results: Vec<Option<Result<(Hash, ShardId), SubmitError>>> =
            (0..envelopes.len()).map(|_| None).collect();
        let mut by_shard: BTreeMap<ShardId, Vec<(usize, Tx)>> = BTreeMap::new();
        for (i, env) in envelopes.into_iter().enumerate() {
            match Tx::parse(self.chain_id(), env) {
                Ok(tx) => {
                    let shard = self.inner.shard_map.shard_of(&tx.body.account);
                    by_shard.entry(shard).or_default().push((i, tx));
                }
                Err(e) => results[i] = Some(Err(e.into())),
            }
        }
        for (shard, txs) in by_shard {
            let validating = self
                .inner
                .shards
                .get(&shard)
                .and_then(|h| h.forward.as_ref().map(|f| (h, f)));
            if let Some((handle, forward)) = validating {
                let (idx, txs): (Vec<usize>, Vec<Tx>) = txs.into_iter().unzip();
                let envelopes: Vec<(Hash, TxEnvelope)> =
                    txs.iter().map(|t| (t.hash, t.envelope.clone())).collect();
                let mut admitted = Vec::new();
                for ((i, (hash, env)), r) in idx
                    .into_iter()
                    .zip(envelopes)
                    .zip(handle.app.submit_batch(txs))
                {
                    results[i] = Some(match r {
                        Ok(()) => {
                            admitted.push(env);
                            Ok((hash, shard))
                        }
                        Err(e) => Err(e.into()),
                    });
                }
                if !admitted.is_empty() && forward.try_send(admitted).is_err() {
                    tracing::debug!(%shard, "forward queue full; transactions stay local");
                }
                continue;
            }
            if self.open_network_stopped() {
                for (i, _) in txs {
                    results[i] = Some(Err(SubmitError::ShardNotServed(shard)));
                }
                continue;
            }
            let gossip = &self.inner.gossip;
            // Not validated here: admit to this node's own pool of the shard, under the
            // validators' rules (signatures, account, funds, expiry, depth), then publish
            // what it admitted. Its pool drains as finalized blocks apply, so it refuses what
            // the shard cannot take instead of passing it on.
            let (idx, txs): (Vec<usize>, Vec<Tx>) = txs.into_iter().unzip();
            let verdicts: Vec<Result<(), MempoolError>> = match self.inner.shards.get(&shard) {
                Some(handle) => handle.app.submit_batch(txs.clone()),
                None => {
                    let bad = starling_consensus::forged(&txs);
                    (0..txs.len())
                        .map(|j| {
                            if bad.contains(&j) {
                                Err(MempoolError::BadSignature)
                            } else {
                                Ok(())
                            }
                        })
                        .collect()
                }
            };
            let mut publish = Vec::new();
            let mut published = Vec::new();
            for ((i, tx), verdict) in idx.into_iter().zip(txs).zip(verdicts) {
                match verdict {
                    Err(e) => results[i] = Some(Err(e.into())),
                    Ok(()) => {
                        published.push((i, tx.hash));
                        publish.push(tx.envelope);
                    }
                }
            }
            let sent = publish.is_empty() || gossip.try_send((shard, publish)).is_ok();
            for (i, hash) in published {
                results[i] = Some(if sent {
                    Ok((hash, shard))
                } else {
                    Err(SubmitError::Busy)
                });
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(SubmitError::ShardNotServed(ShardId(0)))))
            .collect()
    }
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

/// The consensus key of a Starling Ed25519 key.
pub fn consensus_key(key: &SecretKey) -> Result<ed25519::PrivateKey, SetupError> {
    if key.public_key().key_type != starling_types::KeyType::Ed25519 {
        return Err(SetupError::invalid(
            "key",
            "type",
            "validators sign consensus messages with an Ed25519 key",
        ));
    }
    ed25519::PrivateKey::decode(bytes::Bytes::copy_from_slice(&key.to_seed()[..]))
        .map_err(|e| SetupError::invalid("key", "bytes", e.to_string()))
}

/// The consensus public key of a validator listed in the genesis.
pub fn consensus_public(key: &starling_types::PublicKey) -> Result<ed25519::PublicKey, SetupError> {
    ed25519::PublicKey::decode(bytes::Bytes::copy_from_slice(&key.bytes))
        .map_err(|e| SetupError::invalid("genesis", "validators.key", e.to_string()))
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
    E: Spawner
        + Clock
        + Metrics
        + Storage
        + Supervisor
        + Network
        + Resolver
        + rand_core_010::CryptoRng,
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
        shards.insert(
            shard,
            ShardHandle {
                app,
                forward: Some(forward),
                marshal: Some(marshal),
            },
        );
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
    Ok(Node::with_shards(genesis, shards))
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
