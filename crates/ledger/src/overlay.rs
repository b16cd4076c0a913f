//! Reads through to the parent state; writes stay in memory, per transaction and per block.

use crate::records::StateKey;
use crate::{StateError, StateView};
use starling_state::WriteSet;
use starling_types::{Decode, Encode, Hash};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Keys are BLAKE3 digests, already uniform: their first eight bytes are a good hash.
#[derive(Default)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // `Hash` feeds its 32 bytes in one call; fold anything else in too.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
}

type DigestMap<V> = HashMap<Hash, V, BuildHasherDefault<DigestHasher>>;

pub(crate) struct Overlay<'v, V: ?Sized> {
    base: &'v V,
    block: DigestMap<Option<Vec<u8>>>,
    tx: DigestMap<Option<Vec<u8>>>,
}

impl<'v, V: StateView + ?Sized> Overlay<'v, V> {
    pub fn new(base: &'v V) -> Self {
        Self {
            base,
            block: DigestMap::default(),
            tx: DigestMap::default(),
        }
    }

    pub fn get_raw(&self, key: &Hash) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(v) = self.tx.get(key).or_else(|| self.block.get(key)) {
            return Ok(v.clone());
        }
        self.base.get(key)
    }

    pub fn get<T: Decode>(&self, key: StateKey<'_>) -> Result<Option<T>, StateError> {
        match self.get_raw(&key.hash())? {
            None => Ok(None),
            Some(bytes) => T::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| StateError(format!("corrupt record under {key:?}: {e}"))),
        }
    }

    pub fn exists(&self, key: StateKey<'_>) -> Result<bool, StateError> {
        Ok(self.get_raw(&key.hash())?.is_some())
    }

    pub fn put<T: Encode>(&mut self, key: StateKey<'_>, value: &T) {
        self.tx.insert(key.hash(), Some(value.to_bytes()));
    }

    pub fn put_raw(&mut self, key: StateKey<'_>, value: Vec<u8>) {
        self.tx.insert(key.hash(), Some(value));
    }

    pub fn delete(&mut self, key: StateKey<'_>) {
        self.tx.insert(key.hash(), None);
    }

    pub fn commit_tx(&mut self) {
        self.block.extend(self.tx.drain());
    }

    pub fn rollback_tx(&mut self) {
        self.tx.clear();
    }

    pub fn into_writes(mut self) -> WriteSet {
        self.commit_tx();
        self.block.into_iter().collect()
    }
}
