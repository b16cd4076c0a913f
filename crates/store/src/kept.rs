//! What the store keeps beside the chain (see the layout in the crate docs): evidence of
//! consensus faults, and committee hand-offs, which let a light client follow a shard's
//! committees from genesis.

use crate::{ChainStore, StoreError};
use starling_state::Proof;
use starling_types::codec::{Decode as _, Encode as _, Reader};
use starling_types::Hash;

/// A committee hand-off: the encoded `EpochCommittee(e)` record (if the state holds one) and
/// its proof under the state root of the last block of epoch `e - 1`.
#[derive(Clone, Debug)]
pub struct Handoff {
    pub value: Option<Vec<u8>>,
    pub proof: Proof,
}

/// The key of epoch `epoch`'s hand-off part `kind` (0: the proven committee, 1: the
/// certificate).
fn handoff_key(epoch: u64, kind: u8) -> [u8; 9] {
    let mut k = [kind; 9];
    k[..8].copy_from_slice(&epoch.to_be_bytes());
    k
}

impl ChainStore {
    /// Records evidence of a consensus fault (e.g. a validator's conflicting votes), durably,
    /// for governance to act on. Returns its sequence number.
    pub fn record_evidence(&mut self, evidence: &[u8]) -> Result<u64, StoreError> {
        let mut wtx = self.env.write_txn()?;
        let seq = self.t.evidence.len(&wtx)?;
        self.t
            .evidence
            .put(&mut wtx, &seq.to_be_bytes(), evidence)?;
        wtx.commit()?;
        Ok(seq)
    }

    /// The recorded consensus faults, oldest first.
    pub fn evidence(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let rtx = self.env.read_txn()?;
        let mut out = Vec::new();
        for row in self.t.evidence.iter(&rtx)? {
            out.push(row?.1.to_vec());
        }
        Ok(out)
    }

    /// Records the hand-off the head hands over if it closes an epoch and it is not recorded
    /// yet (after a crash between the block and its hand-off, on open).
    pub(crate) fn ensure_handoff(&mut self) -> Result<(), StoreError> {
        match self.ledger.epochs().closes(self.head.height) {
            Some(closed) if self.handoff(closed + 1)?.is_none() => self.record_handoff(closed + 1),
            _ => Ok(()),
        }
    }

    /// Records the hand-off of epoch `epoch`'s committee: its record and proof as of the head,
    /// which must be the last block of epoch `epoch - 1`.
    fn record_handoff(&mut self, epoch: u64) -> Result<(), StoreError> {
        let key = starling_ledger::records::StateKey::EpochCommittee(epoch).hash();
        let (value, proof) = self.prove(&key)?;
        let mut bytes = Vec::new();
        starling_types::codec::put::option(&mut bytes, &value, |o, v| {
            starling_types::codec::put::bytes32(o, v)
        });
        proof.encode(&mut bytes);
        let mut wtx = self.env.write_txn()?;
        self.t
            .handoffs
            .put(&mut wtx, &handoff_key(epoch, 0), &bytes)?;
        wtx.commit()?;
        Ok(())
    }

    /// The hand-off of epoch `epoch`'s committee: `EpochCommittee(epoch)` (if the state holds
    /// one) with its proof under the state root of the last block of epoch `epoch - 1`.
    pub fn handoff(&self, epoch: u64) -> Result<Option<Handoff>, StoreError> {
        let rtx = self.env.read_txn()?;
        let Some(bytes) = self.t.handoffs.get(&rtx, &handoff_key(epoch, 0))? else {
            return Ok(None);
        };
        let mut r = Reader::new(bytes);
        let value = r.option("hand-off value", |r| {
            r.bytes32("hand-off value", usize::MAX).map(<[u8]>::to_vec)
        })?;
        let proof = Proof::decode(&mut r)?;
        r.finish()?;
        Ok(Some(Handoff { value, proof }))
    }

    /// Keeps the finalization certificate of block `id`, the last of epoch `epoch - 1` (what
    /// a follower verified; a validator's marshal keeps its own).
    pub fn record_handoff_certificate(
        &mut self,
        epoch: u64,
        id: &Hash,
        certificate: &[u8],
    ) -> Result<(), StoreError> {
        let mut bytes = id.0.to_vec();
        bytes.extend_from_slice(certificate);
        let mut wtx = self.env.write_txn()?;
        self.t
            .handoffs
            .put(&mut wtx, &handoff_key(epoch, 1), &bytes)?;
        wtx.commit()?;
        Ok(())
    }

    /// The certificate kept by [`Self::record_handoff_certificate`]: the block id it is for
    /// and the certificate.
    pub fn handoff_certificate(&self, epoch: u64) -> Result<Option<(Hash, Vec<u8>)>, StoreError> {
        let rtx = self.env.read_txn()?;
        let Some(bytes) = self.t.handoffs.get(&rtx, &handoff_key(epoch, 1))? else {
            return Ok(None);
        };
        if bytes.len() < 32 {
            return Err(StoreError::Corrupt(
                "a hand-off certificate without its block id".into(),
            ));
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&bytes[..32]);
        Ok(Some((Hash(id), bytes[32..].to_vec())))
    }
}
