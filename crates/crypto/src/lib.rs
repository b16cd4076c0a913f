//! Starling signatures: Ed25519 and secp256k1 BIP-340 keys, signing, single and batched
//! verification, and secret keys that are zeroized on drop and never printed.

use ed25519_dalek::Signer as _;
use rand_core::{CryptoRng, RngCore};
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

/// Verifies one signature. Ed25519 uses the strict rules (canonical `S`, no small-order keys).
pub fn verify(key: &PublicKey, msg: &[u8], sig: &Signature) -> Result<(), SigError> {
    match key.key_type {
        KeyType::Ed25519 => {
            let vk = ed25519_key(key)?;
            let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
            vk.verify_strict(msg, &sig)
                .map_err(|_| SigError::BadSignature)
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

/// Whether `key` is an Ed25519 key that can verify (a valid point, not of small order).
pub fn check_public_key(key: &PublicKey) -> Result<(), SigError> {
    match key.key_type {
        KeyType::Ed25519 => ed25519_key(key).map(|_| ()),
        KeyType::Secp256k1 => k256::schnorr::VerifyingKey::from_bytes(&key.bytes)
            .map(|_| ())
            .map_err(|_| SigError::InvalidKey(KeyType::Secp256k1)),
    }
}

fn ed25519_key(key: &PublicKey) -> Result<ed25519_dalek::VerifyingKey, SigError> {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.bytes)
        .map_err(|_| SigError::InvalidKey(KeyType::Ed25519))?;
    if vk.is_weak() {
        return Err(SigError::WeakKey);
    }
    Ok(vk)
}

/// Decoded Ed25519 keys of recent signers: decoding a key (a point decompression, a square
/// root in the field) costs about as much as a third of checking a signature, and accounts
/// sign again and again. Two generations of at most [`KEY_CACHE_GENERATION`] keys: when the
/// young one is full it becomes the old one, so memory is bounded and recent keys stay. Only
/// valid, non-weak keys are kept; the result is the same as decoding every time.
struct KeyCache {
    young: std::collections::HashMap<[u8; 32], ed25519_dalek::VerifyingKey>,
    old: std::collections::HashMap<[u8; 32], ed25519_dalek::VerifyingKey>,
}

const KEY_CACHE_GENERATION: usize = 1 << 16;

static KEY_CACHE: std::sync::Mutex<Option<KeyCache>> = std::sync::Mutex::new(None);

impl KeyCache {
    fn get(&mut self, key: &PublicKey) -> Result<ed25519_dalek::VerifyingKey, SigError> {
        if let Some(vk) = self.young.get(&key.bytes) {
            return Ok(*vk);
        }
        let vk = match self.old.get(&key.bytes) {
            Some(vk) => *vk,
            None => ed25519_key(key)?,
        };
        if self.young.len() >= KEY_CACHE_GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key.bytes, vk);
        Ok(vk)
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

/// One signature to check:/// One signature to check: key, signed message (a 32-byte digest for transactions), signature.
#[derive(Debug, Clone, Copy)]
pub struct SigItem<'a> {
    pub key: &'a PublicKey,
    pub msg: &'a [u8],
    pub sig: &'a Signature,
}

/// Verifies many signatures and says which failed (indices into `items`, ascending).
///
/// Rule (deterministic, so every validator agrees on a block): Ed25519 keys are decoded and
/// weak keys rejected; all Ed25519 signatures are checked in one batch, in order; only if the
/// batch fails is each checked alone to find the culprits. secp256k1 signatures are checked one
/// by one.
///
/// Signatures this process has seen pass before are not checked again (see [`SigCache`]).
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
    let mut ed_idx = Vec::with_capacity(items.len());
    let mut ed_keys = Vec::with_capacity(items.len());
    let mut ed_msgs: Vec<&[u8]> = Vec::with_capacity(items.len());
    let mut ed_sigs = Vec::with_capacity(items.len());
    let mut guard = KEY_CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let cache = guard.get_or_insert_with(|| KeyCache {
        young: std::collections::HashMap::new(),
        old: std::collections::HashMap::new(),
    });
    let keys: Vec<Option<Result<ed25519_dalek::VerifyingKey, SigError>>> = items
        .iter()
        .map(|item| (item.key.key_type == KeyType::Ed25519).then(|| cache.get(item.key)))
        .collect();
    drop(guard);
    for (i, (item, decoded)) in items.iter().zip(keys).enumerate() {
        match item.key.key_type {
            KeyType::Ed25519 => {
                match decoded.unwrap_or(Err(SigError::InvalidKey(KeyType::Ed25519))) {
                    Ok(vk) => {
                        ed_idx.push(i);
                        ed_keys.push(vk);
                        ed_msgs.push(item.msg);
                        ed_sigs.push(ed25519_dalek::Signature::from_bytes(&item.sig.0));
                    }
                    Err(_) => failed.push(i),
                }
            }
            KeyType::Secp256k1 => {
                if verify(item.key, item.msg, item.sig).is_err() {
                    failed.push(i);
                }
            }
        }
    }
    if !ed_idx.is_empty() && ed25519_dalek::verify_batch(&ed_msgs, &ed_sigs, &ed_keys).is_err() {
        for (j, &i) in ed_idx.iter().enumerate() {
            if ed_keys[j].verify_strict(ed_msgs[j], &ed_sigs[j]).is_err() {
                failed.push(i);
            }
        }
    }
    failed.sort_unstable();
    failed
}

#[cfg(test)]
mod tests;
