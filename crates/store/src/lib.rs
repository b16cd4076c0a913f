//! Starling's on-disk chain store for one shard: blocks, receipts and the authenticated state
//! in an embedded database (redb), where applying a block is one atomic transaction.
//!
//! # Crash safety (invariant)
//! Everything a block changes (state entries, tree bucket summaries, the block, its receipts,
//! the head) is written in a single redb write transaction committed with immediate
//! durability. A process killed at any moment reopens at the last committed block, whose
//! state root the reopened tree reproduces; [`ChainStore::open`] checks that it does.
//!
//! # Layout
//! | table | key | value |
//! |---|---|---|
//! | `state` | key hash (32 bytes) | `value_hash (32) || value` |
//! | `buckets` | bucket index (`u32`) | `hash (32) || count (u64 BE)` |
//! | `blocks` | height | encoded block |
//! | `receipts` | height | receipts, each `u32 BE length || encoded receipt` |
//! | `meta` | name | `params`, `shard`, `bits`, `head` |

mod error;
pub use error::StoreError;

use redb::{Database, Durability, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition};
use starling_ledger::{BlockInput, Executed, LedgerParams, ShardLedger, StateError, StateView};
use starling_state::{bucket_bounds, bucket_of, value_hash, BucketSummary, Leaf, LeafSource, Proof, TopTree, WriteSet};
use starling_types::codec::{Decode, Encode, Reader};
use starling_types::{AccountId, Asset, Block, Hash, InboundBatch, Receipt, ShardId, TxEnvelope};
use std::path::Path;

const STATE: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("state");
const BUCKETS: TableDefinition<u32, &[u8]> = TableDefinition::new("buckets");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("receipts");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Default number of tree levels kept in memory: 2^18 buckets, ~21 MB.
pub const DEFAULT_TREE_BITS: u8 = 18;

const DB_FILE: &str = "chain.redb";

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
        let head = Head { height: r.u64()?, id: Hash::decode(&mut r)?, state_root: Hash::decode(&mut r)? };
        r.finish()?;
        Ok(head)
    }
}

/// One shard's chain on disk.
pub struct ChainStore {
    db: Database,
    ledger: ShardLedger,
    top: TopTree,
    head: Head,
}

impl std::fmt::Debug for ChainStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainStore").field("shard", &self.ledger.shard).field("head", &self.head).finish()
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
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
        if path.exists() {
            return Err(StoreError::AlreadyExists(path.display().to_string()));
        }
        params.validate().map_err(|e| StoreError::Config(e.to_string()))?;
        // Genesis is written to a temporary file and renamed into place, so a crash during
        // creation never leaves a half-initialized store behind.
        let tmp = dir.join(format!("{DB_FILE}.creating"));
        if tmp.exists() {
            std::fs::remove_file(&tmp).map_err(|e| StoreError::Io(format!("{}: {e}", tmp.display())))?;
        }
        {
            let db = Database::create(&tmp)?;
            let wtx = db.begin_write()?;
            wtx.open_table(STATE)?;
            wtx.open_table(BUCKETS)?;
            wtx.commit()?;
            let ledger = ShardLedger::new(params, shard);
            let writes = ledger.genesis_writes(allocations, foundation_seed);
            let mut top = TopTree::new(bits);
            let changed = {
                let rtx = db.begin_read()?;
                let view = View::open(&rtx)?;
                top.apply(&view, &writes)?
            };
            let head = Head { height: 0, id: ledger.params.genesis_id(shard), state_root: top.root() };
            let mut wtx = db.begin_write()?;
            wtx.set_durability(Durability::Immediate);
            {
                write_state(&wtx, &writes, &changed)?;
                let mut meta = wtx.open_table(META)?;
                meta.insert("params", ledger.params.to_bytes().as_slice())?;
                meta.insert("shard", shard.to_bytes().as_slice())?;
                meta.insert("bits", [top.bits()].as_slice())?;
                meta.insert("head", head.to_bytes().as_slice())?;
                wtx.open_table(BLOCKS)?;
                wtx.open_table(RECEIPTS)?;
            }
            wtx.commit()?;
            tracing::info!(shard = %shard, root = %head.state_root, "created chain store");
        }
        std::fs::rename(&tmp, &path).map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
        Self::open(dir)
    }
    /// Opens an existing store and checks that its tree reproduces the committed root.
    pub fn open(dir: &Path) -> Result<ChainStore, StoreError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::NotInitialized(path.display().to_string()));
        }
        let db = Database::open(&path)?;
        let (ledger, top, head) = {
            let rtx = db.begin_read()?;
            let meta = rtx.open_table(META)?;
            let get = |k: &str| -> Result<Vec<u8>, StoreError> {
                Ok(meta.get(k)?.ok_or_else(|| StoreError::Corrupt(format!("meta `{k}` missing")))?.value().to_vec())
            };
            let params = LedgerParams::from_bytes(&get("params")?)?;
            let shard = ShardId::from_bytes(&get("shard")?)?;
            let bits = *get("bits")?.first().ok_or_else(|| StoreError::Corrupt("meta `bits` empty".into()))?;
            let head = Head::from_bytes(&get("head")?)?;
            let buckets = rtx.open_table(BUCKETS)?;
            let mut summaries = Vec::with_capacity(buckets.len()? as usize);
            for row in buckets.iter()? {
                let (k, v) = row?;
                summaries.push((k.value(), decode_summary(v.value())?));
            }
            (ShardLedger::new(params, shard), TopTree::from_buckets(bits, summaries), head)
        };
        if top.root() != head.state_root {
            return Err(StoreError::Corrupt(format!(
                "state tree root {} does not match the committed root {} at height {}",
                top.root(),
                head.state_root,
                head.height
            )));
        }
        tracing::info!(shard = %ledger.shard, height = head.height, "opened chain store");
        Ok(ChainStore { db, ledger, top, head })
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
        let input = BlockInput { height: self.head.height + 1, parent: self.head.id, timestamp_ms, proposer, txs, inbound };
        let rtx = self.db.begin_read()?;
        let view = View::open(&rtx)?;
        let executed = self.ledger.execute(&view, &input)?;
        let (changed, undo) = self.update_tree(&view, &executed.writes)?;
        drop(view);
        drop(rtx);
        let header = self.ledger.header(&input, &executed, self.top.root());
        let block = Block { header, txs: input.txs, inbound: input.inbound };
        if let Err(e) = self.commit(&block, &executed, &changed) {
            self.top.set_buckets(&undo);
            return Err(e);
        }
        Ok((block, executed))
    }

    /// Verifies a block built elsewhere against this chain and commits it. On any error
    /// nothing changes, on disk or in memory.
    pub fn apply(&mut self, block: &Block) -> Result<Executed, StoreError> {
        if block.header.parent != self.head.id {
            return Err(starling_ledger::BlockError::WrongParent.into());
        }
        let input = BlockInput::from_block(block);
        let rtx = self.db.begin_read()?;
        let view = View::open(&rtx)?;
        let executed = self.ledger.execute(&view, &input)?;
        let (changed, undo) = self.update_tree(&view, &executed.writes)?;
        drop(view);
        drop(rtx);
        let result = self
            .ledger
            .check_header(&block.header, &executed, self.top.root())
            .map_err(StoreError::from)
            .and_then(|()| self.commit(block, &executed, &changed));
        if let Err(e) = result {
            self.top.set_buckets(&undo);
            return Err(e);
        }
        Ok(executed)
    }

    /// Applies writes to the in-memory tree; returns the changed buckets and how to undo them.
    #[allow(clippy::type_complexity)]
    fn update_tree(
        &mut self,
        view: &View,
        writes: &WriteSet,
    ) -> Result<(Vec<(u32, BucketSummary)>, Vec<(u32, BucketSummary)>), StoreError> {
        let bits = self.top.bits();
        let mut undo: Vec<(u32, BucketSummary)> = Vec::new();
        for k in writes.keys() {
            let b = bucket_of(k, bits);
            if undo.last().map(|(l, _)| *l) != Some(b) {
                undo.push((b, self.top.bucket(b)));
            }
        }
        let changed = self.top.apply(view, writes)?;
        Ok((changed, undo))
    }

    fn commit(&mut self, block: &Block, executed: &Executed, changed: &[(u32, BucketSummary)]) -> Result<(), StoreError> {
        let head = Head { height: block.header.height, id: block.header.id(), state_root: block.header.state_root };
        let mut wtx = self.db.begin_write()?;
        wtx.set_durability(Durability::Immediate);
        {
            write_state(&wtx, &executed.writes, changed)?;
            wtx.open_table(BLOCKS)?.insert(head.height, block.to_bytes().as_slice())?;
            wtx.open_table(RECEIPTS)?.insert(head.height, encode_receipts(&executed.receipts).as_slice())?;
            wtx.open_table(META)?.insert("head", head.to_bytes().as_slice())?;
        }
        wtx.commit()?;
        self.head = head;
        Ok(())
    }

    /// The current value under a key hash.
    pub fn get(&self, key_hash: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        let rtx = self.db.begin_read()?;
        let view = View::open(&rtx)?;
        Ok(view.get(key_hash)?)
    }

    /// The current value under a key hash with its proof against [`Head::state_root`].
    pub fn prove(&self, key_hash: &Hash) -> Result<(Option<Vec<u8>>, Proof), StoreError> {
        let rtx = self.db.begin_read()?;
        let view = View::open(&rtx)?;
        let value = view.get(key_hash)?;
        let proof = self.top.prove(&view, key_hash)?;
        Ok((value, proof))
    }

    pub fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        let rtx = self.db.begin_read()?;
        let t = rtx.open_table(BLOCKS)?;
        let Some(v) = t.get(height)? else { return Ok(None) };
        Ok(Some(Block::from_bytes(v.value())?))
    }

    pub fn receipts(&self, height: u64) -> Result<Option<Vec<Receipt>>, StoreError> {
        let rtx = self.db.begin_read()?;
        let t = rtx.open_table(RECEIPTS)?;
        let Some(v) = t.get(height)? else { return Ok(None) };
        Ok(Some(decode_receipts(v.value())?))
    }

    /// A read-only view of the current state, for the ledger's query helpers.
    pub fn with_view<T>(&self, f: impl FnOnce(&dyn StateView) -> T) -> Result<T, StoreError> {
        let rtx = self.db.begin_read()?;
        let view = View::open(&rtx)?;
        Ok(f(&view))
    }
}

fn write_state(wtx: &redb::WriteTransaction, writes: &WriteSet, changed: &[(u32, BucketSummary)]) -> Result<(), StoreError> {
    let mut state = wtx.open_table(STATE)?;
    let mut buf = Vec::with_capacity(256);
    for (k, v) in writes {
        match v {
            Some(v) => {
                buf.clear();
                buf.extend_from_slice(&value_hash(v).0);
                buf.extend_from_slice(v);
                state.insert(&k.0, buf.as_slice())?;
            }
            None => {
                state.remove(&k.0)?;
            }
        }
    }
    let mut buckets = wtx.open_table(BUCKETS)?;
    for (b, s) in changed {
        if s.count == 0 {
            buckets.remove(*b)?;
        } else {
            let mut v = s.hash.0.to_vec();
            v.extend_from_slice(&s.count.to_be_bytes());
            buckets.insert(*b, v.as_slice())?;
        }
    }
    Ok(())
}

fn decode_summary(b: &[u8]) -> Result<BucketSummary, StoreError> {
    let mut r = Reader::new(b);
    let s = BucketSummary { hash: Hash::decode(&mut r)?, count: r.u64()? };
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

/// The state as of the last commit, read through one redb snapshot.
struct View {
    state: redb::ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
}

impl View {
    fn open(rtx: &ReadTransaction) -> Result<View, StoreError> {
        Ok(View { state: rtx.open_table(STATE)? })
    }
}

impl StateView for View {
    fn get(&self, key_hash: &Hash) -> Result<Option<Vec<u8>>, StateError> {
        match self.state.get(&key_hash.0) {
            Ok(None) => Ok(None),
            Ok(Some(v)) => {
                let v = v.value();
                if v.len() < 32 {
                    return Err(StateError(format!("state entry {key_hash} is truncated")));
                }
                Ok(Some(v[32..].to_vec()))
            }
            Err(e) => Err(StateError(e.to_string())),
        }
    }
}

impl LeafSource for View {
    type Error = StoreError;
    fn bucket_leaves(&self, bits: u8, bucket: u32, out: &mut Vec<Leaf>) -> Result<(), StoreError> {
        let (lo, hi) = bucket_bounds(bits, bucket);
        for row in self.state.range::<&[u8; 32]>(&lo.0..=&hi.0)? {
            let (k, v) = row?;
            let v = v.value();
            if v.len() < 32 {
                return Err(StoreError::Corrupt("state entry truncated".into()));
            }
            let mut vh = [0u8; 32];
            vh.copy_from_slice(&v[..32]);
            out.push((Hash(*k.value()), Hash(vh)));
        }
        Ok(())
    }
}
