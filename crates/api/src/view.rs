//! The node's app view ([`starling_appview`]): opened under the data directory and kept up to
//! date by an indexer thread that follows every shard the node holds.
//!
//! The indexer wakes on each shard's new finalized heights (blocks committed by consensus or,
//! on a relay, applied from the network) and indexes every block after the view's indexed
//! height up to the head, in order, reading blocks and receipts from the shard's store. On
//! start it catches up the same way, so a view that stopped (or is new) is filled from the
//! blocks the node already has. A block it cannot index is logged and tried again on the
//! next height.

use futures::{FutureExt as _, StreamExt as _};
use starling_appview::{AppView, AppViewError};
use starling_consensus::ShardApp;
use starling_node_api::Node;
use starling_types::ShardId;
use std::path::Path;
use std::sync::Arc;

/// The app view a node serves, and a watch of its committed batches (what live streams wait
/// on). The view holds the watch's sender too, so the watch never closes under a stream.
#[derive(Clone)]
pub struct View {
    pub store: Arc<AppView>,
    updates: Arc<tokio::sync::watch::Sender<u64>>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").finish_non_exhaustive()
    }
}

impl View {
    /// A view that no indexer follows (a benchmark's, filled beforehand).
    pub fn fixed(store: Arc<AppView>) -> View {
        View {
            store,
            updates: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// Wakes on every batch the indexer commits.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.updates.subscribe()
    }
}

/// Opens the app view under `data_dir` and starts its indexer, following `node`'s shards.
pub fn attach(node: &Node, data_dir: &Path) -> Result<View, AppViewError> {
    let store = Arc::new(AppView::open(data_dir)?);
    let shards: Vec<(ShardId, ShardApp)> = node
        .shards()
        .iter()
        .map(|(id, h)| (*id, h.app.clone()))
        .collect();
    let updates = Arc::new(tokio::sync::watch::Sender::new(0));
    let (updated, indexed) = (updates.clone(), store.clone());
    std::thread::Builder::new()
        .name("appview-indexer".into())
        .spawn(move || run(&updated, indexed, shards))
        .map_err(|e| AppViewError::Io(format!("starting the indexer: {e}")))?;
    Ok(View { store, updates })
}

/// Most blocks indexed in one write transaction.
pub const MAX_BATCH_BLOCKS: usize = 256;

fn run(
    updated: &tokio::sync::watch::Sender<u64>,
    view: Arc<AppView>,
    shards: Vec<(ShardId, ShardApp)>,
) {
    let streams = shards
        .iter()
        .enumerate()
        .map(|(i, (_, app))| app.watch_height().map(move |h| (i, h)));
    let mut heights = futures::stream::select_all(streams);
    let mut heads = vec![0u64; shards.len()];
    while let Some((i, height)) = futures::executor::block_on(heights.next()) {
        heads[i] = heads[i].max(height);
        // Group commit: take every height that arrived meanwhile, then index all of it in
        // as few transactions as possible.
        while let Some(Some((i, height))) = heights.next().now_or_never() {
            heads[i] = heads[i].max(height);
        }
        match catch_up(&view, &shards, &heads) {
            Ok(()) => updated.send_modify(|n| *n += 1),
            Err(e) => {
                tracing::warn!(error = %e, "app view indexing failed; retrying on the next block")
            }
        }
    }
}

/// Indexes every shard from the view's indexed height up to its head in `heads`, at most
/// [`MAX_BATCH_BLOCKS`] blocks per transaction.
pub fn catch_up(
    view: &AppView,
    shards: &[(ShardId, ShardApp)],
    heads: &[u64],
) -> Result<(), AppViewError> {
    let mut next: Vec<u64> = shards
        .iter()
        .map(|(shard, _)| view.resume_from(*shard))
        .collect::<Result<_, AppViewError>>()?;
    loop {
        let mut batch = Vec::new();
        for (i, (_, app)) in shards.iter().enumerate() {
            while next[i] <= heads[i] && batch.len() < MAX_BATCH_BLOCKS {
                let height = next[i];
                let read = |e: starling_store::StoreError| AppViewError::Io(e.to_string());
                let (Some(block), Some(receipts)) = (
                    app.block(height).map_err(read)?,
                    app.receipts(height).map_err(read)?,
                ) else {
                    // Not in this node's store (yet): the next height brings it.
                    break;
                };
                batch.push(Ok((block, receipts)));
                next[i] += 1;
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        view.index_blocks(batch)?;
    }
}
