//! The open network (libp2p): everyone who is not a validator of a shard.
//!
//! - Gossipsub topic `starling/<chain>/blocks/<shard>`: the validator that proposed a
//!   finalized block publishes it with its finalization certificate; relays check the
//!   certificate against the committee of the block's epoch (from the shard's finalized
//!   state, rule E2) before applying the block (the ledger then re-executes it and checks
//!   every root) and pass on only what verified.
//! - Gossipsub topic `starling/<chain>/txs/<shard>`: relays publish signed transactions
//!   their API received (signatures checked first); the shard's validators admit them.
//! - Request/response `/starling/sync/1`: a relay that is behind (after downtime, or on a gap
//!   in what it heard) asks a peer for the finalized blocks from a height on, with their
//!   certificates, and checks them the same way.
//!
//! Transport: TCP with Noise (each peer proves its key) and Yamux; a node's libp2p identity
//! is its Ed25519 node key.
//!
//! The same swarm carries the chat protocol ([`chat`]); what answers chat requests is a
//! [`chat::ChatService`] the node passes in (a relay's mailboxes), so this crate holds none.

pub mod ahead;
pub mod chat;
pub mod iplimit;

use crate::ahead::{Ahead, Offer};
use commonware_consensus::types::Height;
use commonware_cryptography::ed25519;
use commonware_utils::ordered::Set;
use futures::channel::mpsc;
use futures::StreamExt as _;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, request_response, PeerId, StreamProtocol};
use starling_config::SetupError;
use starling_consensus::engine::{committee_of, verify_finalized, Marshal};
use starling_consensus::ShardBlock;
use starling_crypto::SecretKey;
use starling_node_api::Node;
use starling_protocol::batch::{decode_batch, encode_batch};
use starling_types::{ShardId, Tx};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use starling_protocol::blocks::{FinalizedBlock, SyncRequest, SyncResponse, MAX_MESSAGE_BYTES};
/// Most blocks in one sync response, and most bytes.
const MAX_SYNC_BLOCKS: u64 = 64;
const MAX_SYNC_BYTES: usize = 8 * 1024 * 1024;
/// How often a relay looks for admitted transactions no block has taken, how many blocks it
/// waits before sending one again, and the most it sends per shard each time.
const RESEND_EVERY: Duration = Duration::from_secs(1);
const RESEND_AFTER_BLOCKS: u64 = 8;
const MAX_RESEND: usize = 2_048;
/// Sync requests served at once, and per peer.
const MAX_SYNC_SERVING: usize = 8;
const MAX_SYNC_SERVING_PER_PEER: usize = 1;
/// Strikes against a peer (an invalid block, a forged transaction batch) before it is cut off,
/// and how long it stays cut off.
const MAX_STRIKES: u32 = 3;
const BAN: Duration = Duration::from_secs(600);
/// Connections: per peer, per remote IP, inbound pending, and in all.
const MAX_CONNECTIONS_PER_PEER: u32 = 2;
const MAX_CONNECTIONS_PER_IP: usize = 16;
const MAX_PENDING_INBOUND: u32 = 64;
const MAX_CONNECTIONS: u32 = 512;

/// What became of a finalized block from the network.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Received {
    /// Verified: applied, or held until the blocks before it arrive.
    Verified,
    /// At or below the head: nothing to do, and nothing to pass on.
    Stale,
    /// Its certificate does not verify, or it does not apply.
    Invalid,
}

/// The open network's protocols, behind connection limits (per peer, per IP, in all) and a
/// list of peers cut off for misbehaving.
#[derive(NetworkBehaviour)]
#[allow(missing_debug_implementations)]
pub struct Behaviour {
    pub limits: libp2p::connection_limits::Behaviour,
    pub per_ip: crate::iplimit::Behaviour,
    pub blocked: libp2p::allow_block_list::Behaviour<libp2p::allow_block_list::BlockedPeers>,
    pub gossipsub: gossipsub::Behaviour,
    pub sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    pub chat: crate::chat::Behaviour,
}

/// What this node does on the open network, from what it is: a node with a consensus engine
/// (marshal) for some shards validates them; one with none is a relay. Not a setting, so it
/// cannot disagree with the node.
enum Role {
    /// Publishes the finalized blocks of its shards (marshal has their certificates) and
    /// admits gossiped transactions for them.
    Validator {
        marshals: BTreeMap<ShardId, Marshal>,
    },
    /// Follows every shard it keeps, verifying certificates; publishes submitted transactions.
    Relay,
}

impl Role {
    fn of(node: &Node) -> Role {
        let marshals = node.marshals();
        if marshals.is_empty() {
            Role::Relay
        } else {
            Role::Validator { marshals }
        }
    }
}

pub use crate::chat::multiaddr;

/// Where a shard's finalized blocks travel.
pub fn blocks_topic(chain: &str, shard: ShardId) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("starling/{chain}/blocks/{}", shard.0))
}

fn txs_topic(chain: &str, shard: ShardId) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("starling/{chain}/txs/{}", shard.0))
}

fn topic_shard(chain: &str, kind: &str, topic: &gossipsub::TopicHash) -> Option<ShardId> {
    let prefix = format!("starling/{chain}/{kind}/");
    topic
        .as_str()
        .strip_prefix(&prefix)?
        .parse()
        .ok()
        .map(ShardId)
}

/// A shard's certificate namespace and genesis committee (later epochs' committees come from
/// the shard's state).
struct Committee {
    namespace: Vec<u8>,
    participants: Set<ed25519::PublicKey>,
}

/// A libp2p swarm speaking the open network's protocols (gossipsub with signed messages and
/// strict validation; `/starling/sync/1`) under `key`'s identity, not yet listening.
pub fn swarm(key: &SecretKey) -> Result<libp2p::Swarm<Behaviour>, SetupError> {
    let bad = |what: &str, e: String| SetupError::invalid("p2p", what, e);
    let gossip_config = gossipsub::ConfigBuilder::default()
        .max_transmit_size(MAX_MESSAGE_BYTES)
        .validate_messages()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(blake3::hash(&m.data).as_bytes().to_vec())
        })
        .heartbeat_interval(Duration::from_millis(500))
        .build()
        .map_err(|e| bad("gossipsub", e.to_string()))?;
    crate::chat::build_swarm(key, |key| {
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )?;
        let sync = request_response::cbor::Behaviour::with_codec(
            request_response::cbor::codec::Codec::default()
                .set_request_size_maximum(1024)
                .set_response_size_maximum(MAX_MESSAGE_BYTES as u64),
            [(
                StreamProtocol::new("/starling/sync/1"),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
        );
        let chat = crate::chat::behaviour();
        let limits = libp2p::connection_limits::ConnectionLimits::default()
            .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
            .with_max_pending_incoming(Some(MAX_PENDING_INBOUND))
            .with_max_established(Some(MAX_CONNECTIONS));
        Ok(Behaviour {
            limits: libp2p::connection_limits::Behaviour::new(limits),
            per_ip: crate::iplimit::Behaviour::new(MAX_CONNECTIONS_PER_IP),
            blocked: Default::default(),
            gossipsub,
            sync,
            chat,
        })
    })
}

/// Starts the open network for `node` in the current tokio runtime; `rng` seeds certificate
/// batch verification. Transactions the API accepts for shards this node does not validate
/// are published from then on.
pub fn start<R: rand_core_010::CryptoRng + Send + 'static>(
    node: Node,
    key: &SecretKey,
    listen: SocketAddr,
    bootstrap: Vec<SocketAddr>,
    mut rng: R,
    chat: Option<Arc<dyn crate::chat::ChatService>>,
) -> Result<crate::chat::ChatNet, SetupError> {
    let bad = |what: &str, e: String| SetupError::invalid("p2p", what, e);
    let chain = node.chain_id().as_str().to_string();
    let me = key.public_key();
    let role = Role::of(&node);
    let mut swarm = swarm(key)?;
    swarm
        .listen_on(multiaddr(listen))
        .map_err(|e| bad("listen", e.to_string()))?;
    for b in &bootstrap {
        if let Err(e) = swarm.dial(multiaddr(*b)) {
            tracing::warn!(peer = %b, error = %e, "cannot dial bootstrap peer");
        }
    }
    let mut committees = BTreeMap::new();
    for (shard, members) in &node.genesis().committees {
        let participants = members
            .iter()
            .map(starling_node_api::consensus_public)
            .collect::<Result<Vec<_>, _>>()?;
        committees.insert(
            *shard,
            Committee {
                namespace: starling_consensus::engine::certificate_namespace(&chain, *shard),
                participants: Set::from_iter_dedup(participants),
            },
        );
    }
    let validating: Vec<ShardId> = match &role {
        Role::Validator { marshals } => marshals.keys().copied().collect(),
        Role::Relay => Vec::new(),
    };
    for shard in node.shards().keys() {
        let topic = if validating.contains(shard) {
            txs_topic(&chain, *shard)
        } else {
            blocks_topic(&chain, *shard)
        };
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .map_err(|e| bad("subscribe", e.to_string()))?;
    }
    let mut outgoing = node.take_gossip()?;
    let (chat_tx, mut chat_requests) = mpsc::channel::<crate::chat::Outgoing>(1_024);
    let chat_net = crate::chat::ChatNet::new(me, chat.clone(), chat_tx);
    let mut chat_driver = crate::chat::Driver::new(chat);

    tokio::spawn(async move {
        let mut published: BTreeMap<ShardId, u64> = node
            .shards()
            .iter()
            .map(|(s, h)| (*s, h.app.head().height))
            .collect();
        // Per shard, blocks above the head (rule R1).
        let mut ahead: BTreeMap<ShardId, Ahead<PeerId>> = BTreeMap::new();
        let mut strikes = Strikes::default();
        // Sync requests being served off this loop, and their answers.
        let (served_tx, mut served) = mpsc::channel::<(
            PeerId,
            request_response::ResponseChannel<SyncResponse>,
            Vec<Vec<u8>>,
        )>(MAX_SYNC_SERVING);
        let mut serving: BTreeMap<PeerId, usize> = BTreeMap::new();
        let mut syncing: BTreeMap<ShardId, Instant> = BTreeMap::new();
        // Sync requests go round the connected peers, so one that cannot serve (itself behind,
        // or a relay) never stalls a shard.
        let mut attempts: usize = 0;
        let mut last_resend = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match chat_driver.on_swarm_event(event) {
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message })) => {
                        let verdict = if let Some(shard) = topic_shard(&chain, "blocks", &message.topic) {
                            match FinalizedBlock::from_bytes(&message.data) {
                                Ok(fb) if fb.block.header.shard == shard => {
                                    let outcome = receive(&node, &committees, &mut rng, &mut ahead, fb, (propagation_source, message.data.len()), &mut strikes);
                                    if outcome == Received::Verified {
                                        // Behind: ask the peer that sent it for the gap.
                                        let head = node.shard(shard).map_or(0, |a| a.head().height);
                                        if ahead.get(&shard).is_some_and(|a| !a.is_empty()) && syncing.get(&shard).is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                                            swarm.behaviour_mut().sync.send_request(&propagation_source, SyncRequest { shard: shard.0, from: head + 1, max: MAX_SYNC_BLOCKS });
                                            syncing.insert(shard, Instant::now());
                                        }
                                    }
                                    match outcome {
                                        Received::Verified => gossipsub::MessageAcceptance::Accept,
                                        Received::Stale => gossipsub::MessageAcceptance::Ignore,
                                        Received::Invalid => gossipsub::MessageAcceptance::Reject,
                                    }
                                }
                                _ => gossipsub::MessageAcceptance::Reject,
                            }
                        } else if let Some(shard) = topic_shard(&chain, "txs", &message.topic) {
                            match decode_batch(&message.data) {
                                Ok(envs) => match node.shard(shard) {
                                    Some(app) => {
                                        let count = envs.len();
                                        let txs: Vec<Tx> = envs.into_iter().filter_map(|e| Tx::parse(node.chain_id(), e).ok()).collect();
                                        let malformed = txs.len() < count;
                                        let forged = app.submit_batch_from(txs, starling_mempool::Source::Peer).iter().any(|r| matches!(r, Err(starling_mempool::MempoolError::BadSignature)));
                                        // A relay checks signatures before it publishes, so a
                                        // batch with a forged or malformed one is the sender's.
                                        if malformed || forged {
                                            strikes.add(propagation_source, 1);
                                            gossipsub::MessageAcceptance::Reject
                                        } else {
                                            gossipsub::MessageAcceptance::Accept
                                        }
                                    }
                                    None => gossipsub::MessageAcceptance::Ignore,
                                },
                                Err(_) => {
                                    strikes.add(propagation_source, 1);
                                    gossipsub::MessageAcceptance::Reject
                                }
                            }
                        } else {
                            gossipsub::MessageAcceptance::Reject
                        };
                        swarm.behaviour_mut().gossipsub.report_message_validation_result(&message_id, &propagation_source, verdict);
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message { message, peer, .. })) => match message {
                        request_response::Message::Request { request, channel, .. } => {
                            // Served on its own task, a few at a time and one per peer, so no
                            // peer can stall this loop; a request beyond that gets nothing.
                            let mine = serving.get(&peer).copied().unwrap_or(0);
                            let total: usize = serving.values().sum();
                            match &role {
                                Role::Validator { marshals } if mine < MAX_SYNC_SERVING_PER_PEER && total < MAX_SYNC_SERVING => {
                                    *serving.entry(peer).or_default() += 1;
                                    let (node, marshals, mut done) = (node.clone(), marshals.clone(), served_tx.clone());
                                    tokio::spawn(async move {
                                        let blocks = serve(&node, &marshals, &request).await;
                                        let _ = futures::SinkExt::send(&mut done, (peer, channel, blocks)).await;
                                    });
                                }
                                _ => {
                                    let _ = swarm.behaviour_mut().sync.send_response(channel, SyncResponse { blocks: Vec::new() });
                                }
                            }
                        }
                        request_response::Message::Response { response, .. } => {
                            let mut shard = None;
                            for bytes in response.blocks.iter().take(MAX_SYNC_BLOCKS as usize) {
                                match FinalizedBlock::from_bytes(bytes) {
                                    Ok(fb) => {
                                        shard = Some(fb.block.header.shard);
                                        if receive(&node, &committees, &mut rng, &mut ahead, fb, (peer, bytes.len()), &mut strikes) == Received::Invalid {
                                            tracing::warn!(%peer, "sync response with a block that does not verify");
                                            break;
                                        }
                                    }
                                    Err(e) => {
                                        tracing::warn!(%peer, error = %e, "malformed sync response");
                                        strikes.add(peer, 1);
                                        break;
                                    }
                                }
                            }
                            if let Some(s) = shard {
                                syncing.remove(&s);
                            }
                        }
                    },
                    SwarmEvent::Behaviour(BehaviourEvent::Chat(e)) => chat_driver.on_event(e),
                    SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                        tracing::debug!(%peer_id, "peer disconnected");
                    }
                    _ => {}
                },
                Some((peer, channel, blocks)) = served.next() => {
                    if let Some(n) = serving.get_mut(&peer) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            serving.remove(&peer);
                        }
                    }
                    let _ = swarm.behaviour_mut().sync.send_response(channel, SyncResponse { blocks });
                }
                Some(out) = chat_requests.next() => chat_driver.send(&mut swarm.behaviour_mut().chat, out),
                Some((channel, bytes)) = chat_driver.answers.next() => {
                    let _ = swarm.behaviour_mut().chat.send_response(channel, bytes);
                }
                Some((shard, txs)) = outgoing.recv() => {
                    let topic = txs_topic(&chain, shard);
                    if let Err(e) = swarm.behaviour_mut().gossipsub.publish(topic, encode_batch(&txs)) {
                        tracing::warn!(%shard, error = %e, "could not publish transactions");
                    }
                }
                _ = tick.tick() => {
                    for peer in strikes.take_banned() {
                        tracing::warn!(%peer, "cutting off a peer that sent invalid data");
                        swarm.behaviour_mut().blocked.block_peer(peer);
                        let _ = swarm.disconnect_peer_id(peer);
                    }
                    for peer in strikes.take_expired() {
                        swarm.behaviour_mut().blocked.unblock_peer(peer);
                    }
                    match &role {
                        Role::Validator { marshals } => {
                            for (shard, marshal) in marshals {
                                let Some(app) = node.shard(*shard) else { continue };
                                let head = app.head().height;
                                let from = published.get(shard).copied().unwrap_or(head);
                                for h in from + 1..=head {
                                    // Each block is published by its proposer only (relays that
                                    // miss one ask for it); the others just move on.
                                    let proposed = app.block(h).ok().flatten().is_some_and(|b| b.header.proposer == me);
                                    if proposed {
                                        let Some(fb) = finalized_block(&node, *shard, marshal, h).await else { break };
                                        let _ = swarm.behaviour_mut().gossipsub.publish(blocks_topic(&chain, *shard), fb.to_bytes());
                                    }
                                    published.insert(*shard, h);
                                }
                            }
                        }
                        Role::Relay => {
                            // What this relay admitted and no block has taken for a while goes
                            // to the validators again (one may have refused or missed it).
                            if last_resend.elapsed() > RESEND_EVERY {
                                last_resend = Instant::now();
                                for shard in node.shards().keys() {
                                    let Some(app) = node.shard(*shard) else { continue };
                                    let again = app.due_again(RESEND_AFTER_BLOCKS, MAX_RESEND);
                                    if !again.is_empty() {
                                        let _ = swarm.behaviour_mut().gossipsub.publish(txs_topic(&chain, *shard), encode_batch(&again));
                                    }
                                }
                            }
                            // Not heard of anything for a while (after downtime, say): ask.
                            let peers: Vec<PeerId> = swarm.connected_peers().copied().collect();
                            if peers.is_empty() {
                                continue;
                            }
                            for (shard, handle) in node.shards() {
                                if syncing.get(shard).is_some_and(|t| t.elapsed() < Duration::from_secs(2)) {
                                    continue;
                                }
                                let head = handle.app.head().height;
                                attempts = attempts.wrapping_add(1);
                                let peer = peers[attempts % peers.len()];
                                swarm.behaviour_mut().sync.send_request(&peer, SyncRequest { shard: shard.0, from: head + 1, max: MAX_SYNC_BLOCKS });
                                syncing.insert(*shard, Instant::now());
                            }
                        }
                    }
                }
            }
        }
    });
    Ok(chat_net)
}

/// Block `height` of `shard` with its certificate, if this validator has both.
async fn finalized_block(
    node: &Node,
    shard: ShardId,
    marshal: &Marshal,
    height: u64,
) -> Option<FinalizedBlock> {
    let block = node.shard(shard)?.block(height).ok()??;
    // A block finalized through a descendant's certificate has none of its own: it travels
    // without, and is final for a relay once a certified descendant links to it by hash.
    let certificate = marshal
        .get_finalization(Height::new(height))
        .await
        .map(|f| commonware_codec::Encode::encode(&f).to_vec())
        .unwrap_or_default();
    Some(FinalizedBlock { block, certificate })
}

/// Answers a sync request from what this validator has finalized.
async fn serve(
    node: &Node,
    marshals: &BTreeMap<ShardId, Marshal>,
    req: &SyncRequest,
) -> Vec<Vec<u8>> {
    let shard = ShardId(req.shard);
    let (Some(marshal), Some(app)) = (marshals.get(&shard), node.shard(shard)) else {
        return Vec::new();
    };
    let head = app.head().height;
    let mut out = Vec::new();
    let mut bytes = 0;
    let mut h = req.from.max(1);
    while h <= head && (out.len() as u64) < req.max.min(MAX_SYNC_BLOCKS) && bytes < MAX_SYNC_BYTES {
        let Some(fb) = finalized_block(node, shard, marshal, h).await else {
            break;
        };
        let b = fb.to_bytes();
        bytes += b.len();
        out.push(b);
        h += 1;
    }
    out
}

/// Misbehaviour counted per peer: at [`MAX_STRIKES`] a peer is cut off for [`BAN`].
#[derive(Debug, Default)]
struct Strikes {
    counts: BTreeMap<PeerId, u32>,
    banned: BTreeMap<PeerId, Instant>,
    newly: Vec<PeerId>,
}

impl Strikes {
    fn add(&mut self, peer: PeerId, n: u32) {
        if self.banned.contains_key(&peer) {
            return;
        }
        let c = self.counts.entry(peer).or_default();
        *c = c.saturating_add(n);
        if *c >= MAX_STRIKES {
            self.counts.remove(&peer);
            self.banned.insert(peer, Instant::now());
            self.newly.push(peer);
        }
        // Bounded: beyond a few thousand peers, counts are forgotten (lowest ids first).
        while self.counts.len() > 4_096 {
            let Some(first) = self.counts.keys().next().copied() else {
                break;
            };
            self.counts.remove(&first);
        }
    }

    fn take_banned(&mut self) -> Vec<PeerId> {
        std::mem::take(&mut self.newly)
    }

    fn take_expired(&mut self) -> Vec<PeerId> {
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, since)| since.elapsed() > BAN)
            .map(|(p, _)| *p)
            .collect();
        for p in &expired {
            self.banned.remove(p);
        }
        expired
    }
}

/// Checks a finalized block from the network and applies it (and any held blocks it
/// unlocks) if it is next; holds it if it is ahead (rule R1). `peer` sent it, in `size` bytes.
fn receive<R: rand_core_010::CryptoRng>(
    node: &Node,
    committees: &BTreeMap<ShardId, Committee>,
    rng: &mut R,
    ahead: &mut BTreeMap<ShardId, Ahead<PeerId>>,
    fb: FinalizedBlock,
    (peer, size): (PeerId, usize),
    strikes: &mut Strikes,
) -> Received {
    let shard = fb.block.header.shard;
    let (Some(app), Some(committee)) = (node.shard(shard), committees.get(&shard)) else {
        return Received::Invalid;
    };
    let height = fb.block.header.height;
    let head = app.head().height;
    if height <= head {
        return Received::Stale;
    }
    let held = ahead.entry(shard).or_default();
    if fb.certificate.is_empty() {
        // Final only once a certified descendant links to it; never passed on (gossip
        // Ignore), so whoever sent a loose block to this node made it, and a loose block
        // proven false is its sender's.
        if held.offer_loose(head, fb.block, size, peer) == Offer::Held {
            let _ = apply_held(app, shard, held);
        }
        return Received::Stale;
    }
    // The committee of the block's epoch is fixed by the last block of the epoch before; a
    // block beyond that is dropped for now (sync brings it again once this node is there).
    let epochs = app.epochs();
    let epoch = epochs.epoch_of(height);
    let Some(participants) = committee_of(app, epoch, &committee.participants) else {
        return Received::Stale;
    };
    let block = ShardBlock::new(fb.block);
    if let Err(e) = verify_finalized(
        rng,
        &committee.namespace,
        epoch,
        &participants,
        &block,
        &fb.certificate,
    ) {
        tracing::warn!(%shard, height, error = %e, "refusing a block");
        strikes.add(peer, MAX_STRIKES);
        return Received::Invalid;
    }
    // What light-client proofs of this block's state carry; a block that closes an epoch
    // hands the next committee over, and its certificate is kept for good.
    if let Some(closed) = epochs.closes(height) {
        if let Err(e) = app.record_handoff_certificate(closed + 1, &block.id(), &fb.certificate) {
            tracing::warn!(%shard, height, error = %e, "cannot keep a hand-off certificate");
        }
    }
    node.keep_certificate(shard, height, block.id(), fb.certificate);
    let (outcome, liars) = held.offer_final(head, block.block().clone());
    for liar in liars {
        strikes.add(liar, MAX_STRIKES);
    }
    if outcome == Offer::Conflict {
        tracing::error!(%shard, height, "two certified blocks at one height");
        return Received::Invalid;
    }
    apply_held(app, shard, held)
}

/// Applies every held block that is final and next, in order.
fn apply_held(
    app: &starling_consensus::ShardApp,
    shard: ShardId,
    held: &mut Ahead<PeerId>,
) -> Received {
    let mut outcome = Received::Verified;
    while let Some(b) = held.take_next(app.head().height) {
        if let Err(e) = app.apply_finalized(&b) {
            // Not this message's fault: its sender is not scored down for it.
            tracing::error!(%shard, height = b.header.height, error = %e, "a certified block does not apply");
            outcome = Received::Stale;
            break;
        }
    }
    held.prune(app.head().height);
    outcome
}
