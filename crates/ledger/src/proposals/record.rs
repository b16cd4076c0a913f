//! The records proposals keep on the global shard, with their bounded encodings.

use starling_types::codec::{put, Decode, DecodeError, Encode, Reader};
use starling_types::offices::MAX_SEATS;
use starling_types::proposals::{MAX_PROPOSAL_TEXT_BYTES, MAX_TITLE_BYTES, MAX_VOTE_TOKENS};
use starling_types::{AccountId, Finality, GovParam, Motion, PublicKey};

/// A foundation's parameters (rule GV1's "set a parameter").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FoundationParams {
    /// Vote tokens per holder per round, by [`starling_types::Branch::code`] (rule GV4).
    pub tokens: [u128; 5],
    /// The largest spend that takes effect at enactment, and the most such spends add up
    /// to per round (rule GV6).
    pub spend_limit: u128,
    /// Which decision last set each parameter (by [`GovParam::code`]): its proposal's
    /// number plus one (0: the network's default), so that undoing a decision never undoes
    /// a later one (rule GV8).
    pub set_by: [u64; 6],
}

impl Default for FoundationParams {
    fn default() -> Self {
        // Members and staff 1,000 tokens a round (31 votes on one question), the senate,
        // the board and the executive 10,000 (100 votes); spends up to ~2,500 posts' fees
        // take effect at once.
        Self {
            tokens: [1_000, 1_000, 10_000, 10_000, 10_000],
            spend_limit: 10_000_000_000,
            set_by: [0; 6],
        }
    }
}

impl FoundationParams {
    pub fn get(&self, param: GovParam) -> u128 {
        match param {
            GovParam::Tokens(b) => self.tokens[usize::from(b.code())],
            GovParam::SpendLimit => self.spend_limit,
        }
    }

    pub fn set(&mut self, param: GovParam, value: u128) {
        match param {
            GovParam::Tokens(b) => self.tokens[usize::from(b.code())] = value,
            GovParam::SpendLimit => self.spend_limit = value,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), DecodeError> {
        if self
            .tokens
            .iter()
            .any(|t| !(1..=MAX_VOTE_TOKENS).contains(t))
        {
            return Err(DecodeError::InvalidValue(
                "vote tokens (1 to 1,000,000,000 per round)",
            ));
        }
        Ok(())
    }
}

impl Encode for FoundationParams {
    fn encode(&self, out: &mut Vec<u8>) {
        for t in self.tokens {
            put::u128(out, t);
        }
        put::u128(out, self.spend_limit);
        for h in self.set_by {
            put::u64(out, h);
        }
    }
}

impl Decode for FoundationParams {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let p = FoundationParams {
            tokens: [r.u128()?, r.u128()?, r.u128()?, r.u128()?, r.u128()?],
            spend_limit: r.u128()?,
            set_by: [r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?],
        };
        p.validate()?;
        Ok(p)
    }
}

/// What a holder has spent of one branch's tokens in `round` (rule GV4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TokenRecord {
    pub round: u64,
    pub spent: u128,
}

impl Encode for TokenRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u64(out, self.round);
        put::u128(out, self.spent);
    }
}

impl Decode for TokenRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TokenRecord {
            round: r.u64()?,
            spent: r.u128()?,
        })
    }
}

/// One seat holder's public vote.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RollVote {
    pub voter: AccountId,
    pub yes: bool,
    /// Votes cast (they cost `votes²` tokens).
    pub votes: u32,
}

/// A public roll call: every vote cast on one question, in order.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct RollCall {
    pub votes: Vec<RollVote>,
}

impl RollCall {
    /// Weighted yes and no.
    pub fn tally(&self) -> (u64, u64) {
        self.votes.iter().fold((0, 0), |(y, n), v| {
            if v.yes {
                (y + u64::from(v.votes), n)
            } else {
                (y, n + u64::from(v.votes))
            }
        })
    }

    pub fn has(&self, voter: &AccountId) -> bool {
        self.votes.iter().any(|v| v.voter == *voter)
    }

    /// Whether at least `quorum_pct`% of `electorate` seats voted and strictly more than
    /// `threshold_pct`% of the weighted votes are yes (rule GV5).
    pub fn carries(&self, electorate: u16, quorum_pct: u8, threshold_pct: u8) -> (bool, bool) {
        let quorum = electorate > 0
            && self.votes.len() as u64 * 100 >= u64::from(quorum_pct) * u64::from(electorate);
        let (yes, no) = self.tally();
        let passes = quorum && yes * 100 > u64::from(threshold_pct) * (yes + no);
        (quorum, passes)
    }
}

impl Encode for RollCall {
    fn encode(&self, out: &mut Vec<u8>) {
        put::seq(out, &self.votes, |o, v| {
            v.voter.encode(o);
            put::bool(o, v.yes);
            put::u32(o, v.votes);
        });
    }
}

impl Decode for RollCall {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RollCall {
            votes: r.seq("roll call", MAX_SEATS, |r| {
                Ok(RollVote {
                    voter: PublicKey::decode(r)?,
                    yes: r.bool()?,
                    votes: r.u32()?,
                })
            })?,
        })
    }
}

/// A members' referendum's count, kept by difference as ballots come (rule BL4).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Referendum {
    /// The foundation's members when it opened: the quorum's base.
    pub members: u64,
    /// Ballot keys with a standing ballot on it.
    pub voters: u64,
    /// Weighted yes and no.
    pub yes: u64,
    pub no: u64,
}

impl Referendum {
    /// Whether at least `quorum_pct`% of the members voted and strictly more than
    /// `threshold_pct`% of the weighted votes are yes (rules GV5, BL4).
    pub fn carries(&self, quorum_pct: u8, threshold_pct: u8) -> (bool, bool) {
        let quorum = self.members > 0
            && u128::from(self.voters) * 100 >= u128::from(quorum_pct) * u128::from(self.members);
        let (yes, no) = (u128::from(self.yes), u128::from(self.no));
        let passes = quorum && yes * 100 > u128::from(threshold_pct) * (yes + no);
        (quorum, passes)
    }
}

/// Where a proposal stands (rule GV5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    /// Open for votes.
    Voting,
    /// Tallied yes; takes effect at a later advance.
    Passed,
    /// Tallied no.
    Rejected,
    /// Too few of the deciding seats voted.
    NoQuorum,
    /// Took effect.
    Enacted,
    /// Could not take effect (the event says why).
    Failed,
    /// Took effect, then a challenge overturned it and it was undone.
    Reversed,
    /// Passed, but a challenge overturned it before it took effect.
    Cancelled,
    /// Passed, but no one advanced it in time to take effect (rule GV6).
    Expired,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Voting,
        Status::Passed,
        Status::Rejected,
        Status::NoQuorum,
        Status::Enacted,
        Status::Failed,
        Status::Reversed,
        Status::Cancelled,
        Status::Expired,
    ];

    pub fn code(self) -> u8 {
        Status::ALL.iter().position(|s| *s == self).unwrap_or(0) as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Voting => "voting",
            Status::Passed => "passed",
            Status::Rejected => "rejected",
            Status::NoQuorum => "no_quorum",
            Status::Enacted => "enacted",
            Status::Failed => "failed",
            Status::Reversed => "reversed",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
        }
    }
}

/// Where a challenge stands (rule GV7).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stage {
    /// Gathering support until epoch `until` (exclusive).
    Gathering { until: u64 },
    /// Supported: the board votes until epoch `until` (exclusive).
    BoardVote { until: u64 },
    /// The board overturned the decision at `height`; it is undone at a later advance.
    Overturned { height: u64 },
    /// Done: the decision was undone (or cancelled).
    Undone,
    /// Done: the board upheld the decision.
    Upheld,
    /// Done: too little support in time.
    Lapsed,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Gathering { .. } => "gathering",
            Stage::BoardVote { .. } => "board_vote",
            Stage::Overturned { .. } => "overturned",
            Stage::Undone => "undone",
            Stage::Upheld => "upheld",
            Stage::Lapsed => "lapsed",
        }
    }

    /// Still running: it holds the decision's effect (or its undoing) in suspense.
    pub fn open(self) -> bool {
        matches!(
            self,
            Stage::Gathering { .. } | Stage::BoardVote { .. } | Stage::Overturned { .. }
        )
    }

    fn encode(self, out: &mut Vec<u8>) {
        match self {
            Stage::Gathering { until } => {
                put::u8(out, 0);
                put::u64(out, until);
            }
            Stage::BoardVote { until } => {
                put::u8(out, 1);
                put::u64(out, until);
            }
            Stage::Overturned { height } => {
                put::u8(out, 2);
                put::u64(out, height);
            }
            Stage::Undone => put::u8(out, 3),
            Stage::Upheld => put::u8(out, 4),
            Stage::Lapsed => put::u8(out, 5),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => Stage::Gathering { until: r.u64()? },
            1 => Stage::BoardVote { until: r.u64()? },
            2 => Stage::Overturned { height: r.u64()? },
            3 => Stage::Undone,
            4 => Stage::Upheld,
            5 => Stage::Lapsed,
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "challenge stage",
                    tag,
                })
            }
        })
    }
}

/// A challenge of a decision (rule GV7).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Challenge {
    pub by: AccountId,
    pub deposit: u128,
    /// Global epoch it was lodged in.
    pub opened: u64,
    pub stage: Stage,
    /// Global epoch it ended in (0 while it runs): a decision's time to take effect counts
    /// from then (rule GV6).
    pub closed: u64,
    /// Senate seats in term, and the foundation's members, when it was lodged.
    pub senate: u16,
    pub members: u64,
    /// Supporters so far: senators, and members.
    pub senators: u16,
    pub supporters: u64,
    /// Board seats in term when support was reached.
    pub electorate: u16,
    /// The board's roll call (yes: overturn).
    pub roll: RollCall,
}

impl Challenge {
    /// Rule GV7: 5% of the senate, or 1% of the members (at least one either way).
    pub fn supported(&self) -> bool {
        let senate =
            self.senate > 0 && u64::from(self.senators) * 100 >= 5 * u64::from(self.senate);
        let members = self.members > 0 && self.supporters * 100 >= self.members;
        (senate && self.senators > 0) || (members && self.supporters > 0)
    }
}

impl Encode for Challenge {
    fn encode(&self, out: &mut Vec<u8>) {
        self.by.encode(out);
        put::u128(out, self.deposit);
        put::u64(out, self.opened);
        self.stage.encode(out);
        put::u64(out, self.closed);
        put::u16(out, self.senate);
        put::u64(out, self.members);
        put::u16(out, self.senators);
        put::u64(out, self.supporters);
        put::u16(out, self.electorate);
        self.roll.encode(out);
    }
}

impl Decode for Challenge {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Challenge {
            by: PublicKey::decode(r)?,
            deposit: r.u128()?,
            opened: r.u64()?,
            stage: Stage::decode(r)?,
            closed: r.u64()?,
            senate: r.u16()?,
            members: r.u64()?,
            senators: r.u16()?,
            supporters: r.u64()?,
            electorate: r.u16()?,
            roll: RollCall::decode(r)?,
        })
    }
}

/// When a proposal was tallied.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Decided {
    pub height: u64,
    pub epoch: u64,
}

/// A proposal and everything that happened to it (rules GV2–GV8).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProposalRecord {
    pub id: u64,
    pub foundation: u16,
    pub proposer: AccountId,
    pub title: String,
    pub text: String,
    pub motion: Motion,
    /// When it takes effect if it passes (fixed when it opens, by the spend limit then).
    pub finality: Finality,
    /// Held until the tally.
    pub deposit: u128,
    /// Global epoch it opened in; votes are taken while the epoch is below `closes`.
    pub opened: u64,
    pub closes: u64,
    /// Seats of the deciding branch in term when it opened (the quorum's base).
    pub electorate: u16,
    pub status: Status,
    pub roll: RollCall,
    pub decided: Option<Decided>,
    /// The height at which it took effect.
    pub enacted: Option<u64>,
    /// A parameter's value before this motion set it, and which decision had set that
    /// (what a reversal restores).
    pub previous: Option<(u128, u64)>,
    /// The latest challenge, and how many were lodged.
    pub challenge: Option<Challenge>,
    pub challenges: u8,
    /// A members' referendum's count (rule BL4); `None` for a roll call.
    pub referendum: Option<Referendum>,
}

fn finality_code(f: Finality) -> u8 {
    match f {
        Finality::Reversible => 0,
        Finality::Final => 1,
        Finality::AfterWindow => 2,
    }
}

/// Most challenges one decision may face (each may hold an irreversible one back for at
/// most its support and board periods, so this bounds the delay).
pub const MAX_CHALLENGES: u8 = 3;

impl Encode for ProposalRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u64(out, self.id);
        put::u16(out, self.foundation);
        self.proposer.encode(out);
        put::string(out, &self.title);
        put::string(out, &self.text);
        self.motion.encode(out);
        put::u8(out, finality_code(self.finality));
        put::u128(out, self.deposit);
        put::u64(out, self.opened);
        put::u64(out, self.closes);
        put::u16(out, self.electorate);
        put::u8(out, self.status.code());
        self.roll.encode(out);
        put::option(out, &self.decided, |o, d| {
            put::u64(o, d.height);
            put::u64(o, d.epoch);
        });
        put::option(out, &self.enacted, |o, h| put::u64(o, *h));
        put::option(out, &self.previous, |o, (v, by)| {
            put::u128(o, *v);
            put::u64(o, *by);
        });
        put::option(out, &self.challenge, |o, c| c.encode(o));
        put::u8(out, self.challenges);
        put::option(out, &self.referendum, |o, r| {
            put::u64(o, r.members);
            put::u64(o, r.voters);
            put::u64(o, r.yes);
            put::u64(o, r.no);
        });
    }
}

impl Decode for ProposalRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ProposalRecord {
            id: r.u64()?,
            foundation: r.u16()?,
            proposer: PublicKey::decode(r)?,
            title: r.string("proposal title", MAX_TITLE_BYTES)?,
            text: r.string("proposal text", MAX_PROPOSAL_TEXT_BYTES)?,
            motion: Motion::decode(r)?,
            finality: match r.u8()? {
                0 => Finality::Reversible,
                1 => Finality::Final,
                2 => Finality::AfterWindow,
                tag => {
                    return Err(DecodeError::InvalidTag {
                        what: "finality",
                        tag,
                    })
                }
            },
            deposit: r.u128()?,
            opened: r.u64()?,
            closes: r.u64()?,
            electorate: r.u16()?,
            status: {
                let code = r.u8()?;
                *Status::ALL
                    .get(usize::from(code))
                    .ok_or(DecodeError::InvalidTag {
                        what: "proposal status",
                        tag: code,
                    })?
            },
            roll: RollCall::decode(r)?,
            decided: r.option("decided", |r| {
                Ok(Decided {
                    height: r.u64()?,
                    epoch: r.u64()?,
                })
            })?,
            enacted: r.option("enacted", |r| r.u64())?,
            previous: r.option("previous", |r| Ok((r.u128()?, r.u64()?)))?,
            challenge: r.option("challenge", Challenge::decode)?,
            challenges: r.u8()?,
            referendum: r.option("referendum", |r| {
                Ok(Referendum {
                    members: r.u64()?,
                    voters: r.u64()?,
                    yes: r.u64()?,
                    no: r.u64()?,
                })
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_types::Office;

    fn sample() -> ProposalRecord {
        let k = PublicKey::ed25519([4; 32]);
        ProposalRecord {
            id: 3,
            foundation: 1,
            proposer: k,
            title: "Seat Ada".into(),
            text: "She ran the relay.".into(),
            motion: Motion::Appoint {
                office: Office::Officer,
                holder: k,
            },
            finality: Finality::Reversible,
            deposit: 5,
            opened: 2,
            closes: 4,
            electorate: 3,
            status: Status::Enacted,
            roll: RollCall {
                votes: vec![RollVote {
                    voter: k,
                    yes: true,
                    votes: 7,
                }],
            },
            decided: Some(Decided {
                height: 10,
                epoch: 4,
            }),
            enacted: Some(11),
            previous: None,
            challenge: Some(Challenge {
                by: k,
                deposit: 9,
                opened: 5,
                stage: Stage::BoardVote { until: 9 },
                closed: 0,
                senate: 4,
                members: 100,
                senators: 1,
                supporters: 0,
                electorate: 3,
                roll: RollCall::default(),
            }),
            challenges: 1,
            referendum: Some(Referendum {
                members: 40,
                voters: 3,
                yes: 5,
                no: 2,
            }),
        }
    }

    #[test]
    fn records_round_trip_and_refuse_every_truncation() {
        let p = sample();
        let bytes = p.to_bytes();
        assert_eq!(ProposalRecord::from_bytes(&bytes).unwrap(), p);
        for cut in 0..bytes.len() {
            assert!(ProposalRecord::from_bytes(&bytes[..cut]).is_err());
        }
        let f = FoundationParams::default();
        assert_eq!(FoundationParams::from_bytes(&f.to_bytes()).unwrap(), f);
        let mut zero = f;
        zero.tokens[2] = 0;
        assert!(FoundationParams::from_bytes(&zero.to_bytes()).is_err());
    }

    #[test]
    fn quorum_and_threshold_count_seats_and_weighted_votes() {
        let v = |b: u8, yes, votes| RollVote {
            voter: PublicKey::ed25519([b; 32]),
            yes,
            votes,
        };
        let roll = RollCall {
            votes: vec![v(1, true, 3), v(2, false, 2)],
        };
        assert_eq!(roll.tally(), (3, 2));
        assert_eq!(roll.carries(4, 50, 50), (true, true));
        assert_eq!(
            roll.carries(5, 50, 50),
            (false, false),
            "2 of 5 is no quorum"
        );
        assert_eq!(
            roll.carries(4, 50, 60),
            (true, false),
            "3 of 5 is not above 60%"
        );
        assert_eq!(
            roll.carries(0, 50, 50),
            (false, false),
            "no seats, no quorum"
        );
        // The support rule: 5% of the senate or 1% of the members, at least one.
        let mut c = sample().challenge.unwrap();
        c.senators = 0;
        c.supporters = 0;
        assert!(!c.supported());
        c.supporters = 1;
        assert!(c.supported(), "1 of 100 members is 1%");
        c.supporters = 0;
        c.senators = 1;
        assert!(c.supported(), "1 of 4 senators is above 5%");
    }
}
