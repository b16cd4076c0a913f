//! The node's app view ([`starling_appview`]): opened under the data directory and kept up to
//! date by an indexer thread that follows every shard the node holds.
//!
//! The indexer wakes on each shard's new finalized heights (blocks committed by consensus or,
//! on a relay, applied from the network) and indexes every block after the view's indexed
//! height up to the head, in order, reading blocks and receipts from the shard's store. On
//! start it catches up the same way, so a view that stopped (or is new) is filled from the
//! blocks the node already has. A block it cannot index is logged and tried again on the
//! next height.

use crate::run::Node;
use futures::StreamExt as _;
use starling_appview::{AppView, AppViewError};
use starling_consensus::ShardApp;
use starling_types::ShardId;
use std::path::Path;
use std::sync::Arc;

/// Opens the app view under `data_dir`, attaches it to `node` and starts its indexer.
pub fn attach(node: &Node, data_dir: &Path) -> Result<std::thread::JoinHandle<()>, AppViewError> {
    let view = Arc::new(AppView::open(data_dir)?);
    node.set_appview(view.clone());
    let shards: Vec<(ShardId, ShardApp)> = node
        .shards()
        .iter()
        .map(|(id, h)| (*id, h.app.clone()))
        .collect();
    std::thread::Builder::new()
        .name("appview-indexer".into())
        .spawn(move || run(view, shards))
        .map_err(|e| AppViewError::Io(format!("starting the indexer: {e}")))
}

fn run(view: Arc<AppView>, shards: Vec<(ShardId, ShardApp)>) {
    let streams = shards
        .iter()
        .enumerate()
        .map(|(i, (_, app))| app.watch_height().map(move |h| (i, h)));
    let mut heights = futures::stream::select_all(streams);
    while let Some((i, height)) = futures::executor::block_on(heights.next()) {
        let (shard, app) = &shards[i];
        if let Err(e) = catch_up(&view, *shard, app, height) {
            tracing::warn!(%shard, height, error = %e, "app view indexing failed; retrying on the next block");
        }
    }
}

/// Indexes `shard` from the view's indexed height up to `head`.
pub fn catch_up(
    view: &AppView,
    shard: ShardId,
    app: &ShardApp,
    head: u64,
) -> Result<(), AppViewError> {
    let from = view.indexed(shard)?.map_or(1, |h| h + 1);
    for height in from..=head {
        let block = app
            .block(height)
            .map_err(|e| AppViewError::Io(e.to_string()))?;
        let receipts = app
            .receipts(height)
            .map_err(|e| AppViewError::Io(e.to_string()))?;
        let (Some(block), Some(receipts)) = (block, receipts) else {
            // Not in this node's store (yet): try again on the next height.
            return Ok(());
        };
        view.index_block(&block, &receipts)?;
    }
    Ok(())
}
