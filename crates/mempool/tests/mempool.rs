//! The pool's rules, one by one, and its bounds under random traffic.
#![allow(clippy::unwrap_used, clippy::panic)]

use proptest::prelude::*;
use starling_crypto::SecretKey;
use starling_mempool::{AccountState, Admission, Mempool, MempoolConfig, MempoolError, Source};
use starling_types::{AccountId, Action, ChainId, KeyType, ShardId, ShardMap, Tx, TxBody};
use std::collections::HashMap;

fn chain() -> ChainId {
    ChainId::new("pool-test").unwrap()
}

fn key(i: u8) -> SecretKey {
    SecretKey::from_seed(KeyType::Ed25519, &[i + 1; 32]).unwrap()
}

fn tx(k: &SecretKey, nonce: u64, tip: u128) -> Tx {
    let post = Action::Post {
        text: format!("n{nonce} t{tip}"),
        reply_to: None,
        quote_of: None,
        langs: vec![],
    };
    signed(k, nonce, tip, post)
}

fn signed(k: &SecretKey, nonce: u64, tip: u128, action: Action) -> Tx {
    let body = TxBody {
        account: k.public_key(),
        nonce,
        max_fee: 1_000_000_000,
        tip,
        expires_at_height: 100,
        action,
    };
    Tx::parse(&chain(), k.sign_tx(&chain(), &body)).unwrap()
}

fn pool(config: MempoolConfig) -> Mempool {
    Mempool::new(config, ShardId(1), ShardMap::even(1).unwrap())
}

fn zero(_: &AccountId) -> u64 {
    0
}

/// Admits `tx` for a block at `height` with `base_fee`, from an account at `nonce` with
/// plenty of funds.
fn admission(height: u64, base_fee: u64) -> Admission {
    Admission {
        height,
        base_fee,
        max_expiry_blocks: 100_000,
    }
}

fn funded(nonce: u64) -> AccountState {
    AccountState {
        nonce,
        fee_budget: u128::MAX,
        tip_budget: u128::MAX,
        locked: false,
    }
}

fn put(
    p: &mut Mempool,
    tx: Tx,
    height: u64,
    base_fee: u64,
    nonce: u64,
) -> Result<(), MempoolError> {
    p.insert(tx, &admission(height, base_fee), Some(funded(nonce)))
}

#[test]
fn selects_by_tip_and_keeps_each_account_in_nonce_order() {
    let mut p = pool(MempoolConfig::default());
    let (a, b) = (key(1), key(2));
    // a: nonce 0 cheap, nonce 1 rich; b: nonce 0 medium.
    put(&mut p, tx(&a, 0, 10), 1, 1, 0).unwrap();
    put(&mut p, tx(&a, 1, 900), 1, 1, 0).unwrap();
    put(&mut p, tx(&b, 0, 500), 1, 1, 0).unwrap();
    let order: Vec<(AccountId, u64)> = p
        .select(u64::MAX, 100, &zero)
        .iter()
        .map(|t| (t.body.account, t.body.nonce))
        .collect();
    // b's 500 beats a's head (10); then a's 0 unlocks a's 1.
    assert_eq!(
        order,
        vec![
            (b.public_key(), 0),
            (a.public_key(), 0),
            (a.public_key(), 1)
        ]
    );
    // A gap is never selected; once the pool is half full a client's gap is not admitted
    // (another node's is: gossip reorders); and what leaves the pool takes the account's
    // later nonces with it.
    let mut gap = pool(MempoolConfig {
        min_capacity: 6,
        ..MempoolConfig::default()
    });
    put(&mut gap, tx(&a, 2, 999), 1, 1, 0).unwrap();
    assert!(gap.select(u64::MAX, 100, &zero).is_empty());
    put(&mut gap, tx(&b, 0, 1), 1, 1, 0).unwrap();
    put(&mut gap, tx(&key(3), 0, 1), 1, 1, 0).unwrap();
    assert_eq!(
        put(&mut gap, tx(&a, 4, 999), 1, 1, 0),
        Err(MempoolError::NonceTooHigh {
            expected: 0,
            got: 4
        })
    );
    let at = Admission {
        height: 1,
        base_fee: 1,
        max_expiry_blocks: 100_000,
    };
    let rich = Some(AccountState {
        nonce: 0,
        fee_budget: u128::MAX,
        tip_budget: u128::MAX,
        locked: false,
    });
    gap.insert_from(tx(&a, 4, 999), &at, rich, starling_mempool::Source::Peer)
        .unwrap();
    for n in [0, 1] {
        put(&mut gap, tx(&a, n, 1), 1, 1, 0).unwrap();
    }
    let first = gap
        .select(u64::MAX, 100, &zero)
        .into_iter()
        .find(|t| t.body.account == a.public_key())
        .unwrap()
        .hash;
    gap.prune(2, std::iter::empty(), &zero, &[(first, false)]);
    assert_eq!(gap.len(), 2, "a's nonces 0, 1, 2 and 4 left together");
}

#[test]
fn selection_respects_block_gas_and_count() {
    let mut p = pool(MempoolConfig::default());
    for i in 0..10 {
        put(&mut p, tx(&key(i), 0, i as u128), 1, 1, 0).unwrap();
    }
    let one = p.select(u64::MAX, 100, &zero)[0].clone();
    let gas = starling_ledger::gas::tx_gas(one.envelope.encoded_len(), &one.body.action);
    let picked = p.select(gas * 3 + gas / 2, 100, &zero);
    assert_eq!(picked.len(), 3);
    assert_eq!(picked[0].body.tip, 9);
    assert_eq!(p.select(u64::MAX, 4, &zero).len(), 4);
}

#[test]
fn admission_rules() {
    let mut p = pool(MempoolConfig {
        max_nonce_ahead: 5,
        ..MempoolConfig::default()
    });
    let a = key(1);
    let t = tx(&a, 3, 1);
    put(&mut p, t.clone(), 1, 1, 3).unwrap();
    assert_eq!(put(&mut p, t, 1, 1, 3), Err(MempoolError::Duplicate));
    assert_eq!(
        put(&mut p, tx(&a, 2, 1), 1, 1, 3),
        Err(MempoolError::NonceTooLow {
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        put(&mut p, tx(&a, 9, 1), 1, 1, 3),
        Err(MempoolError::NonceTooHigh {
            expected: 3,
            got: 9
        })
    );
    assert_eq!(
        put(&mut p, tx(&a, 4, 1), 101, 1, 3),
        Err(MempoolError::Expired(100))
    );
    assert!(matches!(
        put(&mut p, tx(&a, 4, 1), 1, 1_000_000, 3),
        Err(MempoolError::FeeTooLow { .. })
    ));
    let two = Mempool::new(
        MempoolConfig::default(),
        ShardId(2),
        ShardMap::even(2).unwrap(),
    );
    let mut two = two;
    let elsewhere = (0..50)
        .map(key)
        .find(|k| ShardMap::even(2).unwrap().shard_of(&k.public_key()) == ShardId(1))
        .unwrap();
    assert_eq!(
        put(&mut two, tx(&elsewhere, 0, 1), 1, 1, 0),
        Err(MempoolError::WrongShard(ShardId(1)))
    );
}

#[test]
fn replacement_needs_a_higher_tip() {
    let mut p = pool(MempoolConfig::default());
    let a = key(1);
    put(&mut p, tx(&a, 0, 100), 1, 1, 0).unwrap();
    assert_eq!(
        put(&mut p, tx(&a, 0, 105), 1, 1, 0),
        Err(MempoolError::ReplacementUnderpriced(10))
    );
    assert_eq!(p.drops().replaced, 0);
    put(&mut p, tx(&a, 0, 200), 1, 1, 0).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p.select(u64::MAX, 10, &zero)[0].body.tip, 200);
    // Counted, so that an acknowledged transaction that never becomes final is explained.
    assert_eq!(p.drops().replaced, 1);
    // At an equal tip, an action of less gas pays more per gas and replaces it too.
    put(&mut p, like(&a, 0, 200), 1, 1, 0).unwrap();
    assert_eq!(p.drops().replaced, 2);
}

/// A transaction whose action costs less gas than [`tx`]'s post at the same tip.
fn like(k: &SecretKey, nonce: u64, tip: u128) -> Tx {
    let post = starling_types::PostId {
        author: k.public_key(),
        seq: 0,
    };
    signed(k, nonce, tip, Action::Like { post })
}

#[test]
fn an_acknowledged_transaction_is_evicted_only_by_a_real_bid() {
    let mut p = pool(MempoolConfig {
        max_txs: 2,
        ..MempoolConfig::default()
    });
    let (a, b, c) = (key(1), key(2), key(3));
    put(&mut p, tx(&a, 0, 10), 1, 1, 0).unwrap();
    put(&mut p, tx(&b, 0, 10), 1, 1, 0).unwrap();
    // The same tip on a cheaper action is more tip per gas, but no bid: refused.
    assert_eq!(
        put(&mut p, like(&c, 0, 10), 1, 1, 0),
        Err(MempoolError::PoolFull)
    );
    assert_eq!(
        put(&mut p, tx(&c, 0, 19), 1, 1, 0),
        Err(MempoolError::PoolFull)
    );
    // Past double the tail's tip per gas, it takes the place.
    put(&mut p, tx(&c, 0, 25), 1, 1, 0).unwrap();
    assert_eq!(p.drops().evicted, 1);
    assert_eq!(p.len(), 2);
}

#[test]
fn full_pool_evicts_the_cheapest_tail_or_refuses() {
    let mut p = pool(MempoolConfig {
        max_txs: 3,
        ..MempoolConfig::default()
    });
    let (a, b, c) = (key(1), key(2), key(3));
    put(&mut p, tx(&a, 0, 50), 1, 1, 0).unwrap();
    put(&mut p, tx(&a, 1, 1), 1, 1, 0).unwrap(); // cheapest, and a's tail
    put(&mut p, tx(&b, 0, 60), 1, 1, 0).unwrap();
    // Refused before its signature would be checked, and at admission.
    let cheap = tx(&c, 0, 1);
    let at = admission(1, 1);
    assert_eq!(
        p.screen(
            std::slice::from_ref(&cheap),
            &[Some(funded(0))],
            &at,
            Source::Client
        ),
        vec![Err(MempoolError::PoolFull)]
    );
    assert_eq!(put(&mut p, cheap, 1, 1, 0), Err(MempoolError::PoolFull));
    let rich = tx(&c, 0, 70);
    assert_eq!(
        p.screen(
            std::slice::from_ref(&rich),
            &[Some(funded(0))],
            &at,
            Source::Client
        ),
        vec![Ok(())]
    );
    assert_eq!(p.drops().evicted, 0);
    put(&mut p, rich, 1, 1, 0).unwrap();
    assert_eq!(p.len(), 3);
    // The tail it pushed out is counted as evicted.
    assert_eq!(p.drops().evicted, 1);
    let left: Vec<_> = p
        .select(u64::MAX, 10, &zero)
        .iter()
        .map(|t| (t.body.tip, t.body.nonce))
        .collect();
    assert_eq!(left, vec![(70, 0), (60, 0), (50, 0)]);
}

#[test]
fn per_account_limit_and_rate_limit() {
    let mut p = pool(MempoolConfig {
        max_per_account: 2,
        ..MempoolConfig::default()
    });
    let a = key(1);
    put(&mut p, tx(&a, 0, 1), 1, 1, 0).unwrap();
    put(&mut p, tx(&a, 1, 1), 1, 1, 0).unwrap();
    assert_eq!(
        put(&mut p, tx(&a, 2, 1), 1, 1, 0),
        Err(MempoolError::AccountFull(2))
    );

    let mut r = pool(MempoolConfig {
        rate_burst: 3,
        rate_per_block: 1,
        ..MempoolConfig::default()
    });
    for n in 0..3 {
        put(&mut r, tx(&a, n, 1), 1, 1, 0).unwrap();
    }
    assert_eq!(
        put(&mut r, tx(&a, 3, 1), 1, 1, 0),
        Err(MempoolError::RateLimited)
    );
    // One block later, one more.
    put(&mut r, tx(&a, 3, 1), 2, 1, 0).unwrap();
    assert_eq!(
        put(&mut r, tx(&a, 4, 1), 2, 1, 0),
        Err(MempoolError::RateLimited)
    );
}

#[test]
fn pruning_drops_consumed_and_expired() {
    let mut p = pool(MempoolConfig::default());
    let (a, b) = (key(1), key(2));
    for n in 0..4 {
        put(&mut p, tx(&a, n, 1), 1, 1, 0).unwrap();
    }
    put(&mut p, tx(&b, 0, 1), 1, 1, 0).unwrap();
    let chain: HashMap<AccountId, u64> = [(a.public_key(), 3)].into();
    let nonces = |acc: &AccountId| chain.get(acc).copied().unwrap_or(0);
    p.prune(2, [&a.public_key()], &nonces, &[]);
    assert_eq!(p.len(), 2);
    // What the chain consumed is no drop.
    assert_eq!(p.drops(), Default::default());
    assert_eq!(p.select(u64::MAX, 10, &nonces).len(), 2);
    p.prune(101, std::iter::empty(), &nonces, &[]);
    assert!(p.is_empty());
    assert_eq!(p.bytes(), 0);
    assert_eq!(p.drops().expired, 2);
}

/// Junk from keys with nothing on chain never gets in; an account can pool only what it can
/// pay for; expiries are bounded; a transaction a block rejected leaves the pool, and one that
/// keeps losing ages out. (At `b334716` a fresh, unfunded key's transaction with an expiry of
/// `u64::MAX` and a huge tip was admitted, selected first, rejected by every block, and kept.)
#[test]
fn junk_costs_its_sender_or_never_gets_in() {
    let mut p = pool(MempoolConfig {
        max_age_blocks: 50,
        ..MempoolConfig::default()
    });
    let at = Admission {
        height: 1,
        base_fee: 1,
        max_expiry_blocks: 1_000,
    };
    let (fresh, a) = (key(7), key(1));
    let junk = {
        let body = TxBody {
            account: fresh.public_key(),
            nonce: 0,
            max_fee: u128::MAX,
            tip: (1u128 << 96) - 1,
            expires_at_height: u64::MAX,
            action: Action::Post {
                text: "junk".into(),
                reply_to: None,
                quote_of: None,
                langs: vec![],
            },
        };
        Tx::parse(&chain(), fresh.sign_tx(&chain(), &body)).unwrap()
    };
    assert_eq!(
        p.insert(junk.clone(), &at, None),
        Err(MempoolError::UnknownAccount)
    );
    // Known but unable to pay its max_fee; or expiring beyond the horizon.
    let poor = AccountState {
        nonce: 0,
        fee_budget: 10,
        tip_budget: 10,
        locked: false,
    };
    assert!(matches!(
        p.insert(tx(&fresh, 0, 1), &at, Some(poor)),
        Err(MempoolError::InsufficientFunds { .. })
    ));
    let rich = AccountState {
        nonce: 0,
        fee_budget: u128::MAX,
        tip_budget: u128::MAX,
        locked: false,
    };
    assert!(matches!(
        p.insert(junk, &at, Some(rich)),
        Err(MempoolError::ExpiryTooFar { .. })
    ));
    // A tip only the balance can pay: an allowance or a sponsorship in the fee budget does
    // not cover one.
    let sponsored = AccountState {
        nonce: 0,
        fee_budget: u128::MAX,
        tip_budget: 0,
        locked: false,
    };
    assert!(matches!(
        p.insert(tx(&fresh, 0, 1), &at, Some(sponsored)),
        Err(MempoolError::InsufficientFunds {
            needed: 1,
            available: 0
        })
    ));
    // A foundation treasury's own transaction that would move its SPEND (rule TR1): never
    // in the pool, however rich it is.
    assert_eq!(
        p.insert(
            tx(&fresh, 0, 1),
            &at,
            Some(AccountState {
                locked: true,
                ..rich
            })
        ),
        Err(MempoolError::TreasuryLocked)
    );
    // (Without a tip it goes in: shown on a pool of its own.)
    let mut other = pool(MempoolConfig::default());
    other
        .insert(tx(&fresh, 0, 0), &at, Some(sponsored))
        .unwrap();
    // The budget covers every pooled max_fee of the account, not each alone.
    let two_fees = AccountState {
        nonce: 0,
        fee_budget: 1_500_000_000,
        tip_budget: 1_500_000_000,
        locked: false,
    };
    p.insert(tx(&a, 0, 1), &at, Some(two_fees)).unwrap();
    assert!(matches!(
        p.insert(tx(&a, 1, 1), &at, Some(two_fees)),
        Err(MempoolError::InsufficientFunds { .. })
    ));
    // A replacement frees the fee of the one it replaces.
    p.insert(tx(&a, 0, 50), &at, Some(two_fees)).unwrap();
    assert_eq!(p.len(), 1);
    // Rejected by a block for a reason that will not change: gone at once. For one that may
    // (a nonce gap a Byzantine proposer can cause by ordering): after a few.
    let pooled = p.select(u64::MAX, 10, &zero);
    p.prune(2, std::iter::empty(), &zero, &[(pooled[0].hash, false)]);
    assert!(p.is_empty());
    p.insert(tx(&a, 0, 60), &at, Some(two_fees)).unwrap();
    let h = p.select(u64::MAX, 10, &zero)[0].hash;
    for round in 1..starling_mempool::MAX_TRANSIENT_LOSSES {
        p.prune(
            2 + u64::from(round),
            std::iter::empty(),
            &zero,
            &[(h, true)],
        );
        assert_eq!(p.len(), 1, "kept after {round} transient rejections");
    }
    p.prune(10, std::iter::empty(), &zero, &[(h, true)]);
    assert!(p.is_empty());
    // Never included, it ages out after max_age_blocks.
    let b = key(2);
    p.insert(tx(&b, 0, 1), &at, Some(rich)).unwrap();
    p.prune(51, std::iter::empty(), &zero, &[]);
    assert_eq!(p.len(), 1);
    p.prune(52, std::iter::empty(), &zero, &[]);
    assert!(p.is_empty());
    assert_eq!(p.bytes(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Under random inserts, selections and prunes the pool stays within its bounds, and every
    /// selection is a valid block order: per account, consecutive nonces from the chain's.
    #[test]
    fn bounded_and_selections_are_executable(ops in prop::collection::vec((0u8..6, 0u64..8, 0u128..1000, any::<bool>()), 1..120)) {
        let config = MempoolConfig { max_txs: 12, max_per_account: 4, max_nonce_ahead: 6, rate_burst: 5, rate_per_block: 2, ..MempoolConfig::default() };
        let mut p = pool(config.clone());
        let keys: Vec<SecretKey> = (0..6).map(key).collect();
        let mut chain: HashMap<AccountId, u64> = HashMap::new();
        let mut height = 1;
        for (who, nonce, tip, advance) in ops {
            let k = &keys[who as usize];
            let next = chain.get(&k.public_key()).copied().unwrap_or(0);
            let t = tx(k, next + nonce, tip);
            // The screen before signature checks never refuses what admission would take.
            let screened = p.screen(std::slice::from_ref(&t), &[Some(funded(next))], &admission(height, 1), Source::Client).remove(0);
            let drops = p.drops();
            let admitted = put(&mut p, t, height, 1, next);
            if let Err(e) = screened {
                prop_assert!(admitted.is_err(), "screened out ({e}) but admitted");
            }
            // Only a newcomer that outbids a tail evicts it, one at a time.
            prop_assert!(p.drops().evicted <= drops.evicted + u64::from(admitted.is_ok()));
            prop_assert!(p.len() <= config.max_txs);
            if advance {
                let picked = p.select(u64::MAX, 5, &|a: &AccountId| chain.get(a).copied().unwrap_or(0));
                let mut expect: HashMap<AccountId, u64> = HashMap::new();
                for t in &picked {
                    let e = expect.entry(t.body.account).or_insert_with(|| chain.get(&t.body.account).copied().unwrap_or(0));
                    prop_assert_eq!(t.body.nonce, *e);
                    *e += 1;
                }
                let touched: Vec<AccountId> = expect.keys().copied().collect();
                chain.extend(expect);
                height += 1;
                let nonces = |a: &AccountId| chain.get(a).copied().unwrap_or(0);
                p.prune(height, touched.iter(), &nonces, &[]);
            }
        }
    }
}

/// A ballot (ledger rule BL3): free, from a key with no account, on the global shard only.
fn ballot_tx(k: &SecretKey, nonce: u64, max_fee: u128) -> Tx {
    let body = TxBody {
        account: k.public_key(),
        nonce,
        max_fee,
        tip: 0,
        expires_at_height: 100,
        action: Action::Ballot(starling_types::Ballot {
            foundation: 0,
            round: 0,
            proposal: 0,
            yes: true,
            votes: 1,
            randomizer: [0; 32],
            credential: vec![0; 256],
        }),
    };
    Tx::parse(&chain(), k.sign_tx(&chain(), &body)).unwrap()
}

#[test]
fn a_ballot_enters_only_the_global_pool_and_pays_nothing() {
    let map = ShardMap::even(1).unwrap();
    let mut global = Mempool::new(MempoolConfig::default(), ShardId::GLOBAL, map.clone());
    let mut shard = Mempool::new(MempoolConfig::default(), ShardId(1), map);
    // What the caller says of a ballot key that its credential admits: a nonce, no funds.
    let free = AccountState {
        nonce: 0,
        fee_budget: 0,
        tip_budget: 0,
        locked: false,
    };
    let at = admission(1, 50);
    let b = ballot_tx(&key(7), 0, 0);
    assert_eq!(
        shard.insert(b.clone(), &at, Some(free)),
        Err(MempoolError::WrongShard(ShardId::GLOBAL))
    );
    global.insert(b, &at, Some(free)).unwrap();
    assert_eq!(global.select(u64::MAX, 10, &zero).len(), 1);
    // Paying is no way in: a ballot's fee must be nothing, and a ballot key has no funds.
    assert!(matches!(
        global.insert(ballot_tx(&key(8), 0, 5), &at, Some(free)),
        Err(MempoolError::InsufficientFunds { .. })
    ));
    // A post on the global shard still needs its account's shard.
    assert!(matches!(
        global.insert(tx(&key(9), 0, 1), &at, Some(funded(0))),
        Err(MempoolError::WrongShard(s)) if s != ShardId::GLOBAL
    ));
}
