//! Transactions forwarded between the validators of a shard, in batches.

use starling_types::codec::put;
use starling_types::{Decode as _, DecodeError, Encode as _, Reader, TxEnvelope};

/// Most transactions in one forwarded batch.
pub const MAX_FORWARD_TXS: usize = 2_048;

/// Encodes a batch of forwarded transactions.
pub fn encode_batch(txs: &[TxEnvelope]) -> Vec<u8> {
    let mut out = Vec::with_capacity(txs.iter().map(|t| t.encoded_len()).sum::<usize>() + 2);
    put::seq(&mut out, txs, |o, t| t.encode(o));
    out
}

/// Decodes a batch of forwarded transactions (at most [`MAX_FORWARD_TXS`]).
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<TxEnvelope>, DecodeError> {
    let mut r = Reader::new(bytes);
    let txs = r.seq(
        "forwarded transactions",
        MAX_FORWARD_TXS,
        TxEnvelope::decode,
    )?;
    r.finish()?;
    Ok(txs)
}
