//! Content rules for text, language tags, profiles and handles.

use crate::TxError;
use unicode_segmentation::UnicodeSegmentation;

/// Rule S1: a post is at most 300 grapheme clusters.
pub const MAX_POST_GRAPHEMES: usize = 300;
pub const MAX_DISPLAY_NAME_GRAPHEMES: usize = 50;
pub const MAX_BIO_GRAPHEMES: usize = 160;

pub fn graphemes(s: &str) -> usize {
    if s.is_ascii() {
        // In ASCII every character is its own cluster except CR LF, which is one (UAX #29 GB3).
        return s.len() - s.matches("\r\n").count();
    }
    s.graphemes(true).count()
}

pub fn post_text(text: &str, allow_empty: bool) -> Result<(), TxError> {
    if text.trim().is_empty() && !allow_empty {
        return Err(TxError::EmptyText);
    }
    let n = graphemes(text);
    if n > MAX_POST_GRAPHEMES {
        return Err(TxError::TextTooLong {
            graphemes: n,
            max: MAX_POST_GRAPHEMES,
        });
    }
    Ok(())
}

/// BCP-47-like: 2 to 16 ASCII letters, digits or `-`, starting with a letter.
pub fn langs(langs: &[String]) -> Result<(), TxError> {
    for l in langs {
        let ok = (2..=16).contains(&l.len())
            && l.starts_with(|c: char| c.is_ascii_alphabetic())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(TxError::InvalidLang);
        }
    }
    Ok(())
}

pub fn profile(display_name: &str, bio: &str, avatar_url: &str) -> Result<(), TxError> {
    if graphemes(display_name) > MAX_DISPLAY_NAME_GRAPHEMES {
        return Err(TxError::InvalidProfile(
            "display name longer than 50 graphemes",
        ));
    }
    if display_name.chars().any(char::is_control) {
        return Err(TxError::InvalidProfile(
            "control characters in display name",
        ));
    }
    if graphemes(bio) > MAX_BIO_GRAPHEMES {
        return Err(TxError::InvalidProfile("bio longer than 160 graphemes"));
    }
    if !avatar_url.is_empty()
        && (!avatar_url.starts_with("https://")
            || avatar_url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(TxError::InvalidProfile("avatar must be an https:// URL"));
    }
    Ok(())
}

/// Rule S2: handles are 3 to 30 of `[a-z0-9_]`, starting with a letter, compared without case.
/// Returns the normalized (lowercase) handle.
pub fn handle(raw: &str) -> Result<String, TxError> {
    if !raw.is_ascii() {
        return Err(TxError::InvalidHandle("only ASCII letters, digits and _"));
    }
    let h = raw.to_ascii_lowercase();
    if !(3..=30).contains(&h.len()) {
        return Err(TxError::InvalidHandle("must be 3 to 30 characters"));
    }
    if !h.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(TxError::InvalidHandle("must start with a letter"));
    }
    if !h
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(TxError::InvalidHandle("only ASCII letters, digits and _"));
    }
    Ok(h)
}

/// Rule V1: a validator registers an Ed25519 consensus key that is a valid point not of small
/// order, proven by the key's own signature over
/// [`starling_types::tx::validator_pop_message`] (this chain, this account, this key), and a
/// `host:port` address of printable ASCII (at most [`starling_types::tx::MAX_ADDRESS_BYTES`];
/// the decoder enforces it). So nobody can squat another's key.
pub fn validator(
    chain_id: &starling_types::ChainId,
    account: &starling_types::AccountId,
    consensus_key: &starling_types::PublicKey,
    address: &str,
    proof: &starling_types::Signature,
) -> Result<(), TxError> {
    if consensus_key.key_type != starling_types::KeyType::Ed25519 {
        return Err(TxError::InvalidValidator(
            "the consensus key must be Ed25519",
        ));
    }
    if starling_crypto::check_public_key(consensus_key).is_err() {
        return Err(TxError::InvalidValidator(
            "the consensus key is not a valid point of large order",
        ));
    }
    let message = starling_types::tx::validator_pop_message(chain_id, account, consensus_key);
    if starling_crypto::verify(consensus_key, message.as_bytes(), proof).is_err() {
        return Err(TxError::InvalidValidator(
            "the proof of possession is not the consensus key's signature",
        ));
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(TxError::InvalidValidator("the address must be host:port"));
    };
    if host.is_empty()
        || !address.chars().all(|c| c.is_ascii_graphic())
        || port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(TxError::InvalidValidator("the address must be host:port"));
    }
    Ok(())
}

/// Rule D1: a chat device names a home node and at most four relays, each a `host:port`
/// of printable ASCII; its signature key is a valid Ed25519 point; its id is below 2^31;
/// its seal key, if it has one, is an X25519 key of large order.
pub fn chat_device(device: &starling_types::ChatDevice) -> Result<(), TxError> {
    if device.id >= 1 << 31 {
        return Err(TxError::InvalidChatDevice("device ids are below 2^31"));
    }
    if device
        .seal_key
        .is_some_and(|k| starling_crypto::seal::check_seal_key(&k).is_err())
    {
        return Err(TxError::InvalidChatDevice(
            "seal key is not an X25519 key of large order",
        ));
    }
    let endpoints = device.home.iter().chain(device.relays.iter());
    for e in endpoints {
        let a = &e.address;
        let ok = !a.is_empty()
            && a.len() <= 100
            && a.bytes().all(|b| b.is_ascii_graphic())
            && a.rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0));
        if !ok {
            return Err(TxError::InvalidChatDevice("endpoint must be host:port"));
        }
        if e.node.key_type != starling_types::KeyType::Ed25519 {
            return Err(TxError::InvalidChatDevice("node keys are Ed25519"));
        }
    }
    if device.home.is_none() && device.relays.is_empty() {
        return Err(TxError::InvalidChatDevice(
            "a device needs a home node or a relay",
        ));
    }
    if starling_crypto::check_public_key(&starling_types::PublicKey::ed25519(device.signature_key))
        .is_err()
    {
        return Err(TxError::InvalidChatDevice(
            "signature key is not an Ed25519 point",
        ));
    }
    Ok(())
}
