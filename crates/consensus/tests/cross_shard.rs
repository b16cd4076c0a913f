//! Several shards per validator in deterministic simulation: four validators each run the
//! global shard and two account shards (one consensus stack per shard on its own channels)
//! and deliver cross-shard messages with the `Router`. Users transfer SPEND to each other,
//! mostly across shards; under the faults named by each test, every transfer's credit is
//! applied exactly once and total supply is conserved on every replica.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::{channels, committee, equivocation, network, Twin};
use commonware_cryptography::{ed25519, Signer as _};
use commonware_p2p::simulated;
use commonware_runtime::{deterministic, Clock as _, Runner as _, Supervisor as _};
use commonware_utils::ordered::Set;
use starling_consensus::cross::Router;
use starling_consensus::engine::{self, EngineConfig};
use starling_consensus::ShardApp;
use starling_crypto::SecretKey;
use starling_ledger::records::{decode_u128, decode_u64, Pool, StateKey};
use starling_ledger::{actions, LedgerParams};
use starling_mempool::{Mempool, MempoolConfig};
use starling_store::ChainStore;
use starling_types::{AccountId, Action, Asset, ChainId, KeyType, ShardId, Tx, TxBody};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const ACCOUNT_SHARDS: u16 = 2;
const FUND: u128 = 1 << 80;
const ROUNDS: u64 = 3;

fn foundations() -> Vec<AccountId> {
    (0..3u8)
        .map(|i| {
            SecretKey::from_seed(KeyType::Ed25519, &[70 + i; 32])
                .unwrap()
                .public_key()
        })
        .collect()
}

fn params() -> LedgerParams {
    LedgerParams::devnet(
        ChainId::new("xshard").unwrap(),
        ACCOUNT_SHARDS,
        foundations(),
    )
    .unwrap()
}

fn users() -> Vec<SecretKey> {
    (1..=8u8)
        .map(|i| SecretKey::from_seed(KeyType::Ed25519, &[i; 32]).unwrap())
        .collect()
}

/// Where user `u`'s `round`-th transfer goes: a fresh account (on either account shard).
fn recipient(u: usize, round: u64) -> AccountId {
    let mut seed = [0u8; 32];
    seed[0] = 200;
    seed[1] = u as u8;
    seed[2] = round as u8;
    SecretKey::from_seed(KeyType::Ed25519, &seed)
        .unwrap()
        .public_key()
}

fn amount(u: usize, round: u64) -> u128 {
    1_000 + 10 * u as u128 + u128::from(round)
}

/// User `u`'s `round`-th transfer, to [`recipient`].
fn transfer(users: &[SecretKey], u: usize, round: u64) -> Tx {
    let p = params();
    let body = TxBody {
        account: users[u].public_key(),
        nonce: round,
        max_fee: 1_000_000_000_000,
        tip: 1,
        expires_at_height: 1_000,
        action: Action::Transfer {
            asset: Asset::Spend,
            to: recipient(u, round),
            amount: amount(u, round),
        },
    };
    Tx::parse(&p.chain_id, users[u].sign_tx(&p.chain_id, &body)).unwrap()
}

/// Starts one validator's three shards (stores under `dir`, created on first use) and
/// connects them for cross-shard delivery.
async fn start_validator(
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ed25519::PublicKey, deterministic::Context>,
    participants: &Set<ed25519::PublicKey>,
    key: &ed25519::PrivateKey,
    dir: &std::path::Path,
    byzantine: bool,
) -> BTreeMap<ShardId, ShardApp> {
    let me = key.public_key();
    let alloc: Vec<_> = users()
        .iter()
        .map(|k| (k.public_key(), Asset::Spend, FUND))
        .collect();
    let control = oracle.control(me.clone());
    let mut apps = BTreeMap::new();
    for s in 0..=ACCOUNT_SHARDS {
        let shard = ShardId(s);
        let path = dir.join(s.to_string());
        let store = match ChainStore::open(&path) {
            Ok(st) => st,
            Err(starling_store::StoreError::NotInitialized(_)) => {
                ChainStore::create(&path, params(), shard, &alloc, 1 << 60, 8).unwrap()
            }
            Err(e) => panic!("{e}"),
        };
        let mempool = Mempool::new(MempoolConfig::default(), shard, params().shard_map);
        let app = ShardApp::new(store, mempool, 1_000);
        let namespace = format!("xshard/shard/{s}").into_bytes();
        let votes: Twin = if byzantine {
            equivocation(app.clone(), &namespace, participants, key)
        } else {
            Arc::new(|_| None)
        };
        let channels = channels(&control, u64::from(s) * 8, votes).await;
        let config = EngineConfig {
            namespace,
            participants: participants.clone(),
            signer: key.clone(),
            partition_prefix: format!("v{me}-s{s}"),
            leader_timeout: Duration::from_secs(1),
            certification_timeout: Duration::from_secs(2),
        };
        let ctx = context
            .child("validator")
            .with_attribute("key", &me)
            .with_attribute("shard", s);
        engine::start(
            ctx,
            config,
            app.clone(),
            oracle.manager(),
            control.clone(),
            channels,
        )
        .await
        .unwrap();
        apps.insert(shard, app);
    }
    let router = Arc::new(Router::new(apps.clone()));
    for app in apps.values() {
        app.connect(router.clone());
    }
    apps
}

fn read_u128(app: &ShardApp, key: StateKey<'_>) -> u128 {
    app.read(|v| {
        v.get(&key.hash())
            .unwrap()
            .map(|b| decode_u128(&b).unwrap())
            .unwrap_or(0)
    })
    .unwrap()
}

fn read_u64(app: &ShardApp, key: StateKey<'_>) -> u64 {
    app.read(|v| {
        v.get(&key.hash())
            .unwrap()
            .map(|b| decode_u64(&b).unwrap())
            .unwrap_or(0)
    })
    .unwrap()
}

/// Whether every message sent between two shards has been applied by its destination.
fn nothing_in_flight(apps: &BTreeMap<ShardId, ShardApp>) -> bool {
    apps.iter().all(|(a, src)| {
        apps.iter().filter(|(b, _)| *b != a).all(|(b, dst)| {
            read_u64(src, StateKey::Outbox(*b)) == read_u64(dst, StateKey::Inbox(*a))
        })
    })
}

/// Checks one replica: every transfer credited its recipient exactly once (recipients never
/// send, so their balance is exactly what they received), and balances plus pools add up to
/// what genesis issued.
fn check_replica(apps: &BTreeMap<ShardId, ShardApp>, validators: &[AccountId]) {
    let users = users();
    let map = params().shard_map;
    let balance = |a: &AccountId| {
        let app = &apps[&map.shard_of(a)];
        app.read(|v| {
            actions::account(v, a)
                .unwrap()
                .map_or(0, |r| r.balance(Asset::Spend))
        })
        .unwrap()
    };
    let mut recipients = Vec::new();
    let mut crossing = 0;
    for (u, user) in users.iter().enumerate() {
        for round in 0..ROUNDS {
            let to = recipient(u, round);
            assert_eq!(balance(&to), amount(u, round), "user {u}, round {round}");
            if map.shard_of(&to) != map.shard_of(&user.public_key()) {
                crossing += 1;
            }
            recipients.push(to);
        }
    }
    assert!(crossing > 0, "no transfer crossed shards");
    // Conservation: every account that can hold SPEND here, and every pool.
    let mut total = 0u128;
    let mut issued = 0u128;
    for (s, app) in apps {
        issued += read_u128(app, StateKey::Issued(Asset::Spend));
        for pool in Pool::all(foundations().len() as u16) {
            total += read_u128(app, StateKey::Pool(pool));
        }
        let accounts = users
            .iter()
            .map(|k| k.public_key())
            .chain(recipients.iter().copied())
            .chain(validators.iter().copied())
            .chain(foundations());
        for a in accounts {
            if map.shard_of(&a) == *s {
                total += balance(&a);
            }
        }
    }
    assert_eq!(total, issued, "supply not conserved");
}

/// Four validators (the first `offline` never start; with `crash`, all crash once half the
/// transfers are final and restart from disk; with `byzantine`, the first equivocates on every
/// shard it leads, proposing two valid blocks) until every transfer is final and every message
/// delivered on the honest replicas.
fn run(seed: u64, offline: usize, crash: bool, byzantine: bool) {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<std::path::PathBuf> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
    let config = deterministic::Config::default()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(600)));
    let validators: Vec<AccountId> = committee()
        .0
        .iter()
        .map(|k| {
            let mut b = [0u8; 32];
            b.copy_from_slice(k.public_key().as_ref());
            AccountId::ed25519(b)
        })
        .collect();
    let first = paths.clone();
    let validators_first = validators.clone();
    let (_, checkpoint) =
        deterministic::Runner::new(config).start_and_recover(|context| async move {
            let (keys, participants) = committee();
            let oracle = network(&context, &participants).await;
            let mut replicas = Vec::new();
            let mut liar = None;
            for (i, (key, dir)) in keys.iter().zip(&first).enumerate().skip(offline) {
                let apps = start_validator(
                    &context,
                    &oracle,
                    &participants,
                    key,
                    dir,
                    byzantine && i == 0,
                )
                .await;
                if byzantine && i == 0 {
                    liar = Some(apps);
                } else {
                    replicas.push(apps);
                }
            }
            let users = users();
            let map = params().shard_map;
            let rounds = if crash { ROUNDS - 1 } else { ROUNDS };
            for round in 0..rounds {
                for u in 0..users.len() {
                    let shard = map.shard_of(&users[u].public_key());
                    for r in &replicas {
                        r[&shard].submit(transfer(&users, u, round)).unwrap();
                    }
                }
                // The next round once this one is final everywhere (nonces are sequential).
                while !replicas.iter().all(|r| {
                    users.iter().all(|k| {
                        r[&map.shard_of(&k.public_key())].nonce(&k.public_key()) == round + 1
                    })
                }) {
                    context.sleep(Duration::from_millis(100)).await;
                }
            }
            if !crash {
                while !replicas.iter().all(nothing_in_flight) {
                    context.sleep(Duration::from_millis(100)).await;
                }
                for r in &replicas {
                    check_replica(r, &validators_first);
                }
            }
            if byzantine {
                // Each honest validator recorded the equivocation on some shard.
                for r in &replicas {
                    assert!(r.values().any(|app| !app.evidence().unwrap().is_empty()));
                }
            }
            drop(liar);
        });
    if !crash {
        return;
    }
    // Everyone crashed with messages possibly in flight; all restart from their stores and
    // journals, and the last round goes through.
    deterministic::Runner::from(checkpoint).start(|context| async move {
        let (keys, participants) = committee();
        let oracle = network(&context, &participants).await;
        let mut replicas = Vec::new();
        for (key, dir) in keys.iter().zip(&paths) {
            replicas.push(start_validator(&context, &oracle, &participants, key, dir, false).await);
        }
        let users = users();
        let map = params().shard_map;
        for u in 0..users.len() {
            let shard = map.shard_of(&users[u].public_key());
            for r in &replicas {
                r[&shard].submit(transfer(&users, u, ROUNDS - 1)).unwrap();
            }
        }
        while !replicas.iter().all(|r| {
            users
                .iter()
                .all(|k| r[&map.shard_of(&k.public_key())].nonce(&k.public_key()) == ROUNDS)
                && nothing_in_flight(r)
        }) {
            context.sleep(Duration::from_millis(100)).await;
        }
        for r in &replicas {
            check_replica(r, &validators);
        }
    });
    drop(dirs);
}

#[test]
fn n4f0_cross_shard_transfers_apply_once_and_conserve_supply() {
    run(21, 0, false, false);
}

#[test]
fn n4f1_cross_shard_transfers_apply_once_and_conserve_supply() {
    run(23, 1, false, false);
}

#[test]
fn n4f0_cross_shard_transfers_survive_a_crash_of_every_validator() {
    run(29, 0, true, false);
}

#[test]
fn n4f1_cross_shard_transfers_conserve_supply_with_an_equivocating_proposer() {
    run(31, 0, false, true);
}
