//! Committees per epoch (rule C1) and the epoch schedule (rule C2).
//!
//! C1: for epoch `e` with seed `s` (from the global shard's finalized chain), the committee of
//! shard `k` is the `size` validators with the highest
//! `blake3("starling/committee/v1" || s || e || k || validator)`, in that order. Each shard
//! draws independently (rendezvous hashing), so a validator may serve several shards; every
//! committee is uniform over the registry, and nobody can choose their shard without
//! grinding keys against a seed that is fixed only after registration closes.
//!
//! C2: epochs are `length` blocks of the global shard. A change to the validator set recorded
//! in epoch `e` takes effect in the committees of epoch `e + 1`, never within an epoch.

use starling_types::{Encode, Hash, PublicKey, ShardId};
use std::collections::BTreeMap;

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

/// Epoch boundaries on the global shard (C2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochSchedule {
    /// Blocks per epoch (at least 1).
    pub length: u64,
}

impl EpochSchedule {
    /// The epoch a global-shard height belongs to; height 0 (genesis) is in epoch 0.
    pub fn epoch_of(&self, height: u64) -> u64 {
        height.saturating_sub(1) / self.length.max(1)
    }

    /// The last height of `epoch`: its final block fixes the next epoch's seed and set.
    pub fn last_height(&self, epoch: u64) -> u64 {
        (epoch + 1).saturating_mul(self.length.max(1))
    }

    /// The seed of `epoch + 1`, from the id of `epoch`'s last finalized global block.
    ///
    /// That block's proposer can nudge this seed (by choosing what the block contains); a
    /// threshold signature over the round, which no single validator controls, replaces it
    /// once consensus runs with a threshold scheme.
    pub fn next_seed(last_block_id: &Hash, epoch: u64) -> Hash {
        Hash::of(&[
            b"starling/epoch-seed/v1",
            &last_block_id.0,
            &(epoch + 1).to_be_bytes(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                s.epoch_of(1),
                s.epoch_of(100),
                s.epoch_of(101)
            ),
            (0, 0, 0, 1)
        );
        assert_eq!(s.last_height(0), 100);
        assert_eq!(s.epoch_of(s.last_height(4)), 4);
        assert_eq!(s.epoch_of(s.last_height(4) + 1), 5);
        assert_ne!(
            EpochSchedule::next_seed(&Hash([1; 32]), 0),
            EpochSchedule::next_seed(&Hash([1; 32]), 1)
        );
    }
}
