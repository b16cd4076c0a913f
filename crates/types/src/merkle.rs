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
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => node_hash(l, r),
                [single] => *single,
                _ => Hash::ZERO,
            })
            .collect();
    }
    level[0]
}

/// Proof that a leaf sits at `index` in a list of `leaf_count` leaves.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MerkleProof {
    pub index: u32,
    pub leaf_count: u32,
    pub siblings: Vec<Hash>,
}

/// Builds the proof for `leaves[index]`; `None` if out of range.
pub fn prove(leaves: &[Hash], index: usize) -> Option<MerkleProof> {
    if index >= leaves.len() || leaves.len() > u32::MAX as usize {
        return None;
    }
    let mut siblings = Vec::new();
    let mut level = leaves.to_vec();
    let mut i = index;
    while level.len() > 1 {
        let sibling = i ^ 1;
        if sibling < level.len() {
            siblings.push(level[sibling]);
        }
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => node_hash(l, r),
                [single] => *single,
                _ => Hash::ZERO,
            })
            .collect();
        i /= 2;
    }
    Some(MerkleProof {
        index: index as u32,
        leaf_count: leaves.len() as u32,
        siblings,
    })
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
    fn odd_lists_do_not_collide_with_duplicated_last_leaf() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        let c = leaf_hash(b"c");
        assert_ne!(root(&[a, b, c]), root(&[a, b, c, c]));
        assert_eq!(root(&[]), Hash::ZERO);
    }
}
