//! The chat key directory (rule D1): devices published, replaced and withdrawn by their
//! account, bounded, and checked before they are stored.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use starling_ledger::records::{ChatKeysRecord, StateKey};
use starling_ledger::TxError;
use starling_types::{Action, ChatDevice, Encode as _, Endpoint, Hash, PublicKey};

fn signature_key(seed: u8) -> [u8; 32] {
    key(u64::from(seed) + 1_000).public_key().bytes
}

fn device(id: u32, seed: u8) -> ChatDevice {
    ChatDevice {
        id,
        signature_key: signature_key(seed),
        mailbox: Hash::of(&[&[seed]]),
        // Odd seeds have a seal key, even ones (as devices published before seal keys) none.
        seal_key: (seed % 2 == 1)
            .then(|| starling_crypto::seal::SealSecret::derive("test", &[seed]).public()),
        home: Some(Endpoint {
            node: key(77).public_key(),
            address: "127.0.0.1:7100".into(),
        }),
        relays: vec![Endpoint {
            node: key(78).public_key(),
            address: "relay.example:7100".into(),
        }],
    }
}

#[test]
fn devices_are_published_replaced_and_withdrawn() {
    let alice = key(1);
    let mut net = Net::new(2, &[&alice]);
    let shard = net.shard_of(&alice);
    let me = alice.public_key();
    assert_eq!(
        net.get::<ChatKeysRecord>(shard, StateKey::ChatKeys(&me)),
        None
    );
    net.run(
        &alice,
        0,
        Action::SetChatDevice {
            device: device(2, 1),
        },
    )
    .unwrap();
    net.run(
        &alice,
        1,
        Action::SetChatDevice {
            device: device(1, 2),
        },
    )
    .unwrap();
    let rec: ChatKeysRecord = net.get(shard, StateKey::ChatKeys(&me)).unwrap();
    assert_eq!(rec.version, 2);
    // Kept in id order.
    assert_eq!(
        rec.devices.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    // Publishing the same id again replaces it.
    net.run(
        &alice,
        2,
        Action::SetChatDevice {
            device: device(2, 3),
        },
    )
    .unwrap();
    let rec: ChatKeysRecord = net.get(shard, StateKey::ChatKeys(&me)).unwrap();
    assert_eq!(rec.devices.len(), 2);
    assert_eq!(rec.devices[1], device(2, 3));
    assert_eq!(rec.version, 3);
    net.run(&alice, 3, Action::RemoveChatDevice { id: 1 })
        .unwrap();
    let rec: ChatKeysRecord = net.get(shard, StateKey::ChatKeys(&me)).unwrap();
    assert_eq!(rec.devices, vec![device(2, 3)]);
    assert_eq!(rec.version, 4);
    assert_eq!(
        net.run(&alice, 4, Action::RemoveChatDevice { id: 1 }),
        Err(TxError::NoChatDevice)
    );
}

#[test]
fn at_most_eight_devices() {
    let bob = key(2);
    let mut net = Net::new(2, &[&bob]);
    for i in 0..8u32 {
        net.run(
            &bob,
            u64::from(i),
            Action::SetChatDevice {
                device: device(i, i as u8),
            },
        )
        .unwrap();
    }
    assert_eq!(
        net.run(
            &bob,
            8,
            Action::SetChatDevice {
                device: device(9, 9)
            }
        ),
        Err(TxError::InvalidChatDevice("at most 8 devices"))
    );
    // Replacing one of the eight is still fine.
    net.run(
        &bob,
        8,
        Action::SetChatDevice {
            device: device(3, 30),
        },
    )
    .unwrap();
}

#[test]
fn bad_devices_are_refused() {
    let carol = key(3);
    let mut net = Net::new(2, &[&carol]);
    // A refused transaction does not take its nonce.
    let refuse = |net: &mut Net, d: ChatDevice, why: &'static str| {
        assert_eq!(
            net.run(&carol, 0, Action::SetChatDevice { device: d }),
            Err(TxError::InvalidChatDevice(why))
        );
    };
    for address in [
        "",
        "no-port",
        ":7100",
        "host:0",
        "host:99999",
        "a b:1",
        "host:x",
    ] {
        let mut d = device(1, 1);
        d.relays[0].address = address.into();
        refuse(&mut net, d, "endpoint must be host:port");
    }
    let mut d = device(1, 1);
    d.home.as_mut().unwrap().address = "x".repeat(101) + ":1";
    refuse(&mut net, d, "endpoint must be host:port");
    let mut d = device(1, 1);
    d.home = None;
    d.relays.clear();
    refuse(&mut net, d, "a device needs a home node or a relay");
    let mut d = device(1, 1);
    d.relays[0].node = PublicKey {
        key_type: starling_types::KeyType::Secp256k1,
        bytes: [2; 32],
    };
    refuse(&mut net, d, "node keys are Ed25519");
    // A small-order point cannot sign anything.
    let mut d = device(1, 1);
    d.signature_key = [0; 32];
    d.signature_key[0] = 1;
    refuse(&mut net, d, "signature key is not an Ed25519 point");
    // Every box sealed to a small-order key could be opened by anyone.
    let mut order4 = [0u8; 32];
    order4[0] = 1;
    for k in [[0u8; 32], order4] {
        let mut d = device(1, 1);
        d.seal_key = Some(k);
        refuse(&mut net, d, "seal key is not an X25519 key of large order");
    }
    // Ids are below 2^31 (the top bit of an encoded id says a seal key follows).
    let mut d = device(1, 1);
    d.id = 1 << 31;
    assert_eq!(
        starling_ledger::validate::chat_device(&d),
        Err(TxError::InvalidChatDevice("device ids are below 2^31"))
    );
    let shard = net.shard_of(&carol);
    assert_eq!(
        net.get::<ChatKeysRecord>(shard, StateKey::ChatKeys(&carol.public_key())),
        None
    );
}

#[test]
fn device_encoding_round_trips_and_is_bounded() {
    use starling_types::Decode as _;
    let d = device(7, 7);
    let bytes = Action::SetChatDevice { device: d.clone() }.to_bytes();
    assert_eq!(
        Action::from_bytes(&bytes).unwrap(),
        Action::SetChatDevice { device: d }
    );
    for cut in 0..bytes.len() {
        assert!(Action::from_bytes(&bytes[..cut]).is_err());
    }
    // Five relays: over the bound, refused while decoding.
    let mut many = device(7, 7);
    many.relays = vec![many.relays[0].clone(); 5];
    let bytes = Action::SetChatDevice { device: many }.to_bytes();
    assert!(Action::from_bytes(&bytes).is_err());
}
