//! A Starling block as Commonware consensus sees it.
//!
//! Encoding: `length:u32 BE || Starling block encoding` (docs/encoding.md). The length is
//! checked against [`MAX_BLOCK_BYTES`] before anything is read, and the inner bytes must decode
//! as exactly one block, so the encoding stays canonical. The digest is the header id.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error, Read, Write};
use commonware_consensus::types::Height;
use commonware_consensus::{Block as ConsensusBlock, BoundedBlock, Heightable};
use commonware_cryptography::{blake3::Digest, Digestible};
use starling_types::block::MAX_BLOCK_BYTES;
use starling_types::{Block, Decode, Encode, Hash};
use std::sync::Arc;

/// The consensus digest of a header id.
pub fn digest_of(id: &Hash) -> Digest {
    Digest(id.0)
}

/// A block with its encoding and id computed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardBlock {
    block: Arc<Block>,
    bytes: bytes::Bytes,
    id: Hash,
}

impl ShardBlock {
    pub fn new(block: Block) -> Self {
        let bytes = bytes::Bytes::from(block.to_bytes());
        let id = block.header.id();
        Self {
            block: Arc::new(block),
            bytes,
            id,
        }
    }

    pub fn block(&self) -> &Block {
        &self.block
    }

    pub fn id(&self) -> Hash {
        self.id
    }
}

impl Write for ShardBlock {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u32(self.bytes.len() as u32);
        buf.put_slice(&self.bytes);
    }
}

impl EncodeSize for ShardBlock {
    fn encode_size(&self) -> usize {
        4 + self.bytes.len()
    }
}

impl Read for ShardBlock {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, Error> {
        let len = u32::read_cfg(buf, &())? as usize;
        if len > MAX_BLOCK_BYTES {
            return Err(Error::InvalidLength(len));
        }
        let bytes: bytes::Bytes = buf.try_take_owned(len).map_err(|_| Error::EndOfBuffer)?;
        let block = Block::from_bytes(&bytes)
            .map_err(|_| Error::Invalid("starling block", "does not decode"))?;
        let id = block.header.id();
        Ok(Self {
            block: Arc::new(block),
            bytes,
            id,
        })
    }
}

impl Digestible for ShardBlock {
    type Digest = Digest;

    fn digest(&self) -> Digest {
        digest_of(&self.id)
    }
}

impl Heightable for ShardBlock {
    fn height(&self) -> Height {
        Height::new(self.block.header.height)
    }
}

impl ConsensusBlock for ShardBlock {
    fn parent(&self) -> Digest {
        digest_of(&self.block.header.parent)
    }
}

impl BoundedBlock for ShardBlock {
    fn max_encode_size(_: &()) -> usize {
        4 + MAX_BLOCK_BYTES
    }
}
