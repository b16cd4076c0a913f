//! Speculative execution: blocks on unfinalized parents are executed once, change nothing
//! until finalized, and finalize to exactly the state of sequential application.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::alloc;

use starling_crypto::SecretKey;
use starling_ledger::{BlockInput, LedgerParams, MemLedger};
use starling_store::{ChainStore, Speculative, StoreError};
use starling_types::{Action, Asset, Block, ShardId, TxBody, TxEnvelope};

fn txs(params: &LedgerParams, keys: &[SecretKey], nonce: u64, tag: &str) -> Vec<TxEnvelope> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let action = if i == 0 {
                Action::Transfer {
                    asset: Asset::Spend,
                    to: keys[1].public_key(),
                    amount: 7,
                }
            } else {
                Action::Post {
                    text: format!("{tag} {nonce} {i}"),
                    reply_to: None,
                    quote_of: None,
                    langs: vec![],
                }
            };
            let body = TxBody {
                account: k.public_key(),
                nonce,
                max_fee: u128::MAX,
                tip: 1,
                expires_at_height: 100,
                action,
            };
            k.sign_tx(&params.chain_id, &body)
        })
        .collect()
}

/// Four blocks built in sequence on an in-memory replica.
fn reference(params: &LedgerParams, keys: &[SecretKey]) -> (MemLedger, Vec<Block>) {
    let mut mem = MemLedger::genesis(params.clone(), ShardId(1), &alloc(keys), 1 << 60, 6);
    let blocks = (0..4u64)
        .map(|n| {
            mem.propose(
                txs(params, keys, n, "main"),
                vec![],
                (n + 1) * 1000,
                keys[0].public_key(),
            )
            .unwrap()
            .0
        })
        .collect();
    (mem, blocks)
}

#[test]
fn speculation_changes_nothing_until_finalized() {
    let (params, keys) = common::setup("spec-test", 5);
    let (mem, blocks) = reference(&params, &keys);
    let d = tempfile::tempdir().unwrap();
    let mut store = ChainStore::create(
        d.path(),
        params.clone(),
        ShardId(1),
        &alloc(&keys),
        1 << 60,
        8,
    )
    .unwrap();
    let genesis = store.head();
    let mut spec = Speculative::new();

    // Verify three blocks deep without finalizing anything.
    for b in &blocks[..3] {
        spec.verify(&mut store, b.clone()).unwrap();
    }
    assert_eq!(store.head(), genesis);
    assert_eq!(spec.len(), 3);

    // Finalize them one by one (reusing the cached execution), then the fourth, unseen.
    for b in &blocks[..3] {
        spec.finalize(&mut store, b).unwrap();
    }
    assert!(spec.is_empty());
    spec.finalize(&mut store, &blocks[3]).unwrap();
    assert_eq!(store.head().state_root, mem.state.root());
    assert_eq!(store.head().id, mem.head);
}

#[test]
fn forks_are_executed_independently_and_losers_are_dropped() {
    let (params, keys) = common::setup("spec-test", 5);
    let (_, blocks) = reference(&params, &keys);
    let d = tempfile::tempdir().unwrap();
    let mut store = ChainStore::create(
        d.path(),
        params.clone(),
        ShardId(1),
        &alloc(&keys),
        1 << 60,
        8,
    )
    .unwrap();
    let mut spec = Speculative::new();
    let b1 = spec.verify(&mut store, blocks[0].clone()).unwrap();
    spec.verify(&mut store, blocks[1].clone()).unwrap();
    // A competing child of block 1, proposed here on the unfinalized parent.
    let rival = spec
        .propose(
            &mut store,
            BlockInput {
                height: 2,
                parent: b1,
                timestamp_ms: 2500,
                proposer: keys[2].public_key(),
                reveal: starling_types::Hash::ZERO,
                txs: txs(&params, &keys, 1, "rival"),
                inbound: vec![],
            },
        )
        .unwrap();
    assert_ne!(rival.header.state_root, blocks[1].header.state_root);
    // A child of the rival is also fine while both branches are open.
    let rival_child = spec
        .propose(
            &mut store,
            BlockInput {
                height: 3,
                parent: rival.header.id(),
                timestamp_ms: 3500,
                proposer: keys[2].public_key(),
                reveal: starling_types::Hash::ZERO,
                txs: vec![],
                inbound: vec![],
            },
        )
        .unwrap();
    assert_eq!(spec.len(), 4);

    // The main branch finalizes: the rival branch can no longer be built on.
    spec.finalize(&mut store, &blocks[0]).unwrap();
    spec.finalize(&mut store, &blocks[1]).unwrap();
    assert_eq!(
        spec.len(),
        1,
        "only the rival's child (height 3) can still be seen"
    );
    let orphan = BlockInput {
        height: 4,
        parent: rival_child.header.id(),
        timestamp_ms: 4500,
        proposer: keys[2].public_key(),
        reveal: starling_types::Hash::ZERO,
        txs: vec![],
        inbound: vec![],
    };
    assert!(matches!(
        spec.propose(&mut store, orphan),
        Err(StoreError::UnknownParent(_))
    ));
    spec.finalize(&mut store, &blocks[2]).unwrap();
    assert!(spec.is_empty());
    assert!(matches!(
        spec.finalize(&mut store, &rival_child),
        Err(StoreError::Block(_))
    ));
}

#[test]
fn bad_speculative_blocks_are_refused_and_not_cached() {
    let (params, keys) = common::setup("spec-test", 5);
    let (_, blocks) = reference(&params, &keys);
    let d = tempfile::tempdir().unwrap();
    let mut store = ChainStore::create(
        d.path(),
        params.clone(),
        ShardId(1),
        &alloc(&keys),
        1 << 60,
        8,
    )
    .unwrap();
    let mut spec = Speculative::new();
    let mut forged = blocks[0].clone();
    forged.header.state_root.0[0] ^= 1;
    assert!(matches!(
        spec.verify(&mut store, forged),
        Err(StoreError::Block(_))
    ));
    assert!(spec.is_empty());
    // A block whose parent nobody has seen.
    assert!(matches!(
        spec.verify(&mut store, blocks[2].clone()),
        Err(StoreError::UnknownParent(_))
    ));
    // The genuine chain still verifies afterwards: the refusals left the tree untouched.
    spec.verify(&mut store, blocks[0].clone()).unwrap();
    spec.verify(&mut store, blocks[1].clone()).unwrap();
    spec.finalize(&mut store, &blocks[0]).unwrap();
    assert_eq!(store.head().state_root, blocks[0].header.state_root);
}

#[test]
fn speculation_is_bounded() {
    let (params, keys) = common::setup("spec-test", 5);
    let d = tempfile::tempdir().unwrap();
    let mut store = ChainStore::create(
        d.path(),
        params.clone(),
        ShardId(1),
        &alloc(&keys),
        1 << 60,
        8,
    )
    .unwrap();
    let mut spec = Speculative::new();
    let mut parent = store.head().id;
    for h in 1..=starling_store::MAX_SPECULATIVE_BLOCKS as u64 {
        let input = BlockInput {
            height: h,
            parent,
            timestamp_ms: h,
            proposer: keys[0].public_key(),
            reveal: starling_types::Hash::ZERO,
            txs: vec![],
            inbound: vec![],
        };
        parent = spec.propose(&mut store, input).unwrap().header.id();
    }
    let over = BlockInput {
        height: 257,
        parent,
        timestamp_ms: 257,
        proposer: keys[0].public_key(),
        reveal: starling_types::Hash::ZERO,
        txs: vec![],
        inbound: vec![],
    };
    assert!(matches!(
        spec.propose(&mut store, over),
        Err(StoreError::TooManyUnfinalized(_))
    ));
}
