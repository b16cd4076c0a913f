//! Blocks: header and body.
//!
//! Header wire form (version 1): `version:u8 (=1) || chain_id || shard:u16 || height:u64 ||
//! parent:[u8;32] || timestamp_ms:u64 || proposer:PublicKey || tx_root || receipt_root ||
//! state_root || base_fee:u64`. The block id is `blake3("starling/header/v1" || header)`.
//!
//! `tx_root` commits to the whole body: the Merkle root over the leaves
//! `blake3(0x00 || 0x01 || tx id)` for each transaction (its id is the hash of its envelope),
//! followed by `blake3(0x00 || 0x02 || source block id || message)` for each inbound message.

use crate::codec::{put, Decode, DecodeError, Encode, Reader};
use crate::hash::Hash;
use crate::keys::{AccountId, PublicKey};
use crate::merkle::{self, MerkleProof};
use crate::receipt::ShardMessage;
use crate::shard::ShardId;
use crate::tx::{ChainId, TxEnvelope};

const HEADER_VERSION: u8 = 1;
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
        let mut buf = Vec::with_capacity(256);
        for batch in inbound {
            let source = batch.source.id();
            for (m, _) in &batch.messages {
                buf.clear();
                buf.push(2);
                source.encode(&mut buf);
                m.encode(&mut buf);
                leaves.push(merkle::leaf_hash(&buf));
            }
        }
        merkle::root(&leaves)
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
        Ok(Block {
            header: BlockHeader::decode(r)?,
            txs: r.seq("block txs", MAX_BLOCK_TXS, TxEnvelope::decode)?,
            inbound: r.seq("inbound batches", MAX_INBOUND_BATCHES, InboundBatch::decode)?,
        })
    }
}
