//! The committee seed no leader can grind (rule R1).
//!
//! Each validator holds a hash onion: a secret `c_0`, its chain `c_i = H(c_{i-1})` and the
//! outer layer `c_L` ([`ONION_LAYERS`] deep). The ledger keeps the layer each registered
//! validator showed last (its *head*, a [`OnionRecord`]); nobody but the validator knows the
//! layer beneath, and exactly one value hashes to the head, so what a validator may reveal
//! next is fixed in advance and known only to it.
//!
//! R1, on the global shard, for a block whose proposer is a registered validator:
//! - if the ledger holds no head for it, the block's `reveal` field is its onion's outer
//!   layer (a commitment; it changes no seed);
//! - else, if it has not shown a layer this epoch, `reveal` is the layer beneath its head:
//!   `H(reveal) = head`. The head becomes `reveal`, and the epoch's mix becomes
//!   `H(mix || reveal)`;
//! - else `reveal` is zero. Anything else makes the block invalid.
//!
//! Blocks of account shards, and of proposers outside the registry, carry zero.
//!
//! The last block of global epoch `e` draws the committees of epoch `e + 1` from
//! `H(mix_e || seed_e || e + 1)` ([`crate::committee::EpochSchedule::next_seed`]), where `seed_e` is the
//! seed that drew epoch `e`. So a leader chooses nothing inside the seed: its block's reveal is
//! determined, the block's other contents do not enter the seed, and its one choice is to
//! propose or not. The bound: the seed of epoch `e + 1` can be steered only by validators
//! that lead views after the last honest reveal of epoch `e` and have not revealed yet; each
//! can withhold (its view times out, and it cannot propose again in that epoch without
//! revealing), so `b` such Byzantine leaders choose among at most `2^b` seeds, paying a
//! timeout for every bit. An honest reveal made after theirs makes the seed unpredictable to
//! them again.

use crate::exec::BlockInput;
use crate::overlay::Overlay;
use crate::records::{StateKey, ValidatorSet};
use crate::{BlockError, ShardLedger, StateError, StateView};
use starling_types::{Hash, PublicKey, ShardId};

/// Layers of a validator's onion: one is shown per epoch in which it proposes a global block,
/// so an onion lasts this many epochs.
pub const ONION_LAYERS: u64 = 1 << 16;

/// Layers between two kept checkpoints of an [`Onion`].
const CHECKPOINT_EVERY: u64 = 256;

/// One layer of the onion over the one beneath.
pub fn onion_layer(beneath: &Hash) -> Hash {
    Hash::of(&[b"starling/onion/v1", &beneath.0])
}

/// A validator's own onion: the layers it will reveal, derived from a secret (its consensus
/// key), kept as one checkpoint every `CHECKPOINT_EVERY` layers (8 KiB).
#[derive(Clone)]
pub struct Onion {
    /// `checkpoints[m] = c_{m * CHECKPOINT_EVERY}`.
    checkpoints: Vec<Hash>,
    outer: Hash,
}

impl std::fmt::Debug for Onion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Onion")
            .field("outer", &self.outer)
            .finish_non_exhaustive()
    }
}

impl Onion {
    /// The onion of a validator whose secret is `secret` (its consensus secret key: the onion
    /// is as secret as the key, and the node can rebuild it after a restart).
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut layer = Hash::of(&[b"starling/onion-core/v1", secret]);
        let mut checkpoints = Vec::with_capacity((ONION_LAYERS / CHECKPOINT_EVERY) as usize + 1);
        for i in 0..ONION_LAYERS {
            if i % CHECKPOINT_EVERY == 0 {
                checkpoints.push(layer);
            }
            layer = onion_layer(&layer);
        }
        Self {
            checkpoints,
            outer: layer,
        }
    }

    /// The outer layer `c_L`: what the validator's first global block commits to.
    pub fn commitment(&self) -> Hash {
        self.outer
    }

    /// Layer `c_i`.
    fn layer(&self, i: u64) -> Hash {
        let Some(start) = self.checkpoints.get((i / CHECKPOINT_EVERY) as usize) else {
            return self.outer;
        };
        let mut layer = *start;
        for _ in 0..i % CHECKPOINT_EVERY {
            layer = onion_layer(&layer);
        }
        layer
    }

    /// The layer beneath `head` after `shown` reveals: `c_{L - shown - 1}`, if `head` is this
    /// onion's layer `c_{L - shown}` and one is left.
    pub fn beneath(&self, head: &Hash, shown: u64) -> Option<Hash> {
        let index = ONION_LAYERS.checked_sub(shown)?.checked_sub(1)?;
        let reveal = self.layer(index);
        (onion_layer(&reveal) == *head).then_some(reveal)
    }
}

/// What the ledger knows of one validator's onion (global shard).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OnionRecord {
    /// The layer shown last (the commitment until the first reveal).
    pub head: Hash,
    /// Reveals made so far.
    pub shown: u64,
    /// The last epoch in which it committed or revealed.
    pub epoch: u64,
}

impl starling_types::Encode for OnionRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        self.head.encode(out);
        starling_types::codec::put::u64(out, self.shown);
        starling_types::codec::put::u64(out, self.epoch);
    }
}

impl starling_types::Decode for OnionRecord {
    fn decode(
        r: &mut starling_types::codec::Reader<'_>,
    ) -> Result<Self, starling_types::DecodeError> {
        Ok(OnionRecord {
            head: Hash::decode(r)?,
            shown: r.u64()?,
            epoch: r.u64()?,
        })
    }
}

/// The running mix of one global epoch's reveals.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MixRecord {
    pub epoch: u64,
    pub mix: Hash,
}

impl starling_types::Encode for MixRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        starling_types::codec::put::u64(out, self.epoch);
        self.mix.encode(out);
    }
}

impl starling_types::Decode for MixRecord {
    fn decode(
        r: &mut starling_types::codec::Reader<'_>,
    ) -> Result<Self, starling_types::DecodeError> {
        Ok(MixRecord {
            epoch: r.u64()?,
            mix: Hash::decode(r)?,
        })
    }
}

/// What rule R1 requires of a global block's `reveal` field, given its proposer's record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RevealDue {
    /// Zero: the proposer is not a registered validator, or has shown a layer this epoch (or
    /// its onion is used up).
    Nothing,
    /// Its onion's outer layer.
    Commit,
    /// The layer beneath `head`, its `shown + 1`-th reveal.
    Reveal { head: Hash, shown: u64 },
}

impl RevealDue {
    /// What a block of `epoch` by a validator with `record` (`None`: not yet committed) owes.
    pub fn of(registered: bool, record: Option<&OnionRecord>, epoch: u64) -> Self {
        match record {
            _ if !registered => RevealDue::Nothing,
            None => RevealDue::Commit,
            Some(r) if r.epoch < epoch && r.shown < ONION_LAYERS => RevealDue::Reveal {
                head: r.head,
                shown: r.shown,
            },
            Some(_) => RevealDue::Nothing,
        }
    }

    /// The value `onion`'s owner must put in its block.
    pub fn value(&self, onion: &Onion) -> Option<Hash> {
        match self {
            RevealDue::Nothing => Some(Hash::ZERO),
            RevealDue::Commit => Some(onion.commitment()),
            RevealDue::Reveal { head, shown } => onion.beneath(head, *shown),
        }
    }
}

impl ShardLedger {
    /// What rule R1 asks of the `reveal` of a block at `height` by `proposer`, in the state
    /// after its parent (`view`). Always [`RevealDue::Nothing`] off the global shard.
    pub fn reveal_due<V: StateView + ?Sized>(
        &self,
        view: &V,
        proposer: &PublicKey,
        height: u64,
    ) -> Result<RevealDue, StateError> {
        self.reveal_due_in(&Overlay::new(view), proposer, height)
    }

    fn reveal_due_in<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        proposer: &PublicKey,
        height: u64,
    ) -> Result<RevealDue, StateError> {
        if self.shard != ShardId::GLOBAL {
            return Ok(RevealDue::Nothing);
        }
        let set: ValidatorSet = st.get(StateKey::Validators)?.unwrap_or_default();
        let registered = set.validators.iter().any(|v| v.consensus_key == *proposer);
        let record: Option<OnionRecord> = st.get(StateKey::Onion(proposer))?;
        Ok(RevealDue::of(
            registered,
            record.as_ref(),
            self.epochs().epoch_of(height),
        ))
    }

    /// Rule R1 for one block: checks its `reveal` and records it.
    pub(crate) fn apply_reveal<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        input: &BlockInput,
    ) -> Result<(), BlockError> {
        let state = |e: StateError| BlockError::State(e.to_string());
        let epoch = self.epochs().epoch_of(input.height);
        match self
            .reveal_due_in(st, &input.proposer, input.height)
            .map_err(state)?
        {
            RevealDue::Nothing if input.reveal == Hash::ZERO => Ok(()),
            RevealDue::Commit if input.reveal != Hash::ZERO => {
                st.put(
                    StateKey::Onion(&input.proposer),
                    &OnionRecord {
                        head: input.reveal,
                        shown: 0,
                        epoch,
                    },
                );
                Ok(())
            }
            RevealDue::Reveal { head, shown } if onion_layer(&input.reveal) == head => {
                st.put(
                    StateKey::Onion(&input.proposer),
                    &OnionRecord {
                        head: input.reveal,
                        shown: shown + 1,
                        epoch,
                    },
                );
                let before = st
                    .get::<MixRecord>(StateKey::EpochMix)
                    .map_err(state)?
                    .filter(|m| m.epoch == epoch)
                    .map_or(Hash::ZERO, |m| m.mix);
                st.put(
                    StateKey::EpochMix,
                    &MixRecord {
                        epoch,
                        mix: mix_in(&before, &input.reveal),
                    },
                );
                Ok(())
            }
            _ => Err(BlockError::BadReveal),
        }
    }

    /// The mix of `epoch`'s reveals so far (zero if none).
    pub(crate) fn epoch_mix<V: StateView + ?Sized>(
        st: &Overlay<'_, V>,
        epoch: u64,
    ) -> Result<Hash, StateError> {
        Ok(st
            .get::<MixRecord>(StateKey::EpochMix)?
            .filter(|m| m.epoch == epoch)
            .map_or(Hash::ZERO, |m| m.mix))
    }
}

/// The mix after one more reveal.
pub fn mix_in(mix: &Hash, reveal: &Hash) -> Hash {
    Hash::of(&[b"starling/epoch-mix/v1", &mix.0, &reveal.0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reveal_is_the_unique_layer_beneath_the_last() {
        let onion = Onion::from_secret(b"validator secret");
        let mut head = onion.commitment();
        for shown in 0..600 {
            let reveal = onion.beneath(&head, shown).expect("a layer is left");
            assert_eq!(onion_layer(&reveal), head);
            head = reveal;
        }
        // A head this onion never had, or a wrong count, gives nothing.
        assert_eq!(onion.beneath(&Hash::of(&[b"other"]), 600), None);
        assert_eq!(onion.beneath(&head, 599), None);
        // Another secret, another onion.
        let other = Onion::from_secret(b"another secret");
        assert_ne!(other.commitment(), onion.commitment());
        assert_eq!(other.beneath(&onion.commitment(), 0), None);
    }

    #[test]
    fn the_last_layer_is_the_core_and_then_nothing_is_left() {
        let onion = Onion::from_secret(b"s");
        let core = onion.layer(0);
        let above = onion_layer(&core);
        assert_eq!(onion.beneath(&above, ONION_LAYERS - 1), Some(core));
        assert_eq!(onion.beneath(&core, ONION_LAYERS), None);
        assert_eq!(onion.beneath(&core, u64::MAX), None);
    }

    #[test]
    fn what_is_due_follows_the_record() {
        let r = OnionRecord {
            head: Hash::of(&[b"h"]),
            shown: 3,
            epoch: 7,
        };
        assert_eq!(RevealDue::of(false, None, 9), RevealDue::Nothing);
        assert_eq!(RevealDue::of(true, None, 9), RevealDue::Commit);
        assert_eq!(RevealDue::of(true, Some(&r), 7), RevealDue::Nothing);
        assert_eq!(
            RevealDue::of(true, Some(&r), 8),
            RevealDue::Reveal {
                head: r.head,
                shown: 3
            }
        );
        let spent = OnionRecord {
            shown: ONION_LAYERS,
            ..r
        };
        assert_eq!(RevealDue::of(true, Some(&spent), 8), RevealDue::Nothing);
    }
}
