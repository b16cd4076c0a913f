//! Transaction decoding never panics, and whatever decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_types::{Decode, Encode, TxBody, TxEnvelope};

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = TxEnvelope::from_bytes(data) {
        assert_eq!(env.to_bytes(), data);
        if let Ok(body) = env.body() {
            assert_eq!(body.to_bytes(), env.body_bytes);
        }
    }
    if let Ok(body) = TxBody::from_bytes(data) {
        assert_eq!(body.to_bytes(), data);
    }
});
