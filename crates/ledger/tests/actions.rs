//! Every action, and every way a transaction is rejected.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use starling_ledger::records::{PostRecord, ProfileRecord, RevisionRecord, StateKey};
use starling_ledger::TxError;
use starling_types::{Action, PostId, ShardId, TxBody, TxEnvelope};

fn one_shard(n: usize) -> (Net, Vec<starling_crypto::SecretKey>) {
    let p = params(1);
    let keys = keys_on(&p, ShardId(1), n, 1);
    let refs: Vec<_> = keys.iter().collect();
    (Net::new(1, &refs), keys)
}

#[test]
fn post_is_stored_with_its_fields() {
    let (mut net, k) = one_shard(1);
    let a = &k[0];
    let action = Action::Post {
        text: "hello #starling".into(),
        reply_to: None,
        quote_of: None,
        langs: vec!["en".into()],
    };
    net.run(a, 0, action).unwrap();
    let id = PostId {
        author: a.public_key(),
        seq: 0,
    };
    let rec: PostRecord = net.get(ShardId(1), StateKey::Post(&id)).unwrap();
    assert_eq!(rec.text, "hello #starling");
    assert_eq!(rec.langs, vec!["en".to_string()]);
    assert!(!rec.deleted);
    assert_eq!(net.account(&a.public_key()).unwrap().nonce, 1);
}

#[test]
fn post_text_limits_count_graphemes() {
    let (mut net, k) = one_shard(1);
    let a = &k[0];
    // A thumbs-up with a skin tone is 2 code points, 8 bytes, 1 grapheme.
    let ok = "👍🏽".repeat(300);
    net.run(a, 0, post(&ok)).unwrap();
    let long = "👍🏽".repeat(301);
    assert_eq!(
        net.run(a, 1, post(&long)),
        Err(TxError::TextTooLong {
            graphemes: 301,
            max: 300
        })
    );
    assert_eq!(net.run(a, 1, post("   ")), Err(TxError::EmptyText));
    let bad_lang = Action::Post {
        text: "x".into(),
        reply_to: None,
        quote_of: None,
        langs: vec!["e n".into()],
    };
    assert_eq!(net.run(a, 1, bad_lang), Err(TxError::InvalidLang));
    net.run(a, 1, post("still works after rejections")).unwrap();
}

#[test]
fn replies_and_quotes_need_a_live_local_target() {
    let (mut net, k) = one_shard(2);
    let (a, b) = (&k[0], &k[1]);
    let missing = PostId {
        author: a.public_key(),
        seq: 99,
    };
    let reply = |to| Action::Post {
        text: "re".into(),
        reply_to: Some(to),
        quote_of: None,
        langs: vec![],
    };
    assert_eq!(net.run(b, 0, reply(missing)), Err(TxError::UnknownTarget));
    net.run(a, 0, post("root")).unwrap();
    let root = PostId {
        author: a.public_key(),
        seq: 0,
    };
    net.run(b, 0, reply(root)).unwrap();
    let quote = Action::Post {
        text: String::new(),
        reply_to: None,
        quote_of: Some(root),
        langs: vec![],
    };
    net.run(b, 1, quote).unwrap();
    net.run(a, 1, Action::DeletePost { post: root }).unwrap();
    assert_eq!(net.run(b, 2, reply(root)), Err(TxError::PostDeleted));
}

#[test]
fn edits_keep_history_and_only_the_author_edits() {
    let (mut net, k) = one_shard(2);
    let (a, b) = (&k[0], &k[1]);
    net.run(a, 0, post("v1")).unwrap();
    let id = PostId {
        author: a.public_key(),
        seq: 0,
    };
    assert_eq!(
        net.run(
            b,
            0,
            Action::EditPost {
                post: id,
                text: "hijack".into()
            }
        ),
        Err(TxError::NotAuthor)
    );
    net.run(
        a,
        1,
        Action::EditPost {
            post: id,
            text: "v2".into(),
        },
    )
    .unwrap();
    net.run(
        a,
        2,
        Action::EditPost {
            post: id,
            text: "v3".into(),
        },
    )
    .unwrap();
    let rec: PostRecord = net.get(ShardId(1), StateKey::Post(&id)).unwrap();
    assert_eq!((rec.text.as_str(), rec.revisions), ("v3", 2));
    let r0: RevisionRecord = net.get(ShardId(1), StateKey::Revision(&id, 0)).unwrap();
    let r1: RevisionRecord = net.get(ShardId(1), StateKey::Revision(&id, 1)).unwrap();
    assert_eq!((r0.text.as_str(), r1.text.as_str()), ("v1", "v2"));
    let unknown = PostId {
        author: a.public_key(),
        seq: 50,
    };
    assert_eq!(
        net.run(
            a,
            3,
            Action::EditPost {
                post: unknown,
                text: "x".into()
            }
        ),
        Err(TxError::UnknownTarget)
    );
    for n in 3..11 {
        net.run(
            a,
            n,
            Action::EditPost {
                post: id,
                text: format!("v{n}"),
            },
        )
        .unwrap();
    }
    assert_eq!(
        net.run(
            a,
            11,
            Action::EditPost {
                post: id,
                text: "one too many".into()
            }
        ),
        Err(TxError::EditLimit { max: 10 })
    );
}

#[test]
fn delete_leaves_a_tombstone_and_drops_history() {
    let (mut net, k) = one_shard(2);
    let (a, b) = (&k[0], &k[1]);
    net.run(a, 0, post("secret")).unwrap();
    let id = PostId {
        author: a.public_key(),
        seq: 0,
    };
    net.run(
        a,
        1,
        Action::EditPost {
            post: id,
            text: "edited".into(),
        },
    )
    .unwrap();
    assert_eq!(
        net.run(b, 0, Action::DeletePost { post: id }),
        Err(TxError::NotAuthor)
    );
    net.run(a, 2, Action::DeletePost { post: id }).unwrap();
    let rec: PostRecord = net.get(ShardId(1), StateKey::Post(&id)).unwrap();
    assert!(rec.deleted && rec.text.is_empty());
    assert!(net
        .get::<RevisionRecord>(ShardId(1), StateKey::Revision(&id, 0))
        .is_none());
    assert_eq!(
        net.run(a, 3, Action::DeletePost { post: id }),
        Err(TxError::PostDeleted)
    );
    assert_eq!(
        net.run(
            a,
            3,
            Action::EditPost {
                post: id,
                text: "zombie".into()
            }
        ),
        Err(TxError::PostDeleted)
    );
    assert_eq!(
        net.run(b, 0, Action::Like { post: id }),
        Err(TxError::PostDeleted)
    );
}

#[test]
fn likes_and_reposts_toggle_once() {
    let (mut net, k) = one_shard(2);
    let (a, b) = (&k[0], &k[1]);
    net.run(a, 0, post("likeable")).unwrap();
    let id = PostId {
        author: a.public_key(),
        seq: 0,
    };
    let me = b.public_key();
    net.run(b, 0, Action::Like { post: id }).unwrap();
    assert!(net.exists(ShardId(1), StateKey::Like(&me, &id)));
    assert_eq!(
        net.run(b, 1, Action::Like { post: id }),
        Err(TxError::AlreadyLiked)
    );
    net.run(b, 1, Action::Unlike { post: id }).unwrap();
    assert!(!net.exists(ShardId(1), StateKey::Like(&me, &id)));
    assert_eq!(
        net.run(b, 2, Action::Unlike { post: id }),
        Err(TxError::NotLiked)
    );
    net.run(b, 2, Action::Repost { post: id }).unwrap();
    assert_eq!(
        net.run(b, 3, Action::Repost { post: id }),
        Err(TxError::AlreadyReposted)
    );
    net.run(b, 3, Action::Unrepost { post: id }).unwrap();
    assert_eq!(
        net.run(b, 4, Action::Unrepost { post: id }),
        Err(TxError::NotReposted)
    );
    let missing = PostId {
        author: a.public_key(),
        seq: 7,
    };
    assert_eq!(
        net.run(b, 4, Action::Like { post: missing }),
        Err(TxError::UnknownTarget)
    );
}

#[test]
fn follows_block_and_mute() {
    let (mut net, k) = one_shard(2);
    let (a, b) = (&k[0], &k[1]);
    let (pa, pb) = (a.public_key(), b.public_key());
    assert_eq!(
        net.run(a, 0, Action::Follow { target: pa }),
        Err(TxError::SelfTarget)
    );
    net.run(a, 0, Action::Follow { target: pb }).unwrap();
    assert!(net.exists(ShardId(1), StateKey::Follow(&pa, &pb)));
    assert!(net.exists(ShardId(1), StateKey::Follower(&pb, &pa)));
    assert_eq!(
        net.run(a, 1, Action::Follow { target: pb }),
        Err(TxError::AlreadyFollowing)
    );
    net.run(a, 1, Action::Unfollow { target: pb }).unwrap();
    assert!(!net.exists(ShardId(1), StateKey::Follower(&pb, &pa)));
    assert_eq!(
        net.run(a, 2, Action::Unfollow { target: pb }),
        Err(TxError::NotFollowing)
    );

    net.run(a, 2, Action::Block { target: pb }).unwrap();
    assert_eq!(
        net.run(a, 3, Action::Block { target: pb }),
        Err(TxError::AlreadyBlocked)
    );
    net.run(a, 3, Action::Unblock { target: pb }).unwrap();
    assert_eq!(
        net.run(a, 4, Action::Unblock { target: pb }),
        Err(TxError::NotBlocked)
    );
    net.run(a, 4, Action::Mute { target: pb }).unwrap();
    assert_eq!(
        net.run(a, 5, Action::Mute { target: pb }),
        Err(TxError::AlreadyMuted)
    );
    net.run(a, 5, Action::Unmute { target: pb }).unwrap();
    assert_eq!(
        net.run(a, 6, Action::Unmute { target: pb }),
        Err(TxError::NotMuted)
    );
    assert_eq!(
        net.run(a, 6, Action::Block { target: pa }),
        Err(TxError::SelfTarget)
    );
}

#[test]
fn profiles_are_validated() {
    let (mut net, k) = one_shard(1);
    let a = &k[0];
    let set = |name: &str, bio: &str, url: &str| Action::SetProfile {
        display_name: name.into(),
        bio: bio.into(),
        avatar_url: url.into(),
    };
    net.run(
        a,
        0,
        set("Ada", "building things", "https://example.org/a.png"),
    )
    .unwrap();
    let p: ProfileRecord = net
        .get(ShardId(1), StateKey::Profile(&a.public_key()))
        .unwrap();
    assert_eq!(p.display_name, "Ada");
    assert!(matches!(
        net.run(a, 1, set(&"n".repeat(51), "", "")),
        Err(TxError::InvalidProfile(_))
    ));
    assert!(matches!(
        net.run(a, 1, set("ok", &"b".repeat(161), "")),
        Err(TxError::InvalidProfile(_))
    ));
    assert!(matches!(
        net.run(a, 1, set("ok", "", "javascript:alert(1)")),
        Err(TxError::InvalidProfile(_))
    ));
    assert!(matches!(
        net.run(a, 1, set("a\u{7}b", "", "")),
        Err(TxError::InvalidProfile(_))
    ));
}

#[test]
fn transfers_within_a_shard() {
    let (mut net, k) = one_shard(2);
    let (a, b) = (&k[0], &k[1]);
    let fresh = key(777_777);
    let before = net.account(&b.public_key()).unwrap().balances[1];
    net.run(
        a,
        0,
        Action::Transfer {
            asset: starling_types::Asset::Urc,
            to: b.public_key(),
            amount: 5,
        },
    )
    .unwrap();
    assert_eq!(
        net.account(&b.public_key()).unwrap().balances[1],
        before + 5
    );
    assert_eq!(
        net.run(
            a,
            1,
            Action::Transfer {
                asset: starling_types::Asset::Urc,
                to: b.public_key(),
                amount: 0
            }
        ),
        Err(TxError::InvalidAmount)
    );
    assert_eq!(
        net.run(
            a,
            1,
            Action::Transfer {
                asset: starling_types::Asset::Core,
                to: b.public_key(),
                amount: FUND + 1
            }
        ),
        Err(TxError::InsufficientBalance {
            needed: FUND + 1,
            available: FUND
        })
    );
    if net.shard_of(&fresh) == ShardId(1) {
        net.run(
            a,
            1,
            Action::Transfer {
                asset: starling_types::Asset::Spend,
                to: fresh.public_key(),
                amount: 1,
            },
        )
        .unwrap();
        assert_eq!(net.account(&fresh.public_key()).unwrap().balances[0], 1);
    }
}

#[test]
fn envelope_level_rejections() {
    let (mut net, k) = one_shard(2);
    let (a, b) = (&k[0], &k[1]);
    let good = |nonce| TxBody {
        account: a.public_key(),
        nonce,
        max_fee: 1_000_000_000,
        tip: 0,
        expires_at_height: 100,
        action: post("x"),
    };

    // Rule B3: a transaction with a bad signature, or one that does not decode, makes the
    // whole block invalid; no honest proposer builds it and no replica applies it.
    let proposer = a.public_key();
    fn refused(
        net: &mut Net,
        proposer: starling_types::AccountId,
        txs: Vec<TxEnvelope>,
    ) -> starling_ledger::BlockError {
        let m = net.ledger(ShardId(1));
        let height = m.height;
        let err = m.propose(txs, vec![], 1_000_000, proposer).unwrap_err();
        assert_eq!(m.height, height, "a refused block changes nothing");
        err
    }
    // Bad signature: signed by someone else.
    let forged = TxEnvelope {
        body_bytes: net.sign_body(a, &good(0)).body_bytes,
        signature: net.sign_body(b, &good(0)).signature,
    };
    assert_eq!(
        refused(&mut net, proposer, vec![forged]),
        starling_ledger::BlockError::BadSignature { index: 0 }
    );
    // Signed for another chain.
    let other = starling_types::ChainId::new("other-chain").unwrap();
    let wrong_chain = a.sign_tx(&other, &good(0));
    let right = net.sign_body(a, &good(0));
    assert_eq!(
        refused(&mut net, proposer, vec![right, wrong_chain]),
        starling_ledger::BlockError::BadSignature { index: 1 }
    );
    // Malformed body bytes (correctly signed garbage).
    let mut env = net.sign_body(a, &good(0));
    env.body_bytes.push(0);
    assert!(matches!(
        refused(&mut net, proposer, vec![env]),
        starling_ledger::BlockError::MalformedTx { index: 0, .. }
    ));

    // Nonces: gap, then success, then replay of the same transaction.
    let (_, ex) = net.block(ShardId(1), vec![net.sign_body(a, &good(5))], vec![]);
    assert_eq!(
        tx_result(&ex, 0),
        Err(TxError::NonceGap {
            expected: 0,
            got: 5
        })
    );
    let tx0 = net.sign_body(a, &good(0));
    let (_, ex) = net.block(ShardId(1), vec![tx0.clone(), tx0], vec![]);
    assert_eq!(tx_result(&ex, 0), Ok(()));
    assert_eq!(
        tx_result(&ex, 1),
        Err(TxError::NonceReused {
            expected: 1,
            got: 0
        })
    );

    // Expiry.
    let height = net.ledger(ShardId(1)).height + 1;
    let expired = TxBody {
        expires_at_height: height - 1,
        ..good(1)
    };
    let (_, ex) = net.block(ShardId(1), vec![net.sign_body(a, &expired)], vec![]);
    assert_eq!(
        tx_result(&ex, 0),
        Err(TxError::Expired {
            expires_at: height - 1,
            height
        })
    );
    let far = TxBody {
        expires_at_height: 10_000_000,
        ..good(1)
    };
    let (_, ex) = net.block(ShardId(1), vec![net.sign_body(a, &far)], vec![]);
    assert!(matches!(
        tx_result(&ex, 0),
        Err(TxError::ExpiryTooFar { .. })
    ));

    // Fees.
    let cheap = TxBody {
        max_fee: 1,
        ..good(1)
    };
    let (_, ex) = net.block(ShardId(1), vec![net.sign_body(a, &cheap)], vec![]);
    assert!(matches!(
        tx_result(&ex, 0),
        Err(TxError::FeeTooLow { max_fee: 1, .. })
    ));
    let tip_too_big = TxBody {
        tip: FUND * 2,
        max_fee: u128::MAX,
        ..good(1)
    };
    let (_, ex) = net.block(ShardId(1), vec![net.sign_body(a, &tip_too_big)], vec![]);
    assert!(matches!(
        tx_result(&ex, 0),
        Err(TxError::InsufficientBalance { .. })
    ));
    let overflow = TxBody {
        tip: u128::MAX,
        max_fee: u128::MAX,
        ..good(1)
    };
    let (_, ex) = net.block(ShardId(1), vec![net.sign_body(a, &overflow)], vec![]);
    assert_eq!(tx_result(&ex, 0), Err(TxError::Overflow));

    // Unknown account, and an account of another shard.
    let stranger = keys_on(&net.params, ShardId(1), 1, 50_000).pop().unwrap();
    let body = TxBody {
        account: stranger.public_key(),
        ..good(0)
    };
    let (_, ex) = net.block(ShardId(1), vec![net.sign_body(&stranger, &body)], vec![]);
    assert_eq!(tx_result(&ex, 0), Err(TxError::UnknownAccount));
    let (_, ex) = net.block(ShardId::GLOBAL, vec![net.sign_body(a, &good(1))], vec![]);
    assert_eq!(
        tx_result(&ex, 0),
        Err(TxError::WrongShard {
            expected: ShardId(1)
        })
    );

    // None of the rejections changed the account.
    assert_eq!(net.account(&a.public_key()).unwrap().nonce, 1);
}

#[test]
fn a_rejected_transaction_changes_no_state() {
    let (mut net, k) = one_shard(1);
    let a = &k[0];
    net.run(a, 0, post("x")).unwrap();
    let before = net.account(&a.public_key()).unwrap();
    let id = PostId {
        author: a.public_key(),
        seq: 0,
    };
    assert_eq!(
        net.run(
            a,
            1,
            Action::EditPost {
                post: id,
                text: "👍🏽".repeat(301)
            }
        ),
        Err(TxError::TextTooLong {
            graphemes: 301,
            max: 300
        })
    );
    assert_eq!(net.account(&a.public_key()).unwrap(), before);
    let rec: PostRecord = net.get(ShardId(1), StateKey::Post(&id)).unwrap();
    assert_eq!((rec.text.as_str(), rec.revisions), ("x", 0));
}

#[test]
fn block_gas_limit_rejects_overflowing_transactions() {
    let (mut net, k) = one_shard(1);
    let a = &k[0];
    for l in &mut net.shards {
        l.ledger.params.block_gas_limit = 10_000;
    }
    let txs: Vec<_> = (0..4).map(|n| net.sign(a, n, post("fill"))).collect();
    let (_, ex) = net.block(ShardId(1), txs, vec![]);
    assert_eq!(tx_result(&ex, 0), Ok(()));
    assert_eq!(tx_result(&ex, 1), Ok(()));
    assert_eq!(tx_result(&ex, 2), Err(TxError::BlockFull));
    assert!(ex.gas_used <= 10_000);
}

#[test]
fn signatures_already_checked_are_skipped_and_only_those() {
    let (mut net, k) = one_shard(2);
    let (a, b) = (&k[0], &k[1]);
    let good = net.sign(a, 0, post("checked before"));
    let forged = TxEnvelope {
        body_bytes: net.sign(b, 0, post("forged")).body_bytes,
        signature: net.sign(a, 1, post("other")).signature,
    };
    let m = net.ledger(ShardId(1));
    let mut input = starling_ledger::BlockInput {
        height: m.height + 1,
        parent: m.head,
        timestamp_ms: 5_000,
        proposer: a.public_key(),
        reveal: starling_types::Hash::ZERO,
        txs: vec![good.clone(), forged.clone()],
        inbound: vec![],
    };
    // Checked in full, the block is invalid (rule B3); vouching for the good one changes
    // nothing, since the forged one is still checked.
    let plain = m.ledger.execute(&m.state, &input).unwrap_err();
    let good_hash = good.hash();
    let skipped = m
        .ledger
        .execute_with(&m.state, &input, &|h| *h == good_hash)
        .unwrap_err();
    assert_eq!(plain, skipped);
    assert_eq!(
        plain,
        starling_ledger::BlockError::BadSignature { index: 1 }
    );
    // Without the forged one, skipping the good one gives what checking it gives.
    input.txs.pop();
    let full = m.ledger.execute(&m.state, &input).unwrap();
    let vouched = m
        .ledger
        .execute_with(&m.state, &input, &|h| *h == good_hash)
        .unwrap();
    assert_eq!(full.receipts, vouched.receipts);
    assert_eq!(full.writes, vouched.writes);
    assert_eq!(tx_result(&vouched, 0), Ok(()));
}
