//! The chain store: create, open, propose, apply, prove, and refuse bad input.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::{alloc, post};

use starling_ledger::records::StateKey;
use starling_ledger::BlockError;
use starling_store::{ChainStore, StoreError};
use starling_types::ShardId;

#[test]
fn two_stores_agree_and_a_reopened_store_resumes() {
    let (params, keys) = common::setup("store-test", 4);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = ChainStore::create(
        da.path(),
        params.clone(),
        ShardId(1),
        &alloc(&keys),
        1 << 60,
        8,
    )
    .unwrap();
    // The other node keeps more levels in memory: the roots must not care.
    let mut b = ChainStore::create(
        db.path(),
        params.clone(),
        ShardId(1),
        &alloc(&keys),
        1 << 60,
        12,
    )
    .unwrap();
    assert_eq!(a.head(), b.head());
    let proposer = keys[0].public_key();
    for h in 1..=5u64 {
        let txs = keys
            .iter()
            .map(|k| post(&params, k, h - 1, &format!("post {h}")))
            .collect();
        let (block, _) = a.propose(txs, vec![], h * 10, proposer).unwrap();
        b.apply(&block).unwrap();
        assert_eq!(a.head(), b.head());
    }
    let head = a.head();
    drop(a);
    let mut a = ChainStore::open(da.path()).unwrap();
    assert_eq!(a.head(), head);
    let txs = vec![post(&params, &keys[0], 5, "after reopen")];
    let (block, _) = a.propose(txs, vec![], 60, proposer).unwrap();
    b.apply(&block).unwrap();
    assert_eq!(a.head(), b.head());
    assert_eq!(a.block(6).unwrap().unwrap(), block);
}

#[test]
fn bad_blocks_change_nothing() {
    let (params, keys) = common::setup("store-test", 4);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = ChainStore::create(
        da.path(),
        params.clone(),
        ShardId(1),
        &alloc(&keys),
        1 << 60,
        8,
    )
    .unwrap();
    let mut b = ChainStore::create(
        db.path(),
        params.clone(),
        ShardId(1),
        &alloc(&keys),
        1 << 60,
        8,
    )
    .unwrap();
    let (block, _) = a
        .propose(
            vec![post(&params, &keys[1], 0, "hi")],
            vec![],
            10,
            keys[0].public_key(),
        )
        .unwrap();
    let before = b.head();

    let mut wrong_root = block.clone();
    wrong_root.header.state_root.0[3] ^= 1;
    assert!(matches!(
        b.apply(&wrong_root),
        Err(StoreError::Block(BlockError::RootMismatch("state")))
    ));
    let mut wrong_tx = block.clone();
    wrong_tx.txs[0] = post(&params, &keys[1], 0, "changed");
    assert!(matches!(
        b.apply(&wrong_tx),
        Err(StoreError::Block(BlockError::RootMismatch(_)))
    ));
    let mut wrong_parent = block.clone();
    wrong_parent.header.parent.0[0] ^= 1;
    assert!(matches!(
        b.apply(&wrong_parent),
        Err(StoreError::Block(BlockError::WrongParent))
    ));
    let mut wrong_fee = block.clone();
    wrong_fee.header.base_fee += 1;
    assert!(matches!(
        b.apply(&wrong_fee),
        Err(StoreError::Block(BlockError::WrongBaseFee { .. }))
    ));
    assert_eq!(b.head(), before);
    assert!(b.block(1).unwrap().is_none());
    // The genuine block still applies afterwards: the refused ones left no trace in memory.
    b.apply(&block).unwrap();
    assert_eq!(b.head(), a.head());
}

#[test]
fn proofs_verify_against_the_head_root() {
    let (params, keys) = common::setup("store-test", 4);
    let d = tempfile::tempdir().unwrap();
    let mut s = ChainStore::create(
        d.path(),
        params.clone(),
        ShardId(1),
        &alloc(&keys),
        1 << 60,
        6,
    )
    .unwrap();
    s.propose(
        vec![post(&params, &keys[2], 0, "provable")],
        vec![],
        10,
        keys[0].public_key(),
    )
    .unwrap();
    let root = s.head().state_root;
    let id = starling_types::PostId {
        author: keys[2].public_key(),
        seq: 0,
    };
    let kh = StateKey::Post(&id).hash();
    let (value, proof) = s.prove(&kh).unwrap();
    proof
        .verify(
            &root,
            &kh,
            Some(&starling_state::value_hash(&value.unwrap())),
        )
        .unwrap();
    let missing = starling_types::PostId {
        author: keys[2].public_key(),
        seq: 1,
    };
    let kh = StateKey::Post(&missing).hash();
    let (value, proof) = s.prove(&kh).unwrap();
    assert!(value.is_none());
    proof.verify(&root, &kh, None).unwrap();
}

#[test]
fn clear_errors_for_missing_existing_and_damaged_stores() {
    let (params, keys) = common::setup("store-test", 4);
    let d = tempfile::tempdir().unwrap();
    assert!(matches!(
        ChainStore::open(d.path()),
        Err(StoreError::NotInitialized(_))
    ));
    ChainStore::create(d.path(), params.clone(), ShardId(1), &alloc(&keys), 1, 4).unwrap();
    assert!(matches!(
        ChainStore::create(d.path(), params.clone(), ShardId(1), &alloc(&keys), 1, 4),
        Err(StoreError::AlreadyExists(_))
    ));
    // A damaged file, of either environment, is reported, not a panic.
    for env in ["chain", "state"] {
        let copy = tempfile::tempdir().unwrap();
        ChainStore::create(copy.path(), params.clone(), ShardId(1), &alloc(&keys), 1, 4).unwrap();
        let path = copy.path().join("store").join(env).join("data.mdb");
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        std::fs::write(&path, vec![0x5a; len]).unwrap();
        assert!(ChainStore::open(copy.path()).is_err(), "{env}");
    }
}

#[test]
fn block_zero_is_the_genesis_header_and_proves_genesis_state() {
    let (params, keys) = common::setup("store-test", 4);
    let d = tempfile::tempdir().unwrap();
    let mut s = ChainStore::create(
        d.path(),
        params.clone(),
        ShardId(1),
        &alloc(&keys),
        1 << 60,
        6,
    )
    .unwrap();
    let genesis = s.block(0).unwrap().expect("block 0 is stored");
    assert_eq!(genesis.header.height, 0);
    assert!(genesis.txs.is_empty());
    assert_eq!(genesis.header.id(), s.head().id);
    assert_eq!(genesis.header.state_root, s.head().state_root);
    // A genesis balance is provable from block 0's header alone.
    let kh = StateKey::Account(&keys[0].public_key()).hash();
    let (value, proof) = s.prove(&kh).unwrap();
    proof
        .verify(
            &genesis.header.state_root,
            &kh,
            Some(&starling_state::value_hash(&value.unwrap())),
        )
        .unwrap();
    // Block 1 builds on it.
    let (b1, _) = s
        .propose(
            vec![post(&params, &keys[0], 0, "first")],
            vec![],
            10,
            keys[0].public_key(),
        )
        .unwrap();
    assert_eq!(b1.header.parent, genesis.header.id());
}

/// With a checkpoint after every block, most reads happen while one is being written in the
/// background: every read, root and proof must still be the state as of the head, the same as
/// a store that never checkpoints; the store reopens at the same root.
#[test]
fn background_checkpoints_never_change_what_is_read() {
    let (params, keys) = common::setup("store-test", 6);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let create = |dir: &std::path::Path| {
        ChainStore::create(dir, params.clone(), ShardId(1), &alloc(&keys), 1 << 60, 6).unwrap()
    };
    let (mut busy, mut lazy) = (create(da.path()), create(db.path()));
    busy.set_checkpoint_blocks(1);
    lazy.set_checkpoint_blocks(1_000);
    let proposer = keys[0].public_key();
    for h in 1..=40u64 {
        // A few users post each block, so keys change in some blocks and not others.
        let txs = keys
            .iter()
            .filter(|k| (h + u64::from(k.public_key().bytes[0])) % 3 != 0)
            .map(|k| {
                let nonce = lazy
                    .with_view(|v| {
                        starling_ledger::actions::account(v, &k.public_key())
                            .unwrap()
                            .map_or(0, |r| r.nonce)
                    })
                    .unwrap();
                post(&params, k, nonce, &format!("block {h}"))
            })
            .collect();
        let (block, _) = lazy.propose(txs, vec![], h * 10, proposer).unwrap();
        busy.apply(&block).unwrap();
        assert_eq!(busy.head(), lazy.head());
        for k in &keys {
            let kh = StateKey::Account(&k.public_key()).hash();
            let (value, proof) = busy.prove(&kh).unwrap();
            assert_eq!(value, lazy.get(&kh).unwrap(), "height {h}");
            proof
                .verify(
                    &busy.head().state_root,
                    &kh,
                    value.as_deref().map(starling_state::value_hash).as_ref(),
                )
                .unwrap();
        }
    }
    let head = busy.head();
    busy.flush().unwrap();
    drop(busy);
    assert_eq!(ChainStore::open(da.path()).unwrap().head(), head);
}

/// The block closing each epoch records the next committee's hand-off: the record (here
/// none: this store has no committees) with its proof under that block's root. It survives a
/// reopen, and so does a follower's copy of the certificate.
#[test]
fn closing_blocks_record_committee_handoffs() {
    let (mut params, keys) = common::setup("store-test", 2);
    params.epoch_blocks = 4;
    let d = tempfile::tempdir().unwrap();
    let mut s = ChainStore::create(
        d.path(),
        params.clone(),
        ShardId(1),
        &alloc(&keys),
        1 << 60,
        8,
    )
    .unwrap();
    let proposer = keys[0].public_key();
    for h in 1..=5u64 {
        assert_eq!(s.handoff(1).unwrap().is_some(), h > 3, "before height {h}");
        let txs = vec![post(&params, &keys[0], h - 1, &format!("post {h}"))];
        s.propose(txs, vec![], h * 10, proposer).unwrap();
    }
    // Height 3 closes epoch 0 (heights 0..=3); epoch 2's hand-off waits for height 7.
    assert!(s.handoff(2).unwrap().is_none());
    let check = |s: &ChainStore| {
        let closing = s.block(3).unwrap().unwrap();
        let h = s.handoff(1).unwrap().unwrap();
        assert!(h.value.is_none());
        let key = StateKey::EpochCommittee(1).hash();
        h.proof
            .verify(&closing.header.state_root, &key, None)
            .unwrap();
        // Not a proof under any other block's root.
        let other = s.block(4).unwrap().unwrap();
        assert!(h
            .proof
            .verify(&other.header.state_root, &key, None)
            .is_err());
    };
    check(&s);
    let id = s.block(3).unwrap().unwrap().header.id();
    s.record_handoff_certificate(1, &id, b"certificate")
        .unwrap();
    drop(s);
    let s = ChainStore::open(d.path()).unwrap();
    check(&s);
    assert_eq!(
        s.handoff_certificate(1).unwrap(),
        Some((id, b"certificate".to_vec()))
    );
    assert_eq!(s.handoff_certificate(2).unwrap(), None);
}
