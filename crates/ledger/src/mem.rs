//! A whole shard chain in memory: the reference for tests, simulations and benchmarks.

use crate::exec::{BlockInput, Executed, GenesisValidators, ShardLedger};
use crate::{BlockError, LedgerParams};
use starling_state::MemState;
use starling_types::{AccountId, Asset, Block, Hash, InboundBatch, ShardId, TxEnvelope};

#[derive(Debug, Clone)]
pub struct MemLedger {
    pub ledger: ShardLedger,
    pub state: MemState,
    /// Id of the last applied block (block 0, the genesis block, before block 1).
    pub head: Hash,
    pub height: u64,
}

impl MemLedger {
    pub fn genesis(
        params: LedgerParams,
        shard: ShardId,
        allocations: &[(AccountId, Asset, u128)],
        foundation_seed: u128,
        bits: u8,
    ) -> Self {
        Self::genesis_with(
            params,
            shard,
            allocations,
            foundation_seed,
            bits,
            &GenesisValidators::default(),
        )
    }

    /// As [`Self::genesis`], with genesis validators.
    pub fn genesis_with(
        params: LedgerParams,
        shard: ShardId,
        allocations: &[(AccountId, Asset, u128)],
        foundation_seed: u128,
        bits: u8,
        validators: &GenesisValidators,
    ) -> Self {
        let ledger = ShardLedger::new(params, shard);
        let mut state = MemState::new(bits);
        let root =
            state.commit(&ledger.genesis_writes_with(allocations, foundation_seed, validators));
        let head = ledger.genesis_block(root).header.id();
        Self {
            ledger,
            state,
            head,
            height: 0,
        }
    }

    /// Builds the next block from `txs` and `inbound`, applies it, and returns it.
    pub fn propose(
        &mut self,
        txs: Vec<TxEnvelope>,
        inbound: Vec<InboundBatch>,
        timestamp_ms: u64,
        proposer: AccountId,
    ) -> Result<(Block, Executed), BlockError> {
        self.propose_input(BlockInput {
            height: self.height + 1,
            parent: self.head,
            timestamp_ms,
            proposer,
            reveal: Hash::ZERO,
            txs,
            inbound,
        })
    }

    /// Builds the next block from a whole input (its height and parent must be the next
    /// ones), applies it, and returns it.
    pub fn propose_input(&mut self, input: BlockInput) -> Result<(Block, Executed), BlockError> {
        let executed = self.ledger.execute(&self.state, &input)?;
        let root = self.state.commit(&executed.writes);
        let header = self.ledger.header(&input, &executed, root);
        self.head = header.id();
        self.height = header.height;
        Ok((
            Block {
                header,
                txs: input.txs,
                inbound: input.inbound,
            },
            executed,
        ))
    }

    /// Verifies and applies a block built elsewhere; on error nothing changes.
    pub fn apply(&mut self, block: &Block) -> Result<Executed, BlockError> {
        if block.header.parent != self.head {
            return Err(BlockError::WrongParent);
        }
        let input = BlockInput::from_block(block);
        let executed = self.ledger.execute(&self.state, &input)?;
        let mut next = self.state.clone();
        let root = next.commit(&executed.writes);
        self.ledger.check_header(&block.header, &executed, root)?;
        self.state = next;
        self.head = block.header.id();
        self.height = block.header.height;
        Ok(executed)
    }
}
