//! Anonymous ballot credentials: RFC 9474 blind RSA signatures, variant
//! RSABSSA-SHA384-PSS-Randomized, with the public exponent 65537 and moduli of 2048 to 4096
//! bits.
//!
//! A foundation's registrar publishes one [`CredentialKey`] per round; its public metadata
//! (foundation, round, branch, token allotment) is bound by that key, not by the message, so
//! a credential of one round is worthless in any other. A member blinds a message naming a
//! fresh ballot key ([`CredentialKey::blind`]); the registrar signs the blinded message
//! ([`RegistrarKey::sign_blinded`]) without seeing what it hides; the member unblinds it
//! ([`CredentialKey::finalize`]) into a [`Credential`] that anyone verifies
//! ([`CredentialKey::verify`]) and nobody, the registrar included, links to the request.
//!
//! Verdicts are functions of (key, message, randomizer, signature) alone, so the ledger may
//! use them as consensus rules. [`CredentialKey::check_blind_signature`] lets the ledger check
//! that what a registrar posted is the signature of exactly the blinded message it was asked
//! to sign (`blind_sig^e mod n = blinded`).

use blind_rsa_signatures::{
    BlindMessage, BlindSignature, BlindingResult, DefaultRng, MessageRandomizer, Randomized,
    Secret, Sha384, Signature, PSS,
};
use rsa::rand_core::CryptoRng;
use rsa::traits::PublicKeyParts;
use rsa::BoxedUint;
use std::sync::Mutex;
use zeroize::Zeroize;

type Pk = blind_rsa_signatures::PublicKey<Sha384, PSS, Randomized>;
type Sk = blind_rsa_signatures::SecretKey<Sha384, PSS, Randomized>;
type Pair = blind_rsa_signatures::KeyPair<Sha384, PSS, Randomized>;

/// The longest encoded public key accepted (a 4096-bit key in SubjectPublicKeyInfo DER is
/// about 550 bytes).
pub const MAX_KEY_DER_BYTES: usize = 800;
/// The shortest and longest modulus, in bytes (2048 and 4096 bits): a credential signature
/// and a blinded message are exactly the modulus's length.
pub const MIN_MODULUS_BYTES: usize = 256;
pub const MAX_MODULUS_BYTES: usize = 512;

/// Keys [`CredentialKey::from_der_cached`] keeps (a few foundations' current rounds).
const KEY_CACHE: usize = 8;

/// Why a key, a signature or a blinding is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BlindError {
    #[error("not a well-formed RSA key")]
    Encoding,
    #[error("unsupported RSA key (2048 to 4096 bits, exponent 65537)")]
    UnsupportedKey,
    #[error("wrong length for this key's modulus")]
    Length,
    #[error("the signature does not verify")]
    Invalid,
}

/// A registrar's public key for one round's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialKey(Pk);

/// What a member keeps between asking for a credential and finalizing it: the blinded
/// message it sends, and the secret that unblinds the answer (wiped on drop).
#[derive(Debug)]
pub struct Blinding {
    pub blinded: Vec<u8>,
    pub randomizer: [u8; 32],
    secret: Vec<u8>,
}

impl Drop for Blinding {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl Blinding {
    /// The unblinding secret, to keep it across restarts (it links the credential to the
    /// request: it never leaves the member's machine).
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// A blinding kept with [`Self::secret`].
    pub fn from_parts(blinded: Vec<u8>, randomizer: [u8; 32], secret: Vec<u8>) -> Self {
        Blinding {
            blinded,
            randomizer,
            secret,
        }
    }
}

/// An unblinded credential: the registrar's signature over the member's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub randomizer: [u8; 32],
    pub signature: Vec<u8>,
}

impl CredentialKey {
    /// Parses a SubjectPublicKeyInfo (or PKCS#1) DER key of 2048 to 4096 bits with exponent
    /// 65537.
    pub fn from_der(der: &[u8]) -> Result<Self, BlindError> {
        if der.len() > MAX_KEY_DER_BYTES {
            return Err(BlindError::Encoding);
        }
        let pk = Pk::from_der(der).map_err(|e| match e {
            blind_rsa_signatures::Error::UnsupportedParameters => BlindError::UnsupportedKey,
            _ => BlindError::Encoding,
        })?;
        if pk.as_ref().e() != &BoxedUint::from(65_537u32) {
            return Err(BlindError::UnsupportedKey);
        }
        Ok(CredentialKey(pk))
    }

    /// As [`Self::from_der`], from a small cache of the keys parsed last (a round's key is
    /// read once per ballot; parsing it again each time costs a fifth of a verification).
    /// The cache holds parse results only, keyed by the whole encoding: it cannot change a
    /// verdict.
    pub fn from_der_cached(der: &[u8]) -> Result<Self, BlindError> {
        static CACHE: Mutex<Vec<(Vec<u8>, CredentialKey)>> = Mutex::new(Vec::new());
        let lock = || CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, k)) = lock().iter().find(|(d, _)| d == der) {
            return Ok(k.clone());
        }
        let key = Self::from_der(der)?;
        let mut cache = lock();
        if cache.len() >= KEY_CACHE {
            cache.remove(0);
        }
        cache.push((der.to_vec(), key.clone()));
        Ok(key)
    }

    pub fn to_der(&self) -> Vec<u8> {
        // A key that parsed encodes.
        self.0.to_der().unwrap_or_default()
    }

    /// The modulus's length in bytes: that of every blinded message and signature.
    pub fn modulus_len(&self) -> usize {
        self.0.as_ref().size()
    }

    /// Verifies a credential over `msg`.
    pub fn verify(&self, msg: &[u8], credential: &Credential) -> Result<(), BlindError> {
        if credential.signature.len() != self.modulus_len() {
            return Err(BlindError::Length);
        }
        self.0
            .verify(
                &Signature(credential.signature.clone()),
                Some(MessageRandomizer(credential.randomizer)),
                msg,
            )
            .map_err(|_| BlindError::Invalid)
    }

    /// Whether `blind_sig` is the registrar's signature of `blinded`: both exactly the
    /// modulus's length and below it, and `blind_sig^e mod n = blinded`.
    pub fn check_blind_signature(
        &self,
        blinded: &[u8],
        blind_sig: &[u8],
    ) -> Result<(), BlindError> {
        let key = self.0.as_ref();
        let len = self.modulus_len();
        if blinded.len() != len || blind_sig.len() != len {
            return Err(BlindError::Length);
        }
        let bits = key.n_bits_precision();
        let parse = |b: &[u8]| BoxedUint::from_be_slice(b, bits).map_err(|_| BlindError::Length);
        let (m, s) = (parse(blinded)?, parse(blind_sig)?);
        let n: &BoxedUint = key.n().as_ref();
        if m >= *n || s >= *n {
            return Err(BlindError::Invalid);
        }
        let back = rsa::hazmat::rsa_encrypt(key, &s).map_err(|_| BlindError::Invalid)?;
        if back == m {
            Ok(())
        } else {
            Err(BlindError::Invalid)
        }
    }

    /// Blinds `msg` with the operating system's randomness.
    pub fn blind(&self, msg: &[u8]) -> Result<Blinding, BlindError> {
        self.blind_with(&mut DefaultRng, msg)
    }

    /// Blinds `msg` with `rng` (RFC 9474 §4.1: the message randomizer, the PSS salt, then
    /// the blinding factor).
    pub fn blind_with<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        msg: &[u8],
    ) -> Result<Blinding, BlindError> {
        let r = self.0.blind(rng, msg).map_err(|_| BlindError::Invalid)?;
        let randomizer = r.msg_randomizer.map(|m| m.0).ok_or(BlindError::Invalid)?;
        Ok(Blinding {
            blinded: r.blind_message.0.clone(),
            randomizer,
            secret: r.secret.0.clone(),
        })
    }

    /// Unblinds the registrar's answer into a credential over `msg`, and checks it.
    pub fn finalize(
        &self,
        blind_sig: &[u8],
        blinding: &Blinding,
        msg: &[u8],
    ) -> Result<Credential, BlindError> {
        if blind_sig.len() != self.modulus_len() || blinding.secret.len() != self.modulus_len() {
            return Err(BlindError::Length);
        }
        let result = BlindingResult {
            blind_message: BlindMessage(blinding.blinded.clone()),
            secret: Secret(blinding.secret.clone()),
            msg_randomizer: Some(MessageRandomizer(blinding.randomizer)),
        };
        let sig = self
            .0
            .finalize(&BlindSignature(blind_sig.to_vec()), &result, msg)
            .map_err(|_| BlindError::Invalid)?;
        Ok(Credential {
            randomizer: blinding.randomizer,
            signature: sig.0,
        })
    }
}

/// A registrar's secret key for one round's credentials.
#[derive(Clone, Debug)]
pub struct RegistrarKey(Sk);

impl RegistrarKey {
    /// A new key of `bits` (2048 to 4096), from the operating system's randomness.
    pub fn generate(bits: usize) -> Result<Self, BlindError> {
        let pair = Pair::generate(&mut DefaultRng, bits).map_err(|_| BlindError::UnsupportedKey)?;
        Ok(RegistrarKey(pair.sk))
    }

    /// A key from its RSA components (big-endian): the modulus, the public and private
    /// exponents, and the two primes.
    pub fn from_components(
        n: &[u8],
        e: &[u8],
        d: &[u8],
        primes: [&[u8]; 2],
    ) -> Result<Self, BlindError> {
        let uint = |b: &[u8]| {
            BoxedUint::from_be_slice(b, (b.len() * 8) as u32).map_err(|_| BlindError::Encoding)
        };
        let inner = rsa::RsaPrivateKey::from_components(
            uint(n)?,
            uint(e)?,
            uint(d)?,
            vec![uint(primes[0])?, uint(primes[1])?],
        )
        .map_err(|_| BlindError::Encoding)?;
        Ok(RegistrarKey(Sk::new(inner)))
    }

    pub fn from_der(der: &[u8]) -> Result<Self, BlindError> {
        Sk::from_der(der)
            .map(RegistrarKey)
            .map_err(|_| BlindError::Encoding)
    }

    pub fn to_der(&self) -> Vec<u8> {
        self.0.to_der().unwrap_or_default()
    }

    pub fn public(&self) -> Result<CredentialKey, BlindError> {
        let pk = self
            .0
            .public_key()
            .map_err(|_| BlindError::UnsupportedKey)?;
        CredentialKey::from_der(&pk.to_der().map_err(|_| BlindError::Encoding)?)
    }

    /// Signs a blinded message (what the registrar does for each member it admits).
    pub fn sign_blinded(&self, blinded: &[u8]) -> Result<Vec<u8>, BlindError> {
        self.0
            .blind_sign(blinded)
            .map(|s| s.0)
            .map_err(|_| BlindError::Length)
    }
}
