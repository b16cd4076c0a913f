//! n4f0: four validators of one shard run simplex + marshal over a simulated network in the
//! deterministic runtime, finalizing Starling blocks that carry real transactions.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use commonware_broadcast::buffered;
use commonware_consensus::marshal::{
    self,
    core::Actor,
    resolver::p2p as resolver,
    standard::{Inline, Standard},
};
use commonware_consensus::simplex::{self, elector::RoundRobin, scheme::ed25519::Scheme};
use commonware_consensus::types::{Epoch, FixedEpocher, ViewDelta};
use commonware_consensus::Reporter;
use commonware_cryptography::{
    certificate::{ConstantProvider, Verifier as CertVerifier},
    ed25519, Signer as _,
};
use commonware_p2p::simulated::{self, Link, Network};
use commonware_parallel::Sequential;
use commonware_runtime::{
    buffer::paged::CacheRef, deterministic, Clock as _, Quota, Runner as _, Supervisor as _,
};
use commonware_storage::archive::immutable;
use commonware_utils::{ordered::Set, NZDuration, NZUsize, NZU16, NZU32, NZU64};
use starling_consensus::{ShardApp, ShardBlock};
use starling_crypto::SecretKey;
use starling_ledger::LedgerParams;
use starling_mempool::{Mempool, MempoolConfig};
use starling_store::ChainStore;
use starling_types::{Action, Asset, ChainId, KeyType, ShardId, ShardMap, Tx, TxBody};
use std::time::Duration;

const NAMESPACE: &[u8] = b"starling-simnet";
const QUOTA: Quota = Quota::per_second(NZU32!(10_000));

/// Forwards simplex activity to marshal and to the `Inline` wrapper.
#[derive(Clone)]
struct Both<A: Reporter, B: Reporter<Activity = A::Activity>>(A, B);

impl<A: Reporter, B: Reporter<Activity = A::Activity>> Reporter for Both<A, B>
where
    A::Activity: Clone,
{
    type Activity = A::Activity;
    fn report(&mut self, activity: Self::Activity) -> commonware_actor::Feedback {
        let _ = self.0.report(activity.clone());
        self.1.report(activity)
    }
}

/// Settings of one of marshal's archives.
fn archive<C>(prefix: &str, name: &str, codec: C, page_cache: &CacheRef) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{prefix}-{name}-metadata"),
        freezer_table_partition: format!("{prefix}-{name}-table"),
        freezer_table_initial_size: 64,
        freezer_table_resize_frequency: 10,
        freezer_table_resize_chunk_size: 10,
        freezer_key_partition: format!("{prefix}-{name}-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: format!("{prefix}-{name}-value"),
        freezer_value_target_size: 1024 * 1024,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        items_per_section: NZU64!(10),
        codec_config: codec,
        replay_buffer: NZUsize!(1024 * 1024),
        freezer_key_write_buffer: NZUsize!(1024 * 1024),
        freezer_value_write_buffer: NZUsize!(1024 * 1024),
        ordinal_write_buffer: NZUsize!(1024 * 1024),
    }
}

fn params() -> LedgerParams {
    let f = (0..3u8)
        .map(|i| {
            SecretKey::from_seed(KeyType::Ed25519, &[60 + i; 32])
                .unwrap()
                .public_key()
        })
        .collect();
    LedgerParams::devnet(ChainId::new("simnet").unwrap(), 1, f).unwrap()
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
        max_fee: u128::MAX,
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

/// Runs four validators until each has finalized `target` blocks; returns the finalized
/// chain (block ids by height) every validator agrees on.
fn run_n4f0(seed: u64, target: u64) -> Vec<starling_types::Hash> {
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(120))),
    );
    runner.start(|context| async move {
        let n = 4u32;
        let keys: Vec<ed25519::PrivateKey> =
            (0..n as u64).map(ed25519::PrivateKey::from_seed).collect();
        let participants: Set<ed25519::PublicKey> =
            Set::from_iter_dedup(keys.iter().map(|k| k.public_key()));
        let (network, oracle) = Network::new_with_peers(
            context.child("network"),
            simulated::Config {
                max_size: 8 * 1024 * 1024,
                max_peers_per_set: NZUsize!(n as usize),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(1),
            },
            participants.clone(),
        )
        .await;
        network.start();
        let link = Link {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(1),
            success_rate: commonware_utils::probability!(1.0),
        };
        for a in participants.iter() {
            for b in participants.iter() {
                if a != b {
                    oracle
                        .add_link(a.clone(), b.clone(), link.clone())
                        .await
                        .unwrap();
                }
            }
        }

        let alloc: Vec<_> = users()
            .iter()
            .map(|k| (k.public_key(), Asset::Spend, 1u128 << 80))
            .collect();
        let mut apps = Vec::new();
        let mut dirs = Vec::new();
        for key in &keys {
            let me = key.public_key();
            let ctx = context.child("validator").with_attribute("key", &me);
            let dir = tempfile::tempdir().unwrap();
            let store =
                ChainStore::create(dir.path(), params(), ShardId(1), &alloc, 1 << 60, 8).unwrap();
            dirs.push(dir);
            let app = ShardApp::new(
                store,
                Mempool::new(
                    MempoolConfig::default(),
                    ShardId(1),
                    ShardMap::even(1).unwrap(),
                ),
                1_000,
            );
            let genesis = app.start_block().unwrap();
            let scheme = Scheme::signer(NAMESPACE, participants.clone(), key.clone()).unwrap();
            let provider = ConstantProvider::new(scheme.clone());
            let epocher = FixedEpocher::new(NZU64!(1_000_000));
            let control = oracle.control(me.clone());
            let votes = control.register(0, QUOTA).await.unwrap();
            let certificates = control.register(1, QUOTA).await.unwrap();
            let simplex_resolver = control.register(2, QUOTA).await.unwrap();
            let backfill = control.register(3, QUOTA).await.unwrap();
            let broadcast = control.register(4, QUOTA).await.unwrap();

            let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(64));
            let config = marshal::Config {
                provider,
                epocher: epocher.clone(),
                start: marshal::Start::Genesis(commonware_cryptography::Digested::precomputed(
                    genesis.clone(),
                    commonware_cryptography::Digestible::digest(&genesis),
                )),
                mailbox_size: NZUsize!(1024),
                view_retention: ViewDelta::new(10),
                max_repair: NZUsize!(10),
                max_pending_acks: NZUsize!(1),
                block_codec_config: (),
                partition_prefix: format!("v{me}"),
                prunable_items_per_section: NZU64!(10),
                replay_buffer: NZUsize!(1024 * 1024),
                key_write_buffer: NZUsize!(1024 * 1024),
                value_write_buffer: NZUsize!(1024 * 1024),
                page_cache: page_cache.clone(),
                strategy: Sequential,
            };
            let resolver = resolver::init(
                ctx.child("resolver"),
                resolver::Config {
                    public_key: me.clone(),
                    peer_provider: oracle.manager(),
                    blocker: oracle.control(me.clone()),
                    mailbox_size: config.mailbox_size,
                    fetch_timeout: NZDuration!(Duration::from_secs(2)),
                    fetch_retry_delay: Duration::from_millis(100),
                    priority_requests: false,
                    priority_responses: false,
                },
                backfill,
            );
            let (broadcast_engine, buffer) = buffered::Engine::new(
                ctx.child("broadcast"),
                buffered::Config {
                    public_key: me.clone(),
                    mailbox_size: config.mailbox_size,
                    deque_size: 10,
                    priority: false,
                    codec_config: (),
                    peer_provider: oracle.manager(),
                    strategy: Sequential,
                },
            );
            broadcast_engine.start(broadcast);
            let finalizations = immutable::Archive::init(
                ctx.child("finalizations"),
                archive(
                    &config.partition_prefix,
                    "finalizations",
                    <Scheme as CertVerifier>::certificate_codec_config_unbounded(),
                    &page_cache,
                ),
            )
            .await
            .unwrap();
            let blocks = immutable::Archive::init(
                ctx.child("blocks"),
                archive(&config.partition_prefix, "blocks", (), &page_cache),
            )
            .await
            .unwrap();
            let (actor, mailbox, _floor): (
                _,
                marshal::core::Mailbox<Scheme, Standard<ShardBlock>>,
                _,
            ) = Actor::init(ctx.child("marshal"), finalizations, blocks, config).await;
            actor.start(app.clone(), buffer, resolver);

            let inline = Inline::new(ctx.child("inline"), app.clone(), mailbox.clone(), epocher);
            let engine = simplex::Engine::new(
                ctx.child("engine"),
                simplex::config::Config {
                    scheme,
                    elector: RoundRobin::<commonware_cryptography::Sha256>::default(),
                    blocker: oracle.control(me.clone()),
                    automaton: inline.clone(),
                    relay: inline.clone(),
                    reporter: Both(mailbox.clone(), inline.clone()),
                    strategy: Sequential,
                    partition: format!("v{me}-simplex"),
                    mailbox_size: NZUsize!(1024),
                    epoch: Epoch::zero(),
                    floor: simplex::config::Floor::Genesis(
                        commonware_cryptography::Digestible::digest(&genesis),
                    ),
                    leader_timeout: Duration::from_secs(1),
                    certification_timeout: Duration::from_secs(2),
                    timeout_retry: Duration::from_secs(5),
                    fetch_timeout: NZDuration!(Duration::from_secs(1)),
                    fetch_retry_delay: Duration::from_millis(100),
                    view_retention: ViewDelta::new(10),
                    skip: simplex::config::SkipPolicy::Disabled,
                    replay_buffer: NZUsize!(1024 * 1024),
                    write_buffer: NZUsize!(1024 * 1024),
                    page_cache: page_cache.clone(),
                    forward: simplex::config::ForwardPolicy::Disabled,
                    track_historical_votes: false,
                },
            );
            engine.start(votes, certificates, simplex_resolver);
            apps.push(app);
        }

        // Users submit posts to every validator's mempool; whoever leads includes them.
        for (i, u) in users().iter().enumerate() {
            for app in &apps {
                app.submit(post(u, 0))
                    .unwrap_or_else(|e| panic!("user {i}: {e}"));
            }
        }

        // Wait (in simulated time) until every validator has finalized `target` blocks.
        while apps.iter().any(|a| a.head().height < target) {
            context.sleep(Duration::from_millis(100)).await;
        }
        // Safety: every validator holds the same block at every height.
        let mut chain = Vec::new();
        for h in 1..=target {
            let ids: Vec<_> = apps
                .iter()
                .map(|a| a.block(h).unwrap().expect("finalized block").header.id())
                .collect();
            assert!(
                ids.windows(2).all(|w| w[0] == w[1]),
                "validators disagree at height {h}"
            );
            chain.push(ids[0]);
        }
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
        drop(dirs);
        chain
    })
}

#[test]
fn n4f0_finalizes_blocks_with_transactions() {
    let chain = run_n4f0(7, 10);
    assert_eq!(chain.len(), 10);
}

#[test]
fn n4f0_same_seed_same_run() {
    assert_eq!(run_n4f0(11, 6), run_n4f0(11, 6));
}
