//! Blocks executed on top of ancestors that are not final yet (consensus proposes on notarized
//! parents). Each is executed once; its roots are computed without touching the committed
//! state; its effects are cached by block id and committed when it is finalized.

use crate::{ChainStore, StoreError};
use starling_ledger::Executed;
use starling_state::{BucketSummary, WriteSet};
use starling_types::{Block, Hash};
use std::collections::HashMap;

/// Most unfinalized blocks kept at once. Consensus finalizes within a few views; more than
/// this means finality has stalled, and new speculation is refused until it resumes.
pub const MAX_SPECULATIVE_BLOCKS: usize = 256;

/// Executed but unfinalized blocks of one shard, by block id.
#[derive(Debug, Default)]
pub struct Speculative {
    blocks: HashMap<Hash, (Block, Executed)>,
    /// Each block's state-tree bucket summaries (over its ancestors), reused when it commits.
    trees: HashMap<Hash, Vec<(u32, BucketSummary)>>,
}

impl Speculative {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    pub fn get(&self, id: &Hash) -> Option<&(Block, Executed)> {
        self.blocks.get(id)
    }

    /// The writes of every unfinalized ancestor from the store's head up to `parent`, merged
    /// oldest first (later writes win). Empty if `parent` is the head itself.
    pub fn ancestor_writes(
        &self,
        store: &ChainStore,
        parent: &Hash,
    ) -> Result<WriteSet, StoreError> {
        let head = store.head().id;
        let mut chain = Vec::new();
        let mut at = *parent;
        while at != head {
            let Some((block, executed)) = self.blocks.get(&at) else {
                return Err(StoreError::UnknownParent(at));
            };
            if block.header.height <= store.head().height {
                // Below the head but not on its chain: a branch that can no longer finalize.
                return Err(StoreError::UnknownParent(at));
            }
            chain.push(&executed.writes);
            at = block.header.parent;
        }
        let mut merged = WriteSet::new();
        for writes in chain.into_iter().rev() {
            merged.extend(writes.iter().map(|(k, v)| (*k, v.clone())));
        }
        Ok(merged)
    }

    /// Executes `block`, built elsewhere, on its (possibly unfinalized) parent and checks its
    /// header; caches the result. Nothing is committed.
    pub fn verify(&mut self, store: &mut ChainStore, block: Block) -> Result<Hash, StoreError> {
        self.verify_with(store, block, &|_| false)
    }

    /// As [`Self::verify`], skipping signatures `checked` says this node verified already.
    pub fn verify_with(
        &mut self,
        store: &mut ChainStore,
        block: Block,
        checked: &dyn Fn(&Hash) -> bool,
    ) -> Result<Hash, StoreError> {
        let id = block.header.id();
        if self.blocks.contains_key(&id) {
            return Ok(id);
        }
        self.check_room()?;
        let ancestors = self.ancestor_writes(store, &block.header.parent)?;
        let (executed, root, tree) = store.speculate_tree(
            &ancestors,
            &starling_ledger::BlockInput::from_block(&block),
            checked,
        )?;
        store
            .ledger()
            .check_header(&block.header, &executed, root)?;
        self.blocks.insert(id, (block, executed));
        self.trees.insert(id, tree);
        Ok(id)
    }

    /// Builds a block on `input.parent` (possibly unfinalized); caches and returns it.
    pub fn propose(
        &mut self,
        store: &mut ChainStore,
        input: starling_ledger::BlockInput,
    ) -> Result<Block, StoreError> {
        self.propose_with(store, input, &|_| false)
    }

    /// As [`Self::propose`], skipping signatures `checked` says this node verified already.
    pub fn propose_with(
        &mut self,
        store: &mut ChainStore,
        input: starling_ledger::BlockInput,
        checked: &dyn Fn(&Hash) -> bool,
    ) -> Result<Block, StoreError> {
        self.check_room()?;
        let ancestors = self.ancestor_writes(store, &input.parent)?;
        let (executed, root, tree) = store.speculate_tree(&ancestors, &input, checked)?;
        let header = store.ledger().header(&input, &executed, root);
        let block = Block {
            header,
            txs: input.txs,
            inbound: input.inbound,
        };
        let id = block.header.id();
        self.blocks.insert(id, (block.clone(), executed));
        self.trees.insert(id, tree);
        Ok(block)
    }

    fn check_room(&self) -> Result<(), StoreError> {
        if self.blocks.len() >= MAX_SPECULATIVE_BLOCKS {
            return Err(StoreError::TooManyUnfinalized(MAX_SPECULATIVE_BLOCKS));
        }
        Ok(())
    }

    /// Commits a finalized block whose parent is the store's head, reusing its cached
    /// execution (executing it now if it was never seen), and forgets blocks that can no
    /// longer finalize.
    pub fn finalize(
        &mut self,
        store: &mut ChainStore,
        block: &Block,
    ) -> Result<Executed, StoreError> {
        let id = block.header.id();
        let tree = self.trees.remove(&id);
        // The cached execution is reused only for the very block that was executed: a body
        // delivered under the same header but different (rule B6 makes that undecodable, but
        // a caller may build blocks in memory) is executed afresh, and its roots refuse it.
        let cached = self.blocks.remove(&id).filter(|(b, _)| b == block);
        let executed = match (cached, tree) {
            (Some((_, executed)), Some(tree)) => store.commit_speculated(block, executed, &tree)?,
            (Some((_, executed)), None) => store.commit_executed(block, executed)?,
            (None, _) => store.apply(block)?,
        };
        let height = store.head().height;
        self.blocks.retain(|_, (b, _)| b.header.height > height);
        let blocks = &self.blocks;
        self.trees.retain(|id, _| blocks.contains_key(id));
        Ok(executed)
    }
}
