//! Proofs of membership and non-membership, verifiable with nothing but the root.

use crate::{bit, leaf_hash, node_hash, EMPTY};
use starling_types::codec::{put, Decode, DecodeError, Encode, Reader};
use starling_types::Hash;
use thiserror::Error;

/// Where the path to a key ends: an empty subtree, or a subtree holding exactly one entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Terminal {
    Empty,
    Leaf { key_hash: Hash, value_hash: Hash },
}

/// The sibling hashes from the root down to the terminal (`siblings[d]` is the sibling of the
/// path node at depth `d + 1`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Proof {
    pub siblings: Vec<Hash>,
    pub terminal: Terminal,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofError {
    #[error("proof is deeper than 256 levels")]
    TooDeep,
    #[error("the proof ends at another key outside the queried path")]
    WrongPath,
    #[error("the proof shows a different value than claimed")]
    WrongValue,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

impl Proof {
    pub fn new(siblings: Vec<Hash>, terminal: Terminal) -> Self {
        Self { siblings, terminal }
    }

    /// Checks that under `root`, `key` maps to a value with hash `value` (`Some`), or is
    /// absent (`None`).
    pub fn verify(&self, root: &Hash, key: &Hash, value: Option<&Hash>) -> Result<(), ProofError> {
        let depth = self.siblings.len();
        if depth > 256 {
            return Err(ProofError::TooDeep);
        }
        let mut acc = match (&self.terminal, value) {
            (
                Terminal::Leaf {
                    key_hash,
                    value_hash,
                },
                Some(v),
            ) => {
                if key_hash != key {
                    return Err(ProofError::WrongPath);
                }
                if value_hash != v {
                    return Err(ProofError::WrongValue);
                }
                leaf_hash(key_hash, value_hash)
            }
            (
                Terminal::Leaf {
                    key_hash,
                    value_hash,
                },
                None,
            ) => {
                if key_hash == key {
                    return Err(ProofError::WrongValue);
                }
                // The other entry must sit on the queried key's path.
                if (0..depth).any(|d| bit(key_hash, d) != bit(key, d)) {
                    return Err(ProofError::WrongPath);
                }
                leaf_hash(key_hash, value_hash)
            }
            (Terminal::Empty, Some(_)) => return Err(ProofError::WrongValue),
            (Terminal::Empty, None) => EMPTY,
        };
        for d in (0..depth).rev() {
            let sibling = &self.siblings[d];
            acc = if bit(key, d) {
                node_hash(sibling, &acc)
            } else {
                node_hash(&acc, sibling)
            };
        }
        if acc == *root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        }
    }
}

/// Wire form: `depth:u16 || non-empty bitmap (ceil(depth/8) bytes) || the non-empty siblings
/// || terminal (0 = empty, 1 = key_hash || value_hash)`.
impl Encode for Proof {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u16(out, self.siblings.len() as u16);
        let mut bitmap = vec![0u8; self.siblings.len().div_ceil(8)];
        for (i, s) in self.siblings.iter().enumerate() {
            if *s != EMPTY {
                bitmap[i / 8] |= 1 << (7 - i % 8);
            }
        }
        out.extend_from_slice(&bitmap);
        for s in self.siblings.iter().filter(|s| **s != EMPTY) {
            s.encode(out);
        }
        match &self.terminal {
            Terminal::Empty => put::u8(out, 0),
            Terminal::Leaf {
                key_hash,
                value_hash,
            } => {
                put::u8(out, 1);
                key_hash.encode(out);
                value_hash.encode(out);
            }
        }
    }
}

impl Decode for Proof {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let depth = r.u16()? as usize;
        if depth > 256 {
            return Err(DecodeError::TooLong {
                what: "state proof",
                len: depth,
                max: 256,
            });
        }
        let bitmap = r.take(depth.div_ceil(8))?;
        if !depth.is_multiple_of(8)
            && bitmap
                .last()
                .is_some_and(|b| b & (0xff >> (depth % 8)) != 0)
        {
            return Err(DecodeError::InvalidValue("state proof (bitmap padding)"));
        }
        let mut siblings = Vec::with_capacity(depth);
        for i in 0..depth {
            if bitmap[i / 8] & (1 << (7 - i % 8)) != 0 {
                let h = Hash::decode(r)?;
                if h == EMPTY {
                    return Err(DecodeError::InvalidValue(
                        "state proof (non-canonical sibling)",
                    ));
                }
                siblings.push(h);
            } else {
                siblings.push(EMPTY);
            }
        }
        let terminal = match r.u8()? {
            0 => Terminal::Empty,
            1 => Terminal::Leaf {
                key_hash: Hash::decode(r)?,
                value_hash: Hash::decode(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "proof terminal",
                    tag,
                })
            }
        };
        Ok(Proof { siblings, terminal })
    }
}
