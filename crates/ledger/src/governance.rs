//! Governance rules: the federation of foundations (rules FD1, FD2 and M9; the federation
//! itself and the assignment are in [`starling_types::federation`]).

use crate::exec::pool_balance;
use crate::exec::{BlockCtx, Failure};
use crate::overlay::Overlay;
use crate::records::{AccountRecord, Pool, StateKey};
use crate::{Event, ShardLedger, StateError, StateView, TxError};
use starling_types::receipt::Payload;
use starling_types::{AccountId, DecodeError, Federation, Hash, ShardId};

impl ShardLedger {
    /// Rule FD1 for `account`, from the federation this shard holds.
    pub(crate) fn charge_of<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        ctx: &mut BlockCtx,
        account: &AccountId,
    ) -> Result<u16, StateError> {
        if ctx.federation.is_none() {
            let held = st.get::<Federation>(StateKey::Federation)?;
            ctx.federation = Some(held.unwrap_or_else(|| self.params.genesis_federation()));
        }
        Ok(ctx.federation.as_ref().map_or(0, |f| f.charge_of(account)))
    }

    /// Refills and spends a new account's allowance; the treasury of the foundation it is
    /// charged to pays.
    pub(crate) fn use_allowance<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &BlockCtx,
        acct: &mut AccountRecord,
        foundation: u16,
        base_cost: u128,
    ) -> Result<u128, StateError> {
        let p = &self.params.allowance;
        if ctx.height.saturating_sub(acct.created_height) >= p.period_blocks {
            acct.allowance = 0;
            return Ok(0);
        }
        let elapsed = ctx.height.saturating_sub(acct.allowance_height) as u128;
        acct.allowance = acct
            .allowance
            .saturating_add(elapsed.saturating_mul(p.refill_per_block))
            .min(p.cap);
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
        st.put(StateKey::Federation, &federation);
        ctx.federation = None;
        let shards: Vec<ShardId> = self
            .params
            .shard_map
            .ranges()
            .iter()
            .map(|(id, _)| *id)
            .collect();
        for shard in shards {
            self.send(st, ctx, shard, Payload::Federation(federation.clone()))?;
        }
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
