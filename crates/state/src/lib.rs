//! Starling's authenticated state: a map from 32-byte key hashes to values whose root commits
//! to every entry and proves membership and non-membership of any key.
//!
//! # The tree (normative)
//! A binary sparse Merkle tree over the 256 bits of `key_hash = blake3(key)`, most
//! significant bit first, with compressed paths:
//! - a subtree with no entries hashes to [`EMPTY`] (32 zero bytes);
//! - a subtree with exactly one entry hashes to
//!   `leaf = blake3_keyed(LEAF_KEY, key_hash || value_hash)` where `value_hash = blake3(value)`,
//!   wherever that subtree sits;
//! - a subtree with two or more entries hashes to `blake3_keyed(NODE_KEY, left || right)`.
//!
//! `LEAF_KEY = blake3("starling/state/leaf/v1")` and `NODE_KEY = blake3("starling/state/node/v1")`
//! separate the two domains; keyed hashing keeps every tree hash a single 64-byte BLAKE3
//! compression.
//!
//! The root depends only on the set of entries, not on how they are stored. This crate keeps
//! the top `bits` levels in memory ([`TopTree`]) and reads the entries of one *bucket* (the
//! keys sharing the first `bits` bits) from a [`LeafSource`] when a bucket changes or a proof
//! is requested, so an update costs one bucket read and `O(bits + log bucket)` hashes.

mod proof;
mod top;

pub use proof::{Proof, ProofError, Terminal};
pub use top::{BucketSummary, Journal, TopTree};

use starling_types::Hash;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The hash of an empty subtree.
pub const EMPTY: Hash = Hash::ZERO;

/// Where a key lives in the tree.
pub fn key_hash(key: &[u8]) -> Hash {
    Hash::of(&[key])
}

pub fn value_hash(value: &[u8]) -> Hash {
    Hash::of(&[value])
}

fn domain_key(cell: &'static OnceLock<[u8; 32]>, label: &str) -> &'static [u8; 32] {
    cell.get_or_init(|| *blake3::hash(label.as_bytes()).as_bytes())
}

fn keyed_pair(key: &[u8; 32], a: &Hash, b: &Hash) -> Hash {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&a.0);
    buf[32..].copy_from_slice(&b.0);
    Hash(*blake3::keyed_hash(key, &buf).as_bytes())
}

pub fn leaf_hash(key_hash: &Hash, value_hash: &Hash) -> Hash {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    keyed_pair(
        domain_key(&KEY, "starling/state/leaf/v1"),
        key_hash,
        value_hash,
    )
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    keyed_pair(domain_key(&KEY, "starling/state/node/v1"), left, right)
}

/// Bit `depth` (0 = most significant) of a key hash.
pub fn bit(h: &Hash, depth: usize) -> bool {
    (h.0[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

/// Changes to apply: `Some(value)` sets, `None` deletes.
pub type WriteSet = BTreeMap<Hash, Option<Vec<u8>>>;

/// One entry as the tree sees it.
pub type Leaf = (Hash, Hash);

/// Reads the entries of a bucket, sorted by key hash.
pub trait LeafSource {
    type Error;
    /// Appends the `(key_hash, value_hash)` pairs whose first `bits` bits equal `bucket`.
    fn bucket_leaves(&self, bits: u8, bucket: u32, out: &mut Vec<Leaf>) -> Result<(), Self::Error>;

    /// The same, for a bucket the tree says holds `count` entries: a source that layers
    /// recent changes over older storage may skip the storage once the layers alone hold
    /// `count` live entries (then storage has none they do not override).
    fn bucket_leaves_counted(
        &self,
        bits: u8,
        bucket: u32,
        count: u64,
        out: &mut Vec<Leaf>,
    ) -> Result<(), Self::Error> {
        let _ = count;
        self.bucket_leaves(bits, bucket, out)
    }
}

/// The bucket of a key hash: its first `bits` bits (`bits <= 24`).
pub fn bucket_of(h: &Hash, bits: u8) -> u32 {
    if bits == 0 {
        return 0;
    }
    let first = u32::from_be_bytes([h.0[0], h.0[1], h.0[2], h.0[3]]);
    first >> (32 - bits as u32)
}

/// Key-hash bounds `[lo, hi]` of a bucket.
pub fn bucket_bounds(bits: u8, bucket: u32) -> (Hash, Hash) {
    let mut lo = [0u8; 32];
    let mut hi = [0xffu8; 32];
    if bits > 0 {
        let shift = 32 - bits as u32;
        let lo_prefix = bucket << shift;
        let hi_prefix = lo_prefix | ((1u32 << shift) - 1);
        lo[..4].copy_from_slice(&lo_prefix.to_be_bytes());
        hi[..4].copy_from_slice(&hi_prefix.to_be_bytes());
    }
    (Hash(lo), Hash(hi))
}

/// Hash of the subtree at `depth` holding exactly `leaves` (sorted, distinct, sharing their
/// first `depth` bits).
pub fn subtree_hash(leaves: &[Leaf], depth: usize) -> Hash {
    match leaves {
        [] => EMPTY,
        [(k, v)] => leaf_hash(k, v),
        _ => {
            let split = leaves.partition_point(|(k, _)| !bit(k, depth));
            let left = subtree_hash(&leaves[..split], depth + 1);
            let right = subtree_hash(&leaves[split..], depth + 1);
            node_hash(&left, &right)
        }
    }
}

/// An in-memory state with its tree: the reference implementation, used by tests, fuzzers
/// and benchmarks. The on-disk store keeps the same tree over an embedded database.
#[derive(Debug, Clone)]
pub struct MemState {
    entries: BTreeMap<Hash, (Hash, Vec<u8>)>,
    top: TopTree,
}

impl MemState {
    pub fn new(bits: u8) -> Self {
        Self {
            entries: BTreeMap::new(),
            top: TopTree::new(bits),
        }
    }

    pub fn root(&self) -> Hash {
        self.top.root()
    }

    pub fn get(&self, key_hash: &Hash) -> Option<&[u8]> {
        self.entries.get(key_hash).map(|(_, v)| v.as_slice())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Applies a write set and returns the new root.
    pub fn commit(&mut self, writes: &WriteSet) -> Hash {
        // The in-memory source cannot fail.
        let Ok(_) = self.top.apply(&MemSource(&self.entries), writes);
        for (k, v) in writes {
            match v {
                Some(v) => {
                    self.entries.insert(*k, (value_hash(v), v.clone()));
                }
                None => {
                    self.entries.remove(k);
                }
            }
        }
        self.top.root()
    }

    pub fn prove(&self, key_hash: &Hash) -> Proof {
        match self.top.prove(&MemSource(&self.entries), key_hash) {
            Ok(p) => p,
            Err(e) => match e {},
        }
    }
}

struct MemSource<'a>(&'a BTreeMap<Hash, (Hash, Vec<u8>)>);

impl LeafSource for MemSource<'_> {
    type Error = std::convert::Infallible;
    fn bucket_leaves(&self, bits: u8, bucket: u32, out: &mut Vec<Leaf>) -> Result<(), Self::Error> {
        let (lo, hi) = bucket_bounds(bits, bucket);
        out.extend(self.0.range(lo..=hi).map(|(k, (vh, _))| (*k, *vh)));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
