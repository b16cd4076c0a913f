//! Governance rules: the federation of foundations (rules FD1, FD2 and M9; the federation
//! itself and the assignment are in [`starling_types::federation`]), members' allowances,
//! and offices (OF2 and M15; terms, OF1, are in [`starling_types::offices`]).

use crate::exec::pool_balance;
use crate::exec::{BlockCtx, Failure};
use crate::overlay::Overlay;
use crate::records::{AccountRecord, Pool, StateKey};
use crate::{Event, ShardLedger, StateError, StateView, TxError};
use starling_state::WriteSet;
use starling_types::receipt::Payload;
use starling_types::{
    AccountId, Asset, DecodeError, Encode as _, Federation, Hash, Offices, ShardId,
};

impl ShardLedger {
    /// The federation this shard holds (genesis's until the global shard sends one),
    /// read once per block.
    pub(crate) fn held_federation<'c, V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        ctx: &'c mut BlockCtx,
    ) -> Result<&'c Federation, StateError> {
        let federation = match ctx.federation.take() {
            Some(f) => f,
            None => st
                .get::<Federation>(StateKey::Federation)?
                .unwrap_or_else(|| self.params.genesis_federation()),
        };
        Ok(ctx.federation.insert(federation))
    }

    /// Rule FD1 for `account`, from the federation this shard holds.
    pub(crate) fn charge_of<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        ctx: &mut BlockCtx,
        account: &AccountId,
    ) -> Result<u16, StateError> {
        Ok(self.held_federation(st, ctx)?.charge_of(account))
    }

    /// Rule T6's payers of a base cost, in order: a member's allowance, then a sponsorship;
    /// returns how much they paid (the balance pays the rest, and the tip).
    pub(crate) fn pay_base_cost<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        acct: &mut AccountRecord,
        base_cost: u128,
    ) -> Result<u128, StateError> {
        let from_allowance = self.use_allowance(st, ctx, acct, base_cost)?;
        let from_sponsor = match &mut acct.sponsor {
            Some(s) => {
                let used = s.left.min(base_cost - from_allowance);
                s.left -= used;
                used
            }
            None => 0,
        };
        if acct.sponsor.is_some_and(|s| s.left == 0) {
            acct.sponsor = None;
        }
        Ok(from_allowance + from_sponsor)
    }

    /// The most `acct` can pay in fees in a block at `height`: its SPEND balance, what is
    /// left of a sponsorship, and the fee allowance it would have then (rule T6; the
    /// foundation's treasury is not consulted, so this may over-estimate by what the treasury
    /// lacks). What the mempool admits against.
    pub fn fee_budget(&self, acct: &AccountRecord, height: u64) -> u128 {
        let allowance = match acct.member {
            Some(m) if height.saturating_sub(m.since) < self.params.allowance.period_blocks => {
                self.refilled_allowance(acct, height)
            }
            _ => 0,
        };
        let sponsored = acct.sponsor.map_or(0, |s| s.left);
        acct.balance(Asset::Spend)
            .saturating_add(allowance)
            .saturating_add(sponsored)
    }

    /// A member's allowance at `height`: what it had, refilled per block since, up to the cap.
    fn refilled_allowance(&self, acct: &AccountRecord, height: u64) -> u128 {
        let p = &self.params.allowance;
        let elapsed = height.saturating_sub(acct.allowance_height) as u128;
        acct.allowance
            .saturating_add(elapsed.saturating_mul(p.refill_per_block))
            .min(p.cap)
    }

    /// Refills and spends a verified member's allowance for `allowance.period_blocks` after
    /// it was admitted; the treasury of the foundation that admitted it pays (so a registrar
    /// that admits sybils pays for them). Accounts that are not members have none.
    fn use_allowance<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        acct: &mut AccountRecord,
        base_cost: u128,
    ) -> Result<u128, StateError> {
        let p = &self.params.allowance;
        let Some(member) = acct.member else {
            return Ok(0);
        };
        let foundation = member.foundation;
        // A foundation in receivership or being reconstituted funds no allowances.
        let active = self
            .held_federation(st, ctx)?
            .foundations
            .get(usize::from(foundation))
            .is_some_and(|f| f.status.takes_charges());
        if !active {
            return Ok(0);
        }
        if ctx.height.saturating_sub(member.since) >= p.period_blocks {
            acct.allowance = 0;
            return Ok(0);
        }
        acct.allowance = self.refilled_allowance(acct, ctx.height);
        acct.allowance_height = ctx.height;
        let pool_key = StateKey::Pool(Pool::Foundation(foundation));
        let treasury = pool_balance(st, pool_key)?;
        let used = acct.allowance.min(base_cost).min(treasury);
        if used > 0 {
            acct.allowance -= used;
            st.put_raw(pool_key, (treasury - used).to_be_bytes().to_vec());
        }
        Ok(used)
    }

    /// Rule FD2, on the global shard's block that closes the epoch before `next`: a new
    /// charge period every `charge_period_epochs`, seeded by the committee seed this block
    /// drew (`drawn`; none drawn, no new period), sent to every account shard.
    pub(crate) fn start_charge_period<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        next: u64,
        drawn: Option<Hash>,
    ) -> Result<(), StateError> {
        let every = self.params.charge_period_epochs.max(1);
        let Some(committee_seed) = drawn.filter(|_| next.is_multiple_of(every)) else {
            return Ok(());
        };
        let mut federation = st
            .get::<Federation>(StateKey::Federation)?
            .unwrap_or_else(|| self.params.genesis_federation());
        federation.version += 1;
        federation.period = next / every;
        federation.seed = Federation::period_seed(federation.period, &committee_seed);
        self.publish_federation(st, ctx, &federation)?;
        ctx.events.push(Event::ChargesReshuffled {
            period: federation.period,
            seed: federation.seed,
        });
        Ok(())
    }

    /// M9: an account shard keeps the newest federation the global shard sent.
    pub(crate) fn keep_federation<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        source: ShardId,
        federation: &Federation,
    ) -> Result<(), Failure> {
        if source != ShardId::GLOBAL || self.shard == ShardId::GLOBAL {
            return Err(TxError::WrongShard {
                expected: self.shard,
            }
            .into());
        }
        // The network's foundations, in their order (admitting more is governance's, to
        // come), at least one taking charges: else a fee cut could reach a pool genesis
        // never made.
        let theirs: Vec<_> = federation.foundations.iter().map(|f| f.treasury).collect();
        if theirs != self.params.foundations {
            return Err(TxError::Malformed(DecodeError::InvalidValue(
                "federation (not this network's foundations)",
            ))
            .into());
        }
        federation.validate().map_err(TxError::Malformed)?;
        let newer = st
            .get::<Federation>(StateKey::Federation)?
            .is_none_or(|f| f.version < federation.version);
        if newer {
            st.put(StateKey::Federation, federation);
        }
        Ok(())
    }
}

impl ShardLedger {
    /// The global shard's genesis offices, one record per foundation that has seats.
    pub(crate) fn genesis_offices(&self, w: &mut WriteSet) {
        if self.shard != ShardId::GLOBAL {
            return;
        }
        for (i, offices) in self.params.genesis_offices.iter().enumerate() {
            if !offices.seats.is_empty() {
                w.insert(StateKey::Offices(i as u16).hash(), Some(offices.to_bytes()));
            }
        }
    }

    /// OF2 on the sender's shard: asks the global shard to clear a seat whose term ended.
    pub(crate) fn expire_seat<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        foundation: u16,
        holder: &AccountId,
    ) -> Result<(), Failure> {
        if usize::from(foundation) >= self.params.foundations.len() {
            return Err(TxError::UnknownTarget.into());
        }
        let payload = Payload::ExpireSeat {
            foundation,
            holder: *holder,
        };
        self.send(st, ctx, ShardId::GLOBAL, payload)?;
        Ok(())
    }

    /// M15: the global shard clears `holder`'s seat if its term has ended by the epoch of this
    /// block (rule OF1 already denies it any power); otherwise an event says why not.
    pub(crate) fn clear_seat<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        foundation: u16,
        holder: &AccountId,
    ) -> Result<(), Failure> {
        let epoch = self.epochs().epoch_of(ctx.height);
        let key = StateKey::Offices(foundation);
        let mut offices: Offices = st.get(key)?.unwrap_or_default();
        let found = offices.seats.iter().position(|s| s.holder == *holder);
        let error = match found.map(|i| offices.seats[i]) {
            None => TxError::UnknownTarget,
            Some(seat) if epoch < seat.until => TxError::TermNotOver,
            Some(seat) => {
                offices.seats.retain(|s| s.holder != *holder);
                // (No seats, no record: as genesis writes none.)
                if offices.seats.is_empty() {
                    st.delete(key);
                } else {
                    st.put(key, &offices);
                }
                ctx.events.push(Event::SeatExpired {
                    foundation,
                    office: seat.office,
                    holder: *holder,
                });
                return Ok(());
            }
        };
        ctx.events.push(Event::SeatNotExpired {
            foundation,
            holder: *holder,
            error,
        });
        Ok(())
    }
}
