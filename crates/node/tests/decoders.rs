//! The node's network decoders (forwarded transaction batches, finalized blocks from the open
//! network) on arbitrary bytes: an error, never a panic, and what decodes re-encodes the same.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use starling_node::net::FinalizedBlock;
use starling_node::run::{decode_batch, encode_batch};

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn forwarded_batches_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2_048)) {
        if let Ok(txs) = decode_batch(&bytes) {
            prop_assert_eq!(encode_batch(&txs), bytes);
        }
    }

    #[test]
    fn finalized_blocks_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4_096)) {
        if let Ok(fb) = FinalizedBlock::from_bytes(&bytes) {
            prop_assert_eq!(fb.to_bytes(), bytes);
        }
    }
}
