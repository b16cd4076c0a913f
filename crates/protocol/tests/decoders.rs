//! The network decoders (forwarded transaction batches, finalized blocks from the open
//! network, chat protocol requests and responses) on arbitrary bytes: an error, never a
//! panic, and what decodes re-encodes the same.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use starling_protocol::batch::{decode_batch, encode_batch};
use starling_protocol::blocks::FinalizedBlock;
use starling_protocol::chat::{ChatRequest, ChatResponse};
use starling_types::{Decode as _, Encode as _};

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

    #[test]
    fn chat_requests_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2_048)) {
        if let Ok(r) = ChatRequest::from_bytes(&bytes) {
            prop_assert_eq!(r.to_bytes(), bytes);
        }
    }

    #[test]
    fn chat_responses_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2_048)) {
        if let Ok(r) = ChatResponse::from_bytes(&bytes) {
            prop_assert_eq!(r.to_bytes(), bytes);
        }
    }
}
