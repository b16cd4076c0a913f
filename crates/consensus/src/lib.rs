//! Starling shard chains under Commonware consensus: the block as consensus sees it, the
//! application that proposes and verifies blocks by executing them speculatively, and the
//! reporter that commits finalized blocks.
//!
//! [`engine::start`] runs them under the simplex engine and marshal (with block broadcast and
//! backfill) on any `commonware-p2p` transport; `tests/simnet.rs` runs four validators over
//! the simulated network.

mod application;
mod block;
pub mod cross;
pub mod engine;

pub use application::{
    account_of, forged, CrossShard, ShardApp, ShardContext, Tamper, DEFAULT_MAX_DRIFT,
};
pub use block::{digest_of, ShardBlock};
