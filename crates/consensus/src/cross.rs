//! Cross-shard delivery between the shards a node holds (a [`CrossShard`] provider).
//!
//! A source shard's finalized blocks record every message it sends (transfers' credits,
//! follow notices, handle claims and answers) as receipts, numbered per destination. The
//! destination's proposer asks [`Router::pending`] for the messages from the sequence number
//! its state expects next; the router reads them from the source's finalized blocks and
//! proves each one under the block's receipt root. A verifier accepts a batch only if its
//! source header is the finalized block at that height in its own copy of the source shard
//! ([`Router::finalized`]); the ledger then checks every proof and applies each message once,
//! in order (duplicates and gaps change nothing).
//!
//! Nothing is queued in memory: what is pending is computed from the two shards' states, so a
//! crash or restart on either side loses no message.

use crate::{CrossShard, ShardApp};
use starling_ledger::records::{decode_u64, StateKey};
use starling_types::block::{MAX_BATCH_MESSAGES, MAX_INBOUND_BATCHES};
use starling_types::{merkle, BlockHeader, InboundBatch, Receipt, ShardId};
use std::collections::BTreeMap;

/// Most inbound batches one block carries (well under the block format's limit).
const MAX_BATCHES_PER_BLOCK: usize = 64;
/// Most inbound messages one block carries.
const MAX_MESSAGES_PER_BLOCK: usize = 20_000;

/// The shards of one node, for cross-shard delivery among them.
#[derive(Debug)]
pub struct Router {
    shards: BTreeMap<ShardId, ShardApp>,
}

impl Router {
    pub fn new(shards: BTreeMap<ShardId, ShardApp>) -> Self {
        let shards = shards.into_iter().map(|(s, a)| (s, a.detached())).collect();
        Self { shards }
    }

    /// The next sequence number `source` will give a message to `dest`.
    fn outbox(source: &ShardApp, dest: ShardId) -> u64 {
        source
            .read(|v| {
                v.get(&StateKey::Outbox(dest).hash())
                    .ok()
                    .flatten()
                    .and_then(|b| decode_u64(&b).ok())
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Batches from `source` to `dest` with sequence numbers from `from` on, oldest first,
    /// found through the source's message index (so a destination catches up from a source
    /// of any age); whole source blocks only, as many as `budget` messages allow.
    fn from_source(
        source: &ShardApp,
        dest: ShardId,
        from: u64,
        budget: &mut usize,
    ) -> Vec<InboundBatch> {
        if Self::outbox(source, dest) <= from {
            return Vec::new();
        }
        let heights = source
            .message_heights(dest, from, MAX_BATCHES_PER_BLOCK)
            .unwrap_or_default();
        let mut batches = Vec::new();
        for h in heights {
            let (Ok(Some(block)), Ok(Some(receipts))) = (source.block(h), source.receipts(h))
            else {
                break;
            };
            let leaves: Vec<_> = receipts.iter().map(Receipt::leaf_hash).collect();
            // Hashed once per block: each message's proof is then its log(n) siblings.
            let tree = merkle::Tree::new(&leaves);
            let mut messages = Vec::new();
            for (i, r) in receipts.iter().enumerate() {
                if let Receipt::Message(m) = r {
                    if m.dest == dest && m.seq >= from {
                        if let Some(proof) = tree.prove(i) {
                            messages.push((m.clone(), proof));
                        }
                    }
                }
            }
            if messages.is_empty() {
                continue;
            }
            // Whole batches while they fit; a source block with more pending messages than a
            // proposal carries is taken in parts, in sequence order, the first part now.
            let room = (*budget).min(MAX_BATCH_MESSAGES);
            if messages.len() > room {
                if !batches.is_empty() || room == 0 {
                    break;
                }
                messages.truncate(room);
            }
            *budget -= messages.len();
            batches.push(InboundBatch {
                source: block.header,
                messages,
            });
        }
        batches
    }
}

impl CrossShard for Router {
    fn pending(&self, dest: ShardId, expected: &dyn Fn(ShardId) -> u64) -> Vec<InboundBatch> {
        let mut budget = MAX_MESSAGES_PER_BLOCK;
        let mut out = Vec::new();
        for (id, source) in &self.shards {
            if *id == dest {
                continue;
            }
            out.extend(Self::from_source(source, dest, expected(*id), &mut budget));
        }
        out.truncate(MAX_BATCHES_PER_BLOCK.min(MAX_INBOUND_BATCHES));
        out
    }

    fn finalized(&self, header: &BlockHeader) -> Option<bool> {
        let source = self.shards.get(&header.shard)?;
        if source.head().height < header.height {
            return None;
        }
        match source.block(header.height) {
            Ok(Some(b)) => Some(b.header.id() == header.id()),
            _ => Some(false),
        }
    }
}
