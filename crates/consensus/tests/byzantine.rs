//! The Byzantine suite: four validators of one shard in deterministic simulation, one of them
//! honest except for one thing. In every run the three honest validators keep agreeing and
//! finalizing, and every store reopens afterwards. Seeds are fixed; the same seed gives the
//! same run.
//!
//! - a proposer that slips a forged signature into its block (rule B3), either claiming it
//!   applies or building the block as an honest node would have at `b334716` (where the block
//!   stayed valid with a `BadSignature` receipt, and every replay of it failed);
//! - transactions signed with an identity `R` or a mixed-order `R`: valid under ZIP-215, so
//!   every honest validator gives the same verdict whatever shares its batch (rule B3, and the
//!   signature rule of invariant 10);
//! - a proposer that stamps its block a day ahead (rule B7): at `b334716` it was valid, and
//!   every honest proposer after it waited for the wall clock to pass it;
//! - a flood of transactions from fresh, unfunded keys (mempool rule P1);
//! - on the global shard, a proposer that withholds or fakes its onion layer (rule R1).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

mod common;

use common::edge::{edge_signature, IDENTITY, ORDER_TWO};
use common::{channels, committee, network};
use commonware_cryptography::{ed25519, Signer as _};
use commonware_p2p::simulated;
use commonware_runtime::{deterministic, Clock as _, Runner as _, Supervisor as _};
use commonware_utils::ordered::Set;
use starling_consensus::engine::{self, EngineConfig};
use starling_consensus::{ShardApp, Tamper};
use starling_crypto::SecretKey;
use starling_ledger::LedgerParams;
use starling_mempool::{Mempool, MempoolConfig};
use starling_store::ChainStore;
use starling_types::tx::signing_hash;
use starling_types::{Action, Asset, Hash, KeyType, ShardId, ShardMap, Tx, TxBody, TxEnvelope};
use std::sync::Arc;
use std::time::Duration;

const NAMESPACE: &[u8] = b"starling-byzantine/shard-1";

fn params() -> LedgerParams {
    starling_testkit::devnet_params("byzantine", 1, 60)
}

fn user(i: u8) -> SecretKey {
    SecretKey::from_seed(KeyType::Ed25519, &[i; 32]).unwrap()
}

/// Funded users 1..=6.
fn users() -> Vec<SecretKey> {
    (1..=6u8).map(user).collect()
}

fn body(k: &SecretKey, nonce: u64, text: &str) -> TxBody {
    TxBody {
        account: k.public_key(),
        nonce,
        max_fee: 1_000_000_000_000,
        tip: 1,
        expires_at_height: 1_000,
        action: Action::Post {
            text: text.into(),
            reply_to: None,
            quote_of: None,
            langs: vec![],
        },
    }
}

fn post(k: &SecretKey, nonce: u64, text: &str) -> Tx {
    let p = params();
    Tx::parse(&p.chain_id, k.sign_tx(&p.chain_id, &body(k, nonce, text))).unwrap()
}

fn signed_with(k: &SecretKey, nonce: u64, text: &str, torsion: &str, with_base: bool) -> Tx {
    let p = params();
    let body_bytes = starling_types::Encode::to_bytes(&body(k, nonce, text));
    let h = signing_hash(&p.chain_id, &body_bytes);
    let env = TxEnvelope {
        signature: edge_signature(k, h.as_bytes(), torsion, with_base),
        body_bytes,
    };
    Tx::parse(&p.chain_id, env).unwrap()
}

async fn start(
    shard: ShardId,
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ed25519::PublicKey, deterministic::Context>,
    participants: &Set<ed25519::PublicKey>,
    key: &ed25519::PrivateKey,
    dir: &std::path::Path,
    tamper: Option<Tamper>,
) -> ShardApp {
    let me = key.public_key();
    let alloc: Vec<_> = users()
        .iter()
        .map(|k| (k.public_key(), Asset::Spend, 1u128 << 80))
        .collect();
    let store = match ChainStore::open(dir) {
        Ok(s) => s,
        Err(starling_store::StoreError::NotInitialized(_)) if shard == ShardId::GLOBAL => {
            // The global shard, its committee the registry (so rule R1 applies), in epochs
            // short enough that every run crosses several.
            let mut p = params();
            p.epoch_blocks = GLOBAL_EPOCH;
            let keys: Vec<starling_types::PublicKey> = participants
                .iter()
                .map(|k| starling_types::PublicKey::ed25519(k.as_ref().try_into().unwrap()))
                .collect();
            let validators = starling_ledger::GenesisValidators {
                registry: keys
                    .iter()
                    .map(|k| starling_ledger::records::ValidatorInfo {
                        account: *k,
                        consensus_key: *k,
                        address: String::new(),
                    })
                    .collect(),
                committees: [(ShardId::GLOBAL, keys.clone())].into_iter().collect(),
            };
            ChainStore::create_with(dir, p, shard, &alloc, 1 << 60, 8, &validators).unwrap()
        }
        Err(starling_store::StoreError::NotInitialized(_)) => {
            ChainStore::create(dir, params(), shard, &alloc, 1 << 60, 8).unwrap()
        }
        Err(e) => panic!("{e}"),
    };
    let mempool = Mempool::new(MempoolConfig::default(), shard, ShardMap::even(1).unwrap());
    let mut app =
        ShardApp::new(store, mempool, 1_000).with_block_interval(Duration::from_millis(100));
    if let Some(t) = tamper {
        app = app.with_tamper(t);
    }
    let control = oracle.control(me.clone());
    let channels = channels(&control, 0, Arc::new(|_| None)).await;
    let config = EngineConfig {
        namespace: NAMESPACE.to_vec(),
        participants: participants.clone(),
        signer: key.clone(),
        partition_prefix: format!("v{me}"),
        leader_timeout: Duration::from_secs(1),
        certification_timeout: Duration::from_secs(2),
    };
    let ctx = context.child("validator").with_attribute("key", &me);
    engine::start(
        ctx,
        config,
        app.clone(),
        oracle.manager(),
        oracle.control(me),
        channels,
    )
    .await
    .unwrap();
    app
}

/// What one run saw: the honest validators' common chain of ids, the height they reached in
/// the run's simulated time, and every honest block's timestamp.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    chain: Vec<Hash>,
    height: u64,
}

/// Runs four validators for `seconds` of simulated time; validator 0 proposes through
/// `tamper` (or is offline if `tamper` is `None` and `offline` is set). `submit` is offered to
/// every honest validator's pool at the start (refusals are fine); then checks that the honest
/// three agree at every height, that every block's timestamp is within the drift of the time
/// it was finalized, runs `check` on an honest app, and reopens every store.
fn run(
    seed: u64,
    tamper: Option<Tamper>,
    offline: bool,
    submit: Vec<Tx>,
    seconds: u64,
    check: impl FnOnce(&ShardApp) + Send + 'static,
) -> Run {
    run_on(ShardId(1), seed, tamper, offline, submit, seconds, check)
}

/// Blocks per epoch of the global-shard runs.
const GLOBAL_EPOCH: u64 = 12;

/// As [`run`], on `shard`.
fn run_on(
    shard: ShardId,
    seed: u64,
    tamper: Option<Tamper>,
    offline: bool,
    submit: Vec<Tx>,
    seconds: u64,
    check: impl FnOnce(&ShardApp) + Send + 'static,
) -> Run {
    let config = deterministic::Config::default()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(600)));
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<std::path::PathBuf> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
    let run_paths = paths.clone();
    let result = deterministic::Runner::new(config).start(|context| async move {
        let paths = run_paths;
        let (keys, participants) = committee();
        let oracle = network(&context, &participants).await;
        let mut honest = Vec::new();
        for (i, (key, dir)) in keys.iter().zip(&paths).enumerate() {
            if i == 0 {
                if !offline {
                    start(
                        shard,
                        &context,
                        &oracle,
                        &participants,
                        key,
                        dir,
                        tamper.clone(),
                    )
                    .await;
                }
                continue;
            }
            honest.push(start(shard, &context, &oracle, &participants, key, dir, None).await);
        }
        for tx in &submit {
            for app in &honest {
                let _ = app.submit(tx.clone());
            }
        }
        context.sleep(Duration::from_secs(seconds)).await;
        let height = honest.iter().map(|a| a.head().height).min().unwrap();
        assert!(height > 0, "the honest validators finalized nothing");
        let chain: Vec<Hash> = (1..=height)
            .map(|h| {
                let blocks: Vec<_> = honest
                    .iter()
                    .map(|a| a.block(h).unwrap().expect("finalized block"))
                    .collect();
                assert!(
                    blocks.windows(2).all(|w| w[0] == w[1]),
                    "honest validators disagree at height {h}"
                );
                blocks[0].header.id()
            })
            .collect();
        // No block stamped further ahead than the drift allows (nothing at all a day ahead).
        let now_ms = context
            .current()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        for h in 1..=height {
            let stamp = honest[0].block(h).unwrap().unwrap().header.timestamp_ms;
            assert!(
                stamp <= now_ms + starling_consensus::DEFAULT_MAX_DRIFT.as_millis() as u64,
                "block {h} stamped {stamp}, now {now_ms}"
            );
        }
        check(&honest[0]);
        Run { chain, height }
    });
    // Every store, the Byzantine one's too, reopens (replaying its chain).
    for path in &paths {
        if let Err(e) = ChainStore::open(path) {
            assert!(
                matches!(e, starling_store::StoreError::NotInitialized(_)),
                "{}: {e}",
                path.display()
            );
        }
    }
    drop(dirs);
    result
}

/// The baseline of a run: validator 0 offline, the rest the same.
fn baseline(seed: u64, seconds: u64) -> u64 {
    run(seed, None, true, vec![], seconds, |_| {}).height
}

/// Appends a transaction from user 1 whose signature is another's (it is forged).
fn forging(skip_checks: bool) -> Tamper {
    Arc::new(move |input: &mut starling_ledger::BlockInput| {
        let victim = user(1);
        let mut env = victim.sign_tx(&params().chain_id, &body(&victim, 0, "forged"));
        env.signature = user(2).sign(b"something else");
        input.txs.push(env);
        skip_checks
    })
}

const SECONDS: u64 = 20;

#[test]
fn a_forged_signature_in_a_proposal_is_voted_down_and_never_finalized() {
    let normal = baseline(41, SECONDS);
    for skip in [false, true] {
        let seen = run(41, Some(forging(skip)), false, vec![], SECONDS, |app| {
            // The victim's nonce never moved, and no finalized block holds the forgery (at
            // `b334716` one did, with a `BadSignature` receipt).
            assert_eq!(app.nonce(&user(1).public_key()), 0);
            let mut input = starling_ledger::BlockInput {
                height: 0,
                parent: Hash::ZERO,
                timestamp_ms: 0,
                proposer: user(1).public_key(),
                reveal: starling_types::Hash::ZERO,
                txs: vec![],
                inbound: vec![],
            };
            forging(false)(&mut input);
            let forged = input.txs[0].hash();
            for h in 1..=app.head().height {
                let block = app.block(h).unwrap().unwrap();
                assert!(block.txs.iter().all(|t| t.hash() != forged), "block {h}");
            }
        });
        assert!(
            seen.height * 2 >= normal,
            "finalized {} blocks against {normal} with the proposer offline",
            seen.height
        );
    }
}

#[test]
fn identity_and_mixed_order_r_signatures_get_one_verdict_everywhere() {
    // Valid under the rule, checked by every honest validator in a batch with others (and,
    // from the Byzantine proposer, in a batch beside a forged one).
    let txs = vec![
        signed_with(&user(3), 0, "identity R", IDENTITY, false),
        signed_with(&user(4), 0, "mixed-order R", ORDER_TWO, true),
        post(&user(5), 0, "plain"),
    ];
    let tamper: Tamper = Arc::new(|input: &mut starling_ledger::BlockInput| {
        input
            .txs
            .push(signed_with(&user(6), 0, "identity R from the leader", IDENTITY, false).envelope);
        false
    });
    let first = run(
        43,
        Some(tamper.clone()),
        false,
        txs.clone(),
        SECONDS,
        |app| {
            for u in [3, 4, 5] {
                assert_eq!(
                    app.nonce(&user(u).public_key()),
                    1,
                    "user {u} finalized once"
                );
            }
        },
    );
    assert_eq!(
        first,
        run(43, Some(tamper), false, txs, SECONDS, |_| {}),
        "same seed, same run"
    );
}

#[test]
fn a_far_future_timestamp_is_voted_down_and_the_shard_keeps_its_pace() {
    let normal = baseline(47, SECONDS);
    let day_ahead: Tamper = Arc::new(|input: &mut starling_ledger::BlockInput| {
        input.timestamp_ms = input.timestamp_ms.saturating_add(86_400_000);
        false
    });
    let seen = run(47, Some(day_ahead), false, vec![], SECONDS, |_| {});
    assert!(
        seen.height * 2 >= normal,
        "finalized {} blocks against {normal} with the proposer offline",
        seen.height
    );
}

#[test]
fn a_flood_from_fresh_keys_never_reaches_a_block() {
    let fresh: Vec<Tx> = (0..200u32)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            seed[31] = 0xfe;
            let k = SecretKey::from_seed(KeyType::Ed25519, &seed).unwrap();
            post(&k, 0, "junk")
        })
        .collect();
    let mut all = fresh.clone();
    all.push(post(&user(1), 0, "real"));
    let hashes: Vec<Hash> = fresh.iter().map(|t| t.hash).collect();
    run(53, None, true, all, SECONDS, move |app| {
        assert_eq!(app.nonce(&user(1).public_key()), 1);
        assert_eq!(app.mempool_len(), 0, "the junk was never pooled");
        for h in 1..=app.head().height {
            let block = app.block(h).unwrap().unwrap();
            assert!(block.txs.iter().all(|t| !hashes.contains(&t.hash())));
        }
    });
}

/// The baseline of a global-shard run: validator 0 offline.
fn global_baseline(seed: u64, seconds: u64) -> u64 {
    run_on(ShardId::GLOBAL, seed, None, true, vec![], seconds, |_| {}).height
}

/// Rule R1 on the global shard: a proposer that withholds the onion layer it owes, or shows
/// one that is not beneath its head, is voted down, and the honest validators keep
/// finalizing; every epoch still carries honest layers, so its seed comes from them. (Before
/// R1 the seed was the hash of the closing block's parent id, which that parent's proposer
/// chose by choosing its contents.)
#[test]
fn a_proposer_that_withholds_or_fakes_its_onion_layer_is_voted_down() {
    let normal = global_baseline(43, SECONDS);
    let byzantine = {
        let (keys, _) = committee();
        starling_types::PublicKey::ed25519(keys[0].public_key().as_ref().try_into().unwrap())
    };
    for fake in [false, true] {
        let tamper: Tamper = Arc::new(move |input: &mut starling_ledger::BlockInput| {
            input.reveal = if fake {
                Hash::of(&[b"a layer of no onion", &input.height.to_be_bytes()])
            } else {
                Hash::ZERO
            };
            false
        });
        let seen = run_on(
            ShardId::GLOBAL,
            43,
            Some(tamper),
            false,
            vec![],
            SECONDS,
            move |app| {
                let height = app.head().height;
                assert!(height > 2 * GLOBAL_EPOCH, "only {height} blocks");
                let mut by_byzantine = 0;
                let mut layered = std::collections::BTreeSet::new();
                for h in 1..=height {
                    let header = app.block(h).unwrap().unwrap().header;
                    if header.proposer == byzantine {
                        by_byzantine += 1;
                    }
                    if header.reveal != Hash::ZERO {
                        layered.insert(h / GLOBAL_EPOCH);
                    }
                }
                // Withholding, it never gets a block in (its first owes a commitment). Faking, a
                // made-up commitment is indistinguishable from a real one, but then nothing it
                // can show is beneath it: at most that one block.
                assert!(
                    by_byzantine <= usize::from(fake),
                    "{by_byzantine} blocks by it"
                );
                let epochs: std::collections::BTreeSet<u64> = (0..=height / GLOBAL_EPOCH).collect();
                assert_eq!(layered, epochs, "an epoch without an honest layer");
            },
        );
        assert!(
            seen.height * 2 >= normal,
            "finalized {} blocks against {normal} with the proposer offline",
            seen.height
        );
    }
}
