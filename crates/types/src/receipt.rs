//! Receipts: the outcome of each transaction, and messages from one shard to another.
//!
//! A block's `receipt_root` is the Merkle root (see [`crate::merkle`]) over the leaves
//! `blake3(0x00 || encoded receipt)`, in order: first one [`TxReceipt`] per transaction, then
//! the [`ShardMessage`]s the block emits. A destination shard applies a message after
//! checking the source block's finality and the message's Merkle proof under that root.
//!
//! Messages between a pair of shards carry consecutive sequence numbers (`seq`, from 0); the
//! destination applies `seq == next` and treats `seq < next` as an already-applied duplicate,
//! so every message is applied exactly once and in order, however often it is delivered.

use crate::codec::{put, Decode, DecodeError, Encode, Reader};
use crate::federation::Federation;
use crate::hash::Hash;
use crate::keys::{AccountId, PublicKey};
use crate::merkle;
use crate::proposals::GovAct;
use crate::shard::ShardId;
use crate::tx::{Asset, MAX_ADDRESS_BYTES, MAX_HANDLE_BYTES};

/// The result code of a transaction: 0 is success, anything else names the rejection.
pub type StatusCode = u16;

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TxReceipt {
    pub tx_hash: Hash,
    pub status: StatusCode,
    pub gas_used: u64,
    pub fee_paid: u128,
}

impl Encode for TxReceipt {
    fn encode(&self, out: &mut Vec<u8>) {
        self.tx_hash.encode(out);
        put::u16(out, self.status);
        put::u64(out, self.gas_used);
        put::u128(out, self.fee_paid);
    }
}

impl Decode for TxReceipt {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TxReceipt {
            tx_hash: Hash::decode(r)?,
            status: r.u16()?,
            gas_used: r.u64()?,
            fee_paid: r.u128()?,
        })
    }
}

/// What a cross-shard message asks the destination to do.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Payload {
    /// tag 1: credit `amount` of `asset` to `to`.
    Credit {
        from: AccountId,
        to: AccountId,
        asset: Asset,
        amount: u128,
    },
    /// tag 2: `follower` started (`following = true`) or stopped following `followee`.
    FollowNotice {
        follower: AccountId,
        followee: AccountId,
        following: bool,
    },
    /// tag 3: `account` claims a handle on the global shard.
    HandleClaim { account: AccountId, handle: String },
    /// tag 4: the global shard's answer to a claim.
    HandleResult {
        account: AccountId,
        handle: String,
        accepted: bool,
    },
    /// tag 5: `account` bonded and joins the validator registry (global shard).
    ValidatorJoin {
        account: AccountId,
        consensus_key: PublicKey,
        address: String,
    },
    /// tag 6: `account` leaves the validator registry (global shard).
    ValidatorLeave { account: AccountId },
    /// tag 7: the global shard drew the destination's committee for global epoch `epoch`
    /// from `seed`; the destination's next consensus epoch uses the latest one it received.
    Committee {
        epoch: u64,
        seed: Hash,
        members: Vec<PublicKey>,
    },
    /// tag 8: the global shard's federation of foundations (rule FD2): sent to every account
    /// shard when a charge period starts; the destination keeps the newest version.
    Federation(Federation),
    /// tag 9: `registrar` admitted (`admit`) or revoked `member` for foundation `foundation`
    /// (rule FM1); to the global shard, from the registrar's shard.
    Attest {
        registrar: AccountId,
        member: AccountId,
        foundation: u16,
        admit: bool,
    },
    /// tag 10: `account` gives up its membership (rule FM2); to the global shard, from the
    /// account's shard.
    LeaveFoundation { account: AccountId },
    /// tag 11: the global shard's registry says which foundation, if any, `account` is a
    /// verified member of (rule M12); to the account's shard.
    Membership {
        account: AccountId,
        foundation: Option<u16>,
    },
    /// tag 12: `sponsor` set aside `amount` SPEND for `account`'s base fees (rule M13).
    Sponsor {
        sponsor: AccountId,
        account: AccountId,
        amount: u128,
    },
    /// tag 13: `sponsor` stops sponsoring `account` (rule M14).
    EndSponsorship {
        sponsor: AccountId,
        account: AccountId,
    },
    /// tag 14: clear `holder`'s seat in `foundation`'s offices if its term has ended (rule
    /// M15); to the global shard.
    ExpireSeat { foundation: u16, holder: AccountId },
    /// tag 15: a governance act by `from`, to the global shard from `from`'s shard, with the
    /// deposit it holds (rules GV2–GV8).
    Govern {
        from: AccountId,
        deposit: u128,
        act: GovAct,
    },
    /// tag 16: pay `amount` SPEND from foundation `foundation`'s treasury account to `to`, as
    /// proposal `proposal` decided (rule M17); to the treasury account's shard, from the
    /// global shard.
    TreasurySpend {
        foundation: u16,
        proposal: u64,
        to: AccountId,
        amount: u128,
    },
    /// tag 17: the treasury could not pay proposal `proposal`'s spend: it held `available`
    /// (rule M18); to the global shard, from the treasury account's shard.
    SpendFailed { proposal: u64, available: u128 },
}

/// Most members of one shard's committee.
pub const MAX_COMMITTEE: usize = 256;

impl Encode for Payload {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Credit {
                from,
                to,
                asset,
                amount,
            } => {
                put::u8(out, 1);
                from.encode(out);
                to.encode(out);
                asset.encode(out);
                put::u128(out, *amount);
            }
            Payload::FollowNotice {
                follower,
                followee,
                following,
            } => {
                put::u8(out, 2);
                follower.encode(out);
                followee.encode(out);
                put::bool(out, *following);
            }
            Payload::HandleClaim { account, handle } => {
                put::u8(out, 3);
                account.encode(out);
                put::string(out, handle);
            }
            Payload::HandleResult {
                account,
                handle,
                accepted,
            } => {
                put::u8(out, 4);
                account.encode(out);
                put::string(out, handle);
                put::bool(out, *accepted);
            }
            Payload::ValidatorJoin {
                account,
                consensus_key,
                address,
            } => {
                put::u8(out, 5);
                account.encode(out);
                consensus_key.encode(out);
                put::string(out, address);
            }
            Payload::ValidatorLeave { account } => {
                put::u8(out, 6);
                account.encode(out);
            }
            Payload::Committee {
                epoch,
                seed,
                members,
            } => {
                put::u8(out, 7);
                put::u64(out, *epoch);
                seed.encode(out);
                put::seq(out, members, |o, m| m.encode(o));
            }
            Payload::Federation(f) => {
                put::u8(out, 8);
                f.encode(out);
            }
            Payload::Attest { .. }
            | Payload::LeaveFoundation { .. }
            | Payload::Membership { .. }
            | Payload::Sponsor { .. }
            | Payload::EndSponsorship { .. }
            | Payload::ExpireSeat { .. } => self.encode_membership(out),
            Payload::Govern { .. }
            | Payload::TreasurySpend { .. }
            | Payload::SpendFailed { .. } => self.encode_proposals(out),
        }
    }
}

impl Payload {
    /// Tags 15 to 17: proposals.
    fn encode_proposals(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Govern { from, deposit, act } => {
                put::u8(out, 15);
                from.encode(out);
                put::u128(out, *deposit);
                act.encode(out);
            }
            Payload::TreasurySpend {
                foundation,
                proposal,
                to,
                amount,
            } => {
                put::u8(out, 16);
                put::u16(out, *foundation);
                put::u64(out, *proposal);
                to.encode(out);
                put::u128(out, *amount);
            }
            Payload::SpendFailed {
                proposal,
                available,
            } => {
                put::u8(out, 17);
                put::u64(out, *proposal);
                put::u128(out, *available);
            }
            _ => {}
        }
    }

    /// Tags 9 to 14: memberships, sponsorships and offices.
    fn encode_membership(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Attest {
                registrar,
                member,
                foundation,
                admit,
            } => {
                put::u8(out, 9);
                registrar.encode(out);
                member.encode(out);
                put::u16(out, *foundation);
                put::bool(out, *admit);
            }
            Payload::LeaveFoundation { account } => {
                put::u8(out, 10);
                account.encode(out);
            }
            Payload::Membership {
                account,
                foundation,
            } => {
                put::u8(out, 11);
                account.encode(out);
                put::option(out, foundation, |o, f| put::u16(o, *f));
            }
            Payload::Sponsor {
                sponsor,
                account,
                amount,
            } => {
                put::u8(out, 12);
                sponsor.encode(out);
                account.encode(out);
                put::u128(out, *amount);
            }
            Payload::EndSponsorship { sponsor, account } => {
                put::u8(out, 13);
                sponsor.encode(out);
                account.encode(out);
            }
            Payload::ExpireSeat { foundation, holder } => {
                put::u8(out, 14);
                put::u16(out, *foundation);
                holder.encode(out);
            }
            _ => {}
        }
    }
}

impl Decode for Payload {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => Payload::Credit {
                from: PublicKey::decode(r)?,
                to: PublicKey::decode(r)?,
                asset: Asset::decode(r)?,
                amount: r.u128()?,
            },
            2 => Payload::FollowNotice {
                follower: PublicKey::decode(r)?,
                followee: PublicKey::decode(r)?,
                following: r.bool()?,
            },
            3 => Payload::HandleClaim {
                account: PublicKey::decode(r)?,
                handle: r.string("handle", MAX_HANDLE_BYTES)?,
            },
            4 => Payload::HandleResult {
                account: PublicKey::decode(r)?,
                handle: r.string("handle", MAX_HANDLE_BYTES)?,
                accepted: r.bool()?,
            },
            5 => Payload::ValidatorJoin {
                account: PublicKey::decode(r)?,
                consensus_key: PublicKey::decode(r)?,
                address: r.string("validator address", MAX_ADDRESS_BYTES)?,
            },
            6 => Payload::ValidatorLeave {
                account: PublicKey::decode(r)?,
            },
            7 => Payload::Committee {
                epoch: r.u64()?,
                seed: Hash::decode(r)?,
                members: r.seq("committee", MAX_COMMITTEE, PublicKey::decode)?,
            },
            8 => Payload::Federation(Federation::decode(r)?),
            9 => Payload::Attest {
                registrar: PublicKey::decode(r)?,
                member: PublicKey::decode(r)?,
                foundation: r.u16()?,
                admit: r.bool()?,
            },
            10 => Payload::LeaveFoundation {
                account: PublicKey::decode(r)?,
            },
            11 => Payload::Membership {
                account: PublicKey::decode(r)?,
                foundation: r.option("foundation", |r| r.u16())?,
            },
            12 => Payload::Sponsor {
                sponsor: PublicKey::decode(r)?,
                account: PublicKey::decode(r)?,
                amount: r.u128()?,
            },
            13 => Payload::EndSponsorship {
                sponsor: PublicKey::decode(r)?,
                account: PublicKey::decode(r)?,
            },
            14 => Payload::ExpireSeat {
                foundation: r.u16()?,
                holder: PublicKey::decode(r)?,
            },
            15 => Payload::Govern {
                from: PublicKey::decode(r)?,
                deposit: r.u128()?,
                act: GovAct::decode(r)?,
            },
            16 => Payload::TreasurySpend {
                foundation: r.u16()?,
                proposal: r.u64()?,
                to: PublicKey::decode(r)?,
                amount: r.u128()?,
            },
            17 => Payload::SpendFailed {
                proposal: r.u64()?,
                available: r.u128()?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "message payload",
                    tag,
                })
            }
        })
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ShardMessage {
    pub source: ShardId,
    pub dest: ShardId,
    /// Consecutive per `(source, dest)` pair, from 0.
    pub seq: u64,
    pub payload: Payload,
}

impl Encode for ShardMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        self.source.encode(out);
        self.dest.encode(out);
        put::u64(out, self.seq);
        self.payload.encode(out);
    }
}

impl Decode for ShardMessage {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ShardMessage {
            source: ShardId::decode(r)?,
            dest: ShardId::decode(r)?,
            seq: r.u64()?,
            payload: Payload::decode(r)?,
        })
    }
}

/// One leaf of a block's receipt tree.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Receipt {
    /// tag 1
    Tx(TxReceipt),
    /// tag 2
    Message(ShardMessage),
}

impl Receipt {
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.to_bytes())
    }
}

impl Encode for Receipt {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Receipt::Tx(t) => {
                put::u8(out, 1);
                t.encode(out);
            }
            Receipt::Message(m) => {
                put::u8(out, 2);
                m.encode(out);
            }
        }
    }
}

impl Decode for Receipt {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Receipt::Tx(TxReceipt::decode(r)?)),
            2 => Ok(Receipt::Message(ShardMessage::decode(r)?)),
            tag => Err(DecodeError::InvalidTag {
                what: "receipt",
                tag,
            }),
        }
    }
}
