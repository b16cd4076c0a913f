//! Replica agreement over forged and edge-case signatures (property). Random blocks mix
//! ordinary signatures, signatures valid only under ZIP-215's cofactored equation (identity
//! and mixed-order `R`), forgeries, and non-canonical `s`. For every one:
//! - the verdict on each signature is the single-signature rule's, whatever shares the batch;
//! - a block holding any invalid signature is refused by every replica, at the same index;
//! - a block of the valid ones is built by one replica, and two others (another state-tree
//!   layout, and one that skips every signature check as a relay or a replay does) reach the
//!   same state root at every height.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::edge::{edge_signature, IDENTITY, ORDER_TWO};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use starling_crypto::{SecretKey, SigItem};
use starling_ledger::{BlockError, BlockInput, LedgerParams, MemLedger};
use starling_types::tx::signing_hash;
use starling_types::{Action, Asset, Hash, KeyType, ShardId, TxBody, TxEnvelope};

fn params() -> LedgerParams {
    starling_testkit::devnet_params("agreement", 1, 90)
}

fn user(i: u8) -> SecretKey {
    SecretKey::from_seed(KeyType::Ed25519, &[i + 1; 32]).unwrap()
}

const USERS: u8 = 5;

fn replica(bits: u8) -> MemLedger {
    let alloc: Vec<_> = (0..USERS)
        .map(|i| (user(i).public_key(), Asset::Spend, 1u128 << 80))
        .collect();
    MemLedger::genesis(params(), ShardId(1), &alloc, 1 << 60, bits)
}

/// `s + ℓ`: the same signature with a non-canonical scalar (refused by ZIP-215).
fn non_canonical(sig: &starling_types::Signature) -> starling_types::Signature {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = *sig;
    let mut carry = 0u16;
    for (o, l) in out.0[32..].iter_mut().zip(L) {
        let v = u16::from(*o) + u16::from(l) + carry;
        *o = v as u8;
        carry = v >> 8;
    }
    out
}

/// One transaction by `k` at `nonce`, signed in one of six ways.
fn signed(k: &SecretKey, nonce: u64, kind: u32) -> TxEnvelope {
    let chain = params().chain_id;
    let body = TxBody {
        account: k.public_key(),
        nonce,
        max_fee: 1_000_000_000_000,
        tip: 1,
        expires_at_height: 10_000,
        action: Action::Post {
            text: format!("post {nonce} signed the {kind} way"),
            reply_to: None,
            quote_of: None,
            langs: vec![],
        },
    };
    let body_bytes = starling_types::Encode::to_bytes(&body);
    let h = signing_hash(&chain, &body_bytes);
    let signature = match kind {
        // Identity R; mixed-order R; R with an identity torsion part: valid under ZIP-215.
        1 => edge_signature(k, h.as_bytes(), IDENTITY, false),
        2 => edge_signature(k, h.as_bytes(), ORDER_TWO, true),
        3 => edge_signature(k, h.as_bytes(), IDENTITY, true),
        // Another key's signature of the same message: a forgery.
        4 => user(USERS).sign(h.as_bytes()),
        // A valid signature with s + ℓ.
        5 => non_canonical(&k.sign(h.as_bytes())),
        _ => k.sign(h.as_bytes()),
    };
    TxEnvelope {
        signature,
        body_bytes,
    }
}

fn input(at: &MemLedger, txs: Vec<TxEnvelope>, time_ms: u64) -> BlockInput {
    BlockInput {
        height: at.height + 1,
        parent: at.head,
        timestamp_ms: time_ms,
        proposer: user(0).public_key(),
        reveal: Hash::ZERO,
        txs,
        inbound: vec![],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn replicas_agree_on_forged_and_edge_case_signatures(seed in any::<u64>()) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let chain = params().chain_id;
        let mut proposer = replica(8);
        let mut other = replica(3);
        let mut skipper = replica(12);
        let mut nonces = [0u64; USERS as usize];
        for round in 0..5u64 {
            // Transactions signed every which way; an invalid one does not use up its nonce.
            let mut txs = Vec::new();
            let mut valid = Vec::new();
            for _ in 0..rng.gen_range(0..14) {
                let i = rng.gen_range(0..USERS) as usize;
                let k = user(i as u8);
                let env = signed(&k, nonces[i], rng.gen_range(0..7));
                let ok = starling_crypto::verify(
                    &k.public_key(),
                    signing_hash(&chain, &env.body_bytes).as_bytes(),
                    &env.signature,
                )
                .is_ok();
                if ok {
                    nonces[i] += 1;
                }
                txs.push(env);
                valid.push(ok);
            }
            // One batch over them all gives every signature its own verdict.
            let hashes: Vec<Hash> = txs.iter().map(|t| signing_hash(&chain, &t.body_bytes)).collect();
            let bodies: Vec<TxBody> = txs.iter().map(|t| t.body().unwrap()).collect();
            let items: Vec<SigItem<'_>> = txs
                .iter()
                .zip(&hashes)
                .zip(&bodies)
                .map(|((t, h), b)| SigItem { key: &b.account, msg: h.as_bytes(), sig: &t.signature })
                .collect();
            let failed: Vec<usize> = (0..txs.len()).filter(|&i| !valid[i]).collect();
            prop_assert_eq!(starling_crypto::verify_batch_uncached(&items), failed.clone());

            let time = 1_000 * (round + 1);
            if let Some(&first) = failed.first() {
                // The whole lot is an invalid block for every replica, at the same index.
                for r in [&proposer, &other] {
                    let verdict = r.ledger.execute(&r.state, &input(r, txs.clone(), time)).err();
                    prop_assert_eq!(verdict, Some(BlockError::BadSignature { index: first }));
                }
            }
            let kept: Vec<TxEnvelope> = txs
                .into_iter()
                .zip(&valid)
                .filter(|(_, ok)| **ok)
                .map(|(t, _)| t)
                .collect();
            let n = kept.len();
            let (block, executed) = proposer.propose_input(input(&proposer, kept, time)).unwrap();
            let applied = executed
                .events
                .iter()
                .filter(|e| matches!(e, starling_ledger::Event::TxApplied { .. }))
                .count();
            prop_assert_eq!(applied, n);
            other.apply(&block).unwrap();
            prop_assert_eq!(other.state.root(), block.header.state_root);
            // Skipping every signature check reaches the same root on a certified block.
            let skipped = skipper
                .ledger
                .execute_with(&skipper.state, &BlockInput::from_block(&block), &|_| true)
                .unwrap();
            let root = skipper.state.commit(&skipped.writes);
            skipper.head = block.header.id();
            skipper.height = block.header.height;
            prop_assert_eq!(root, block.header.state_root);
        }
    }
}
