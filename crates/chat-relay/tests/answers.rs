//! The chat services answer any bytes with a response a peer can decode, never a panic.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use starling_chat_relay::ChatServices;
use starling_protocol::chat::ChatResponse;
use starling_types::{Decode as _, Encode as _};

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

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
        let from = starling_protocol::chat::Requester::peer("test", b"anyone");
        let answer = s.serve(from, &bytes).to_bytes();
        prop_assert!(ChatResponse::from_bytes(&answer).is_ok());
    }
}
