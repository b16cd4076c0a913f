//! Blocks a Byzantine validator could put in front of a store: a forged signature in a block
//! (rule B3), and a body swapped under an honest header (rule B6). Both fail on `b334716`: the
//! forged transaction got a `BadSignature` receipt in a valid block that the proposer committed
//! and could then not replay on reopening; the swapped body decoded under the honest digest and
//! was committed next to the honest execution.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::{alloc, post, setup};

use starling_ledger::BlockError;
use starling_store::{ChainStore, Speculative, StoreError};
use starling_types::{
    Block, BlockHeader, Decode as _, Encode as _, InboundBatch, MerkleProof, Receipt, ShardId,
    ShardMessage, TxEnvelope,
};

#[test]
fn a_forged_signature_makes_the_block_invalid_and_every_store_reopens() {
    let (params, keys) = setup("byz-forged", 3);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let create = |dir: &std::path::Path| {
        let mut s =
            ChainStore::create(dir, params.clone(), ShardId(1), &alloc(&keys), 1 << 60, 8).unwrap();
        // Replay from the chain on every reopen: no checkpoint within this test.
        s.set_checkpoint_blocks(1_000);
        s
    };
    let mut a = create(da.path());
    let mut b = create(db.path());
    // Funded victim's nonce and fee, garbage signature.
    let honest = post(&params, &keys[1], 0, "mine");
    let forged = TxEnvelope {
        body_bytes: honest.body_bytes.clone(),
        signature: post(&params, &keys[2], 0, "other").signature,
    };
    let proposed = a.propose(
        vec![post(&params, &keys[0], 0, "fine"), forged.clone()],
        vec![],
        1_000,
        keys[0].public_key(),
    );
    assert!(
        matches!(
            proposed,
            Err(StoreError::Block(BlockError::BadSignature { index: 1 }))
        ),
        "a block with a forged signature must be invalid, got {:?}",
        proposed.as_ref().map(|(b, _)| b.header.height)
    );
    assert_eq!(a.head().height, 0);

    // A liar's block claiming the forged transaction applied (built by skipping every check)
    // is refused by a store that checks, whatever it has seen before.
    let liar = {
        let input = starling_ledger::BlockInput {
            height: 1,
            parent: b.head().id,
            timestamp_ms: 1_000,
            proposer: keys[0].public_key(),
            reveal: starling_types::Hash::ZERO,
            txs: vec![forged],
            inbound: vec![],
        };
        let (executed, root, _) = b
            .speculate_tree(&Default::default(), &input, &|_| true)
            .unwrap();
        let header = b.ledger().header(&input, &executed, root);
        Block {
            header,
            txs: input.txs,
            inbound: input.inbound,
        }
    };
    assert!(matches!(
        b.apply(&liar),
        Err(StoreError::Block(BlockError::BadSignature { index: 0 }))
    ));
    // Both stores go on, and reopen (replaying their own chains with signatures skipped).
    let (block, _) = a
        .propose(vec![honest], vec![], 2_000, keys[0].public_key())
        .unwrap();
    b.apply(&block).unwrap();
    drop((a, b));
    let a = ChainStore::open(da.path()).unwrap();
    let b = ChainStore::open(db.path()).unwrap();
    assert_eq!(a.head(), b.head());
    assert_eq!(a.head().height, 1);
}

/// Swaps the body of `honest` for `txs`, keeping its header (and so its id).
fn swapped(honest: &Block, txs: Vec<TxEnvelope>) -> Block {
    Block {
        header: honest.header.clone(),
        txs,
        inbound: honest.inbound.clone(),
    }
}

#[test]
fn a_body_swapped_under_an_honest_header_does_not_decode_or_commit() {
    let (params, keys) = setup("byz-body", 3);
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
    let (honest, _) = a
        .propose(
            vec![post(&params, &keys[1], 0, "the real post")],
            vec![],
            1_000,
            keys[0].public_key(),
        )
        .unwrap();
    let tampered = swapped(&honest, vec![post(&params, &keys[1], 0, "a forged post")]);
    assert_eq!(tampered.header.id(), honest.header.id());
    // Decoding checks the body against the header.
    assert!(Block::from_bytes(&tampered.to_bytes()).is_err());
    assert_eq!(Block::from_bytes(&honest.to_bytes()).unwrap(), honest);
    // An extra empty inbound batch naming a fake source adds no message, but is another body.
    let mut fake_source: BlockHeader = honest.header.clone();
    fake_source.shard = ShardId(7);
    let padded = Block {
        inbound: vec![InboundBatch {
            source: fake_source,
            messages: vec![],
        }],
        ..honest.clone()
    };
    assert!(Block::from_bytes(&padded.to_bytes()).is_err());
    // A body whose batch proofs differ is another body too.
    let with_proof = |proof: MerkleProof| Block {
        inbound: vec![InboundBatch {
            source: honest.header.clone(),
            messages: vec![(
                ShardMessage {
                    source: ShardId(0),
                    dest: ShardId(1),
                    seq: 0,
                    payload: starling_types::Payload::Credit {
                        from: keys[0].public_key(),
                        to: keys[1].public_key(),
                        asset: starling_types::Asset::Spend,
                        amount: 1,
                    },
                },
                proof,
            )],
        }],
        ..honest.clone()
    };
    let p1 = with_proof(MerkleProof {
        index: 0,
        leaf_count: 1,
        siblings: vec![],
    });
    let p2 = with_proof(MerkleProof {
        index: 0,
        leaf_count: 2,
        siblings: vec![Receipt::Message(ShardMessage {
            source: ShardId(0),
            dest: ShardId(1),
            seq: 1,
            payload: starling_types::Payload::Credit {
                from: keys[0].public_key(),
                to: keys[1].public_key(),
                asset: starling_types::Asset::Spend,
                amount: 1,
            },
        })
        .leaf_hash()],
    });
    assert_ne!(
        Block::body_root(&p1.txs, &p1.inbound),
        Block::body_root(&p2.txs, &p2.inbound)
    );

    // A verifier that executed the honest block, then is handed the swapped body for
    // finalization, does not commit it under the honest execution.
    let mut spec = Speculative::new();
    spec.verify(&mut b, honest.clone()).unwrap();
    assert!(spec.finalize(&mut b, &tampered).is_err());
    assert_eq!(b.head().height, 0);
    spec.verify(&mut b, honest.clone()).unwrap();
    spec.finalize(&mut b, &honest).unwrap();
    assert_eq!(b.block(1).unwrap().unwrap(), honest);
    drop(b);
    let b = ChainStore::open(db.path()).unwrap();
    assert_eq!(b.head().id, honest.header.id());
}
