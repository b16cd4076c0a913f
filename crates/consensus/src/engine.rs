//! One shard's consensus stack for one validator: simplex (ordering and finality), marshal
//! (finalized blocks in order, block broadcast, backfill), and the [`ShardApp`].
//!
//! Five channels per validator and shard, on any `commonware-p2p` transport: simplex votes,
//! certificates and resolver, marshal backfill, and block broadcast.
//!
//! Epochs: the shard's heights are cut into epochs of `epoch_blocks` (the ledger's rule E2).
//! Marshal runs across epochs and checks each certificate against its epoch's committee
//! ([`Committees`], read from the finalized state). One simplex instance runs per epoch, on
//! its own sub-channel of the three simplex channels: once this node has finalized the last
//! block of epoch `e`, it starts epoch `e + 1` (with that block as its genesis) and stops
//! `e`. A validator in the epoch's committee votes; one outside it follows as an observer,
//! so it keeps the shard and can join a later committee. A node that sees peers' votes for a
//! later epoch asks them for the boundary block it is missing.

use crate::{ShardApp, ShardBlock};
use commonware_broadcast::buffered;
use commonware_consensus::marshal::{
    self,
    core::Actor,
    resolver::p2p as resolver,
    standard::{Inline, Standard},
};
use commonware_consensus::simplex::{self, elector::RoundRobin, scheme::ed25519::Scheme};
use commonware_consensus::types::{Epoch, Epocher as _, FixedEpocher, Height, ViewDelta};
use commonware_consensus::Reporter;
use commonware_cryptography::certificate::{self, Verifier as _};
use commonware_cryptography::{ed25519, Digested, Digestible, Sha256, Signer as _};
use commonware_p2p::utils::mux::{Builder as _, Muxer};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_storage::archive::immutable;
use commonware_utils::{ordered::Set, vec::NonEmptyVec, NZDuration, NZUsize, NZU16, NZU64};
use starling_store::StoreError;
use starling_types::{Hash, ShardId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one validator needs to join a shard's committee.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Separates this network's and shard's signatures from any other's.
    pub namespace: Vec<u8>,
    /// The committee of epoch 0 (and of every epoch, for a shard created without genesis
    /// committees in its state).
    pub participants: Set<ed25519::PublicKey>,
    pub signer: ed25519::PrivateKey,
    /// Prefix of the engine's storage partitions.
    pub partition_prefix: String,
    pub leader_timeout: Duration,
    pub certification_timeout: Duration,
}

/// The five channels (sender, receiver) of one validator in one shard.
#[derive(Debug)]
pub struct Channels<S, R> {
    pub votes: (S, R),
    pub certificates: (S, R),
    pub resolver: (S, R),
    pub backfill: (S, R),
    pub broadcast: (S, R),
}

/// Forwards simplex activity to marshal and to the `Inline` wrapper.
#[derive(Clone)]
struct Fanout<A, B>(A, B);

impl<A: Reporter, B: Reporter<Activity = A::Activity>> Reporter for Fanout<A, B>
where
    A::Activity: Clone,
{
    type Activity = A::Activity;
    fn report(&mut self, activity: Self::Activity) -> commonware_actor::Feedback {
        let _ = self.0.report(activity.clone());
        self.1.report(activity)
    }
}

/// Keeps simplex's fault reports (conflicting notarize or finalize votes, a nullify and a
/// finalize for the same view) as evidence in the shard's store.
#[derive(Clone)]
struct EvidenceLog(ShardApp);

impl Reporter for EvidenceLog {
    type Activity = simplex::types::Activity<Scheme, commonware_cryptography::blake3::Digest>;
    fn report(&mut self, activity: Self::Activity) -> commonware_actor::Feedback {
        use simplex::types::Activity;
        if matches!(
            activity,
            Activity::ConflictingNotarize(_)
                | Activity::ConflictingFinalize(_)
                | Activity::NullifyFinalize(_)
        ) {
            let bytes = commonware_codec::Encode::encode(&activity);
            match self.0.record_evidence(&bytes) {
                Ok(seq) => tracing::warn!(seq, "recorded evidence of a consensus fault"),
                Err(e) => {
                    tracing::error!(error = %e, "could not record evidence of a consensus fault")
                }
            }
        }
        commonware_actor::Feedback::Ok
    }
}

/// The committee of `epoch` on `app`'s shard, once the block closing the epoch before is
/// finalized there (rule E2). A shard created without committees in its state keeps
/// `genesis` in every epoch.
pub fn committee_of(
    app: &ShardApp,
    epoch: u64,
    genesis: &Set<ed25519::PublicKey>,
) -> Option<Set<ed25519::PublicKey>> {
    match app.epoch_committee(epoch) {
        Some(keys) => Some(Set::from_iter_dedup(keys.iter().filter_map(|k| {
            use commonware_codec::DecodeExt as _;
            ed25519::PublicKey::decode(bytes::Bytes::copy_from_slice(&k.bytes)).ok()
        }))),
        None if app.epoch_committee(0).is_none() => Some(genesis.clone()),
        None => None,
    }
}

/// Every epoch's committee of one shard, from its finalized state (rule E2): the certificate
/// provider marshal checks finalizations with, and the scheme each epoch's simplex runs.
#[derive(Clone)]
pub struct Committees {
    namespace: Vec<u8>,
    signer: ed25519::PrivateKey,
    genesis: Set<ed25519::PublicKey>,
    app: ShardApp,
    schemes: Arc<Mutex<BTreeMap<u64, EpochScheme>>>,
}

/// An epoch's scheme, and whether this validator signs in it (is in its committee).
type EpochScheme = (Arc<Scheme>, bool);

impl std::fmt::Debug for Committees {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committees")
            .field("namespace", &String::from_utf8_lossy(&self.namespace))
            .finish_non_exhaustive()
    }
}

impl Committees {
    pub fn new(
        namespace: Vec<u8>,
        signer: ed25519::PrivateKey,
        genesis: Set<ed25519::PublicKey>,
        app: ShardApp,
    ) -> Self {
        Committees {
            namespace,
            signer,
            genesis,
            app,
            schemes: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// The committee of `epoch` ([`committee_of`]).
    pub fn members(&self, epoch: u64) -> Option<Set<ed25519::PublicKey>> {
        committee_of(&self.app, epoch, &self.genesis)
    }

    /// The scheme of `epoch` (signing if this validator is a member) and whether it is.
    pub fn scheme(&self, epoch: u64) -> Option<EpochScheme> {
        let mut cache = self
            .schemes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = cache.get(&epoch) {
            return Some(s.clone());
        }
        let members = self.members(epoch)?;
        if members.is_empty() {
            return None;
        }
        let entry = match Scheme::signer(&self.namespace, members.clone(), self.signer.clone()) {
            Some(s) => (Arc::new(s), true),
            None => (Arc::new(Scheme::verifier(&self.namespace, members)), false),
        };
        // Old epochs are only needed to check old certificates; keep a bounded window.
        while cache.len() >= 16 {
            cache.pop_first();
        }
        cache.insert(epoch, entry.clone());
        Some(entry)
    }
}

impl certificate::Provider for Committees {
    type Scope = Epoch;
    type Scheme = Scheme;

    fn scoped(&self, epoch: Epoch) -> Option<certificate::Scoped<Scheme>> {
        let (scheme, member) = self.scheme(epoch.get())?;
        Some(if member {
            certificate::Scoped::scheme(scheme)
        } else {
            certificate::Scoped::verifier(scheme)
        })
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
        freezer_value_target_size: 64 * 1024 * 1024,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        items_per_section: NZU64!(1024),
        codec_config: codec,
        replay_buffer: NZUsize!(1024 * 1024),
        freezer_key_write_buffer: NZUsize!(1024 * 1024),
        freezer_value_write_buffer: NZUsize!(1024 * 1024),
        ordinal_write_buffer: NZUsize!(1024 * 1024),
    }
}

/// Marshal's mailbox for one shard: finalized blocks and their finalization certificates by
/// height, for serving them to relays.
pub type Marshal = marshal::core::Mailbox<Scheme, Standard<ShardBlock>>;

/// A finalization certificate for a shard block.
pub type Finalization =
    simplex::types::Finalization<Scheme, commonware_cryptography::blake3::Digest>;

/// Why a finalized block from the network was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("malformed finalization certificate: {0}")]
    Malformed(String),
    #[error("the certificate finalizes another block")]
    WrongBlock,
    #[error("the certificate is from epoch {got}; the block's height is in epoch {expected}")]
    WrongEpoch { expected: u64, got: u64 },
    #[error("the certificate is not signed by a quorum of the shard's committee")]
    BadSignatures,
}

/// The namespace a shard's committee signs its votes and certificates under.
pub fn certificate_namespace(chain: &str, shard: ShardId) -> Vec<u8> {
    format!("starling/{chain}/shard/{}", shard.0).into_bytes()
}

/// Checks that `certificate` (an encoded finalization) finalizes `block` in `epoch` (the epoch
/// of the block's height) with signatures of a quorum of `participants` (that epoch's
/// committee) under `namespace`: what a relay checks before applying a block.
pub fn verify_finalized<R: rand_core_010::CryptoRng>(
    rng: &mut R,
    namespace: &[u8],
    epoch: u64,
    participants: &Set<ed25519::PublicKey>,
    block: &ShardBlock,
    certificate: &[u8],
) -> Result<(), CertificateError> {
    verify_finalized_id(
        rng,
        namespace,
        epoch,
        participants,
        &block.id(),
        certificate,
    )
}

/// [`verify_finalized`] for the block whose header hashes to `id`: all a light client needs
/// of the block is its header.
pub fn verify_finalized_id<R: rand_core_010::CryptoRng>(
    rng: &mut R,
    namespace: &[u8],
    epoch: u64,
    participants: &Set<ed25519::PublicKey>,
    id: &Hash,
    certificate: &[u8],
) -> Result<(), CertificateError> {
    use commonware_codec::Decode as _;
    let verifier = Scheme::verifier(namespace, participants.clone());
    // Bounded by the committee: at most one signature per member.
    let finalization = Finalization::decode_cfg(
        bytes::Bytes::copy_from_slice(certificate),
        &verifier.certificate_codec_config(),
    )
    .map_err(|e| CertificateError::Malformed(e.to_string()))?;
    if finalization.proposal.payload != crate::block::digest_of(id) {
        return Err(CertificateError::WrongBlock);
    }
    let got = finalization.proposal.round.epoch().get();
    if got != epoch {
        return Err(CertificateError::WrongEpoch {
            expected: epoch,
            got,
        });
    }
    if !finalization.verify(rng, &verifier, &Sequential) {
        return Err(CertificateError::BadSignatures);
    }
    Ok(())
}

/// Starts one validator's stack for one shard; it runs until the runtime stops. Returns
/// marshal's mailbox (finalized blocks and certificates by height).
pub async fn start<E, P, B, S, R>(
    context: E,
    config: EngineConfig,
    app: ShardApp,
    peers: P,
    blocker: B,
    channels: Channels<S, R>,
) -> Result<Marshal, StoreError>
where
    E: commonware_runtime::Spawner
        + commonware_runtime::Clock
        + commonware_runtime::Metrics
        + commonware_runtime::Storage
        + commonware_runtime::Supervisor
        + rand_core_010::CryptoRng,
    P: Provider<PublicKey = ed25519::PublicKey>,
    B: Blocker<PublicKey = ed25519::PublicKey>,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
{
    let me = config.signer.public_key();
    // Rule R1: this validator's onion comes from its consensus key, so a restart rebuilds it.
    app.set_onion_secret(&commonware_codec::Encode::encode(&config.signer));
    let genesis = app.genesis_block()?;
    let genesis_digest = genesis.digest();
    let epoch_blocks = std::num::NonZeroU64::new(app.epoch_blocks())
        .filter(|n| n.get() >= 2)
        .ok_or_else(|| StoreError::Config("epoch_blocks must be at least 2".into()))?;
    let epocher = FixedEpocher::new(epoch_blocks);
    let committees = Committees::new(
        config.namespace.clone(),
        config.signer.clone(),
        config.participants.clone(),
        app.clone(),
    );
    let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(1024));
    let prefix = config.partition_prefix.clone();
    let mailbox_size = NZUsize!(1024);

    let resolver = resolver::init(
        context.child("resolver"),
        resolver::Config {
            public_key: me.clone(),
            peer_provider: peers.clone(),
            blocker: blocker.clone(),
            mailbox_size,
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        channels.backfill,
    );
    let (broadcast_engine, buffer) = buffered::Engine::new(
        context.child("broadcast"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size,
            deque_size: 10,
            priority: false,
            codec_config: (),
            peer_provider: peers,
            strategy: Sequential,
        },
    );
    broadcast_engine.start(channels.broadcast);

    let finalizations = immutable::Archive::init(
        context.child("finalizations"),
        archive(
            &prefix,
            "finalizations",
            Scheme::certificate_codec_config_unbounded(),
            &page_cache,
        ),
    )
    .await
    .map_err(|e| StoreError::Db(format!("finalizations archive: {e}")))?;
    let blocks = immutable::Archive::init(
        context.child("blocks"),
        archive(&prefix, "blocks", (), &page_cache),
    )
    .await
    .map_err(|e| StoreError::Db(format!("blocks archive: {e}")))?;
    let marshal_config = marshal::Config {
        provider: committees.clone(),
        epocher: epocher.clone(),
        start: marshal::Start::Genesis(Digested::precomputed(genesis, genesis_digest)),
        mailbox_size,
        view_retention: ViewDelta::new(10),
        max_repair: NZUsize!(10),
        max_pending_acks: NZUsize!(1),
        block_codec_config: (),
        partition_prefix: prefix.clone(),
        prunable_items_per_section: NZU64!(1024),
        replay_buffer: NZUsize!(1024 * 1024),
        key_write_buffer: NZUsize!(1024 * 1024),
        value_write_buffer: NZUsize!(1024 * 1024),
        page_cache: page_cache.clone(),
        strategy: Sequential,
    };
    let (actor, mailbox, _floor): (_, Marshal, _) = Actor::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal_config,
    )
    .await;
    actor.start(app.clone(), buffer, resolver);

    // The three simplex channels carry one sub-channel per epoch.
    let (votes_mux, mut votes, mut ahead) = Muxer::builder(
        context.child("votes_mux"),
        channels.votes.0,
        channels.votes.1,
    )
    .with_backup()
    .build();
    votes_mux.start();
    let (certificates_mux, mut certificates) = Muxer::new(
        context.child("certificates_mux"),
        channels.certificates.0,
        channels.certificates.1,
    );
    certificates_mux.start();
    let (resolver_mux, mut resolvers) = Muxer::new(
        context.child("resolver_mux"),
        channels.resolver.0,
        channels.resolver.1,
    );
    resolver_mux.start();

    let evidence = EvidenceLog(app.clone());
    let inline = Inline::new(
        context.child("inline"),
        app.clone(),
        mailbox.clone(),
        epocher.clone(),
    );
    let mailbox_out = mailbox.clone();
    let leader_timeout = config.leader_timeout;
    let certification_timeout = config.certification_timeout;
    context.child("epochs").spawn(move |context| async move {
        use futures::{FutureExt as _, StreamExt as _};
        let mut heights = app.watch_height().fuse();
        let mut finalized = 0u64;
        let mut running: Option<(u64, commonware_runtime::Handle<()>)> = None;
        loop {
            // The epoch to run is the one after the last finalized block.
            let epoch = epocher
                .containing(Height::new(finalized + 1))
                .map_or(0, |info| info.epoch().get());
            if running.as_ref().map(|(e, _)| *e) != Some(epoch) {
                let floor = if epoch == 0 {
                    Some(genesis_digest)
                } else {
                    epocher
                        .last(Epoch::new(epoch - 1))
                        .and_then(|h| app.block(h.get()).ok().flatten())
                        .map(|b| ShardBlock::new(b).digest())
                };
                match (committees.scheme(epoch), floor) {
                    (Some((scheme, member)), Some(floor)) => {
                        let (Ok(v), Ok(c), Ok(r)) = (
                            votes.register(epoch).await,
                            certificates.register(epoch).await,
                            resolvers.register(epoch).await,
                        ) else {
                            tracing::error!(epoch, "cannot open the epoch's channels");
                            return;
                        };
                        let engine = simplex::Engine::new(
                            context.child("simplex").with_attribute("epoch", epoch),
                            simplex::config::Config {
                                scheme: (*scheme).clone(),
                                elector: RoundRobin::<Sha256>::default(),
                                blocker: blocker.clone(),
                                automaton: inline.clone(),
                                relay: inline.clone(),
                                reporter: Fanout(
                                    Fanout(mailbox.clone(), inline.clone()),
                                    evidence.clone(),
                                ),
                                strategy: Sequential,
                                partition: format!("{prefix}-simplex-{epoch}"),
                                mailbox_size,
                                epoch: Epoch::new(epoch),
                                floor: simplex::config::Floor::Genesis(floor),
                                leader_timeout,
                                certification_timeout,
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
                        let handle = engine.start(v, c, r);
                        tracing::info!(epoch, member, "entered epoch");
                        if let Some((old, handle)) = running.replace((epoch, handle)) {
                            handle.abort();
                            tracing::info!(epoch = old, "left epoch");
                        }
                    }
                    _ => tracing::warn!(epoch, "the epoch's committee is not known yet"),
                }
            }
            futures::select! {
                height = heights.next() => match height {
                    Some(h) => finalized = finalized.max(h),
                    None => return,
                },
                message = ahead.recv().fuse() => {
                    // Peers vote in a later epoch: fetch the block that closes ours from them.
                    let Some((theirs, (from, _))) = message else { return };
                    if running.as_ref().is_some_and(|(ours, _)| theirs > *ours) {
                        if let Some(last) = epocher.last(Epoch::new(epoch)) {
                            mailbox.hint_finalized(last, NonEmptyVec::new(from));
                        }
                    }
                }
            }
        }
    });
    Ok(mailbox_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_consensus::simplex::types::{Activity, ConflictingNotarize, Notarize, Proposal};
    use commonware_consensus::types::{Round, View};
    use commonware_cryptography::blake3::Digest;
    use starling_mempool::{Mempool, MempoolConfig};
    use starling_types::{ChainId, ShardId, ShardMap};

    #[test]
    fn conflicting_votes_are_kept_as_evidence_and_other_activity_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let foundations = (0..3u8)
            .map(|i| starling_types::PublicKey::ed25519([i + 1; 32]))
            .collect();
        let params = starling_ledger::LedgerParams::devnet(
            ChainId::new("evidence").unwrap(),
            1,
            foundations,
        )
        .unwrap();
        let store =
            starling_store::ChainStore::create(dir.path(), params, ShardId(1), &[], 1, 4).unwrap();
        let app = ShardApp::new(
            store,
            Mempool::new(
                MempoolConfig::default(),
                ShardId(1),
                ShardMap::even(1).unwrap(),
            ),
            10,
        );
        let keys: Vec<ed25519::PrivateKey> =
            (0..4u64).map(ed25519::PrivateKey::from_seed).collect();
        let participants = Set::from_iter_dedup(keys.iter().map(|k| k.public_key()));
        let liar = Scheme::signer(b"ns", participants, keys[0].clone()).unwrap();
        let proposal = |payload: u8| Proposal {
            round: Round::new(Epoch::zero(), View::new(5)),
            parent: View::new(4),
            payload: Digest([payload; 32]),
        };
        let a = Notarize::sign(&liar, proposal(1)).unwrap();
        let b = Notarize::sign(&liar, proposal(2)).unwrap();

        let mut log = EvidenceLog(app.clone());
        let _ = log.report(Activity::Notarize(a.clone()));
        assert!(
            app.evidence().unwrap().is_empty(),
            "an ordinary vote is not evidence"
        );
        let fault = Activity::ConflictingNotarize(ConflictingNotarize::new(a, b));
        let _ = log.report(fault.clone());
        let stored = app.evidence().unwrap();
        assert_eq!(
            stored,
            vec![commonware_codec::Encode::encode(&fault).to_vec()]
        );
    }
}
