//! The node's network decoders (forwarded transaction batches, finalized blocks from the open
//! network, chat protocol requests and responses) on arbitrary bytes: an error, never a
//! panic, and what decodes re-encodes the same. The chat services answer any bytes with a
//! response, never a panic.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use starling_node::chatnet::{ChatRequest, ChatResponse, ChatServices};
use starling_node::net::FinalizedBlock;
use starling_node::run::{decode_batch, encode_batch};
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

    #[test]
    fn chat_services_answer_anything(
        tag in 0u8..8,
        rest in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let me = starling_crypto::SecretKey::from_seed(starling_types::KeyType::Ed25519, &[1; 32]).unwrap();
        let s = ChatServices::open(dir.path(), me.public_key(), None).unwrap();
        let mut bytes = vec![tag];
        bytes.extend_from_slice(&rest);
        // Decodable as a response (so a peer can read it), whatever was asked.
        let answer = s.serve(&bytes).to_bytes();
        prop_assert!(ChatResponse::from_bytes(&answer).is_ok());
    }
}
