//! The blocking halves of proposing and verifying: building a block and checking one both
//! execute it, so they run on the runtime's blocking pool, never on an async worker.

use super::{Inner, ShardApp};
use crate::block::ShardBlock;
use commonware_cryptography::Digested;
use starling_ledger::{actions, BlockInput, Layered};
use starling_store::StoreError;
use starling_types::{AccountId, Hash, InboundBatch};

impl ShardApp {
    /// Builds (and executes) the block on `parent` at `now_ms`; the blocking half of
    /// proposing.
    pub(super) fn build(
        &self,
        parent: ShardBlock,
        proposer: AccountId,
        now_ms: u64,
        inbound: Vec<InboundBatch>,
    ) -> Option<Digested<ShardBlock>> {
        let mut inner = self.lock();
        let parent_header = &parent.block().header;
        let Inner {
            store,
            spec,
            mempool,
            max_block_txs,
            tamper,
            onion,
            ..
        } = &mut *inner;
        let ancestors = spec.ancestor_writes(store, &parent.id()).ok()?;
        let gas_limit = store.ledger().params.block_gas_limit;
        let height = parent_header.height.saturating_add(1);
        // Rule R1: the onion layer this block owes, as of the parent's state.
        let due = store
            .with_view(|v| {
                let state = Layered {
                    base: v,
                    top: &ancestors,
                };
                store.ledger().reveal_due(&state, &proposer, height)
            })
            .ok()
            .and_then(|d| d.ok());
        let reveal = match (due, onion.as_deref()) {
            (Some(due), Some(onion)) => due.value(onion),
            (Some(starling_ledger::randomness::RevealDue::Nothing), None) => Some(Hash::ZERO),
            _ => None,
        };
        let Some(reveal) = reveal else {
            tracing::warn!(
                height,
                "cannot build the onion reveal this block owes (rule R1)"
            );
            return None;
        };
        // Every pooled account's next nonce, read in one view (the parent's state).
        let txs: Vec<_> = store
            .with_view(|v| {
                let state = Layered {
                    base: v,
                    top: &ancestors,
                };
                let nonces = |a: &AccountId| actions::next_nonce(&state, a);
                mempool.select(gas_limit, *max_block_txs, &nonces)
            })
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.envelope)
            .collect();
        let mut input = BlockInput {
            height,
            parent: parent.id(),
            timestamp_ms: now_ms.max(parent_header.timestamp_ms.saturating_add(1)),
            proposer,
            reveal,
            txs,
            inbound,
        };
        let skip_all = tamper.as_ref().is_some_and(|t| t(&mut input));
        // Every pooled transaction's signature was checked on admission.
        let built = if skip_all {
            spec.propose_with(store, input, &|_| true)
        } else {
            spec.propose_with(store, input, &|h| mempool.contains(h))
        };
        match built {
            Ok(block) => {
                let b = ShardBlock::new(block);
                let digest = commonware_cryptography::Digestible::digest(&b);
                Some(Digested::precomputed(b, digest))
            }
            Err(e) => {
                tracing::warn!(error = %e, "failed to build a block");
                None
            }
        }
    }

    /// Whether `block` (after its `unknown` ancestors) is valid; the blocking half of
    /// verifying.
    pub(super) fn check(&self, block: ShardBlock, unknown: Vec<ShardBlock>) -> bool {
        let mut inner = self.lock();
        if Self::catch_up(&mut inner, unknown).is_err() {
            return false;
        }
        let Inner {
            store,
            spec,
            mempool,
            ..
        } = &mut *inner;
        // Transactions this node admitted to its pool had their signatures checked then.
        match spec.verify_with(store, block.block().clone(), &|h| mempool.contains(h)) {
            Ok(_) => true,
            Err(StoreError::Block(e)) => {
                tracing::info!(error = %e, height = block.block().header.height, "voting against an invalid block");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "could not verify a block");
                false
            }
        }
    }
}
