//! The top levels of the tree, kept in memory.

use crate::{
    bit, bucket_of, leaf_hash, node_hash, subtree_hash, value_hash, Leaf, LeafSource, Proof,
    Terminal, WriteSet, EMPTY,
};
use starling_types::Hash;

/// The hash of a subtree and how many entries it holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct BucketSummary {
    pub hash: Hash,
    pub count: u64,
}

fn combine(l: &BucketSummary, r: &BucketSummary) -> BucketSummary {
    let count = l.count + r.count;
    let hash = match (l.count, r.count) {
        (0, 0) => EMPTY,
        // Exactly one entry below: its leaf hash floats up unchanged.
        (1, 0) => l.hash,
        (0, 1) => r.hash,
        _ => node_hash(&l.hash, &r.hash),
    };
    BucketSummary { hash, count }
}

/// Levels `0..=bits` of the tree; `levels[d]` holds the `2^d` subtrees at depth `d`.
#[derive(Clone, Debug)]
pub struct TopTree {
    bits: u8,
    levels: Vec<Vec<BucketSummary>>,
}

/// What [`TopTree::apply_journaled`] overwrote, to put back with [`TopTree::rollback`]
/// without hashing anything: `(level, index, old summary)`, in the order written.
#[derive(Clone, Debug, Default)]
pub struct Journal(Vec<(u8, u32, BucketSummary)>);

/// Largest supported number of in-memory levels (2^24 buckets, ~1.3 GB); 16 is the default.
pub const MAX_BITS: u8 = 24;

impl TopTree {
    /// An empty tree with `2^bits` buckets (`bits` is clamped to `MAX_BITS`).
    pub fn new(bits: u8) -> Self {
        let bits = bits.min(MAX_BITS);
        let levels = (0..=bits)
            .map(|d| vec![BucketSummary::default(); 1usize << d])
            .collect();
        Self { bits, levels }
    }

    /// Rebuilds from stored bucket summaries (buckets not listed are empty).
    pub fn from_buckets(bits: u8, buckets: impl IntoIterator<Item = (u32, BucketSummary)>) -> Self {
        let mut t = Self::new(bits);
        let b = t.bits as usize;
        for (i, s) in buckets {
            if let Some(slot) = t.levels[b].get_mut(i as usize) {
                *slot = s;
            }
        }
        for d in (0..b).rev() {
            for i in 0..(1usize << d) {
                t.levels[d][i] = combine(&t.levels[d + 1][2 * i], &t.levels[d + 1][2 * i + 1]);
            }
        }
        t
    }

    /// The summary of one bucket.
    pub fn bucket(&self, bucket: u32) -> BucketSummary {
        self.levels[self.bits as usize]
            .get(bucket as usize)
            .copied()
            .unwrap_or_default()
    }

    /// Overwrites bucket summaries (e.g. to undo an [`Self::apply`] whose result was refused)
    /// and recomputes their ancestors.
    pub fn set_buckets(&mut self, buckets: &[(u32, BucketSummary)]) {
        let bits = self.bits as usize;
        let mut dirty = Vec::with_capacity(buckets.len());
        for (b, s) in buckets {
            if let Some(slot) = self.levels[bits].get_mut(*b as usize) {
                *slot = *s;
                dirty.push(*b as usize);
            }
        }
        dirty.sort_unstable();
        self.recompute(dirty);
    }

    fn recompute(&mut self, dirty: Vec<usize>) {
        self.recompute_journaled(dirty, None);
    }

    fn recompute_journaled(&mut self, mut dirty: Vec<usize>, mut journal: Option<&mut Journal>) {
        for d in (0..self.bits as usize).rev() {
            dirty.iter_mut().for_each(|i| *i /= 2);
            dirty.dedup();
            for &i in &dirty {
                let new = combine(&self.levels[d + 1][2 * i], &self.levels[d + 1][2 * i + 1]);
                let slot = &mut self.levels[d][i];
                if let Some(j) = journal.as_deref_mut() {
                    j.0.push((d as u8, i as u32, *slot));
                }
                *slot = new;
            }
        }
    }

    /// As [`Self::apply`], also returning what it overwrote, so that [`Self::rollback`] can put
    /// the tree back exactly, without hashing (speculative execution measures a root and
    /// restores the tree every time). On an error the tree is put back already.
    #[allow(clippy::type_complexity)]
    pub fn apply_journaled<S: LeafSource>(
        &mut self,
        source: &S,
        writes: &WriteSet,
    ) -> Result<(Vec<(u32, BucketSummary)>, Journal), S::Error> {
        let mut journal = Journal::default();
        let changed = self.bucket_summaries(source, writes, &mut journal, &mut Vec::new())?;
        self.recompute_journaled(
            changed.iter().map(|(b, _)| *b as usize).collect(),
            Some(&mut journal),
        );
        Ok((changed, journal))
    }

    /// Puts back what an [`Self::apply_journaled`] overwrote.
    pub fn rollback(&mut self, journal: Journal) {
        for (d, i, old) in journal.0.into_iter().rev() {
            self.levels[d as usize][i as usize] = old;
        }
    }

    pub fn bits(&self) -> u8 {
        self.bits
    }

    pub fn root(&self) -> Hash {
        self.levels[0][0].hash
    }

    pub fn len(&self) -> u64 {
        self.levels[0][0].count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies `writes` (against the entries `source` holds *before* them) and returns the
    /// buckets whose summaries changed, for the caller to persist.
    pub fn apply<S: LeafSource>(
        &mut self,
        source: &S,
        writes: &WriteSet,
    ) -> Result<Vec<(u32, BucketSummary)>, S::Error> {
        self.apply_hashed(source, writes)
            .map(|(changed, _)| changed)
    }

    /// As [`Self::apply`], also returning the hash of each value written, in the writes'
    /// order (`None` for a deletion), so the caller need not hash them again.
    #[allow(clippy::type_complexity)]
    pub fn apply_hashed<S: LeafSource>(
        &mut self,
        source: &S,
        writes: &WriteSet,
    ) -> Result<(Vec<(u32, BucketSummary)>, Vec<Option<Hash>>), S::Error> {
        let mut hashes = Vec::with_capacity(writes.len());
        let changed =
            self.bucket_summaries(source, writes, &mut Journal::default(), &mut hashes)?;
        // Recompute the ancestors of changed buckets (ascending, as the writes are sorted).
        self.recompute(changed.iter().map(|(b, _)| *b as usize).collect());
        Ok((changed, hashes))
    }

    /// Sets the summary of every bucket `writes` touch (recording the old ones in `journal`,
    /// and each written value's hash in `hashes`); their ancestors are left for the caller to
    /// recompute. On a read error, the buckets set so far are put back and the tree is as
    /// before.
    fn bucket_summaries<S: LeafSource>(
        &mut self,
        source: &S,
        writes: &WriteSet,
        journal: &mut Journal,
        hashes: &mut Vec<Option<Hash>>,
    ) -> Result<Vec<(u32, BucketSummary)>, S::Error> {
        let start = journal.0.len();
        let result = self.bucket_summaries_unchecked(source, writes, journal, hashes);
        if result.is_err() {
            for (d, i, old) in journal.0.drain(start..).rev() {
                self.levels[d as usize][i as usize] = old;
            }
        }
        result
    }

    fn bucket_summaries_unchecked<S: LeafSource>(
        &mut self,
        source: &S,
        writes: &WriteSet,
        journal: &mut Journal,
        hashes: &mut Vec<Option<Hash>>,
    ) -> Result<Vec<(u32, BucketSummary)>, S::Error> {
        let bits = self.bits as usize;
        let mut changed = Vec::new();
        let mut old: Vec<Leaf> = Vec::new();
        let mut merged: Vec<Leaf> = Vec::new();
        let mut iter = writes.iter().peekable();
        while let Some((first_key, _)) = iter.peek() {
            let bucket = bucket_of(first_key, self.bits);
            old.clear();
            // The summary says whether there is anything to read, and how much.
            let count = self.levels[bits][bucket as usize].count;
            if count > 0 {
                source.bucket_leaves_counted(self.bits, bucket, count, &mut old)?;
            }
            merged.clear();
            let mut old_iter = old.iter().peekable();
            while let Some((k, v)) = iter.next_if(|(k, _)| bucket_of(k, self.bits) == bucket) {
                while let Some(o) = old_iter.next_if(|o| o.0 < *k) {
                    merged.push(*o);
                }
                old_iter.next_if(|o| o.0 == *k);
                let h = v.as_deref().map(value_hash);
                if let Some(h) = h {
                    merged.push((*k, h));
                }
                hashes.push(h);
            }
            merged.extend(old_iter);
            let summary = BucketSummary {
                hash: subtree_hash(&merged, bits),
                count: merged.len() as u64,
            };
            let slot = &mut self.levels[bits][bucket as usize];
            journal.0.push((bits as u8, bucket, *slot));
            *slot = summary;
            changed.push((bucket, summary));
        }
        Ok(changed)
    }

    /// Proves the presence or absence of `key` under [`Self::root`].
    pub fn prove<S: LeafSource>(&self, source: &S, key: &Hash) -> Result<Proof, S::Error> {
        let mut siblings = Vec::new();
        let mut index = 0usize;
        for d in 0..self.bits as usize {
            let node = &self.levels[d][index];
            if node.count <= 1 {
                return Ok(Proof::new(
                    siblings,
                    self.terminal_from_summary(source, node, d, index)?,
                ));
            }
            let b = usize::from(bit(key, d));
            siblings.push(self.levels[d + 1][2 * index + (1 - b)].hash);
            index = 2 * index + b;
        }
        let mut leaves = Vec::new();
        source.bucket_leaves(self.bits, index as u32, &mut leaves)?;
        let mut slice = leaves.as_slice();
        let mut depth = self.bits as usize;
        while slice.len() > 1 {
            let split = slice.partition_point(|(k, _)| !bit(k, depth));
            let (left, right) = slice.split_at(split);
            if bit(key, depth) {
                siblings.push(subtree_hash(left, depth + 1));
                slice = right;
            } else {
                siblings.push(subtree_hash(right, depth + 1));
                slice = left;
            }
            depth += 1;
        }
        let terminal = match slice {
            [(k, v)] => Terminal::Leaf {
                key_hash: *k,
                value_hash: *v,
            },
            _ => Terminal::Empty,
        };
        Ok(Proof::new(siblings, terminal))
    }

    /// The terminal of a proof that stops in the top levels, at a subtree of 0 or 1 entries.
    fn terminal_from_summary<S: LeafSource>(
        &self,
        source: &S,
        node: &BucketSummary,
        depth: usize,
        index: usize,
    ) -> Result<Terminal, S::Error> {
        if node.count == 0 {
            return Ok(Terminal::Empty);
        }
        // Find the single entry: it is in exactly one bucket under this node.
        let span = 1usize << (self.bits as usize - depth);
        let first = index * span;
        let buckets = &self.levels[self.bits as usize][first..first + span];
        for (offset, summary) in buckets.iter().enumerate() {
            if summary.count == 1 {
                let mut leaves = Vec::new();
                source.bucket_leaves(self.bits, (first + offset) as u32, &mut leaves)?;
                if let [(k, v)] = leaves.as_slice() {
                    debug_assert_eq!(leaf_hash(k, v), node.hash);
                    return Ok(Terminal::Leaf {
                        key_hash: *k,
                        value_hash: *v,
                    });
                }
            }
        }
        Ok(Terminal::Empty)
    }
}
