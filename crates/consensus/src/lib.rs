//! Starling shard chains under Commonware consensus: the block as consensus sees it, the
//! application that proposes and verifies blocks by executing them speculatively, and the
//! reporter that commits finalized blocks.
//!
//! Wiring the simplex engine, marshal, block broadcast and backfill over `commonware-p2p` on
//! top of these is the next step (see ARCHITECTURE.md, "Next: consensus").

mod application;
mod block;

pub use application::{ShardApp, ShardContext};
pub use block::{digest_of, ShardBlock};
