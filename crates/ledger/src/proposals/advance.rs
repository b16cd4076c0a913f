//! GV5, GV6 and GV8: a proposal's tally, its effect, and the course of its challenge.

use super::{Decided, ProposalRecord, RollCall, Stage, Status, TokenRecord};
use crate::exec::{add_to_pool, take_from_pool, BlockCtx, Failure};
use crate::overlay::Overlay;
use crate::records::{Pool, StateKey};
use crate::{Event, ShardLedger, StateError, StateView, TxError};
use starling_types::receipt::Payload;
use starling_types::{
    AccountId, Asset, Branch, Federation, Finality, Motion, Office, Offices, Seat, ShardId,
};

impl ShardLedger {
    /// GV5: moves proposal `id` one step on, if that step is due.
    pub(super) fn advance<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        id: u64,
    ) -> Result<(), Failure> {
        let mut p = self.proposal(st, id)?;
        if p.challenge.as_ref().is_some_and(|c| c.stage.open()) {
            self.advance_challenge(st, ctx, &mut p)?;
        } else {
            match p.status {
                Status::Voting => self.tally(st, ctx, &mut p)?,
                Status::Passed => self.enact(st, ctx, &mut p)?,
                _ => return Err(TxError::ProposalClosed.into()),
            }
        }
        st.put(StateKey::Proposal(id), &p);
        Ok(())
    }

    fn tally<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        p: &mut ProposalRecord,
    ) -> Result<(), Failure> {
        let epoch = self.epochs().epoch_of(ctx.height);
        let track = p.motion.track();
        // A referendum never closes early: ballots do not say who voted, and credentials of
        // members admitted since it opened may outnumber its electorate.
        let everyone_voted = match &p.referendum {
            Some(_) => false,
            None => self.everyone_voted(st, p.foundation, track.decides, &p.roll, epoch)?,
        };
        if epoch < p.closes && !everyone_voted {
            return Err(TxError::NotYet.into());
        }
        let (quorum, passes) = match &p.referendum {
            // Void if its round's credentials were forged: rejected, the deposit back.
            Some(_) if self.referendum_void(st, p)? => {
                ctx.events.push(Event::ReferendumVoid { proposal: p.id });
                (true, false)
            }
            Some(r) => r.carries(track.quorum_pct, track.threshold_pct),
            None => p
                .roll
                .carries(p.electorate, track.quorum_pct, track.threshold_pct),
        };
        p.status = match (quorum, passes) {
            (_, true) => Status::Passed,
            (true, false) => Status::Rejected,
            (false, _) => Status::NoQuorum,
        };
        p.decided = Some(Decided {
            height: ctx.height,
            epoch,
        });
        if p.status == Status::Passed {
            p.finality = self.reserve_spend(st, p, epoch)?;
        }
        // With quorum the proposer has its deposit back; without, the foundation keeps it.
        let back = quorum.then_some(p.proposer);
        self.settle_deposit(st, ctx, p.foundation, p.deposit, back.as_ref())?;
        ctx.events.push(Event::ProposalChanged {
            proposal: p.id,
            status: p.status.name(),
        });
        Ok(())
    }

    /// Whether every seat of `branch` in term now has voted in `roll` (and there is one):
    /// then the tally need not wait for the period's end.
    fn everyone_voted<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        foundation: u16,
        branch: Branch,
        roll: &RollCall,
        epoch: u64,
    ) -> Result<bool, StateError> {
        let offices = self.offices_of(st, foundation)?;
        let mut seats = offices
            .seats
            .iter()
            .filter(|s| Branch::of(s.office) == branch && s.in_term(epoch))
            .peekable();
        Ok(seats.peek().is_some() && seats.all(|s| roll.has(&s.holder)))
    }

    /// GV6: a passed spend takes effect at once only within the spend limit and what is left
    /// of it this round; it reserves that much (so a large spend split in small ones still
    /// waits out the window, and only passed spends use the budget).
    fn reserve_spend<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        p: &ProposalRecord,
        epoch: u64,
    ) -> Result<Finality, StateError> {
        let Motion::Spend { amount, .. } = p.motion else {
            return Ok(p.finality);
        };
        if p.finality != Finality::Final {
            return Ok(p.finality);
        }
        let limit = self.foundation_params(st, p.foundation)?.spend_limit;
        let key = StateKey::SpendBudget(p.foundation);
        let round = epoch / self.params.governance.round_epochs.max(1);
        let used = st
            .get::<TokenRecord>(key)?
            .filter(|t| t.round == round)
            .map_or(0, |t| t.spent);
        if amount > limit || used.saturating_add(amount) > limit {
            return Ok(Finality::AfterWindow);
        }
        let spent = used + amount;
        st.put(key, &TokenRecord { round, spent });
        Ok(Finality::Final)
    }

    /// Releases a deposit held in the deposits pool: to `back`, or to the foundation's
    /// treasury pool.
    fn settle_deposit<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        foundation: u16,
        amount: u128,
        back: Option<&AccountId>,
    ) -> Result<(), StateError> {
        take_from_pool(st, Pool::Deposits, amount)?;
        match back {
            Some(to) if amount > 0 => self.credit(st, ctx, to, to, Asset::Spend, amount),
            Some(_) => Ok(()),
            None => add_to_pool(st, Pool::Foundation(foundation), amount),
        }
    }

    /// GV6: a passed proposal takes effect, in a block after its tally's, and an
    /// irreversible one only after its challenge window.
    fn enact<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        p: &mut ProposalRecord,
    ) -> Result<(), Failure> {
        let epoch = self.epochs().epoch_of(ctx.height);
        let decided = p.decided.ok_or(TxError::NotYet)?;
        let g = &self.params.governance;
        // Due once the tally's block is past (and an irreversible one's window); expired if
        // no one advanced it within a voting period of that.
        let due = match p.finality {
            Finality::AfterWindow => decided.epoch.saturating_add(g.challenge_epochs),
            Finality::Reversible | Finality::Final => decided.epoch,
        };
        // (A challenge that ran holds the clock: the time left counts from its end.)
        let since = due.max(p.challenge.as_ref().map_or(0, |c| c.closed));
        if ctx.height <= decided.height || epoch < due {
            return Err(TxError::NotYet.into());
        }
        if epoch >= since.saturating_add(g.voting_epochs) {
            p.status = Status::Expired;
            ctx.events.push(Event::ProposalChanged {
                proposal: p.id,
                status: p.status.name(),
            });
            return Ok(());
        }
        st.commit_tx();
        let mark = ctx.mark();
        match self.take_effect(st, ctx, p, epoch) {
            Ok(()) => {
                p.status = Status::Enacted;
                p.enacted = Some(ctx.height);
                ctx.events.push(Event::ProposalChanged {
                    proposal: p.id,
                    status: p.status.name(),
                });
            }
            Err(Failure::Rejected(error)) => {
                st.rollback_tx();
                ctx.rewind(mark);
                ctx.federation = None;
                p.status = Status::Failed;
                ctx.events.push(Event::EnactmentFailed {
                    proposal: p.id,
                    error,
                });
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn take_effect<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        p: &mut ProposalRecord,
        epoch: u64,
    ) -> Result<(), Failure> {
        let f = p.foundation;
        match &p.motion {
            Motion::Spend { to, amount } => {
                let treasury = self.params.foundations[usize::from(f)];
                let payload = Payload::TreasurySpend {
                    foundation: f,
                    proposal: p.id,
                    to: *to,
                    amount: *amount,
                };
                self.send(st, ctx, self.params.shard_map.shard_of(&treasury), payload)?;
            }
            Motion::Appoint { office, holder } => {
                let mut offices = self.offices_of(st, f)?;
                seat(&mut offices, *office, holder, epoch, self.term(*office))?;
                st.put(StateKey::Offices(f), &offices);
            }
            Motion::SetParam { param, value } => {
                let mut fp = self.foundation_params(st, f)?;
                let code = usize::from(param.code());
                p.previous = Some((fp.get(*param), fp.set_by[code]));
                fp.set_by[code] = p.id + 1;
                fp.set(*param, *value);
                st.put(StateKey::FoundationParams(f), &fp);
            }
            Motion::Registrar { registrar } => self.set_registrar(st, ctx, f, registrar)?,
        }
        Ok(())
    }

    fn term(&self, office: Office) -> u64 {
        self.params.office_terms[usize::from(office.code())]
    }

    /// The registrar change a proposal decided (rule FM1's registrar), sent to every shard.
    fn set_registrar<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        foundation: u16,
        registrar: &AccountId,
    ) -> Result<(), Failure> {
        let mut federation = st
            .get::<Federation>(StateKey::Federation)?
            .unwrap_or_else(|| self.params.genesis_federation());
        let taken = federation
            .foundations
            .iter()
            .enumerate()
            .any(|(i, f)| f.registrar == *registrar && i != usize::from(foundation));
        if taken {
            return Err(TxError::RegistrarTaken.into());
        }
        federation.foundations[usize::from(foundation)].registrar = *registrar;
        federation.version += 1;
        self.publish_federation(st, ctx, &federation)?;
        Ok(())
    }

    /// GV7: a running challenge's next step.
    fn advance_challenge<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        p: &mut ProposalRecord,
    ) -> Result<(), Failure> {
        let epoch = self.epochs().epoch_of(ctx.height);
        let Some(c) = p.challenge.clone() else {
            return Err(TxError::NoChallenge.into());
        };
        let stage = match c.stage {
            Stage::Gathering { until } if epoch < until => return Err(TxError::NotYet.into()),
            Stage::Gathering { .. } => Stage::Lapsed,
            Stage::BoardVote { until } => {
                let everyone =
                    self.everyone_voted(st, p.foundation, Branch::Board, &c.roll, epoch)?;
                if epoch < until && !everyone {
                    return Err(TxError::NotYet.into());
                }
                if c.roll.carries(c.electorate, 50, 50).1 {
                    Stage::Overturned { height: ctx.height }
                } else {
                    Stage::Upheld
                }
            }
            Stage::Overturned { height } if ctx.height <= height => {
                return Err(TxError::NotYet.into())
            }
            Stage::Overturned { .. } => {
                self.undo(st, ctx, p)?;
                Stage::Undone
            }
            Stage::Undone | Stage::Upheld | Stage::Lapsed => {
                return Err(TxError::ProposalClosed.into())
            }
        };
        match stage {
            Stage::Upheld | Stage::Lapsed => {
                self.settle_deposit(st, ctx, p.foundation, c.deposit, None)?
            }
            Stage::Undone => self.settle_deposit(st, ctx, p.foundation, c.deposit, Some(&c.by))?,
            _ => {}
        }
        if let Some(c) = p.challenge.as_mut() {
            c.stage = stage;
            if !stage.open() {
                c.closed = epoch;
            }
        }
        ctx.events.push(Event::ChallengeChanged {
            proposal: p.id,
            stage: stage.name(),
        });
        Ok(())
    }

    /// GV8: undoes an overturned decision (or cancels it, if it has not taken effect).
    fn undo<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        p: &mut ProposalRecord,
    ) -> Result<(), StateError> {
        let f = p.foundation;
        if p.status == Status::Enacted {
            match &p.motion {
                // Only the seat this decision made: not one a later decision gave again.
                Motion::Appoint { office, holder } => {
                    let since = self.epochs().epoch_of(p.enacted.unwrap_or_default());
                    let mut offices = self.offices_of(st, f)?;
                    let before = offices.seats.len();
                    offices.seats.retain(|s| {
                        !(s.office == *office && s.holder == *holder && s.since == since)
                    });
                    if offices.seats.len() != before {
                        put_offices(st, f, &offices);
                        ctx.events.push(Event::SeatVacated {
                            foundation: f,
                            office: *office,
                            holder: *holder,
                        });
                    }
                }
                // Unless a later decision has set it since.
                Motion::SetParam { param, .. } => {
                    let mut fp = self.foundation_params(st, f)?;
                    let code = usize::from(param.code());
                    if let (true, Some((value, by))) = (fp.set_by[code] == p.id + 1, p.previous) {
                        fp.set_by[code] = by;
                        fp.set(*param, value);
                        st.put(StateKey::FoundationParams(f), &fp);
                    }
                }
                // (Spends and registrar changes take effect only once no challenge can
                // run, and small spends cannot be challenged.)
                Motion::Spend { .. } | Motion::Registrar { .. } => {}
            }
            p.status = Status::Reversed;
        } else {
            p.status = Status::Cancelled;
        }
        ctx.events.push(Event::ProposalChanged {
            proposal: p.id,
            status: p.status.name(),
        });
        Ok(())
    }

    /// Sends `federation` to every account shard and keeps it here (rules FD2, M9).
    pub(crate) fn publish_federation<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        federation: &Federation,
    ) -> Result<(), StateError> {
        st.put(StateKey::Federation, federation);
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
        Ok(())
    }
}

/// Writes a foundation's offices (no seats, no record).
fn put_offices<V: StateView + ?Sized>(st: &mut Overlay<'_, V>, foundation: u16, o: &Offices) {
    if o.seats.is_empty() {
        st.delete(StateKey::Offices(foundation));
    } else {
        st.put(StateKey::Offices(foundation), o);
    }
}

/// Seats `holder` in `office` from `epoch` for `term` epochs: seats whose terms have ended
/// are cleared first; the holder must hold no other seat (an appointment never takes one
/// away), and the office must have a free seat.
fn seat(
    offices: &mut Offices,
    office: Office,
    holder: &AccountId,
    epoch: u64,
    term: u64,
) -> Result<(), TxError> {
    offices.seats.retain(|s| s.until > epoch);
    if offices.seats.iter().any(|s| s.holder == *holder) {
        return Err(TxError::AlreadySeated);
    }
    if offices.seats.iter().filter(|s| s.office == office).count() >= office.max_seats()
        || offices.seats.len() >= starling_types::offices::MAX_SEATS
    {
        return Err(TxError::SeatsFull);
    }
    offices.seats.push(Seat {
        office,
        holder: *holder,
        since: epoch,
        until: epoch.saturating_add(term),
        acting: false,
    });
    offices.seats.sort_by_key(|s| (s.office, s.holder));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_types::PublicKey;

    #[test]
    fn seating_clears_ended_terms_moves_the_holder_and_fills_no_more_than_the_office() {
        let k = |b: u8| PublicKey::ed25519([b; 32]);
        let mut o = Offices::default();
        seat(&mut o, Office::President, &k(1), 0, 10).unwrap();
        assert_eq!(
            seat(&mut o, Office::President, &k(2), 5, 10),
            Err(TxError::SeatsFull),
            "one president"
        );
        // At epoch 10 the first term is over: the seat is free.
        seat(&mut o, Office::President, &k(2), 10, 10).unwrap();
        assert_eq!(o.seats.len(), 1);
        // A sitting president cannot be named to the board: no appointment takes a seat
        // away (nor a seat one holds until a later epoch).
        assert_eq!(
            seat(&mut o, Office::Board, &k(2), 11, 5),
            Err(TxError::AlreadySeated)
        );
        seat(&mut o, Office::Board, &k(3), 11, 5).unwrap();
        assert_eq!(o.seats.len(), 2);
        o.validate().unwrap();
    }
}
