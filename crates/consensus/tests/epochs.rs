//! Committees per epoch in deterministic simulation: five validators, four in the genesis
//! registry and committees; the fifth bonds through a transaction, enters every shard's
//! committee at an epoch boundary (and not before), and from then on its votes are needed:
//! with a genesis validator cut off, the shards keep finalizing only because it votes. When
//! it retires, the committees drawn next leave it out again. Every replica agrees on every
//! block of both shards throughout, the newcomer included (it follows as an observer while
//! outside the committees).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::{channels, network, Twin};
use commonware_cryptography::{ed25519, Signer as _};
use commonware_p2p::simulated;
use commonware_runtime::{deterministic, Clock as _, Runner as _, Supervisor as _};
use commonware_utils::ordered::Set;
use starling_consensus::cross::Router;
use starling_consensus::engine::{self, EngineConfig};
use starling_consensus::ShardApp;
use starling_crypto::SecretKey;
use starling_ledger::records::ValidatorInfo;
use starling_ledger::{GenesisValidators, LedgerParams};
use starling_mempool::{Mempool, MempoolConfig};
use starling_store::ChainStore;
use starling_types::{AccountId, Action, Asset, Hash, KeyType, PublicKey, ShardId, Tx, TxBody};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const EPOCH: u64 = 8;
const SHARDS: [ShardId; 2] = [ShardId(0), ShardId(1)];

fn params() -> LedgerParams {
    let mut p = starling_testkit::devnet_params("epochs", 1, 70);
    p.epoch_blocks = EPOCH;
    p.committee_size = 5;
    p.validator_bond = 1_000_000;
    p
}

/// The account that bonds validator 4.
fn operator() -> SecretKey {
    SecretKey::from_seed(KeyType::Ed25519, &[42; 32]).unwrap()
}

fn keys() -> Vec<ed25519::PrivateKey> {
    (0..5u64).map(ed25519::PrivateKey::from_seed).collect()
}

fn starling_key(k: &ed25519::PublicKey) -> PublicKey {
    starling_consensus::account_of(k)
}

fn genesis_validators() -> GenesisValidators {
    let members: Vec<PublicKey> = keys()[..4]
        .iter()
        .map(|k| starling_key(&k.public_key()))
        .collect();
    GenesisValidators {
        registry: members
            .iter()
            .map(|k| ValidatorInfo {
                account: *k,
                consensus_key: *k,
                address: String::new(),
            })
            .collect(),
        committees: SHARDS.iter().map(|s| (*s, members.clone())).collect(),
    }
}

fn tx(nonce: u64, action: Action) -> Tx {
    let p = params();
    let body = TxBody {
        account: operator().public_key(),
        nonce,
        max_fee: 1_000_000_000_000,
        tip: 1,
        expires_at_height: 10_000,
        action,
    };
    Tx::parse(&p.chain_id, operator().sign_tx(&p.chain_id, &body)).unwrap()
}

async fn start_validator(
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ed25519::PublicKey, deterministic::Context>,
    key: &ed25519::PrivateKey,
    dir: &std::path::Path,
) -> (
    BTreeMap<ShardId, ShardApp>,
    BTreeMap<ShardId, engine::Marshal>,
) {
    let me = key.public_key();
    let genesis: Set<ed25519::PublicKey> =
        Set::from_iter_dedup(keys()[..4].iter().map(|k| k.public_key()));
    let alloc = vec![(operator().public_key(), Asset::Spend, 1u128 << 80)];
    let control = oracle.control(me.clone());
    let mut apps = BTreeMap::new();
    let mut marshals = BTreeMap::new();
    for shard in SHARDS {
        let path = dir.join(shard.0.to_string());
        let store = match ChainStore::open(&path) {
            Ok(store) => store,
            Err(starling_store::StoreError::NotInitialized(_)) => ChainStore::create_with(
                &path,
                params(),
                shard,
                &alloc,
                1 << 60,
                8,
                &genesis_validators(),
            )
            .unwrap(),
            Err(e) => panic!("{e}"),
        };
        let mempool = Mempool::new(MempoolConfig::default(), shard, params().shard_map);
        let app = ShardApp::new(store, mempool, 1_000);
        let honest: Twin = Arc::new(|_| None);
        let config = EngineConfig {
            namespace: format!("epochs/shard/{}", shard.0).into_bytes(),
            participants: genesis.clone(),
            signer: key.clone(),
            partition_prefix: format!("v{me}-s{}", shard.0),
            leader_timeout: Duration::from_secs(1),
            certification_timeout: Duration::from_secs(2),
        };
        let ctx = context
            .child("validator")
            .with_attribute("key", &me)
            .with_attribute("shard", shard.0);
        let marshal = engine::start(
            ctx,
            config,
            app.clone(),
            oracle.manager(),
            control.clone(),
            channels(&control, u64::from(shard.0) * 8, honest).await,
        )
        .await
        .unwrap();
        apps.insert(shard, app);
        marshals.insert(shard, marshal);
    }
    let router = Arc::new(Router::new(apps.clone()));
    for app in apps.values() {
        app.connect(router.clone());
    }
    (apps, marshals)
}

/// The committee (as accounts) of `shard`'s epoch `epoch` on a replica, if fixed yet.
fn committee(
    apps: &BTreeMap<ShardId, ShardApp>,
    shard: ShardId,
    epoch: u64,
) -> Option<Vec<AccountId>> {
    apps[&shard].epoch_committee(epoch)
}

/// Checks that all replicas agree on every finalized block of every shard they all have.
fn agree(replicas: &[&BTreeMap<ShardId, ShardApp>]) {
    for shard in SHARDS {
        let top = replicas
            .iter()
            .map(|r| r[&shard].head().height)
            .min()
            .unwrap();
        for h in 1..=top {
            let ids: Vec<Hash> = replicas
                .iter()
                .map(|r| r[&shard].block(h).unwrap().unwrap().header.id())
                .collect();
            assert!(
                ids.windows(2).all(|w| w[0] == w[1]),
                "shard {shard} height {h}"
            );
        }
    }
}

fn run(seed: u64) -> Vec<Hash> {
    let config = deterministic::Config::default()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(900)));
    deterministic::Runner::new(config).start(|mut context| async move {
        let keys = keys();
        let all = Set::from_iter_dedup(keys.iter().map(|k| k.public_key()));
        let oracle = network(&context, &all).await;
        let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut replicas = Vec::new();
        let mut marshals = Vec::new();
        for (key, dir) in keys.iter().zip(&dirs) {
            let (apps, m) = start_validator(&context, &oracle, key, dir.path()).await;
            replicas.push(apps);
            marshals.push(m);
        }
        let newcomer = starling_key(&keys[4].public_key());
        let seed: [u8; 32] = commonware_codec::Encode::encode(&keys[4])[..]
            .try_into()
            .unwrap();
        let newcomer_secret = SecretKey::from_seed(KeyType::Ed25519, &seed).unwrap();
        assert_eq!(newcomer_secret.public_key(), newcomer);
        let newcomer_pop =
            newcomer_secret.validator_pop(&params().chain_id, &operator().public_key());
        let home = params().shard_map.shard_of(&operator().public_key());

        // The operator bonds validator 4 (its consensus key) on its home shard.
        for r in &replicas {
            r[&home]
                .submit(tx(
                    0,
                    Action::RegisterValidator {
                        consensus_key: newcomer,
                        address: "127.0.0.1:7004".into(),
                        proof: newcomer_pop,
                    },
                ))
                .unwrap();
        }
        // Wait until both shards run an epoch whose committee includes the newcomer, a few
        // blocks in, on every replica.
        let joined = |r: &BTreeMap<ShardId, ShardApp>, shard: ShardId| -> Option<u64> {
            let epoch = r[&shard].head().height / EPOCH;
            (0..=epoch).find(|e| committee(r, shard, *e).is_some_and(|c| c.contains(&newcomer)))
        };
        let mut first_epoch: BTreeMap<ShardId, u64> = BTreeMap::new();
        loop {
            let ready = replicas.iter().all(|r| {
                SHARDS
                    .iter()
                    .all(|s| joined(r, *s).is_some_and(|e| r[s].head().height >= e * EPOCH + 2))
            });
            if ready {
                for s in SHARDS {
                    first_epoch.insert(s, joined(&replicas[0], s).unwrap());
                }
                break;
            }
            context.sleep(Duration::from_millis(100)).await;
        }
        // Not before an epoch boundary: every earlier epoch had the genesis committee only.
        for r in &replicas {
            for s in SHARDS {
                for e in 0..first_epoch[&s] {
                    let c = committee(r, s, e).unwrap();
                    assert_eq!(c.len(), 4);
                    assert!(!c.contains(&newcomer));
                }
                assert_eq!(committee(r, s, first_epoch[&s]).unwrap().len(), 5);
            }
        }
        agree(&replicas.iter().collect::<Vec<_>>());

        // What a relay checks: a block of the new epoch carries a certificate of the new
        // committee; the old committee does not verify it, nor does the wrong epoch.
        let genesis: Set<ed25519::PublicKey> =
            Set::from_iter_dedup(keys[..4].iter().map(|k| k.public_key()));
        for s in SHARDS {
            let epoch = first_epoch[&s];
            let height = epoch * EPOCH + 1;
            let app = &replicas[4][&s];
            let cert = marshals[4][&s]
                .get_finalization(commonware_consensus::types::Height::new(height))
                .await
                .expect("finalization kept");
            let cert = commonware_codec::Encode::encode(&cert).to_vec();
            let block = starling_consensus::ShardBlock::new(app.block(height).unwrap().unwrap());
            let ns = format!("epochs/shard/{}", s.0).into_bytes();
            let members = engine::committee_of(app, epoch, &genesis).unwrap();
            engine::verify_finalized(&mut context, &ns, epoch, &members, &block, &cert).unwrap();
            assert!(
                engine::verify_finalized(&mut context, &ns, epoch, &genesis, &block, &cert)
                    .is_err()
            );
            assert!(matches!(
                engine::verify_finalized(&mut context, &ns, epoch - 1, &members, &block, &cert),
                Err(engine::CertificateError::WrongEpoch { .. })
            ));
        }

        // Cut validator 0 off. Committees of five need four votes: the newcomer's among them.
        let cut = keys[0].public_key();
        for other in all.iter().filter(|k| **k != cut) {
            oracle
                .remove_link(cut.clone(), other.clone())
                .await
                .unwrap();
            oracle
                .remove_link(other.clone(), cut.clone())
                .await
                .unwrap();
        }
        let live: Vec<&BTreeMap<ShardId, ShardApp>> = replicas[1..].iter().collect();
        let at_cut: Vec<u64> = SHARDS.iter().map(|s| live[0][s].head().height).collect();
        // Two more epochs on both shards, all with the newcomer in the committee.
        loop {
            let done = live.iter().all(|r| {
                SHARDS
                    .iter()
                    .zip(&at_cut)
                    .all(|(s, h)| r[s].head().height >= h + 2 * EPOCH)
            });
            if done {
                break;
            }
            context.sleep(Duration::from_millis(100)).await;
        }
        agree(&live);
        for s in SHARDS {
            let r = live[0];
            let last = r[&s].head().height / EPOCH;
            for e in first_epoch[&s]..=last {
                assert!(committee(r, s, e).unwrap().contains(&newcomer));
            }
        }

        // The operator retires validator 4: the committees drawn next leave it out. (Validator
        // 0 is back, so the four genesis validators can carry on.)
        for other in all.iter().filter(|k| **k != cut) {
            oracle
                .add_link(cut.clone(), other.clone(), common::link())
                .await
                .unwrap();
            oracle
                .add_link(other.clone(), cut.clone(), common::link())
                .await
                .unwrap();
        }
        for r in &replicas {
            r[&home].submit(tx(1, Action::RetireValidator)).unwrap();
        }
        loop {
            let left = replicas.iter().all(|r| {
                SHARDS.iter().all(|s| {
                    let epoch = r[s].head().height / EPOCH;
                    committee(r, *s, epoch).is_some_and(|c| c.len() == 4 && !c.contains(&newcomer))
                        && r[s].head().height >= epoch * EPOCH + 2
                })
            });
            if left {
                break;
            }
            context.sleep(Duration::from_millis(100)).await;
        }
        agree(&replicas.iter().collect::<Vec<_>>());
        // Rule R1: every proposer is a registered validator, so the first global block of
        // every epoch carries an onion layer (a commitment or a reveal), and the seeds are
        // drawn from them.
        let global = &replicas[1][&ShardId(0)];
        let layered: std::collections::BTreeSet<u64> = (1..=global.head().height)
            .filter(|h| global.block(*h).unwrap().unwrap().header.reveal != Hash::ZERO)
            .map(|h| h / EPOCH)
            .collect();
        let epochs: std::collections::BTreeSet<u64> = (0..=global.head().height / EPOCH).collect();
        assert_eq!(layered, epochs, "an epoch without an onion layer");
        let chain: Vec<Hash> = (1..=replicas[1][&ShardId(0)].head().height.min(3 * EPOCH))
            .map(|h| {
                replicas[1][&ShardId(0)]
                    .block(h)
                    .unwrap()
                    .unwrap()
                    .header
                    .id()
            })
            .collect();
        drop(replicas);
        drop(marshals);
        drop(dirs);
        chain
    })
}

#[test]
fn n5_a_validator_joins_and_leaves_the_committees_at_epoch_boundaries() {
    let first = run(41);
    assert_eq!(first, run(41), "same seed, same run");
}

/// Every validator crashes in the middle of epoch 1 and restarts from its stores and journals:
/// each resumes the epoch its finalized height is in, and the shards go on through later
/// epochs in agreement.
#[test]
fn n4_crash_and_restart_across_epoch_boundaries() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<std::path::PathBuf> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
    let config = deterministic::Config::default()
        .with_seed(43)
        .with_timeout(Some(Duration::from_secs(600)));
    let first = paths.clone();
    let (before, checkpoint) =
        deterministic::Runner::new(config).start_and_recover(|context| async move {
            let keys = keys();
            let all = Set::from_iter_dedup(keys[..4].iter().map(|k| k.public_key()));
            let oracle = network(&context, &all).await;
            let mut replicas = Vec::new();
            for (key, dir) in keys.iter().zip(&first) {
                replicas.push(start_validator(&context, &oracle, key, dir).await.0);
            }
            while replicas.iter().any(|r| {
                SHARDS
                    .iter()
                    .any(|s| r[s].head().height < EPOCH + EPOCH / 2)
            }) {
                context.sleep(Duration::from_millis(50)).await;
            }
            agree(&replicas.iter().collect::<Vec<_>>());
            replicas[0][&ShardId(0)].head().height
        });
    deterministic::Runner::from(checkpoint).start(|context| async move {
        let keys = keys();
        let all = Set::from_iter_dedup(keys[..4].iter().map(|k| k.public_key()));
        let oracle = network(&context, &all).await;
        let mut replicas = Vec::new();
        for (key, dir) in keys.iter().zip(&paths) {
            let r = start_validator(&context, &oracle, key, dir).await.0;
            assert!(
                r[&ShardId(0)].head().height >= EPOCH,
                "restarted in epoch 1 or later"
            );
            replicas.push(r);
        }
        while replicas.iter().any(|r| {
            SHARDS
                .iter()
                .any(|s| r[s].head().height < before + 3 * EPOCH)
        }) {
            context.sleep(Duration::from_millis(50)).await;
        }
        agree(&replicas.iter().collect::<Vec<_>>());
    });
    drop(dirs);
}
