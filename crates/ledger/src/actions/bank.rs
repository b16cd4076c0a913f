//! Bank rules (K*): transfers.

use super::Apply;
use crate::exec::Failure;
use crate::{ShardLedger, StateView, TxError};
use starling_types::{AccountId, Asset};

impl ShardLedger {
    /// K1: a transfer debits here and credits here or, by message, on the other shard.
    pub(super) fn transfer<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        asset: Asset,
        to: &AccountId,
        amount: u128,
    ) -> Result<(), Failure> {
        let (st, ctx, me, acct) = (&mut *a.st, &mut *a.ctx, &a.body.account, &mut *a.acct);
        if amount == 0 {
            return Err(TxError::InvalidAmount.into());
        }
        acct.debit(asset, amount)?;
        if to == me {
            acct.balances[asset.index()] += amount;
        } else {
            self.credit(st, ctx, me, to, asset, amount)?;
        }
        Ok(())
    }
}
