//! Cross-shard messages are never lost, whatever their age (invariant 6): a destination that
//! was down while its source finalized more than 10,000 blocks still gets the message sent
//! before the gap, proved under its source block. At `b334716` the router looked back only
//! 4,096 source blocks, so the credit below stayed in flight for good.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use starling_consensus::cross::Router;
use starling_consensus::{CrossShard, ShardApp};
use starling_crypto::SecretKey;
use starling_ledger::{actions, LedgerParams};
use starling_mempool::{Mempool, MempoolConfig};
use starling_store::ChainStore;
use starling_types::{AccountId, Action, Asset, ChainId, KeyType, ShardId, ShardMap, TxBody};
use std::collections::BTreeMap;

const GAP: u64 = 10_001;

fn key_on(params: &LedgerParams, shard: ShardId, from: u8) -> SecretKey {
    (from..=255)
        .map(|i| SecretKey::from_seed(KeyType::Ed25519, &[i; 32]).unwrap())
        .find(|k| params.shard_map.shard_of(&k.public_key()) == shard)
        .unwrap()
}

#[test]
fn a_message_older_than_ten_thousand_source_blocks_is_still_delivered() {
    let foundations: Vec<AccountId> = (0..3u8)
        .map(|i| {
            SecretKey::from_seed(KeyType::Ed25519, &[90 + i; 32])
                .unwrap()
                .public_key()
        })
        .collect();
    let params = LedgerParams::devnet(ChainId::new("gap").unwrap(), 2, foundations).unwrap();
    let sender = key_on(&params, ShardId(1), 1);
    let receiver = key_on(&params, ShardId(2), 1);
    let alloc = vec![
        (sender.public_key(), Asset::Spend, 1u128 << 80),
        (receiver.public_key(), Asset::Spend, 1u128 << 80),
    ];
    let (ds, dd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut source =
        ChainStore::create(ds.path(), params.clone(), ShardId(1), &alloc, 1 << 60, 8).unwrap();
    let dest =
        ChainStore::create(dd.path(), params.clone(), ShardId(2), &alloc, 1 << 60, 8).unwrap();
    let proposer = sender.public_key();
    let body = TxBody {
        account: sender.public_key(),
        nonce: 0,
        max_fee: 1_000_000_000_000,
        tip: 0,
        expires_at_height: 100,
        action: Action::Transfer {
            asset: Asset::Spend,
            to: receiver.public_key(),
            amount: 777,
        },
    };
    source
        .propose(
            vec![sender.sign_tx(&params.chain_id, &body)],
            vec![],
            1,
            proposer,
        )
        .unwrap();
    // The destination is away while the source finalizes more than 10,000 blocks.
    for h in 2..=GAP + 1 {
        source.propose(vec![], vec![], h, proposer).unwrap();
    }
    let app = |store: ChainStore, shard: ShardId| {
        let pool = Mempool::new(MempoolConfig::default(), shard, ShardMap::even(2).unwrap());
        ShardApp::new(store, pool, 1_000)
    };
    let apps: BTreeMap<ShardId, ShardApp> = [
        (ShardId(1), app(source, ShardId(1))),
        (ShardId(2), app(dest, ShardId(2))),
    ]
    .into();
    let router = Router::new(apps.clone());
    let pending = router.pending(ShardId(2), &|_| 0);
    assert_eq!(pending.len(), 1, "one source block holds the message");
    assert_eq!(pending[0].source.height, 1);
    assert_eq!(pending[0].messages[0].0.seq, 0);
    assert_eq!(router.finalized(&pending[0].source), Some(true));
    drop(router);
    drop(apps);

    // The destination applies it: the credit lands once.
    let mut dest = ChainStore::open(dd.path()).unwrap();
    let before = dest
        .with_view(|v| actions::account(v, &receiver.public_key()).unwrap())
        .unwrap()
        .unwrap()
        .balance(Asset::Spend);
    dest.propose(vec![], pending, 1, receiver.public_key())
        .unwrap();
    let after = dest
        .with_view(|v| actions::account(v, &receiver.public_key()).unwrap())
        .unwrap()
        .unwrap()
        .balance(Asset::Spend);
    assert_eq!(after, before + 777);
}
