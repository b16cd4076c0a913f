//! Why the pool refuses a transaction.

use starling_types::ShardId;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MempoolError {
    #[error("transaction belongs to shard {0}")]
    WrongShard(ShardId),
    #[error("already in the pool")]
    Duplicate,
    #[error("nonce {got} already used (account is at {expected})")]
    NonceTooLow { expected: u64, got: u64 },
    #[error("nonce {got} is too far ahead of {expected}")]
    NonceTooHigh { expected: u64, got: u64 },
    #[error("expired at height {0}")]
    Expired(u64),
    #[error("max_fee {max_fee} is below the current cost {required}")]
    FeeTooLow { required: u128, max_fee: u128 },
    #[error("a transaction with this nonce is pooled; a replacement must raise the tip by {0}%")]
    ReplacementUnderpriced(u32),
    #[error("account has {0} pooled transactions, the most allowed")]
    AccountFull(usize),
    #[error("pool is full and the transaction pays too little to evict another")]
    PoolFull,
    #[error("account is sending too fast; try again in a few blocks")]
    RateLimited,
    #[error("bad signature (forged, or signed for another chain)")]
    BadSignature,
    #[error("unknown account: an account exists once it has received funds")]
    UnknownAccount,
    #[error("expiry {expires_at} is too far ahead (at most {max})")]
    ExpiryTooFar { expires_at: u64, max: u64 },
    #[error("the account can pay {available} in fees; its pooled transactions may cost {needed}")]
    InsufficientFunds { needed: u128, available: u128 },
    #[error("a foundation's treasury pays out only as its proposals decide")]
    TreasuryLocked,
    #[error("the ballot would not count: {0}")]
    BallotRefused(String),
}

impl MempoolError {
    /// A short, stable code for clients and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            MempoolError::WrongShard(_) => "wrong_shard",
            MempoolError::Duplicate => "duplicate",
            MempoolError::NonceTooLow { .. } => "nonce_too_low",
            MempoolError::NonceTooHigh { .. } => "nonce_too_high",
            MempoolError::Expired(_) => "expired",
            MempoolError::FeeTooLow { .. } => "fee_too_low",
            MempoolError::ReplacementUnderpriced(_) => "replacement_underpriced",
            MempoolError::AccountFull(_) => "account_full",
            MempoolError::PoolFull => "mempool_full",
            MempoolError::RateLimited => "rate_limited",
            MempoolError::BadSignature => "bad_signature",
            MempoolError::UnknownAccount => "unknown_account",
            MempoolError::ExpiryTooFar { .. } => "expiry_too_far",
            MempoolError::InsufficientFunds { .. } => "insufficient_funds",
            MempoolError::TreasuryLocked => "treasury_locked",
            MempoolError::BallotRefused(_) => "ballot_refused",
        }
    }
}
