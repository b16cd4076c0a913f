//! The canonical binary codec (version 1).
//!
//! Rules (see `docs/encoding.md`):
//! - integers are fixed width, big-endian; `bool` is one byte `0` or `1`;
//! - `Option<T>` is a tag byte `0` (none) or `1` followed by `T`;
//! - byte strings and UTF-8 strings carry a length prefix (`u16` or `u32`, per field) and a
//!   per-field maximum that the decoder checks *before* reading or allocating;
//! - sequences carry a `u16` count and a per-field maximum;
//! - enums are a tag byte followed by the variant's fields; unknown tags are errors;
//! - a value decoded with [`Decode::from_bytes`] must consume every byte.
//!
//! There is exactly one encoding of every value, so hashes and signatures over encodings are
//! well defined.

use thiserror::Error;

/// Why bytes could not be decoded. Every decoder returns one of these, never panics.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("unexpected end of input: needed {needed} more bytes, {remaining} left")]
    UnexpectedEnd { needed: usize, remaining: usize },
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    #[error("invalid tag {tag} for {what}")]
    InvalidTag { what: &'static str, tag: u8 },
    #[error("{what} is too long: {len} > {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    #[error("invalid {0}")]
    InvalidValue(&'static str),
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion { what: &'static str, version: u8 },
}

/// A cursor over untrusted bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(DecodeError::UnexpectedEnd {
                needed: n,
                remaining,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_be_bytes(self.array()?))
    }
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::InvalidTag { what: "bool", tag }),
        }
    }

    /// Bytes with a `u16` length prefix, at most `max` long.
    pub fn bytes16(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u16()? as usize;
        if len > max {
            return Err(DecodeError::TooLong { what, len, max });
        }
        self.take(len)
    }

    /// Bytes with a `u32` length prefix, at most `max` long.
    pub fn bytes32(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError::TooLong { what, len, max });
        }
        self.take(len)
    }

    /// A UTF-8 string with a `u16` byte-length prefix, at most `max` bytes.
    pub fn string(&mut self, what: &'static str, max: usize) -> Result<String, DecodeError> {
        let bytes = self.bytes16(what, max)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8(what))
    }

    pub fn option<T>(
        &mut self,
        what: &'static str,
        f: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => f(self).map(Some),
            tag => Err(DecodeError::InvalidTag { what, tag }),
        }
    }

    /// A sequence with a `u16` count, at most `max` items.
    pub fn seq<T>(
        &mut self,
        what: &'static str,
        max: usize,
        mut f: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let len = self.u16()? as usize;
        if len > max {
            return Err(DecodeError::TooLong { what, len, max });
        }
        // Never trust the count for allocation beyond what the input could hold.
        let mut out = Vec::with_capacity(len.min(self.remaining()));
        for _ in 0..len {
            out.push(f(self)?);
        }
        Ok(out)
    }
}

/// Appends the canonical encoding of a value.
pub trait Encode {
    fn encode(&self, out: &mut Vec<u8>);

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Reads a value from untrusted bytes, within the limits of its type.
pub trait Decode: Sized {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a whole buffer; trailing bytes are an error.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let value = Self::decode(&mut r)?;
        r.finish()?;
        Ok(value)
    }
}

/// Writers for the primitive forms, mirroring [`Reader`].
pub mod put {
    pub fn u8(out: &mut Vec<u8>, v: u8) {
        out.push(v);
    }
    pub fn u16(out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u128(out: &mut Vec<u8>, v: u128) {
        out.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bool(out: &mut Vec<u8>, v: bool) {
        out.push(u8::from(v));
    }
    /// Callers guarantee `v.len() <= u16::MAX` (every field's maximum is far below it).
    pub fn bytes16(out: &mut Vec<u8>, v: &[u8]) {
        debug_assert!(v.len() <= u16::MAX as usize);
        u16(out, v.len() as u16);
        out.extend_from_slice(v);
    }
    pub fn bytes32(out: &mut Vec<u8>, v: &[u8]) {
        debug_assert!(v.len() <= u32::MAX as usize);
        u32(out, v.len() as u32);
        out.extend_from_slice(v);
    }
    pub fn string(out: &mut Vec<u8>, v: &str) {
        bytes16(out, v.as_bytes());
    }
    pub fn option<T>(out: &mut Vec<u8>, v: &Option<T>, f: impl FnOnce(&mut Vec<u8>, &T)) {
        match v {
            None => out.push(0),
            Some(x) => {
                out.push(1);
                f(out, x);
            }
        }
    }
    pub fn seq<T>(out: &mut Vec<u8>, v: &[T], mut f: impl FnMut(&mut Vec<u8>, &T)) {
        debug_assert!(v.len() <= u16::MAX as usize);
        u16(out, v.len() as u16);
        for x in v {
            f(out, x);
        }
    }
}
