//! Deposits sealed for their mailbox.
//!
//! A group message is encrypted once for the group; deposited as it is, the same bytes would
//! land in every member device's mailbox, and a relay holding several of them would see who
//! is in a group with whom. So each deposit is sealed to the recipient device's seal key (an
//! X25519 key the key directory lists beside its mailbox id, derived from the mailbox seed):
//! no two mailboxes receive the same bytes, and only the device opens what is in its own.
//! A device listed without a seal key (published before there were any) gets the envelope as
//! it is, and so does one whose sealed envelope would pass the size a deposit may have.

use super::*;
use starling_crypto::seal::{self, SealSecret};
use std::borrow::Cow;

/// What a sealed deposit starts with (an MLS message starts with its version, 0x0001, and a
/// history envelope with its own tag).
const SEALED_MAGIC: &[u8; 8] = b"SLSEAL01";

const SEAL_KEY_CONTEXT: &str = "starling chat deposit seal key v1";

/// The device's seal key, from its mailbox seed.
pub(crate) fn seal_secret(meta_seed_hex: &str) -> Option<SealSecret> {
    let seed = hex::decode(meta_seed_hex).ok()?;
    Some(SealSecret::derive(SEAL_KEY_CONTEXT, &seed))
}

/// `envelopes` as they go into `device`'s mailbox (sealed under one fresh key: one key
/// agreement for the batch).
pub(crate) fn seal_for(device: &ChatDevice, envelopes: &[Vec<u8>]) -> Vec<Vec<u8>> {
    // (The ledger lists only keys that can be sealed to.)
    let Some(sealer) = device
        .seal_key
        .and_then(|k| seal::Sealer::to(&k, &mut OsRng).ok())
    else {
        return envelopes.to_vec();
    };
    envelopes
        .iter()
        .map(|e| {
            if SEALED_MAGIC.len() + seal::SEAL_OVERHEAD + e.len() > chatnet::MAX_ENVELOPE_BYTES {
                return e.clone();
            }
            let mut out = SEALED_MAGIC.to_vec();
            out.extend_from_slice(&sealer.seal(e, &mut OsRng));
            out
        })
        .collect()
}

/// What a device took from its mailbox, opened if it was sealed (`keys` remembers the last
/// few sealers'); `None` if it was sealed and does not open with this device's key
/// (damaged, or not for it).
pub(crate) fn opened<'a>(
    secret: Option<&SealSecret>,
    keys: &mut seal::BoxKeys,
    bytes: &'a [u8],
) -> Option<Cow<'a, [u8]>> {
    match bytes.strip_prefix(SEALED_MAGIC.as_slice()) {
        None => Some(Cow::Borrowed(bytes)),
        Some(sealed) => seal::open(secret?, sealed, keys).ok().map(Cow::Owned),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn device(seed: &str) -> ChatDevice {
        ChatDevice {
            id: 1,
            signature_key: [1; 32],
            mailbox: Hash([1; 32]),
            seal_key: seal_secret(seed).map(|s| s.public()),
            home: None,
            relays: Vec::new(),
        }
    }

    #[test]
    fn each_mailbox_gets_its_own_bytes_and_only_its_device_opens_them() {
        let (bob, carol) = ("0b".repeat(32), "0c".repeat(32));
        let envelope = b"\x00\x01 one MLS message for the group".to_vec();
        let one = std::slice::from_ref(&envelope);
        let for_bob = seal_for(&device(&bob), one).remove(0);
        let for_carol = seal_for(&device(&carol), one).remove(0);
        assert!(for_bob.starts_with(SEALED_MAGIC) && for_carol.starts_with(SEALED_MAGIC));
        assert_ne!(for_bob[8..40], for_carol[8..40]);
        assert!(!contains(&for_bob, &envelope[..8]) && !contains(&for_carol, &envelope[..8]));
        let (b, c) = (seal_secret(&bob).unwrap(), seal_secret(&carol).unwrap());
        let mut keys = seal::BoxKeys::default();
        assert_eq!(
            opened(Some(&b), &mut keys, &for_bob).unwrap().as_ref(),
            envelope
        );
        assert_eq!(
            opened(Some(&c), &mut keys, &for_carol).unwrap().as_ref(),
            envelope
        );
        // Not for this device, damaged, or sealed with no key to open it: refused.
        assert!(opened(Some(&c), &mut keys, &for_bob).is_none());
        let mut bad = for_bob.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(opened(Some(&b), &mut keys, &bad).is_none());
        assert!(opened(None, &mut keys, &for_bob).is_none());
        // Unsealed mail (from a device that does not seal yet) is taken as it is.
        assert_eq!(
            opened(Some(&b), &mut keys, &envelope).unwrap().as_ref(),
            envelope
        );
    }

    #[test]
    fn devices_without_a_seal_key_and_envelopes_at_the_size_limit_go_unsealed() {
        let mut plain = device(&"0b".repeat(32));
        plain.seal_key = None;
        let small = vec![b"abc".to_vec()];
        assert_eq!(seal_for(&plain, &small), small);
        let big = vec![vec![0u8; chatnet::MAX_ENVELOPE_BYTES - 10], b"abc".to_vec()];
        let sealed = seal_for(&device(&"0b".repeat(32)), &big);
        assert_eq!(sealed[0], big[0]);
        assert!(sealed[1].starts_with(SEALED_MAGIC));
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }
}
