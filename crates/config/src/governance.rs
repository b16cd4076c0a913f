//! The genesis file's `[governance]` section: charge periods, sponsorships, terms of office,
//! and how proposals, votes and challenges run.

use crate::genesis::Amount;
use crate::SetupError;
use serde::{Deserialize, Serialize};
use starling_types::proposals::{Branch, MAX_VOTE_TOKENS};
use std::collections::BTreeMap;

/// Governance: how the federation of foundations runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceSection {
    /// Global epochs per charge period: accounts are assigned to foundations anew at the
    /// start of each (rule FD2). Default: a year of epochs at one block per second.
    pub charge_period_epochs: u64,
    /// Most SPEND anyone may set aside for one account's base fees (rule SP1).
    #[serde(default = "default_sponsorship_cap")]
    pub sponsorship_cap: Amount,
    /// Each office's term in global epochs (rule OF1).
    #[serde(default)]
    pub terms: TermsSection,
    /// Proposals, votes and challenges (rules GV1–GV8).
    #[serde(default)]
    pub proposals: ProposalsSection,
}

/// Proposals, votes and challenges: periods in global epochs, deposits and limits in SPEND
/// units, and the vote tokens each branch's holders receive per round.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProposalsSection {
    pub voting_epochs: u64,
    pub challenge_epochs: u64,
    pub support_epochs: u64,
    pub board_vote_epochs: u64,
    pub round_epochs: u64,
    pub proposal_deposit: Amount,
    pub challenge_deposit: Amount,
    /// The largest spend that takes effect at enactment (larger ones wait out the
    /// challenge window).
    pub spend_limit: Amount,
    /// Vote tokens per holder per round: `members`, `staff`, `senate`, `board`,
    /// `executive`.
    pub tokens: BTreeMap<String, u64>,
}

impl Default for ProposalsSection {
    fn default() -> Self {
        let g = starling_ledger::params::GovernanceParams::default();
        ProposalsSection {
            voting_epochs: g.voting_epochs,
            challenge_epochs: g.challenge_epochs,
            support_epochs: g.support_epochs,
            board_vote_epochs: g.board_vote_epochs,
            round_epochs: g.round_epochs,
            proposal_deposit: g.proposal_deposit.into(),
            challenge_deposit: g.challenge_deposit.into(),
            spend_limit: g.foundation.spend_limit.into(),
            tokens: Branch::ALL
                .iter()
                .map(|b| {
                    (
                        b.name().to_owned(),
                        g.foundation.tokens[usize::from(b.code())] as u64,
                    )
                })
                .collect(),
        }
    }
}

impl ProposalsSection {
    /// The ledger's parameters, each field checked and named when it is wrong.
    pub(crate) fn params(
        &self,
        p: &str,
    ) -> Result<starling_ledger::params::GovernanceParams, SetupError> {
        let bad = |field: &str, msg: &str| {
            SetupError::invalid(p, format!("governance.proposals.{field}"), msg.to_owned())
        };
        let periods = [
            ("voting_epochs", self.voting_epochs),
            ("challenge_epochs", self.challenge_epochs),
            ("support_epochs", self.support_epochs),
            ("board_vote_epochs", self.board_vote_epochs),
            ("round_epochs", self.round_epochs),
        ];
        for (name, v) in periods {
            if !(1..=starling_ledger::params::MAX_OFFICE_TERM).contains(&v) {
                return Err(bad(name, "must be 1 to 315360 epochs (10 years)"));
            }
        }
        let mut foundation = starling_ledger::params::FoundationParams {
            spend_limit: self
                .spend_limit
                .parse(p, "governance.proposals.spend_limit")?,
            ..Default::default()
        };
        for (name, n) in &self.tokens {
            let b = Branch::ALL
                .into_iter()
                .find(|b| b.name() == name)
                .ok_or_else(|| {
                    bad(
                        "tokens",
                        "branches are members, staff, senate, board, executive",
                    )
                })?;
            if *n == 0 || u128::from(*n) > MAX_VOTE_TOKENS {
                return Err(bad(&format!("tokens.{name}"), "must be 1 to 1000000000"));
            }
            foundation.tokens[usize::from(b.code())] = u128::from(*n);
        }
        Ok(starling_ledger::params::GovernanceParams {
            voting_epochs: self.voting_epochs,
            challenge_epochs: self.challenge_epochs,
            support_epochs: self.support_epochs,
            board_vote_epochs: self.board_vote_epochs,
            round_epochs: self.round_epochs,
            proposal_deposit: self
                .proposal_deposit
                .parse(p, "governance.proposals.proposal_deposit")?,
            challenge_deposit: self
                .challenge_deposit
                .parse(p, "governance.proposals.challenge_deposit")?,
            foundation,
        })
    }
}

/// Terms of office in global epochs; the defaults are 5, 3, 4, 2 and 1 years.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TermsSection {
    pub president: u64,
    pub officer: u64,
    pub board: u64,
    pub senate: u64,
    pub staff: u64,
}

impl Default for TermsSection {
    fn default() -> Self {
        let [president, officer, board, senate, staff] =
            starling_ledger::params::DEFAULT_OFFICE_TERMS;
        TermsSection {
            president,
            officer,
            board,
            senate,
            staff,
        }
    }
}

impl TermsSection {
    /// By [`starling_types::Office::code`].
    pub fn by_code(&self) -> [u64; 5] {
        [
            self.president,
            self.officer,
            self.board,
            self.senate,
            self.staff,
        ]
    }
}

fn default_sponsorship_cap() -> Amount {
    starling_ledger::params::DEFAULT_SPONSORSHIP_CAP.into()
}

impl Default for GovernanceSection {
    fn default() -> Self {
        GovernanceSection {
            charge_period_epochs: starling_ledger::params::DEFAULT_CHARGE_PERIOD_EPOCHS,
            sponsorship_cap: default_sponsorship_cap(),
            terms: TermsSection::default(),
            proposals: ProposalsSection::default(),
        }
    }
}
