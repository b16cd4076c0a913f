//! Public keys, account ids and signatures as they appear on the wire.
//!
//! A public key is encoded as one key-type byte followed by 32 key bytes, so that the key type
//! is part of every account id from day one:
//! - `0x01` Ed25519 (RFC 8032), the 32-byte compressed point;
//! - `0x02` secp256k1 BIP-340 Schnorr, the 32-byte x-only key (Nostr and Bitcoin keys).

use crate::codec::{Decode, DecodeError, Encode, Reader};
use crate::hash::Hash;
use crate::shard::ShardPoint;
use std::fmt;

/// The signature scheme of a key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum KeyType {
    Ed25519 = 1,
    Secp256k1 = 2,
}

impl KeyType {
    pub fn from_tag(tag: u8) -> Result<KeyType, DecodeError> {
        match tag {
            1 => Ok(KeyType::Ed25519),
            2 => Ok(KeyType::Secp256k1),
            tag => Err(DecodeError::InvalidTag {
                what: "key type",
                tag,
            }),
        }
    }
}

/// A public key with its type; also the identity of an account.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey {
    pub key_type: KeyType,
    pub bytes: [u8; 32],
}

/// An account is its public key.
pub type AccountId = PublicKey;

impl PublicKey {
    pub const ENCODED_LEN: usize = 33;

    pub fn ed25519(bytes: [u8; 32]) -> Self {
        Self {
            key_type: KeyType::Ed25519,
            bytes,
        }
    }

    pub fn secp256k1(bytes: [u8; 32]) -> Self {
        Self {
            key_type: KeyType::Secp256k1,
            bytes,
        }
    }

    pub fn encoded(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = self.key_type as u8;
        out[1..].copy_from_slice(&self.bytes);
        out
    }

    /// `u64::from_be_bytes(blake3(encoded_pubkey)[0..8])`.
    pub fn shard_point(&self) -> ShardPoint {
        let h = Hash::of(&[&self.encoded()]);
        let mut first = [0u8; 8];
        first.copy_from_slice(&h.0[..8]);
        ShardPoint(u64::from_be_bytes(first))
    }

    /// Text form: `ed25519:<hex>` or `secp256k1:<hex>`.
    pub fn to_text(&self) -> String {
        let prefix = match self.key_type {
            KeyType::Ed25519 => "ed25519",
            KeyType::Secp256k1 => "secp256k1",
        };
        format!("{prefix}:{}", hex::encode(self.bytes))
    }

    /// [`PublicKey::from_text`], ignoring surrounding spaces, with an error that says what a
    /// key looks like (for people: the API, configuration files, the CLI).
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::from_text(s.trim())
            .map_err(|e| format!("{e} (expected ed25519:<64 hex> or secp256k1:<64 hex>)"))
    }

    pub fn from_text(s: &str) -> Result<Self, DecodeError> {
        let (prefix, body) = s
            .split_once(':')
            .ok_or(DecodeError::InvalidValue("public key text"))?;
        let key_type = match prefix {
            "ed25519" => KeyType::Ed25519,
            "secp256k1" => KeyType::Secp256k1,
            _ => return Err(DecodeError::InvalidValue("public key type")),
        };
        let raw = hex::decode(body).map_err(|_| DecodeError::InvalidValue("public key hex"))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| DecodeError::InvalidValue("public key length"))?;
        Ok(Self { key_type, bytes })
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.to_text();
        write!(f, "{}", &t[..t.len().min(24)])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Encode for PublicKey {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encoded());
    }
}

impl Decode for PublicKey {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key_type = KeyType::from_tag(r.u8()?)?;
        Ok(Self {
            key_type,
            bytes: r.array()?,
        })
    }
}

/// A 64-byte signature (Ed25519 `R || S`, or BIP-340 `r || s`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}..)", hex::encode(&self.0[..8]))
    }
}

impl Encode for Signature {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl Decode for Signature {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Signature(r.array()?))
    }
}
