//! Proposals, votes and challenges as they travel (rules GV1–GV9 in `starling-ledger`'s
//! `proposals` module): what a motion asks for, which track it runs on (who may propose it,
//! which branch decides it, its quorum and threshold), and the governance acts an account
//! sends to the global shard.
//!
//! The track table (rule GV1):
//!
//! | motion | proposed by | decided by | takes effect |
//! |---|---|---|---|
//! | spend of at most the spend limit | president, officers | board | at enactment, final |
//! | spend above the spend limit | president, officers | board | after the challenge window |
//! | appoint the president | board | senate | at enactment, reversible |
//! | appoint an officer | president | board | at enactment, reversible |
//! | appoint a board member | president | senate | at enactment, reversible |
//! | appoint a senator | board | members (referendum; quorum 10%) | at enactment, reversible |
//! | appoint staff | president, officers | executive | at enactment, reversible |
//! | set a parameter | board | senate | at enactment, reversible |
//! | replace the registrar | president | board | after the challenge window |
//!
//! So the board confirms officers, the senate confirms the board and the president, the
//! executive (president and officers) confirms staff, and the members elect the senate.

use crate::ballots::{blind_bytes, MAX_CREDENTIAL_KEY_BYTES};
use crate::codec::{put, Decode, DecodeError, Encode, Reader};
use crate::offices::Office;
use crate::{AccountId, PublicKey};

/// Most bytes of a proposal's title.
pub const MAX_TITLE_BYTES: usize = 120;
/// Most bytes of a proposal's text.
pub const MAX_PROPOSAL_TEXT_BYTES: usize = 2_000;
/// Most vote tokens a branch's holder can receive per round (a parameter's bound).
pub const MAX_VOTE_TOKENS: u128 = 1_000_000_000;

/// A branch of a foundation: who votes together, with one token allotment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Branch {
    /// The foundation's verified members (referenda).
    Members,
    Staff,
    Senate,
    Board,
    /// The president and the officers.
    Executive,
}

impl Branch {
    pub const ALL: [Branch; 5] = [
        Branch::Members,
        Branch::Staff,
        Branch::Senate,
        Branch::Board,
        Branch::Executive,
    ];

    pub fn code(self) -> u8 {
        match self {
            Branch::Members => 0,
            Branch::Staff => 1,
            Branch::Senate => 2,
            Branch::Board => 3,
            Branch::Executive => 4,
        }
    }

    pub fn from_code(code: u8) -> Result<Branch, DecodeError> {
        Branch::ALL
            .into_iter()
            .find(|b| b.code() == code)
            .ok_or(DecodeError::InvalidTag {
                what: "branch",
                tag: code,
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            Branch::Members => "members",
            Branch::Staff => "staff",
            Branch::Senate => "senate",
            Branch::Board => "board",
            Branch::Executive => "executive",
        }
    }

    /// The branch whose votes a seat of `office` casts.
    pub fn of(office: Office) -> Branch {
        match office {
            Office::President | Office::Officer => Branch::Executive,
            Office::Board => Branch::Board,
            Office::Senate => Branch::Senate,
            Office::Staff => Branch::Staff,
        }
    }
}

/// A parameter of a foundation that its senate sets (rule GV1's "set a parameter").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GovParam {
    /// Vote tokens each holder of a branch receives per round (rule GV4).
    Tokens(Branch),
    /// The largest spend that takes effect at enactment (larger ones wait out the window).
    SpendLimit,
}

impl GovParam {
    pub fn code(self) -> u8 {
        match self {
            GovParam::Tokens(b) => b.code(),
            GovParam::SpendLimit => 5,
        }
    }

    pub fn from_code(code: u8) -> Result<GovParam, DecodeError> {
        match code {
            5 => Ok(GovParam::SpendLimit),
            c => Branch::from_code(c)
                .map(GovParam::Tokens)
                .map_err(|_| DecodeError::InvalidTag {
                    what: "parameter",
                    tag: c,
                }),
        }
    }

    /// Its name in JSON: `tokens.<branch>` or `spend_limit`.
    pub fn name(self) -> String {
        match self {
            GovParam::Tokens(b) => format!("tokens.{}", b.name()),
            GovParam::SpendLimit => "spend_limit".into(),
        }
    }

    pub fn from_name(name: &str) -> Option<GovParam> {
        if name == "spend_limit" {
            return Some(GovParam::SpendLimit);
        }
        let branch = name.strip_prefix("tokens.")?;
        Branch::ALL
            .into_iter()
            .find(|b| b.name() == branch)
            .map(GovParam::Tokens)
    }
}

/// What a proposal asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Motion {
    /// Pay `amount` SPEND from the foundation's treasury account to `to`.
    Spend { to: AccountId, amount: u128 },
    /// Seat `holder` in `office` for the office's term.
    Appoint { office: Office, holder: AccountId },
    /// Set one of the foundation's parameters.
    SetParam { param: GovParam, value: u128 },
    /// Make `registrar` the foundation's registrar (rule FM1).
    Registrar { registrar: AccountId },
}

/// Who proposes a motion, who decides it, and by how much (rule GV1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Track {
    pub name: &'static str,
    pub proposers: &'static [Office],
    pub decides: Branch,
    /// Share of the deciding seats that must vote, in percent.
    pub quorum_pct: u8,
    /// Share of the weighted votes that must be yes, in percent (strictly more than).
    pub threshold_pct: u8,
}

/// When a passed motion takes effect, and whether a challenge can undo it (rule GV6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finality {
    /// At enactment; a lost challenge undoes it.
    Reversible,
    /// At enactment, for good (small spends): not open to challenge.
    Final,
    /// Only once the challenge window has passed with no challenge standing (irreversible:
    /// large spends, registrar changes).
    AfterWindow,
}

const EXECUTIVE: &[Office] = &[Office::President, Office::Officer];
const PRESIDENT: &[Office] = &[Office::President];
const BOARD: &[Office] = &[Office::Board];

const fn track(
    name: &'static str,
    proposers: &'static [Office],
    decides: Branch,
    threshold_pct: u8,
) -> Track {
    Track {
        name,
        proposers,
        decides,
        quorum_pct: 50,
        threshold_pct,
    }
}

impl Motion {
    /// Rule GV1's table.
    pub fn track(&self) -> Track {
        match self {
            Motion::Spend { .. } => track("spend", EXECUTIVE, Branch::Board, 50),
            Motion::Appoint { office, .. } => match office {
                Office::President => track("appoint", BOARD, Branch::Senate, 66),
                Office::Officer => track("appoint", PRESIDENT, Branch::Board, 50),
                Office::Board => track("appoint", PRESIDENT, Branch::Senate, 50),
                // A referendum: a tenth of the members is a quorum.
                Office::Senate => Track {
                    quorum_pct: 10,
                    ..track("appoint", BOARD, Branch::Members, 50)
                },
                Office::Staff => track("appoint", EXECUTIVE, Branch::Executive, 50),
            },
            Motion::SetParam { .. } => track("parameters", BOARD, Branch::Senate, 50),
            Motion::Registrar { .. } => track("registrar", PRESIDENT, Branch::Board, 66),
        }
    }

    /// Rule GV6: when it takes effect, given the foundation's spend limit.
    pub fn finality(&self, spend_limit: u128) -> Finality {
        match self {
            Motion::Spend { amount, .. } if *amount <= spend_limit => Finality::Final,
            Motion::Spend { .. } | Motion::Registrar { .. } => Finality::AfterWindow,
            Motion::Appoint { .. } | Motion::SetParam { .. } => Finality::Reversible,
        }
    }

    /// What no motion may be: a spend of nothing, or tokens outside `1..=MAX_VOTE_TOKENS`.
    pub fn validate(&self) -> Result<(), DecodeError> {
        match self {
            Motion::Spend { amount: 0, .. } => Err(DecodeError::InvalidValue("spend of nothing")),
            Motion::SetParam {
                param: GovParam::Tokens(_),
                value,
            } if !(1..=MAX_VOTE_TOKENS).contains(value) => Err(DecodeError::InvalidValue(
                "vote tokens (1 to 1,000,000,000 per round)",
            )),
            _ => Ok(()),
        }
    }
}

impl Encode for Motion {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Motion::Spend { to, amount } => {
                put::u8(out, 0);
                to.encode(out);
                put::u128(out, *amount);
            }
            Motion::Appoint { office, holder } => {
                put::u8(out, 1);
                put::u8(out, office.code());
                holder.encode(out);
            }
            Motion::SetParam { param, value } => {
                put::u8(out, 2);
                put::u8(out, param.code());
                put::u128(out, *value);
            }
            Motion::Registrar { registrar } => {
                put::u8(out, 3);
                registrar.encode(out);
            }
        }
    }
}

impl Decode for Motion {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let motion = match r.u8()? {
            0 => Motion::Spend {
                to: PublicKey::decode(r)?,
                amount: r.u128()?,
            },
            1 => Motion::Appoint {
                office: Office::from_code(r.u8()?)?,
                holder: PublicKey::decode(r)?,
            },
            2 => Motion::SetParam {
                param: GovParam::from_code(r.u8()?)?,
                value: r.u128()?,
            },
            3 => Motion::Registrar {
                registrar: PublicKey::decode(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "motion",
                    tag,
                })
            }
        };
        motion.validate()?;
        Ok(motion)
    }
}

/// A governance act: what an account's shard sends the global shard for it (rules GV2–GV8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GovAct {
    /// Open a proposal in `foundation` (rule GV2); the sender pays the proposal deposit.
    Propose {
        foundation: u16,
        title: String,
        text: String,
        motion: Motion,
    },
    /// Cast `votes` votes (costing `votes²` tokens) on a proposal, or on the board's vote
    /// on its challenge (`challenge`; yes there means: overturn the decision) (rule GV3).
    Vote {
        proposal: u64,
        challenge: bool,
        yes: bool,
        votes: u32,
    },
    /// Move a proposal on when its time has come: tally, enact, or settle its challenge
    /// (rule GV5; anyone may).
    Advance { proposal: u64 },
    /// Challenge a decision within its window (rule GV7); the sender pays the challenge
    /// deposit.
    Challenge { proposal: u64 },
    /// Support an open challenge as a senator or a member of the foundation (rule GV7).
    Support { proposal: u64 },
    /// The registrar of `foundation` publishes its blind-signature key for `round`'s
    /// ballot credentials (rule BL1): an RSA key in DER.
    BallotKey {
        foundation: u16,
        round: u64,
        key: Vec<u8>,
    },
    /// A member asks its foundation's registrar for a credential for `round`, with a
    /// blinded message (rule BL2).
    RequestCredential { round: u64, blinded: Vec<u8> },
    /// The registrar answers a member's request with the blind signature (rule BL2).
    IssueCredential {
        member: AccountId,
        round: u64,
        blind_sig: Vec<u8>,
    },
}

impl GovAct {
    /// Number of acts; an [`crate::Action`] tag `FIRST_ACTION_TAG + i` is act `i`.
    pub const COUNT: u8 = 8;

    /// Its index among the acts.
    pub fn index(&self) -> u8 {
        match self {
            GovAct::Propose { .. } => 0,
            GovAct::Vote { .. } => 1,
            GovAct::Advance { .. } => 2,
            GovAct::Challenge { .. } => 3,
            GovAct::Support { .. } => 4,
            GovAct::BallotKey { .. } => 5,
            GovAct::RequestCredential { .. } => 6,
            GovAct::IssueCredential { .. } => 7,
        }
    }

    /// The proposal it is about (none for a new one).
    pub fn proposal(&self) -> Option<u64> {
        match self {
            GovAct::Propose { .. }
            | GovAct::BallotKey { .. }
            | GovAct::RequestCredential { .. }
            | GovAct::IssueCredential { .. } => None,
            GovAct::Vote { proposal, .. }
            | GovAct::Advance { proposal }
            | GovAct::Challenge { proposal }
            | GovAct::Support { proposal } => Some(*proposal),
        }
    }

    /// Its fields, without the index.
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            GovAct::Propose {
                foundation,
                title,
                text,
                motion,
            } => {
                put::u16(out, *foundation);
                put::string(out, title);
                put::string(out, text);
                motion.encode(out);
            }
            GovAct::Vote {
                proposal,
                challenge,
                yes,
                votes,
            } => {
                put::u64(out, *proposal);
                put::bool(out, *challenge);
                put::bool(out, *yes);
                put::u32(out, *votes);
            }
            GovAct::Advance { proposal }
            | GovAct::Challenge { proposal }
            | GovAct::Support { proposal } => put::u64(out, *proposal),
            GovAct::BallotKey {
                foundation,
                round,
                key,
            } => {
                put::u16(out, *foundation);
                put::u64(out, *round);
                put::bytes16(out, key);
            }
            GovAct::RequestCredential { round, blinded } => {
                put::u64(out, *round);
                put::bytes16(out, blinded);
            }
            GovAct::IssueCredential {
                member,
                round,
                blind_sig,
            } => {
                member.encode(out);
                put::u64(out, *round);
                put::bytes16(out, blind_sig);
            }
        }
    }

    /// Act `index`'s fields.
    pub fn decode_body(index: u8, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match index {
            0 => GovAct::Propose {
                foundation: r.u16()?,
                title: r.string("proposal title", MAX_TITLE_BYTES)?,
                text: r.string("proposal text", MAX_PROPOSAL_TEXT_BYTES)?,
                motion: Motion::decode(r)?,
            },
            1 => {
                let act = GovAct::Vote {
                    proposal: r.u64()?,
                    challenge: r.bool()?,
                    yes: r.bool()?,
                    votes: r.u32()?,
                };
                if matches!(act, GovAct::Vote { votes: 0, .. }) {
                    return Err(DecodeError::InvalidValue("a vote of no votes"));
                }
                act
            }
            2 => GovAct::Advance { proposal: r.u64()? },
            3 => GovAct::Challenge { proposal: r.u64()? },
            4 => GovAct::Support { proposal: r.u64()? },
            5 => GovAct::BallotKey {
                foundation: r.u16()?,
                round: r.u64()?,
                key: r
                    .bytes16("credential key", MAX_CREDENTIAL_KEY_BYTES)?
                    .to_vec(),
            },
            6 => GovAct::RequestCredential {
                round: r.u64()?,
                blinded: blind_bytes(r, "blinded message")?,
            },
            7 => GovAct::IssueCredential {
                member: PublicKey::decode(r)?,
                round: r.u64()?,
                blind_sig: blind_bytes(r, "blind signature")?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "governance act",
                    tag,
                })
            }
        })
    }
}

impl Encode for GovAct {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u8(out, self.index());
        self.encode_body(out);
    }
}

impl Decode for GovAct {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let index = r.u8()?;
        GovAct::decode_body(index, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acts() -> Vec<GovAct> {
        let k = PublicKey::ed25519([3; 32]);
        vec![
            GovAct::Propose {
                foundation: 1,
                title: "Fund the relay".into(),
                text: "Why".into(),
                motion: Motion::Spend { to: k, amount: 9 },
            },
            GovAct::Propose {
                foundation: 0,
                title: "t".into(),
                text: String::new(),
                motion: Motion::Appoint {
                    office: Office::Officer,
                    holder: k,
                },
            },
            GovAct::Propose {
                foundation: 2,
                title: "t".into(),
                text: String::new(),
                motion: Motion::SetParam {
                    param: GovParam::Tokens(Branch::Senate),
                    value: 500,
                },
            },
            GovAct::Propose {
                foundation: 2,
                title: "t".into(),
                text: String::new(),
                motion: Motion::Registrar { registrar: k },
            },
            GovAct::Vote {
                proposal: 7,
                challenge: true,
                yes: false,
                votes: 3,
            },
            GovAct::Advance { proposal: 7 },
            GovAct::Challenge { proposal: 7 },
            GovAct::Support { proposal: 7 },
        ]
    }

    #[test]
    fn acts_round_trip_and_refuse_every_truncation() {
        for act in acts() {
            let bytes = act.to_bytes();
            assert_eq!(GovAct::from_bytes(&bytes).unwrap(), act);
            for cut in 0..bytes.len() {
                assert!(
                    GovAct::from_bytes(&bytes[..cut]).is_err(),
                    "{act:?} at {cut}"
                );
            }
        }
    }

    #[test]
    fn decoding_refuses_what_no_rule_allows() {
        let k = PublicKey::ed25519([3; 32]);
        let bad = [
            GovAct::Vote {
                proposal: 1,
                challenge: false,
                yes: true,
                votes: 0,
            },
            GovAct::Propose {
                foundation: 0,
                title: "t".into(),
                text: String::new(),
                motion: Motion::Spend { to: k, amount: 0 },
            },
            GovAct::Propose {
                foundation: 0,
                title: "t".into(),
                text: String::new(),
                motion: Motion::SetParam {
                    param: GovParam::Tokens(Branch::Board),
                    value: MAX_VOTE_TOKENS + 1,
                },
            },
        ];
        for act in bad {
            assert!(GovAct::from_bytes(&act.to_bytes()).is_err(), "{act:?}");
        }
        let mut long = GovAct::Propose {
            foundation: 0,
            title: "x".repeat(MAX_TITLE_BYTES + 1),
            text: String::new(),
            motion: Motion::Registrar { registrar: k },
        }
        .to_bytes();
        assert!(GovAct::from_bytes(&long).is_err());
        long[0] = 9;
        assert!(GovAct::from_bytes(&long).is_err());
        for code in 0..=5 {
            let p = GovParam::from_code(code).unwrap();
            assert_eq!(GovParam::from_name(&p.name()), Some(p));
        }
        assert!(GovParam::from_code(6).is_err());
    }

    #[test]
    fn the_track_table_holds_its_checks() {
        // Nobody confirms their own office's seats, and no branch but the members elects
        // the senate.
        for office in Office::ALL {
            let k = PublicKey::ed25519([1; 32]);
            let t = Motion::Appoint { office, holder: k }.track();
            assert_ne!(t.decides, Branch::of(office), "{office:?}");
            assert!(t.proposers.iter().all(|p| *p != office), "{office:?}");
        }
        let k = PublicKey::ed25519([1; 32]);
        let spend = |amount| Motion::Spend { to: k, amount };
        assert_eq!(spend(10).finality(10), Finality::Final);
        assert_eq!(spend(11).finality(10), Finality::AfterWindow);
        assert_eq!(
            Motion::Registrar { registrar: k }.finality(u128::MAX),
            Finality::AfterWindow
        );
    }
}
