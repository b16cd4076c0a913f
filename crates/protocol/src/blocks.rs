//! Finalized blocks as the open network carries them: with their finalization certificate,
//! gossiped by their proposer and served by sync.

use serde::{Deserialize, Serialize};
use starling_types::codec::put;
use starling_types::{Block, Decode as _, DecodeError, Encode as _, Reader};

/// Largest gossip message and sync response.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
/// Largest encoded finalization certificate.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// A finalized block with its certificate, as it travels.
#[derive(Clone, Debug)]
pub struct FinalizedBlock {
    pub block: Block,
    /// An encoded finalization certificate (see `starling_consensus::engine::Finalization`),
    /// or empty for a block finalized through a descendant's certificate.
    pub certificate: Vec<u8>,
}

impl FinalizedBlock {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put::bytes32(&mut out, &self.block.to_bytes());
        put::bytes32(&mut out, &self.certificate);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let block = Block::from_bytes(r.bytes32("block", MAX_MESSAGE_BYTES)?)?;
        let certificate = r.bytes32("certificate", MAX_CERTIFICATE_BYTES)?.to_vec();
        r.finish()?;
        Ok(Self { block, certificate })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncRequest {
    pub shard: u16,
    pub from: u64,
    pub max: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncResponse {
    /// Encoded [`FinalizedBlock`]s, consecutive from the requested height.
    pub blocks: Vec<Vec<u8>>,
}
