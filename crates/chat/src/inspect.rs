//! Reading what a message or key package says of itself, without a group: for relays and
//! senders matching key packages against the key directory, and for receivers holding a
//! commit until its delivery relay confirms it.

use super::{decode, identity_of, ChatError};
use openmls::prelude::*;

/// What a message says of itself before it is opened (MLS shows it in the clear): its
/// group, its epoch, and whether it is a commit. `None` for a welcome or what does not
/// decode.
pub fn peek(bytes: &[u8]) -> Option<(Vec<u8>, u64, bool)> {
    let protocol = match decode(bytes).ok()?.extract() {
        MlsMessageBodyIn::PrivateMessage(m) => ProtocolMessage::from(m),
        MlsMessageBodyIn::PublicMessage(m) => ProtocolMessage::from(m),
        _ => return None,
    };
    Some((
        protocol.group_id().as_slice().to_vec(),
        protocol.epoch().as_u64(),
        protocol.content_type() == ContentType::Commit,
    ))
}

/// Checks a key package (its signature, suite and lifetime) and returns the identity and the
/// signature key it names, so a relay or a sender can match it against the key directory.
pub fn inspect_key_package(bytes: &[u8]) -> Result<(String, Vec<u8>), ChatError> {
    let kp = match decode(bytes)?.extract() {
        MlsMessageBodyIn::KeyPackage(kp) => kp,
        _ => return Err(ChatError::Malformed("not a key package".into())),
    };
    let crypto = openmls_rust_crypto::RustCrypto::default();
    let kp = kp
        .validate(&crypto, ProtocolVersion::Mls10)
        .map_err(|e| ChatError::Rejected(format!("key package: {e:?}")))?;
    let leaf = kp.leaf_node();
    Ok((
        identity_of(leaf.credential()),
        leaf.signature_key().as_slice().to_vec(),
    ))
}
