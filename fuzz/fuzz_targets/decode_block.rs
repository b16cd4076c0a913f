//! Block, receipt and proof decoding never panics, and is canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_types::{Block, Decode, Encode, Receipt};

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::from_bytes(data) {
        assert_eq!(block.to_bytes(), data);
    }
    if let Ok(r) = Receipt::from_bytes(data) {
        assert_eq!(r.to_bytes(), data);
    }
    if let Ok(p) = starling_state::Proof::from_bytes(data) {
        assert_eq!(p.to_bytes(), data);
    }
});
