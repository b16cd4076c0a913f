use super::*;
use proptest::prelude::*;
use starling_types::{Decode, Encode};

fn writes_from(ops: &[(u16, Option<u8>)]) -> WriteSet {
    ops.iter()
        .map(|(k, v)| (key_hash(&k.to_be_bytes()), v.map(|v| vec![v; 3])))
        .collect()
}

#[test]
fn empty_tree_has_empty_root_and_proves_absence() {
    let s = MemState::new(8);
    assert_eq!(s.root(), EMPTY);
    let k = key_hash(b"nobody");
    s.prove(&k).verify(&s.root(), &k, None).unwrap();
}

#[test]
fn single_entry_root_is_its_leaf() {
    let mut s = MemState::new(8);
    let k = key_hash(b"a");
    let root = s.commit(&[(k, Some(b"1".to_vec()))].into_iter().collect());
    assert_eq!(root, leaf_hash(&k, &value_hash(b"1")));
}

#[test]
fn tampered_proofs_fail() {
    let mut s = MemState::new(4);
    let ws = writes_from(&(0..200u16).map(|i| (i, Some(i as u8))).collect::<Vec<_>>());
    let root = s.commit(&ws);
    let k = key_hash(&7u16.to_be_bytes());
    let p = s.prove(&k);
    let v = value_hash(&[7u8; 3]);
    p.verify(&root, &k, Some(&v)).unwrap();
    assert_eq!(
        p.verify(&root, &k, Some(&value_hash(b"x"))),
        Err(ProofError::WrongValue)
    );
    assert!(p.verify(&root, &k, None).is_err());
    let mut bad = p.clone();
    bad.siblings[2].0[0] ^= 1;
    assert_eq!(
        bad.verify(&root, &k, Some(&v)),
        Err(ProofError::RootMismatch)
    );
    let mut short = p.clone();
    short.siblings.pop();
    assert!(short.verify(&root, &k, Some(&v)).is_err());
    // A proof for one key does not prove another.
    let other = key_hash(&8u16.to_be_bytes());
    assert!(p.verify(&root, &other, Some(&v)).is_err());
}

#[test]
fn proof_decoding_rejects_garbage() {
    for bytes in [
        &[][..],
        &[1, 1][..],
        &[0, 1, 0x80][..],
        &[0, 1, 0x40, 0][..],
        &[0xff, 0xff][..],
    ] {
        assert!(Proof::from_bytes(bytes).is_err(), "{bytes:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The root is a function of the entries only: any number of in-memory levels, any
    /// batching of the writes, gives the same root as hashing the whole set at once.
    #[test]
    fn root_is_independent_of_layout_and_batching(
        batches in prop::collection::vec(prop::collection::vec((0u16..400, prop::option::of(any::<u8>())), 0..60), 1..6),
        bits in 0u8..10,
    ) {
        let mut a = MemState::new(bits);
        let mut b = MemState::new(12);
        let mut all = WriteSet::new();
        for batch in &batches {
            let ws = writes_from(batch);
            a.commit(&ws);
            all.extend(ws);
        }
        b.commit(&all);
        prop_assert_eq!(a.root(), b.root());
        let leaves: Vec<Leaf> = all.iter().filter_map(|(k, v)| v.as_ref().map(|v| (*k, value_hash(v)))).collect();
        prop_assert_eq!(a.root(), subtree_hash(&leaves, 0));
        prop_assert_eq!(a.len(), leaves.len());
    }

    /// A journaled apply measures the same root as committing, and its rollback puts the tree
    /// back exactly (every bucket, the root, and later applies), hashing nothing.
    #[test]
    fn journaled_apply_rolls_back_exactly(
        base in prop::collection::vec((0u16..300, prop::option::of(any::<u8>())), 0..80),
        more in prop::collection::vec((0u16..300, prop::option::of(any::<u8>())), 0..80),
        bits in 0u8..8,
    ) {
        let mut state = MemState::new(bits);
        state.commit(&writes_from(&base));
        let before_root = state.root();
        let before: Vec<_> = (0..1u32 << bits).map(|b| state.top.bucket(b)).collect();
        let ws = writes_from(&more);
        let mut expected = state.clone();
        expected.commit(&ws);
        let mut top = state.top.clone();
        let Ok((_, journal)) = top.apply_journaled(&MemSource(&state.entries), &ws);
        prop_assert_eq!(top.root(), expected.root());
        top.rollback(journal);
        prop_assert_eq!(top.root(), before_root);
        let after: Vec<_> = (0..1u32 << bits).map(|b| top.bucket(b)).collect();
        prop_assert_eq!(after, before);
        let Ok(_) = top.apply(&MemSource(&state.entries), &ws);
        prop_assert_eq!(top.root(), expected.root());
    }

    #[test]
    fn every_key_proves_membership_or_absence(
        ops in prop::collection::vec((0u16..300, prop::option::of(any::<u8>())), 0..120),
        bits in 0u8..9,
    ) {
        let mut s = MemState::new(bits);
        let root = s.commit(&writes_from(&ops));
        for k in 0u16..320 {
            let kh = key_hash(&k.to_be_bytes());
            let p = s.prove(&kh);
            let decoded = Proof::from_bytes(&p.to_bytes()).unwrap();
            prop_assert_eq!(&decoded, &p);
            match s.get(&kh) {
                Some(v) => {
                    p.verify(&root, &kh, Some(&value_hash(v))).unwrap();
                    prop_assert!(p.verify(&root, &kh, None).is_err());
                }
                None => {
                    p.verify(&root, &kh, None).unwrap();
                    prop_assert!(p.verify(&root, &kh, Some(&value_hash(b"v"))).is_err());
                }
            }
        }
    }

    #[test]
    fn proof_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Proof::from_bytes(&bytes);
    }
}
