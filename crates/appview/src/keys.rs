//! Key encodings of the app view's tables. Everything is big-endian so that LMDB's byte order
//! is the order a reader wants: an account's rows are contiguous, and within them newest last.

use crate::AppViewError;
use starling_types::codec::{Decode, Encode, Reader};
use starling_types::{AccountId, PostId};

/// Encoded length of an account id (key type and 32 bytes).
pub const ACCOUNT_LEN: usize = 33;
/// Encoded length of a post id (author and sequence number).
pub const POST_LEN: usize = ACCOUNT_LEN + 8;
/// Encoded length of a [`TimeKey`].
pub const TIME_LEN: usize = 22;

/// Where a transaction sits in the network's history, as the app view orders it: by its
/// block's timestamp, then shard, height and position. Unique per transaction, so it names a
/// feed row; ordered by time, so feeds of different shards interleave by when they happened.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TimeKey {
    pub at_ms: u64,
    pub shard: u16,
    pub height: u64,
    pub index: u32,
}

impl TimeKey {
    pub fn to_bytes(self) -> [u8; TIME_LEN] {
        let mut out = [0u8; TIME_LEN];
        out[..8].copy_from_slice(&self.at_ms.to_be_bytes());
        out[8..10].copy_from_slice(&self.shard.to_be_bytes());
        out[10..18].copy_from_slice(&self.height.to_be_bytes());
        out[18..].copy_from_slice(&self.index.to_be_bytes());
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<TimeKey> {
        if b.len() != TIME_LEN {
            return None;
        }
        Some(TimeKey {
            at_ms: u64::from_be_bytes(b[..8].try_into().ok()?),
            shard: u16::from_be_bytes(b[8..10].try_into().ok()?),
            height: u64::from_be_bytes(b[10..18].try_into().ok()?),
            index: u32::from_be_bytes(b[18..].try_into().ok()?),
        })
    }

    /// The cursor a page ends at: hex of the key, opaque to clients.
    pub fn cursor(self) -> String {
        hex::encode(self.to_bytes())
    }

    /// Reads a cursor a client sent back.
    pub fn from_cursor(cursor: &str) -> Result<TimeKey, AppViewError> {
        hex::decode(cursor)
            .ok()
            .and_then(|b| TimeKey::from_bytes(&b))
            .ok_or(AppViewError::BadCursor)
    }
}

pub fn account(a: &AccountId) -> Vec<u8> {
    a.to_bytes()
}

pub fn decode_account(b: &[u8]) -> Result<AccountId, AppViewError> {
    AccountId::from_bytes(b).map_err(|e| AppViewError::Corrupt(format!("account id: {e}")))
}

pub fn post(p: &PostId) -> Vec<u8> {
    p.to_bytes()
}

pub fn decode_post(b: &[u8]) -> Result<PostId, AppViewError> {
    let mut r = Reader::new(b);
    let p = PostId::decode(&mut r).map_err(|e| AppViewError::Corrupt(format!("post id: {e}")))?;
    r.finish()
        .map_err(|e| AppViewError::Corrupt(format!("post id: {e}")))?;
    Ok(p)
}

/// The rows of a hashtag: `tag || 0x00`, then the time key of the post. Tags hold no zero
/// byte, so one tag's rows never run into a longer tag's.
pub fn tag_prefix(tag: &str) -> Vec<u8> {
    cat(tag.as_bytes(), &[0])
}

pub fn tag(tag: &str, created: TimeKey) -> Vec<u8> {
    cat(&tag_prefix(tag), &created.to_bytes())
}

/// `prefix || suffix`.
pub fn cat(prefix: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + suffix.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(suffix);
    k
}

/// The smallest key greater than every key starting with `prefix` (none if it is all 0xff).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
