//! Proposals, roll-call votes with quadratic vote tokens, and challenges of decisions (rules
//! GV1–GV8, messages M16 and M17, and the treasury rule TR1). The track table (GV1) and the
//! acts are in [`starling_types::proposals`].
//!
//! An account's shard checks the act's signature, takes its deposit (GV2, GV7) and sends
//! the act to the global shard (M16), which holds every proposal and decides. An act the
//! global shard refuses changes nothing there, and its deposit goes back; the refusal is an
//! event on the global shard.
//!
//! - GV2 (propose): a seat holder of an office the track names opens a proposal; an acting
//!   seat may not propose what cannot be undone. Voting runs `voting_epochs` from the epoch
//!   it opens in; the quorum's base is the deciding branch's seats in term then.
//! - GV3 (vote): a holder of a seat in term in the deciding branch casts `n` votes, yes or
//!   no, once per question; every vote is public (a roll call).
//! - GV4 (tokens): `n` votes cost `n²` of the holder's tokens for that branch in the current
//!   round (`epoch / round_epochs`); each round starts from the foundation's allotment, and
//!   nothing carries over. What is spent is spent: a holder who spends early cannot vote
//!   later in the round.
//! - GV5 (advance; anyone): a proposal is tallied once voting has closed, or early once as
//!   many seats have voted as its electorate; it passes with quorum and a weighted yes above
//!   the threshold. The deposit goes back with quorum, else to the foundation's treasury
//!   pool. A passed proposal takes effect at a later advance, never in the block that
//!   tallied it.
//! - GV6 (effect): see [`starling_types::Finality`]. Irreversible motions wait out the
//!   challenge window with no challenge running.
//! - GV7 (challenge; anyone, with a deposit): within `challenge_epochs` of the tally, one
//!   challenge at a time, at most [`MAX_CHALLENGES`]; support from 5% of the senate or 1% of
//!   the foundation's members within `support_epochs` forces a board roll call of
//!   `board_vote_epochs` (yes: overturn). Overturned, the decision is undone at a later
//!   advance (or never takes effect) and the deposit goes back; upheld or lapsed, the deposit
//!   goes to the treasury pool.
//! - GV8 (undo): an appointment's seat is vacated; a parameter goes back to its previous
//!   value, unless a later decision has changed it since.
//! - TR1: a foundation's treasury account sends no SPEND by its own transactions; only its
//!   proposals pay out of it (M17).

mod advance;
pub mod record;

pub use record::{
    Challenge, Decided, FoundationParams, ProposalRecord, Referendum, RollCall, RollVote, Stage,
    Status, TokenRecord, MAX_CHALLENGES,
};

use crate::actions::Apply;
use crate::exec::{add_to_pool, read_counter, take_from_pool, BlockCtx, Failure};
use crate::overlay::Overlay;
use crate::records::{MemberRecord, Pool, StateKey};
use crate::{Event, ShardLedger, StateError, StateView, TxError};
use starling_types::offices::MAX_SEATS;
use starling_types::receipt::Payload;
use starling_types::{
    AccountId, Action, Asset, Branch, Finality, GovAct, GovParam, Motion, Office, Offices, ShardId,
};

/// Seats of `branch` in term at `epoch`.
pub fn seats_of(offices: &Offices, branch: Branch, epoch: u64) -> u16 {
    offices
        .seats
        .iter()
        .filter(|s| Branch::of(s.office) == branch && s.in_term(epoch))
        .count() as u16
}

/// TR1: what a treasury account may do by its own key: its registrar's work, votes and
/// advances, and what sends no SPEND anywhere (every action is listed, so a new one must be
/// judged here).
fn treasury_may(action: &Action) -> bool {
    match action {
        Action::Transfer { .. }
        | Action::Sponsor { .. }
        | Action::RegisterValidator { .. }
        | Action::Ballot(_) => false,
        Action::Govern(act) => !matches!(act, GovAct::Propose { .. } | GovAct::Challenge { .. }),
        Action::Post { .. }
        | Action::EditPost { .. }
        | Action::DeletePost { .. }
        | Action::Repost { .. }
        | Action::Unrepost { .. }
        | Action::Like { .. }
        | Action::Unlike { .. }
        | Action::Follow { .. }
        | Action::Unfollow { .. }
        | Action::Block { .. }
        | Action::Unblock { .. }
        | Action::Mute { .. }
        | Action::Unmute { .. }
        | Action::SetProfile { .. }
        | Action::RegisterHandle { .. }
        | Action::RetireValidator
        | Action::SetChatDevice { .. }
        | Action::RemoveChatDevice { .. }
        | Action::AdmitMember { .. }
        | Action::RevokeMember { .. }
        | Action::LeaveFoundation
        | Action::EndSponsorship { .. }
        | Action::ExpireSeat { .. } => true,
    }
}

impl ShardLedger {
    /// GV2–GV8 on the sender's shard: takes the deposit and sends the act.
    pub(crate) fn govern<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        act: &GovAct,
    ) -> Result<(), Failure> {
        let g = &self.params.governance;
        let deposit = match act {
            GovAct::Propose { foundation, .. } => {
                if usize::from(*foundation) >= self.params.foundations.len() {
                    return Err(TxError::UnknownTarget.into());
                }
                g.proposal_deposit
            }
            GovAct::Challenge { .. } => g.challenge_deposit,
            _ => 0,
        };
        a.acct.debit(Asset::Spend, deposit)?;
        let payload = Payload::Govern {
            from: a.body.account,
            deposit,
            act: act.clone(),
        };
        self.send(a.st, a.ctx, ShardId::GLOBAL, payload)?;
        Ok(())
    }

    /// TR1: whether `body` is a foundation treasury's own transaction that would move SPEND
    /// out of it: any tip (it goes to the proposer), or an action outside
    /// `treasury_may`.
    pub fn treasury_locked(&self, body: &starling_types::TxBody) -> bool {
        self.params.foundations.contains(&body.account)
            && (body.tip > 0 || !treasury_may(&body.action))
    }

    /// Applies a proposals message (M16–M18).
    pub(crate) fn apply_proposals<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        source: ShardId,
        payload: &Payload,
    ) -> Result<(), Failure> {
        match payload {
            Payload::Govern { from, deposit, act } => {
                self.apply_govern(st, ctx, source, (from, *deposit, act))
            }
            Payload::TreasurySpend {
                foundation,
                proposal,
                to,
                amount,
            } => self.treasury_spend(st, ctx, source, (*foundation, *proposal, to, *amount)),
            Payload::SpendFailed {
                proposal,
                available,
            } => self.spend_failed(st, ctx, source, (*proposal, *available)),
            _ => Err(
                TxError::Malformed(starling_types::DecodeError::InvalidValue(
                    "not a proposals message",
                ))
                .into(),
            ),
        }
    }

    /// M16: the global shard applies a governance act. A refused act changes nothing but
    /// gives its deposit back.
    fn apply_govern<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        source: ShardId,
        (from, deposit, act): (&AccountId, u128, &GovAct),
    ) -> Result<(), Failure> {
        self.global_only()?;
        self.check_sent_from_home(source, from)?;
        add_to_pool(st, Pool::Deposits, deposit)?;
        st.commit_tx();
        let mark = ctx.mark();
        let done = match act {
            GovAct::Propose {
                foundation,
                title,
                text,
                motion,
            } => self.open_proposal(st, ctx, (from, deposit), *foundation, (title, text), motion),
            GovAct::Vote {
                proposal,
                challenge,
                yes,
                votes,
            } => self.cast(st, ctx, from, *proposal, (*challenge, *yes, *votes)),
            GovAct::Advance { proposal } => self.advance(st, ctx, *proposal),
            GovAct::Challenge { proposal } => {
                self.lodge_challenge(st, ctx, from, deposit, *proposal)
            }
            GovAct::Support { proposal } => self.support(st, ctx, from, *proposal),
            GovAct::BallotKey {
                foundation,
                round,
                key,
            } => self.publish_credential_key(st, ctx, from, (*foundation, *round, key)),
            GovAct::RequestCredential { round, blinded } => {
                self.request_credential(st, ctx, from, (*round, blinded))
            }
            GovAct::IssueCredential {
                member,
                round,
                blind_sig,
            } => self.issue_credential(st, ctx, from, (member, *round, blind_sig)),
        };
        match done {
            Err(Failure::Rejected(error)) => {
                st.rollback_tx();
                ctx.rewind(mark);
                ctx.federation = None;
                if deposit > 0 {
                    take_from_pool(st, Pool::Deposits, deposit)?;
                    self.credit(st, ctx, from, from, Asset::Spend, deposit)?;
                }
                ctx.events.push(Event::GovernanceRefused {
                    from: *from,
                    proposal: act.proposal(),
                    error,
                });
                Ok(())
            }
            other => other,
        }
    }

    pub(crate) fn foundation_params<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        foundation: u16,
    ) -> Result<FoundationParams, StateError> {
        Ok(st
            .get(StateKey::FoundationParams(foundation))?
            .unwrap_or(self.params.governance.foundation))
    }

    pub(crate) fn offices_of<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        foundation: u16,
    ) -> Result<Offices, StateError> {
        Ok(st.get(StateKey::Offices(foundation))?.unwrap_or_default())
    }

    pub(crate) fn proposal<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        id: u64,
    ) -> Result<ProposalRecord, Failure> {
        Ok(st
            .get(StateKey::Proposal(id))?
            .ok_or(TxError::UnknownTarget)?)
    }

    /// GV2.
    fn open_proposal<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        (from, deposit): (&AccountId, u128),
        foundation: u16,
        (title, text): (&str, &str),
        motion: &Motion,
    ) -> Result<(), Failure> {
        let epoch = self.epochs().epoch_of(ctx.height);
        if usize::from(foundation) >= self.params.foundations.len() {
            return Err(TxError::UnknownTarget.into());
        }
        let track = motion.track();
        let offices = self.offices_of(st, foundation)?;
        let seat = offices
            .held_by(from, epoch)
            .filter(|s| track.proposers.contains(&s.office))
            .ok_or(TxError::NotInOffice)?;
        match motion {
            Motion::Appoint { holder, .. } if offices.held_by(holder, epoch).is_some() => {
                return Err(TxError::AlreadySeated.into())
            }
            Motion::SetParam {
                param: GovParam::SpendLimit,
                value,
            } if *value > self.params.governance.foundation.spend_limit => {
                return Err(TxError::ParamOutOfBounds.into())
            }
            _ => {}
        }
        let finality = motion.finality(self.foundation_params(st, foundation)?.spend_limit);
        if seat.acting && finality != Finality::Reversible {
            return Err(TxError::ActingSeat.into());
        }
        let id = read_counter(st, StateKey::ProposalCount)?;
        st.put_raw(StateKey::ProposalCount, (id + 1).to_be_bytes().to_vec());
        let record = ProposalRecord {
            id,
            foundation,
            proposer: *from,
            title: title.to_owned(),
            text: text.to_owned(),
            motion: motion.clone(),
            finality,
            deposit,
            opened: epoch,
            closes: epoch.saturating_add(self.params.governance.voting_epochs),
            electorate: seats_of(&offices, track.decides, epoch),
            status: Status::Voting,
            roll: RollCall::default(),
            decided: None,
            enacted: None,
            previous: None,
            challenge: None,
            challenges: 0,
            referendum: match track.decides {
                Branch::Members => Some(Referendum {
                    members: read_counter(st, StateKey::MemberCount(foundation))?,
                    ..Referendum::default()
                }),
                _ => None,
            },
        };
        st.put(StateKey::Proposal(id), &record);
        ctx.events.push(Event::ProposalOpened {
            proposal: id,
            foundation,
            proposer: *from,
        });
        Ok(())
    }

    /// GV3 and GV4.
    fn cast<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        from: &AccountId,
        id: u64,
        (challenge, yes, votes): (bool, bool, u32),
    ) -> Result<(), Failure> {
        let epoch = self.epochs().epoch_of(ctx.height);
        let mut p = self.proposal(st, id)?;
        let branch = if challenge {
            match p.challenge.as_ref().map(|c| c.stage) {
                Some(Stage::BoardVote { until }) if epoch < until => Branch::Board,
                Some(Stage::Gathering { .. }) | None => return Err(TxError::NoChallenge.into()),
                Some(_) => return Err(TxError::VotingClosed.into()),
            }
        } else {
            if p.status != Status::Voting || epoch >= p.closes {
                return Err(TxError::VotingClosed.into());
            }
            match p.motion.track().decides {
                Branch::Members => return Err(TxError::BallotsOnly.into()),
                branch => branch,
            }
        };
        let offices = self.offices_of(st, p.foundation)?;
        let seat = offices
            .held_by(from, epoch)
            .filter(|s| Branch::of(s.office) == branch)
            .ok_or(TxError::NotInOffice)?;
        // An acting seat takes no part in what cannot be undone.
        if seat.acting && (challenge || p.finality != Finality::Reversible) {
            return Err(TxError::ActingSeat.into());
        }
        let foundation = p.foundation;
        let roll = match (challenge, p.challenge.as_mut()) {
            (true, Some(c)) => &mut c.roll,
            _ => &mut p.roll,
        };
        if roll.has(from) {
            return Err(TxError::AlreadyVoted.into());
        }
        if roll.votes.len() >= MAX_SEATS {
            return Err(TxError::TooManyVotes.into());
        }
        self.spend_tokens(st, (foundation, branch, from), epoch, votes)?;
        roll.votes.push(RollVote {
            voter: *from,
            yes,
            votes,
        });
        st.put(StateKey::Proposal(id), &p);
        ctx.events.push(Event::Voted {
            proposal: id,
            voter: *from,
            challenge,
            yes,
            votes,
        });
        Ok(())
    }

    /// GV4: `votes²` of the holder's tokens for `branch` this round.
    fn spend_tokens<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        (foundation, branch, holder): (u16, Branch, &AccountId),
        epoch: u64,
        votes: u32,
    ) -> Result<(), Failure> {
        let allotment = self.foundation_params(st, foundation)?.tokens[usize::from(branch.code())];
        let round = epoch / self.params.governance.round_epochs.max(1);
        let key = StateKey::VoteTokens(foundation, branch.code(), holder);
        let spent = st
            .get::<TokenRecord>(key)?
            .filter(|t| t.round == round)
            .map_or(0, |t| t.spent);
        let cost = u128::from(votes) * u128::from(votes);
        let left = allotment.saturating_sub(spent);
        if cost > left {
            return Err(TxError::VoteTokens { needed: cost, left }.into());
        }
        st.put(
            key,
            &TokenRecord {
                round,
                spent: spent + cost,
            },
        );
        Ok(())
    }

    /// GV7: a challenge, with its deposit.
    fn lodge_challenge<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        from: &AccountId,
        deposit: u128,
        id: u64,
    ) -> Result<(), Failure> {
        let epoch = self.epochs().epoch_of(ctx.height);
        let mut p = self.proposal(st, id)?;
        // The window runs from the tally, or for a reversible decision from when it took
        // effect (so a late enactment cannot outrun it).
        let start = match (p.finality, p.enacted) {
            (Finality::Reversible, Some(h)) => Some(self.epochs().epoch_of(h)),
            _ => p.decided.map(|d| d.epoch),
        };
        let window = self.params.governance.challenge_epochs;
        let open_to_it = p.finality != Finality::Final
            && matches!(p.status, Status::Passed | Status::Enacted)
            && start.is_some_and(|s| epoch < s.saturating_add(window))
            && p.challenges < MAX_CHALLENGES;
        if p.challenge.as_ref().is_some_and(|c| c.stage.open()) {
            return Err(TxError::ChallengeOpen.into());
        }
        if !open_to_it {
            return Err(TxError::NotChallengeable.into());
        }
        let offices = self.offices_of(st, p.foundation)?;
        p.challenge = Some(Challenge {
            by: *from,
            deposit,
            opened: epoch,
            stage: Stage::Gathering {
                until: epoch.saturating_add(self.params.governance.support_epochs),
            },
            closed: 0,
            senate: seats_of(&offices, Branch::Senate, epoch),
            members: read_counter(st, StateKey::MemberCount(p.foundation))?,
            senators: 0,
            supporters: 0,
            electorate: 0,
            roll: RollCall::default(),
        });
        p.challenges += 1;
        st.put(StateKey::Proposal(id), &p);
        ctx.events.push(Event::ChallengeChanged {
            proposal: id,
            stage: "gathering",
        });
        Ok(())
    }

    /// GV7: a senator's or a member's support; enough of it calls the board to vote.
    fn support<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        from: &AccountId,
        id: u64,
    ) -> Result<(), Failure> {
        let epoch = self.epochs().epoch_of(ctx.height);
        let mut p = self.proposal(st, id)?;
        let offices = self.offices_of(st, p.foundation)?;
        let senator = offices
            .held_by(from, epoch)
            .is_some_and(|s| s.office == Office::Senate);
        let member = st
            .get::<MemberRecord>(StateKey::Member(from))?
            .is_some_and(|m| m.foundation == p.foundation);
        let n = p.challenges;
        let Some(c) = p.challenge.as_mut() else {
            return Err(TxError::NoChallenge.into());
        };
        match c.stage {
            Stage::Gathering { until } if epoch < until => {}
            _ => return Err(TxError::NoChallenge.into()),
        }
        if !senator && !member {
            return Err(TxError::NotMember.into());
        }
        if c.by == *from {
            return Err(TxError::SelfTarget.into());
        }
        let key = StateKey::Support(id, n, from);
        if st.exists(key)? {
            return Err(TxError::AlreadySupported.into());
        }
        st.put_raw(key, vec![1]);
        if senator {
            c.senators += 1;
        } else {
            c.supporters += 1;
        }
        if c.supported() {
            c.stage = Stage::BoardVote {
                until: epoch.saturating_add(self.params.governance.board_vote_epochs),
            };
            c.electorate = seats_of(&offices, Branch::Board, epoch);
            ctx.events.push(Event::ChallengeChanged {
                proposal: id,
                stage: "board_vote",
            });
        }
        st.put(StateKey::Proposal(id), &p);
        Ok(())
    }

    /// M17, on the treasury account's shard: pays a decided spend if the treasury holds it.
    fn treasury_spend<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        source: ShardId,
        (foundation, proposal, to, amount): (u16, u64, &AccountId, u128),
    ) -> Result<(), Failure> {
        let treasury = *self
            .params
            .foundations
            .get(usize::from(foundation))
            .ok_or(TxError::UnknownTarget)?;
        if source != ShardId::GLOBAL || !self.local(&treasury) {
            return Err(TxError::WrongShard {
                expected: self.params.shard_map.shard_of(&treasury),
            }
            .into());
        }
        let mut rec = st
            .get::<crate::records::AccountRecord>(StateKey::Account(&treasury))?
            .unwrap_or_else(|| self.new_account(ctx.height));
        if let Err(error) = rec.debit(Asset::Spend, amount) {
            let available = rec.balance(Asset::Spend);
            ctx.events.push(Event::TreasurySpend {
                proposal,
                foundation,
                to: *to,
                amount,
                error: Some(error),
            });
            self.send(
                st,
                ctx,
                ShardId::GLOBAL,
                Payload::SpendFailed {
                    proposal,
                    available,
                },
            )?;
            return Ok(());
        }
        st.put(StateKey::Account(&treasury), &rec);
        self.credit(st, ctx, &treasury, to, Asset::Spend, amount)?;
        ctx.events.push(Event::TreasurySpend {
            proposal,
            foundation,
            to: *to,
            amount,
            error: None,
        });
        Ok(())
    }

    /// M18: the global shard learns that a treasury could not pay a decided spend.
    fn spend_failed<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        source: ShardId,
        (id, available): (u64, u128),
    ) -> Result<(), Failure> {
        self.global_only()?;
        let mut p = self.proposal(st, id)?;
        let treasury = self.params.foundations[usize::from(p.foundation)];
        if source != self.params.shard_map.shard_of(&treasury)
            || !matches!(p.motion, Motion::Spend { .. })
            || p.status != Status::Enacted
        {
            return Err(TxError::WrongShard {
                expected: self.params.shard_map.shard_of(&treasury),
            }
            .into());
        }
        let Motion::Spend { amount, .. } = p.motion else {
            return Ok(());
        };
        p.status = Status::Failed;
        st.put(StateKey::Proposal(id), &p);
        ctx.events.push(Event::EnactmentFailed {
            proposal: id,
            error: TxError::InsufficientBalance {
                needed: amount,
                available,
            },
        });
        Ok(())
    }
}
