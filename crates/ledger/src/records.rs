//! The ledger's state layout: keys and the records stored under them.
//!
//! Every key is `tag:u8 || fields`, hashed into the authenticated map with
//! [`starling_state::key_hash`]. Presence-only records (likes, follows, blocks...) store `[1]`.

use starling_types::codec::{put, Decode, DecodeError, Encode, Reader};
use starling_types::receipt::MAX_COMMITTEE;
use starling_types::tx::{
    MAX_ADDRESS_BYTES, MAX_BIO_BYTES, MAX_CHAT_DEVICES, MAX_DISPLAY_NAME_BYTES, MAX_HANDLE_BYTES,
    MAX_LANGS, MAX_LANG_BYTES, MAX_TEXT_BYTES, MAX_URL_BYTES,
};
use starling_types::{AccountId, Asset, ChatDevice, Hash, PostId, PublicKey, ShardId};

/// Pools of SPEND kept per shard.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Pool {
    /// Burned base fees (counted, so that supply can be audited).
    Burned,
    Operations,
    Venture,
    Rewards,
    /// A foundation's treasury on this shard (index in the foundation registry).
    Foundation(u16),
    /// Validator bonds held on this shard (their owners' [`StateKey::Bond`]s add up to it).
    Bonds,
    /// Proposal and challenge deposits the global shard holds until they are settled
    /// (rules GV2, GV7).
    Deposits,
}

impl Pool {
    /// Every pool of a shard in a network with `foundations` foundations: what a supply audit
    /// adds to the accounts' balances.
    pub fn all(foundations: u16) -> impl Iterator<Item = Pool> {
        [
            Pool::Burned,
            Pool::Operations,
            Pool::Venture,
            Pool::Rewards,
            Pool::Bonds,
            Pool::Deposits,
        ]
        .into_iter()
        .chain((0..foundations).map(Pool::Foundation))
    }
}

/// A key in the ledger state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StateKey<'a> {
    Meta,
    Account(&'a AccountId),
    Profile(&'a AccountId),
    Post(&'a PostId),
    Revision(&'a PostId, u16),
    Like(&'a AccountId, &'a PostId),
    Repost(&'a AccountId, &'a PostId),
    /// follower → followee, on the follower's shard.
    Follow(&'a AccountId, &'a AccountId),
    /// followee ← follower, on the followee's shard.
    Follower(&'a AccountId, &'a AccountId),
    Block(&'a AccountId, &'a AccountId),
    Mute(&'a AccountId, &'a AccountId),
    /// A registered handle (global shard).
    Handle(&'a str),
    Pool(Pool),
    /// Next sequence number for messages to a shard.
    Outbox(ShardId),
    /// Next sequence number expected from a shard.
    Inbox(ShardId),
    /// Total issued at genesis on this shard.
    Issued(Asset),
    /// The handle an account holds (global shard).
    HandleOf(&'a AccountId),
    /// The validator bond an account holds (its home shard).
    Bond(&'a AccountId),
    /// The validator registry (global shard): a [`ValidatorSet`].
    Validators,
    /// The latest committee the global shard drew for this shard: a [`CommitteeRecord`].
    Committee,
    /// The committee of this shard's consensus epoch `e`: a [`CommitteeRecord`], fixed by the
    /// last block of epoch `e - 1` (rule E2).
    EpochCommittee(u64),
    /// The account's chat key directory entry (its home shard): a [`ChatKeysRecord`].
    ChatKeys(&'a AccountId),
    /// The onion head a validator's consensus key showed last (global shard): an
    /// [`crate::randomness::OnionRecord`] (rule R1).
    Onion(&'a PublicKey),
    /// The running mix of the current global epoch's reveals: a
    /// [`crate::randomness::MixRecord`] (rule R1).
    EpochMix,
    /// The federation of foundations this shard holds: a [`starling_types::Federation`]
    /// (rules FD1, FD2).
    Federation,
    /// An account's membership of a foundation (global shard): a [`MemberRecord`] (rule FM1).
    Member(&'a AccountId),
    /// How many verified members a foundation has (global shard): a `u64` (rule FM1).
    MemberCount(u16),
    /// A foundation's offices (global shard): a [`starling_types::Offices`] (rules OF1, OF2).
    Offices(u16),
    /// A proposal (global shard): a [`crate::proposals::ProposalRecord`] (rules GV2–GV8).
    Proposal(u64),
    /// How many proposals were opened (global shard): a `u64`; the next one's number.
    ProposalCount,
    /// What a holder spent of a branch's vote tokens in a round (global shard): a
    /// [`crate::proposals::TokenRecord`] (rule GV4), by foundation and branch code.
    VoteTokens(u16, u8, &'a AccountId),
    /// That an account supported challenge number `n` of a proposal (global shard): present
    /// or absent (rule GV7).
    Support(u64, u8, &'a AccountId),
    /// A foundation's parameters, once its senate has set one (global shard): a
    /// [`crate::proposals::FoundationParams`] (rule GV1; the network's defaults before).
    FoundationParams(u16),
    /// What a foundation's spends that took effect at once have reserved this round (global
    /// shard): a [`crate::proposals::TokenRecord`] (rule GV6).
    SpendBudget(u16),
    /// A registrar's credential key for a foundation's round (global shard): a
    /// [`crate::ballots::CredentialKeyRecord`] (rule BL1).
    CredentialKey(u16, u64),
    /// A member's credential request in a foundation's round (global shard): a
    /// [`crate::ballots::CredentialRequest`] (rule BL2).
    CredentialRequest(u16, u64, &'a AccountId),
    /// A ballot key's use (global shard): a [`crate::ballots::NullifierRecord`] (rule BL3).
    Nullifier(&'a AccountId),
    /// A ballot key's current ballot on a proposal (global shard): a
    /// [`crate::ballots::BallotRecord`] (rule BL3).
    BallotOn(u64, &'a AccountId),
}

impl StateKey<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80);
        match self {
            StateKey::Meta => out.push(1),
            StateKey::Account(a) => tagged(&mut out, 2, &[*a]),
            StateKey::Profile(a) => tagged(&mut out, 3, &[*a]),
            StateKey::Post(p) => {
                out.push(4);
                p.encode(&mut out);
            }
            StateKey::Revision(p, n) => {
                out.push(5);
                p.encode(&mut out);
                put::u16(&mut out, *n);
            }
            StateKey::Like(a, p) => {
                out.push(6);
                a.encode(&mut out);
                p.encode(&mut out);
            }
            StateKey::Repost(a, p) => {
                out.push(7);
                a.encode(&mut out);
                p.encode(&mut out);
            }
            StateKey::Follow(a, b) => tagged(&mut out, 8, &[*a, *b]),
            StateKey::Follower(a, b) => tagged(&mut out, 9, &[*a, *b]),
            StateKey::Block(a, b) => tagged(&mut out, 10, &[*a, *b]),
            StateKey::Mute(a, b) => tagged(&mut out, 11, &[*a, *b]),
            StateKey::Handle(h) => {
                out.push(12);
                put::string(&mut out, h);
            }
            StateKey::Pool(p) => {
                out.push(13);
                match p {
                    Pool::Burned => out.push(0),
                    Pool::Operations => out.push(1),
                    Pool::Venture => out.push(2),
                    Pool::Rewards => out.push(3),
                    Pool::Foundation(i) => {
                        out.push(4);
                        put::u16(&mut out, *i);
                    }
                    Pool::Bonds => out.push(5),
                    Pool::Deposits => out.push(6),
                }
            }
            StateKey::Outbox(s) => {
                out.push(14);
                s.encode(&mut out);
            }
            StateKey::Inbox(s) => {
                out.push(15);
                s.encode(&mut out);
            }
            StateKey::Issued(a) => {
                out.push(16);
                a.encode(&mut out);
            }
            StateKey::HandleOf(a) => tagged(&mut out, 17, &[*a]),
            StateKey::Bond(a) => tagged(&mut out, 18, &[*a]),
            StateKey::Validators => out.push(19),
            StateKey::Committee => out.push(20),
            StateKey::EpochCommittee(e) => {
                out.push(21);
                put::u64(&mut out, *e);
            }
            StateKey::ChatKeys(a) => tagged(&mut out, 22, &[*a]),
            StateKey::Onion(k) => tagged(&mut out, 23, &[*k]),
            StateKey::EpochMix => out.push(24),
            StateKey::Federation => out.push(25),
            StateKey::Member(a) => tagged(&mut out, 26, &[*a]),
            StateKey::MemberCount(i) => tagged_u16(&mut out, 27, *i),
            StateKey::Offices(i) => tagged_u16(&mut out, 28, *i),
            _ => self.encode_governance(&mut out),
        }
        out
    }

    /// The governance keys' encodings (tags 29 and up).
    fn encode_governance(&self, out: &mut Vec<u8>) {
        match self {
            StateKey::Proposal(id) => {
                out.push(29);
                put::u64(out, *id)
            }
            StateKey::ProposalCount => out.push(30),
            StateKey::VoteTokens(f, b, a) => {
                out.push(31);
                put::u16(out, *f);
                put::u8(out, *b);
                a.encode(out);
            }
            StateKey::Support(id, n, a) => {
                out.push(32);
                put::u64(out, *id);
                put::u8(out, *n);
                a.encode(out);
            }
            StateKey::FoundationParams(i) => tagged_u16(out, 33, *i),
            StateKey::SpendBudget(i) => tagged_u16(out, 34, *i),
            StateKey::CredentialKey(f, round) => {
                tagged_u16(out, 35, *f);
                put::u64(out, *round);
            }
            StateKey::CredentialRequest(f, round, a) => {
                tagged_u16(out, 36, *f);
                put::u64(out, *round);
                a.encode(out);
            }
            StateKey::Nullifier(a) => tagged(out, 37, &[*a]),
            StateKey::BallotOn(id, a) => {
                out.push(38);
                put::u64(out, *id);
                a.encode(out);
            }
            _ => unreachable!("every other key is encoded by `encode`"),
        }
    }

    pub fn hash(&self) -> Hash {
        starling_state::key_hash(&self.encode())
    }
}

fn tagged_u16(out: &mut Vec<u8>, tag: u8, v: u16) {
    out.push(tag);
    put::u16(out, v);
}

fn tagged(out: &mut Vec<u8>, tag: u8, accounts: &[&AccountId]) {
    out.push(tag);
    for a in accounts {
        a.encode(out);
    }
}

/// The per-shard chain position and fee level.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Meta {
    pub height: u64,
    /// The parent of the last applied block (the genesis id before block 1). The last
    /// block's own id commits to this state, so the state cannot hold it; the store keeps it.
    pub last_parent: Hash,
    pub timestamp_ms: u64,
    /// Base fee of the next block.
    pub base_fee: u64,
}

impl Encode for Meta {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u64(out, self.height);
        self.last_parent.encode(out);
        put::u64(out, self.timestamp_ms);
        put::u64(out, self.base_fee);
    }
}

impl Decode for Meta {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Meta {
            height: r.u64()?,
            last_parent: Hash::decode(r)?,
            timestamp_ms: r.u64()?,
            base_fee: r.u64()?,
        })
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct AccountRecord {
    pub nonce: u64,
    /// Indexed by [`Asset::index`].
    pub balances: [u128; 3],
    pub created_height: u64,
    /// Fee allowance left (paid by the account's foundation).
    pub allowance: u128,
    pub allowance_height: u64,
    pub handle: Option<String>,
    pub pending_handle: Option<String>,
    /// The foundation that verified this account, as its shard last heard from the global
    /// shard's registry (rules FM1, M12): only members have a fee allowance.
    pub member: Option<Membership>,
    /// Who pays this account's base fees, and how much is left (rules SP1, SP2).
    pub sponsor: Option<Sponsorship>,
}

/// An account's membership, as its own shard holds it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Membership {
    pub foundation: u16,
    /// The height, on the account's shard, at which the membership arrived: the fee
    /// allowance runs for `allowance.period_blocks` from here.
    pub since: u64,
}

/// SPEND another account set aside for this account's base fees.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sponsorship {
    pub by: AccountId,
    pub left: u128,
}

impl AccountRecord {
    pub fn balance(&self, asset: Asset) -> u128 {
        self.balances[asset.index()]
    }

    /// Takes `amount` of `asset`, or refuses (and takes nothing) if the account holds less.
    pub fn debit(&mut self, asset: Asset, amount: u128) -> Result<(), crate::TxError> {
        let held = &mut self.balances[asset.index()];
        if *held < amount {
            return Err(crate::TxError::InsufficientBalance {
                needed: amount,
                available: *held,
            });
        }
        *held -= amount;
        Ok(())
    }
}

/// A verified member in the global shard's registry (rule FM1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MemberRecord {
    pub foundation: u16,
    /// The registrar that admitted it.
    pub registrar: AccountId,
    /// The global shard's height at admission.
    pub since: u64,
}

impl Encode for MemberRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u16(out, self.foundation);
        self.registrar.encode(out);
        put::u64(out, self.since);
    }
}

impl Decode for MemberRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MemberRecord {
            foundation: r.u16()?,
            registrar: PublicKey::decode(r)?,
            since: r.u64()?,
        })
    }
}

impl Encode for AccountRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u64(out, self.nonce);
        for b in &self.balances {
            put::u128(out, *b);
        }
        put::u64(out, self.created_height);
        put::u128(out, self.allowance);
        put::u64(out, self.allowance_height);
        put::option(out, &self.handle, |o, h| put::string(o, h));
        put::option(out, &self.pending_handle, |o, h| put::string(o, h));
        put::option(out, &self.member, |o, m| {
            put::u16(o, m.foundation);
            put::u64(o, m.since);
        });
        put::option(out, &self.sponsor, |o, s| {
            s.by.encode(o);
            put::u128(o, s.left);
        });
    }
}

impl Decode for AccountRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AccountRecord {
            nonce: r.u64()?,
            balances: [r.u128()?, r.u128()?, r.u128()?],
            created_height: r.u64()?,
            allowance: r.u128()?,
            allowance_height: r.u64()?,
            handle: r.option("handle", |r| r.string("handle", MAX_HANDLE_BYTES))?,
            pending_handle: r.option("pending handle", |r| r.string("handle", MAX_HANDLE_BYTES))?,
            member: r.option("membership", |r| {
                Ok(Membership {
                    foundation: r.u16()?,
                    since: r.u64()?,
                })
            })?,
            sponsor: r.option("sponsorship", |r| {
                Ok(Sponsorship {
                    by: PublicKey::decode(r)?,
                    left: r.u128()?,
                })
            })?,
        })
    }
}

/// An account's chat devices (rule D1): the key directory entry a peer checks with a proof.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ChatKeysRecord {
    /// By device id, ascending.
    pub devices: Vec<ChatDevice>,
    /// Raised by every change, so a peer sees that the devices changed.
    pub version: u64,
}

impl Encode for ChatKeysRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put::seq(out, &self.devices, |o, d| d.encode(o));
        put::u64(out, self.version);
    }
}

impl Decode for ChatKeysRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ChatKeysRecord {
            devices: r.seq("chat devices", MAX_CHAT_DEVICES, ChatDevice::decode)?,
            version: r.u64()?,
        })
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ProfileRecord {
    pub display_name: String,
    pub bio: String,
    pub avatar_url: String,
}

impl Encode for ProfileRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put::string(out, &self.display_name);
        put::string(out, &self.bio);
        put::string(out, &self.avatar_url);
    }
}

impl Decode for ProfileRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ProfileRecord {
            display_name: r.string("display name", MAX_DISPLAY_NAME_BYTES)?,
            bio: r.string("bio", MAX_BIO_BYTES)?,
            avatar_url: r.string("avatar url", MAX_URL_BYTES)?,
        })
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PostRecord {
    /// Empty once deleted.
    pub text: String,
    pub reply_to: Option<PostId>,
    pub quote_of: Option<PostId>,
    pub langs: Vec<String>,
    pub created_height: u64,
    pub edited_height: u64,
    /// How many earlier versions are kept under [`StateKey::Revision`] (`0..revisions`).
    pub revisions: u16,
    pub deleted: bool,
}

impl Encode for PostRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put::string(out, &self.text);
        put::option(out, &self.reply_to, |o, p| p.encode(o));
        put::option(out, &self.quote_of, |o, p| p.encode(o));
        put::seq(out, &self.langs, |o, l| put::string(o, l));
        put::u64(out, self.created_height);
        put::u64(out, self.edited_height);
        put::u16(out, self.revisions);
        put::bool(out, self.deleted);
    }
}

impl Decode for PostRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PostRecord {
            text: r.string("post text", MAX_TEXT_BYTES)?,
            reply_to: r.option("reply_to", PostId::decode)?,
            quote_of: r.option("quote_of", PostId::decode)?,
            langs: r.seq("langs", MAX_LANGS, |r| r.string("lang", MAX_LANG_BYTES))?,
            created_height: r.u64()?,
            edited_height: r.u64()?,
            revisions: r.u16()?,
            deleted: r.bool()?,
        })
    }
}

/// An earlier version of an edited post.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RevisionRecord {
    pub text: String,
    /// The height at which this version was written.
    pub height: u64,
}

impl Encode for RevisionRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put::string(out, &self.text);
        put::u64(out, self.height);
    }
}

impl Decode for RevisionRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RevisionRecord {
            text: r.string("post text", MAX_TEXT_BYTES)?,
            height: r.u64()?,
        })
    }
}

/// Most validators the registry holds.
pub const MAX_VALIDATORS: usize = 1024;

/// One registered validator.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ValidatorInfo {
    /// The account that bonded (and receives its tips and rewards).
    pub account: AccountId,
    /// Its Ed25519 consensus key (what committees list).
    pub consensus_key: PublicKey,
    /// Where its validator transport listens (`host:port`).
    pub address: String,
}

impl Encode for ValidatorInfo {
    fn encode(&self, out: &mut Vec<u8>) {
        self.account.encode(out);
        self.consensus_key.encode(out);
        put::string(out, &self.address);
    }
}

impl Decode for ValidatorInfo {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ValidatorInfo {
            account: PublicKey::decode(r)?,
            consensus_key: PublicKey::decode(r)?,
            address: r.string("validator address", MAX_ADDRESS_BYTES)?,
        })
    }
}

/// The validator registry, ordered by account; accounts and consensus keys are unique.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ValidatorSet {
    pub validators: Vec<ValidatorInfo>,
}

impl Encode for ValidatorSet {
    fn encode(&self, out: &mut Vec<u8>) {
        put::seq(out, &self.validators, |o, v| v.encode(o));
    }
}

impl Decode for ValidatorSet {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ValidatorSet {
            validators: r.seq("validators", MAX_VALIDATORS, ValidatorInfo::decode)?,
        })
    }
}

/// A committee: drawn for global epoch `epoch` from `seed` (epoch 0 and seed zero: genesis).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CommitteeRecord {
    pub epoch: u64,
    pub seed: Hash,
    /// Consensus keys, in draw order.
    pub members: Vec<PublicKey>,
}

impl Encode for CommitteeRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u64(out, self.epoch);
        self.seed.encode(out);
        put::seq(out, &self.members, |o, m| m.encode(o));
    }
}

impl Decode for CommitteeRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CommitteeRecord {
            epoch: r.u64()?,
            seed: Hash::decode(r)?,
            members: r.seq("committee", MAX_COMMITTEE, PublicKey::decode)?,
        })
    }
}

/// `u128` amounts and `u64` counters stored as plain big-endian numbers.
pub fn decode_u128(bytes: &[u8]) -> Result<u128, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = r.u128()?;
    r.finish()?;
    Ok(v)
}

pub fn decode_u64(bytes: &[u8]) -> Result<u64, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = r.u64()?;
    r.finish()?;
    Ok(v)
}

pub fn decode_account_id(bytes: &[u8]) -> Result<AccountId, DecodeError> {
    PublicKey::from_bytes(bytes)
}
