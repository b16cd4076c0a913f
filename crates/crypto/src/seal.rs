//! Sealed boxes: bytes for the holder of an X25519 key, from no one in particular.
//!
//! A [`Sealer`] makes a fresh X25519 key and agrees a secret with the recipient's key; BLAKE3
//! derives a key from that secret and both public keys; each box is XChaCha20-Poly1305 under
//! it with a random nonce. A sealed box is the sealer's fresh public key, the nonce, then the
//! ciphertext: [`SEAL_OVERHEAD`] bytes more than what it holds. Boxes from different sealers
//! share nothing but their length; boxes from one sealer (one batch for one recipient)
//! share its public key. Opening costs one key agreement per sealer, which [`BoxKeys`]
//! remembers for the last few.

use chacha20poly1305::aead::{Aead as _, KeyInit as _};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::{CryptoRng, RngCore};
use std::collections::VecDeque;
use thiserror::Error;
use zeroize::Zeroizing;

/// What sealing adds: the sealer's public key, the nonce and the authentication tag.
pub const SEAL_OVERHEAD: usize = 32 + 24 + 16;

const KDF_CONTEXT: &str = "starling sealed box v1";

/// Sealers whose keys [`BoxKeys`] remembers.
const REMEMBERED: usize = 32;

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
        let public: String = self.public().iter().map(|x| format!("{x:02x}")).collect();
        write!(f, "SealSecret({public})")
    }
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
/// Only the canonical encoding of such a point passes (a u-coordinate below p, bit 255
/// clear), so the ledger never holds two encodings of one key.
pub fn check_seal_key(key: &[u8; 32]) -> Result<(), SealError> {
    match MontgomeryPoint(*key).to_edwards(0) {
        Some(p) if !p.is_small_order() && p.to_montgomery().to_bytes() == *key => Ok(()),
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

/// Seals boxes for one recipient under one fresh key (one key agreement for a batch).
pub struct Sealer {
    sender: [u8; 32],
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// A sealer for the holder of `to`.
    pub fn to<R: RngCore + CryptoRng>(to: &[u8; 32], rng: &mut R) -> Result<Sealer, SealError> {
        check_seal_key(to)?;
        let mut fresh = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(fresh.as_mut());
        let sender = MontgomeryPoint::mul_base_clamped(*fresh).to_bytes();
        let shared = MontgomeryPoint(*to).mul_clamped(*fresh);
        Ok(Sealer {
            sender,
            key: box_key(&shared, &sender, to),
        })
    }

    /// Seals `plain`.
    pub fn seal<R: RngCore + CryptoRng>(&self, plain: &[u8], rng: &mut R) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        let nonce = XNonce::from(nonce);
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plain.len());
        out.extend_from_slice(&self.sender);
        out.extend_from_slice(&nonce);
        // (Encryption with a 32-byte key fails only past 256 GiB.)
        if let Ok(ciphertext) =
            XChaCha20Poly1305::new(self.key.as_ref().into()).encrypt(&nonce, plain)
        {
            out.extend_from_slice(&ciphertext);
        }
        out
    }
}

/// Seals `plain` for the holder of `to`.
pub fn seal<R: RngCore + CryptoRng>(
    to: &[u8; 32],
    plain: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, SealError> {
    Ok(Sealer::to(to, rng)?.seal(plain, rng))
}

/// The keys of the last few sealers a recipient opened boxes of (a batch costs one key
/// agreement, not one per box).
/// They hold for one seal key: opening with another forgets them first.
#[derive(Default)]
pub struct BoxKeys {
    keys: VecDeque<([u8; 32], Zeroizing<[u8; 32]>)>,
    /// A hash of the secret they were agreed with, and its public key.
    owner: Option<([u8; 32], [u8; 32])>,
}

impl std::fmt::Debug for BoxKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BoxKeys({})", self.keys.len())
    }
}

/// Opens a box sealed for `secret`'s public key, with `keys` remembering sealers' keys.
pub fn open(secret: &SealSecret, sealed: &[u8], keys: &mut BoxKeys) -> Result<Vec<u8>, SealError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(SealError::NotForThisKey);
    }
    let (sender, rest) = sealed.split_at(32);
    let (nonce, ciphertext) = rest.split_at(24);
    let sender: [u8; 32] = sender.try_into().map_err(|_| SealError::NotForThisKey)?;
    let nonce: [u8; 24] = nonce.try_into().map_err(|_| SealError::NotForThisKey)?;
    let owner = *blake3::hash(secret.0.as_ref()).as_bytes();
    if keys.owner.as_ref().map(|(o, _)| o) != Some(&owner) {
        keys.keys.clear();
        keys.owner = Some((owner, secret.public()));
    }
    let public = keys.owner.as_ref().map_or([0; 32], |(_, p)| *p);
    let remembered = keys.keys.iter().position(|(s, _)| *s == sender);
    let key = match remembered {
        Some(at) => keys.keys[at].1.clone(),
        None => box_key(
            &MontgomeryPoint(sender).mul_clamped(*secret.0),
            &sender,
            &public,
        ),
    };
    let plain = XChaCha20Poly1305::new(key.as_ref().into())
        .decrypt(&XNonce::from(nonce), ciphertext)
        .map_err(|_| SealError::NotForThisKey)?;
    // Remembered only once a box of its opened: junk does not push out real sealers.
    if remembered.is_none() {
        if keys.keys.len() >= REMEMBERED {
            keys.keys.pop_front();
        }
        keys.keys.push_back((sender, key));
    }
    Ok(plain)
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
        assert_eq!(open(&bob, &for_bob, &mut BoxKeys::default()).unwrap(), text);
        assert_eq!(
            open(&carol, &for_carol, &mut BoxKeys::default()).unwrap(),
            text
        );
        assert_eq!(
            open(&bob, &again_for_bob, &mut BoxKeys::default()).unwrap(),
            text
        );
        assert_eq!(
            open(&carol, &for_bob, &mut BoxKeys::default()),
            Err(SealError::NotForThisKey)
        );
        // No 8-byte run of one box appears in another.
        for (a, b) in [(&for_bob, &for_carol), (&for_bob, &again_for_bob)] {
            assert!(!a.windows(8).any(|w| b.windows(8).any(|v| v == w)));
        }
    }

    #[test]
    fn a_batch_costs_one_key_agreement_and_the_remembered_keys_stay_bounded() {
        let bob = SealSecret::derive("test", b"bob");
        let mut r = rng();
        let sealer = Sealer::to(&bob.public(), &mut r).unwrap();
        let boxes: Vec<Vec<u8>> = (0..5u8).map(|i| sealer.seal(&[i; 20], &mut r)).collect();
        let mut keys = BoxKeys::default();
        for (i, b) in boxes.iter().enumerate() {
            assert_eq!(open(&bob, b, &mut keys).unwrap(), vec![i as u8; 20]);
            // One batch shares its sealer's key, and nothing after it.
            assert_eq!(b[..32], boxes[0][..32]);
            if i > 0 {
                assert_ne!(b[32..56], boxes[0][32..56]);
            }
        }
        assert_eq!(keys.keys.len(), 1);
        for _ in 0..3 * REMEMBERED {
            let b = seal(&bob.public(), b"x", &mut r).unwrap();
            assert_eq!(open(&bob, &b, &mut keys).unwrap(), b"x");
        }
        assert_eq!(keys.keys.len(), REMEMBERED);
        // A box that does not open is not remembered.
        let mut junk = seal(&bob.public(), b"x", &mut r).unwrap();
        *junk.last_mut().unwrap() ^= 1;
        assert!(open(&bob, &junk, &mut keys).is_err());
        assert!(keys.keys.iter().all(|(s, _)| s[..] != junk[..32]));
        // Remembered keys are another secret's: never used for it.
        let carol = SealSecret::derive("test", b"carol");
        assert!(open(&carol, &boxes[0], &mut keys).is_err());
        assert!(open(&bob, &boxes[0], &mut keys).is_ok());
    }

    #[test]
    fn damaged_short_and_foreign_boxes_are_refused() {
        let bob = SealSecret::derive("test", b"bob");
        let mut sealed = seal(&bob.public(), b"hello", &mut rng()).unwrap();
        for i in [0, 31, 32, 55, 56, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(
                open(&bob, &bad, &mut BoxKeys::default()),
                Err(SealError::NotForThisKey),
                "byte {i}"
            );
        }
        assert_eq!(
            open(&bob, &sealed[..SEAL_OVERHEAD - 1], &mut BoxKeys::default()),
            Err(SealError::NotForThisKey)
        );
        assert_eq!(
            open(&bob, &[], &mut BoxKeys::default()),
            Err(SealError::NotForThisKey)
        );
        sealed.truncate(SEAL_OVERHEAD);
        assert_eq!(
            open(&bob, &sealed, &mut BoxKeys::default()),
            Err(SealError::NotForThisKey)
        );
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
        let good = SealSecret::derive("test", b"ok").public();
        assert_eq!(check_seal_key(&good), Ok(()));
        // The same point with bit 255 set: another encoding of it, refused.
        let mut other = good;
        other[31] |= 0x80;
        assert_eq!(check_seal_key(&other), Err(SealError::BadKey));
    }
}
