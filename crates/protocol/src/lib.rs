//! What Starling nodes say to each other on the open network, with bounded codecs: every
//! decoder takes untrusted bytes, refuses anything over its limits with a clear
//! [`starling_types::DecodeError`] and never panics; what decodes re-encodes to the same
//! bytes. Fixtures in `tests/fixtures/` pin each encoding.
//!
//! - [`batch`]: transactions a validator forwards to the rest of its shard's committee.
//! - [`blocks`]: finalized blocks with their certificates (gossip and sync).
//! - [`chat`]: `/starling/chat/2` requests and responses.
//! - [`limit`]: token buckets, for what a peer or client may ask of a node.

pub mod batch;
pub mod blocks;
pub mod chat;
pub mod limit;
