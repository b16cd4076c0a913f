//! Sealed boxes: bytes for the holder of an X25519 key, from no one in particular.
//!
//! The sender makes a fresh X25519 key and agrees a secret with the recipient's key; BLAKE3
//! derives a one-time key from that secret and both public keys; XChaCha20-Poly1305 seals
//! under it (each key seals once, so the nonce is zero). A sealed box is the sender's fresh
//! public key, then the ciphertext: [`SEAL_OVERHEAD`] bytes more than what it holds. Two
//! boxes of the same bytes, for the same recipient or not, share nothing but their length.

use chacha20poly1305::aead::{Aead as _, KeyInit as _};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use zeroize::Zeroizing;

/// What sealing adds: the sender's fresh public key and the authentication tag.
pub const SEAL_OVERHEAD: usize = 32 + 16;

const KDF_CONTEXT: &str = "starling sealed box v1";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the seal key is not an X25519 key of large order")]
    BadKey,
    #[error("not a sealed box for this key (damaged, or for another)")]
    NotForThisKey,
}

/// The secret half of a seal key.
pub struct SealSecret(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SealSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealSecret({})", hex_of(&self.public()))
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl SealSecret {
    /// The seal key derived from `seed` for `context` (the same seed and context, the same
    /// key).
    pub fn derive(context: &str, seed: &[u8]) -> SealSecret {
        SealSecret(Zeroizing::new(blake3::derive_key(context, seed)))
    }

    /// The public half, which senders seal to.
    pub fn public(&self) -> [u8; 32] {
        MontgomeryPoint::mul_base_clamped(*self.0).to_bytes()
    }
}

/// Whether `key` is an X25519 public key senders can seal to: a point whose agreed secrets
/// are not forced into a small subgroup (which would make every box to it readable).
pub fn check_seal_key(key: &[u8; 32]) -> Result<(), SealError> {
    match MontgomeryPoint(*key).to_edwards(0) {
        Some(p) if !p.is_small_order() => Ok(()),
        _ => Err(SealError::BadKey),
    }
}

fn box_key(shared: &MontgomeryPoint, sender: &[u8; 32], to: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut h = blake3::Hasher::new_derive_key(KDF_CONTEXT);
    h.update(shared.as_bytes());
    h.update(sender);
    h.update(to);
    Zeroizing::new(*h.finalize().as_bytes())
}

/// Seals `plain` for the holder of `to`.
pub fn seal<R: RngCore + CryptoRng>(
    to: &[u8; 32],
    plain: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, SealError> {
    check_seal_key(to)?;
    let mut fresh = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(fresh.as_mut());
    let sender = MontgomeryPoint::mul_base_clamped(*fresh).to_bytes();
    let shared = MontgomeryPoint(*to).mul_clamped(*fresh);
    let key = box_key(&shared, &sender, to);
    let ciphertext = XChaCha20Poly1305::new(key.as_ref().into())
        .encrypt(&XNonce::default(), plain)
        .map_err(|_| SealError::BadKey)?;
    let mut out = Vec::with_capacity(SEAL_OVERHEAD + plain.len());
    out.extend_from_slice(&sender);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens a box sealed for `secret`'s public key.
pub fn open(secret: &SealSecret, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(SealError::NotForThisKey);
    }
    let (sender, ciphertext) = sealed.split_at(32);
    let sender: [u8; 32] = sender.try_into().map_err(|_| SealError::NotForThisKey)?;
    let shared = MontgomeryPoint(sender).mul_clamped(*secret.0);
    let key = box_key(&shared, &sender, &secret.public());
    XChaCha20Poly1305::new(key.as_ref().into())
        .decrypt(&XNonce::default(), ciphertext)
        .map_err(|_| SealError::NotForThisKey)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_chacha::rand_core::SeedableRng as _;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }

    #[test]
    fn a_box_opens_only_for_its_key_and_two_boxes_share_nothing() {
        let (bob, carol) = (
            SealSecret::derive("test", b"bob"),
            SealSecret::derive("test", b"carol"),
        );
        let mut r = rng();
        let text = b"one group message".to_vec();
        let for_bob = seal(&bob.public(), &text, &mut r).unwrap();
        let for_carol = seal(&carol.public(), &text, &mut r).unwrap();
        let again_for_bob = seal(&bob.public(), &text, &mut r).unwrap();
        assert_eq!(for_bob.len(), text.len() + SEAL_OVERHEAD);
        assert_eq!(open(&bob, &for_bob).unwrap(), text);
        assert_eq!(open(&carol, &for_carol).unwrap(), text);
        assert_eq!(open(&bob, &again_for_bob).unwrap(), text);
        assert_eq!(open(&carol, &for_bob), Err(SealError::NotForThisKey));
        // No 8-byte run of one box appears in another.
        for (a, b) in [(&for_bob, &for_carol), (&for_bob, &again_for_bob)] {
            assert!(!a.windows(8).any(|w| b.windows(8).any(|v| v == w)));
        }
    }

    #[test]
    fn damaged_short_and_foreign_boxes_are_refused() {
        let bob = SealSecret::derive("test", b"bob");
        let mut sealed = seal(&bob.public(), b"hello", &mut rng()).unwrap();
        for i in [0, 31, 32, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(open(&bob, &bad), Err(SealError::NotForThisKey), "byte {i}");
        }
        assert_eq!(
            open(&bob, &sealed[..SEAL_OVERHEAD - 1]),
            Err(SealError::NotForThisKey)
        );
        assert_eq!(open(&bob, &[]), Err(SealError::NotForThisKey));
        sealed.truncate(SEAL_OVERHEAD);
        assert_eq!(open(&bob, &sealed), Err(SealError::NotForThisKey));
    }

    #[test]
    fn keys_of_small_order_are_refused() {
        // u-coordinates of points of order 2, 4 and 8.
        let order8: [u8; 32] =
            hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
                .unwrap()
                .try_into()
                .unwrap();
        let mut one = [0u8; 32];
        one[0] = 1;
        for k in [[0u8; 32], one, order8] {
            assert_eq!(check_seal_key(&k), Err(SealError::BadKey));
            assert_eq!(seal(&k, b"x", &mut rng()), Err(SealError::BadKey));
        }
        assert_eq!(
            check_seal_key(&SealSecret::derive("test", b"ok").public()),
            Ok(())
        );
    }
}
