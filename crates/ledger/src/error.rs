//! Why a transaction, a message or a block is rejected.

use starling_types::{DecodeError, ShardId};
use thiserror::Error;

/// A rejected transaction. A rejected transaction changes no state; its receipt carries
/// [`TxError::code`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxError {
    #[error("malformed transaction: {0}")]
    Malformed(DecodeError),
    #[error("bad signature (forged, or signed for another chain)")]
    BadSignature,
    #[error("account belongs to shard {expected}, not this one")]
    WrongShard { expected: ShardId },
    #[error("unknown account (an account exists once it has received funds)")]
    UnknownAccount,
    #[error("nonce gap: expected {expected}, got {got}")]
    NonceGap { expected: u64, got: u64 },
    #[error("nonce already used: expected {expected}, got {got}")]
    NonceReused { expected: u64, got: u64 },
    #[error("expired at height {expires_at}, block is {height}")]
    Expired { expires_at: u64, height: u64 },
    #[error("expiry {expires_at} is too far ahead (at most {max})")]
    ExpiryTooFar { expires_at: u64, max: u64 },
    #[error("fee too low: needs {required}, max_fee is {max_fee}")]
    FeeTooLow { required: u128, max_fee: u128 },
    #[error("insufficient balance: needs {needed}, has {available}")]
    InsufficientBalance { needed: u128, available: u128 },
    #[error("text too long: {graphemes} graphemes (at most {max})")]
    TextTooLong { graphemes: usize, max: usize },
    #[error("text is empty")]
    EmptyText,
    #[error("invalid language tag")]
    InvalidLang,
    #[error("unknown target")]
    UnknownTarget,
    #[error("the post was deleted")]
    PostDeleted,
    #[error("only the author may change a post")]
    NotAuthor,
    #[error("edit limit reached ({max})")]
    EditLimit { max: u16 },
    #[error("already liked")]
    AlreadyLiked,
    #[error("not liked")]
    NotLiked,
    #[error("already reposted")]
    AlreadyReposted,
    #[error("not reposted")]
    NotReposted,
    #[error("already following")]
    AlreadyFollowing,
    #[error("not following")]
    NotFollowing,
    #[error("an account cannot target itself")]
    SelfTarget,
    #[error("already blocked")]
    AlreadyBlocked,
    #[error("not blocked")]
    NotBlocked,
    #[error("already muted")]
    AlreadyMuted,
    #[error("not muted")]
    NotMuted,
    #[error("invalid profile: {0}")]
    InvalidProfile(&'static str),
    #[error("invalid handle: {0}")]
    InvalidHandle(&'static str),
    #[error("handle already taken")]
    HandleTaken,
    #[error("a handle claim is already pending")]
    HandlePending,
    #[error("amount must be positive")]
    InvalidAmount,
    #[error("block gas limit reached")]
    BlockFull,
    #[error("amount overflow")]
    Overflow,
    #[error("this account already holds a validator bond")]
    AlreadyValidator,
    #[error("this account holds no validator bond")]
    NotValidator,
    #[error("invalid validator registration: {0}")]
    InvalidValidator(&'static str),
    #[error("invalid chat device: {0}")]
    InvalidChatDevice(&'static str),
    #[error("no chat device with that id")]
    NoChatDevice,
    #[error("only a foundation's registrar may admit or revoke members")]
    NotRegistrar,
    #[error("already a verified member of foundation {foundation}")]
    AlreadyMember { foundation: u16 },
    #[error("not a verified member of that foundation")]
    NotMember,
    #[error("sponsorship above the network's cap of {cap}")]
    SponsorshipCap { cap: u128 },
    #[error("that account is sponsored by another account")]
    SponsoredByAnother,
    #[error("this account does not sponsor that account")]
    NotSponsor,
    #[error("that seat's term has not ended")]
    TermNotOver,
    #[error("the sender holds no seat that may do this (or its term is over)")]
    NotInOffice,
    #[error("an acting seat cannot make an irreversible decision")]
    ActingSeat,
    #[error("the members decide this by anonymous ballots, not by roll call")]
    BallotsOnly,
    #[error("voting on that question is closed")]
    VotingClosed,
    #[error("not yet: the proposal's next step is not due")]
    NotYet,
    #[error("this seat already voted on that question")]
    AlreadyVoted,
    #[error("not enough vote tokens this round: needs {needed}, has {left}")]
    VoteTokens { needed: u128, left: u128 },
    #[error("that decision cannot be challenged (final, not decided, or its window has passed)")]
    NotChallengeable,
    #[error("a challenge of that decision is already running")]
    ChallengeOpen,
    #[error("already supported this challenge")]
    AlreadySupported,
    #[error("no challenge of that decision is taking support or votes")]
    NoChallenge,
    #[error("that proposal has nothing left to do")]
    ProposalClosed,
    #[error("no free seat in that office")]
    SeatsFull,
    #[error("that account is already another foundation's registrar")]
    RegistrarTaken,
    #[error("a foundation's treasury pays out only as its proposals decide")]
    TreasuryLocked,
    #[error("that question has all the votes it can hold")]
    TooManyVotes,
    #[error("not a usable credential key (RSA, 2048 to 4096 bits, exponent 65537)")]
    BadCredentialKey,
    #[error("that credential key is already published")]
    KeyPublished,
    #[error("no credential key is published for that foundation and round")]
    NoCredentialKey,
    #[error("that credential was already issued")]
    CredentialIssued,
    #[error("the blind signature or credential does not verify under the round's key")]
    BadCredential,
    #[error("this ballot key has cast all the ballots it may on that question")]
    TooManyBallots,
    #[error("a ballot pays no fee and no tip")]
    BallotPays,
    #[error("wrong round: a credential of a round not begun, or not the referendum's")]
    WrongRound,
    #[error("that account already holds a seat in this foundation")]
    AlreadySeated,
    #[error("that value is outside what the network allows")]
    ParamOutOfBounds,
}

impl TxError {
    /// The status code in receipts (0 is success). Codes are part of the protocol.
    pub fn code(&self) -> u16 {
        match self {
            TxError::Malformed(_) => 1,
            TxError::BadSignature => 2,
            TxError::WrongShard { .. } => 3,
            TxError::UnknownAccount => 4,
            TxError::NonceGap { .. } => 5,
            TxError::NonceReused { .. } => 6,
            TxError::Expired { .. } => 7,
            TxError::ExpiryTooFar { .. } => 8,
            TxError::FeeTooLow { .. } => 9,
            TxError::InsufficientBalance { .. } => 10,
            TxError::TextTooLong { .. } => 11,
            TxError::EmptyText => 12,
            TxError::InvalidLang => 13,
            TxError::UnknownTarget => 14,
            TxError::PostDeleted => 15,
            TxError::NotAuthor => 16,
            TxError::EditLimit { .. } => 17,
            TxError::AlreadyLiked => 18,
            TxError::NotLiked => 19,
            TxError::AlreadyReposted => 20,
            TxError::NotReposted => 21,
            TxError::AlreadyFollowing => 22,
            TxError::NotFollowing => 23,
            TxError::SelfTarget => 24,
            TxError::AlreadyBlocked => 25,
            TxError::NotBlocked => 26,
            TxError::AlreadyMuted => 27,
            TxError::NotMuted => 28,
            TxError::InvalidProfile(_) => 29,
            TxError::InvalidHandle(_) => 30,
            TxError::HandleTaken => 31,
            TxError::HandlePending => 32,
            TxError::InvalidAmount => 33,
            TxError::BlockFull => 34,
            TxError::Overflow => 35,
            TxError::AlreadyValidator => 36,
            TxError::NotValidator => 37,
            TxError::InvalidValidator(_) => 38,
            TxError::InvalidChatDevice(_) => 39,
            TxError::NoChatDevice => 40,
            TxError::NotRegistrar => 41,
            TxError::AlreadyMember { .. } => 42,
            TxError::NotMember => 43,
            TxError::SponsorshipCap { .. } => 44,
            TxError::SponsoredByAnother => 45,
            TxError::NotSponsor => 46,
            TxError::TermNotOver => 47,
            TxError::NotInOffice => 48,
            TxError::ActingSeat => 49,
            TxError::BallotsOnly => 50,
            TxError::VotingClosed => 51,
            TxError::NotYet => 52,
            TxError::AlreadyVoted => 53,
            TxError::VoteTokens { .. } => 54,
            TxError::NotChallengeable => 55,
            TxError::ChallengeOpen => 56,
            TxError::AlreadySupported => 57,
            TxError::NoChallenge => 58,
            TxError::ProposalClosed => 59,
            TxError::SeatsFull => 60,
            TxError::RegistrarTaken => 61,
            TxError::TreasuryLocked => 62,
            TxError::TooManyVotes => 63,
            TxError::AlreadySeated => 64,
            TxError::ParamOutOfBounds => 65,
            TxError::BadCredentialKey => 66,
            TxError::KeyPublished => 67,
            TxError::NoCredentialKey => 68,
            TxError::CredentialIssued => 69,
            TxError::BadCredential => 70,
            TxError::TooManyBallots => 72,
            TxError::BallotPays => 73,
            TxError::WrongRound => 74,
        }
    }
}

/// A block that must not be applied. Applying it changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BlockError {
    #[error("block is for chain {got}, this is {expected}")]
    WrongChain { expected: String, got: String },
    #[error("block is for shard {got}, this is shard {expected}")]
    WrongShard { expected: ShardId, got: ShardId },
    #[error("expected height {expected}, got {got}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("parent does not match the last applied block")]
    WrongParent,
    #[error("timestamp is not after its parent's")]
    TimestampRegression,
    /// Rule R1: a global block's `reveal` is not what its proposer owes.
    #[error("the block's onion reveal is not what its proposer owes (rule R1)")]
    BadReveal,
    #[error("base fee is {got}, rules require {expected}")]
    WrongBaseFee { expected: u64, got: u64 },
    #[error("{0} root does not match the block's contents")]
    RootMismatch(&'static str),
    #[error("inbound message {index} from shard {source_shard}: {reason}")]
    BadInbound {
        source_shard: ShardId,
        index: usize,
        reason: &'static str,
    },
    #[error("too many transactions or messages")]
    TooLarge,
    #[error("transaction {index} does not decode: {reason}")]
    MalformedTx { index: usize, reason: String },
    #[error("transaction {index} carries a signature that does not verify")]
    BadSignature { index: usize },
    #[error("inbound batches must be non-empty and in order: {0}")]
    InboundOrder(&'static str),
    #[error("state error: {0}")]
    State(String),
}
