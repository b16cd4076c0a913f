//! The in-memory top of the state tree, updated by a block's writes.

use crate::view::View;
use crate::StoreError;
use starling_state::{bucket_of, BucketSummary, TopTree, WriteSet};
use starling_types::Hash;

/// How a block's writes changed the in-memory tree.
pub(crate) struct TreeChange {
    /// The buckets' new summaries.
    pub(crate) changed: Vec<(u32, BucketSummary)>,
    /// Their summaries before.
    pub(crate) undo: Vec<(u32, BucketSummary)>,
    /// Each written value's hash, in the writes' order (`None` for a deletion); empty when
    /// not computed (the pending state then hashes the values itself).
    pub(crate) hashes: Vec<Option<Hash>>,
}

/// Applies writes to the in-memory tree.
pub(crate) fn update_tree(
    top: &mut TopTree,
    view: &View<'_>,
    writes: &WriteSet,
) -> Result<TreeChange, StoreError> {
    let bits = top.bits();
    let mut undo: Vec<(u32, BucketSummary)> = Vec::new();
    for k in writes.keys() {
        let b = bucket_of(k, bits);
        if undo.last().map(|(l, _)| *l) != Some(b) {
            undo.push((b, top.bucket(b)));
        }
    }
    match top.apply_hashed(view, writes) {
        Ok((changed, hashes)) => Ok(TreeChange {
            changed,
            undo,
            hashes,
        }),
        Err(e) => {
            // A read failed part way: put back the buckets already changed.
            top.set_buckets(&undo);
            Err(e)
        }
    }
}
