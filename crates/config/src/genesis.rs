//! The genesis file: everything that defines a network at height 0.
//!
//! A TOML file (see `docs/operations.md` for an annotated example). It is validated as a whole
//! when loaded; every error names the field to fix. Its identity is [`Genesis::id`], the hash
//! of its canonical binary form, so two nodes with the same genesis agree byte for byte.

pub use crate::governance::{GovernanceSection, ProposalsSection, TermsSection};
use crate::SetupError;
use serde::{Deserialize, Serialize};
use starling_ledger::fees::FeeSplit;
use starling_ledger::params::{AllowanceParams, MAX_FOUNDATIONS};
use starling_ledger::records::ValidatorInfo;
use starling_ledger::{GenesisValidators, LedgerParams};
use starling_types::codec::put;
use starling_types::{
    AccountId, Asset, ChainId, Encode, Hash, KeyType, PublicKey, ShardId, ShardMap,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

/// The network needs at least this many independent foundations.
pub const MIN_FOUNDATIONS: usize = 3;
/// Below this, rule F1's integer step rounds to zero and a base fee could never fall back.
pub const MIN_BASE_FEE_FLOOR: u64 = 8;

/// An amount: a TOML integer, or a decimal string for values beyond 2^63.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Amount {
    Int(u64),
    Text(String),
}

impl Amount {
    pub(crate) fn parse(&self, path: &str, field: &str) -> Result<u128, SetupError> {
        match self {
            Amount::Int(v) => Ok(*v as u128),
            Amount::Text(s) => s.replace('_', "").parse::<u128>().map_err(|_| {
                SetupError::invalid(
                    path,
                    field,
                    format!("`{s}` is not a whole number of base units"),
                )
            }),
        }
    }
}

impl From<u128> for Amount {
    fn from(v: u128) -> Self {
        match u64::try_from(v) {
            Ok(v) if v <= i64::MAX as u64 => Amount::Int(v),
            _ => Amount::Text(v.to_string()),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeesSection {
    pub block_gas_limit: u64,
    pub initial_base_fee: u64,
    pub min_base_fee: u64,
    pub burn_bps: u16,
    pub foundation_bps: u16,
    pub operations_bps: u16,
    pub venture_bps: u16,
    pub rewards_bps: u16,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowanceSection {
    pub initial: Amount,
    pub refill_per_block: Amount,
    pub cap: Amount,
    pub period_blocks: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_expiry_blocks: u64,
    pub max_edits: u16,
}

/// Consensus epochs and the validator registry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochsSection {
    /// Blocks per consensus epoch of every shard; committees change only between epochs.
    pub blocks: u64,
    /// Members of each shard's committee from epoch 1 on (drawn from the registry).
    pub committee_size: u16,
    /// SPEND a validator locks to register.
    pub validator_bond: Amount,
}

impl Default for EpochsSection {
    fn default() -> Self {
        EpochsSection {
            blocks: 1_000,
            committee_size: 16,
            validator_bond: Amount::from(1_000_000_000_000u128),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoundationEntry {
    pub name: String,
    pub account: String,
    /// The account that admits its verified members (rule FM1); its own account if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar: Option<String>,
    /// Its offices' first holders, whose terms start at genesis (rule OF1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub president: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub officers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub board: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub senate: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub staff: Vec<String>,
}

impl FoundationEntry {
    /// A foundation that is its own registrar.
    pub fn new(name: &str, account: String) -> Self {
        FoundationEntry {
            name: name.into(),
            account,
            registrar: None,
            president: None,
            officers: Vec::new(),
            board: Vec::new(),
            senate: Vec::new(),
            staff: Vec::new(),
        }
    }

    /// Its first office holders, each office with its keys as written.
    pub fn holders(&self) -> [(starling_types::Office, Vec<&str>); 5] {
        use starling_types::Office;
        [
            (
                Office::President,
                self.president.iter().map(String::as_str).collect(),
            ),
            (
                Office::Officer,
                self.officers.iter().map(String::as_str).collect(),
            ),
            (
                Office::Board,
                self.board.iter().map(String::as_str).collect(),
            ),
            (
                Office::Senate,
                self.senate.iter().map(String::as_str).collect(),
            ),
            (
                Office::Staff,
                self.staff.iter().map(String::as_str).collect(),
            ),
        ]
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorEntry {
    /// The validator's Ed25519 consensus key, `ed25519:<hex>`.
    pub key: String,
    /// Where its validator-to-validator transport listens, if known at genesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The shards whose epoch-0 committees it joins (default: all). Later committees are
    /// drawn from the registry over every shard, so a validator keeps every shard anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<Vec<u16>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationEntry {
    pub account: String,
    /// `spend` (default), `urc` or `core`.
    #[serde(default = "default_asset")]
    pub asset: String,
    pub amount: Amount,
}

fn default_asset() -> String {
    "spend".into()
}

/// The genesis file as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    pub chain_id: String,
    pub account_shards: u16,
    /// SPEND each foundation's treasury holds on every shard at genesis (funds fee allowances).
    pub foundation_treasury_per_shard: Amount,
    pub fees: FeesSection,
    pub allowance: AllowanceSection,
    pub limits: LimitsSection,
    #[serde(default)]
    pub epochs: EpochsSection,
    #[serde(default)]
    pub governance: GovernanceSection,
    pub foundations: Vec<FoundationEntry>,
    pub validators: Vec<ValidatorEntry>,
    #[serde(default)]
    pub allocations: Vec<AllocationEntry>,
}

impl GenesisFile {
    /// A genesis with the devnet defaults for everything but its members.
    pub fn template(chain_id: &str, account_shards: u16) -> Self {
        let a = AllowanceParams::default();
        let s = FeeSplit::default();
        GenesisFile {
            chain_id: chain_id.into(),
            account_shards,
            foundation_treasury_per_shard: Amount::from(1_000_000_000_000_000u128),
            fees: FeesSection {
                block_gas_limit: 200_000_000,
                initial_base_fee: 1_000,
                min_base_fee: 100,
                burn_bps: s.burn_bps,
                foundation_bps: s.foundation_bps,
                operations_bps: s.operations_bps,
                venture_bps: s.venture_bps,
                rewards_bps: s.rewards_bps,
            },
            allowance: AllowanceSection {
                initial: a.initial.into(),
                refill_per_block: a.refill_per_block.into(),
                cap: a.cap.into(),
                period_blocks: a.period_blocks,
            },
            limits: LimitsSection {
                max_expiry_blocks: 100_000,
                max_edits: 10,
            },
            epochs: EpochsSection::default(),
            governance: GovernanceSection::default(),
            foundations: Vec::new(),
            validators: Vec::new(),
            allocations: Vec::new(),
        }
    }

    pub fn to_toml(&self) -> Result<String, SetupError> {
        toml::to_string(self).map_err(|e| SetupError::invalid("genesis", "(all)", e.to_string()))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Foundation {
    pub name: String,
    pub account: AccountId,
    /// Admits its verified members (rule FM1).
    pub registrar: AccountId,
    /// Its offices at genesis.
    pub offices: starling_types::Offices,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub key: PublicKey,
    pub address: Option<SocketAddr>,
}

/// A validated genesis.
#[derive(Clone, Debug)]
pub struct Genesis {
    pub params: LedgerParams,
    pub foundations: Vec<Foundation>,
    pub foundation_treasury_per_shard: u128,
    pub validators: Vec<Validator>,
    /// The committee of every shard, `0..=account_shards`, in validator order.
    pub committees: BTreeMap<ShardId, Vec<PublicKey>>,
    pub allocations: Vec<(AccountId, Asset, u128)>,
}

impl Genesis {
    pub fn load(path: &Path) -> Result<Genesis, SetupError> {
        let text = std::fs::read_to_string(path).map_err(|e| SetupError::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates genesis TOML; `label` names the source in errors.
    pub fn parse(text: &str, label: &str) -> Result<Genesis, SetupError> {
        let file: GenesisFile = toml::from_str(text).map_err(|e| SetupError::Toml {
            path: label.into(),
            message: e.to_string(),
        })?;
        Self::from_file(&file, label)
    }

    /// The `[[foundations]]`: 3 to 64, names and accounts unique.
    fn foundations(f: &GenesisFile, p: &str) -> Result<Vec<Foundation>, SetupError> {
        let bad = |field: &str, msg: String| SetupError::invalid(p, field, msg);
        if f.foundations.len() < MIN_FOUNDATIONS || f.foundations.len() > MAX_FOUNDATIONS {
            return Err(bad(
                "foundations",
                format!(
                    "need {MIN_FOUNDATIONS} to {MAX_FOUNDATIONS}, found {}",
                    f.foundations.len()
                ),
            ));
        }
        let terms = &f.governance.terms;
        for (name, t) in ["president", "officer", "board", "senate", "staff"]
            .iter()
            .zip(terms.by_code())
        {
            if !(1..=starling_ledger::params::MAX_OFFICE_TERM).contains(&t) {
                return Err(bad(
                    &format!("governance.terms.{name}"),
                    "must be 1 to 315360 epochs (10 years)".into(),
                ));
            }
        }
        let mut foundations = Vec::new();
        let (mut names, mut keys, mut registrars) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for (i, fe) in f.foundations.iter().enumerate() {
            let field = format!("foundations[{i}]");
            if fe.name.trim().is_empty() || !names.insert(fe.name.to_lowercase()) {
                return Err(bad(
                    &format!("{field}.name"),
                    "must be non-empty and unique".into(),
                ));
            }
            let account =
                parse_key(&fe.account).map_err(|m| bad(&format!("{field}.account"), m))?;
            if !keys.insert(account) {
                return Err(bad(
                    &format!("{field}.account"),
                    "used by another foundation".into(),
                ));
            }
            let registrar = match &fe.registrar {
                Some(k) => parse_key(k).map_err(|m| bad(&format!("{field}.registrar"), m))?,
                None => account,
            };
            if !registrars.insert(registrar) {
                return Err(bad(
                    &format!("{field}.registrar"),
                    "registrar of another foundation".into(),
                ));
            }
            let offices = Self::offices(fe, &f.governance.terms, &field, p)?;
            foundations.push(Foundation {
                name: fe.name.clone(),
                account,
                registrar,
                offices,
            });
        }
        Ok(foundations)
    }

    /// A foundation's first office holders: seats from epoch 0 to each office's term.
    fn offices(
        fe: &FoundationEntry,
        terms: &TermsSection,
        field: &str,
        p: &str,
    ) -> Result<starling_types::Offices, SetupError> {
        let mut seats = Vec::new();
        for (office, keys) in fe.holders() {
            for k in keys {
                let holder = parse_key(k)
                    .map_err(|m| SetupError::invalid(p, format!("{field}.{}", office.name()), m))?;
                let until = terms.by_code()[usize::from(office.code())];
                seats.push(starling_types::Seat {
                    office,
                    holder,
                    since: 0,
                    until,
                    acting: false,
                });
            }
        }
        seats.sort_by_key(|s| (s.office, s.holder));
        let offices = starling_types::Offices { seats };
        offices.validate().map_err(|e| {
            SetupError::invalid(p, format!("{field}.offices"), format!("{e} (a holder holds one seat; at most 1 president, 7 officers, 15 board, 31 senate and 10 staff seats)"))
        })?;
        Ok(offices)
    }

    /// The `[allowance]` section, within its bounds.
    fn allowance(f: &GenesisFile, p: &str) -> Result<AllowanceParams, SetupError> {
        let bad = |field: &str, msg: String| SetupError::invalid(p, field, msg);
        let allowance = AllowanceParams {
            initial: f.allowance.initial.parse(p, "allowance.initial")?,
            refill_per_block: f
                .allowance
                .refill_per_block
                .parse(p, "allowance.refill_per_block")?,
            cap: f.allowance.cap.parse(p, "allowance.cap")?,
            period_blocks: f.allowance.period_blocks,
        };
        if allowance.initial > allowance.cap {
            return Err(bad(
                "allowance.initial",
                "must not exceed allowance.cap".into(),
            ));
        }
        Ok(allowance)
    }

    pub fn from_file(f: &GenesisFile, p: &str) -> Result<Genesis, SetupError> {
        let bad = |field: &str, msg: String| SetupError::invalid(p, field, msg);
        let chain_id = ChainId::new(&f.chain_id).map_err(|e| bad("chain_id", e.to_string()))?;
        let shard_map = ShardMap::even(f.account_shards)
            .map_err(|_| bad("account_shards", "must be 1 to 1024".into()))?;

        let fees = &f.fees;
        let fee_split = FeeSplit {
            burn_bps: fees.burn_bps,
            foundation_bps: fees.foundation_bps,
            operations_bps: fees.operations_bps,
            venture_bps: fees.venture_bps,
            rewards_bps: fees.rewards_bps,
        };
        if !fee_split.is_valid() {
            return Err(bad("fees", "burn_bps + foundation_bps + operations_bps + venture_bps + rewards_bps must be 10000".into()));
        }
        if fees.block_gas_limit < 100_000 {
            return Err(bad(
                "fees.block_gas_limit",
                "must be at least 100000".into(),
            ));
        }
        if fees.min_base_fee < MIN_BASE_FEE_FLOOR {
            return Err(bad("fees.min_base_fee", format!("must be at least {MIN_BASE_FEE_FLOOR}, or an idle shard's fee can never fall back to it")));
        }
        if fees.initial_base_fee < fees.min_base_fee {
            return Err(bad(
                "fees.initial_base_fee",
                "must be at least min_base_fee".into(),
            ));
        }
        let allowance = Self::allowance(f, p)?;

        let foundations = Self::foundations(f, p)?;

        if f.validators.is_empty() {
            return Err(bad(
                "validators",
                "at least one validator is required".into(),
            ));
        }
        let all_shards: Vec<ShardId> = (0..=f.account_shards).map(ShardId).collect();
        let mut validators = Vec::new();
        let mut committees: BTreeMap<ShardId, Vec<PublicKey>> =
            all_shards.iter().map(|s| (*s, Vec::new())).collect();
        let mut seen = BTreeSet::new();
        for (i, v) in f.validators.iter().enumerate() {
            let field = format!("validators[{i}]");
            let key = parse_key(&v.key).map_err(|m| bad(&format!("{field}.key"), m))?;
            if key.key_type != KeyType::Ed25519 {
                return Err(bad(
                    &format!("{field}.key"),
                    "validator keys must be ed25519".into(),
                ));
            }
            if !seen.insert(key) {
                return Err(bad(&format!("{field}.key"), "listed twice".into()));
            }
            let address = match &v.address {
                None => None,
                Some(a) => Some(a.parse::<SocketAddr>().map_err(|_| {
                    bad(
                        &format!("{field}.address"),
                        format!("`{a}` is not host:port"),
                    )
                })?),
            };
            let shards = match &v.shards {
                None => all_shards.clone(),
                Some(list) => {
                    let mut out = Vec::new();
                    for s in list {
                        if *s > f.account_shards {
                            return Err(bad(
                                &format!("{field}.shards"),
                                format!("shard {s} does not exist (0 to {})", f.account_shards),
                            ));
                        }
                        if !out.contains(&ShardId(*s)) {
                            out.push(ShardId(*s));
                        }
                    }
                    out
                }
            };
            for s in shards {
                committees.entry(s).or_default().push(key);
            }
            validators.push(Validator { key, address });
        }
        if let Some((s, _)) = committees.iter().find(|(_, c)| c.is_empty()) {
            return Err(bad("validators", format!("no validator serves shard {s}")));
        }

        let mut allocations = Vec::new();
        let mut totals = [0u128; 3];
        for (i, a) in f.allocations.iter().enumerate() {
            let field = format!("allocations[{i}]");
            let account = parse_key(&a.account).map_err(|m| bad(&format!("{field}.account"), m))?;
            let asset = match a.asset.to_ascii_lowercase().as_str() {
                "spend" => Asset::Spend,
                "urc" => Asset::Urc,
                "core" => Asset::Core,
                other => {
                    return Err(bad(
                        &format!("{field}.asset"),
                        format!("`{other}` is not spend, urc or core"),
                    ))
                }
            };
            let amount = a.amount.parse(p, &format!("{field}.amount"))?;
            if amount == 0 {
                return Err(bad(&format!("{field}.amount"), "must be positive".into()));
            }
            totals[asset.index()] = totals[asset.index()]
                .checked_add(amount)
                .ok_or_else(|| bad(&format!("{field}.amount"), "total supply overflows".into()))?;
            allocations.push((account, asset, amount));
        }
        let treasury = f
            .foundation_treasury_per_shard
            .parse(p, "foundation_treasury_per_shard")?;
        treasury
            .checked_mul(foundations.len() as u128 * (f.account_shards as u128 + 1))
            .and_then(|t| t.checked_add(totals[0]))
            .ok_or_else(|| {
                bad(
                    "foundation_treasury_per_shard",
                    "total supply overflows".into(),
                )
            })?;

        let params = LedgerParams {
            chain_id,
            shard_map,
            block_gas_limit: fees.block_gas_limit,
            initial_base_fee: fees.initial_base_fee,
            min_base_fee: fees.min_base_fee,
            fee_split,
            allowance,
            max_expiry_blocks: f.limits.max_expiry_blocks,
            max_edits: f.limits.max_edits,
            foundations: foundations.iter().map(|f| f.account).collect(),
            registrars: foundations.iter().map(|f| f.registrar).collect(),
            office_terms: f.governance.terms.by_code(),
            genesis_offices: foundations.iter().map(|f| f.offices.clone()).collect(),
            sponsorship_cap: f
                .governance
                .sponsorship_cap
                .parse(p, "governance.sponsorship_cap")?,
            assignment_seed: Hash::of(&[b"starling/foundation-period/0", f.chain_id.as_bytes()]),
            epoch_blocks: f.epochs.blocks,
            committee_size: f.epochs.committee_size,
            validator_bond: f.epochs.validator_bond.parse(p, "epochs.validator_bond")?,
            charge_period_epochs: f.governance.charge_period_epochs,
            governance: f.governance.proposals.params(p)?,
        };
        params
            .validate()
            .map_err(|e| bad("(parameters)", e.to_string()))?;
        Ok(Genesis {
            params,
            foundations,
            foundation_treasury_per_shard: treasury,
            validators,
            committees,
            allocations,
        })
    }

    pub fn shards(&self) -> impl Iterator<Item = ShardId> + '_ {
        self.committees.keys().copied()
    }

    /// The genesis validators as the ledger keeps them: each in the registry under the account
    /// of its consensus key, and every shard's epoch-0 committee.
    pub fn ledger_validators(&self) -> GenesisValidators {
        GenesisValidators {
            registry: self
                .validators
                .iter()
                .map(|v| ValidatorInfo {
                    account: v.key,
                    consensus_key: v.key,
                    address: v.address.map(|a| a.to_string()).unwrap_or_default(),
                })
                .collect(),
            committees: self.committees.clone(),
        }
    }

    /// The hash of the canonical binary form: parameters, foundations, validators with their
    /// committees, treasuries and allocations.
    pub fn id(&self) -> Hash {
        let mut out = Vec::new();
        put::u8(&mut out, 1);
        self.params.encode(&mut out);
        for f in &self.foundations {
            put::string(&mut out, &f.name);
        }
        put::u128(&mut out, self.foundation_treasury_per_shard);
        put::u32(&mut out, self.validators.len() as u32);
        for v in &self.validators {
            v.key.encode(&mut out);
        }
        for (shard, committee) in &self.committees {
            shard.encode(&mut out);
            put::u32(&mut out, committee.len() as u32);
            for k in committee {
                k.encode(&mut out);
            }
        }
        put::u32(&mut out, self.allocations.len() as u32);
        for (a, asset, amount) in &self.allocations {
            a.encode(&mut out);
            asset.encode(&mut out);
            put::u128(&mut out, *amount);
        }
        Hash::of(&[b"starling/genesis-file/v1", &out])
    }
}

fn parse_key(text: &str) -> Result<PublicKey, String> {
    PublicKey::parse(text).map_err(|e| format!("`{text}` is not a key: {e}"))
}
