//! The state as a block executes against it: the pending changes (and a checkpoint being
//! written) over the state tables, read through one LMDB read transaction; and the leaves of
//! a bucket, as the state tree asks for them.

use crate::{Merge, Pending, StoreError, Tables};
use heed::RoTxn;
use starling_ledger::{StateError, StateView};
use starling_state::{bucket_bounds, Leaf, LeafSource};
use starling_types::codec::Decode as _;
use starling_types::Hash;

/// The state as of the last commit: the pending changes over the tables' checkpoint,
/// read through one LMDB read transaction.
pub(crate) struct View<'a> {
    pub(crate) txn: &'a RoTxn<'a>,
    pub(crate) t: Tables,
    pub(crate) pending: &'a Pending,
    /// A checkpoint being written: under `pending`, over the tables.
    pub(crate) merging: Option<&'a Pending>,
}

impl<'a> View<'a> {
    /// The state as of the head: `pending` over a checkpoint being written over the tables
    /// (read through `txn`, a read transaction of the state environment).
    pub(crate) fn over(
        txn: &'a RoTxn<'a>,
        t: Tables,
        pending: &'a Pending,
        merging: &'a Option<Merge>,
    ) -> Self {
        View {
            txn,
            t,
            pending,
            merging: merging.as_ref().map(|m| &*m.entries),
        }
    }
}

impl StateView for View<'_> {
    fn get(&self, key_hash: &Hash) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(p) = self
            .pending
            .get(key_hash)
            .or_else(|| self.merging.and_then(|m| m.get(key_hash)))
        {
            return Ok(p.as_ref().map(|(_, v)| v.clone()));
        }
        match self.t.state.get(self.txn, &key_hash.0) {
            Ok(None) => Ok(None),
            Ok(Some(v)) => {
                if v.len() < 32 {
                    return Err(StateError(format!("state entry {key_hash} is truncated")));
                }
                Ok(Some(v[32..].to_vec()))
            }
            Err(e) => Err(StateError(e.to_string())),
        }
    }
}

impl View<'_> {
    /// The in-memory layers' entries of a bucket, sorted, newest winning: pending over a
    /// checkpoint being written (`None`: deleted).
    fn layered(&self, bits: u8, bucket: u32) -> Vec<(Hash, Option<Hash>)> {
        let (lo, hi) = bucket_bounds(bits, bucket);
        let hashed = |(k, v): (&Hash, &Option<(Hash, Vec<u8>)>)| (*k, v.as_ref().map(|(h, _)| *h));
        let mut newer = self.pending.range(lo..=hi).map(hashed).peekable();
        let mut older = self
            .merging
            .into_iter()
            .flat_map(|m| m.range(lo..=hi))
            .map(hashed)
            .peekable();
        let mut out = Vec::new();
        loop {
            let take_older = match (newer.peek(), older.peek()) {
                (Some(n), Some(o)) => {
                    if o.0 == n.0 {
                        older.next();
                        false
                    } else {
                        o.0 < n.0
                    }
                }
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (None, None) => break,
            };
            out.extend(if take_older {
                older.next()
            } else {
                newer.next()
            });
        }
        out
    }

    /// A bucket's entries: the tables' overridden by the in-memory layers.
    fn bucket_leaves_of(
        &self,
        bits: u8,
        bucket: u32,
        count: Option<u64>,
        out: &mut Vec<Leaf>,
    ) -> Result<(), StoreError> {
        let layered = self.layered(bits, bucket);
        let live = layered.iter().filter(|(_, v)| v.is_some()).count() as u64;
        if count == Some(live) {
            // The layers hold every entry the tree counts: the tables hold none they do not
            // override, so there is nothing to read there.
            out.extend(layered.into_iter().filter_map(|(k, v)| Some((k, v?))));
            return Ok(());
        }
        let (lo, hi) = bucket_bounds(bits, bucket);
        let mut pending = layered.into_iter().peekable();
        let range = (
            std::ops::Bound::Included(&lo.0[..]),
            std::ops::Bound::Included(&hi.0[..]),
        );
        for row in self.t.state.range(self.txn, &range)? {
            let (k, v) = row?;
            let key = Hash::from_bytes(k)?;
            while let Some((pk, pv)) = pending.next_if(|(pk, _)| *pk < key) {
                if let Some(vh) = pv {
                    out.push((pk, vh));
                }
            }
            if let Some((_, pv)) = pending.next_if(|(pk, _)| *pk == key) {
                if let Some(vh) = pv {
                    out.push((key, vh));
                }
                continue;
            }
            if v.len() < 32 {
                return Err(StoreError::Corrupt("state entry truncated".into()));
            }
            let mut vh = [0u8; 32];
            vh.copy_from_slice(&v[..32]);
            out.push((key, Hash(vh)));
        }
        for (pk, pv) in pending {
            if let Some(vh) = pv {
                out.push((pk, vh));
            }
        }
        Ok(())
    }
}

impl LeafSource for View<'_> {
    type Error = StoreError;
    /// The bucket's entries from the tables, overridden by the pending changes.
    fn bucket_leaves(&self, bits: u8, bucket: u32, out: &mut Vec<Leaf>) -> Result<(), StoreError> {
        self.bucket_leaves_of(bits, bucket, None, out)
    }

    fn bucket_leaves_counted(
        &self,
        bits: u8,
        bucket: u32,
        count: u64,
        out: &mut Vec<Leaf>,
    ) -> Result<(), StoreError> {
        self.bucket_leaves_of(bits, bucket, Some(count), out)
    }
}
