//! Fees: the per-shard EIP-1559 base fee and the split of every base fee.
//!
//! Rule F1 (base fee): with `target = block_gas_limit / 2`,
//! `delta = base_fee * |gas_used - target| / target / 8`; above target the fee rises by
//! `max(delta, 1)`, below it falls by `delta`, never under `min_base_fee`.
//!
//! Rule F2 (split): the base fee part of a transaction's fee is split in basis points into
//! burn, the sender's foundation, and the Operations, Venture and Rewards pools; rounding dust
//! goes to Operations. Tips go to the block proposer, who never receives base fees.

use crate::exec::{add_to_pool, BlockCtx};
use crate::overlay::Overlay;
use crate::records::Pool;
use crate::{ShardLedger, StateError, StateView};
use starling_types::codec::{put, Decode, DecodeError, Encode, Reader};
use starling_types::{AccountId, Asset};

/// Basis points (1/10,000) of the base fee for each destination. They sum to 10,000.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FeeSplit {
    pub burn_bps: u16,
    pub foundation_bps: u16,
    pub operations_bps: u16,
    pub venture_bps: u16,
    pub rewards_bps: u16,
}

impl FeeSplit {
    pub fn is_valid(&self) -> bool {
        let sum = self.burn_bps as u32
            + self.foundation_bps as u32
            + self.operations_bps as u32
            + self.venture_bps as u32
            + self.rewards_bps as u32;
        sum == 10_000
    }

    /// Splits `fee` (F2).
    pub fn split(&self, fee: u128) -> SplitAmounts {
        let part = |bps: u16| fee * bps as u128 / 10_000;
        let burn = part(self.burn_bps);
        let foundation = part(self.foundation_bps);
        let venture = part(self.venture_bps);
        let rewards = part(self.rewards_bps);
        // Dust to Operations: whatever the floors left over.
        let operations = fee - burn - foundation - venture - rewards;
        SplitAmounts {
            burn,
            foundation,
            operations,
            venture,
            rewards,
        }
    }
}

impl Default for FeeSplit {
    fn default() -> Self {
        Self {
            burn_bps: 2_000,
            foundation_bps: 2_000,
            operations_bps: 3_000,
            venture_bps: 1_500,
            rewards_bps: 1_500,
        }
    }
}

impl Encode for FeeSplit {
    fn encode(&self, out: &mut Vec<u8>) {
        for v in [
            self.burn_bps,
            self.foundation_bps,
            self.operations_bps,
            self.venture_bps,
            self.rewards_bps,
        ] {
            put::u16(out, v);
        }
    }
}

impl Decode for FeeSplit {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let s = FeeSplit {
            burn_bps: r.u16()?,
            foundation_bps: r.u16()?,
            operations_bps: r.u16()?,
            venture_bps: r.u16()?,
            rewards_bps: r.u16()?,
        };
        if !s.is_valid() {
            return Err(DecodeError::InvalidValue(
                "fee split (must sum to 10000 bps)",
            ));
        }
        Ok(s)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SplitAmounts {
    pub burn: u128,
    pub foundation: u128,
    pub operations: u128,
    pub venture: u128,
    pub rewards: u128,
}

impl SplitAmounts {
    pub fn add(&mut self, o: &SplitAmounts) {
        self.burn += o.burn;
        self.foundation += o.foundation;
        self.operations += o.operations;
        self.venture += o.venture;
        self.rewards += o.rewards;
    }
}

/// The base fee of the next block (F1).
pub fn next_base_fee(base_fee: u64, gas_used: u64, gas_target: u64, min_base_fee: u64) -> u64 {
    if gas_target == 0 {
        return base_fee.max(min_base_fee);
    }
    let base = base_fee as u128;
    let target = gas_target as u128;
    let used = gas_used as u128;
    let next = if used > target {
        let delta = (base * (used - target) / target / 8).max(1);
        base.saturating_add(delta)
    } else {
        let delta = base * (target - used) / target / 8;
        base - delta
    };
    (next.min(u64::MAX as u128) as u64).max(min_base_fee)
}

impl ShardLedger {
    /// Rule B4: pools and tips are credited once per block.
    pub(crate) fn settle_fees<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        proposer: &AccountId,
    ) -> Result<(), StateError> {
        let f = ctx.fees;
        for (pool, amount) in [
            (Pool::Burned, f.burn),
            (Pool::Operations, f.operations),
            (Pool::Venture, f.venture),
            (Pool::Rewards, f.rewards),
        ] {
            add_to_pool(st, pool, amount)?;
        }
        for (i, amount) in std::mem::take(&mut ctx.foundation_fees) {
            add_to_pool(st, Pool::Foundation(i), amount)?;
        }
        if ctx.tips > 0 {
            let tips = ctx.tips;
            self.credit(st, ctx, proposer, proposer, Asset::Spend, tips)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_vectors() {
        assert_eq!(
            next_base_fee(1_000_000_000, 10_000_000, 5_000_000, 0),
            1_125_000_000
        );
        assert_eq!(next_base_fee(1_000_000_000, 0, 5_000_000, 0), 875_000_000);
        assert_eq!(
            next_base_fee(1_000_000_000, 5_000_001, 5_000_000, 0),
            1_000_000_025
        );
    }

    #[test]
    fn at_target_unchanged_and_small_fees_still_rise() {
        assert_eq!(next_base_fee(777, 5_000_000, 5_000_000, 0), 777);
        assert_eq!(next_base_fee(1, 5_000_001, 5_000_000, 0), 2);
        assert_eq!(next_base_fee(7, 0, 5_000_000, 7), 7);
    }

    #[test]
    fn split_conserves_and_dust_goes_to_operations() {
        let s = FeeSplit::default();
        for fee in [0u128, 1, 7, 9_999, 10_001, 123_456_789] {
            let a = s.split(fee);
            assert_eq!(
                a.burn + a.foundation + a.operations + a.venture + a.rewards,
                fee
            );
        }
        // 4 units: every share floors to 0, so all of it is dust for Operations.
        assert_eq!(s.split(4).operations, 4);
        // 9 units: 1 each for burn, foundation, venture and rewards; the rest to Operations.
        assert_eq!(
            s.split(9),
            SplitAmounts {
                burn: 1,
                foundation: 1,
                operations: 5,
                venture: 1,
                rewards: 1
            }
        );
        assert!(!FeeSplit { burn_bps: 1, ..s }.is_valid());
    }
}
