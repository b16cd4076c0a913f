//! The open network's messages, pinned by hex fixtures: forwarded transaction batches,
//! finalized blocks with their certificates, and every chat request and response. A change
//! to any of them is a protocol change (a new protocol name or version), never an accident.
#![allow(clippy::unwrap_used, clippy::panic)]

use starling_protocol::batch::{decode_batch, encode_batch};
use starling_protocol::blocks::FinalizedBlock;
use starling_protocol::chat::{ChatRequest, ChatResponse};
use starling_testkit::pinned;
use starling_types::{Block, Decode as _, Encode as _, Hash, PublicKey, Signature, TxEnvelope};

const HERE: &str = env!("CARGO_MANIFEST_DIR");

/// The block the types crate pins (two transactions, an inbound batch).
fn block() -> Block {
    let hex_text = include_str!("../../types/tests/fixtures/block.hex");
    Block::from_bytes(&hex::decode(hex_text.trim()).unwrap()).unwrap()
}

fn key(b: u8) -> PublicKey {
    PublicKey::ed25519([b; 32])
}

#[test]
fn fixtures_pin_the_protocol() {
    let txs: Vec<TxEnvelope> = block().txs;
    let batch = encode_batch(&txs);
    assert_eq!(decode_batch(&batch).unwrap(), txs);
    let finalized = FinalizedBlock {
        block: block(),
        certificate: vec![0xc5; 40],
    };
    let requests = [
        (
            "chat_deposit",
            ChatRequest::Deposit {
                mailbox: Hash([1; 32]),
                envelopes: vec![vec![2; 5], vec![]],
            },
        ),
        (
            "chat_fetch",
            ChatRequest::Fetch {
                key: key(3),
                after: 9,
                at_ms: 1_700_000_000_000,
                signature: Signature([4; 64]),
            },
        ),
        (
            "chat_put_key_packages",
            ChatRequest::PutKeyPackages {
                account: key(5),
                device: 2,
                packages: vec![vec![6; 3]],
                at_ms: 11,
                signature: Signature([12; 64]),
            },
        ),
        (
            "chat_take_key_package",
            ChatRequest::TakeKeyPackage {
                account: key(7),
                device: 1,
            },
        ),
        (
            "chat_order_commit",
            ChatRequest::OrderCommit {
                epoch: Hash([8; 32]),
                commit: vec![9; 5],
                signature: Signature([10; 64]),
                work: 0x0102_0304,
            },
        ),
        (
            "chat_winner_of",
            ChatRequest::WinnerOf {
                epoch: Hash([8; 32]),
                signature: Signature([10; 64]),
            },
        ),
    ];
    let responses = [
        ("chat_stored", ChatResponse::Stored { first: 12 }),
        (
            "chat_mail",
            ChatResponse::Mail {
                mail: vec![(1, vec![1, 2]), (2, vec![])],
                more: true,
            },
        ),
        (
            "chat_key_packages_kept",
            ChatResponse::KeyPackagesKept { count: 3 },
        ),
        ("chat_key_package", ChatResponse::KeyPackage(vec![0xee; 4])),
        ("chat_ordered", ChatResponse::Ordered),
        (
            "chat_refused",
            ChatResponse::Refused {
                code: "full".into(),
                message: "the mailbox is full".into(),
            },
        ),
        ("chat_taken", ChatResponse::Taken { commit: vec![9; 5] }),
        ("chat_work_needed", ChatResponse::WorkNeeded { bits: 20 }),
    ];
    pinned(HERE, "tx_batch", &batch);
    pinned(HERE, "finalized_block", &finalized.to_bytes());
    let back = FinalizedBlock::from_bytes(&finalized.to_bytes()).unwrap();
    assert_eq!(
        (back.block, back.certificate),
        (finalized.block, finalized.certificate)
    );
    for (name, r) in &requests {
        pinned(HERE, name, &r.to_bytes());
        assert_eq!(&ChatRequest::from_bytes(&r.to_bytes()).unwrap(), r);
    }
    for (name, r) in &responses {
        pinned(HERE, name, &r.to_bytes());
        assert_eq!(&ChatResponse::from_bytes(&r.to_bytes()).unwrap(), r);
    }
    // An offer as earlier versions sent it (no proof of work) still reads, as one with none.
    let unworked = include_str!("fixtures/chat_order_commit_unworked.hex");
    assert_eq!(
        ChatRequest::from_bytes(&hex::decode(unworked.trim()).unwrap()).unwrap(),
        ChatRequest::OrderCommit {
            epoch: Hash([8; 32]),
            commit: vec![9; 5],
            signature: Signature([10; 64]),
            work: 0,
        }
    );
}
