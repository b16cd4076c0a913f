//! Committees per epoch (rule C1) and the epoch schedule (rule C2).
//!
//! C1: for epoch `e` with seed `s` (from the global shard's finalized chain), the committee of
//! shard `k` is the `size` validators with the highest
//! `blake3("starling/committee/v1" || s || e || k || validator)`, in that order. Each shard
//! draws independently (rendezvous hashing), so a validator may serve several shards; every
//! committee is uniform over the registry, and nobody can choose their shard without
//! grinding keys against a seed that is fixed only after registration closes.
//!
//! C2 (rules E1, E2 in the ledger): every shard counts consensus epochs of `epoch_blocks` of its
//! own blocks. The last block of global-shard epoch `e` draws every shard's committee for global
//! epoch `e + 1` from the registry as it stands then (E1) and sends each account shard its own
//! by message; the last block of any shard's epoch `e` fixes the committee of its epoch `e + 1`
//! as the newest one it has received (E2). So a change to the validator set takes effect at an
//! epoch boundary, never within an epoch.

use crate::exec::{BlockCtx, BlockInput};
use crate::overlay::Overlay;
use crate::records::{CommitteeRecord, StateKey, ValidatorSet};
use crate::{Event, ShardLedger, StateError, StateView};
use starling_types::receipt::Payload;
use starling_types::{Encode, Hash, PublicKey, ShardId};
use std::collections::BTreeMap;

impl ShardLedger {
    /// The epoch schedule of this network.
    pub fn epochs(&self) -> EpochSchedule {
        EpochSchedule {
            length: self.params.epoch_blocks,
        }
    }

    /// Rules E1 and E2, at the end of a block that closes an epoch of this shard.
    pub(crate) fn close_epoch<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        input: &BlockInput,
    ) -> Result<(), StateError> {
        let Some(epoch) = self.epochs().closes(input.height) else {
            return Ok(());
        };
        // E1: the global shard draws the next epoch's committees from its registry (an empty
        // registry draws nothing: the committees in place stay).
        // The seed E1 draws this epoch's committees with (none: the registry is empty).
        let mut drawn_seed = None;
        if self.shard == ShardId::GLOBAL {
            let set: ValidatorSet = st.get(StateKey::Validators)?.unwrap_or_default();
            let keys: Vec<PublicKey> = set.validators.iter().map(|v| v.consensus_key).collect();
            if !keys.is_empty() {
                let next = epoch + 1;
                // R1: from the reveals of the closing epoch and the seed before it, never
                // from anything a proposer chooses.
                let mix = Self::epoch_mix(st, epoch)?;
                let before = st
                    .get::<CommitteeRecord>(StateKey::Committee)?
                    .map_or(Hash::ZERO, |c| c.seed);
                let seed = EpochSchedule::next_seed(&mix, &before, epoch);
                let shards = std::iter::once(ShardId::GLOBAL)
                    .chain(self.params.shard_map.ranges().iter().map(|(id, _)| *id));
                let drawn = draw(
                    &seed,
                    next,
                    shards,
                    &keys,
                    usize::from(self.params.committee_size),
                );
                for (shard, members) in drawn {
                    if shard == ShardId::GLOBAL {
                        st.put(
                            StateKey::Committee,
                            &CommitteeRecord {
                                epoch: next,
                                seed,
                                members,
                            },
                        );
                    } else {
                        self.send(
                            st,
                            ctx,
                            shard,
                            Payload::Committee {
                                epoch: next,
                                seed,
                                members,
                            },
                        )?;
                    }
                }
                ctx.events
                    .push(Event::CommitteesDrawn { epoch: next, seed });
                drawn_seed = Some(seed);
            }
        }
        if self.shard == ShardId::GLOBAL {
            self.start_charge_period(st, ctx, epoch + 1, drawn_seed)?;
        }
        // E2: the next epoch of this shard runs with the newest committee it holds.
        let latest = match st.get::<CommitteeRecord>(StateKey::Committee)? {
            Some(c) => Some(c),
            None => st.get::<CommitteeRecord>(StateKey::EpochCommittee(epoch))?,
        };
        if let Some(c) = latest {
            st.put(StateKey::EpochCommittee(epoch + 1), &c);
        }
        Ok(())
    }
}

/// Draws every shard's committee for one epoch (C1). `validators` may be in any order;
/// duplicates count once. Committees have `min(size, validators)` members.
pub fn draw(
    seed: &Hash,
    epoch: u64,
    shards: impl IntoIterator<Item = ShardId>,
    validators: &[PublicKey],
    size: usize,
) -> BTreeMap<ShardId, Vec<PublicKey>> {
    let mut unique: Vec<PublicKey> = validators.to_vec();
    unique.sort();
    unique.dedup();
    shards
        .into_iter()
        .map(|shard| {
            let mut scored: Vec<(Hash, PublicKey)> = unique
                .iter()
                .map(|v| {
                    let score = Hash::of(&[
                        b"starling/committee/v1",
                        &seed.0,
                        &epoch.to_be_bytes(),
                        &shard.to_bytes(),
                        &v.encoded(),
                    ]);
                    (score, *v)
                })
                .collect();
            scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
            (
                shard,
                scored.into_iter().take(size).map(|(_, v)| v).collect(),
            )
        })
        .collect()
}

/// Consensus epochs of one shard (C2): epoch `e` is the shard's heights `e * length ..
/// (e + 1) * length - 1`, so genesis (height 0) is in epoch 0. The same numbering as the
/// consensus engine's fixed epocher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochSchedule {
    /// Blocks per epoch (at least 2).
    pub length: u64,
}

impl EpochSchedule {
    /// The epoch a height belongs to.
    pub fn epoch_of(&self, height: u64) -> u64 {
        height / self.length.max(2)
    }

    /// The last height of `epoch`: it fixes the next epoch's committee.
    pub fn last_height(&self, epoch: u64) -> u64 {
        (epoch + 1).saturating_mul(self.length.max(2)) - 1
    }

    /// The epoch `height` closes, if it is the last height of one.
    pub fn closes(&self, height: u64) -> Option<u64> {
        let e = self.epoch_of(height);
        (self.last_height(e) == height).then_some(e)
    }

    /// The seed of global epoch `epoch + 1`, drawn by the last block of global epoch `epoch`
    /// from the mix of that epoch's onion reveals and the seed of epoch `epoch` (rule R1, see
    /// [`crate::randomness`]): no block's contents, so no leader can grind it.
    pub fn next_seed(mix: &Hash, seed: &Hash, epoch: u64) -> Hash {
        Hash::of(&[
            b"starling/epoch-seed/v2",
            &mix.0,
            &seed.0,
            &(epoch + 1).to_be_bytes(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_types::Federation;

    /// Rule M8: committees come only from the global shard, and only to account shards.
    #[test]
    fn only_the_global_shard_assigns_committees() {
        let params = two_shards("m8");
        let payload = Payload::Committee {
            epoch: 3,
            seed: Hash::ZERO,
            members: vals(2),
        };
        let outcome = |shard: u16, source: u16| {
            let ledger = ShardLedger::new(params.clone(), ShardId(shard));
            let state = starling_state::MemState::new(4);
            let mut st = Overlay::new(&state);
            let mut ctx = BlockCtx::new(1, 1);
            let r = ledger.apply_payload(&mut st, &mut ctx, ShardId(source), &payload);
            (
                r.is_ok(),
                st.get::<CommitteeRecord>(StateKey::Committee)
                    .ok()
                    .flatten(),
            )
        };
        let (ok, rec) = outcome(1, 0);
        assert!(ok);
        assert_eq!(rec.map(|r| r.epoch), Some(3));
        // From another account shard, or to the global shard: rejected, nothing written.
        assert_eq!(outcome(1, 2), (false, None));
        assert_eq!(outcome(0, 1), (false, None));
    }

    /// Rule M9: an account shard keeps the newest federation, and only from the global
    /// shard.
    #[test]
    fn only_the_global_shard_sends_the_federation_and_the_newest_is_kept() {
        let params = two_shards("m9");
        let ledger = ShardLedger::new(params.clone(), ShardId(1));
        let state = starling_state::MemState::new(4);
        let mut st = Overlay::new(&state);
        let mut ctx = BlockCtx::new(1, 1);
        let version = |v: u64| {
            let mut f = params.genesis_federation();
            f.version = v;
            f.period = v;
            Payload::Federation(f)
        };
        let held = |st: &Overlay<'_, _>| {
            st.get::<Federation>(StateKey::Federation)
                .ok()
                .flatten()
                .map(|f| f.version)
        };
        // From another account shard: refused, nothing kept.
        assert!(ledger
            .apply_payload(&mut st, &mut ctx, ShardId(2), &version(3))
            .is_err());
        assert_eq!(held(&st), None);
        assert!(ledger
            .apply_payload(&mut st, &mut ctx, ShardId::GLOBAL, &version(3))
            .is_ok());
        assert_eq!(held(&st), Some(3));
        // One naming other foundations, or where none takes charges: refused.
        let mut other = params.genesis_federation();
        other.version = 7;
        other.foundations[0].treasury = PublicKey::ed25519([99; 32]);
        let mut none = params.genesis_federation();
        none.version = 7;
        for f in &mut none.foundations {
            f.status = starling_types::FoundationStatus::Receivership;
        }
        for bad in [other, none] {
            assert!(ledger
                .apply_payload(
                    &mut st,
                    &mut ctx,
                    ShardId::GLOBAL,
                    &Payload::Federation(bad)
                )
                .is_err());
            assert_eq!(held(&st), Some(3));
        }
        // An older one (a replay) changes nothing.
        assert!(ledger
            .apply_payload(&mut st, &mut ctx, ShardId::GLOBAL, &version(2))
            .is_ok());
        assert_eq!(held(&st), Some(3));
        // The global shard takes none.
        let global = ShardLedger::new(params.clone(), ShardId::GLOBAL);
        assert!(global
            .apply_payload(&mut st, &mut ctx, ShardId::GLOBAL, &version(9))
            .is_err());
    }

    /// Devnet parameters with two account shards and three foundations.
    fn two_shards(chain: &str) -> crate::LedgerParams {
        let foundations = (0..3u8).map(|i| PublicKey::ed25519([i + 1; 32])).collect();
        crate::LedgerParams::devnet(
            starling_types::ChainId::new(chain).unwrap_or_else(|_| unreachable!()),
            2,
            foundations,
        )
        .unwrap_or_else(|_| unreachable!())
    }

    fn vals(n: u8) -> Vec<PublicKey> {
        (0..n).map(|i| PublicKey::ed25519([i; 32])).collect()
    }

    fn shards(n: u16) -> Vec<ShardId> {
        (0..n).map(ShardId).collect()
    }

    #[test]
    fn committees_are_deterministic_distinct_and_sized() {
        let seed = Hash([7; 32]);
        let v = vals(20);
        let a = draw(&seed, 3, shards(5), &v, 7);
        let mut shuffled = v.clone();
        shuffled.reverse();
        shuffled.push(v[0]);
        assert_eq!(a, draw(&seed, 3, shards(5), &shuffled, 7));
        for c in a.values() {
            assert_eq!(c.len(), 7);
            let mut d = c.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), 7);
        }
        assert_eq!(draw(&seed, 3, shards(2), &vals(3), 7)[&ShardId(1)].len(), 3);
    }

    #[test]
    fn new_seed_or_epoch_reshuffles() {
        let v = vals(30);
        let a = draw(&Hash([1; 32]), 0, shards(3), &v, 10);
        assert_ne!(a, draw(&Hash([2; 32]), 0, shards(3), &v, 10));
        assert_ne!(a, draw(&Hash([1; 32]), 1, shards(3), &v, 10));
        // Shards draw independently.
        assert_ne!(a[&ShardId(0)], a[&ShardId(1)]);
    }

    #[test]
    fn load_is_spread_evenly() {
        // 100 validators, 20 shards of 10: each validator expects 2 seats.
        let v: Vec<PublicKey> = (0..100u32)
            .map(|i| {
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&i.to_be_bytes());
                PublicKey::ed25519(b)
            })
            .collect();
        let mut seats: BTreeMap<PublicKey, u32> = BTreeMap::new();
        for epoch in 0..50 {
            for c in draw(&Hash([9; 32]), epoch, shards(20), &v, 10).values() {
                for m in c {
                    *seats.entry(*m).or_default() += 1;
                }
            }
        }
        // 50 epochs * 2 expected seats = 100 each; binomial sd ~ 9.7.
        let (min, max) = (
            seats.values().min().copied().unwrap_or(0),
            seats.values().max().copied().unwrap_or(0),
        );
        assert_eq!(seats.len(), 100);
        assert!(min >= 60 && max <= 140, "seats between {min} and {max}");
    }

    #[test]
    fn epoch_schedule() {
        let s = EpochSchedule { length: 100 };
        assert_eq!(
            (
                s.epoch_of(0),
                s.epoch_of(99),
                s.epoch_of(100),
                s.epoch_of(199)
            ),
            (0, 0, 1, 1)
        );
        assert_eq!(s.last_height(0), 99);
        assert_eq!(s.closes(99), Some(0));
        assert_eq!(s.closes(100), None);
        assert_eq!(s.closes(0), None);
        assert_eq!(s.epoch_of(s.last_height(4)), 4);
        assert_eq!(s.epoch_of(s.last_height(4) + 1), 5);
        let (a, b) = (Hash([1; 32]), Hash([2; 32]));
        assert_ne!(
            EpochSchedule::next_seed(&a, &b, 0),
            EpochSchedule::next_seed(&a, &b, 1)
        );
        // The mix and the seed before are not interchangeable.
        assert_ne!(
            EpochSchedule::next_seed(&a, &b, 0),
            EpochSchedule::next_seed(&b, &a, 0)
        );
    }
}
