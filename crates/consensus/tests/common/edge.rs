//! Edge-case Ed25519 signatures: valid under ZIP-215's cofactored equation, refused by a
//! strict check (identity and mixed-order `R`).

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest as _, Sha512};
use starling_crypto::SecretKey;
use starling_types::Signature;

/// The Ed25519 secret scalar of a seed (RFC 8032: the clamped first half of SHA-512(seed)).
pub fn secret_scalar(seed: &[u8; 32]) -> Scalar {
    let h: [u8; 64] = Sha512::digest(seed).into();
    let mut a: [u8; 32] = h[..32].try_into().unwrap();
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    Scalar::from_bytes_mod_order(a)
}

/// A signature of `msg` by `k` whose `R` is `R0 + T` for a point `T` of small order (the
/// identity gives the identity-`R` signature `s = H(R‖A‖M)·a`; the order-2 point gives a
/// mixed-order `R`). Valid under ZIP-215's cofactored equation; refused by the strict check
/// `b334716` used alone, and accepted or not by its batch depending on the batch.
pub fn edge_signature(k: &SecretKey, msg: &[u8], torsion: &str, with_base: bool) -> Signature {
    let a = secret_scalar(&k.to_seed());
    let t = CompressedEdwardsY(hex_bytes(torsion)).decompress().unwrap();
    let r = if with_base {
        Scalar::from_bytes_mod_order_wide(&Sha512::digest(msg).into())
    } else {
        Scalar::ZERO
    };
    let big_r = (EdwardsPoint::mul_base(&r) + t).compress().0;
    let mut h = Sha512::new();
    h.update(big_r);
    h.update(k.public_key().bytes);
    h.update(msg);
    let k_hash = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = r + k_hash * a;
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&big_r);
    out[32..].copy_from_slice(&s.to_bytes());
    Signature(out)
}

pub fn hex_bytes(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

pub const IDENTITY: &str = "0100000000000000000000000000000000000000000000000000000000000000";
pub const ORDER_TWO: &str = "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";
