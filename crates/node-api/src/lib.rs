//! What a node's shards offer, whatever runs them: read a shard's state, prove a record
//! ([`proof`]), fetch blocks and their certificates, watch heights, submit transactions.
//!
//! A [`Node`] is whole when it is built: a validator's engines ([`ShardHandle::validating`],
//! built by `starling-validator`) or a follower's stores ([`Node::follower`], a relay). The open
//! network, the API, accounts and chat all take a `Node`; none of them fills it in later.

use commonware_codec::DecodeExt as _;
use commonware_cryptography::ed25519;
use starling_config::genesis::Genesis;
use starling_config::SetupError;
use starling_consensus::engine;
use starling_consensus::ShardApp;
use starling_crypto::SecretKey;
use starling_mempool::{Mempool, MempoolConfig, MempoolError};
use starling_store::ChainStore;
use starling_types::{ChainId, DecodeError, Hash, ShardId, ShardMap, Tx, TxEnvelope};
use std::collections::BTreeMap;
use std::sync::Arc;

pub mod proof;

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

impl ShardHandle {
    /// A shard this node validates: `forward` passes admitted transactions to the shard's
    /// other validators, `marshal` holds its finalized blocks and their certificates.
    pub fn validating(
        app: ShardApp,
        forward: tokio::sync::mpsc::Sender<Vec<TxEnvelope>>,
        marshal: engine::Marshal,
    ) -> ShardHandle {
        ShardHandle {
            app,
            forward: Some(forward),
            marshal: Some(marshal),
        }
    }
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
    /// marshal instead): what light-client proofs carry (see [`proof`]).
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
        Node::new(genesis, shards)
    }

    /// A node of `shards` (validated or followed).
    pub fn new(genesis: Genesis, shards: BTreeMap<ShardId, ShardHandle>) -> Node {
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
                    let shard = tx.body.home(&self.inner.shard_map);
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
