//! Fixtures shared by the store's tests: a one-shard network and funded users.
#![allow(dead_code, clippy::unwrap_used)]

use starling_crypto::SecretKey;
use starling_ledger::LedgerParams;
use starling_types::{AccountId, Action, Asset, ChainId, KeyType, TxBody, TxEnvelope};

/// Parameters of a one-account-shard network named `chain`, and `users` funded keys.
pub fn setup(chain: &str, users: u8) -> (LedgerParams, Vec<SecretKey>) {
    let foundations = (0..3u8)
        .map(|i| {
            SecretKey::from_seed(KeyType::Ed25519, &[90 + i; 32])
                .unwrap()
                .public_key()
        })
        .collect();
    let params = LedgerParams::devnet(ChainId::new(chain).unwrap(), 1, foundations).unwrap();
    let keys = (1..=users)
        .map(|i| SecretKey::from_seed(KeyType::Ed25519, &[i; 32]).unwrap())
        .collect();
    (params, keys)
}

/// Genesis balances: plenty of SPEND for every key.
pub fn alloc(keys: &[SecretKey]) -> Vec<(AccountId, Asset, u128)> {
    keys.iter()
        .map(|k| (k.public_key(), Asset::Spend, 1u128 << 80))
        .collect()
}

/// A signed post.
pub fn post(params: &LedgerParams, k: &SecretKey, nonce: u64, text: &str) -> TxEnvelope {
    let body = TxBody {
        account: k.public_key(),
        nonce,
        max_fee: u128::MAX,
        tip: 1,
        expires_at_height: 100,
        action: Action::Post {
            text: text.into(),
            reply_to: None,
            quote_of: None,
            langs: vec![],
        },
    };
    k.sign_tx(&params.chain_id, &body)
}
