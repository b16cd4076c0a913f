//! The Ed25519 rule is a function of (key, message, signature) alone: ZIP-215 verdicts
//! (cofactored equation, non-canonical point encodings accepted, `s` must be canonical), plus
//! Starling's key policy (a small-order public key is refused), given the same whether a
//! signature is checked alone, in a batch beside valid ones, beside invalid ones, or again
//! from the cache of verdicts.
//!
//! The vectors are built here from the curve itself: signatures whose `R` is the identity or
//! another small-order point (each of its 14 encodings, canonical or not), whose `R` or `A` has
//! a small-order component (mixed order), whose `s` is not reduced, and the ZIP-215 set of
//! 14 × 14 small-order `(A, R)` pairs with `s = 0`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use sha2::{Digest as _, Sha512};
use starling_crypto::{verify, verify_batch, verify_batch_uncached, SecretKey, SigItem};
use starling_types::{KeyType, PublicKey, Signature};

/// The eight points of small order, canonically encoded.
const TORSION: [&str; 8] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
];

fn bytes32(hex_str: &str) -> [u8; 32] {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

/// Every encoding (canonical or not) that decodes to a point of small order: the canonical
/// ones, their sign-flipped twins where `x = 0`, and `y + p` for the `y < 19` that are points.
fn small_order_encodings() -> Vec<[u8; 32]> {
    let mut candidates: Vec<[u8; 32]> = Vec::new();
    for t in TORSION {
        let b = bytes32(t);
        let point = CompressedEdwardsY(b).decompress().expect("a torsion point");
        assert!(point.is_small_order(), "{t} is of small order");
        candidates.push(b);
        let mut flipped = b;
        flipped[31] ^= 0x80;
        candidates.push(flipped);
    }
    // p = 2^255 - 19; y + p for y in 0..19 fits in 255 bits.
    for y in 0u8..19 {
        let mut b = [0xffu8; 32];
        b[0] = 0xed + y;
        b[31] = 0x7f;
        candidates.push(b);
        b[31] |= 0x80;
        candidates.push(b);
    }
    let mut out: Vec<[u8; 32]> = Vec::new();
    for c in candidates {
        if let Some(p) = CompressedEdwardsY(c).decompress() {
            if p.is_small_order() && !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

fn challenge(r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(msg);
    let wide: [u8; 64] = h.finalize().into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn scalar(rng: &mut rand_chacha::ChaCha20Rng) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// One case: key, message, signature, and whether Starling's rule accepts it.
struct Case {
    name: String,
    key: PublicKey,
    msg: Vec<u8>,
    sig: Signature,
    valid: bool,
}

fn sig_of(r: &[u8; 32], s: &[u8; 32]) -> Signature {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(r);
    out[32..].copy_from_slice(s);
    Signature(out)
}

fn edge_cases() -> Vec<Case> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(215);
    let encodings = small_order_encodings();
    assert_eq!(
        encodings.len(),
        14,
        "ZIP-215 names 14 encodings of small-order points"
    );
    let order2 = CompressedEdwardsY(bytes32(TORSION[1]))
        .decompress()
        .unwrap();
    let order8 = CompressedEdwardsY(bytes32(TORSION[4]))
        .decompress()
        .unwrap();
    let mut cases = Vec::new();

    // R of small order (every encoding), s = k·a: valid under the cofactored equation.
    for (i, r) in encodings.iter().enumerate() {
        let a = scalar(&mut rng);
        let a_bytes = EdwardsPoint::mul_base(&a).compress().0;
        let msg = format!("small-order R #{i}").into_bytes();
        let s = challenge(r, &a_bytes, &msg) * a;
        cases.push(Case {
            name: format!("small-order R encoding {}", hex::encode(r)),
            key: PublicKey::ed25519(a_bytes),
            msg,
            sig: sig_of(r, &s.to_bytes()),
            valid: true,
        });
    }
    // Mixed-order R = rB + T (T of order 2 and of order 8), s = r + k·a.
    for (name, t) in [("order 2", order2), ("order 8", order8)] {
        for round in 0..4 {
            let (a, r) = (scalar(&mut rng), scalar(&mut rng));
            let a_bytes = EdwardsPoint::mul_base(&a).compress().0;
            let big_r = (EdwardsPoint::mul_base(&r) + t).compress().0;
            let msg = format!("mixed-order R {name} #{round}").into_bytes();
            let s = r + challenge(&big_r, &a_bytes, &msg) * a;
            cases.push(Case {
                name: format!("mixed-order R ({name}) #{round}"),
                key: PublicKey::ed25519(a_bytes),
                msg,
                sig: sig_of(&big_r, &s.to_bytes()),
                valid: true,
            });
        }
    }
    // Mixed-order A = aB + T: not a weak key, and valid under the cofactored equation.
    for (name, t) in [("order 2", order2), ("order 8", order8)] {
        for round in 0..4 {
            let (a, r) = (scalar(&mut rng), scalar(&mut rng));
            let a_bytes = (EdwardsPoint::mul_base(&a) + t).compress().0;
            let big_r = EdwardsPoint::mul_base(&r).compress().0;
            let msg = format!("mixed-order A {name} #{round}").into_bytes();
            let s = r + challenge(&big_r, &a_bytes, &msg) * a;
            cases.push(Case {
                name: format!("mixed-order A ({name}) #{round}"),
                key: PublicKey::ed25519(a_bytes),
                msg,
                sig: sig_of(&big_r, &s.to_bytes()),
                valid: true,
            });
        }
    }
    // A valid signature whose s is not reduced (s + l): refused.
    {
        let sk = SecretKey::from_seed(KeyType::Ed25519, &[7u8; 32]).unwrap();
        let msg = b"non-canonical s".to_vec();
        let good = sk.sign(&msg);
        let s = Scalar::from_canonical_bytes(good.0[32..].try_into().unwrap()).unwrap();
        // l = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let l: [u8; 32] =
            bytes32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let mut sum = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = s.to_bytes()[i] as u16 + l[i] as u16 + carry;
            sum[i] = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0);
        cases.push(Case {
            name: "s + l".into(),
            key: sk.public_key(),
            msg: msg.clone(),
            sig: sig_of(good.0[..32].try_into().unwrap(), &sum),
            valid: false,
        });
        cases.push(Case {
            name: "plain valid".into(),
            key: sk.public_key(),
            msg,
            sig: good,
            valid: true,
        });
    }
    // The ZIP-215 set: every (A, R) of small-order encodings with s = 0 satisfies the
    // cofactored equation, but a small-order A is a weak key, which Starling refuses.
    for a in &encodings {
        for r in &encodings {
            cases.push(Case {
                name: format!("ZIP-215 A={} R={}", hex::encode(a), hex::encode(r)),
                key: PublicKey::ed25519(*a),
                msg: b"Zcash".to_vec(),
                sig: sig_of(r, &[0u8; 32]),
                valid: false,
            });
        }
    }
    cases
}

fn item(c: &Case) -> SigItem<'_> {
    SigItem {
        key: &c.key,
        msg: &c.msg,
        sig: &c.sig,
    }
}

#[test]
fn single_and_batched_verdicts_are_the_rule_for_every_edge_case() {
    let cases = edge_cases();
    let good_key = SecretKey::from_seed(KeyType::Ed25519, &[1u8; 32]).unwrap();
    let good_msgs: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 32]).collect();
    let good: Vec<Case> = good_msgs
        .iter()
        .map(|m| Case {
            name: "good".into(),
            key: good_key.public_key(),
            msg: m.clone(),
            sig: good_key.sign(m),
            valid: true,
        })
        .collect();
    let mut bad_sig = good_key.sign(b"bad");
    bad_sig.0[40] ^= 1;
    let bad = Case {
        name: "bad".into(),
        key: good_key.public_key(),
        msg: b"bad".to_vec(),
        sig: bad_sig,
        valid: false,
    };
    for c in &cases {
        let want = c.valid;
        assert_eq!(
            verify(&c.key, &c.msg, &c.sig).is_ok(),
            want,
            "single verdict: {}",
            c.name
        );
        assert_eq!(
            verify_batch_uncached(&[item(c)]).is_empty(),
            want,
            "batch of one: {}",
            c.name
        );
        // Beside valid signatures, and beside an invalid one, in either position.
        let with_good = [item(&good[0]), item(c), item(&good[1])];
        let expected: Vec<usize> = if want { vec![] } else { vec![1] };
        assert_eq!(
            verify_batch_uncached(&with_good),
            expected,
            "beside valid: {}",
            c.name
        );
        let with_bad = [item(&bad), item(c), item(&good[2])];
        let expected: Vec<usize> = if want { vec![0] } else { vec![0, 1] };
        assert_eq!(
            verify_batch_uncached(&with_bad),
            expected,
            "beside invalid: {}",
            c.name
        );
        // Through the cache, twice: the second answer may come from it.
        for _ in 0..2 {
            assert_eq!(
                verify_batch(&[item(c), item(&bad)]),
                if want { vec![1] } else { vec![0, 1] },
                "cached: {}",
                c.name
            );
            assert_eq!(
                verify(&c.key, &c.msg, &c.sig).is_ok(),
                want,
                "single after cache: {}",
                c.name
            );
        }
    }
    // All edge cases in one batch: exactly the invalid ones fail.
    let all: Vec<SigItem<'_>> = cases.iter().map(item).collect();
    let expected: Vec<usize> = (0..cases.len()).filter(|&i| !cases[i].valid).collect();
    assert_eq!(verify_batch_uncached(&all), expected);
    assert_eq!(verify_batch(&all), expected);
}
