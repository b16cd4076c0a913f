//! Ballot credentials against RFC 9474's test vectors (Appendix A), for the one variant
//! Starling uses: RSABSSA-SHA384-PSS-Randomized.
//!
//! `fixtures/rfc9474_vectors.json` is the vectors file the `blind-rsa-signatures` crate
//! ships (the RFC's Appendix A as JSON); its SHA-256 is pinned below so that an edit to it
//! cannot pass unnoticed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rsa::rand_core::{TryCryptoRng, TryRng};
use rsa::BoxedUint;
use sha2::{Digest, Sha256};
use starling_crypto::blind::{BlindError, Credential, CredentialKey, RegistrarKey};

const VECTORS_SHA256: &str = "c0d45eaa85c42906e0e0a60efc69b8744e0e05be35a3863fa5040037ecc9606a";

struct Vector(serde_json::Value);

impl Vector {
    fn hex(&self, field: &str) -> Vec<u8> {
        let s = self.0[field].as_str().expect("a string field");
        let s = s.strip_prefix("0x").unwrap_or(s);
        let s = if s.len() % 2 == 1 {
            format!("0{s}")
        } else {
            s.to_string()
        };
        hex::decode(s).expect("hex")
    }
}

fn vector() -> Vector {
    let path = format!(
        "{}/tests/fixtures/rfc9474_vectors.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(path).expect("the vectors file");
    assert_eq!(hex::encode(Sha256::digest(&bytes)), VECTORS_SHA256);
    let all: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let v = all
        .as_array()
        .expect("a list")
        .iter()
        .find(|v| v["name"] == "RSABSSA-SHA384-PSS-Randomized")
        .expect("the variant Starling uses")
        .clone();
    Vector(v)
}

fn keys(v: &Vector) -> (RegistrarKey, CredentialKey) {
    let sk = RegistrarKey::from_components(
        &v.hex("n"),
        &v.hex("e"),
        &v.hex("d"),
        [&v.hex("p"), &v.hex("q")],
    )
    .expect("the vector's key");
    let pk = sk.public().expect("its public key");
    (sk, pk)
}

/// Hands out the vector's randomness in the order blinding draws it: the message
/// randomizer, the salt, then the blinding factor (the inverse of `inv`, little-endian).
struct Replay(Vec<Vec<u8>>);

impl TryRng for Replay {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        unreachable!("blinding draws bytes")
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        unreachable!("blinding draws bytes")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.copy_from_slice(&self.0.remove(0));
        Ok(())
    }
}

impl TryCryptoRng for Replay {}

#[test]
fn blinding_signing_and_finalizing_reproduce_rfc_9474() {
    let v = vector();
    let (sk, pk) = keys(&v);
    let bits = (v.hex("n").len() * 8) as u32;
    assert_eq!(bits, 4096, "the RFC's vector key");
    let n = BoxedUint::from_be_slice(&v.hex("n"), bits).unwrap();
    let inv = BoxedUint::from_be_slice(&v.hex("inv"), bits).unwrap();
    let r = inv.invert_mod(&n.to_nz().unwrap()).unwrap();
    let mut rng = Replay(vec![
        v.hex("msg_prefix"),
        v.hex("salt"),
        r.to_le_bytes().to_vec(),
    ]);
    let msg = v.hex("msg");
    let blinding = pk.blind_with(&mut rng, &msg).unwrap();
    assert_eq!(blinding.blinded, v.hex("blinded_msg"));
    assert_eq!(blinding.randomizer.to_vec(), v.hex("msg_prefix"));

    let blind_sig = sk.sign_blinded(&blinding.blinded).unwrap();
    assert_eq!(blind_sig, v.hex("blind_sig"));
    pk.check_blind_signature(&blinding.blinded, &blind_sig)
        .unwrap();

    let credential = pk.finalize(&blind_sig, &blinding, &msg).unwrap();
    assert_eq!(credential.signature, v.hex("sig"));
    pk.verify(&msg, &credential).unwrap();
}

#[test]
fn any_change_to_a_vector_credential_is_refused() {
    let v = vector();
    let (_, pk) = keys(&v);
    let msg = v.hex("msg");
    let good = Credential {
        randomizer: v.hex("msg_prefix").try_into().unwrap(),
        signature: v.hex("sig"),
    };
    pk.verify(&msg, &good).unwrap();

    let mut other_msg = msg.clone();
    other_msg[0] ^= 1;
    assert_eq!(pk.verify(&other_msg, &good), Err(BlindError::Invalid));
    let mut r = good.clone();
    r.randomizer[31] ^= 1;
    assert_eq!(pk.verify(&msg, &r), Err(BlindError::Invalid));
    for i in [0, 100, 511] {
        let mut s = good.clone();
        s.signature[i] ^= 0x80;
        assert!(pk.verify(&msg, &s).is_err(), "bit flip at byte {i}");
    }
    let mut short = good.clone();
    short.signature.pop();
    assert_eq!(pk.verify(&msg, &short), Err(BlindError::Length));

    // The blind signature check: only the exact answer to the exact request passes.
    let (blinded, blind_sig) = (v.hex("blinded_msg"), v.hex("blind_sig"));
    pk.check_blind_signature(&blinded, &blind_sig).unwrap();
    let mut wrong = blind_sig.clone();
    wrong[10] ^= 1;
    assert_eq!(
        pk.check_blind_signature(&blinded, &wrong),
        Err(BlindError::Invalid)
    );
    assert_eq!(
        pk.check_blind_signature(&blinded, &vec![0xff; pk.modulus_len()]),
        Err(BlindError::Invalid),
        "a value above the modulus is no signature"
    );
    assert_eq!(
        pk.check_blind_signature(&blinded[1..], &blind_sig),
        Err(BlindError::Length)
    );
}

#[test]
fn keys_round_trip_and_unsupported_keys_are_refused() {
    let v = vector();
    let (sk, pk) = keys(&v);
    let der = pk.to_der();
    assert_eq!(CredentialKey::from_der(&der).unwrap(), pk);
    let back = RegistrarKey::from_der(&sk.to_der()).unwrap();
    assert_eq!(back.public().unwrap(), pk);
    assert_eq!(
        CredentialKey::from_der(&der[..der.len() - 1]),
        Err(BlindError::Encoding)
    );
    assert_eq!(
        CredentialKey::from_der(&[0u8; 801]),
        Err(BlindError::Encoding)
    );
    assert!(CredentialKey::from_der(b"").is_err());
    // Exponent 3 is RFC 9474's other choice; Starling takes 65537 only.
    let e3 = rsa::RsaPublicKey::new_unchecked(
        BoxedUint::from_be_slice(&v.hex("n"), 4096).unwrap(),
        BoxedUint::from(3u32),
    );
    let der3 = rsa::pkcs8::EncodePublicKey::to_public_key_der(&e3).unwrap();
    assert_eq!(
        CredentialKey::from_der(der3.as_bytes()),
        Err(BlindError::UnsupportedKey)
    );
}

#[test]
fn a_fresh_key_issues_credentials_that_only_it_verifies() {
    let sk = RegistrarKey::generate(2048).unwrap();
    let pk = sk.public().unwrap();
    let other = RegistrarKey::generate(2048).unwrap().public().unwrap();
    let msg = b"starling ballot key";
    let blinding = pk.blind(msg).unwrap();
    let blind_sig = sk.sign_blinded(&blinding.blinded).unwrap();
    let credential = pk.finalize(&blind_sig, &blinding, msg).unwrap();
    pk.verify(msg, &credential).unwrap();
    assert_eq!(other.verify(msg, &credential), Err(BlindError::Invalid));
    // What the registrar saw shares nothing with what it signed in the open.
    assert_ne!(blinding.blinded, credential.signature);
    assert_ne!(blind_sig, credential.signature);
}
