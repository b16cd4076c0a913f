//! Blocks: header and body.
//!
//! Header wire form (version 2): `version:u8 (=2) || chain_id || shard:u16 || height:u64 ||
//! parent:[u8;32] || timestamp_ms:u64 || proposer:PublicKey || tx_root || receipt_root ||
//! state_root || base_fee:u64 || reveal:[u8;32]`. The block id is
//! `blake3("starling/header/v1" || header)`. `reveal` is the proposer's onion layer on the
//! global shard (the ledger's rule R1, what the committee seed is drawn from), zero elsewhere.
//!
//! `tx_root` commits to the whole body: the Merkle root over the leaves
//! `blake3(0x00 || 0x01 || tx id)` for each transaction (its id is the hash of its envelope,
//! signature included), followed by `blake3(0x00 || 0x02 || blake3(batch encoding))` for each
//! inbound batch (its source header, every message and every proof). Leaves of the two kinds
//! cannot be confused and the tree never duplicates a node, so one root names one body:
//! decoding a block recomputes the root and refuses a body that does not match its header
//! (rule B6), so a header id binds the whole block.

use crate::codec::{put, Decode, DecodeError, Encode, Reader};
use crate::hash::Hash;
use crate::keys::{AccountId, PublicKey};
use crate::merkle::{self, MerkleProof};
use crate::receipt::ShardMessage;
use crate::shard::ShardId;
use crate::tx::{ChainId, TxEnvelope};

const HEADER_VERSION: u8 = 2;
/// Most transactions in one block.
pub const MAX_BLOCK_TXS: usize = 65_535;
/// Most source blocks whose messages one block applies.
pub const MAX_INBOUND_BATCHES: usize = 1024;
/// Most messages from one source block.
pub const MAX_BATCH_MESSAGES: usize = 65_535;
/// Largest encoded block.
pub const MAX_BLOCK_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockHeader {
    pub chain_id: ChainId,
    pub shard: ShardId,
    pub height: u64,
    pub parent: Hash,
    pub timestamp_ms: u64,
    pub proposer: AccountId,
    pub tx_root: Hash,
    pub receipt_root: Hash,
    pub state_root: Hash,
    pub base_fee: u64,
    /// The proposer's onion commitment or reveal on the global shard (ledger rule R1); zero
    /// otherwise.
    pub reveal: Hash,
}

impl BlockHeader {
    pub fn id(&self) -> Hash {
        Hash::of(&[b"starling/header/v1", &self.to_bytes()])
    }
}

impl Encode for BlockHeader {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u8(out, HEADER_VERSION);
        self.chain_id.encode(out);
        self.shard.encode(out);
        put::u64(out, self.height);
        self.parent.encode(out);
        put::u64(out, self.timestamp_ms);
        self.proposer.encode(out);
        self.tx_root.encode(out);
        self.receipt_root.encode(out);
        self.state_root.encode(out);
        put::u64(out, self.base_fee);
        self.reveal.encode(out);
    }
}

impl Decode for BlockHeader {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8()?;
        if version != HEADER_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "block header",
                version,
            });
        }
        Ok(BlockHeader {
            chain_id: ChainId::decode(r)?,
            shard: ShardId::decode(r)?,
            height: r.u64()?,
            parent: Hash::decode(r)?,
            timestamp_ms: r.u64()?,
            proposer: PublicKey::decode(r)?,
            tx_root: Hash::decode(r)?,
            receipt_root: Hash::decode(r)?,
            state_root: Hash::decode(r)?,
            base_fee: r.u64()?,
            reveal: Hash::decode(r)?,
        })
    }
}

/// Messages for this shard from one finalized source block, each with its proof under the
/// source header's `receipt_root`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InboundBatch {
    pub source: BlockHeader,
    pub messages: Vec<(ShardMessage, MerkleProof)>,
}

impl Encode for InboundBatch {
    fn encode(&self, out: &mut Vec<u8>) {
        self.source.encode(out);
        put::seq(out, &self.messages, |o, (m, p)| {
            m.encode(o);
            p.encode(o);
        });
    }
}

impl Decode for InboundBatch {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(InboundBatch {
            source: BlockHeader::decode(r)?,
            messages: r.seq("inbound messages", MAX_BATCH_MESSAGES, |r| {
                Ok((ShardMessage::decode(r)?, MerkleProof::decode(r)?))
            })?,
        })
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<TxEnvelope>,
    pub inbound: Vec<InboundBatch>,
}

impl Block {
    /// The `tx_root` this body commits to.
    pub fn body_root(txs: &[TxEnvelope], inbound: &[InboundBatch]) -> Hash {
        let tx_ids: Vec<Hash> = txs.iter().map(TxEnvelope::hash).collect();
        Self::body_root_from_ids(&tx_ids, inbound)
    }

    /// [`Self::body_root`] from the transactions' ids (hashes), when they are already known.
    pub fn body_root_from_ids(tx_ids: &[Hash], inbound: &[InboundBatch]) -> Hash {
        let mut leaves: Vec<Hash> = tx_ids
            .iter()
            .map(|id| Hash::of(&[&[0u8, 1u8], &id.0]))
            .collect();
        for batch in inbound {
            let batch_hash = Hash::of(&[&batch.to_bytes()]);
            leaves.push(Hash::of(&[&[0u8, 2u8], &batch_hash.0]));
        }
        merkle::root(&leaves)
    }

    /// Whether the body is the one the header's `tx_root` names.
    pub fn body_matches_header(&self) -> bool {
        Self::body_root(&self.txs, &self.inbound) == self.header.tx_root
    }
}

impl Encode for Block {
    fn encode(&self, out: &mut Vec<u8>) {
        self.header.encode(out);
        put::seq(out, &self.txs, |o, t| t.encode(o));
        put::seq(out, &self.inbound, |o, b| b.encode(o));
    }
}

impl Decode for Block {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let block = Block {
            header: BlockHeader::decode(r)?,
            txs: r.seq("block txs", MAX_BLOCK_TXS, TxEnvelope::decode)?,
            inbound: r.seq("inbound batches", MAX_INBOUND_BATCHES, InboundBatch::decode)?,
        };
        if !block.body_matches_header() {
            return Err(DecodeError::InvalidValue(
                "block body (it does not match its header's tx_root)",
            ));
        }
        Ok(block)
    }
}
