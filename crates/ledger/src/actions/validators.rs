//! Validator rules (V1, V2): bonding into and retiring from the registry.

use super::Apply;
use crate::exec::{add_to_pool, take_from_pool, Failure};
use crate::records::{decode_u128, Pool, StateKey};
use crate::{validate, ShardLedger, StateError, StateView, TxError};
use starling_types::receipt::Payload;
use starling_types::{Asset, PublicKey, ShardId, Signature};

impl ShardLedger {
    /// V1: the bond is locked here (in the Bonds pool) and the registry on the global
    /// shard learns of the validator by message.
    pub(super) fn register_validator<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        consensus_key: &PublicKey,
        address: &str,
        proof: &Signature,
    ) -> Result<(), Failure> {
        let (st, ctx, me, acct) = (&mut *a.st, &mut *a.ctx, &a.body.account, &mut *a.acct);
        validate::validator(&self.params.chain_id, me, consensus_key, address, proof)?;
        if st.exists(StateKey::Bond(me))? {
            return Err(TxError::AlreadyValidator.into());
        }
        let bond = self.params.validator_bond;
        acct.debit(Asset::Spend, bond)?;
        st.put_raw(StateKey::Bond(me), bond.to_be_bytes().to_vec());
        add_to_pool(st, Pool::Bonds, bond)?;
        self.send(
            st,
            ctx,
            ShardId::GLOBAL,
            Payload::ValidatorJoin {
                account: *me,
                consensus_key: *consensus_key,
                address: address.to_owned(),
            },
        )?;
        Ok(())
    }

    /// V2: leaving returns the bond and removes the validator from the registry; it
    /// keeps its seats until the committees drawn after the removal take over (E1).
    pub(super) fn retire_validator<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
    ) -> Result<(), Failure> {
        let (st, ctx, me, acct) = (&mut *a.st, &mut *a.ctx, &a.body.account, &mut *a.acct);
        let Some(raw) = st.get_raw(&StateKey::Bond(me).hash())? else {
            return Err(TxError::NotValidator.into());
        };
        let bond = decode_u128(&raw).map_err(|e| StateError(format!("corrupt bond: {e}")))?;
        st.delete(StateKey::Bond(me));
        take_from_pool(st, Pool::Bonds, bond)?;
        let b = &mut acct.balances[Asset::Spend.index()];
        *b = b.saturating_add(bond);
        self.send(
            st,
            ctx,
            ShardId::GLOBAL,
            Payload::ValidatorLeave { account: *me },
        )?;
        Ok(())
    }
}
