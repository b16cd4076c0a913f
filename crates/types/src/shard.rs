//! The 2^64 shard space and its division into shards.
//!
//! Shard 0 is the global shard (validator registry, handles, governance). Account shards
//! `1..=S` each own one contiguous range of the shard space; together they cover all of it,
//! without overlap. Accounts live on the shard whose range holds their shard point.

use crate::codec::{put, Decode, DecodeError, Encode, Reader};
use crate::keys::AccountId;
use std::fmt;

/// Position of an account in the shard space.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ShardPoint(pub u64);

/// Identifies a shard chain.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u16);

impl ShardId {
    pub const GLOBAL: ShardId = ShardId(0);
}

impl fmt::Debug for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard{}", self.0)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Encode for ShardId {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u16(out, self.0);
    }
}

impl Decode for ShardId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ShardId(r.u16()?))
    }
}

/// An inclusive range `[start, end]` of the shard space.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ShardRange {
    pub start: u64,
    pub end: u64,
}

impl ShardRange {
    pub fn contains(&self, p: ShardPoint) -> bool {
        self.start <= p.0 && p.0 <= self.end
    }
}

impl Encode for ShardRange {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u64(out, self.start);
        put::u64(out, self.end);
    }
}

impl Decode for ShardRange {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.u64()?;
        let end = r.u64()?;
        if start > end {
            return Err(DecodeError::InvalidValue("shard range (start > end)"));
        }
        Ok(Self { start, end })
    }
}

/// Maximum number of account shards in a shard map.
pub const MAX_ACCOUNT_SHARDS: usize = 1024;

/// The account shards and their ranges, in order of the shard space.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ShardMap {
    ranges: Vec<(ShardId, ShardRange)>,
}

impl ShardMap {
    /// Splits the shard space evenly into `count` account shards numbered `1..=count`.
    pub fn even(count: u16) -> Result<Self, DecodeError> {
        if count == 0 || count as usize > MAX_ACCOUNT_SHARDS {
            return Err(DecodeError::InvalidValue("account shard count"));
        }
        let width = u64::MAX / count as u64;
        let ranges = (0..count)
            .map(|i| {
                let start = i as u64 * width;
                let end = if i + 1 == count {
                    u64::MAX
                } else {
                    (i as u64 + 1) * width - 1
                };
                (ShardId(i + 1), ShardRange { start, end })
            })
            .collect();
        Self::new(ranges)
    }

    /// Checks that the ranges are contiguous, cover the whole space, and name distinct
    /// non-global shards.
    pub fn new(ranges: Vec<(ShardId, ShardRange)>) -> Result<Self, DecodeError> {
        if ranges.is_empty() || ranges.len() > MAX_ACCOUNT_SHARDS {
            return Err(DecodeError::InvalidValue("shard map size"));
        }
        let mut expected_start = 0u64;
        let mut seen = std::collections::BTreeSet::new();
        for (i, (id, range)) in ranges.iter().enumerate() {
            if *id == ShardId::GLOBAL || !seen.insert(*id) {
                return Err(DecodeError::InvalidValue("shard map ids"));
            }
            if range.start != expected_start || range.start > range.end {
                return Err(DecodeError::InvalidValue(
                    "shard map ranges (gap or overlap)",
                ));
            }
            if i + 1 == ranges.len() {
                if range.end != u64::MAX {
                    return Err(DecodeError::InvalidValue(
                        "shard map does not cover the space",
                    ));
                }
            } else {
                expected_start = range
                    .end
                    .checked_add(1)
                    .ok_or(DecodeError::InvalidValue("shard map ranges"))?;
            }
        }
        Ok(Self { ranges })
    }

    pub fn ranges(&self) -> &[(ShardId, ShardRange)] {
        &self.ranges
    }

    pub fn shard_of_point(&self, p: ShardPoint) -> ShardId {
        let idx = self.ranges.partition_point(|(_, r)| r.end < p.0);
        // The map covers the whole space, so `idx` is always in bounds.
        self.ranges.get(idx).map_or(ShardId::GLOBAL, |(id, _)| *id)
    }

    pub fn shard_of(&self, account: &AccountId) -> ShardId {
        self.shard_of_point(account.shard_point())
    }

    pub fn range_of(&self, shard: ShardId) -> Option<ShardRange> {
        self.ranges
            .iter()
            .find(|(id, _)| *id == shard)
            .map(|(_, r)| *r)
    }
}

impl Encode for ShardMap {
    fn encode(&self, out: &mut Vec<u8>) {
        put::seq(out, &self.ranges, |out, (id, r)| {
            id.encode(out);
            r.encode(out);
        });
    }
}

impl Decode for ShardMap {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ranges = r.seq("shard map", MAX_ACCOUNT_SHARDS, |r| {
            Ok((ShardId::decode(r)?, ShardRange::decode(r)?))
        })?;
        Self::new(ranges)
    }
}
