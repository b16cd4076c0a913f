//! Message rules (M2–M9; M10–M14 are in `membership`, M15 in `governance`, M16–M18 in `proposals`): what an inbound cross-shard message does to this shard.

use super::set_presence;
use crate::exec::{BlockCtx, Failure};
use crate::overlay::Overlay;
use crate::records::{
    decode_account_id, AccountRecord, CommitteeRecord, StateKey, ValidatorInfo, ValidatorSet,
    MAX_VALIDATORS,
};
use crate::{validate, Event, ShardLedger, StateError, StateView, TxError};
use starling_types::receipt::Payload;
use starling_types::{AccountId, Encode, Hash, PublicKey, ShardId};

impl ShardLedger {
    /// Applies the payload of an inbound message (rules M2–M8).
    pub(crate) fn apply_payload<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        source: ShardId,
        payload: &Payload,
    ) -> Result<(), Failure> {
        match payload {
            // M2: credits create the account if needed.
            Payload::Credit {
                from,
                to,
                asset,
                amount,
            } => {
                if !self.local(to) {
                    return Err(TxError::WrongShard {
                        expected: self.params.shard_map.shard_of(to),
                    }
                    .into());
                }
                self.credit(st, ctx, from, to, *asset, *amount)?;
            }
            // M3: the followee's side of a follow.
            Payload::FollowNotice {
                follower,
                followee,
                following,
            } => {
                if !self.local(followee) {
                    return Err(TxError::WrongShard {
                        expected: self.params.shard_map.shard_of(followee),
                    }
                    .into());
                }
                set_presence(st, StateKey::Follower(followee, follower), *following);
            }
            // M4
            Payload::HandleClaim { account, handle } => {
                self.handle_claim(st, ctx, account, handle)?
            }
            // M5
            Payload::HandleResult {
                account,
                handle,
                accepted,
            } => self.handle_result(st, ctx, account, handle, *accepted)?,
            // M6
            Payload::ValidatorJoin {
                account,
                consensus_key,
                address,
            } => self.validator_join(st, ctx, account, consensus_key, address)?,
            // M7: the registry lets a validator go.
            Payload::ValidatorLeave { account } => {
                self.global_only()?;
                let mut set: ValidatorSet = st.get(StateKey::Validators)?.unwrap_or_default();
                let before = set.validators.len();
                set.validators.retain(|v| v.account != *account);
                if set.validators.len() != before {
                    st.put(StateKey::Validators, &set);
                    ctx.events.push(Event::ValidatorLeft { account: *account });
                }
            }
            // M8
            Payload::Committee {
                epoch,
                seed,
                members,
            } => self.keep_committee(st, source, *epoch, *seed, members)?,
            // M9
            Payload::Federation(federation) => {
                self.keep_federation(st, source, federation)?;
                ctx.federation = None;
            }
            // M10–M14 (in `membership`).
            Payload::Attest { .. }
            | Payload::LeaveFoundation { .. }
            | Payload::Membership { .. }
            | Payload::Sponsor { .. }
            | Payload::EndSponsorship { .. } => self.apply_membership(st, ctx, source, payload)?,
            // M15 (in `governance`).
            Payload::ExpireSeat { foundation, holder } => {
                self.global_only()?;
                self.clear_seat(st, ctx, *foundation, holder)?
            }
            // M16–M18 (in `proposals`).
            Payload::Govern { .. }
            | Payload::TreasurySpend { .. }
            | Payload::SpendFailed { .. } => self.apply_proposals(st, ctx, source, payload)?,
        }
        Ok(())
    }

    /// Refuses a message that only the global shard takes.
    pub(crate) fn global_only(&self) -> Result<(), Failure> {
        if self.shard == ShardId::GLOBAL {
            Ok(())
        } else {
            Err(TxError::WrongShard {
                expected: ShardId::GLOBAL,
            }
            .into())
        }
    }

    /// M4: the global shard registers a free handle (or re-confirms its owner), releases
    /// the account's previous handle, and answers the account's shard either way.
    fn handle_claim<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        account: &AccountId,
        handle: &str,
    ) -> Result<(), Failure> {
        if self.shard != ShardId::GLOBAL {
            return Err(TxError::WrongShard {
                expected: ShardId::GLOBAL,
            }
            .into());
        }
        let handle = validate::handle(handle)?;
        let owner = match st.get_raw(&StateKey::Handle(&handle).hash())? {
            Some(b) => Some(
                decode_account_id(&b).map_err(|e| StateError(format!("corrupt handle: {e}")))?,
            ),
            None => None,
        };
        let accepted = owner.is_none() || owner == Some(*account);
        if accepted {
            let reverse = StateKey::HandleOf(account);
            if let Some(old) = st.get_raw(&reverse.hash())? {
                let old = String::from_utf8(old)
                    .map_err(|_| StateError("corrupt handle owner".into()))?;
                if old != handle {
                    st.delete(StateKey::Handle(&old));
                }
            }
            st.put_raw(StateKey::Handle(&handle), account.to_bytes());
            st.put_raw(reverse, handle.clone().into_bytes());
            ctx.events.push(Event::HandleRegistered {
                account: *account,
                handle: handle.clone(),
            });
        } else {
            ctx.events.push(Event::HandleRefused {
                account: *account,
                handle: handle.clone(),
                error: TxError::HandleTaken,
            });
        }
        let dest = self.params.shard_map.shard_of(account);
        self.send(
            st,
            ctx,
            dest,
            Payload::HandleResult {
                account: *account,
                handle,
                accepted,
            },
        )?;
        Ok(())
    }

    /// M5: the account's shard learns the outcome of its claim.
    fn handle_result<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        account: &AccountId,
        handle: &str,
        accepted: bool,
    ) -> Result<(), Failure> {
        if !self.local(account) {
            return Err(TxError::WrongShard {
                expected: self.params.shard_map.shard_of(account),
            }
            .into());
        }
        let mut rec: AccountRecord = st
            .get(StateKey::Account(account))?
            .ok_or(TxError::UnknownAccount)?;
        if rec.pending_handle.as_deref() == Some(handle) {
            rec.pending_handle = None;
        }
        if accepted {
            rec.handle = Some(handle.to_owned());
        } else {
            ctx.events.push(Event::HandleRefused {
                account: *account,
                handle: handle.to_owned(),
                error: TxError::HandleTaken,
            });
        }
        st.put(StateKey::Account(account), &rec);
        Ok(())
    }

    /// M6: the registry takes in a bonded validator (or updates its key and address);
    /// a consensus key belongs to one account at a time.
    fn validator_join<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        account: &AccountId,
        consensus_key: &PublicKey,
        address: &str,
    ) -> Result<(), Failure> {
        self.global_only()?;
        let mut set: ValidatorSet = st.get(StateKey::Validators)?.unwrap_or_default();
        let taken = set
            .validators
            .iter()
            .any(|v| v.consensus_key == *consensus_key && v.account != *account);
        let known = set.validators.iter().any(|v| v.account == *account);
        let refused = if taken {
            Some(TxError::InvalidValidator(
                "consensus key already registered",
            ))
        } else if !known && set.validators.len() >= MAX_VALIDATORS {
            Some(TxError::InvalidValidator("the registry is full"))
        } else {
            None
        };
        if let Some(error) = refused {
            ctx.events.push(Event::ValidatorRefused {
                account: *account,
                error,
            });
            return Ok(());
        }
        set.validators.retain(|v| v.account != *account);
        set.validators.push(ValidatorInfo {
            account: *account,
            consensus_key: *consensus_key,
            address: address.to_owned(),
        });
        set.validators.sort_by_key(|v| v.account);
        st.put(StateKey::Validators, &set);
        ctx.events
            .push(Event::ValidatorJoined { account: *account });
        Ok(())
    }

    /// M8: an account shard keeps the newest committee the global shard drew for it.
    fn keep_committee<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        source: ShardId,
        epoch: u64,
        seed: Hash,
        members: &[AccountId],
    ) -> Result<(), Failure> {
        if source != ShardId::GLOBAL || self.shard == ShardId::GLOBAL {
            return Err(TxError::WrongShard {
                expected: self.shard,
            }
            .into());
        }
        let newer = st
            .get::<CommitteeRecord>(StateKey::Committee)?
            .is_none_or(|c| c.epoch < epoch);
        if newer && !members.is_empty() {
            st.put(
                StateKey::Committee,
                &CommitteeRecord {
                    epoch,
                    seed,
                    members: members.to_vec(),
                },
            );
        }
        Ok(())
    }
}
