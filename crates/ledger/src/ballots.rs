//! Members' anonymous ballots in referenda (rules BL1–BL4), on the global shard. The wire
//! forms are in [`starling_types::ballots`]; the cryptography (RFC 9474 blind RSA) in
//! [`starling_crypto::blind`].
//!
//! - BL1 (credential key): a foundation's registrar publishes one blind-signature key per
//!   round, once, for any round up to the next. The key fixes the credential's public
//!   metadata: foundation, round, branch (members) and the members' token allotment at
//!   publication, which is recorded beside it.
//! - BL2 (credentials): a member of the foundation asks for a credential of a round up to
//!   the next (so credentials can be issued before a referendum opens, and the timing of
//!   issuance says less about who votes when), with a blinded message (again, until it is
//!   answered); the registrar answers with
//!   the blind signature, which the ledger checks is exactly the signature of that blinded
//!   message (`s^e mod n = m`). Requests and answers are public: the issuance log. What the
//!   registrar sees (the member, the blinded message, its signature) shares no value with
//!   what the member later shows (the ballot key, the credential): RSA blinding makes them
//!   independent.
//! - BL3 (ballots): a ballot is a transaction from a fresh ballot key, with no fee and no
//!   tip, that no account holds. It counts if its credential verifies under the key of its
//!   foundation and round over [`credential_message`] for that ballot key, its round is the
//!   one its referendum opened in (so a member has one voice on it however long it runs
//!   across rounds), its nonce is the next of that ballot key, and its proposal is the
//!   foundation's members' referendum still voting. The ballot key is the nullifier: a
//!   credential signs one key, so one credential is one voice per question. A later ballot
//!   on the same question replaces the earlier one (its tokens come back first), at most
//!   [`MAX_BALLOTS_PER_QUESTION`] in all; `n` votes cost `n²` of the credential's allotment
//!   for the round. Refused or counted, a ballot takes its gas of the block (rule G2).
//!   The ballot key must be fresh: the global shard cannot tell a key some account also
//!   uses, so a member who votes from its account's key gives its vote away.
//! - BL4 (tally): a referendum counts ballots by difference as they come; anyone recounts
//!   it from the ballots on record. Its quorum's base is the foundation's members when it
//!   opened; it is tallied only once voting has closed. A valid credential from a ballot
//!   key beyond the count the log issued is proof that the registrar signed off the ledger:
//!   it counts nothing, marks the round's key forged, and the foundation's referenda of that
//!   round are void (rejected, the deposit back). A registrar can still vote in place of
//!   members who never use their credentials, undetectably: one signer can; several
//!   registrars signing each credential would close that.

use crate::exec::{BlockCtx, Failure};
use crate::overlay::Overlay;
use crate::proposals::{ProposalRecord, Status};
use crate::records::{MemberRecord, StateKey};
use crate::{Event, ShardLedger, StateError, StateView, TxError};
use starling_crypto::blind::{Credential, CredentialKey};
use starling_types::ballots::{credential_message, MAX_BALLOTS_PER_QUESTION};
use starling_types::codec::{put, Decode, DecodeError, Encode, Reader};
use starling_types::{AccountId, Action, Ballot, Branch, PublicKey, TxBody};

pub use crate::proposals::record::Referendum;

/// A registrar's published key for one round (rule BL1).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CredentialKeyRecord {
    /// The RSA key, in DER.
    pub key: Vec<u8>,
    /// What each credential of the round may spend (the members' allotment when published).
    pub tokens: u128,
    /// Credentials issued under it.
    pub issued: u64,
    /// Ballot keys that have voted under it.
    pub voters: u64,
    /// A valid credential came beyond the issuance log: the registrar signed off the ledger,
    /// and the round's referenda of this foundation are void (rule BL4).
    pub forged: bool,
}

impl Encode for CredentialKeyRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put::bytes16(out, &self.key);
        put::u128(out, self.tokens);
        put::u64(out, self.issued);
        put::u64(out, self.voters);
        put::bool(out, self.forged);
    }
}

impl Decode for CredentialKeyRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CredentialKeyRecord {
            key: r
                .bytes16(
                    "credential key",
                    starling_types::ballots::MAX_CREDENTIAL_KEY_BYTES,
                )?
                .to_vec(),
            tokens: r.u128()?,
            issued: r.u64()?,
            voters: r.u64()?,
            forged: r.bool()?,
        })
    }
}

/// A member's request, and the registrar's answer once given (rule BL2).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CredentialRequest {
    pub blinded: Vec<u8>,
    pub blind_sig: Option<Vec<u8>>,
}

impl Encode for CredentialRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        put::bytes16(out, &self.blinded);
        put::option(out, &self.blind_sig, |o, s| put::bytes16(o, s));
    }
}

impl Decode for CredentialRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        use starling_types::ballots::blind_bytes;
        Ok(CredentialRequest {
            blinded: blind_bytes(r, "blinded message")?,
            blind_sig: r.option("blind signature", |r| blind_bytes(r, "blind signature"))?,
        })
    }
}

/// A ballot key's use (rule BL3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NullifierRecord {
    pub foundation: u16,
    pub round: u64,
    /// Its next ballot's nonce.
    pub nonce: u64,
    /// Tokens its standing ballots cost.
    pub spent: u128,
}

impl Encode for NullifierRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u16(out, self.foundation);
        put::u64(out, self.round);
        put::u64(out, self.nonce);
        put::u128(out, self.spent);
    }
}

impl Decode for NullifierRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NullifierRecord {
            foundation: r.u16()?,
            round: r.u64()?,
            nonce: r.u64()?,
            spent: r.u128()?,
        })
    }
}

/// A ballot key's standing ballot on one question (rule BL3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BallotRecord {
    pub yes: bool,
    pub votes: u32,
    /// Ballots this key cast on the question (at most [`MAX_BALLOTS_PER_QUESTION`]).
    pub cast: u8,
}

impl Encode for BallotRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put::bool(out, self.yes);
        put::u32(out, self.votes);
        put::u8(out, self.cast);
    }
}

impl Decode for BallotRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(BallotRecord {
            yes: r.bool()?,
            votes: r.u32()?,
            cast: r.u8()?,
        })
    }
}

/// Credential verdicts computed ahead of a block's ballots, by the hash of what each depends
/// on (the foundation and round, the ballot key, the randomizer and the signature).
pub type Verdicts = std::collections::HashMap<starling_types::Hash, bool>;

/// Fewest ballots in a block for which their credentials are verified on several cores.
const PARALLEL_FROM: usize = 32;

/// Everything a credential's verdict depends on besides the round's key, hashed: the
/// foundation and round (which name the key), the ballot key, the randomizer and the
/// signature.
fn verdict_id(ballot: &Ballot, voter: &AccountId) -> starling_types::Hash {
    let mut b = Vec::with_capacity(64 + ballot.credential.len());
    put::u16(&mut b, ballot.foundation);
    put::u64(&mut b, ballot.round);
    voter.encode(&mut b);
    b.extend_from_slice(&ballot.randomizer);
    b.extend_from_slice(&ballot.credential);
    starling_types::Hash::of(&[&b])
}

/// Why [`ShardLedger::check_ballot`] would not admit a ballot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BallotCheck {
    /// The ledger would refuse it.
    Refused(TxError),
    /// The state could not be read.
    State(StateError),
}

fn cost(votes: u32) -> u128 {
    u128::from(votes) * u128::from(votes)
}

impl ShardLedger {
    /// The current governance round.
    pub(crate) fn round_at(&self, height: u64) -> u64 {
        self.epochs().epoch_of(height) / self.params.governance.round_epochs.max(1)
    }

    /// Whether `from` is the registrar of `foundation` now.
    fn check_registrar<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        ctx: &mut BlockCtx,
        foundation: u16,
        from: &AccountId,
    ) -> Result<(), Failure> {
        let serves = self
            .held_federation(st, ctx)?
            .foundations
            .get(usize::from(foundation))
            .is_some_and(|f| f.registrar == *from && f.status.takes_charges());
        if serves {
            Ok(())
        } else {
            Err(TxError::NotRegistrar.into())
        }
    }

    /// BL1.
    pub(crate) fn publish_credential_key<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        from: &AccountId,
        (foundation, round, key): (u16, u64, &[u8]),
    ) -> Result<(), Failure> {
        self.check_registrar(st, ctx, foundation, from)?;
        if round > self.round_at(ctx.height).saturating_add(1) {
            return Err(TxError::WrongRound.into());
        }
        if st
            .get::<CredentialKeyRecord>(StateKey::CredentialKey(foundation, round))?
            .is_some()
        {
            return Err(TxError::KeyPublished.into());
        }
        // Kept as this library encodes it, so that a later parser reads what it wrote.
        let key = CredentialKey::from_der(key)
            .map_err(|_| TxError::BadCredentialKey)?
            .to_der();
        let tokens =
            self.foundation_params(st, foundation)?.tokens[usize::from(Branch::Members.code())];
        let record = CredentialKeyRecord {
            key,
            tokens,
            issued: 0,
            voters: 0,
            forged: false,
        };
        st.put(StateKey::CredentialKey(foundation, round), &record);
        ctx.events
            .push(Event::CredentialKeyPublished { foundation, round });
        Ok(())
    }

    fn credential_key<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        foundation: u16,
        round: u64,
    ) -> Result<(CredentialKeyRecord, CredentialKey), Failure> {
        let record: CredentialKeyRecord = st
            .get(StateKey::CredentialKey(foundation, round))?
            .ok_or(TxError::NoCredentialKey)?;
        let key =
            CredentialKey::from_der_cached(&record.key).map_err(|_| TxError::BadCredentialKey)?;
        Ok((record, key))
    }

    /// BL2: a member's request.
    pub(crate) fn request_credential<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        from: &AccountId,
        (round, blinded): (u64, &[u8]),
    ) -> Result<(), Failure> {
        if round > self.round_at(ctx.height).saturating_add(1) {
            return Err(TxError::WrongRound.into());
        }
        let member: MemberRecord = st.get(StateKey::Member(from))?.ok_or(TxError::NotMember)?;
        let foundation = member.foundation;
        let (_, key) = self.credential_key(st, foundation, round)?;
        if blinded.len() != key.modulus_len() {
            return Err(TxError::BadCredential.into());
        }
        let at = StateKey::CredentialRequest(foundation, round, from);
        if st
            .get::<CredentialRequest>(at)?
            .is_some_and(|r| r.blind_sig.is_some())
        {
            return Err(TxError::CredentialIssued.into());
        }
        let request = CredentialRequest {
            blinded: blinded.to_vec(),
            blind_sig: None,
        };
        st.put(at, &request);
        ctx.events.push(Event::CredentialRequested {
            foundation,
            round,
            member: *from,
        });
        Ok(())
    }

    /// BL2: the registrar's answer.
    pub(crate) fn issue_credential<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        from: &AccountId,
        (member, round, blind_sig): (&AccountId, u64, &[u8]),
    ) -> Result<(), Failure> {
        if round > self.round_at(ctx.height).saturating_add(1) {
            return Err(TxError::WrongRound.into());
        }
        let foundation = st
            .get::<MemberRecord>(StateKey::Member(member))?
            .ok_or(TxError::NotMember)?
            .foundation;
        self.check_registrar(st, ctx, foundation, from)?;
        let at = StateKey::CredentialRequest(foundation, round, member);
        let mut request: CredentialRequest = st.get(at)?.ok_or(TxError::UnknownTarget)?;
        if request.blind_sig.is_some() {
            return Err(TxError::CredentialIssued.into());
        }
        let (mut record, key) = self.credential_key(st, foundation, round)?;
        key.check_blind_signature(&request.blinded, blind_sig)
            .map_err(|_| TxError::BadCredential)?;
        request.blind_sig = Some(blind_sig.to_vec());
        record.issued += 1;
        st.put(at, &request);
        st.put(StateKey::CredentialKey(foundation, round), &record);
        ctx.events.push(Event::CredentialIssued {
            foundation,
            round,
            member: *member,
        });
        Ok(())
    }

    /// What a pool needs to admit a ballot (the mempool's P1 for ballots): whether it would
    /// count in a block at `height` on `view`, whatever its nonce (the pool orders those), by
    /// the same code that applies it. `Ok` gives its ballot key's next nonce.
    pub fn check_ballot<V: StateView + ?Sized>(
        &self,
        view: &V,
        body: &TxBody,
        envelope_len: usize,
        height: u64,
    ) -> Result<u64, BallotCheck> {
        let Action::Ballot(ballot) = &body.action else {
            return Err(BallotCheck::Refused(TxError::WrongShard {
                expected: self.params.shard_map.shard_of(&body.account),
            }));
        };
        let mut st = Overlay::new(view);
        let next = st
            .get::<NullifierRecord>(StateKey::Nullifier(&body.account))
            .map_err(BallotCheck::State)?
            .map_or(0, |r| r.nonce);
        let mut ctx = BlockCtx::new(height, 0);
        let at = TxBody {
            nonce: next,
            ..body.clone()
        };
        match self.ballot_tx(&mut st, &mut ctx, &at, ballot, envelope_len) {
            Ok(_) => Ok(next),
            Err(Failure::Rejected(e)) => Err(BallotCheck::Refused(e)),
            Err(Failure::State(e)) => Err(BallotCheck::State(e)),
        }
    }

    /// BL3's credential checks for a block's ballots, ahead of them and on every core: the
    /// same verdicts as one at a time (each is a function of the key, the message and the
    /// signature alone), so only the time changes. Few ballots are left to be checked as
    /// they apply.
    pub(crate) fn check_credentials<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        txs: &[(TxBody, starling_types::Hash)],
    ) -> Result<Verdicts, StateError> {
        let ballots = txs
            .iter()
            .filter(|(b, _)| matches!(b.action, Action::Ballot(_)))
            .count();
        if ballots < PARALLEL_FROM || self.shard != starling_types::ShardId::GLOBAL {
            return Ok(Verdicts::new());
        }
        let mut jobs = Vec::with_capacity(ballots);
        for (body, _) in txs {
            let Action::Ballot(b) = &body.action else {
                continue;
            };
            let at = StateKey::CredentialKey(b.foundation, b.round);
            let Some(record) = st.get::<CredentialKeyRecord>(at)? else {
                continue;
            };
            let Ok(key) = CredentialKey::from_der_cached(&record.key) else {
                continue;
            };
            jobs.push((verdict_id(b, &body.account), key, b, &body.account));
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let chunk = jobs.len().div_ceil(threads);
        let verdicts = std::thread::scope(|s| {
            let workers: Vec<_> = jobs
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|(id, key, b, voter)| (*id, self.credential_valid(key, b, voter)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            // A worker that panicked leaves its ballots to be checked as they apply.
            workers
                .into_iter()
                .filter_map(|w| w.join().ok())
                .flatten()
                .collect()
        });
        Ok(verdicts)
    }

    /// BL3's credential check: the ballot's credential signs [`credential_message`] for its
    /// foundation, round and ballot key under the round's key.
    fn credential_valid(&self, key: &CredentialKey, ballot: &Ballot, voter: &AccountId) -> bool {
        let msg = credential_message(
            &self.params.chain_id,
            ballot.foundation,
            ballot.round,
            voter,
        );
        let credential = Credential {
            randomizer: ballot.randomizer,
            signature: ballot.credential.clone(),
        };
        key.verify(&msg, &credential).is_ok()
    }

    /// BL4: whether a referendum's round's credentials of its foundation were forged.
    pub(crate) fn referendum_void<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        p: &ProposalRecord,
    ) -> Result<bool, StateError> {
        let round = p.opened / self.params.governance.round_epochs.max(1);
        Ok(st
            .get::<CredentialKeyRecord>(StateKey::CredentialKey(p.foundation, round))?
            .is_some_and(|k| k.forged))
    }

    /// A ballot transaction: rules T4 (expiry) and T5 (room in the block) as for any
    /// transaction, then BL3. It pays nothing: its gas and fee paid are `(gas, 0)`.
    pub(crate) fn ballot_tx<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        body: &TxBody,
        ballot: &Ballot,
        envelope_len: usize,
    ) -> Result<(u64, u128), Failure> {
        self.global_only()?;
        let used: Option<NullifierRecord> = st.get(StateKey::Nullifier(&body.account))?;
        let next = used.map_or(0, |u| u.nonce);
        let gas = self.check_sequence(ctx, body, next, envelope_len)?;
        self.apply_ballot(st, ctx, body, ballot, used)?;
        Ok((gas, 0))
    }

    /// BL3: a ballot, from its ballot key `body.account`. The cheap checks come first; the
    /// credential's RSA verification only for a ballot that would otherwise count.
    pub(crate) fn apply_ballot<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        ctx: &mut BlockCtx,
        body: &TxBody,
        ballot: &Ballot,
        used: Option<NullifierRecord>,
    ) -> Result<(), Failure> {
        if body.max_fee != 0 || body.tip != 0 {
            return Err(TxError::BallotPays.into());
        }
        let voter = &body.account;
        let mut use_ = used.unwrap_or(NullifierRecord {
            foundation: ballot.foundation,
            round: ballot.round,
            nonce: 0,
            spent: 0,
        });
        let mut p = self.referendum_open(st, ctx, ballot)?;
        // A ballot key's credential names one foundation and round.
        if (use_.foundation, use_.round) != (ballot.foundation, ballot.round) {
            return Err(TxError::BadCredential.into());
        }
        let (mut record, key) = self.credential_key(st, ballot.foundation, ballot.round)?;
        let valid = match ctx.credentials.get(&verdict_id(ballot, voter)) {
            Some(v) => *v,
            None => self.credential_valid(&key, ballot, voter),
        };
        if !valid {
            return Err(TxError::BadCredential.into());
        }
        if used.is_none() {
            if record.voters >= record.issued {
                // More valid credentials than the log issued: proof that the registrar
                // signed off the ledger. The ballot counts nothing; it voids the round.
                record.forged = true;
                st.put(
                    StateKey::CredentialKey(ballot.foundation, ballot.round),
                    &record,
                );
                ctx.events.push(Event::CredentialForged {
                    foundation: ballot.foundation,
                    round: ballot.round,
                });
                return Ok(());
            }
            record.voters += 1;
            st.put(
                StateKey::CredentialKey(ballot.foundation, ballot.round),
                &record,
            );
        }
        self.count_ballot(st, voter, ballot, &mut p, (&mut use_, record.tokens))?;
        use_.nonce += 1;
        st.put(StateKey::Nullifier(voter), &use_);
        st.put(StateKey::Proposal(ballot.proposal), &p);
        ctx.events.push(Event::BallotCast {
            proposal: ballot.proposal,
            ballot_key: *voter,
            yes: ballot.yes,
            votes: ballot.votes,
        });
        Ok(())
    }

    /// The ballot's proposal: a members' referendum of its foundation, opened in its round,
    /// still voting.
    fn referendum_open<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        ctx: &BlockCtx,
        ballot: &Ballot,
    ) -> Result<ProposalRecord, Failure> {
        let p = self.proposal(st, ballot.proposal)?;
        if p.referendum.is_none() || p.foundation != ballot.foundation {
            return Err(TxError::UnknownTarget.into());
        }
        if ballot.round != p.opened / self.params.governance.round_epochs.max(1) {
            return Err(TxError::WrongRound.into());
        }
        let epoch = self.epochs().epoch_of(ctx.height);
        if p.status != Status::Voting || epoch >= p.closes {
            return Err(TxError::VotingClosed.into());
        }
        Ok(p)
    }

    /// BL3 and BL4: the ballot replaces the key's standing one on its question, in the
    /// tokens spent and in the count.
    fn count_ballot<V: StateView + ?Sized>(
        &self,
        st: &mut Overlay<'_, V>,
        voter: &PublicKey,
        ballot: &Ballot,
        p: &mut ProposalRecord,
        (use_, allotment): (&mut NullifierRecord, u128),
    ) -> Result<(), Failure> {
        let Some(count) = p.referendum.as_mut() else {
            return Err(TxError::UnknownTarget.into());
        };
        let at = StateKey::BallotOn(ballot.proposal, voter);
        let before: Option<BallotRecord> = st.get(at)?;
        let cast = before.map_or(0, |b| b.cast);
        if cast >= MAX_BALLOTS_PER_QUESTION {
            return Err(TxError::TooManyBallots.into());
        }
        let refund = before.map_or(0, |b| cost(b.votes));
        let left = allotment.saturating_sub(use_.spent - refund);
        let needed = cost(ballot.votes);
        if needed > left {
            return Err(TxError::VoteTokens { needed, left }.into());
        }
        match before {
            Some(b) if b.yes => count.yes -= u64::from(b.votes),
            Some(b) => count.no -= u64::from(b.votes),
            None => count.voters += 1,
        }
        if ballot.yes {
            count.yes += u64::from(ballot.votes);
        } else {
            count.no += u64::from(ballot.votes);
        }
        use_.spent = use_.spent - refund + needed;
        let record = BallotRecord {
            yes: ballot.yes,
            votes: ballot.votes,
            cast: cast + 1,
        };
        st.put(at, &record);
        Ok(())
    }
}
