#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::collections::HashSet;
use std::sync::Mutex;

/// Members by identity and signature key.
type Members = HashSet<(String, Vec<u8>)>;
/// The key directory of these tests: every device made by [`device`].
static LISTED: Mutex<Option<Members>> = Mutex::new(None);

fn list(d: &Device) {
    LISTED
        .lock()
        .unwrap()
        .get_or_insert_with(HashSet::new)
        .insert((d.identity().to_string(), d.signature_key()));
}

fn listed(identity: &str, key: &[u8]) -> bool {
    LISTED
        .lock()
        .unwrap()
        .as_ref()
        .is_some_and(|l| l.contains(&(identity.to_string(), key.to_vec())))
}

fn device(name: &str) -> Device {
    let d = Device::new(&format!("ed25519:{name}"), 0).unwrap();
    list(&d);
    d
}

/// Alice starts a group and adds `others`; each joins from the welcome.
fn group_of(alice: &mut Device, others: &mut [&mut Device]) -> Vec<u8> {
    let id = alice.create_group().unwrap();
    let kps: Vec<Vec<u8>> = others
        .iter_mut()
        .map(|d| d.key_package().unwrap())
        .collect();
    let out = alice.add(&id, &kps).unwrap();
    assert_eq!(alice.confirm(&id).unwrap(), out.epoch);
    let welcome = out.welcome.unwrap();
    for d in others.iter_mut() {
        match d.receive(&welcome, &listed).unwrap() {
            Received::Joined {
                group,
                epoch,
                adder,
            } => {
                assert_eq!(group, id);
                assert_eq!(epoch, out.epoch);
                // The welcome names who signed it: the member who added this one.
                assert_eq!(adder.as_deref(), Some(alice.identity()));
            }
            other => panic!("{other:?}"),
        }
    }
    id
}

fn text_of(r: Received) -> (String, Vec<u8>) {
    match r {
        Received::Text { from, text, .. } => (from, text),
        other => panic!("not a text: {other:?}"),
    }
}

#[test]
fn two_people_chat_both_ways() {
    let (mut alice, mut bob) = (device("alice"), device("bob"));
    let id = group_of(&mut alice, &mut [&mut bob]);
    assert_eq!(
        alice.members(&id).unwrap(),
        ["ed25519:alice#0", "ed25519:bob#0"]
    );
    let m = alice.send(&id, b"hello bob").unwrap();
    assert!(
        !m.windows(9).any(|w| w == b"hello bob"),
        "plaintext on the wire"
    );
    assert_eq!(
        text_of(bob.receive(&m, &listed).unwrap()),
        ("ed25519:alice#0".into(), b"hello bob".to_vec())
    );
    for i in 0..20 {
        let m = bob.send(&id, format!("reply {i}").as_bytes()).unwrap();
        assert_eq!(
            text_of(alice.receive(&m, &listed).unwrap()).1,
            format!("reply {i}").into_bytes()
        );
    }
}

#[test]
fn a_removed_member_cannot_read_what_follows() {
    let (mut alice, mut bob, mut carol) = (device("alice"), device("bob"), device("carol"));
    let id = group_of(&mut alice, &mut [&mut bob, &mut carol]);
    let before = alice.send(&id, b"all three").unwrap();
    assert_eq!(
        text_of(carol.receive(&before, &listed).unwrap()).1,
        b"all three"
    );
    assert_eq!(
        text_of(bob.receive(&before, &listed).unwrap()).1,
        b"all three"
    );

    let out = alice.remove(&id, &["ed25519:carol#0"]).unwrap();
    alice.confirm(&id).unwrap();
    assert!(
        matches!(bob.receive(&out.commit, &listed).unwrap(), Received::Commit { epoch, from, .. } if epoch == out.epoch && from == alice.identity())
    );
    // Carol's device, even holding the old epoch's keys and ignoring the commit, cannot read
    // the next epoch's messages.
    let after = alice.send(&id, b"only two").unwrap();
    assert!(carol.receive(&after, &listed).is_err());
    assert_eq!(
        text_of(bob.receive(&after, &listed).unwrap()).1,
        b"only two"
    );
    // Once it takes the commit it knows it was removed, and forgets the group.
    assert_eq!(
        carol.receive(&out.commit, &listed).unwrap(),
        Received::Removed { group: id.clone() }
    );
    assert!(!carol.is_member(&id));
    assert!(matches!(
        carol.receive(&after, &listed),
        Err(ChatError::UnknownGroup(_))
    ));
    assert_eq!(alice.members(&id).unwrap().len(), 2);
}

#[test]
fn tampered_replayed_and_truncated_messages_are_rejected_without_harm() {
    let (mut alice, mut bob) = (device("alice"), device("bob"));
    let id = group_of(&mut alice, &mut [&mut bob]);
    let m = alice.send(&id, b"once").unwrap();
    // Every kind of damage is an error, never a panic.
    for i in [m.len() / 2, m.len() - 1, m.len() - 20] {
        let mut bad = m.clone();
        bad[i] ^= 0x40;
        assert!(bob.receive(&bad, &listed).is_err(), "flipped byte {i}");
    }
    for n in [0, 1, 5, m.len() / 2, m.len() - 1] {
        assert!(bob.receive(&m[..n], &listed).is_err(), "truncated to {n}");
    }
    let mut long = m.clone();
    long.push(0);
    assert!(matches!(
        bob.receive(&long, &listed),
        Err(ChatError::Malformed(_))
    ));
    assert_eq!(
        bob.receive(&vec![0u8; MAX_MESSAGE_BYTES + 1], &listed),
        Err(ChatError::TooLarge)
    );
    // The real message still decrypts, once; its replay is refused.
    assert_eq!(text_of(bob.receive(&m, &listed).unwrap()).1, b"once");
    assert!(bob.receive(&m, &listed).is_err(), "a replay is refused");
    // And the session goes on.
    let next = alice.send(&id, b"twice").unwrap();
    assert_eq!(text_of(bob.receive(&next, &listed).unwrap()).1, b"twice");
    assert_eq!(
        alice.send(&id, &vec![b'x'; MAX_TEXT_BYTES + 1]),
        Err(ChatError::TextTooLarge)
    );
}

#[test]
fn key_updates_move_every_member_to_the_next_epoch() {
    let (mut alice, mut bob) = (device("alice"), device("bob"));
    let id = group_of(&mut alice, &mut [&mut bob]);
    let e = alice.epoch(&id).unwrap();
    let late = alice.send(&id, b"sent just before the update").unwrap();
    let old = alice.send(&id, b"old epoch").unwrap();
    let out = bob.update(&id).unwrap();
    assert_eq!(out.epoch, e + 1);
    // Not applied until confirmed: the pending commit can still be dropped.
    assert_eq!(bob.epoch(&id).unwrap(), e);
    assert_eq!(bob.confirm(&id).unwrap(), e + 1);
    assert!(
        matches!(alice.receive(&out.commit, &listed).unwrap(), Received::Commit { epoch, .. } if epoch == e + 1)
    );
    // A text of the epoch just past still opens (it may cross the commit in flight)...
    assert_eq!(
        text_of(bob.receive(&late, &listed).unwrap()).1,
        b"sent just before the update"
    );
    // ...but once PAST_EPOCHS more epochs have gone by, that epoch's keys are gone.
    for _ in 0..PAST_EPOCHS {
        let out = bob.update(&id).unwrap();
        bob.confirm(&id).unwrap();
        alice.receive(&out.commit, &listed).unwrap();
    }
    assert!(bob.receive(&old, &listed).is_err());
    let m = alice.send(&id, b"after the update").unwrap();
    assert_eq!(
        text_of(bob.receive(&m, &listed).unwrap()).1,
        b"after the update"
    );
}

#[test]
fn concurrent_commits_one_wins_the_other_is_dropped_and_retried() {
    let (mut alice, mut bob) = (device("alice"), device("bob"));
    let id = group_of(&mut alice, &mut [&mut bob]);
    let e = alice.epoch(&id).unwrap();
    // Both derive the same ordering token for the epoch.
    assert_eq!(
        alice.epoch_token(&id).unwrap(),
        bob.epoch_token(&id).unwrap()
    );
    let a = alice.update(&id).unwrap();
    let b = bob.update(&id).unwrap();
    assert_eq!((a.epoch, b.epoch), (e + 1, e + 1));
    // The relay took Alice's: she confirms, Bob drops his and takes hers.
    alice.confirm(&id).unwrap();
    assert!(
        matches!(bob.receive(&a.commit, &listed).unwrap(), Received::Commit { epoch, .. } if epoch == e + 1)
    );
    assert!(bob.confirm(&id).is_err());
    // A losing commit offered anyway is refused by the winner.
    assert!(alice.receive(&b.commit, &listed).is_err());
    // Bob retries in the new epoch.
    let token = bob.epoch_token(&id).unwrap();
    assert_eq!(token, alice.epoch_token(&id).unwrap());
    let b2 = bob.update(&id).unwrap();
    bob.confirm(&id).unwrap();
    alice.receive(&b2.commit, &listed).unwrap();
    let m = bob.send(&id, b"no fork").unwrap();
    assert_eq!(text_of(alice.receive(&m, &listed).unwrap()).1, b"no fork");
    // Discarding is also possible without a competing commit.
    let _ = alice.update(&id).unwrap();
    alice.discard(&id).unwrap();
    assert_eq!(alice.epoch(&id).unwrap(), e + 2);
}

#[test]
fn a_message_ahead_of_its_commit_waits_for_it() {
    let (mut alice, mut bob, mut carol) = (device("alice"), device("bob"), device("carol"));
    let id = group_of(&mut alice, &mut [&mut bob, &mut carol]);
    let e = bob.epoch(&id).unwrap();
    let out = alice.update(&id).unwrap();
    alice.confirm(&id).unwrap();
    carol.receive(&out.commit, &listed).unwrap();
    // Carol writes in the new epoch; it reaches Bob before Alice's commit does.
    let early = carol.send(&id, b"from the next epoch").unwrap();
    assert_eq!(
        bob.receive(&early, &listed),
        Err(ChatError::FutureEpoch {
            message: e + 1,
            group: e
        })
    );
    // Nothing was spent: once the commit arrives, the same bytes open.
    bob.receive(&out.commit, &listed).unwrap();
    assert_eq!(
        text_of(bob.receive(&early, &listed).unwrap()).1,
        b"from the next epoch"
    );
}

#[test]
fn key_packages_are_inspected() {
    let mut bob = device("bob");
    let kp = bob.key_package().unwrap();
    let (identity, key) = inspect_key_package(&kp).unwrap();
    assert_eq!(identity, "ed25519:bob#0");
    assert_eq!(key, bob.signature_key());
    let mut bad = kp.clone();
    let n = bad.len();
    bad[n - 10] ^= 1;
    assert!(inspect_key_package(&bad).is_err());
    assert!(inspect_key_package(&kp[..kp.len() - 1]).is_err());
    assert!(inspect_key_package(b"garbage").is_err());
}

#[test]
fn a_group_of_twelve() {
    let mut alice = device("alice");
    let mut others: Vec<Device> = (0..11).map(|i| device(&format!("m{i}"))).collect();
    let mut refs: Vec<&mut Device> = others.iter_mut().collect();
    let id = group_of(&mut alice, &mut refs);
    assert_eq!(alice.members(&id).unwrap().len(), 12);
    let m = alice.send(&id, b"to everyone").unwrap();
    for d in &mut others {
        assert_eq!(text_of(d.receive(&m, &listed).unwrap()).1, b"to everyone");
    }
}

#[test]
fn bad_requests_are_clear_errors() {
    let mut alice = device("alice");
    assert!(matches!(
        alice.send(b"nope", b"x"),
        Err(ChatError::UnknownGroup(_))
    ));
    assert!(matches!(
        alice.receive(b"", &listed),
        Err(ChatError::Malformed(_))
    ));
    assert!(matches!(
        alice.receive(b"garbage bytes", &listed),
        Err(ChatError::Malformed(_))
    ));
    let id = alice.create_group().unwrap();
    assert!(matches!(
        alice.add(&id, &[b"not a key package".to_vec()]),
        Err(ChatError::Malformed(_))
    ));
    // A key package is not a message to receive, and a message is not a key package.
    let kp = device("bob").key_package().unwrap();
    assert!(matches!(
        alice.receive(&kp, &listed),
        Err(ChatError::Malformed(_))
    ));
    let m = alice.send(&id, b"x").unwrap();
    assert!(matches!(alice.add(&id, &[m]), Err(ChatError::Malformed(_))));
    assert!(matches!(
        alice.remove(&id, &["ed25519:nobody#0"]),
        Err(ChatError::NoSuchMember(_))
    ));
}

#[test]
fn a_device_restored_from_its_state_goes_on_chatting() {
    let (mut alice, mut bob) = (device("alice"), device("bob"));
    let id = group_of(&mut alice, &mut [&mut bob]);
    let m = alice.send(&id, b"before the restart").unwrap();
    assert_eq!(
        text_of(bob.receive(&m, &listed).unwrap()).1,
        b"before the restart"
    );
    let state = bob.export_state();
    drop(bob);
    // Alice sends while Bob's node is down.
    let queued: Vec<Vec<u8>> = (0..3)
        .map(|i| alice.send(&id, format!("queued {i}").as_bytes()).unwrap())
        .collect();
    let mut bob = Device::restore(&state).unwrap();
    assert_eq!(bob.identity(), "ed25519:bob#0");
    assert_eq!(bob.epoch(&id).unwrap(), alice.epoch(&id).unwrap());
    for (i, m) in queued.iter().enumerate() {
        assert_eq!(
            text_of(bob.receive(m, &listed).unwrap()).1,
            format!("queued {i}").into_bytes()
        );
    }
    let back = bob.send(&id, b"back again").unwrap();
    assert_eq!(
        text_of(alice.receive(&back, &listed).unwrap()).1,
        b"back again"
    );
    // Damaged states are errors, never panics.
    assert!(Device::restore(&[]).is_err());
    assert!(Device::restore(&[9]).is_err());
    for n in [1, 10, state.len() / 2, state.len() - 1] {
        assert!(Device::restore(&state[..n]).is_err(), "truncated to {n}");
    }
    let mut long = state.clone();
    long.push(0);
    assert!(Device::restore(&long).is_err());
    let mut huge_count = state.clone();
    // The group count sits after the version, identity and signing key.
    let at = 1 + 4 + "ed25519:bob#0".len() + 4 + bob.signature_key().len();
    huge_count[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(Device::restore(&huge_count).is_err());
}

#[test]
fn a_pending_commit_survives_a_restore_and_can_be_confirmed_or_dropped() {
    let (mut alice, mut bob, mut carol) = (device("alice"), device("bob"), device("carol"));
    let id = group_of(&mut alice, &mut [&mut bob]);
    let kp = carol.key_package().unwrap();
    let out = alice.add(&id, &[kp]).unwrap();
    assert!(alice.has_pending(&id));
    // A crash after the commit was offered: the state on disk holds it.
    let mut alice = Device::restore(&alice.export_state()).unwrap();
    assert!(alice.has_pending(&id));
    assert_eq!(alice.confirm(&id).unwrap(), out.epoch);
    assert!(!alice.has_pending(&id));
    assert!(matches!(
        bob.receive(&out.commit, &listed).unwrap(),
        Received::Commit { .. }
    ));
    assert!(matches!(
        carol.receive(&out.welcome.unwrap(), &listed).unwrap(),
        Received::Joined { .. }
    ));
    let m = alice.send(&id, b"all three").unwrap();
    assert_eq!(text_of(bob.receive(&m, &listed).unwrap()).1, b"all three");
    assert_eq!(text_of(carol.receive(&m, &listed).unwrap()).1, b"all three");
    // Or it lost, and is dropped after the restore.
    alice.update(&id).unwrap();
    let mut alice = Device::restore(&alice.export_state()).unwrap();
    let won = bob.update(&id).unwrap();
    bob.confirm(&id).unwrap();
    alice.discard(&id).unwrap();
    assert!(!alice.has_pending(&id));
    alice.receive(&won.commit, &listed).unwrap();
    assert_eq!(alice.epoch(&id).unwrap(), bob.epoch(&id).unwrap());
}

#[test]
fn a_forged_commit_header_does_not_drop_a_pending_commit() {
    let (mut alice, mut bob) = (device("alice"), device("bob"));
    let id = group_of(&mut alice, &mut [&mut bob]);
    let out = alice.update(&id).unwrap();
    // Anyone who knows the group id and epoch (a relay that carried its mail, an old member)
    // can label junk as a commit: MLS puts the content type in the clear.
    let mut forged = bob.update(&id).unwrap().commit;
    bob.discard(&id).unwrap();
    let n = forged.len();
    forged[n - 40] ^= 1;
    assert!(alice.receive(&forged, &listed).is_err());
    assert!(alice.has_pending(&id), "the pending commit survives junk");
    assert_eq!(alice.confirm(&id).unwrap(), out.epoch);
    assert!(matches!(
        bob.receive(&out.commit, &listed).unwrap(),
        Received::Commit { .. }
    ));
    let m = alice.send(&id, b"still one group").unwrap();
    assert_eq!(
        text_of(bob.receive(&m, &listed).unwrap()).1,
        b"still one group"
    );
}

#[test]
fn a_message_shows_its_group_epoch_and_kind_before_it_is_opened() {
    let (mut alice, mut bob) = (device("alice"), device("bob"));
    let id = group_of(&mut alice, &mut [&mut bob]);
    let epoch = alice.epoch(&id).unwrap();
    let text = alice.send(&id, b"hi").unwrap();
    assert_eq!(peek(&text), Some((id.clone(), epoch, false)));
    let out = alice.update(&id).unwrap();
    assert_eq!(peek(&out.commit), Some((id.clone(), epoch, true)));
    assert_eq!(peek(b"junk"), None);
    let kp = device("carol").key_package().unwrap();
    alice.discard(&id).unwrap();
    let welcome = alice.add(&id, &[kp]).unwrap().welcome.unwrap();
    assert_eq!(peek(&welcome), None);
}

#[test]
fn texts_go_out_while_a_commit_waits_to_be_ordered() {
    let (mut alice, mut bob) = (device("alice"), device("bob"));
    let id = group_of(&mut alice, &mut [&mut bob]);
    alice.update(&id).unwrap();
    let m = alice.send(&id, b"meanwhile").unwrap();
    assert_eq!(text_of(bob.receive(&m, &listed).unwrap()).1, b"meanwhile");
}

#[test]
fn safety_numbers_agree_on_both_sides_and_change_with_keys() {
    let (alice, bob, eve) = (device("alice"), device("bob"), device("eve"));
    let a = vec![alice.signature_key()];
    let b = vec![bob.signature_key()];
    let n1 = safety_number(("ed25519:alice", &a), ("ed25519:bob", &b));
    let n2 = safety_number(("ed25519:bob", &b), ("ed25519:alice", &a));
    assert_eq!(n1, n2, "the same on both sides");
    let groups: Vec<&str> = n1.split(' ').collect();
    assert_eq!(groups.len(), 12);
    assert!(groups
        .iter()
        .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_digit())));
    // A key swapped in (someone in the middle) changes it.
    let e = vec![eve.signature_key()];
    assert_ne!(
        n1,
        safety_number(("ed25519:alice", &a), ("ed25519:bob", &e))
    );
    // A new device changes it; the order devices are listed in does not.
    let b2 = vec![bob.signature_key(), eve.signature_key()];
    let b2r = vec![eve.signature_key(), bob.signature_key()];
    let with_device = safety_number(("ed25519:alice", &a), ("ed25519:bob", &b2));
    assert_ne!(n1, with_device);
    assert_eq!(
        with_device,
        safety_number(("ed25519:alice", &a), ("ed25519:bob", &b2r))
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 500, ..Default::default() })]

    /// Arbitrary bytes, and a real message with arbitrary bytes spliced in, are errors, never
    /// panics, and the group reads on afterwards.
    #[test]
    fn receiving_anything_never_panics(
        junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1_024),
        at in 0usize..400,
    ) {
        let (mut alice, mut bob) = (device("alice"), device("bob"));
        let id = group_of(&mut alice, &mut [&mut bob]);
        let _ = bob.receive(&junk, &listed);
        let mut m = alice.send(&id, b"spliced").unwrap();
        let at = at.min(m.len());
        m.splice(at..at, junk.iter().copied());
        if !junk.is_empty() {
            proptest::prop_assert!(bob.receive(&m, &listed).is_err());
        }
        let _ = inspect_key_package(&junk);
        let _ = Device::restore(&junk);
        let ok = alice.send(&id, b"after").unwrap();
        proptest::prop_assert_eq!(text_of(bob.receive(&ok, &listed).unwrap()).1, b"after".to_vec());
    }
}

#[test]
fn a_welcome_from_someone_posing_as_another_account_is_refused() {
    let mut bob = device("bob-posed");
    let _alice = device("alice-posed");
    // Mallory makes a device with Alice's identity and her own signature key, takes one of
    // Bob's key packages and adds him.
    let mut mallory = Device::new("ed25519:alice-posed", 0).unwrap();
    let id = mallory.create_group().unwrap();
    let out = mallory.add(&id, &[bob.key_package().unwrap()]).unwrap();
    mallory.confirm(&id).unwrap();
    assert_eq!(
        bob.receive(&out.welcome.unwrap(), &listed),
        Err(ChatError::Impostor {
            group: id.clone(),
            identity: "ed25519:alice-posed#0".into()
        })
    );
    assert!(!bob.is_member(&id), "Bob did not join");
    // Her texts reach nobody: Bob has no such group.
    let m = mallory.send(&id, b"hi, it's alice").unwrap();
    assert!(matches!(
        bob.receive(&m, &listed),
        Err(ChatError::UnknownGroup(_))
    ));
}

#[test]
fn a_member_cannot_add_a_fake_device_of_someone_else() {
    let mut alice = device("alice-fake");
    let mut bob = device("bob-fake");
    let _carol = device("carol-fake");
    let id = group_of(&mut alice, &mut [&mut bob]);
    // Alice, a member, adds a device she made under Carol's name.
    let mut fake = Device::new("ed25519:carol-fake", 0).unwrap();
    let out = alice.add(&id, &[fake.key_package().unwrap()]).unwrap();
    alice.confirm(&id).unwrap();
    let before = bob.epoch(&id).unwrap();
    assert_eq!(
        bob.receive(&out.commit, &listed),
        Err(ChatError::Impostor {
            group: id.clone(),
            identity: "ed25519:carol-fake#0".into()
        })
    );
    assert_eq!(
        bob.epoch(&id).unwrap(),
        before,
        "the commit was not applied"
    );
    assert_eq!(bob.members(&id).unwrap().len(), 2);
    // And the fake device, welcomed, sees Bob (listed) and Alice (listed): it joins, but
    // nobody honest went along, so it reads nothing Bob sends.
    let _ = fake.receive(&out.welcome.unwrap(), &listed);
    let m = bob.send(&id, b"only for the real members").unwrap();
    assert!(fake.receive(&m, &listed).is_err());
}

#[test]
fn texts_from_a_device_the_directory_no_longer_lists_are_refused() {
    let mut alice = device("alice-revoked");
    let mut bob = device("bob-revoked");
    let id = group_of(&mut alice, &mut [&mut bob]);
    let m = alice.send(&id, b"still me").unwrap();
    // The directory drops Alice's device (say she replaced a stolen phone).
    let alice_key = alice.signature_key();
    let without_alice = |identity: &str, key: &[u8]| listed(identity, key) && key != alice_key;
    assert_eq!(
        bob.receive(&m, &without_alice),
        Err(ChatError::Impostor {
            group: id.clone(),
            identity: alice.identity().to_string()
        })
    );
}

#[test]
fn a_drained_device_keeps_a_bounded_state_that_always_restores() {
    let mut alice = device("alice-drained");
    let mut bob = device("bob-drained");
    // Strangers take Bob's key packages as fast as he makes them (each a private half he
    // keeps until a welcome uses it).
    let mut made = Vec::new();
    for _ in 0..MAX_KEY_PACKAGES_KEPT + 300 {
        made.push(bob.key_package().unwrap());
    }
    assert_eq!(bob.key_packages_kept(), MAX_KEY_PACKAGES_KEPT);
    let size = bob.export_state().len();
    let per_package = size / MAX_KEY_PACKAGES_KEPT;
    // More packages made does not grow the state.
    for _ in 0..100 {
        made.push(bob.key_package().unwrap());
    }
    assert!(bob.export_state().len() <= size + per_package, "bounded");
    let mut bob = Device::restore(&bob.export_state()).unwrap();
    assert_eq!(bob.key_packages_kept(), MAX_KEY_PACKAGES_KEPT);
    // A recent package still lets Alice add him; one of the oldest no longer does.
    let id = alice.create_group().unwrap();
    let out = alice.add(&id, &[made[0].clone()]).unwrap();
    alice.confirm(&id).unwrap();
    assert!(bob.receive(&out.welcome.unwrap(), &listed).is_err());
    let id = alice.create_group().unwrap();
    let out = alice.add(&id, &[made.last().unwrap().clone()]).unwrap();
    alice.confirm(&id).unwrap();
    assert!(matches!(
        bob.receive(&out.welcome.unwrap(), &listed),
        Ok(Received::Joined { .. })
    ));
}
