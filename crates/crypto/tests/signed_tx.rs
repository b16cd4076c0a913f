//! A signed transaction pinned byte for byte: the signing domain, the chain id and the
//! signature scheme cannot drift without this test failing.
#![allow(clippy::unwrap_used, clippy::panic)]

use starling_crypto::{verify, SecretKey};
use starling_types::tx::{signing_hash, Action, ChainId, TxBody, TxEnvelope};
use starling_types::{Decode, Encode, KeyType};

#[test]
fn signed_post_matches_fixture() {
    // RFC 8032 test 1 secret key.
    let seed: [u8; 32] =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
    let sk = SecretKey::from_seed(KeyType::Ed25519, &seed).unwrap();
    let chain = ChainId::new("starling-devnet").unwrap();
    let body = TxBody {
        account: sk.public_key(),
        nonce: 0,
        max_fee: 10_000_000,
        tip: 1,
        expires_at_height: 100,
        action: Action::Post {
            text: "first post".into(),
            reply_to: None,
            quote_of: None,
            langs: vec!["en".into()],
        },
    };
    let env = sk.sign_tx(&chain, &body);
    let path = format!("{}/tests/fixtures/signed_post.hex", manifest_dir());
    if std::env::var("STARLING_BLESS").is_ok() {
        std::fs::write(&path, format!("{}\n", hex::encode(env.to_bytes()))).unwrap();
    }
    let fixture = hex::decode(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
    assert_eq!(
        env.to_bytes(),
        fixture,
        "signed transaction drifted from {path}"
    );
    let decoded = TxEnvelope::from_bytes(&fixture).unwrap();
    let msg = signing_hash(&chain, &decoded.body_bytes);
    verify(&sk.public_key(), msg.as_bytes(), &decoded.signature).unwrap();
    // The same bytes are not valid on another chain.
    let other = signing_hash(
        &ChainId::new("starling-mainnet").unwrap(),
        &decoded.body_bytes,
    );
    assert!(verify(&sk.public_key(), other.as_bytes(), &decoded.signature).is_err());
}

/// The crate's directory, as `cargo test` says when it runs the test (a test binary reused
/// from a checkout elsewhere would carry that checkout's compile-time path).
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into())
}
