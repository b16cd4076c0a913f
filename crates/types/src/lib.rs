//! Starling protocol types: keys, accounts, the shard space, transactions, receipts and
//! blocks, with one canonical, versioned binary encoding decoded within explicit limits.

pub mod actions;
pub mod ballots;
pub mod block;
pub mod codec;
pub mod federation;
pub mod hash;
pub mod keys;
pub mod merkle;
pub mod offices;
pub mod proposals;
pub mod receipt;
pub mod shard;
pub mod tx;

pub use actions::{ActionKind, ACTIONS};
pub use ballots::Ballot;
pub use block::{Block, BlockHeader, InboundBatch};
pub use codec::{Decode, DecodeError, Encode, Reader};
pub use federation::{Federation, Foundation, FoundationStatus};
pub use hash::Hash;
pub use keys::{AccountId, KeyType, PublicKey, Signature};
pub use merkle::MerkleProof;
pub use offices::{Office, Offices, Seat};
pub use proposals::{Branch, Finality, GovAct, GovParam, Motion, Track};
pub use receipt::{Payload, Receipt, ShardMessage, StatusCode, TxReceipt};
pub use shard::{ShardId, ShardMap, ShardPoint, ShardRange};
pub use tx::{Action, Asset, ChainId, ChatDevice, Endpoint, PostId, Tx, TxBody, TxEnvelope};
