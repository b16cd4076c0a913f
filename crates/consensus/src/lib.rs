//! Starling shard chains under Commonware consensus: the block as consensus sees it, the
//! application that proposes and verifies blocks by executing them speculatively, and the
//! reporter that commits finalized blocks.
//!
//! `tests/simnet.rs` runs them under the simplex engine and marshal (with block broadcast
//! and backfill) over a simulated network; moving that wiring into this crate and onto the
//! authenticated transport is the next step (ARCHITECTURE.md, "Next: consensus").

mod application;
mod block;

pub use application::{ShardApp, ShardContext};
pub use block::{digest_of, ShardBlock};
