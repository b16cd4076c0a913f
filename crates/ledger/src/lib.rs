//! Starling's ledger: a pure, deterministic state machine,
//! `execute(state, block) -> (writes, receipts, events)`, for one shard of the network.
//!
//! The crate does no IO and has no async runtime: it reads the state through [`StateView`] and
//! returns the writes, which the caller commits (in memory with [`MemLedger`], on disk with
//! `starling-store`). Rules are numbered in module docs and cited where they are implemented:
//! B* block flow ([`exec`]), T* transaction checks, F* fees ([`fees`]), G* gas ([`gas`]),
//! S* social and K* bank actions, M* cross-shard messages ([`actions`]), FD* the federation of
//! foundations (`governance`).

pub mod actions;
pub mod ballots;
mod checks;
pub mod committee;
pub mod exec;
pub mod fees;
pub mod gas;
mod governance;
mod overlay;
pub mod params;
pub mod proposals;
pub mod randomness;
pub mod records;
pub mod validate;

mod error;
mod mem;

pub use error::{BlockError, TxError};
pub use exec::{BlockInput, Executed, GenesisValidators, ShardLedger};
pub use mem::MemLedger;
pub use params::LedgerParams;

use starling_types::{AccountId, Hash, ShardId};
use thiserror::Error;

/// The state of a shard as of its last applied block, addressed by key hash.
pub trait StateView {
    fn get(&self, key_hash: &Hash) -> Result<Option<Vec<u8>>, StateError>;
}

/// The state could not be read (IO or corruption). Aborts the block; never a rejection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("state unavailable: {0}")]
pub struct StateError(pub String);

/// A state with uncommitted writes on top (`Some` sets, `None` deletes): the view a block
/// executes against when its ancestors are not final yet.
#[derive(Debug)]
pub struct Layered<'a, V: ?Sized> {
    pub base: &'a V,
    pub top: &'a starling_state::WriteSet,
}

impl<V: StateView + ?Sized> StateView for Layered<'_, V> {
    fn get(&self, key_hash: &Hash) -> Result<Option<Vec<u8>>, StateError> {
        match self.top.get(key_hash) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key_hash),
        }
    }
}

impl StateView for starling_state::MemState {
    fn get(&self, key_hash: &Hash) -> Result<Option<Vec<u8>>, StateError> {
        Ok(starling_state::MemState::get(self, key_hash).map(<[u8]>::to_vec))
    }
}

/// What happened in a block, for indexers and clients.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    TxApplied {
        index: u32,
        tx_hash: Hash,
        account: AccountId,
        nonce: u64,
        fee: u128,
    },
    TxRejected {
        index: u32,
        tx_hash: Hash,
        error: TxError,
    },
    MessageApplied {
        source: ShardId,
        seq: u64,
    },
    MessageDuplicate {
        source: ShardId,
        seq: u64,
    },
    MessageOutOfOrder {
        source: ShardId,
        seq: u64,
        expected: u64,
    },
    MessageRejected {
        source: ShardId,
        seq: u64,
        error: TxError,
    },
    HandleRegistered {
        account: AccountId,
        handle: String,
    },
    HandleRefused {
        account: AccountId,
        handle: String,
        error: TxError,
    },
    /// The registry (global shard) took in or updated a validator.
    ValidatorJoined {
        account: AccountId,
    },
    /// The registry (global shard) refused a validator (key taken by another account, or full).
    ValidatorRefused {
        account: AccountId,
        error: TxError,
    },
    ValidatorLeft {
        account: AccountId,
    },
    /// The global shard drew committees for global epoch `epoch`.
    CommitteesDrawn {
        epoch: u64,
        seed: Hash,
    },
    /// A charge period began (rule FD2): accounts are assigned to foundations by `seed`.
    ChargesReshuffled {
        period: u64,
        seed: Hash,
    },
    /// The registry (global shard) admitted `account` to, or removed it from, `foundation`
    /// (rules FM1, FM2).
    MembershipChanged {
        account: AccountId,
        foundation: u16,
        member: bool,
    },
    /// The registry (global shard) refused an attestation or a leave (rules FM1, FM2).
    MembershipRefused {
        account: AccountId,
        error: TxError,
    },
    /// `account`'s shard took `amount` from `sponsor` for its base fees (rule SP1); `refunded`
    /// went back (above the cap, or another sponsor holds it).
    Sponsored {
        sponsor: AccountId,
        account: AccountId,
        amount: u128,
        refunded: u128,
    },
    /// A seat whose term had ended was cleared (rule OF2).
    SeatExpired {
        foundation: u16,
        office: starling_types::Office,
        holder: AccountId,
    },
    /// A seat could not be cleared: no such seat, or its term has not ended (rule OF2).
    SeatNotExpired {
        foundation: u16,
        holder: AccountId,
        error: TxError,
    },
    /// `sponsor` asked to end a sponsorship of `account` it does not hold (rule M14).
    SponsorshipRefused {
        sponsor: AccountId,
        account: AccountId,
        error: TxError,
    },
    /// A proposal opened (rule GV2).
    ProposalOpened {
        proposal: u64,
        foundation: u16,
        proposer: AccountId,
    },
    /// A seat holder voted on a proposal, or on its challenge (rule GV3).
    Voted {
        proposal: u64,
        voter: AccountId,
        challenge: bool,
        yes: bool,
        votes: u32,
    },
    /// A registrar published its credential key for a round (rule BL1).
    CredentialKeyPublished {
        foundation: u16,
        round: u64,
    },
    /// A member asked for a ballot credential (rule BL2).
    CredentialRequested {
        foundation: u16,
        round: u64,
        member: AccountId,
    },
    /// A registrar issued a member's credential (rule BL2).
    CredentialIssued {
        foundation: u16,
        round: u64,
        member: AccountId,
    },
    /// A valid credential beyond the issuance log: its registrar signed off the ledger, and
    /// the foundation's referenda of that round are void (rule BL4).
    CredentialForged {
        foundation: u16,
        round: u64,
    },
    /// A referendum was void: its round's credentials were forged (rule BL4).
    ReferendumVoid {
        proposal: u64,
    },
    /// An anonymous ballot counted (rule BL3): it replaces the key's earlier one, if any.
    BallotCast {
        proposal: u64,
        ballot_key: AccountId,
        yes: bool,
        votes: u32,
    },
    /// A proposal's status changed (rules GV5, GV6, GV8): its new status's name.
    ProposalChanged {
        proposal: u64,
        status: &'static str,
    },
    /// A passed proposal could not take effect (rule GV6).
    EnactmentFailed {
        proposal: u64,
        error: TxError,
    },
    /// A challenge moved to a new stage (rule GV7): the stage's name.
    ChallengeChanged {
        proposal: u64,
        stage: &'static str,
    },
    /// The global shard refused a governance act; its deposit went back (rule M16).
    GovernanceRefused {
        from: AccountId,
        proposal: Option<u64>,
        error: TxError,
    },
    /// An overturned appointment's seat was vacated (rule GV8).
    SeatVacated {
        foundation: u16,
        office: starling_types::Office,
        holder: AccountId,
    },
    /// A decided spend was paid from a treasury, or could not be (rule M17).
    TreasurySpend {
        proposal: u64,
        foundation: u16,
        to: AccountId,
        amount: u128,
        error: Option<TxError>,
    },
    /// `sponsor` stopped sponsoring `account`, or a larger offer displaced it; `refunded`
    /// went back (rules SP1, SP2).
    SponsorshipEnded {
        sponsor: AccountId,
        account: AccountId,
        refunded: u128,
    },
}
