//! What a shard's finalized store answers: reads, proofs, blocks and receipts, committee
//! hand-offs, evidence and the pool's counters.

use super::ShardApp;
use starling_ledger::actions;
use starling_store::{Head, StoreError};
use starling_types::{Hash, ShardId};

impl ShardApp {
    /// Blocks per consensus epoch (rule E2).
    pub fn epoch_blocks(&self) -> u64 {
        self.lock().store.ledger().params.epoch_blocks
    }

    /// The shard's consensus epochs (rule C2): which epoch a height is in, which height closes
    /// one. The one place a node does epoch arithmetic.
    pub fn epochs(&self) -> starling_ledger::committee::EpochSchedule {
        self.lock().store.ledger().epochs()
    }

    /// The committee of consensus epoch `epoch` as the finalized state fixes it (rule E2), if
    /// known yet. `None` also for a shard created without genesis committees.
    pub fn epoch_committee(&self, epoch: u64) -> Option<Vec<starling_types::PublicKey>> {
        self.read(|v| {
            actions::get_record::<_, starling_ledger::records::CommitteeRecord>(
                v,
                starling_ledger::records::StateKey::EpochCommittee(epoch),
            )
        })
        .ok()?
        .ok()?
        .map(|c| c.members)
    }

    /// Records evidence of a consensus fault in the store.
    pub fn record_evidence(&self, evidence: &[u8]) -> Result<u64, StoreError> {
        self.lock().store.record_evidence(evidence)
    }

    /// The recorded consensus faults.
    pub fn evidence(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.lock().store.evidence()
    }

    /// A finalized block by height.
    pub fn block(&self, height: u64) -> Result<Option<starling_types::Block>, StoreError> {
        self.lock().store.block(height)
    }

    /// Pending transactions in the mempool.
    pub fn mempool_len(&self) -> usize {
        self.lock().mempool.len()
    }

    /// What left the mempool without a block taking it, by reason.
    pub fn mempool_drops(&self) -> starling_mempool::Drops {
        self.lock().mempool.drops()
    }

    /// Reads the finalized state.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&dyn starling_ledger::StateView) -> T,
    ) -> Result<T, StoreError> {
        self.lock().store.with_view(f)
    }

    /// The finalized head and the value under `key_hash` with its proof against the head's
    /// state root, read together.
    pub fn prove(
        &self,
        key_hash: &Hash,
    ) -> Result<(Head, Option<Vec<u8>>, starling_state::Proof), StoreError> {
        let inner = self.lock();
        let head = inner.store.head();
        let (value, proof) = inner.store.prove(key_hash)?;
        Ok((head, value, proof))
    }

    /// Epoch `epoch`'s committee hand-off (see [`starling_store::ChainStore::handoff`]).
    pub fn handoff(&self, epoch: u64) -> Result<Option<starling_store::Handoff>, StoreError> {
        self.lock().store.handoff(epoch)
    }

    /// Keeps the certificate of the block that closes epoch `epoch - 1` (a follower's copy;
    /// see [`starling_store::ChainStore::record_handoff_certificate`]).
    pub fn record_handoff_certificate(
        &self,
        epoch: u64,
        id: &Hash,
        certificate: &[u8],
    ) -> Result<(), StoreError> {
        self.lock()
            .store
            .record_handoff_certificate(epoch, id, certificate)
    }

    /// The certificate kept for epoch `epoch`'s hand-off: its block id and the certificate.
    pub fn handoff_certificate(&self, epoch: u64) -> Result<Option<(Hash, Vec<u8>)>, StoreError> {
        self.lock().store.handoff_certificate(epoch)
    }

    /// Heights of finalized blocks holding messages to `dest` from sequence number `seq` on
    /// (see [`starling_store::ChainStore::message_heights`]).
    pub fn message_heights(
        &self,
        dest: ShardId,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        self.lock().store.message_heights(dest, seq, limit)
    }

    /// The receipts of a finalized block.
    pub fn receipts(
        &self,
        height: u64,
    ) -> Result<Option<Vec<starling_types::Receipt>>, StoreError> {
        self.lock().store.receipts(height)
    }
}
