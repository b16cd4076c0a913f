//! Binary Merkle trees over ordered lists (transaction and receipt roots).
//!
//! Leaves are `blake3(0x00 || item)`, inner nodes `blake3(0x01 || left || right)`; a node
//! without a right sibling is promoted unchanged (never duplicated, so two different lists
//! cannot share a root). The root of the empty list is [`Hash::ZERO`].

use crate::codec::{put, Decode, DecodeError, Encode, Reader};
use crate::hash::Hash;

/// A tree of 2^32 leaves is 32 levels deep.
pub const MAX_PROOF_DEPTH: usize = 32;

pub fn leaf_hash(item: &[u8]) -> Hash {
    Hash::of(&[&[0u8], item])
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::of(&[&[1u8], &left.0, &right.0])
}

/// The root over already-hashed leaves.
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return Hash::ZERO;
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = parents(&level);
    }
    level[0]
}

fn parents(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => node_hash(l, r),
            [single] => *single,
            _ => Hash::ZERO,
        })
        .collect()
}

/// Proof that a leaf sits at `index` in a list of `leaf_count` leaves.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MerkleProof {
    pub index: u32,
    pub leaf_count: u32,
    pub siblings: Vec<Hash>,
}

/// Builds the proof for `leaves[index]`; `None` if out of range. To prove several leaves of
/// one list, build a [`Tree`] once instead (this hashes the whole list every time).
pub fn prove(leaves: &[Hash], index: usize) -> Option<MerkleProof> {
    Tree::new(leaves).prove(index)
}

/// Every level of the tree over a list, hashed once, so that each proof costs only its
/// `O(log n)` siblings: what proving all the messages of one block needs.
#[derive(Clone, Debug)]
pub struct Tree {
    /// `levels[0]` are the leaves, the last level is the root (none for an empty list).
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    pub fn new(leaves: &[Hash]) -> Self {
        let mut levels = vec![leaves.to_vec()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let next = parents(levels.last().map_or(&[][..], Vec::as_slice));
            levels.push(next);
        }
        Self { levels }
    }

    pub fn root(&self) -> Hash {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(Hash::ZERO)
    }

    /// The proof for leaf `index`; `None` if out of range.
    pub fn prove(&self, index: usize) -> Option<MerkleProof> {
        let leaves = self.levels.first()?;
        if index >= leaves.len() || leaves.len() > u32::MAX as usize {
            return None;
        }
        let mut siblings = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(s) = level.get(i ^ 1) {
                siblings.push(*s);
            }
            i /= 2;
        }
        Some(MerkleProof {
            index: index as u32,
            leaf_count: leaves.len() as u32,
            siblings,
        })
    }
}

impl MerkleProof {
    /// True if `leaf` is at `self.index` under `root`.
    pub fn verify(&self, root: &Hash, leaf: &Hash) -> bool {
        if self.index >= self.leaf_count {
            return false;
        }
        let mut acc = *leaf;
        let mut i = self.index as u64;
        let mut n = self.leaf_count as u64;
        let mut used = 0usize;
        while n > 1 {
            let is_right = i % 2 == 1;
            let has_sibling = is_right || i + 1 < n;
            if has_sibling {
                let Some(s) = self.siblings.get(used) else {
                    return false;
                };
                used += 1;
                acc = if is_right {
                    node_hash(s, &acc)
                } else {
                    node_hash(&acc, s)
                };
            }
            i /= 2;
            n = n.div_ceil(2);
        }
        used == self.siblings.len() && acc == *root
    }
}

impl Encode for MerkleProof {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u32(out, self.index);
        put::u32(out, self.leaf_count);
        put::seq(out, &self.siblings, |o, h| h.encode(o));
    }
}

impl Decode for MerkleProof {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MerkleProof {
            index: r.u32()?,
            leaf_count: r.u32()?,
            siblings: r.seq("merkle proof", MAX_PROOF_DEPTH, Hash::decode)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_proves_and_no_other_does() {
        for n in 1..40usize {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&[i as u8])).collect();
            let r = root(&leaves);
            for i in 0..n {
                let p = prove(&leaves, i).unwrap();
                assert!(p.verify(&r, &leaves[i]), "n={n} i={i}");
                let other = leaf_hash(b"other");
                assert!(!p.verify(&r, &other));
                let mut moved = p.clone();
                moved.index = ((i + 1) % n) as u32;
                if n > 1 {
                    assert!(!moved.verify(&r, &leaves[i]));
                }
            }
        }
    }

    #[test]
    fn tree_proofs_match_single_proofs() {
        for n in [0usize, 1, 2, 3, 7, 8, 9, 64, 100, 257] {
            let leaves: Vec<Hash> = (0..n)
                .map(|i| leaf_hash(&(i as u32).to_le_bytes()))
                .collect();
            let tree = Tree::new(&leaves);
            assert_eq!(tree.root(), root(&leaves), "n={n}");
            assert!(tree.prove(n).is_none());
            for (i, leaf) in leaves.iter().enumerate() {
                let p = tree.prove(i).unwrap();
                assert!(p.verify(&tree.root(), leaf), "n={n} i={i}");
                // Built level by level as before: the same siblings, in the same order.
                let mut level = leaves.clone();
                let mut j = i;
                let mut expected = Vec::new();
                while level.len() > 1 {
                    if let Some(s) = level.get(j ^ 1) {
                        expected.push(*s);
                    }
                    level = parents(&level);
                    j /= 2;
                }
                assert_eq!(p.siblings, expected, "n={n} i={i}");
            }
        }
    }

    #[test]
    fn odd_lists_do_not_collide_with_duplicated_last_leaf() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        let c = leaf_hash(b"c");
        assert_ne!(root(&[a, b, c]), root(&[a, b, c, c]));
        assert_eq!(root(&[]), Hash::ZERO);
    }
}
