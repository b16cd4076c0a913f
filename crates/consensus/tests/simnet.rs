//! Shard consensus in deterministic simulation, named by topology: four validators of one
//! shard run simplex + marshal (`starling_consensus::engine`) over a simulated network and
//! finalize Starling blocks that carry real transactions.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::{channels, committee, equivocation, network, Twin, QUOTA};
use commonware_consensus::simplex::scheme::ed25519::Scheme;
use commonware_cryptography::{ed25519, Signer as _};
use commonware_p2p::simulated;
use commonware_runtime::{deterministic, Clock as _, Runner as _, Supervisor as _};
use commonware_utils::ordered::Set;
use starling_consensus::engine::{self, EngineConfig};
use starling_consensus::ShardApp;
use starling_crypto::SecretKey;
use starling_ledger::LedgerParams;
use starling_mempool::{Mempool, MempoolConfig};
use starling_store::ChainStore;
use starling_types::{Action, Asset, Hash, KeyType, ShardId, ShardMap, Tx, TxBody};
use std::sync::Arc;
use std::time::Duration;

const NAMESPACE: &[u8] = b"starling-simnet/shard-1";

fn params() -> LedgerParams {
    starling_testkit::devnet_params("simnet", 1, 60)
}

fn users() -> Vec<SecretKey> {
    (1..=4u8)
        .map(|i| SecretKey::from_seed(KeyType::Ed25519, &[i; 32]).unwrap())
        .collect()
}

fn post(k: &SecretKey, nonce: u64) -> Tx {
    let p = params();
    let body = TxBody {
        account: k.public_key(),
        nonce,
        max_fee: 1_000_000_000_000,
        tip: 1,
        expires_at_height: 1_000,
        action: Action::Post {
            text: format!("post {nonce}"),
            reply_to: None,
            quote_of: None,
            langs: vec![],
        },
    };
    Tx::parse(&p.chain_id, k.sign_tx(&p.chain_id, &body)).unwrap()
}

/// Runs a committee of four, of which `offline` never start, until every running validator
/// has finalized `target` blocks; checks they agree at every height and that every user's post
/// was finalized exactly once; returns the chain of block ids.
fn run_n4(seed: u64, offline: usize, target: u64) -> Vec<Hash> {
    run_n4_with(seed, offline, target, false)
}

/// Starts validator `key` on the store in `dir` (created on first use).
async fn start_validator(
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ed25519::PublicKey, deterministic::Context>,
    participants: &Set<ed25519::PublicKey>,
    key: &ed25519::PrivateKey,
    dir: &std::path::Path,
) -> (ShardApp, engine::Marshal) {
    start_validator_as(context, oracle, participants, key, dir, false).await
}

/// As [`start_validator`]; a `byzantine` validator, whenever it votes for a block it proposed,
/// also signs and sends a vote for a second valid block of the same view
/// ([`ShardApp::sibling`]).
async fn start_validator_as(
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ed25519::PublicKey, deterministic::Context>,
    participants: &Set<ed25519::PublicKey>,
    key: &ed25519::PrivateKey,
    dir: &std::path::Path,
    byzantine: bool,
) -> (ShardApp, engine::Marshal) {
    let me = key.public_key();
    let alloc: Vec<_> = users()
        .iter()
        .map(|k| (k.public_key(), Asset::Spend, 1u128 << 80))
        .collect();
    let store = match ChainStore::open(dir) {
        Ok(s) => s,
        Err(starling_store::StoreError::NotInitialized(_)) => {
            ChainStore::create(dir, params(), ShardId(1), &alloc, 1 << 60, 8).unwrap()
        }
        Err(e) => panic!("{e}"),
    };
    let mempool = Mempool::new(
        MempoolConfig::default(),
        ShardId(1),
        ShardMap::even(1).unwrap(),
    );
    let app = ShardApp::new(store, mempool, 1_000);
    let control = oracle.control(me.clone());
    let votes: Twin = if byzantine {
        equivocation(app.clone(), NAMESPACE, participants, key)
    } else {
        Arc::new(|_| None)
    };
    let channels = channels(&control, 0, votes).await;
    let config = EngineConfig {
        namespace: NAMESPACE.to_vec(),
        participants: participants.clone(),
        signer: key.clone(),
        partition_prefix: format!("v{me}"),
        leader_timeout: Duration::from_secs(1),
        certification_timeout: Duration::from_secs(2),
    };
    let ctx = context.child("validator").with_attribute("key", &me);
    let marshal = engine::start(
        ctx,
        config,
        app.clone(),
        oracle.manager(),
        oracle.control(me),
        channels,
    )
    .await
    .unwrap();
    (app, marshal)
}

/// Waits until every app has finalized `target` blocks; checks agreement; returns the chain.
async fn finalized_chain(
    context: &deterministic::Context,
    apps: &[ShardApp],
    target: u64,
) -> Vec<Hash> {
    while apps.iter().any(|a| a.head().height < target) {
        context.sleep(Duration::from_millis(100)).await;
    }
    (1..=target)
        .map(|h| {
            let ids: Vec<_> = apps
                .iter()
                .map(|a| a.block(h).unwrap().expect("finalized block").header.id())
                .collect();
            assert!(
                ids.windows(2).all(|w| w[0] == w[1]),
                "validators disagree at height {h}"
            );
            ids[0]
        })
        .collect()
}

/// As [`run_n4`]; with `partition`, the network is first split 2/2 (no quorum on either side)
/// until no validator could finalize for a while, then healed.
fn run_n4_with(seed: u64, offline: usize, target: u64, partition: bool) -> Vec<Hash> {
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(300))),
    );
    runner.start(|context| async move {
        let (keys, participants) = committee();
        let oracle = network(&context, &participants).await;
        let link = common::link();
        let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut apps = Vec::new();
        for (key, dir) in keys.iter().zip(&dirs).skip(offline) {
            apps.push(
                start_validator(&context, &oracle, &participants, key, dir.path())
                    .await
                    .0,
            );
        }

        if partition {
            let halves = |a: usize, b: usize| (a < 2) != (b < 2);
            let peers: Vec<_> = participants.iter().cloned().collect();
            for (i, a) in peers.iter().enumerate() {
                for (j, b) in peers.iter().enumerate() {
                    if i != j && halves(i, j) {
                        oracle.remove_link(a.clone(), b.clone()).await.unwrap();
                    }
                }
            }
            // Ten simulated seconds split: neither half has a quorum, so nothing finalizes.
            context.sleep(Duration::from_secs(10)).await;
            assert!(
                apps.iter().all(|a| a.head().height == 0),
                "a minority finalized a block"
            );
            for (i, a) in peers.iter().enumerate() {
                for (j, b) in peers.iter().enumerate() {
                    if i != j && halves(i, j) {
                        oracle
                            .add_link(a.clone(), b.clone(), link.clone())
                            .await
                            .unwrap();
                    }
                }
            }
        }

        // Users submit posts to every running validator's mempool; whoever leads includes them.
        for (i, u) in users().iter().enumerate() {
            for app in &apps {
                app.submit(post(u, 0))
                    .unwrap_or_else(|e| panic!("user {i}: {e}"));
            }
        }

        let chain = finalized_chain(&context, &apps, target).await;
        // The users' posts were finalized, once each, on every replica.
        for u in users() {
            for app in &apps {
                assert_eq!(app.nonce(&u.public_key()), 1);
            }
        }
        let txs: usize = (1..=target)
            .map(|h| apps[0].block(h).unwrap().unwrap().txs.len())
            .sum();
        assert_eq!(txs, 4, "each post is included exactly once");
        drop(apps);
        drop(dirs);
        chain
    })
}

#[test]
fn n4f0_finalizes_blocks_with_transactions() {
    assert_eq!(run_n4(7, 0, 10).len(), 10);
}

#[test]
fn n4f1_keeps_finalizing_with_one_validator_down() {
    assert_eq!(run_n4(9, 1, 8).len(), 8);
}

#[test]
fn n4f0_partition_heals_and_converges() {
    assert_eq!(run_n4_with(13, 0, 6, true).len(), 6);
}

#[test]
fn n4f0_same_seed_same_run() {
    assert_eq!(run_n4(11, 0, 6), run_n4(11, 0, 6));
}

#[test]
fn n4f0_crash_and_restart_loses_no_finalized_block() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<std::path::PathBuf> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
    let config = deterministic::Config::default()
        .with_seed(17)
        .with_timeout(Some(Duration::from_secs(300)));
    let first_paths = paths.clone();
    let (before, checkpoint) =
        deterministic::Runner::new(config).start_and_recover(|context| async move {
            let (keys, participants) = committee();
            let oracle = network(&context, &participants).await;
            let mut apps = Vec::new();
            for (key, dir) in keys.iter().zip(&first_paths) {
                apps.push(
                    start_validator(&context, &oracle, &participants, key, dir)
                        .await
                        .0,
                );
            }
            for u in users() {
                for app in &apps {
                    app.submit(post(&u, 0)).unwrap();
                }
            }
            finalized_chain(&context, &apps, 5).await
        });
    // Every validator crashed at once; all come back from their journals and stores.
    let after = deterministic::Runner::from(checkpoint).start(|context| async move {
        let (keys, participants) = committee();
        let oracle = network(&context, &participants).await;
        let mut apps = Vec::new();
        for (key, dir) in keys.iter().zip(&paths) {
            apps.push(
                start_validator(&context, &oracle, &participants, key, dir)
                    .await
                    .0,
            );
        }
        for app in &apps {
            assert!(
                app.head().height >= 5,
                "a finalized block was lost in the crash"
            );
        }
        finalized_chain(&context, &apps, 10).await
    });
    assert_eq!(
        &after[..5],
        &before[..],
        "the chain after the restart extends the one before"
    );
    drop(dirs);
}

/// One run with validator 0 equivocating: when it leads, it sends conflicting notarize votes
/// (for payloads that are not blocks) to different peers. Honest validators cannot verify those
/// payloads, so they never notarize them and the view is skipped; safety and progress must hold,
/// and only the equivocator may ever be blocked. (No honest validator sees both of its votes,
/// so there is nothing to record; an equivocator that proposes two valid blocks is caught in
/// [`run_with_equivocating_proposer`].)
fn run_with_equivocator(seed: u64) {
    let config = deterministic::Config::default()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(300)));
    deterministic::Runner::new(config).start(|context| async move {
        use commonware_consensus::simplex::{elector::RoundRobin, mocks, scheme::ed25519::Scheme};
        let (keys, participants) = committee();
        let oracle = network(&context, &participants).await;
        let byzantine = keys[0].public_key();
        let control = oracle.control(byzantine.clone());
        // Validators speak on one sub-channel per epoch; the equivocator speaks in epoch 0.
        use commonware_p2p::utils::mux::Muxer;
        let (votes, mut votes_mux) = {
            let (s, r) = control.register(0, QUOTA).await.unwrap();
            Muxer::new(context.child("votes_mux"), s, r)
        };
        votes.start();
        let (certificates, mut certificates_mux) = {
            let (s, r) = control.register(1, QUOTA).await.unwrap();
            Muxer::new(context.child("certificates_mux"), s, r)
        };
        certificates.start();
        let votes = votes_mux.register(0).await.unwrap();
        let certificates = certificates_mux.register(0).await.unwrap();
        let equivocator = mocks::equivocator::Equivocator::new(
            context.child("byzantine"),
            mocks::equivocator::Config::<_, _, commonware_cryptography::Blake3> {
                scheme: Scheme::signer(NAMESPACE, participants.clone(), keys[0].clone()).unwrap(),
                elector: RoundRobin::<commonware_cryptography::Sha256>::default(),
                epoch: commonware_consensus::types::Epoch::zero(),
                relay: std::sync::Arc::new(mocks::relay::Relay::new()),
            },
        );
        equivocator.start(votes, certificates);

        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut apps = Vec::new();
        for (key, dir) in keys[1..].iter().zip(&dirs) {
            apps.push(
                start_validator(&context, &oracle, &participants, key, dir.path())
                    .await
                    .0,
            );
        }
        for u in users() {
            for app in &apps {
                app.submit(post(&u, 0)).unwrap();
            }
        }
        // Safety and liveness: the honest three agree at every height and keep finalizing.
        finalized_chain(&context, &apps, 8).await;
        for u in users() {
            for app in &apps {
                assert_eq!(app.nonce(&u.public_key()), 1);
            }
        }
        // Only the equivocator is ever blocked, and only by honest validators.
        let blocked = oracle.blocked().await.unwrap();
        for (by, who) in &blocked {
            assert_ne!(by, &byzantine);
            assert_eq!(who, &byzantine);
        }
        drop(apps);
        drop(dirs);
    })
}

#[test]
fn n4f1_equivocator_cannot_break_safety() {
    for seed in 0..3u64 {
        run_with_equivocator(100 + seed);
    }
}

/// n4f1 with a Byzantine proposer of two valid blocks: validator 0 runs the full stack, and
/// whenever it leads it signs a notarize vote for its block and another for a sibling block of
/// the same view. Every honest validator records the pair as evidence (verifiable by anyone
/// against the committee), blocks the equivocator, and the honest three agree at every height
/// and keep finalizing. Returns the chain and the evidence, for the same-seed check.
fn run_with_equivocating_proposer(seed: u64) -> (Vec<Hash>, Vec<Vec<u8>>) {
    use commonware_codec::{Decode as _, DecodeExt as _};
    use commonware_consensus::simplex::types::{Activity, Notarize};
    use commonware_cryptography::blake3::Digest;
    use commonware_cryptography::certificate::Verifier as _;
    let config = deterministic::Config::default()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(300)));
    deterministic::Runner::new(config).start(|mut context| async move {
        let (keys, participants) = committee();
        let oracle = network(&context, &participants).await;
        let byzantine = keys[0].public_key();
        let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut apps = Vec::new();
        for (i, (key, dir)) in keys.iter().zip(&dirs).enumerate() {
            let (app, _) =
                start_validator_as(&context, &oracle, &participants, key, dir.path(), i == 0).await;
            apps.push(app);
        }
        for u in users() {
            for app in &apps {
                app.submit(post(&u, 0)).unwrap();
            }
        }
        let honest = &apps[1..];
        // The equivocator leads every fourth view; wait until each honest validator caught it.
        while honest.iter().any(|a| a.evidence().unwrap().is_empty()) {
            context.sleep(Duration::from_millis(100)).await;
        }
        let chain = finalized_chain(&context, honest, 12).await;
        for u in users() {
            for app in honest {
                assert_eq!(app.nonce(&u.public_key()), 1, "each post finalized once");
            }
        }

        let verifier = Scheme::verifier(NAMESPACE, participants.clone());
        let liar = commonware_consensus::types::Participant::from_usize(
            participants.position(&byzantine).unwrap(),
        );
        let liar_account = starling_consensus::account_of(&byzantine);
        let mut all = Vec::new();
        for app in honest {
            for bytes in app.evidence().unwrap() {
                let activity = Activity::<Scheme, Digest>::decode_cfg(
                    bytes::Bytes::copy_from_slice(&bytes),
                    &verifier.certificate_codec_config(),
                )
                .unwrap();
                let Activity::ConflictingNotarize(fault) = activity else {
                    panic!("unexpected evidence {activity:?}");
                };
                assert!(fault.verify(&mut context, &verifier, &commonware_parallel::Sequential));
                assert_eq!(
                    commonware_consensus::simplex::types::Attributable::signer(&fault),
                    liar
                );
                // The two votes name two different blocks of one round; the one that was
                // finalized is the equivocator's own block.
                let (first, second) =
                    <(Notarize<Scheme, Digest>, Notarize<Scheme, Digest>)>::decode(
                        bytes::Bytes::copy_from_slice(&bytes[1..]),
                    )
                    .unwrap();
                assert_eq!(first.proposal.round, second.proposal.round);
                assert_ne!(first.proposal.payload, second.proposal.payload);
                for h in 1..=app.head().height {
                    let block = app.block(h).unwrap().unwrap();
                    let digest = starling_consensus::digest_of(&block.header.id());
                    if digest == first.proposal.payload || digest == second.proposal.payload {
                        assert_eq!(block.header.proposer, liar_account);
                    }
                }
                all.push(bytes);
            }
        }
        // Every honest validator cut the equivocator off; nobody blocked an honest one.
        let blocked = oracle.blocked().await.unwrap();
        for (by, who) in &blocked {
            assert_eq!(who, &byzantine, "{by} blocked an honest validator");
        }
        for honest_key in keys[1..].iter().map(|k| k.public_key()) {
            assert!(blocked.contains(&(honest_key.clone(), byzantine.clone())));
        }
        drop(apps);
        drop(dirs);
        (chain, all)
    })
}

#[test]
fn n4f1_equivocating_proposer_of_two_valid_blocks_is_recorded_and_blocked() {
    let first = run_with_equivocating_proposer(7);
    assert_eq!(
        first,
        run_with_equivocating_proposer(7),
        "same seed, same run"
    );
}

#[test]
fn n4f0_finalization_certificates_verify_against_the_committee() {
    let config = deterministic::Config::default()
        .with_seed(31)
        .with_timeout(Some(Duration::from_secs(300)));
    deterministic::Runner::new(config).start(|mut context| async move {
        let (keys, participants) = committee();
        let oracle = network(&context, &participants).await;
        let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut nodes = Vec::new();
        for (key, dir) in keys.iter().zip(&dirs) {
            nodes.push(start_validator(&context, &oracle, &participants, key, dir.path()).await);
        }
        let apps: Vec<ShardApp> = nodes.iter().map(|n| n.0.clone()).collect();
        finalized_chain(&context, &apps, 3).await;
        let marshal = &nodes[1].1;
        let cert = |h: u64| {
            let marshal = marshal.clone();
            async move {
                let f = marshal
                    .get_finalization(commonware_consensus::types::Height::new(h))
                    .await
                    .expect("finalization kept");
                commonware_codec::Encode::encode(&f).to_vec()
            }
        };
        let block =
            |h: u64| starling_consensus::ShardBlock::new(apps[0].block(h).unwrap().unwrap());
        let (c2, c3) = (cert(2).await, cert(3).await);
        // The right certificate for the right block, from the right committee.
        engine::verify_finalized(&mut context, NAMESPACE, 0, &participants, &block(2), &c2)
            .unwrap();
        // Another block's certificate, another namespace, another committee, tampered bytes.
        assert!(matches!(
            engine::verify_finalized(&mut context, NAMESPACE, 0, &participants, &block(2), &c3),
            Err(engine::CertificateError::WrongBlock)
        ));
        assert!(matches!(
            engine::verify_finalized(&mut context, NAMESPACE, 1, &participants, &block(2), &c2),
            Err(engine::CertificateError::WrongEpoch {
                expected: 1,
                got: 0
            })
        ));
        assert!(matches!(
            engine::verify_finalized(
                &mut context,
                b"another-shard",
                0,
                &participants,
                &block(2),
                &c2
            ),
            Err(engine::CertificateError::BadSignatures)
        ));
        let strangers = Set::from_iter_dedup(
            (10..14u64).map(|i| ed25519::PrivateKey::from_seed(i).public_key()),
        );
        assert!(
            engine::verify_finalized(&mut context, NAMESPACE, 0, &strangers, &block(2), &c2)
                .is_err()
        );
        let mut bad = c2.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(engine::verify_finalized(
            &mut context,
            NAMESPACE,
            0,
            &participants,
            &block(2),
            &bad
        )
        .is_err());
        assert!(matches!(
            engine::verify_finalized(
                &mut context,
                NAMESPACE,
                0,
                &participants,
                &block(2),
                &c2[..10]
            ),
            Err(engine::CertificateError::Malformed(_))
        ));
        drop(dirs);
    });
}
