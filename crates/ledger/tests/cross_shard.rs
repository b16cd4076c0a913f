//! Messages between shards: transfers, follow notices and handle registration.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use starling_ledger::records::StateKey;
use starling_ledger::{BlockError, Event, TxError};
use starling_types::receipt::Payload;
use starling_types::{Action, Asset, ShardId};

fn two_shard_pair() -> (Net, starling_crypto::SecretKey, starling_crypto::SecretKey) {
    let p = params(2);
    let a = keys_on(&p, ShardId(1), 1, 1).pop().unwrap();
    let b = keys_on(&p, ShardId(2), 1, 1).pop().unwrap();
    let net = Net::new(2, &[&a, &b]);
    (net, a, b)
}

#[test]
fn cross_shard_transfer_applies_exactly_once() {
    let (mut net, a, b) = two_shard_pair();
    let tx = net.sign(
        &a,
        0,
        Action::Transfer {
            asset: Asset::Urc,
            to: b.public_key(),
            amount: 1234,
        },
    );
    let (block, ex) = net.block(ShardId(1), vec![tx], vec![]);
    assert_eq!(tx_result(&ex, 0), Ok(()));
    assert_eq!(
        net.account(&a.public_key()).unwrap().balances[1],
        FUND - 1234
    );
    // Not yet credited: the message is in flight.
    assert_eq!(net.account(&b.public_key()).unwrap().balances[1], FUND);
    let msgs = messages(&ex);
    assert!(
        matches!(msgs[..], [ref m] if m.dest == ShardId(2) && m.seq == 0 && matches!(m.payload, Payload::Credit { amount: 1234, .. }))
    );

    let batches = batches_for(&block, &ex);
    let (_, batch) = batches[0].clone();
    // Twice in one block is not a canonical body (rule B5): the block is invalid.
    let m = net.ledger(ShardId(2));
    assert_eq!(
        m.propose(
            vec![],
            vec![batch.clone(), batch.clone()],
            u64::MAX / 2,
            a.public_key()
        )
        .unwrap_err(),
        starling_ledger::BlockError::InboundOrder(
            "batches are not in (source shard, height) order"
        )
    );
    // Once, then again in a later block: applied once.
    let (_, ex2) = net.block(ShardId(2), vec![], vec![batch.clone()]);
    assert!(ex2.events.contains(&Event::MessageApplied {
        source: ShardId(1),
        seq: 0
    }));
    let (_, ex3) = net.block(ShardId(2), vec![], vec![batch]);
    assert!(ex3.events.contains(&Event::MessageDuplicate {
        source: ShardId(1),
        seq: 0
    }));
    assert_eq!(
        net.account(&b.public_key()).unwrap().balances[1],
        FUND + 1234
    );
}

#[test]
fn out_of_order_messages_wait_for_their_turn() {
    let (mut net, a, b) = two_shard_pair();
    let t = |n| {
        net.sign(
            &a,
            n,
            Action::Transfer {
                asset: Asset::Spend,
                to: b.public_key(),
                amount: 10 + n as u128,
            },
        )
    };
    let (tx0, tx1) = (t(0), t(1));
    let (b1, e1) = net.block(ShardId(1), vec![tx0], vec![]);
    let (b2, e2) = net.block(ShardId(1), vec![tx1], vec![]);
    let first = batches_for(&b1, &e1).pop().unwrap().1;
    let second = batches_for(&b2, &e2).pop().unwrap().1;
    let before = net.account(&b.public_key()).unwrap().balances[0];
    let (_, ex) = net.block(ShardId(2), vec![], vec![second.clone()]);
    assert!(ex.events.contains(&Event::MessageOutOfOrder {
        source: ShardId(1),
        seq: 1,
        expected: 0
    }));
    assert_eq!(net.account(&b.public_key()).unwrap().balances[0], before);
    net.block(ShardId(2), vec![], vec![first, second]);
    assert_eq!(
        net.account(&b.public_key()).unwrap().balances[0],
        before + 10 + 11
    );
}

#[test]
fn forged_or_misrouted_messages_make_the_block_invalid() {
    let (mut net, a, b) = two_shard_pair();
    let tx = net.sign(
        &a,
        0,
        Action::Transfer {
            asset: Asset::Core,
            to: b.public_key(),
            amount: 5,
        },
    );
    let (block, ex) = net.block(ShardId(1), vec![tx], vec![]);
    let (_, batch) = batches_for(&block, &ex).pop().unwrap();

    let mut inflated = batch.clone();
    if let Payload::Credit { amount, .. } = &mut inflated.messages[0].0.payload {
        *amount = 5_000_000;
    }
    let (t, p) = (net.time_ms + 1, net.proposer);
    let err = net
        .ledger(ShardId(2))
        .propose(vec![], vec![inflated], t, p)
        .unwrap_err();
    assert!(matches!(err, BlockError::BadInbound { .. }), "{err}");

    // Sent to shard 2, replayed to the global shard.
    let err = net
        .ledger(ShardId::GLOBAL)
        .propose(vec![], vec![batch.clone()], t, p)
        .unwrap_err();
    assert!(matches!(err, BlockError::BadInbound { .. }));

    // A source header whose receipt root was altered.
    let mut wrong_root = batch;
    wrong_root.source.receipt_root.0[0] ^= 1;
    let err = net
        .ledger(ShardId(2))
        .propose(vec![], vec![wrong_root], t, p)
        .unwrap_err();
    assert!(matches!(err, BlockError::BadInbound { .. }));
    assert_eq!(net.account(&b.public_key()).unwrap().balances[2], FUND);
}

#[test]
fn remote_follow_reaches_the_followee_shard() {
    let (mut net, a, b) = two_shard_pair();
    let (pa, pb) = (a.public_key(), b.public_key());
    let (block, ex) = net.block(
        ShardId(1),
        vec![net.sign(&a, 0, Action::Follow { target: pb })],
        vec![],
    );
    assert!(net.exists(ShardId(1), StateKey::Follow(&pa, &pb)));
    assert!(!net.exists(ShardId(2), StateKey::Follower(&pb, &pa)));
    net.deliver(&block, &ex);
    assert!(net.exists(ShardId(2), StateKey::Follower(&pb, &pa)));
    let (block, ex) = net.block(
        ShardId(1),
        vec![net.sign(&a, 1, Action::Unfollow { target: pb })],
        vec![],
    );
    net.deliver(&block, &ex);
    assert!(!net.exists(ShardId(2), StateKey::Follower(&pb, &pa)));
}

#[test]
fn handles_are_unique_case_insensitive_and_registered_globally() {
    let (mut net, a, b) = two_shard_pair();
    assert!(matches!(
        net.run(
            &a,
            0,
            Action::RegisterHandle {
                handle: "no spaces".into()
            }
        ),
        Err(TxError::InvalidHandle(_))
    ));
    assert!(matches!(
        net.run(
            &a,
            0,
            Action::RegisterHandle {
                handle: "ab".into()
            }
        ),
        Err(TxError::InvalidHandle(_))
    ));
    assert!(matches!(
        net.run(
            &a,
            0,
            Action::RegisterHandle {
                handle: "9lives".into()
            }
        ),
        Err(TxError::InvalidHandle(_))
    ));
    assert!(matches!(
        net.run(
            &a,
            0,
            Action::RegisterHandle {
                handle: "café".into()
            }
        ),
        Err(TxError::InvalidHandle(_))
    ));

    // Alice claims "Alice"; the claim travels to the global shard and the answer back.
    let (blk, ex) = net.block(
        ShardId(1),
        vec![net.sign(
            &a,
            0,
            Action::RegisterHandle {
                handle: "Alice".into(),
            },
        )],
        vec![],
    );
    assert_eq!(
        net.account(&a.public_key())
            .unwrap()
            .pending_handle
            .as_deref(),
        Some("alice")
    );
    assert_eq!(
        net.run(
            &a,
            1,
            Action::RegisterHandle {
                handle: "alice2".into()
            }
        ),
        Err(TxError::HandlePending)
    );
    let delivered = net.deliver(&blk, &ex);
    let (gblock, gex) = &delivered[0];
    assert_eq!(gblock.header.shard, ShardId::GLOBAL);
    assert!(gex.events.contains(&Event::HandleRegistered {
        account: a.public_key(),
        handle: "alice".into()
    }));
    // The answer travels back to Alice's shard.
    net.deliver(gblock, gex);
    let rec = net.account(&a.public_key()).unwrap();
    assert_eq!(
        (rec.handle.as_deref(), rec.pending_handle.as_deref()),
        (Some("alice"), None)
    );

    // Bob claims "ALICE": refused, and told so.
    let (blk, ex) = net.block(
        ShardId(2),
        vec![net.sign(
            &b,
            0,
            Action::RegisterHandle {
                handle: "ALICE".into(),
            },
        )],
        vec![],
    );
    let delivered = net.deliver(&blk, &ex);
    let (gblock, gex) = &delivered[0];
    assert!(gex.events.iter().any(|e| matches!(
        e,
        Event::HandleRefused {
            error: TxError::HandleTaken,
            ..
        }
    )));
    let (_, bex) = net.deliver(gblock, gex).pop().unwrap();
    assert!(bex.events.iter().any(|e| matches!(
        e,
        Event::HandleRefused {
            error: TxError::HandleTaken,
            ..
        }
    )));
    let rec = net.account(&b.public_key()).unwrap();
    assert_eq!((rec.handle, rec.pending_handle), (None, None));
    let owner: starling_types::PublicKey =
        net.get(ShardId::GLOBAL, StateKey::Handle("alice")).unwrap();
    assert_eq!(owner, a.public_key());
}
