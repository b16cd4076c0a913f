//! The wire format, pinned by hex fixtures, and decoders that never panic.
#![allow(clippy::unwrap_used, clippy::panic)]

use proptest::prelude::*;
use starling_types::block::{Block, BlockHeader, InboundBatch};
use starling_types::merkle;
use starling_types::receipt::{Payload, Receipt, ShardMessage, TxReceipt};
use starling_types::tx::{Action, Asset, ChainId, PostId, TxBody, TxEnvelope};
use starling_types::{
    Decode, Encode, GovAct, Hash, Motion, PublicKey, ShardId, ShardMap, Signature,
};

fn alice() -> PublicKey {
    PublicKey::ed25519([0x11; 32])
}
fn bob() -> PublicKey {
    PublicKey::secp256k1([0x22; 32])
}

fn post_body() -> TxBody {
    TxBody {
        account: alice(),
        nonce: 7,
        max_fee: 5_000_000,
        tip: 3,
        expires_at_height: 1_000,
        action: Action::Post {
            text: "hello, starling 👋".into(),
            reply_to: Some(PostId {
                author: bob(),
                seq: 1,
            }),
            quote_of: None,
            langs: vec!["en".into()],
        },
    }
}

fn transfer_body() -> TxBody {
    TxBody {
        account: bob(),
        nonce: 0,
        max_fee: u128::MAX,
        tip: 0,
        expires_at_height: 9,
        action: Action::Transfer {
            asset: Asset::Urc,
            to: alice(),
            amount: 1_000_000_000_000_000_000,
        },
    }
}

fn envelope(body: &TxBody) -> TxEnvelope {
    TxEnvelope {
        body_bytes: body.to_bytes(),
        signature: Signature([0xab; 64]),
    }
}

fn header() -> BlockHeader {
    BlockHeader {
        chain_id: ChainId::new("starling-devnet").unwrap(),
        shard: ShardId(2),
        height: 42,
        parent: Hash([1; 32]),
        timestamp_ms: 1_700_000_000_000,
        proposer: alice(),
        tx_root: Hash([2; 32]),
        receipt_root: Hash([3; 32]),
        state_root: Hash([4; 32]),
        base_fee: 1_000,
        reveal: starling_types::Hash::ZERO,
    }
}

fn message() -> ShardMessage {
    ShardMessage {
        source: ShardId(1),
        dest: ShardId(2),
        seq: 5,
        payload: Payload::Credit {
            from: bob(),
            to: alice(),
            asset: Asset::Spend,
            amount: 99,
        },
    }
}

fn block() -> Block {
    let receipts = [
        Receipt::Tx(TxReceipt {
            tx_hash: Hash([9; 32]),
            status: 0,
            gas_used: 4_200,
            fee_paid: 4_200_003,
        }),
        Receipt::Message(message()),
    ];
    let leaves: Vec<Hash> = receipts.iter().map(Receipt::leaf_hash).collect();
    let source = BlockHeader {
        shard: ShardId(1),
        receipt_root: merkle::root(&leaves),
        ..header()
    };
    let txs = vec![envelope(&post_body()), envelope(&transfer_body())];
    let inbound = vec![InboundBatch {
        source,
        messages: vec![(message(), merkle::prove(&leaves, 1).unwrap())],
    }];
    // The header names its body (rule B6), or the block does not decode.
    Block {
        header: BlockHeader {
            tx_root: Block::body_root(&txs, &inbound),
            ..header()
        },
        txs,
        inbound,
    }
}

#[test]
fn fixtures_pin_the_encoding() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("tx_post", envelope(&post_body()).to_bytes()),
        ("tx_transfer", envelope(&transfer_body()).to_bytes()),
        ("block_header", header().to_bytes()),
        ("receipt_message", Receipt::Message(message()).to_bytes()),
        ("block", block().to_bytes()),
        ("shard_map_3", ShardMap::even(3).unwrap().to_bytes()),
    ];
    for (name, bytes) in &cases {
        starling_testkit::pinned(&manifest_dir(), name, bytes);
    }
    // And the fixtures decode back to the same values.
    let read = |name: &str| {
        let path = format!("{}/tests/fixtures/{name}.hex", manifest_dir());
        hex::decode(std::fs::read_to_string(path).unwrap().trim()).unwrap()
    };
    let env = TxEnvelope::from_bytes(&read("tx_post")).unwrap();
    assert_eq!(env.body().unwrap(), post_body());
    assert_eq!(
        BlockHeader::from_bytes(&read("block_header")).unwrap(),
        header()
    );
    assert_eq!(Block::from_bytes(&read("block")).unwrap(), block());
    assert_eq!(
        Receipt::from_bytes(&read("receipt_message")).unwrap(),
        Receipt::Message(message())
    );
}

#[test]
fn shard_point_is_the_first_eight_bytes_of_blake3_big_endian() {
    let k = alice();
    let h = blake3::hash(&k.encoded());
    let expected = u64::from_be_bytes(h.as_bytes()[..8].try_into().unwrap());
    assert_eq!(k.shard_point().0, expected);
    let map = ShardMap::even(4).unwrap();
    let shard = map.shard_of(&k);
    assert!(map.range_of(shard).unwrap().contains(k.shard_point()));
}

#[test]
fn shard_maps_must_cover_the_space() {
    use starling_types::ShardRange;
    let gap = vec![
        (ShardId(1), ShardRange { start: 0, end: 10 }),
        (
            ShardId(2),
            ShardRange {
                start: 12,
                end: u64::MAX,
            },
        ),
    ];
    assert!(ShardMap::new(gap).is_err());
    let short = vec![(ShardId(1), ShardRange { start: 0, end: 10 })];
    assert!(ShardMap::new(short).is_err());
    let global = vec![(
        ShardId(0),
        ShardRange {
            start: 0,
            end: u64::MAX,
        },
    )];
    assert!(ShardMap::new(global).is_err());
    let m = ShardMap::even(7).unwrap();
    assert_eq!(m.ranges().len(), 7);
    assert_eq!(m.ranges()[6].1.end, u64::MAX);
}

#[test]
fn bad_inputs_get_specific_errors() {
    use starling_types::DecodeError;
    let good = envelope(&post_body()).to_bytes();
    // Truncated.
    assert!(matches!(
        TxEnvelope::from_bytes(&good[..good.len() - 1]),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
    // Trailing bytes.
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        TxEnvelope::from_bytes(&long),
        Err(DecodeError::TrailingBytes(1))
    );
    // Unknown version.
    let mut v2 = good.clone();
    v2[0] = 2;
    assert!(matches!(
        TxEnvelope::from_bytes(&v2),
        Err(DecodeError::UnsupportedVersion { .. })
    ));
    // A body length beyond the limit is refused before anything is read or allocated.
    let huge = [1u8, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        TxEnvelope::from_bytes(&huge),
        Err(DecodeError::TooLong { .. })
    ));
    // Unknown action tag, unknown key type, invalid UTF-8, bad bool.
    let mut body = post_body().to_bytes();
    let action_at = 1 + 33 + 8 + 16 + 16 + 8;
    body[action_at] = 200;
    assert!(matches!(
        TxBody::from_bytes(&body),
        Err(DecodeError::InvalidTag {
            what: "action",
            tag: 200
        })
    ));
    let mut body = post_body().to_bytes();
    body[1] = 9;
    assert!(matches!(
        TxBody::from_bytes(&body),
        Err(DecodeError::InvalidTag {
            what: "key type",
            ..
        })
    ));
    let mut body = post_body().to_bytes();
    body[action_at + 3] = 0xff;
    assert_eq!(
        TxBody::from_bytes(&body),
        Err(DecodeError::InvalidUtf8("post text"))
    );
    // Oversized text.
    let mut big = post_body();
    big.action = Action::Post {
        text: "x".repeat(5_000),
        reply_to: None,
        quote_of: None,
        langs: vec![],
    };
    assert!(matches!(
        TxBody::from_bytes(&big.to_bytes()),
        Err(DecodeError::TooLong {
            what: "post text",
            ..
        })
    ));
    assert!(
        ChainId::new("").is_err()
            && ChainId::new("has space").is_err()
            && ChainId::new(&"a".repeat(33)).is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Random bytes never panic any decoder.
    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = TxEnvelope::from_bytes(&bytes);
        let _ = TxBody::from_bytes(&bytes);
        let _ = Action::from_bytes(&bytes);
        let _ = Block::from_bytes(&bytes);
        let _ = BlockHeader::from_bytes(&bytes);
        let _ = Receipt::from_bytes(&bytes);
        let _ = ShardMap::from_bytes(&bytes);
        let _ = merkle::MerkleProof::from_bytes(&bytes);
    }

    /// Mutating valid encodings never panics either, and whatever decodes re-encodes to the
    /// same bytes (one encoding per value).
    #[test]
    fn mutated_encodings_are_canonical(pos in any::<prop::sample::Index>(), byte in any::<u8>(), which in 0usize..3) {
        let mut bytes = match which {
            0 => envelope(&post_body()).to_bytes(),
            1 => block().to_bytes(),
            _ => post_body().to_bytes(),
        };
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        match which {
            0 => if let Ok(v) = TxEnvelope::from_bytes(&bytes) { prop_assert_eq!(v.to_bytes(), bytes) },
            1 => if let Ok(v) = Block::from_bytes(&bytes) { prop_assert_eq!(v.to_bytes(), bytes) },
            _ => if let Ok(v) = TxBody::from_bytes(&bytes) { prop_assert_eq!(v.to_bytes(), bytes) },
        }
    }
}

/// Membership, sponsorship and office actions and messages decode to what was encoded, with one
/// encoding each; cut short or with an unknown flag, they are refused.
#[test]
fn membership_and_sponsorship_round_trip() {
    let actions = [
        Action::AdmitMember { member: bob() },
        Action::RevokeMember { member: bob() },
        Action::LeaveFoundation,
        Action::Sponsor {
            account: bob(),
            amount: u128::MAX,
        },
        Action::EndSponsorship { account: alice() },
        Action::ExpireSeat {
            foundation: 2,
            holder: bob(),
        },
        Action::Govern(GovAct::Propose {
            foundation: 1,
            title: "A title".into(),
            text: "Some text".into(),
            motion: Motion::Appoint {
                office: starling_types::Office::Staff,
                holder: bob(),
            },
        }),
        Action::Govern(GovAct::Vote {
            proposal: u64::MAX,
            challenge: true,
            yes: false,
            votes: u32::MAX,
        }),
        Action::Govern(GovAct::Advance { proposal: 0 }),
        Action::Govern(GovAct::Challenge { proposal: 1 }),
        Action::Govern(GovAct::Support { proposal: 2 }),
    ];
    for a in actions {
        let bytes = a.to_bytes();
        assert_eq!(Action::from_bytes(&bytes).unwrap(), a);
        for cut in 0..bytes.len() {
            assert!(
                Action::from_bytes(&bytes[..cut]).is_err(),
                "{a:?} cut at {cut}"
            );
        }
    }
    let payloads = [
        Payload::Attest {
            registrar: alice(),
            member: bob(),
            foundation: 2,
            admit: true,
        },
        Payload::LeaveFoundation { account: bob() },
        Payload::Membership {
            account: bob(),
            foundation: Some(1),
        },
        Payload::Membership {
            account: bob(),
            foundation: None,
        },
        Payload::Sponsor {
            sponsor: alice(),
            account: bob(),
            amount: 5,
        },
        Payload::EndSponsorship {
            sponsor: alice(),
            account: bob(),
        },
        Payload::ExpireSeat {
            foundation: 1,
            holder: alice(),
        },
        Payload::Govern {
            from: alice(),
            deposit: u128::MAX,
            act: GovAct::Propose {
                foundation: 0,
                title: String::new(),
                text: String::new(),
                motion: Motion::Spend {
                    to: bob(),
                    amount: 1,
                },
            },
        },
        Payload::TreasurySpend {
            foundation: 2,
            proposal: 9,
            to: bob(),
            amount: 5,
        },
        Payload::SpendFailed {
            proposal: 9,
            available: 3,
        },
    ];
    for p in payloads {
        let bytes = p.to_bytes();
        assert_eq!(Payload::from_bytes(&bytes).unwrap(), p);
        for cut in 0..bytes.len() {
            assert!(
                Payload::from_bytes(&bytes[..cut]).is_err(),
                "{p:?} cut at {cut}"
            );
        }
    }
    // A flag that is neither 0 nor 1: refused, not read as true.
    let mut attest = Payload::Attest {
        registrar: alice(),
        member: bob(),
        foundation: 0,
        admit: false,
    }
    .to_bytes();
    *attest.last_mut().unwrap() = 2;
    assert!(Payload::from_bytes(&attest).is_err());
    let mut membership = Payload::Membership {
        account: bob(),
        foundation: None,
    }
    .to_bytes();
    *membership.last_mut().unwrap() = 7;
    assert!(Payload::from_bytes(&membership).is_err());
}

/// The crate's directory, as `cargo test` says when it runs the test (a test binary reused
/// from a checkout elsewhere would carry that checkout's compile-time path).
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into())
}
