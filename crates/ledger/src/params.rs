//! Parameters of a ledger, fixed at genesis (governance will version them later).

use crate::fees::FeeSplit;
pub use crate::proposals::FoundationParams;
use starling_types::codec::{put, Decode, DecodeError, Encode, Reader};
use starling_types::receipt::MAX_COMMITTEE;
use starling_types::{
    AccountId, ChainId, Federation, Foundation, FoundationStatus, Hash, Offices, PublicKey, Seat,
    ShardMap,
};

pub use starling_types::federation::MAX_FOUNDATIONS;

/// Fewest foundations a network starts with.
pub const MIN_FOUNDATIONS: usize = 3;

/// Global epochs per charge period by default: a year of 1,000-block epochs at one block
/// per second.
pub const DEFAULT_CHARGE_PERIOD_EPOCHS: u64 = 31_536;

/// Most SPEND set aside for one account's base fees by default: about 250 posts at the
/// initial base fee.
pub const DEFAULT_SPONSORSHIP_CAP: u128 = 1_000_000_000;

/// Default terms in global epochs (a year is 31,536 epochs of 1,000 one-second blocks), by
/// [`starling_types::Office::code`]: president 5 years, officers 3, board 4, senate 2, staff 1.
pub const DEFAULT_OFFICE_TERMS: [u64; 5] = [157_680, 94_608, 126_144, 63_072, 31_536];

/// The longest term of any office: 10 years of epochs (no seat for life).
pub const MAX_OFFICE_TERM: u64 = 315_360;

/// How proposals, votes and challenges run (rules GV1–GV8): periods in global epochs,
/// deposits in SPEND units, and each foundation's parameters until its senate sets them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GovernanceParams {
    /// How long a proposal is open for votes.
    pub voting_epochs: u64,
    /// How long after its tally a decision may be challenged; irreversible ones wait it out.
    pub challenge_epochs: u64,
    /// How long a challenge gathers support before it lapses.
    pub support_epochs: u64,
    /// How long the board votes on a supported challenge.
    pub board_vote_epochs: u64,
    /// Vote tokens are replenished every this many epochs (rule GV4).
    pub round_epochs: u64,
    /// Held from a proposer; returned if the vote reaches quorum, else kept by the
    /// foundation.
    pub proposal_deposit: u128,
    /// Held from a challenger; returned if the challenge overturns the decision.
    pub challenge_deposit: u128,
    /// Each foundation's starting parameters (its senate may change them).
    pub foundation: FoundationParams,
}

impl Default for GovernanceParams {
    fn default() -> Self {
        // In 1,000-second epochs: a week of voting, 30 days to challenge, a week to gather
        // support, 14 days for the board, and 30-day rounds.
        Self {
            voting_epochs: 605,
            challenge_epochs: 2_592,
            support_epochs: 605,
            board_vote_epochs: 1_210,
            round_epochs: 2_592,
            proposal_deposit: 1_000_000_000,
            challenge_deposit: 1_000_000_000,
            foundation: FoundationParams::default(),
        }
    }
}

impl GovernanceParams {
    fn validate(&self) -> Result<(), DecodeError> {
        let periods = [
            self.voting_epochs,
            self.challenge_epochs,
            self.support_epochs,
            self.board_vote_epochs,
            self.round_epochs,
        ];
        if periods.iter().any(|p| !(1..=MAX_OFFICE_TERM).contains(p)) {
            return Err(DecodeError::InvalidValue(
                "governance periods (1 epoch to 10 years of epochs)",
            ));
        }
        self.foundation.validate()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put::u64(out, self.voting_epochs);
        put::u64(out, self.challenge_epochs);
        put::u64(out, self.support_epochs);
        put::u64(out, self.board_vote_epochs);
        put::u64(out, self.round_epochs);
        put::u128(out, self.proposal_deposit);
        put::u128(out, self.challenge_deposit);
        self.foundation.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            voting_epochs: r.u64()?,
            challenge_epochs: r.u64()?,
            support_epochs: r.u64()?,
            board_vote_epochs: r.u64()?,
            round_epochs: r.u64()?,
            proposal_deposit: r.u128()?,
            challenge_deposit: r.u128()?,
            foundation: FoundationParams::decode(r)?,
        })
    }
}

/// The fee allowance verified members receive from the foundation that admitted them
/// (rate-limited per account; rule T6).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AllowanceParams {
    /// Granted when the account becomes a member.
    pub initial: u128,
    /// Regained per block, up to `cap`.
    pub refill_per_block: u128,
    pub cap: u128,
    /// How many blocks after its admission a member has an allowance.
    pub period_blocks: u64,
}

impl Default for AllowanceParams {
    fn default() -> Self {
        // At the initial base fee a post costs ~4,000,000 units: ~100 posts, then one post
        // per ~100 blocks, for the first ~week of blocks at one block per second.
        Self {
            initial: 400_000_000,
            refill_per_block: 40_000,
            cap: 400_000_000,
            period_blocks: 600_000,
        }
    }
}

/// Everything that defines the rules of one network.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LedgerParams {
    pub chain_id: ChainId,
    pub shard_map: ShardMap,
    pub block_gas_limit: u64,
    pub initial_base_fee: u64,
    pub min_base_fee: u64,
    pub fee_split: FeeSplit,
    pub allowance: AllowanceParams,
    /// A transaction may name an expiry at most this many blocks ahead.
    pub max_expiry_blocks: u64,
    /// Most edits one post may have.
    pub max_edits: u16,
    /// The genesis foundations' accounts (their treasuries), in registry order.
    pub foundations: Vec<AccountId>,
    /// Seed of the first charge period (rule FD1).
    pub assignment_seed: Hash,
    /// Blocks per consensus epoch of every shard (rules E1, E2); at least 2.
    pub epoch_blocks: u64,
    /// Members of each shard's committee (fewer if fewer validators are registered).
    pub committee_size: u16,
    /// SPEND a validator locks to join the registry.
    pub validator_bond: u128,
    /// Global epochs per charge period (rule FD2); at least 1.
    pub charge_period_epochs: u64,
    /// Each genesis foundation's registrar (rule FM1), in registry order; distinct.
    pub registrars: Vec<AccountId>,
    /// Most SPEND set aside for one account's base fees (rule SP1).
    pub sponsorship_cap: u128,
    /// Each office's term in global epochs, by [`starling_types::Office::code`] (rule OF1).
    pub office_terms: [u64; 5],
    /// Each genesis foundation's offices at genesis, in registry order (none: no seats).
    pub genesis_offices: Vec<Offices>,
    /// Proposals, votes and challenges (rules GV1–GV8).
    pub governance: GovernanceParams,
}

impl LedgerParams {
    pub fn gas_target(&self) -> u64 {
        self.block_gas_limit / 2
    }

    /// The federation at genesis: every foundation Active, in the first charge period.
    pub fn genesis_federation(&self) -> Federation {
        Federation {
            version: 0,
            period: 0,
            seed: self.assignment_seed,
            foundations: self
                .foundations
                .iter()
                .zip(&self.registrars)
                .map(|(treasury, registrar)| Foundation {
                    treasury: *treasury,
                    registrar: *registrar,
                    status: FoundationStatus::Active,
                })
                .collect(),
        }
    }

    /// A reasonable devnet configuration.
    pub fn devnet(
        chain_id: ChainId,
        account_shards: u16,
        foundations: Vec<AccountId>,
    ) -> Result<Self, DecodeError> {
        Ok(Self {
            chain_id,
            shard_map: ShardMap::even(account_shards)?,
            block_gas_limit: 200_000_000,
            // The floor is at least 8: below it, F1's integer delta rounds to zero and an idle
            // shard's fee could never fall back to the floor.
            initial_base_fee: 1_000,
            min_base_fee: 100,
            fee_split: FeeSplit::default(),
            allowance: AllowanceParams::default(),
            max_expiry_blocks: 100_000,
            max_edits: 10,
            registrars: foundations.clone(),
            foundations,
            assignment_seed: Hash::of(&[b"starling/foundation-period/0"]),
            epoch_blocks: 1_000,
            committee_size: 16,
            validator_bond: 1_000_000_000_000,
            charge_period_epochs: DEFAULT_CHARGE_PERIOD_EPOCHS,
            sponsorship_cap: DEFAULT_SPONSORSHIP_CAP,
            office_terms: DEFAULT_OFFICE_TERMS,
            genesis_offices: Vec::new(),
            governance: GovernanceParams::default(),
        })
    }

    pub fn validate(&self) -> Result<(), DecodeError> {
        if !self.fee_split.is_valid() {
            return Err(DecodeError::InvalidValue(
                "fee split (must sum to 10000 bps)",
            ));
        }
        if self.foundations.len() < MIN_FOUNDATIONS || self.foundations.len() > MAX_FOUNDATIONS {
            return Err(DecodeError::InvalidValue("foundations (3..=64)"));
        }
        let distinct: std::collections::BTreeSet<_> = self.registrars.iter().collect();
        if self.registrars.len() != self.foundations.len()
            || distinct.len() != self.registrars.len()
        {
            return Err(DecodeError::InvalidValue("registrars (one each, distinct)"));
        }
        if self
            .office_terms
            .iter()
            .any(|t| !(1..=MAX_OFFICE_TERM).contains(t))
        {
            return Err(DecodeError::InvalidValue(
                "office terms (1 epoch to 10 years of epochs)",
            ));
        }
        if !self.genesis_offices.is_empty() && self.genesis_offices.len() != self.foundations.len()
        {
            return Err(DecodeError::InvalidValue(
                "genesis offices (one per foundation)",
            ));
        }
        // Genesis seats start at genesis and last their office's term, never acting.
        for o in &self.genesis_offices {
            o.validate()?;
            let term = |s: &Seat| self.office_terms[usize::from(s.office.code())];
            if o.seats
                .iter()
                .any(|s| s.since != 0 || s.until != term(s) || s.acting)
            {
                return Err(DecodeError::InvalidValue(
                    "genesis offices (from epoch 0 for the office's term)",
                ));
            }
        }
        self.governance.validate()?;
        if self.charge_period_epochs == 0 {
            return Err(DecodeError::InvalidValue(
                "charge_period_epochs (at least 1)",
            ));
        }
        if self.block_gas_limit < 2
            || self.min_base_fee == 0
            || self.initial_base_fee < self.min_base_fee
        {
            return Err(DecodeError::InvalidValue("gas limit or base fee"));
        }
        if self.epoch_blocks < 2 {
            return Err(DecodeError::InvalidValue("epoch_blocks (at least 2)"));
        }
        if self.committee_size == 0 || self.committee_size as usize > MAX_COMMITTEE {
            return Err(DecodeError::InvalidValue("committee_size (1..=256)"));
        }
        Ok(())
    }
}

impl Encode for LedgerParams {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u8(out, 6);
        self.chain_id.encode(out);
        self.shard_map.encode(out);
        put::u64(out, self.block_gas_limit);
        put::u64(out, self.initial_base_fee);
        put::u64(out, self.min_base_fee);
        self.fee_split.encode(out);
        put::u128(out, self.allowance.initial);
        put::u128(out, self.allowance.refill_per_block);
        put::u128(out, self.allowance.cap);
        put::u64(out, self.allowance.period_blocks);
        put::u64(out, self.max_expiry_blocks);
        put::u16(out, self.max_edits);
        put::seq(out, &self.foundations, |o, f| f.encode(o));
        self.assignment_seed.encode(out);
        put::u64(out, self.epoch_blocks);
        put::u16(out, self.committee_size);
        put::u128(out, self.validator_bond);
        put::u64(out, self.charge_period_epochs);
        put::seq(out, &self.registrars, |o, f| f.encode(o));
        put::u128(out, self.sponsorship_cap);
        for t in self.office_terms {
            put::u64(out, t);
        }
        put::seq(out, &self.genesis_offices, |o, x| x.encode(o));
        self.governance.encode(out);
    }
}

impl Decode for LedgerParams {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8()?;
        if version != 6 {
            return Err(DecodeError::UnsupportedVersion {
                what: "ledger params",
                version,
            });
        }
        let p = LedgerParams {
            chain_id: ChainId::decode(r)?,
            shard_map: ShardMap::decode(r)?,
            block_gas_limit: r.u64()?,
            initial_base_fee: r.u64()?,
            min_base_fee: r.u64()?,
            fee_split: FeeSplit::decode(r)?,
            allowance: AllowanceParams {
                initial: r.u128()?,
                refill_per_block: r.u128()?,
                cap: r.u128()?,
                period_blocks: r.u64()?,
            },
            max_expiry_blocks: r.u64()?,
            max_edits: r.u16()?,
            foundations: r.seq("foundations", MAX_FOUNDATIONS, PublicKey::decode)?,
            assignment_seed: Hash::decode(r)?,
            epoch_blocks: r.u64()?,
            committee_size: r.u16()?,
            validator_bond: r.u128()?,
            charge_period_epochs: r.u64()?,
            registrars: r.seq("registrars", MAX_FOUNDATIONS, PublicKey::decode)?,
            sponsorship_cap: r.u128()?,
            office_terms: [r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?],
            genesis_offices: r.seq("genesis offices", MAX_FOUNDATIONS, Offices::decode)?,
            governance: GovernanceParams::decode(r)?,
        };
        p.validate()?;
        Ok(p)
    }
}
