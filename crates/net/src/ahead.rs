//! What a relay holds of one shard above its head while it fills a gap (rule R1).
//!
//! - A block with a verified finalization certificate is *final*: it is held (once per height,
//!   never replaced) if it is at most [`MAX_AHEAD`] above the head.
//! - A block that travels without a certificate (finalized through a descendant's) is final
//!   once a final block names it as parent. Until then it is *loose*: held only within
//!   [`MAX_AHEAD`] of the head, at most [`MAX_LOOSE_PER_PEER`] per peer that sent it and
//!   [`MAX_LOOSE_BYTES`] in all, never in place of a final block.
//! - When a final block links a loose one, every other loose block at that height is proven
//!   false: the peers that sent them are named, so the caller can score them down.
//!
//! So a stranger can neither fill a relay's memory nor crowd out the blocks it needs.

use starling_types::{Block, Hash};
use std::collections::{BTreeMap, HashMap};

/// Heights above the head a relay holds blocks for.
pub const MAX_AHEAD: u64 = 128;
/// Loose blocks one peer may have held at once, per shard.
pub const MAX_LOOSE_PER_PEER: usize = 16;
/// Bytes of loose blocks held per shard.
pub const MAX_LOOSE_BYTES: usize = 64 * 1024 * 1024;

/// What became of a block offered to the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Held (final, or loose waiting for a final descendant).
    Held,
    /// At or below the head, already held, or too far ahead: nothing to do.
    Ignored,
    /// Refused because this peer, or the shard, has no room for more loose blocks.
    NoRoom,
    /// A second final block at a height that already has one (two certificates for one
    /// height: the committee broke; kept the first).
    Conflict,
}

/// The blocks of one shard above a relay's head, keyed by who sent them.
#[derive(Debug)]
pub struct Ahead<P> {
    finals: BTreeMap<u64, Block>,
    loose: BTreeMap<u64, Vec<(Block, Hash, usize, P)>>,
    loose_bytes: usize,
    per_peer: HashMap<P, usize>,
}

impl<P: Clone + Eq + std::hash::Hash> Default for Ahead<P> {
    fn default() -> Self {
        Self {
            finals: BTreeMap::new(),
            loose: BTreeMap::new(),
            loose_bytes: 0,
            per_peer: HashMap::new(),
        }
    }
}

impl<P: Clone + Eq + std::hash::Hash> Ahead<P> {
    /// Whether anything is held.
    pub fn is_empty(&self) -> bool {
        self.finals.is_empty() && self.loose.is_empty()
    }

    /// Bytes of loose blocks held.
    pub fn loose_bytes(&self) -> usize {
        self.loose_bytes
    }

    /// Number of loose blocks held.
    pub fn loose_len(&self) -> usize {
        self.loose.values().map(Vec::len).sum()
    }

    /// Offers a block without a certificate from `peer`, `size` bytes as it arrived; `head`
    /// is the relay's head.
    pub fn offer_loose(&mut self, head: u64, block: Block, size: usize, peer: P) -> Offer {
        let height = block.header.height;
        if height <= head || height > head.saturating_add(MAX_AHEAD) {
            return Offer::Ignored;
        }
        if self.finals.contains_key(&height) {
            return Offer::Ignored;
        }
        let id = block.header.id();
        if self
            .loose
            .get(&height)
            .is_some_and(|c| c.iter().any(|(_, i, _, _)| *i == id))
        {
            return Offer::Ignored;
        }
        // Its final child already names it: final at once.
        if self
            .finals
            .get(&(height + 1))
            .is_some_and(|child| child.header.parent == id)
        {
            self.finals.insert(height, block);
            self.link_down(height);
            return Offer::Held;
        }
        let mine = self.per_peer.get(&peer).copied().unwrap_or(0);
        if mine >= MAX_LOOSE_PER_PEER || self.loose_bytes.saturating_add(size) > MAX_LOOSE_BYTES {
            return Offer::NoRoom;
        }
        *self.per_peer.entry(peer.clone()).or_default() += 1;
        self.loose_bytes += size;
        self.loose
            .entry(height)
            .or_default()
            .push((block, id, size, peer));
        Offer::Held
    }

    /// Offers a block whose certificate verified. Returns the peers whose loose blocks it
    /// proved false (to score down) with the outcome.
    pub fn offer_final(&mut self, head: u64, block: Block) -> (Offer, Vec<P>) {
        let height = block.header.height;
        if height <= head || height > head.saturating_add(MAX_AHEAD) {
            return (Offer::Ignored, Vec::new());
        }
        if let Some(have) = self.finals.get(&height) {
            let outcome = if have.header.id() == block.header.id() {
                Offer::Ignored
            } else {
                Offer::Conflict
            };
            return (outcome, Vec::new());
        }
        let liars = self.settle(height, block.header.id());
        self.finals.insert(height, block);
        let mut liars = liars;
        liars.extend(self.link_down(height));
        (Offer::Held, liars)
    }

    /// The next block to apply, if final and held.
    pub fn take_next(&mut self, head: u64) -> Option<Block> {
        self.finals.remove(&head.saturating_add(1))
    }

    /// Forgets everything at or below `head`.
    pub fn prune(&mut self, head: u64) {
        self.finals.retain(|h, _| *h > head);
        let gone: Vec<u64> = self.loose.range(..=head).map(|(h, _)| *h).collect();
        for h in gone {
            for (_, _, size, peer) in self.loose.remove(&h).unwrap_or_default() {
                self.release(&peer, size);
            }
        }
    }

    fn release(&mut self, peer: &P, size: usize) {
        self.loose_bytes = self.loose_bytes.saturating_sub(size);
        if let Some(n) = self.per_peer.get_mut(peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_peer.remove(peer);
            }
        }
    }

    /// The final block at `height` is `id`: takes the loose candidate with that id (if any) out
    /// of the loose set, drops the others, and names who sent them.
    fn settle(&mut self, height: u64, id: Hash) -> Vec<P> {
        let mut liars = Vec::new();
        for (_, cid, size, peer) in self.loose.remove(&height).unwrap_or_default() {
            self.release(&peer, size);
            if cid != id {
                liars.push(peer);
            }
        }
        liars
    }

    /// Makes final every loose ancestor the final block at `height` links to by parent hash.
    fn link_down(&mut self, mut height: u64) -> Vec<P> {
        let mut liars = Vec::new();
        while height > 1 {
            let Some(parent) = self.finals.get(&height).map(|b| b.header.parent) else {
                break;
            };
            let below = height - 1;
            if self.finals.contains_key(&below) {
                break;
            }
            let found = self.loose.get(&below).and_then(|c| {
                c.iter()
                    .position(|(_, id, _, _)| *id == parent)
                    .map(|i| c[i].0.clone())
            });
            liars.extend(self.settle(below, parent));
            match found {
                Some(block) => {
                    self.finals.insert(below, block);
                    height = below;
                }
                None => break,
            }
        }
        liars
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_types::{AccountId, BlockHeader, ChainId, ShardId};

    fn block(height: u64, parent: Hash, salt: u8) -> Block {
        let header = BlockHeader {
            chain_id: ChainId::new("ahead").unwrap_or_else(|_| unreachable!()),
            shard: ShardId(1),
            height,
            parent,
            timestamp_ms: height * 1000 + u64::from(salt),
            proposer: AccountId::ed25519([salt; 32]),
            tx_root: Block::body_root(&[], &[]),
            receipt_root: Hash::ZERO,
            state_root: Hash([salt; 32]),
            base_fee: 1,
            reveal: starling_types::Hash::ZERO,
        };
        Block {
            header,
            txs: Vec::new(),
            inbound: Vec::new(),
        }
    }

    /// A chain of `n` blocks above height `from` (whose id is `parent`).
    fn chain(from: u64, parent: Hash, n: u64) -> Vec<Block> {
        let mut out = Vec::new();
        let mut p = parent;
        for h in from + 1..=from + n {
            let b = block(h, p, 0);
            p = b.header.id();
            out.push(b);
        }
        out
    }

    #[test]
    fn junk_from_a_stranger_neither_fills_the_buffer_nor_crowds_out_the_real_chain() {
        let mut ahead: Ahead<u32> = Ahead::default();
        let stranger = 666;
        // Far above the head: ignored outright.
        for i in 0..1_000u64 {
            let junk = block(1_000_000_000_000 + i, Hash([9; 32]), 1);
            assert_eq!(ahead.offer_loose(0, junk, 100, stranger), Offer::Ignored);
        }
        // Within reach: at most MAX_LOOSE_PER_PEER held, for every height.
        let mut held = 0;
        for h in 1..=MAX_AHEAD {
            for salt in 1..4u8 {
                if ahead.offer_loose(0, block(h, Hash([7; 32]), salt), 100, stranger) == Offer::Held
                {
                    held += 1;
                }
            }
        }
        assert_eq!(held, MAX_LOOSE_PER_PEER);
        // The real chain still gets in: block 1 loose from an honest peer, block 2 certified.
        let real = chain(0, Hash([1; 32]), 2);
        assert_eq!(ahead.offer_loose(0, real[0].clone(), 100, 1), Offer::Held);
        let (outcome, liars) = ahead.offer_final(0, real[1].clone());
        assert_eq!(outcome, Offer::Held);
        // The stranger's blocks at height 1 are proven false.
        assert!(liars.iter().all(|p| *p == stranger));
        assert!(!liars.is_empty());
        assert_eq!(ahead.take_next(0), Some(real[0].clone()));
        assert_eq!(ahead.take_next(1), Some(real[1].clone()));
        ahead.prune(2);
        // What the stranger left is bounded and goes as the head passes it.
        assert!(ahead.loose_len() <= MAX_LOOSE_PER_PEER);
        ahead.prune(MAX_AHEAD);
        assert!(ahead.is_empty());
        assert_eq!(ahead.loose_bytes(), 0);
    }

    #[test]
    fn a_final_block_is_never_replaced() {
        let mut ahead: Ahead<u32> = Ahead::default();
        let real = chain(0, Hash([1; 32]), 3);
        assert_eq!(ahead.offer_final(0, real[2].clone()).0, Offer::Held);
        // A loose impostor at a final height, or a second certified one, changes nothing.
        assert_eq!(
            ahead.offer_loose(0, block(3, Hash([5; 32]), 9), 100, 7),
            Offer::Ignored
        );
        assert_eq!(
            ahead.offer_final(0, block(3, Hash([5; 32]), 9)).0,
            Offer::Conflict
        );
        // Loose ancestors arriving after their certified descendant link at once.
        assert_eq!(ahead.offer_loose(0, real[1].clone(), 100, 2), Offer::Held);
        assert_eq!(ahead.offer_loose(0, real[0].clone(), 100, 2), Offer::Held);
        for (h, b) in real.iter().enumerate() {
            assert_eq!(ahead.take_next(h as u64).as_ref(), Some(b));
        }
    }
}
