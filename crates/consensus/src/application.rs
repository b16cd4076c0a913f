//! The application consensus drives for one shard.
//!
//! - `propose`: build on the parent consensus names (final or not): catch up on any unseen
//!   ancestors, take transactions from the mempool in fee order with nonces as of the parent,
//!   execute speculatively, and return the block with its roots.
//! - `verify`: execute the block speculatively on its parent and check every root; vote for
//!   it only if it is exactly what this node computes. A proposer must name the round's
//!   leader as the block's proposer (it receives the tips).
//! - the reporter: commit each finalized block, reusing its speculative execution, and prune
//!   the mempool.

use crate::block::ShardBlock;
use commonware_actor::Feedback;
use commonware_consensus::marshal::{ancestry::Ancestry, Update};
use commonware_consensus::simplex::{scheme::ed25519::Scheme, types::Context};
use commonware_consensus::{Application, Reporter};
use commonware_cryptography::{blake3::Digest, ed25519, Digested};
use commonware_runtime::{Clock, Spawner};
use commonware_utils::Acknowledgement;
use futures::StreamExt;
use starling_ledger::{actions, BlockInput, Layered};
use starling_mempool::{Mempool, MempoolError};
use starling_store::{ChainStore, Head, Speculative, StoreError};
use starling_types::{AccountId, BlockHeader, Hash, InboundBatch, ShardId, Tx};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::UNIX_EPOCH;

/// The consensus context of a proposal.
pub type ShardContext = Context<Digest, ed25519::PublicKey>;

struct Inner {
    store: ChainStore,
    spec: Speculative,
    mempool: Mempool,
    /// Most transactions in one block.
    max_block_txs: usize,
    /// The shortest time between a block and its parent; an idle shard waits up to five
    /// times as long for a transaction before proposing an empty block.
    block_interval_ms: u64,
    /// The furthest a block's timestamp may run ahead of this node's clock for it to vote
    /// for the block (rule B7).
    max_drift_ms: u64,
    /// The height of the last block committed, for [`ShardApp::watch_height`] (a watch holds
    /// one value however slow its readers are).
    height: tokio::sync::watch::Sender<u64>,
    /// This validator's hash onion: what its global-shard blocks reveal (ledger rule R1).
    onion: Option<Arc<starling_ledger::randomness::Onion>>,
    /// Set only by tests of Byzantine behaviour: rewrites this node's proposals.
    tamper: Option<Tamper>,
}

/// How a Byzantine proposer rewrites its block's input before building it (tests only: an
/// honest node never sets one). Returns whether the proposer then builds the block with every
/// signature check skipped, as a liar claiming forged transactions apply would.
pub type Tamper = Arc<dyn Fn(&mut BlockInput) -> bool + Send + Sync>;

/// Default of [`ShardApp::with_max_clock_drift`]: two seconds.
pub const DEFAULT_MAX_DRIFT: std::time::Duration = std::time::Duration::from_secs(2);

/// Cross-shard messages as a node sees them: where a proposer finds the messages other
/// shards sent to its shard, and how a verifier knows that the source block of a message is
/// final. Implemented by the node, which holds (or follows) the other shards.
pub trait CrossShard: Send + Sync + 'static {
    /// Inbound batches for `dest` from finalized blocks of the other shards, from the next
    /// sequence number `dest` expects of each source (`expected(source)`) on.
    fn pending(&self, dest: ShardId, expected: &dyn Fn(ShardId) -> u64) -> Vec<InboundBatch>;

    /// Whether `header` is the finalized block at its height of its shard (`Some(true)`),
    /// is not (`Some(false)`), or this node has not finalized that height yet (`None`).
    fn finalized(&self, header: &BlockHeader) -> Option<bool>;
}

/// How long a verifier waits for a source shard to finalize the block an inbound batch
/// names before voting against the block that carries it.
const SOURCE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One shard's application; clones share the same state.
#[derive(Clone)]
pub struct ShardApp {
    inner: Arc<Mutex<Inner>>,
    cross: Arc<OnceLock<Arc<dyn CrossShard>>>,
}

impl std::fmt::Debug for ShardApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardApp").finish_non_exhaustive()
    }
}

/// Which of `txs` carry a signature that does not verify (indices, ascending), checked in
/// one batch.
pub fn forged(txs: &[Tx]) -> Vec<usize> {
    let items: Vec<starling_crypto::SigItem<'_>> = txs
        .iter()
        .map(|t| starling_crypto::SigItem {
            key: &t.body.account,
            msg: t.signing_hash.as_bytes(),
            sig: &t.envelope.signature,
        })
        .collect();
    starling_crypto::verify_batch(&items)
}

/// What admission needs of the chain: the height the next block will have, its base fee and
/// the expiry horizon.
fn admission(store: &ChainStore) -> starling_mempool::Admission {
    let base_fee = store
        .with_view(|v| starling_ledger::ShardLedger::meta(v).map_or(0, |m| m.base_fee))
        .unwrap_or(0);
    starling_mempool::Admission {
        height: store.head().height + 1,
        base_fee,
        max_expiry_blocks: store.ledger().params.max_expiry_blocks,
    }
}

/// The signers' accounts of `txs` as the pool needs them, read in one view of the finalized
/// state (`None` for an account that does not exist). A ballot's "account" is its ballot
/// key's next nonce, with nothing to pay: [`ballot_verdicts`] has admitted it.
fn account_states(
    store: &ChainStore,
    txs: &[Tx],
    height: u64,
) -> Vec<Option<starling_mempool::AccountState>> {
    let ledger = store.ledger();
    store
        .with_view(|v| {
            txs.iter()
                .map(|tx| {
                    if let starling_types::Action::Ballot(_) = tx.body.action {
                        return Some(starling_mempool::AccountState {
                            nonce: actions::next_nonce(v, &tx.body.account),
                            fee_budget: 0,
                            tip_budget: 0,
                            locked: false,
                        });
                    }
                    actions::account(v, &tx.body.account)
                        .ok()
                        .flatten()
                        .map(|a| starling_mempool::AccountState {
                            nonce: a.nonce,
                            fee_budget: ledger.fee_budget(&a, height),
                            tip_budget: a.balance(starling_types::Asset::Spend),
                            locked: ledger.treasury_locked(&tx.body),
                        })
                })
                .collect()
        })
        .unwrap_or_else(|_| vec![None; txs.len()])
}

/// For each of `txs`: `None` if it is no ballot or `wanted` is false for it, else whether
/// the ledger would count it in the next block (its credential verified, its referendum
/// open, its tokens enough), read in one view of the finalized state. A ballot pays no fee,
/// so this is what admits it.
fn ballot_verdicts(
    store: &ChainStore,
    txs: &[Tx],
    height: u64,
    wanted: &dyn Fn(usize) -> bool,
) -> Vec<Option<Result<(), MempoolError>>> {
    let ledger = store.ledger();
    store
        .with_view(|v| {
            txs.iter()
                .enumerate()
                .map(|(j, tx)| {
                    let starling_types::Action::Ballot(_) = tx.body.action else {
                        return None;
                    };
                    if !wanted(j) {
                        return None;
                    }
                    let len = tx.envelope.encoded_len();
                    use starling_ledger::ballots::BallotCheck;
                    let refused = |why: String| Err(MempoolError::BallotRefused(why));
                    Some(match ledger.check_ballot(v, &tx.body, len, height) {
                        Ok(_) => Ok(()),
                        Err(BallotCheck::Refused(e)) => refused(e.to_string()),
                        Err(BallotCheck::State(e)) => refused(e.to_string()),
                    })
                })
                .collect()
        })
        .unwrap_or_else(|e| {
            let refused = || Some(Err(MempoolError::BallotRefused(e.to_string())));
            txs.iter().map(|_| refused()).collect()
        })
}

/// Takes out of the pool what a committed block consumed or rejected (P6, P7).
fn prune_pool(
    mempool: &mut Mempool,
    store: &ChainStore,
    block: &starling_types::Block,
    executed: &starling_ledger::Executed,
) {
    // A transaction a block rejected leaves the pool if the reason is permanent, and after a
    // few rejections if it may pass later (P6).
    let rejected: Vec<(Hash, bool)> = executed
        .events
        .iter()
        .filter_map(|e| match e {
            starling_ledger::Event::TxRejected { tx_hash, error, .. } => {
                Some((*tx_hash, transient(error)))
            }
            _ => None,
        })
        .collect();
    let touched: Vec<AccountId> = block
        .txs
        .iter()
        .filter_map(|t| t.body().ok().map(|b| b.account))
        .collect();
    // The touched accounts' next nonces, read in one view of the state just committed.
    let next: HashMap<AccountId, u64> = store
        .with_view(|v| {
            touched
                .iter()
                .map(|a| (*a, actions::next_nonce(v, a)))
                .collect()
        })
        .unwrap_or_default();
    let nonces = |a: &AccountId| next.get(a).copied().unwrap_or(0);
    mempool.prune(block.header.height + 1, touched.iter(), &nonces, &rejected);
}

/// Whether a rejection may not hold in a later block: the block was full, an earlier nonce is
/// still to come, funds or a target may arrive, the base fee may fall. (A Byzantine proposer
/// can cause these on purpose, by ordering or omitting; so they evict only after a few.)
fn transient(error: &starling_ledger::TxError) -> bool {
    use starling_ledger::TxError as E;
    matches!(
        error,
        E::BlockFull
            | E::NonceGap { .. }
            | E::InsufficientBalance { .. }
            | E::FeeTooLow { .. }
            | E::UnknownAccount
            | E::UnknownTarget
            | E::HandlePending
    )
}

fn now_ms<E: Clock>(runtime: &E) -> u64 {
    runtime
        .current()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The account a consensus key receives tips on.
pub fn account_of(key: &ed25519::PublicKey) -> AccountId {
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(key.as_ref());
    AccountId::ed25519(bytes)
}

mod execute;
mod reads;

impl ShardApp {
    pub fn new(store: ChainStore, mempool: Mempool, max_block_txs: usize) -> Self {
        let head = store.head().height;
        let inner = Inner {
            store,
            spec: Speculative::new(),
            mempool,
            max_block_txs,
            block_interval_ms: 0,
            max_drift_ms: DEFAULT_MAX_DRIFT.as_millis() as u64,
            height: tokio::sync::watch::Sender::new(head),
            onion: None,
            tamper: None,
        };
        Self {
            inner: Arc::new(Mutex::new(inner)),
            cross: Arc::new(OnceLock::new()),
        }
    }

    /// Connects the shard to the others (once): its proposals then carry the messages they
    /// sent it, and it accepts blocks with inbound messages whose source blocks are final.
    pub fn connect(&self, cross: Arc<dyn CrossShard>) {
        let _ = self.cross.set(cross);
    }

    /// The same shard, without its cross-shard connection: what a [`CrossShard`] provider
    /// holds, so that app and provider do not keep each other alive.
    pub fn detached(&self) -> ShardApp {
        ShardApp {
            inner: self.inner.clone(),
            cross: Arc::new(OnceLock::new()),
        }
    }

    /// A stream of finalized heights: the current one at once, then the latest height after
    /// blocks are committed from consensus or applied with [`Self::apply_finalized`]. A slow
    /// reader skips heights (it sees the newest one) instead of queueing them without bound.
    pub fn watch_height(&self) -> futures::stream::BoxStream<'static, u64> {
        let mut rx = self.lock().height.subscribe();
        rx.mark_changed();
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            let height = *rx.borrow_and_update();
            Some((height, rx))
        }))
    }

    /// The shard this app runs.
    pub fn shard(&self) -> ShardId {
        self.lock().store.ledger().shard
    }

    /// The next sequence number this shard expects from each other shard, in the state after
    /// `parent` (which may not be final).
    fn expected_inbox(inner: &Inner, parent: &Hash) -> Option<BTreeMap<ShardId, u64>> {
        let ancestors = inner.spec.ancestor_writes(&inner.store, parent).ok()?;
        let me = inner.store.ledger().shard;
        let shards = inner.store.ledger().params.shard_map.ranges().len() as u16;
        inner
            .store
            .with_view(|v| {
                let view = Layered {
                    base: v,
                    top: &ancestors,
                };
                (0..=shards)
                    .map(ShardId)
                    .filter(|s| *s != me)
                    .map(|s| {
                        let seq = starling_ledger::StateView::get(
                            &view,
                            &starling_ledger::records::StateKey::Inbox(s).hash(),
                        )
                        .ok()
                        .flatten()
                        .and_then(|b| starling_ledger::records::decode_u64(&b).ok())
                        .unwrap_or(0);
                        (s, seq)
                    })
                    .collect()
            })
            .ok()
    }

    /// Waits until every inbound batch of `block` comes from a block final on its shard;
    /// false if one is not, or is not known within [`SOURCE_WAIT`].
    async fn sources_final<E: Clock>(&self, runtime: &E, block: &starling_types::Block) -> bool {
        if block.inbound.is_empty() {
            return true;
        }
        let Some(cross) = self.cross.get() else {
            return false;
        };
        let deadline = runtime.current() + SOURCE_WAIT;
        for batch in &block.inbound {
            loop {
                match cross.finalized(&batch.source) {
                    Some(true) => break,
                    Some(false) => return false,
                    None if runtime.current() >= deadline => return false,
                    None => runtime.sleep(std::time::Duration::from_millis(20)).await,
                }
            }
        }
        true
    }

    /// Sets the shortest time between a block and its parent (default: none).
    pub fn with_block_interval(self, interval: std::time::Duration) -> Self {
        self.lock().block_interval_ms = interval.as_millis() as u64;
        self
    }

    /// Sets how far ahead of this node's clock a block's timestamp may be for it to vote for
    /// the block (default [`DEFAULT_MAX_DRIFT`]).
    pub fn with_max_clock_drift(self, drift: std::time::Duration) -> Self {
        self.lock().max_drift_ms = drift.as_millis() as u64;
        self
    }

    /// Gives this validator its hash onion, built from its consensus secret key, once: what
    /// its global-shard blocks commit to and reveal (ledger rule R1). The consensus engine
    /// sets it when it starts.
    pub fn set_onion_secret(&self, secret: &[u8]) {
        let mut inner = self.lock();
        if inner.onion.is_none() {
            inner.onion = Some(Arc::new(starling_ledger::randomness::Onion::from_secret(
                secret,
            )));
        }
    }

    /// Makes this node a Byzantine proposer that rewrites its proposals with `tamper`. Only
    /// for tests of what honest validators do with such blocks.
    pub fn with_tamper(self, tamper: Tamper) -> Self {
        self.lock().tamper = Some(tamper);
        self
    }

    /// Waits until a block on a parent made at `parent_ms` is due: at least the block interval
    /// after it, and, while the mempool is empty, up to five intervals. A parent stamped ahead
    /// of this node's clock is treated as made now, so a proposer never waits on the future.
    async fn pace<E: Clock>(&self, runtime: &E, parent_ms: u64) {
        let (interval, mut idle) = {
            let inner = self.lock();
            (inner.block_interval_ms, inner.mempool.is_empty())
        };
        let parent_ms = parent_ms.min(now_ms(runtime));
        let due = parent_ms.saturating_add(interval);
        let idle_due = parent_ms.saturating_add(interval.saturating_mul(5));
        loop {
            let now = now_ms(runtime);
            let until = if idle { idle_due } else { due };
            if now >= until {
                return;
            }
            runtime
                .sleep(std::time::Duration::from_millis((until - now).min(20)))
                .await;
            idle = self.lock().mempool.is_empty();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the store half-written (its commits are
        // atomic), so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last finalized block.
    pub fn head(&self) -> Head {
        self.lock().store.head()
    }

    /// A second valid block next to the unfinalized block `id` this node proposed or
    /// verified: same parent, height, proposer and contents, one millisecond later, executed
    /// and checked like any proposal. Two signed proposals of one view are what an
    /// equivocating proposer sends; the Byzantine simulation tests build theirs with this. An
    /// honest validator never calls it.
    pub fn sibling(&self, id: &Hash) -> Option<ShardBlock> {
        let mut inner = self.lock();
        let Inner {
            store,
            spec,
            mempool,
            ..
        } = &mut *inner;
        let mut input = BlockInput::from_block(&spec.get(id)?.0);
        input.timestamp_ms += 1;
        spec.propose_with(store, input, &|h| mempool.contains(h))
            .ok()
            .map(ShardBlock::new)
    }

    /// The next nonce of `account` in the finalized state.
    pub fn nonce(&self, account: &AccountId) -> u64 {
        self.lock()
            .store
            .with_view(|v| actions::next_nonce(v, account))
            .unwrap_or(0)
    }

    /// Block 0, the shard's genesis block: where consensus starts, also after a restart.
    pub fn genesis_block(&self) -> Result<ShardBlock, StoreError> {
        let block = self
            .lock()
            .store
            .block(0)?
            .ok_or_else(|| StoreError::Corrupt("genesis block missing".into()))?;
        Ok(ShardBlock::new(block))
    }

    /// Checks a transaction's signature and admits it to the mempool, against committed state.
    pub fn submit(&self, tx: Tx) -> Result<(), MempoolError> {
        self.submit_batch(vec![tx])
            .pop()
            .unwrap_or(Err(MempoolError::BadSignature))
    }

    /// Checks the signatures of `txs` in one batch and admits each valid one to the mempool;
    /// one result per transaction, in order.
    pub fn submit_batch(&self, txs: Vec<Tx>) -> Vec<Result<(), MempoolError>> {
        self.submit_batch_from(txs, starling_mempool::Source::Client)
    }

    /// As [`Self::submit_batch`], for transactions from `source` (another node's may come
    /// out of nonce order).
    pub fn submit_batch_from(
        &self,
        txs: Vec<Tx>,
        source: starling_mempool::Source,
    ) -> Vec<Result<(), MempoolError>> {
        // First what the pool refuses whatever the signatures (a duplicate, a used nonce, a
        // full pool it pays too little to enter): a refusal costs no signature check, so an
        // overloaded node spends its time on what it takes.
        let mut results: Vec<Result<(), MempoolError>> = {
            let inner = self.lock();
            let at = admission(&inner.store);
            let states = account_states(&inner.store, &txs, at.height);
            inner.mempool.screen(&txs, &states, &at, source)
        };
        let (kept, txs): (Vec<usize>, Vec<Tx>) = txs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| results[*i].is_ok())
            .unzip();
        let forged = forged(&txs);
        let mut inner = self.lock();
        let Inner { store, mempool, .. } = &mut *inner;
        let at = admission(store);
        let states = account_states(store, &txs, at.height);
        // A ballot must also be one the ledger would count: its credential (an RSA
        // verification) is checked only for ballots the pool would take, signed.
        let ballots = ballot_verdicts(store, &txs, at.height, &|j| !forged.contains(&j));
        let mut forged = forged.into_iter().peekable();
        for (j, ((tx, state), ballot)) in txs.into_iter().zip(states).zip(ballots).enumerate() {
            results[kept[j]] = if forged.peek() == Some(&j) {
                forged.next();
                Err(MempoolError::BadSignature)
            } else if let Some(Err(e)) = ballot {
                Err(e)
            } else {
                mempool.insert_from(tx, &at, state, source)
            };
        }
        results
    }

    /// Applies a block finalized elsewhere (its certificate already checked): what a
    /// follower does. Its pool (what a relay admitted and published) loses what the block
    /// consumed or rejected. The ledger re-executes it and checks every root. Transaction signatures
    /// are not checked again: a quorum of the committee certified the block, and at least one
    /// honest member checked every signature before voting (invariant 10).
    pub fn apply_finalized(&self, block: &starling_types::Block) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let executed = inner.store.apply_with(block, &|_| true)?;
        let Inner { store, mempool, .. } = &mut *inner;
        prune_pool(mempool, store, block, &executed);
        inner.height.send_replace(block.header.height);
        Ok(())
    }

    /// Pooled transactions to send to the shard's validators again: those not included and
    /// not sent for `every` blocks (see [`Mempool::due_again`]), at most `max`.
    pub fn due_again(&self, every: u64, max: usize) -> Vec<starling_types::TxEnvelope> {
        let mut inner = self.lock();
        let height = inner.store.head().height + 1;
        inner
            .mempool
            .due_again(height, every, max)
            .into_iter()
            .map(|t| t.envelope)
            .collect()
    }

    /// Executes (speculatively) every block of `chain` not seen yet, oldest first.
    fn catch_up(inner: &mut Inner, chain: Vec<ShardBlock>) -> Result<(), StoreError> {
        for b in chain.into_iter().rev() {
            let Inner { store, spec, .. } = inner;
            spec.verify(store, b.block().clone())?;
        }
        Ok(())
    }

    fn is_known(inner: &Inner, id: &Hash) -> bool {
        *id == inner.store.head().id || inner.spec.get(id).is_some()
    }

    /// Walks `ancestry` from `first` back to a block this node knows; returns the unknown ones
    /// (newest first), or `None` if the stream ends first.
    async fn unknown_ancestors(
        &self,
        first: ShardBlock,
        ancestry: &mut impl Ancestry<ShardBlock>,
    ) -> Option<Vec<ShardBlock>> {
        let mut chain = Vec::new();
        let mut at = first;
        loop {
            let (known, below_head) = {
                let inner = self.lock();
                (
                    Self::is_known(&inner, &at.id()),
                    at.block().header.height <= inner.store.head().height,
                )
            };
            if known {
                return Some(chain);
            }
            if below_head {
                // Not on the finalized chain: nothing can be built on it.
                return None;
            }
            let parent_id = at.block().header.parent;
            chain.push(at);
            let next = ancestry.next().await?;
            if next.inner().id() != parent_id {
                return None;
            }
            at = next.inner().clone();
        }
    }
}

impl<E: Clock + Spawner + Send + 'static> Application<E> for ShardApp {
    type SigningScheme = Scheme;
    type Context = ShardContext;
    type Block = ShardBlock;
    type Input = ();

    async fn propose(
        &mut self,
        (runtime, context): (E, Self::Context),
        ancestry: impl Ancestry<Self::Block>,
        _input: (),
    ) -> Option<Digested<Self::Block>> {
        let mut ancestry = ancestry;
        let parent = ancestry.next().await?.inner().clone();
        let unknown = self
            .unknown_ancestors(parent.clone(), &mut ancestry)
            .await?;
        self.pace(&runtime, parent.block().header.timestamp_ms)
            .await;
        let now_ms = now_ms(&runtime);
        let expected = {
            let mut inner = self.lock();
            if let Err(e) = Self::catch_up(&mut inner, unknown) {
                tracing::warn!(error = %e, "cannot build on the proposed parent");
                return None;
            }
            Self::expected_inbox(&inner, &parent.id())?
        };
        // Other shards' apps are locked one at a time, never while this one is.
        let inbound = match self.cross.get() {
            Some(cross) => cross.pending(self.shard(), &|s| expected.get(&s).copied().unwrap_or(0)),
            None => Vec::new(),
        };
        let proposer = account_of(&context.leader);
        // Building executes the block: on a thread that may block, so the runtime's workers
        // stay free for votes and network traffic while a large block executes.
        let app = self.clone();
        runtime
            .shared(true)
            .spawn(move |_| async move { app.build(parent, proposer, now_ms, inbound) })
            .await
            .ok()
            .flatten()
    }

    async fn verify(
        &mut self,
        (runtime, context): (E, Self::Context),
        ancestry: impl Ancestry<Self::Block>,
    ) -> bool {
        let mut ancestry = ancestry;
        let Some(block) = ancestry.next().await else {
            return false;
        };
        let block = block.inner().clone();
        if block.block().header.proposer != account_of(&context.leader) {
            return false;
        }
        let Some(parent) = ancestry.next().await else {
            return false;
        };
        if parent.inner().id() != block.block().header.parent {
            return false;
        }
        // Rule B7: a timestamp after the parent's (the ledger checks) and at most the allowed
        // drift ahead of this node's clock, so no leader can stamp the future and stall the
        // honest proposers that must come after it.
        // A stamp slightly past the allowed drift (clocks of honest validators differ a
        // little) is waited for, up to the drift again; beyond that the block is refused.
        let max_drift = self.lock().max_drift_ms;
        let stamp = block.block().header.timestamp_ms;
        let give_up = now_ms(&runtime).saturating_add(max_drift);
        while stamp > now_ms(&runtime).saturating_add(max_drift) {
            if stamp > give_up.saturating_add(max_drift) || now_ms(&runtime) >= give_up {
                tracing::info!(
                    height = block.block().header.height,
                    stamp,
                    "voting against a block stamped too far in the future"
                );
                return false;
            }
            runtime.sleep(std::time::Duration::from_millis(20)).await;
        }
        let Some(unknown) = self
            .unknown_ancestors(parent.inner().clone(), &mut ancestry)
            .await
        else {
            return false;
        };
        if !self.sources_final(&runtime, block.block()).await {
            tracing::info!(
                height = block.block().header.height,
                "voting against a block with inbound messages from blocks not final"
            );
            return false;
        }
        // Executing the block blocks a thread: not one of the runtime's workers.
        let app = self.clone();
        runtime
            .shared(true)
            .spawn(move |_| async move { app.check(block, unknown) })
            .await
            .unwrap_or(false)
    }
}

impl Reporter for ShardApp {
    type Activity = Update<ShardBlock>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        if let Update::Block(block, ack) = activity {
            let block = block.inner().block().clone();
            let mut inner = self.lock();
            let Inner {
                store,
                spec,
                mempool,
                ..
            } = &mut *inner;
            if store.head().height >= block.header.height {
                // Delivered again after a restart: already committed.
                ack.acknowledge();
                return Feedback::Ok;
            }
            match spec.finalize(store, &block) {
                Ok(executed) => {
                    prune_pool(mempool, store, &block, &executed);
                    ack.acknowledge();
                    inner.height.send_replace(block.header.height);
                }
                Err(e) => {
                    // A finalized block that does not apply means this node's state is wrong;
                    // do not acknowledge, so it is not marked processed.
                    tracing::error!(error = %e, height = block.header.height, "cannot commit a finalized block");
                }
            }
        }
        Feedback::Ok
    }
}
