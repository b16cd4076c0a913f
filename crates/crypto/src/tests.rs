use super::*;
use rand_chacha::rand_core::SeedableRng;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn rfc8032_vectors() {
    let text = include_str!("../vectors/rfc8032-ed25519.txt");
    let mut n = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split(':').collect();
        let seed: [u8; 32] = unhex(f[0]).try_into().unwrap();
        let sk = SecretKey::from_seed(KeyType::Ed25519, &seed).unwrap();
        let pk = sk.public_key();
        assert_eq!(pk.bytes.to_vec(), unhex(f[1]), "public key of vector {n}");
        let msg = unhex(f[2]);
        let sig = sk.sign(&msg);
        assert_eq!(sig.0.to_vec(), unhex(f[3]), "signature of vector {n}");
        verify(&pk, &msg, &sig).unwrap();
        let mut bad = sig;
        bad.0[63] ^= 0x40;
        assert!(verify(&pk, &msg, &bad).is_err());
        n += 1;
    }
    assert_eq!(n, 4);
}

#[test]
fn bip340_vectors() {
    let text = include_str!("../vectors/bip340-test-vectors.csv");
    let mut n = 0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.splitn(8, ',').collect();
        let pk_bytes: [u8; 32] = unhex(f[2]).try_into().unwrap();
        let pk = PublicKey::secp256k1(pk_bytes);
        let msg = unhex(f[4]);
        let sig = Signature(unhex(f[5]).try_into().unwrap());
        let expected = f[6] == "TRUE";
        assert_eq!(verify(&pk, &msg, &sig).is_ok(), expected, "vector {}", f[0]);
        if !f[1].is_empty() {
            let seed: [u8; 32] = unhex(f[1]).try_into().unwrap();
            let sk = SecretKey::from_seed(KeyType::Secp256k1, &seed).unwrap();
            assert_eq!(sk.public_key(), pk, "public key of vector {}", f[0]);
            let aux: [u8; 32] = unhex(f[3]).try_into().unwrap();
            let SecretKey::Secp256k1(k) = &sk else {
                unreachable!()
            };
            assert_eq!(
                sign_bip340(k, &msg, &aux),
                sig,
                "signature of vector {}",
                f[0]
            );
        }
        // The batch path gives the same verdict.
        let failed = verify_batch(&[SigItem {
            key: &pk,
            msg: &msg,
            sig: &sig,
        }]);
        assert_eq!(failed.is_empty(), expected);
        n += 1;
    }
    assert_eq!(n, 15);
}

#[test]
fn batch_finds_exactly_the_bad_signatures() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let keys: Vec<SecretKey> = (0..40)
        .map(|i| {
            SecretKey::generate(
                if i % 5 == 0 {
                    KeyType::Secp256k1
                } else {
                    KeyType::Ed25519
                },
                &mut rng,
            )
        })
        .collect();
    let pks: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
    let msgs: Vec<[u8; 32]> = (0..40u8).map(|i| [i; 32]).collect();
    let mut sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let items = |sigs: &[Signature]| -> Vec<usize> {
        let v: Vec<SigItem<'_>> = (0..40)
            .map(|i| SigItem {
                key: &pks[i],
                msg: &msgs[i],
                sig: &sigs[i],
            })
            .collect();
        verify_batch(&v)
    };
    assert!(items(&sigs).is_empty());
    sigs[3].0[0] ^= 1;
    sigs[10].0[5] ^= 1; // a secp256k1 one
    sigs[39].0[40] ^= 1;
    assert_eq!(items(&sigs), vec![3, 10, 39]);
}

#[test]
fn weak_ed25519_keys_are_rejected() {
    // The identity point (a small-order point) encoded as y = 1.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let pk = PublicKey::ed25519(identity);
    let sig = Signature([0u8; 64]);
    assert_eq!(verify(&pk, b"m", &sig), Err(SigError::WeakKey));
    // Twice: rejected keys are never remembered as good ones.
    for _ in 0..2 {
        assert_eq!(
            verify_batch(&[SigItem {
                key: &pk,
                msg: b"m",
                sig: &sig
            }]),
            vec![0]
        );
    }
}

#[test]
fn secret_keys_do_not_print() {
    let sk = SecretKey::from_seed(KeyType::Ed25519, &[9u8; 32]).unwrap();
    let shown = format!("{sk:?}");
    assert!(shown.contains("redacted"));
    assert!(!shown.contains(&hex::encode([9u8; 32])));
}

#[test]
fn a_signature_seen_before_keeps_its_verdict_and_binds_key_message_and_signature() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let a = SecretKey::generate(KeyType::Ed25519, &mut rng);
    let b = SecretKey::generate(KeyType::Ed25519, &mut rng);
    let (pa, pb) = (a.public_key(), b.public_key());
    let msg = [9u8; 32];
    let other = [10u8; 32];
    let sig = a.sign(&msg);
    let mut bent = sig;
    bent.0[1] ^= 1;
    let item = |key, msg, sig| SigItem { key, msg, sig };
    // Cache the good one, then ask again alone and among others.
    assert!(verify_batch(&[item(&pa, &msg, &sig)]).is_empty());
    assert!(verify_batch(&[item(&pa, &msg, &sig)]).is_empty());
    // What passed once does not vouch for another message, key or signature.
    let mixed = [
        item(&pa, &msg, &sig),
        item(&pa, &other, &sig),
        item(&pb, &msg, &sig),
        item(&pa, &msg, &bent),
    ];
    assert_eq!(verify_batch(&mixed), vec![1, 2, 3]);
    // A failure is not remembered as a pass.
    assert_eq!(verify_batch(&mixed), vec![1, 2, 3]);
    assert_eq!(verify_batch(&mixed[1..2]), vec![0]);
}
