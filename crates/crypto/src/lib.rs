//! Starling signatures: Ed25519 and secp256k1 BIP-340 keys, signing, single and batched
//! verification, and secret keys that are zeroized on drop and never printed.

pub mod blind;
pub mod seal;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::Signer as _;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha512};
use starling_types::tx::{signing_hash, ChainId, TxBody, TxEnvelope};
use starling_types::{Encode, Hash, KeyType, PublicKey, Signature};
use std::fmt;
use thiserror::Error;
use zeroize::Zeroizing;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SigError {
    #[error("public key is not a valid {0:?} key")]
    InvalidKey(KeyType),
    #[error("weak (small-order) Ed25519 public key")]
    WeakKey,
    #[error("signature does not verify")]
    BadSignature,
}

/// A secret signing key. Zeroized on drop; `Debug` never shows it.
pub enum SecretKey {
    Ed25519(ed25519_dalek::SigningKey),
    Secp256k1(k256::schnorr::SigningKey),
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}, <redacted>)", self.public_key())
    }
}

impl SecretKey {
    pub fn generate<R: RngCore + CryptoRng>(key_type: KeyType, rng: &mut R) -> SecretKey {
        loop {
            let mut seed = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(seed.as_mut());
            // A secp256k1 seed is out of range with probability ~2^-128; draw again.
            if let Ok(k) = SecretKey::from_seed(key_type, &seed) {
                return k;
            }
        }
    }

    /// From 32 secret bytes: the Ed25519 seed, or the secp256k1 secret scalar.
    pub fn from_seed(key_type: KeyType, seed: &[u8; 32]) -> Result<SecretKey, SigError> {
        match key_type {
            KeyType::Ed25519 => Ok(SecretKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                seed,
            ))),
            KeyType::Secp256k1 => k256::schnorr::SigningKey::from_bytes(seed)
                .map(SecretKey::Secp256k1)
                .map_err(|_| SigError::InvalidKey(KeyType::Secp256k1)),
        }
    }

    /// The 32 secret bytes, for an encrypted keystore or a backup.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        match self {
            SecretKey::Ed25519(k) => Zeroizing::new(k.to_bytes()),
            SecretKey::Secp256k1(k) => Zeroizing::new(k.to_bytes().into()),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            SecretKey::Ed25519(k) => PublicKey::ed25519(k.verifying_key().to_bytes()),
            SecretKey::Secp256k1(k) => PublicKey::secp256k1(k.verifying_key().to_bytes().into()),
        }
    }

    /// Signs `msg`. BIP-340 signing uses auxiliary randomness derived from the key and message.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        match self {
            SecretKey::Ed25519(k) => Signature(k.sign(msg).to_bytes()),
            SecretKey::Secp256k1(k) => {
                let aux = Hash::of(&[b"starling/bip340-aux", &k.to_bytes()[..], msg]);
                sign_bip340(k, msg, &aux.0)
            }
        }
    }

    /// The proof that this key's holder registers it as the consensus key of validator
    /// `account` on `chain_id` (rule V1): its signature over
    /// [`starling_types::tx::validator_pop_message`].
    pub fn validator_pop(
        &self,
        chain_id: &ChainId,
        account: &starling_types::AccountId,
    ) -> Signature {
        let msg = starling_types::tx::validator_pop_message(chain_id, account, &self.public_key());
        self.sign(msg.as_bytes())
    }

    /// Signs a transaction body for `chain_id`.
    pub fn sign_tx(&self, chain_id: &ChainId, body: &TxBody) -> TxEnvelope {
        let body_bytes = body.to_bytes();
        let signature = self.sign(signing_hash(chain_id, &body_bytes).as_bytes());
        TxEnvelope {
            body_bytes,
            signature,
        }
    }
}

/// BIP-340 signing with explicit auxiliary randomness.
pub fn sign_bip340(k: &k256::schnorr::SigningKey, msg: &[u8], aux: &[u8; 32]) -> Signature {
    match k.sign_raw(msg, aux) {
        Ok(sig) => Signature(sig.to_bytes()),
        // Only fails for a zero nonce (probability ~2^-256); an all-zero signature never
        // verifies, so the error surfaces at verification instead of as a panic here.
        Err(_) => Signature([0u8; 64]),
    }
}

/// Verifies one signature.
///
/// Ed25519 follows ZIP-215 (the rule is a function of key, message and signature alone, and
/// batches agree with it): `A` and `R` must be encodings of curve points (non-canonical
/// encodings are accepted and hashed as sent), `s` must be reduced (`s < l`), and the
/// cofactored equation `[8][s]B = [8]R + [8][k]A` must hold, `k = SHA-512(R || A || M)`.
/// Starling adds one rule on the key alone: an `A` of small order is refused
/// ([`SigError::WeakKey`]), since anyone can sign for it. secp256k1 follows BIP-340.
pub fn verify(key: &PublicKey, msg: &[u8], sig: &Signature) -> Result<(), SigError> {
    match key.key_type {
        KeyType::Ed25519 => {
            let vk = ed25519_key(key)?;
            let sig = ed25519_zebra::Signature::from_bytes(&sig.0);
            vk.verify(&sig, msg).map_err(|_| SigError::BadSignature)
        }
        KeyType::Secp256k1 => {
            let vk = k256::schnorr::VerifyingKey::from_bytes(&key.bytes)
                .map_err(|_| SigError::InvalidKey(KeyType::Secp256k1))?;
            let sig = k256::schnorr::Signature::try_from(&sig.0[..])
                .map_err(|_| SigError::BadSignature)?;
            vk.verify_raw(msg, &sig).map_err(|_| SigError::BadSignature)
        }
    }
}

/// Whether `key` is a key that can verify: for Ed25519, an encoding of a curve point that is
/// not of small order; for secp256k1, a valid x-only point.
pub fn check_public_key(key: &PublicKey) -> Result<(), SigError> {
    match key.key_type {
        KeyType::Ed25519 => ed25519_key(key).map(|_| ()),
        KeyType::Secp256k1 => k256::schnorr::VerifyingKey::from_bytes(&key.bytes)
            .map(|_| ())
            .map_err(|_| SigError::InvalidKey(KeyType::Secp256k1)),
    }
}

fn ed25519_key(key: &PublicKey) -> Result<ed25519_zebra::VerificationKey, SigError> {
    ed25519_point(key)?;
    ed25519_zebra::VerificationKey::try_from(key.bytes)
        .map_err(|_| SigError::InvalidKey(KeyType::Ed25519))
}

/// The curve point of an Ed25519 key: any encoding of a point (ZIP-215), not of small order.
fn ed25519_point(key: &PublicKey) -> Result<EdwardsPoint, SigError> {
    let point = CompressedEdwardsY(key.bytes)
        .decompress()
        .ok_or(SigError::InvalidKey(KeyType::Ed25519))?;
    if point.is_small_order() {
        return Err(SigError::WeakKey);
    }
    Ok(point)
}

/// Decoded Ed25519 keys of recent signers: decoding a key (a point decompression, a square
/// root in the field) costs about as much as a third of checking a signature, and accounts
/// sign again and again. Two generations of at most [`KEY_CACHE_GENERATION`] keys: when the
/// young one is full it becomes the old one, so memory is bounded and recent keys stay. Only
/// valid, non-weak keys are kept; the result is the same as decoding every time.
struct KeyCache {
    young: std::collections::HashMap<[u8; 32], EdwardsPoint>,
    old: std::collections::HashMap<[u8; 32], EdwardsPoint>,
}

const KEY_CACHE_GENERATION: usize = 1 << 16;

static KEY_CACHE: std::sync::Mutex<Option<KeyCache>> = std::sync::Mutex::new(None);

impl KeyCache {
    fn get(&mut self, key: &PublicKey) -> Result<EdwardsPoint, SigError> {
        if let Some(point) = self.young.get(&key.bytes) {
            return Ok(*point);
        }
        let point = match self.old.get(&key.bytes) {
            Some(point) => *point,
            None => ed25519_point(key)?,
        };
        if self.young.len() >= KEY_CACHE_GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key.bytes, point);
        Ok(point)
    }
}

/// Signatures this process has already seen verify, so that it checks each only once: a
/// relay checks a transaction before it publishes it, a validator when it admits it to its
/// mempool and again when a block carries it, and `starling devnet` runs all of them in one
/// process. An entry is the BLAKE3 hash of key type, key, message and signature; only
/// signatures that passed are kept, so a hit answers exactly what checking again would. Two
/// generations of at most [`SIG_CACHE_GENERATION`] entries bound the memory (about 10 MiB).
struct SigCache {
    young: std::collections::HashSet<[u8; 32]>,
    old: std::collections::HashSet<[u8; 32]>,
}

const SIG_CACHE_GENERATION: usize = 1 << 17;

static SIG_CACHE: std::sync::Mutex<Option<SigCache>> = std::sync::Mutex::new(None);

impl SigCache {
    fn entry(item: &SigItem<'_>) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(&[item.key.key_type as u8]);
        h.update(&item.key.bytes);
        h.update(&(item.msg.len() as u64).to_le_bytes());
        h.update(item.msg);
        h.update(&item.sig.0);
        *h.finalize().as_bytes()
    }

    fn contains(&self, entry: &[u8; 32]) -> bool {
        self.young.contains(entry) || self.old.contains(entry)
    }

    fn insert(&mut self, entry: [u8; 32]) {
        if self.young.len() >= SIG_CACHE_GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(entry);
    }
}

fn sig_cache() -> std::sync::MutexGuard<'static, Option<SigCache>> {
    SIG_CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One signature to check: key, signed message (a 32-byte digest for transactions), signature.
#[derive(Debug, Clone, Copy)]
pub struct SigItem<'a> {
    pub key: &'a PublicKey,
    pub msg: &'a [u8],
    pub sig: &'a Signature,
}

/// Verifies many signatures and says which failed (indices into `items`, ascending).
///
/// The verdict on each signature is exactly [`verify`]'s (ZIP-215 for Ed25519, BIP-340 for
/// secp256k1), whatever else shares the batch: a valid signature passes in any company, and
/// an invalid one fails. Ed25519 signatures are checked with one cofactored batch equation;
/// only if it fails is each checked alone to find the culprits.
///
/// Signatures this process has seen pass before are not checked again (see `SigCache`):
/// the cache holds verdicts of this same rule, so a hit answers what a check would.
pub fn verify_batch(items: &[SigItem<'_>]) -> Vec<usize> {
    let entries: Vec<[u8; 32]> = items.iter().map(SigCache::entry).collect();
    let fresh: Vec<usize> = {
        let cache = sig_cache();
        (0..items.len())
            .filter(|&i| !cache.as_ref().is_some_and(|c| c.contains(&entries[i])))
            .collect()
    };
    if fresh.is_empty() {
        return Vec::new();
    }
    let sub: Vec<SigItem<'_>> = fresh.iter().map(|&i| items[i]).collect();
    let failed: Vec<usize> = verify_batch_uncached(&sub)
        .into_iter()
        .map(|j| fresh[j])
        .collect();
    let mut guard = sig_cache();
    let cache = guard.get_or_insert_with(|| SigCache {
        young: std::collections::HashSet::new(),
        old: std::collections::HashSet::new(),
    });
    let mut bad = failed.iter().peekable();
    for i in fresh {
        if bad.peek() == Some(&&i) {
            bad.next();
        } else {
            cache.insert(entries[i]);
        }
    }
    failed
}

/// [`verify_batch`] without the cache of signatures seen before: every signature is checked,
/// and none is remembered. What a benchmark of the verification itself times.
pub fn verify_batch_uncached(items: &[SigItem<'_>]) -> Vec<usize> {
    let mut failed = Vec::new();
    let mut ed: Vec<(usize, EdwardsPoint)> = Vec::with_capacity(items.len());
    {
        let mut guard = KEY_CACHE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cache = guard.get_or_insert_with(|| KeyCache {
            young: std::collections::HashMap::new(),
            old: std::collections::HashMap::new(),
        });
        for (i, item) in items.iter().enumerate() {
            if item.key.key_type == KeyType::Ed25519 {
                match cache.get(item.key) {
                    Ok(point) => ed.push((i, point)),
                    Err(_) => failed.push(i),
                }
            }
        }
    }
    for (i, item) in items.iter().enumerate() {
        if item.key.key_type == KeyType::Secp256k1 && verify(item.key, item.msg, item.sig).is_err()
        {
            failed.push(i);
        }
    }
    if !ed.is_empty() {
        failed.extend(ed25519_batch(items, &ed));
    }
    failed.sort_unstable();
    failed
}

/// One ZIP-215 batch over keys already decoded (`ed`: index into `items`, the key's point).
/// Returns the indices whose signature fails.
///
/// The equation is `[8]([-sum z_i s_i]B + sum [z_i]R_i + sum [z_i k_i]A_i) = 0`, with 128-bit
/// coefficients `z_i` read from a BLAKE3 hash of the whole batch, so no signer can choose its
/// terms after seeing them. A signature whose `R` is not a point or whose `s` is not reduced
/// fails on its own and stays out of the equation. A batch of valid signatures always passes;
/// if the equation fails, every signature is checked alone by [`verify`] (the same rule), so
/// the verdicts never depend on what shares the batch.
fn ed25519_batch(items: &[SigItem<'_>], ed: &[(usize, EdwardsPoint)]) -> Vec<usize> {
    let mut failed = Vec::new();
    let mut transcript = blake3::Hasher::new_derive_key("starling ed25519 batch coefficients v1");
    for (i, _) in ed {
        let item = &items[*i];
        transcript.update(&item.key.bytes);
        transcript.update(&(item.msg.len() as u64).to_le_bytes());
        transcript.update(item.msg);
        transcript.update(&item.sig.0);
    }
    let mut coefficients = transcript.finalize_xof();
    let mut scalars: Vec<Scalar> = Vec::with_capacity(2 * ed.len() + 1);
    let mut points: Vec<EdwardsPoint> = Vec::with_capacity(2 * ed.len() + 1);
    let mut in_batch: Vec<usize> = Vec::with_capacity(ed.len());
    let mut b_coeff = Scalar::ZERO;
    for (i, a) in ed {
        let item = &items[*i];
        let mut z_bytes = [0u8; 16];
        coefficients.fill(&mut z_bytes);
        let mut r_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&item.sig.0[..32]);
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&item.sig.0[32..]);
        let (Some(r), Some(s)) = (
            CompressedEdwardsY(r_bytes).decompress(),
            Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)),
        ) else {
            failed.push(*i);
            continue;
        };
        let mut wide = [0u8; 64];
        wide.copy_from_slice(
            &Sha512::new()
                .chain_update(r_bytes)
                .chain_update(item.key.bytes)
                .chain_update(item.msg)
                .finalize(),
        );
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        let z = Scalar::from(u128::from_le_bytes(z_bytes));
        b_coeff -= z * s;
        scalars.push(z);
        points.push(r);
        scalars.push(z * k);
        points.push(*a);
        in_batch.push(*i);
    }
    if in_batch.is_empty() {
        return failed;
    }
    scalars.push(b_coeff);
    points.push(curve25519_dalek::constants::ED25519_BASEPOINT_POINT);
    let check = EdwardsPoint::vartime_multiscalar_mul(&scalars, &points);
    if !check.mul_by_cofactor().is_identity() {
        for i in in_batch {
            let item = &items[i];
            if verify(item.key, item.msg, item.sig).is_err() {
                failed.push(i);
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests;
