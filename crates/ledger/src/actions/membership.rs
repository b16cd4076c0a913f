//! Membership and sponsorship rules: how accounts become a foundation's verified members
//! (FM1, FM2, and messages M10–M12) and how one account pays another's base fees (SP1, SP2,
//! and messages M13, M14).
//!
//! The global shard's registry ([`StateKey::Member`]) is the one place that says who is a
//! member of which foundation; an account's own shard holds a copy ([`Membership`] on its
//! record) that it hears from the registry by message, and that alone decides its fee
//! allowance (rule T6). One account, one foundation: a second registrar's attestation is
//! refused until the first membership ends.

use super::Apply;
use crate::exec::read_counter;
use crate::exec::{BlockCtx, Failure};
use crate::overlay::Overlay;
use crate::records::{AccountRecord, MemberRecord, Membership, Sponsorship, StateKey};
use crate::{Event, ShardLedger, StateError, StateView, TxError};
use starling_types::receipt::Payload;
use starling_types::{AccountId, Asset, DecodeError, ShardId};

impl ShardLedger {
    /// FM1: a foundation's registrar (as the federation this shard holds names it) admits or
    /// revokes `member`; the global shard's registry decides.
    pub(super) fn attest<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        member: &AccountId,
        admit: bool,
    ) -> Result<(), Failure> {
        let me = a.body.account;
        if *member == me {
            return Err(TxError::SelfTarget.into());
        }
        let foundation = self
            .held_federation(a.st, a.ctx)?
            .registrar_of(&me)
            .ok_or(TxError::NotRegistrar)?;
        self.send(
            a.st,
            a.ctx,
            ShardId::GLOBAL,
            Payload::Attest {
                registrar: me,
                member: *member,
                foundation,
                admit,
            },
        )?;
        Ok(())
    }

    /// FM2: a member gives up its membership.
    pub(super) fn leave_foundation<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
    ) -> Result<(), Failure> {
        if a.acct.member.is_none() {
            return Err(TxError::NotMember.into());
        }
        let account = a.body.account;
        self.send(
            a.st,
            a.ctx,
            ShardId::GLOBAL,
            Payload::LeaveFoundation { account },
        )?;
        Ok(())
    }

    /// SP1: the sender sets `amount` SPEND aside for `account`'s base fees. One sponsor per
    /// account at a time, at most `sponsorship_cap` set aside; what the account's shard
    /// cannot take goes back.
    pub(super) fn sponsor<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        account: &AccountId,
        amount: u128,
    ) -> Result<(), Failure> {
        let me = a.body.account;
        if *account == me {
            return Err(TxError::SelfTarget.into());
        }
        if amount == 0 {
            return Err(TxError::InvalidAmount.into());
        }
        let cap = self.params.sponsorship_cap;
        if amount > cap {
            return Err(TxError::SponsorshipCap { cap }.into());
        }
        a.acct.debit(Asset::Spend, amount)?;
        if !self.local(account) {
            let payload = Payload::Sponsor {
                sponsor: me,
                account: *account,
                amount,
            };
            self.send(
                a.st,
                a.ctx,
                self.params.shard_map.shard_of(account),
                payload,
            )?;
            return Ok(());
        }
        // Both here: what cannot be taken is refused now rather than sent back.
        if let Some(s) = self.account_here(a.st, account)?.and_then(|r| r.sponsor) {
            if s.by != me && amount <= s.left {
                return Err(TxError::SponsoredByAnother.into());
            }
            if s.by == me && s.left.saturating_add(amount) > cap {
                return Err(TxError::SponsorshipCap { cap }.into());
            }
        }
        self.take_sponsorship(a.st, a.ctx, &me, account, amount)?;
        Ok(())
    }

    /// SP2: the sender stops sponsoring `account`; what is left comes back.
    pub(super) fn end_sponsorship<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        account: &AccountId,
    ) -> Result<(), Failure> {
        let me = a.body.account;
        if *account == me {
            return Err(TxError::SelfTarget.into());
        }
        if !self.local(account) {
            let payload = Payload::EndSponsorship {
                sponsor: me,
                account: *account,
            };
            self.send(
                a.st,
                a.ctx,
                self.params.shard_map.shard_of(account),
                payload,
            )?;
            return Ok(());
        }
        let refund = self
            .drop_sponsorship(a.st, a.ctx, &me, account)?
            .ok_or(TxError::NotSponsor)?;
        let spend = &mut a.acct.balances[Asset::Spend.index()];
        *spend = spend.saturating_add(refund);
        Ok(())
    }

    fn account_here<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        account: &AccountId,
    ) -> Result<Option<AccountRecord>, StateError> {
        st.get(StateKey::Account(account))
    }

    /// M13 (and SP1 on one shard): `account` takes up to what the cap allows from `sponsor`;
    /// another sponsor's is displaced (and goes back to it) only by a larger offer, so a
    /// sponsorship of dust cannot lock an account's real sponsors out. Returns what must go
    /// back to `sponsor`.
    pub(super) fn take_sponsorship<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        sponsor: &AccountId,
        account: &AccountId,
        amount: u128,
    ) -> Result<u128, StateError> {
        let mut rec = self
            .account_here(st, account)?
            .unwrap_or_else(|| self.new_account(ctx.height));
        let cap = self.params.sponsorship_cap;
        let (held, taken, displaced) = match rec.sponsor {
            Some(s) if s.by == *sponsor => (s.left, amount.min(cap.saturating_sub(s.left)), None),
            Some(s) if amount > s.left => (0, amount.min(cap), Some(s)),
            Some(_) => (0, 0, None),
            None => (0, amount.min(cap), None),
        };
        if let Some(old) = displaced {
            ctx.events.push(Event::SponsorshipEnded {
                sponsor: old.by,
                account: *account,
                refunded: old.left,
            });
            // (`old.by` is not `account`: nobody sponsors itself.)
            self.credit(st, ctx, account, &old.by, Asset::Spend, old.left)?;
        }
        if taken > 0 {
            rec.sponsor = Some(Sponsorship {
                by: *sponsor,
                left: held + taken,
            });
            st.put(StateKey::Account(account), &rec);
        }
        let refunded = amount - taken;
        ctx.events.push(Event::Sponsored {
            sponsor: *sponsor,
            account: *account,
            amount: taken,
            refunded,
        });
        Ok(refunded)
    }

    /// M14 (and SP2 on one shard): `sponsor`'s sponsorship of `account` ends; returns what
    /// was left of it, which goes back (`None`: it held none).
    pub(super) fn drop_sponsorship<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        sponsor: &AccountId,
        account: &AccountId,
    ) -> Result<Option<u128>, StateError> {
        let Some(mut rec) = self.account_here(st, account)? else {
            return Ok(None);
        };
        let Some(s) = rec.sponsor.filter(|s| s.by == *sponsor) else {
            return Ok(None);
        };
        rec.sponsor = None;
        st.put(StateKey::Account(account), &rec);
        ctx.events.push(Event::SponsorshipEnded {
            sponsor: *sponsor,
            account: *account,
            refunded: s.left,
        });
        Ok(Some(s.left))
    }

    /// Applies a membership or sponsorship message (M10–M14).
    pub(super) fn apply_membership<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        source: ShardId,
        payload: &Payload,
    ) -> Result<(), Failure> {
        match payload {
            // M10
            Payload::Attest {
                registrar,
                member,
                foundation,
                admit,
            } => self.registry_attest(st, ctx, source, (registrar, member, *foundation, *admit))?,
            // M11
            Payload::LeaveFoundation { account } => {
                self.registry_leave(st, ctx, source, account)?
            }
            // M12
            Payload::Membership {
                account,
                foundation,
            } => self.keep_membership(st, ctx, source, account, *foundation)?,
            // M13: what the account cannot take goes back to the sponsor.
            Payload::Sponsor {
                sponsor,
                account,
                amount,
            } => {
                self.sponsored_here(source, sponsor, account)?;
                let back = self.take_sponsorship(st, ctx, sponsor, account, *amount)?;
                if back > 0 {
                    self.credit(st, ctx, account, sponsor, Asset::Spend, back)?;
                }
            }
            // M14
            Payload::EndSponsorship { sponsor, account } => {
                self.sponsored_here(source, sponsor, account)?;
                match self.drop_sponsorship(st, ctx, sponsor, account)? {
                    Some(back) if back > 0 => {
                        self.credit(st, ctx, account, sponsor, Asset::Spend, back)?
                    }
                    Some(_) => {}
                    None => ctx.events.push(Event::SponsorshipRefused {
                        sponsor: *sponsor,
                        account: *account,
                        error: TxError::NotSponsor,
                    }),
                }
            }
            _ => {
                return Err(TxError::Malformed(DecodeError::InvalidValue(
                    "not a membership message",
                ))
                .into())
            }
        }
        Ok(())
    }

    /// A sponsorship message comes from the sponsor's shard to the account's.
    fn sponsored_here(
        &self,
        source: ShardId,
        sponsor: &AccountId,
        account: &AccountId,
    ) -> Result<(), Failure> {
        self.check_sent_from_home(source, sponsor)?;
        if !self.local(account) {
            return Err(TxError::WrongShard {
                expected: self.params.shard_map.shard_of(account),
            }
            .into());
        }
        Ok(())
    }

    /// M10: the registry applies a registrar's attestation, if that registrar still serves
    /// that foundation and the member is free (admit) or its member (revoke).
    pub(super) fn registry_attest<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        source: ShardId,
        attest: (&AccountId, &AccountId, u16, bool),
    ) -> Result<(), Failure> {
        let (registrar, member, foundation, admit) = attest;
        self.global_only()?;
        self.check_sent_from_home(source, registrar)?;
        let serves = self
            .held_federation(st, ctx)?
            .foundations
            .get(usize::from(foundation))
            // Only an active foundation's registrar (one taking charges: not in receivership
            // or being reconstituted) admits or revokes.
            .is_some_and(|f| f.registrar == *registrar && f.status.takes_charges());
        let held: Option<MemberRecord> = st.get(StateKey::Member(member))?;
        let refused = match (serves, admit, held) {
            (false, _, _) => Some(TxError::NotRegistrar),
            (true, true, Some(m)) if m.foundation != foundation => Some(TxError::AlreadyMember {
                foundation: m.foundation,
            }),
            // Admitted again: nothing changes.
            (true, true, Some(_)) => return Ok(()),
            (true, false, m) if m.is_none_or(|m| m.foundation != foundation) => {
                Some(TxError::NotMember)
            }
            _ => None,
        };
        if let Some(error) = refused {
            ctx.events.push(Event::MembershipRefused {
                account: *member,
                error,
            });
            return Ok(());
        }
        let record = admit.then_some(MemberRecord {
            foundation,
            registrar: *registrar,
            since: ctx.height,
        });
        self.set_member(st, ctx, member, foundation, record)
    }

    /// M11: the registry lets a member go.
    pub(super) fn registry_leave<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        source: ShardId,
        account: &AccountId,
    ) -> Result<(), Failure> {
        self.global_only()?;
        self.check_sent_from_home(source, account)?;
        match st.get::<MemberRecord>(StateKey::Member(account))? {
            Some(m) => self.set_member(st, ctx, account, m.foundation, None),
            None => {
                ctx.events.push(Event::MembershipRefused {
                    account: *account,
                    error: TxError::NotMember,
                });
                Ok(())
            }
        }
    }

    /// Writes (or removes) a registry entry, keeps the foundation's count exact, and tells
    /// the account's shard.
    fn set_member<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        account: &AccountId,
        foundation: u16,
        record: Option<MemberRecord>,
    ) -> Result<(), Failure> {
        let count_key = StateKey::MemberCount(foundation);
        let count = read_counter(st, count_key)?;
        let count = match &record {
            Some(r) => {
                st.put(StateKey::Member(account), r);
                count + 1
            }
            None => {
                st.delete(StateKey::Member(account));
                count
                    .checked_sub(1)
                    .ok_or_else(|| StateError("member count below its members".into()))?
            }
        };
        st.put_raw(count_key, count.to_be_bytes().to_vec());
        ctx.events.push(Event::MembershipChanged {
            account: *account,
            foundation,
            member: record.is_some(),
        });
        let dest = self.params.shard_map.shard_of(account);
        let foundation = record.map(|r| r.foundation);
        self.send(
            st,
            ctx,
            dest,
            Payload::Membership {
                account: *account,
                foundation,
            },
        )?;
        Ok(())
    }

    /// M12: an account's shard keeps what the registry says; a new membership starts the
    /// fee allowance afresh, an ended one ends it.
    pub(super) fn keep_membership<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &BlockCtx,
        source: ShardId,
        account: &AccountId,
        foundation: Option<u16>,
    ) -> Result<(), Failure> {
        if source != ShardId::GLOBAL || !self.local(account) {
            return Err(TxError::WrongShard {
                expected: self.params.shard_map.shard_of(account),
            }
            .into());
        }
        let mut rec = self
            .account_here(st, account)?
            .unwrap_or_else(|| self.new_account(ctx.height));
        rec.member = foundation.map(|foundation| Membership {
            foundation,
            since: ctx.height,
        });
        rec.allowance = if foundation.is_some() {
            self.params.allowance.initial
        } else {
            0
        };
        rec.allowance_height = ctx.height;
        st.put(StateKey::Account(account), &rec);
        Ok(())
    }

    /// A message about `account` comes from the shard that checked its signature.
    pub(crate) fn check_sent_from_home(
        &self,
        source: ShardId,
        account: &AccountId,
    ) -> Result<(), Failure> {
        let home = self.params.shard_map.shard_of(account);
        if source != home {
            return Err(TxError::WrongShard { expected: home }.into());
        }
        Ok(())
    }
}
