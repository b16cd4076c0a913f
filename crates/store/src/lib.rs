//! Starling's on-disk chain store for one shard: blocks, receipts and the authenticated state
//! in an embedded database (LMDB), where applying a block is one atomic transaction.
//!
//! # Crash safety (invariant)
//! A block is committed in one LMDB write transaction of the *chain* environment, synced to
//! disk before it returns: the block, its receipts and the new head. Its state changes are kept
//! in memory (`pending`) and merged into the `state` and `buckets` tables of the separate
//! *state* environment by a *checkpoint* (every [`CHECKPOINT_ENTRIES`] changed entries or
//! [`CHECKPOINT_BLOCKS`] blocks): one transaction that also records the checkpoint's height.
//! A checkpoint runs on a background thread while blocks keep committing; until it commits,
//! reads see the changes it is writing from memory (`merging`), so the state read is always
//! the state as of the head. The chain is the write-ahead log: a checkpoint only holds
//! committed blocks' changes, so its height never passes the head, and [`ChainStore::open`]
//! re-executes the blocks after it and checks that every one reproduces its committed state
//! root. A process killed at any moment therefore reopens at the last committed block with
//! the right root. Writing each block's state into the B-tree at once would rewrite most of
//! its pages every block; batching checkpoints touches each page once per checkpoint instead.
//!
//! # Layout (two LMDB environments under `<dir>/store`)
//! | environment | database | key | value |
//! |---|---|---|---|
//! | `state` | `state` | key hash (32 bytes) | `value_hash (32) || value` |
//! | `state` | `buckets` | bucket index (`u32` BE) | `hash (32) || count (u64 BE)` |
//! | `state` | `meta` | `checkpoint` | height of the block whose state the tables hold |
//! | `chain` | `blocks` | height (`u64` BE) | encoded block |
//! | `chain` | `receipts` | height (`u64` BE) | receipts, each `u32 BE length || encoded receipt` |
//! | `chain` | `meta` | name | `params`, `shard`, `bits`, `head` |
//! | `chain` | `evidence` | sequence (`u64` BE) | a consensus fault, as consensus encodes it |
//! | `chain` | `handoffs` | epoch `e` (`u64` BE) `|| 0` | `EpochCommittee(e)` (an option) and its proof under the state root of the last block of epoch `e - 1` |
//! | `chain` | `handoffs` | epoch `e` (`u64` BE) `|| 1` | that block's id and its finalization certificate |
//!
//! The hand-offs let a light client follow a shard's committees from genesis: each epoch's
//! committee proven under a block the previous committee certified. A hand-off is written
//! when the block closing an epoch commits (and again on open, if a crash came between).

mod error;
mod kept;
mod speculative;
mod tree;
mod view;

pub use error::StoreError;
pub use kept::Handoff;
pub use speculative::{Speculative, MAX_SPECULATIVE_BLOCKS};
use tree::{update_tree, TreeChange};
use view::View;

use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, RwTxn};
use starling_ledger::{
    BlockInput, Executed, GenesisValidators, LedgerParams, ShardLedger, StateView,
};
use starling_state::{value_hash, BucketSummary, Proof, TopTree, WriteSet};
use starling_types::codec::{Decode, Encode, Reader};
use starling_types::{AccountId, Asset, Block, Hash, InboundBatch, Receipt, ShardId, TxEnvelope};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

type Db = Database<Bytes, Bytes>;

/// The databases of both environments: `state`, `buckets` and `checkpoints` live in the
/// state environment, the others in the chain environment.
#[derive(Clone, Copy)]
struct Tables {
    state: Db,
    buckets: Db,
    checkpoints: Db,
    blocks: Db,
    receipts: Db,
    meta: Db,
    evidence: Db,
    /// Which block sends which messages: `dest:u16 || first seq:u64` (big-endian) to the
    /// height of the block whose receipts hold the messages to `dest` from that seq on.
    messages: Db,
    /// Committee hand-offs, by epoch (see the layout above).
    handoffs: Db,
}

/// The message index key of `dest` and `seq`.
fn message_key(dest: ShardId, seq: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[..2].copy_from_slice(&dest.0.to_be_bytes());
    k[2..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Address space reserved for each memory map (the files only grow as data is written).
const MAP_SIZE_BYTES: usize = 1 << 40;

fn open_env(path: &Path) -> Result<Env, StoreError> {
    std::fs::create_dir_all(path)
        .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
    // SAFETY: LMDB memory-maps the file. The mapping is only undefined behaviour if the file
    // is modified outside LMDB's own locking; this store is the only writer of its directory,
    // opens it once per `ChainStore`, and keeps no transaction across a process boundary.
    #[allow(unsafe_code)]
    let env = unsafe {
        EnvOpenOptions::new()
            .map_size(MAP_SIZE_BYTES)
            .max_dbs(8)
            .open(path)?
    };
    Ok(env)
}

/// Opens (creating if needed) the chain and state environments under `path`.
fn open_envs(path: &Path) -> Result<(Env, Env, Tables), StoreError> {
    let chain = open_env(&path.join("chain"))?;
    let state = open_env(&path.join("state"))?;
    let mut ctx = chain.write_txn()?;
    let mut stx = state.write_txn()?;
    let tables = Tables {
        state: state.create_database(&mut stx, Some("state"))?,
        buckets: state.create_database(&mut stx, Some("buckets"))?,
        checkpoints: state.create_database(&mut stx, Some("meta"))?,
        blocks: chain.create_database(&mut ctx, Some("blocks"))?,
        receipts: chain.create_database(&mut ctx, Some("receipts"))?,
        meta: chain.create_database(&mut ctx, Some("meta"))?,
        evidence: chain.create_database(&mut ctx, Some("evidence"))?,
        messages: chain.create_database(&mut ctx, Some("messages"))?,
        handoffs: chain.create_database(&mut ctx, Some("handoffs"))?,
    };
    stx.commit()?;
    ctx.commit()?;
    Ok((chain, state, tables))
}

/// Default number of tree levels kept in memory: 2^18 buckets, ~21 MB.
pub const DEFAULT_TREE_BITS: u8 = 18;
/// Merge pending state into the tables once this many entries changed since the last merge.
pub const CHECKPOINT_ENTRIES: usize = 250_000;
/// ... or once this many blocks were committed since (bounds the replay on open).
pub const CHECKPOINT_BLOCKS: u64 = 64;

/// State changes since the last checkpoint: `Some((value_hash, value))` or a deletion.
type Pending = BTreeMap<Hash, Option<(Hash, Vec<u8>)>>;

const DB_DIR: &str = "store";

/// The last applied block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Head {
    pub height: u64,
    pub id: Hash,
    pub state_root: Hash,
}

impl Head {
    fn to_bytes(self) -> Vec<u8> {
        let mut out = self.height.to_be_bytes().to_vec();
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.state_root.0);
        out
    }

    fn from_bytes(b: &[u8]) -> Result<Head, StoreError> {
        let mut r = Reader::new(b);
        let head = Head {
            height: r.u64()?,
            id: Hash::decode(&mut r)?,
            state_root: Hash::decode(&mut r)?,
        };
        r.finish()?;
        Ok(head)
    }
}

/// A checkpoint being written on a background thread.
struct Merge {
    /// The changes it writes (readable until it commits).
    entries: Arc<Pending>,
    /// The bucket summaries it writes (kept to retry after a failure).
    buckets: BTreeMap<u32, BucketSummary>,
    /// The height whose state the tables hold once it commits.
    height: u64,
    done: std::thread::JoinHandle<Result<(), StoreError>>,
}

/// One shard's chain on disk.
pub struct ChainStore {
    /// Blocks, receipts, head, evidence.
    env: Env,
    /// The state tables as of the last checkpoint.
    senv: Env,
    t: Tables,
    ledger: ShardLedger,
    top: TopTree,
    head: Head,
    /// Height of the last checkpoint: the tables hold the state as of this block.
    checkpoint: u64,
    /// A checkpoint is due after this many blocks ([`CHECKPOINT_BLOCKS`] unless changed).
    checkpoint_blocks: u64,
    /// A number fixed per store directory that staggers its checkpoints (see
    /// [`Self::first_delay`]).
    stagger: u64,
    /// Extra blocks before the first checkpoint after opening: `stagger % checkpoint_blocks`.
    /// Stores that open together (every validator of a shard on one machine, as in a devnet)
    /// would otherwise all checkpoint at the same height and compete for the cores at once;
    /// this spreads them over the interval for good.
    first_delay: u64,
    /// Changes since the checkpoint being written (or, with none, the last one).
    pending: Pending,
    pending_buckets: BTreeMap<u32, BucketSummary>,
    merging: Option<Merge>,
}

impl Drop for ChainStore {
    fn drop(&mut self) {
        // Let a checkpoint in progress finish (or fail) before the environment closes.
        if let Some(m) = self.merging.take() {
            let _ = m.done.join();
        }
    }
}

impl std::fmt::Debug for ChainStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainStore")
            .field("shard", &self.ledger.shard)
            .field("head", &self.head)
            .finish()
    }
}

impl ChainStore {
    /// Creates a new store in `dir` holding the genesis state of `shard`.
    pub fn create(
        dir: &Path,
        params: LedgerParams,
        shard: ShardId,
        allocations: &[(AccountId, Asset, u128)],
        foundation_seed: u128,
        bits: u8,
    ) -> Result<ChainStore, StoreError> {
        Self::create_with(
            dir,
            params,
            shard,
            allocations,
            foundation_seed,
            bits,
            &GenesisValidators::default(),
        )
    }

    /// As [`Self::create`], with the genesis validators (registry and epoch-0 committees).
    pub fn create_with(
        dir: &Path,
        params: LedgerParams,
        shard: ShardId,
        allocations: &[(AccountId, Asset, u128)],
        foundation_seed: u128,
        bits: u8,
        validators: &GenesisValidators,
    ) -> Result<ChainStore, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        let path = dir.join(DB_DIR);
        if path.exists() {
            return Err(StoreError::AlreadyExists(path.display().to_string()));
        }
        params
            .validate()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        // Genesis is written to a temporary directory and renamed into place, so a crash during
        // creation never leaves a half-initialized store behind.
        let tmp = dir.join(format!("{DB_DIR}.creating"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)
                .map_err(|e| StoreError::Io(format!("{}: {e}", tmp.display())))?;
        }
        {
            let (env, senv, t) = open_envs(&tmp)?;
            let ledger = ShardLedger::new(params, shard);
            let writes = ledger.genesis_writes_with(allocations, foundation_seed, validators);
            let mut top = TopTree::new(bits);
            let changed = {
                let rtx = senv.read_txn()?;
                let empty = Pending::new();
                let view = View {
                    txn: &rtx,
                    t,
                    pending: &empty,
                    merging: None,
                };
                top.apply(&view, &writes)?
            };
            let genesis = ledger.genesis_block(top.root());
            let head = Head {
                height: 0,
                id: genesis.header.id(),
                state_root: top.root(),
            };
            let mut stx = senv.write_txn()?;
            let entries = writes
                .iter()
                .map(|(k, v)| (k, v.as_ref().map(|v| (value_hash(v), v.as_slice()))));
            write_state(&mut stx, t, entries, &changed.into_iter().collect())?;
            t.checkpoints
                .put(&mut stx, b"checkpoint", &0u64.to_be_bytes())?;
            stx.commit()?;
            let mut wtx = env.write_txn()?;
            t.meta.put(&mut wtx, b"params", &ledger.params.to_bytes())?;
            t.meta.put(&mut wtx, b"shard", &shard.to_bytes())?;
            t.meta.put(&mut wtx, b"bits", &[top.bits()])?;
            t.meta.put(&mut wtx, b"head", &head.to_bytes())?;
            t.blocks
                .put(&mut wtx, &0u64.to_be_bytes(), &genesis.to_bytes())?;
            t.receipts.put(&mut wtx, &0u64.to_be_bytes(), &[])?;
            wtx.commit()?;
            tracing::info!(shard = %shard, root = %head.state_root, "created chain store");
        }
        std::fs::rename(&tmp, &path)
            .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
        Self::open(dir)
    }

    /// Opens an existing store and checks that its tree reproduces the committed root.
    pub fn open(dir: &Path) -> Result<ChainStore, StoreError> {
        let path = dir.join(DB_DIR);
        if !path.exists() {
            return Err(StoreError::NotInitialized(path.display().to_string()));
        }
        let (env, senv, t) = open_envs(&path)?;
        let (ledger, top, head, checkpoint) = {
            let rtx = env.read_txn()?;
            let srtx = senv.read_txn()?;
            let get = |k: &str| -> Result<Vec<u8>, StoreError> {
                Ok(t.meta
                    .get(&rtx, k.as_bytes())?
                    .ok_or_else(|| StoreError::Corrupt(format!("meta `{k}` missing")))?
                    .to_vec())
            };
            let params = LedgerParams::from_bytes(&get("params")?)?;
            let shard = ShardId::from_bytes(&get("shard")?)?;
            let bits = *get("bits")?
                .first()
                .ok_or_else(|| StoreError::Corrupt("meta `bits` empty".into()))?;
            let head = Head::from_bytes(&get("head")?)?;
            let checkpoint = starling_ledger::records::decode_u64(
                t.checkpoints
                    .get(&srtx, b"checkpoint")?
                    .ok_or_else(|| StoreError::Corrupt("state `checkpoint` missing".into()))?,
            )?;
            if checkpoint > head.height {
                return Err(StoreError::Corrupt(format!(
                    "the state checkpoint {checkpoint} is past the head {}",
                    head.height
                )));
            }
            let mut summaries = Vec::new();
            for row in t.buckets.iter(&srtx)? {
                let (k, v) = row?;
                let k: [u8; 4] = k
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("bucket key".into()))?;
                summaries.push((u32::from_be_bytes(k), decode_summary(v)?));
            }
            (
                ShardLedger::new(params, shard),
                TopTree::from_buckets(bits, summaries),
                head,
                checkpoint,
            )
        };
        let mut store = ChainStore {
            env,
            senv,
            t,
            ledger,
            top,
            head: Head {
                height: checkpoint,
                id: Hash::ZERO,
                state_root: Hash::ZERO,
            },
            checkpoint,
            pending: Pending::new(),
            pending_buckets: BTreeMap::new(),
            merging: None,
            checkpoint_blocks: CHECKPOINT_BLOCKS,
            stagger: {
                use std::hash::{Hash as _, Hasher as _};
                let mut h = std::hash::DefaultHasher::new();
                path.hash(&mut h);
                h.finish()
            },
            first_delay: 0,
        };
        store.first_delay = store.stagger % store.checkpoint_blocks;
        store.replay(head)?;
        store.ensure_handoff()?;
        tracing::info!(shard = %store.ledger.shard, height = head.height, "opened chain store");
        Ok(store)
    }

    /// Re-executes the blocks after the checkpoint, rebuilding the pending state, and checks
    /// that each reproduces its committed roots.
    fn replay(&mut self, head: Head) -> Result<(), StoreError> {
        if head.height > self.checkpoint {
            tracing::info!(
                from = self.checkpoint + 1,
                to = head.height,
                "replaying blocks after the last checkpoint"
            );
        }
        self.head.id = self
            .block(self.checkpoint)?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("checkpoint block {} missing", self.checkpoint))
            })?
            .header
            .id();
        self.head.state_root = self.top.root();
        for h in self.checkpoint + 1..=head.height {
            let block = self
                .block(h)?
                .ok_or_else(|| StoreError::Corrupt(format!("block {h} missing")))?;
            // Committed blocks were checked in full when first applied; replaying them only
            // rebuilds the state (every root is checked again).
            let (executed, change) = self.execute(&BlockInput::from_block(&block), &|_| true)?;
            self.ledger
                .check_header(&block.header, &executed, self.top.root())
                .map_err(|e| StoreError::Corrupt(format!("replaying block {h}: {e}")))?;
            self.absorb(executed.writes, &change);
            self.head = Head {
                height: h,
                id: block.header.id(),
                state_root: block.header.state_root,
            };
        }
        let (top, head) = (&self.top, head);
        if top.root() != head.state_root || self.head != head {
            return Err(StoreError::Corrupt(format!(
                "state tree root {} does not match the committed root {} at height {}",
                top.root(),
                head.state_root,
                head.height
            )));
        }
        Ok(())
    }

    pub fn head(&self) -> Head {
        self.head
    }

    pub fn ledger(&self) -> &ShardLedger {
        &self.ledger
    }

    /// Builds the next block from `txs` and `inbound`, commits it, and returns it.
    pub fn propose(
        &mut self,
        txs: Vec<TxEnvelope>,
        inbound: Vec<InboundBatch>,
        timestamp_ms: u64,
        proposer: AccountId,
    ) -> Result<(Block, Executed), StoreError> {
        let input = BlockInput {
            height: self.head.height + 1,
            parent: self.head.id,
            timestamp_ms,
            proposer,
            reveal: Hash::ZERO,
            txs,
            inbound,
        };
        let (mut executed, change) = self.execute(&input, &|_| false)?;
        let header = self.ledger.header(&input, &executed, self.top.root());
        let block = Block {
            header,
            txs: input.txs,
            inbound: input.inbound,
        };
        if let Err(e) = self.commit(&block, &mut executed, &change) {
            self.top.set_buckets(&change.undo);
            return Err(e);
        }
        Ok((block, executed))
    }

    /// Verifies a block built elsewhere against this chain and commits it. On any error
    /// nothing changes, on disk or in memory. Here and wherever a block commits, the effects
    /// returned hold no writes: they move into the store's state.
    pub fn apply(&mut self, block: &Block) -> Result<Executed, StoreError> {
        self.apply_with(block, &|_| false)
    }

    /// As [`Self::apply`], skipping the signatures `checked` says were verified (see
    /// [`starling_ledger::ShardLedger::execute_with`]); every root is still checked.
    pub fn apply_with(
        &mut self,
        block: &Block,
        checked: &dyn Fn(&Hash) -> bool,
    ) -> Result<Executed, StoreError> {
        if block.header.parent != self.head.id {
            return Err(starling_ledger::BlockError::WrongParent.into());
        }
        let (executed, change) = self.execute(&BlockInput::from_block(block), checked)?;
        self.check_and_commit(block, executed, &change)
    }

    /// Checks a block's header against its execution (whose writes are already in the tree)
    /// and commits it; on any error puts the tree back.
    fn check_and_commit(
        &mut self,
        block: &Block,
        mut executed: Executed,
        change: &TreeChange,
    ) -> Result<Executed, StoreError> {
        let result = self
            .ledger
            .check_header(&block.header, &executed, self.top.root())
            .map_err(StoreError::from)
            .and_then(|()| self.commit(block, &mut executed, change));
        match result {
            Ok(()) => Ok(executed),
            Err(e) => {
                self.top.set_buckets(&change.undo);
                Err(e)
            }
        }
    }

    /// Executes `input` on the committed state with `ancestors` (uncommitted writes of its
    /// unfinalized ancestors) on top, and computes the state root it leads to. Changes nothing.
    pub fn speculate(
        &mut self,
        ancestors: &WriteSet,
        input: &BlockInput,
    ) -> Result<(Executed, Hash), StoreError> {
        self.speculate_with(ancestors, input, &|_| false)
    }

    /// As [`Self::speculate`], skipping signatures `checked` says were verified (see
    /// [`starling_ledger::ShardLedger::execute_with`]).
    pub fn speculate_with(
        &mut self,
        ancestors: &WriteSet,
        input: &BlockInput,
        checked: &dyn Fn(&Hash) -> bool,
    ) -> Result<(Executed, Hash), StoreError> {
        self.speculate_tree(ancestors, input, checked)
            .map(|(executed, root, _)| (executed, root))
    }

    /// As [`Self::speculate_with`], also returning the state tree's bucket summaries after the
    /// ancestors and this block: once the ancestors are committed, they are exactly what
    /// committing this block makes them ([`Self::commit_speculated`]).
    #[allow(clippy::type_complexity)]
    pub fn speculate_tree(
        &mut self,
        ancestors: &WriteSet,
        input: &BlockInput,
        checked: &dyn Fn(&Hash) -> bool,
    ) -> Result<(Executed, Hash, Vec<(u32, BucketSummary)>), StoreError> {
        let rtx = self.senv.read_txn()?;
        let view = View::over(&rtx, self.t, &self.pending, &self.merging);
        let executed = self.ledger.execute_with(
            &starling_ledger::Layered {
                base: &view,
                top: ancestors,
            },
            input,
            checked,
        )?;
        // The tree with the ancestors' and this block's writes, measured and put back.
        let mut all = ancestors.clone();
        all.extend(executed.writes.iter().map(|(k, v)| (*k, v.clone())));
        let (changed, journal) = self.top.apply_journaled(&view, &all)?;
        let root = self.top.root();
        self.top.rollback(journal);
        Ok((executed, root, changed))
    }

    /// Commits a block speculated by [`Self::speculate_tree`] whose ancestors are now all
    /// committed (its parent is the head): the tree takes the speculated bucket summaries
    /// instead of hashing the block's writes again, and the header is checked against the
    /// result as always.
    pub fn commit_speculated(
        &mut self,
        block: &Block,
        executed: Executed,
        summaries: &[(u32, BucketSummary)],
    ) -> Result<Executed, StoreError> {
        if block.header.parent != self.head.id {
            return Err(starling_ledger::BlockError::WrongParent.into());
        }
        let change = TreeChange {
            changed: summaries.to_vec(),
            undo: summaries
                .iter()
                .map(|(b, _)| (*b, self.top.bucket(*b)))
                .collect(),
            hashes: Vec::new(),
        };
        self.top.set_buckets(summaries);
        self.check_and_commit(block, executed, &change)
    }

    /// Commits a block already executed on the current head (by [`Self::speculate`]), after
    /// checking its header against that execution.
    pub fn commit_executed(
        &mut self,
        block: &Block,
        executed: Executed,
    ) -> Result<Executed, StoreError> {
        if block.header.parent != self.head.id {
            return Err(starling_ledger::BlockError::WrongParent.into());
        }
        let change = {
            let rtx = self.senv.read_txn()?;
            let view = View::over(&rtx, self.t, &self.pending, &self.merging);
            update_tree(&mut self.top, &view, &executed.writes)?
        };
        self.check_and_commit(block, executed, &change)
    }

    /// Executes `input` against the current state and applies its writes to the in-memory
    /// tree. Returns the effects and the tree change.
    fn execute(
        &mut self,
        input: &BlockInput,
        checked: &dyn Fn(&Hash) -> bool,
    ) -> Result<(Executed, TreeChange), StoreError> {
        let rtx = self.senv.read_txn()?;
        let view = View::over(&rtx, self.t, &self.pending, &self.merging);
        let executed = self.ledger.execute_with(&view, input, checked)?;
        let change = update_tree(&mut self.top, &view, &executed.writes)?;
        Ok((executed, change))
    }

    /// Folds a committed block's changes into the pending state.
    fn absorb(&mut self, writes: WriteSet, change: &TreeChange) {
        if change.hashes.len() == writes.len() {
            for ((k, v), h) in writes.into_iter().zip(&change.hashes) {
                self.pending.insert(k, v.zip(*h).map(|(v, h)| (h, v)));
            }
        } else {
            for (k, v) in writes {
                self.pending.insert(k, v.map(|v| (value_hash(&v), v)));
            }
        }
        self.pending_buckets.extend(change.changed.iter().copied());
    }

    /// Commits a block, moving its writes into the pending state; starts a checkpoint of the
    /// pending state when one is due.
    fn commit(
        &mut self,
        block: &Block,
        executed: &mut Executed,
        change: &TreeChange,
    ) -> Result<(), StoreError> {
        let head = Head {
            height: block.header.height,
            id: block.header.id(),
            state_root: block.header.state_root,
        };
        let t = self.t;
        let mut wtx = self.env.write_txn()?;
        t.blocks
            .put(&mut wtx, &head.height.to_be_bytes(), &block.to_bytes())?;
        t.receipts.put(
            &mut wtx,
            &head.height.to_be_bytes(),
            &encode_receipts(&executed.receipts),
        )?;
        // The message index, in the same transaction as the block: where each destination's
        // messages from a sequence number on are, at any age (invariant 6).
        let mut first: BTreeMap<ShardId, u64> = BTreeMap::new();
        for r in &executed.receipts {
            if let Receipt::Message(m) = r {
                let e = first.entry(m.dest).or_insert(m.seq);
                *e = (*e).min(m.seq);
            }
        }
        for (dest, seq) in first {
            t.messages.put(
                &mut wtx,
                &message_key(dest, seq),
                &head.height.to_be_bytes(),
            )?;
        }
        t.meta.put(&mut wtx, b"head", &head.to_bytes())?;
        wtx.commit()?;
        self.absorb(std::mem::take(&mut executed.writes), change);
        self.head = head;
        // The block is committed either way; a missing hand-off is written on open.
        if let Err(e) = self.ensure_handoff() {
            tracing::error!(error = %e, "cannot record a committee hand-off");
        }
        // The block is committed whatever becomes of an earlier checkpoint: a failed one is
        // logged and its changes are written by the next.
        let _ = self.finish_merge(false);
        let due = self.pending.len() >= CHECKPOINT_ENTRIES
            || head.height - self.checkpoint >= self.checkpoint_blocks + self.first_delay;
        if due && self.merging.is_none() {
            self.start_merge();
        }
        Ok(())
    }

    /// Hands the pending state to a background thread that writes it into the state tables
    /// in one transaction, with the head's height as the new checkpoint.
    fn start_merge(&mut self) {
        self.first_delay = 0;
        let entries = Arc::new(std::mem::take(&mut self.pending));
        let buckets = std::mem::take(&mut self.pending_buckets);
        let height = self.head.height;
        let (senv, t) = (self.senv.clone(), self.t);
        let to_write = entries.clone();
        let summaries = buckets.clone();
        let done = std::thread::spawn(move || -> Result<(), StoreError> {
            let mut stx = senv.write_txn()?;
            write_state(
                &mut stx,
                t,
                to_write
                    .iter()
                    .map(|(k, v)| (k, v.as_ref().map(|(h, v)| (*h, v.as_slice())))),
                &summaries,
            )?;
            t.checkpoints
                .put(&mut stx, b"checkpoint", &height.to_be_bytes())?;
            stx.commit()?;
            Ok(())
        });
        self.merging = Some(Merge {
            entries,
            buckets,
            height,
            done,
        });
    }

    /// Takes note of a finished checkpoint (waiting for it with `wait`). A failed one puts its
    /// changes back under the pending ones, to be written by the next.
    fn finish_merge(&mut self, wait: bool) -> Result<(), StoreError> {
        let finished = self
            .merging
            .as_ref()
            .is_some_and(|m| wait || m.done.is_finished());
        if !finished {
            return Ok(());
        }
        let Some(m) = self.merging.take() else {
            return Ok(());
        };
        let outcome = m
            .done
            .join()
            .unwrap_or_else(|_| Err(StoreError::Db("the checkpoint thread panicked".into())));
        match outcome {
            Ok(()) => {
                self.checkpoint = m.height;
                tracing::debug!(height = m.height, "state checkpoint");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "state checkpoint failed; retrying with the next");
                let entries = Arc::try_unwrap(m.entries).unwrap_or_else(|a| (*a).clone());
                for (k, v) in entries {
                    self.pending.entry(k).or_insert(v);
                }
                for (b, summary) in m.buckets {
                    self.pending_buckets.entry(b).or_insert(summary);
                }
                Err(e)
            }
        }
    }

    /// Checkpoints after every `blocks` blocks instead of [`CHECKPOINT_BLOCKS`] (at least 1):
    /// shorter replays on open, more writes. The crash test checkpoints constantly.
    pub fn set_checkpoint_blocks(&mut self, blocks: u64) {
        self.checkpoint_blocks = blocks.max(1);
        self.first_delay = self.stagger % self.checkpoint_blocks;
    }

    /// Waits for a checkpoint in progress, if any (for tests and orderly shutdown).
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.finish_merge(true)
    }

    /// The current value under a key hash.
    pub fn get(&self, key_hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        let rtx = self.senv.read_txn()?;
        let view = View::over(&rtx, self.t, &self.pending, &self.merging);
        Ok(view.get(key_hash)?)
    }

    /// The current value under a key hash with its proof against [`Head::state_root`].
    pub fn prove(&self, key_hash: &Hash) -> Result<(Option<Vec<u8>>, Proof), StoreError> {
        let rtx = self.senv.read_txn()?;
        let view = View::over(&rtx, self.t, &self.pending, &self.merging);
        let value = view.get(key_hash)?;
        let proof = self.top.prove(&view, key_hash)?;
        Ok((value, proof))
    }

    pub fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        let rtx = self.env.read_txn()?;
        let Some(v) = self.t.blocks.get(&rtx, &height.to_be_bytes())? else {
            return Ok(None);
        };
        Ok(Some(Block::from_bytes(v)?))
    }

    pub fn receipts(&self, height: u64) -> Result<Option<Vec<Receipt>>, StoreError> {
        let rtx = self.env.read_txn()?;
        let Some(v) = self.t.receipts.get(&rtx, &height.to_be_bytes())? else {
            return Ok(None);
        };
        Ok(Some(decode_receipts(v)?))
    }

    /// Heights of the finalized blocks that sent messages to `dest` with sequence numbers from
    /// `seq` on, oldest first: the block holding `seq` itself, then each later block with
    /// messages to `dest`; at most `limit`. Found through the message index, whatever the
    /// age of the messages.
    pub fn message_heights(
        &self,
        dest: ShardId,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let rtx = self.env.read_txn()?;
        let floor = self
            .t
            .messages
            .get_lower_than_or_equal_to(&rtx, &message_key(dest, seq))?
            .filter(|(k, _)| k.len() == 10 && k[..2] == dest.0.to_be_bytes())
            .map(|(k, _)| k.to_vec());
        let start = floor.unwrap_or_else(|| message_key(dest, seq).to_vec());
        let end = message_key(dest, u64::MAX);
        let range = (
            std::ops::Bound::Included(&start[..]),
            std::ops::Bound::Included(&end[..]),
        );
        let mut out = Vec::new();
        for row in self.t.messages.range(&rtx, &range)? {
            let (_, v) = row?;
            let height = v
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("message index entry".into()))?;
            out.push(height);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// A read-only view of the current state, for the ledger's query helpers.
    pub fn with_view<T>(&self, f: impl FnOnce(&dyn StateView) -> T) -> Result<T, StoreError> {
        let rtx = self.senv.read_txn()?;
        let view = View::over(&rtx, self.t, &self.pending, &self.merging);
        Ok(f(&view))
    }
}

fn write_state<'a>(
    wtx: &mut RwTxn<'_>,
    t: Tables,
    entries: impl Iterator<Item = (&'a Hash, Option<(Hash, &'a [u8])>)>,
    changed: &BTreeMap<u32, BucketSummary>,
) -> Result<(), StoreError> {
    let mut buf = Vec::with_capacity(256);
    for (k, v) in entries {
        match v {
            Some((vh, v)) => {
                buf.clear();
                buf.extend_from_slice(&vh.0);
                buf.extend_from_slice(v);
                t.state.put(wtx, &k.0, &buf)?;
            }
            None => {
                t.state.delete(wtx, &k.0)?;
            }
        }
    }
    for (b, s) in changed {
        if s.count == 0 {
            t.buckets.delete(wtx, &b.to_be_bytes())?;
        } else {
            let mut v = s.hash.0.to_vec();
            v.extend_from_slice(&s.count.to_be_bytes());
            t.buckets.put(wtx, &b.to_be_bytes(), &v)?;
        }
    }
    Ok(())
}

fn decode_summary(b: &[u8]) -> Result<BucketSummary, StoreError> {
    let mut r = Reader::new(b);
    let s = BucketSummary {
        hash: Hash::decode(&mut r)?,
        count: r.u64()?,
    };
    r.finish()?;
    Ok(s)
}

fn encode_receipts(receipts: &[Receipt]) -> Vec<u8> {
    let mut out = Vec::with_capacity(receipts.len() * 80);
    let mut buf = Vec::new();
    for r in receipts {
        buf.clear();
        r.encode(&mut buf);
        out.extend_from_slice(&(buf.len() as u32).to_be_bytes());
        out.extend_from_slice(&buf);
    }
    out
}

fn decode_receipts(b: &[u8]) -> Result<Vec<Receipt>, StoreError> {
    let mut r = Reader::new(b);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        let bytes = r.bytes32("receipt", 64 * 1024)?;
        out.push(Receipt::from_bytes(bytes)?);
    }
    Ok(out)
}
