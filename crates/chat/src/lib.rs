//! End-to-end encrypted chat for Starling: MLS (RFC 9420) groups through `openmls`.
//!
//! Every device of an account is one MLS member ([`Device`]), named by a credential that
//! carries the account key and a device number (`<account>#<device>`). A 1:1 chat is a group
//! of two accounts' devices. Everything a device sends is an opaque byte string (a
//! TLS-encoded MLS message) that relays store and forward without being able to read it:
//! application messages are encrypted under the group's current epoch, commits move the group
//! to the next epoch (forward secrecy and post-compromise security as MLS gives them), and a
//! removed member holds no key of the epochs after its removal.
//!
//! Incoming bytes are bounded ([`MAX_MESSAGE_BYTES`]) and decoded before anything else; a
//! damaged, replayed or truncated message is an error and leaves the group's state as it was.
//!
//! A credential is only a name its holder chose, so every member a device learns of is
//! checked against a [`Directory`] (the node's is the ledger's key directory, read with a
//! proof): each member of a group it is welcomed into, each member a commit adds or updates
//! and the committer, and each text's sender. A mismatch is [`ChatError::Impostor`] and
//! changes nothing.
//!
//! This module is the cryptographic core only: the key directory on the ledger, delivery and
//! mailboxes live in the node.

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

mod inspect;
pub use inspect::{inspect_key_package, peek};
use std::collections::HashMap;

/// Every message, commits included, is encrypted (no sender or proposal visible to a relay),
/// and padded to a multiple of this many bytes so lengths say little about texts.
const PADDING: usize = 64;
/// Past epochs whose keys a member keeps, so a text sent just before a commit that reaches a
/// member just after it still opens. Older epochs' keys are gone (forward secrecy).
pub const PAST_EPOCHS: usize = 2;

/// X25519 key exchange, AES-128-GCM, SHA-256 and Ed25519 signatures: MLS's mandatory suite.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
/// Largest message a device accepts (a welcome for a 50-member group fits comfortably).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Largest text a device sends in one message.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Most members in one group.
pub const MAX_MEMBERS: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChatError {
    #[error("message over {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("text over {MAX_TEXT_BYTES} bytes")]
    TextTooLarge,
    #[error("not an MLS message: {0}")]
    Malformed(String),
    #[error("not a member of group {0}")]
    UnknownGroup(String),
    #[error("the message was rejected: {0}")]
    Rejected(String),
    /// For an epoch the group has not reached here yet: its commit is still on the way.
    #[error("the message is for epoch {message}, the group is at {group}")]
    FutureEpoch { message: u64, group: u64 },
    #[error("no member {0} in the group")]
    NoSuchMember(String),
    #[error("a group holds at most {MAX_MEMBERS} members")]
    GroupFull,
    #[error("MLS: {0}")]
    Mls(String),
    /// A member whose credential and signature key the directory does not list together.
    #[error("{identity} is not who the key directory says (its signature key differs)")]
    Impostor {
        /// The group it claims to be in (for a welcome, the group it would have joined).
        group: Vec<u8>,
        identity: String,
    },
}

/// Who the members of a chat really are: whether `identity` (`<account>#<device>`) has the
/// signature key `signature_key`.
pub trait Directory {
    fn lists(&self, identity: &str, signature_key: &[u8]) -> bool;
}

impl<F: Fn(&str, &[u8]) -> bool> Directory for F {
    fn lists(&self, identity: &str, signature_key: &[u8]) -> bool {
        self(identity, signature_key)
    }
}

/// Checks one member against `directory`.
fn vouched(
    directory: &dyn Directory,
    group: &[u8],
    credential: &Credential,
    signature_key: &[u8],
) -> Result<(), ChatError> {
    let identity = identity_of(credential);
    if identity.is_empty() || !directory.lists(&identity, signature_key) {
        return Err(ChatError::Impostor {
            group: group.to_vec(),
            identity,
        });
    }
    Ok(())
}

fn mls<E: std::fmt::Debug>(e: E) -> ChatError {
    ChatError::Mls(format!("{e:?}"))
}

/// What a device learned from an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A text from a member (its credential identity).
    Text {
        group: Vec<u8>,
        from: String,
        text: Vec<u8>,
    },
    /// A commit by member `from` (its credential identity) moved the group to `epoch`
    /// (members may have changed).
    Commit {
        group: Vec<u8>,
        epoch: u64,
        from: String,
    },
    /// A commit removed this device from the group: it can read nothing more in it.
    Removed { group: Vec<u8> },
    /// A welcome made this device a member of `group`; `adder` (a credential identity)
    /// signed it, so it holds the epoch's secrets (`None` only if its leaf cannot be read).
    Joined {
        group: Vec<u8>,
        epoch: u64,
        adder: Option<String>,
    },
}

/// What a commit produces: the commit for the group's members, and a welcome for new ones.
#[derive(Debug, Clone)]
pub struct CommitOut {
    pub commit: Vec<u8>,
    pub welcome: Option<Vec<u8>>,
    pub epoch: u64,
}

/// One MLS member: a device of an account, with its groups.
pub struct Device {
    identity: String,
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    groups: HashMap<Vec<u8>, MlsGroup>,
    /// The key packages this device made whose private halves it still keeps, oldest
    /// first (hash references); past [`MAX_KEY_PACKAGES_KEPT`] the oldest are deleted.
    outstanding: std::collections::VecDeque<Vec<u8>>,
}

/// Key packages whose private halves a device keeps: handed out (or drained by strangers)
/// and never used, the oldest are deleted, so the device's state stays bounded and always
/// restores. A welcome that uses a deleted one fails; the adder takes another.
pub const MAX_KEY_PACKAGES_KEPT: usize = 512;

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("identity", &self.identity)
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

fn encode(m: &MlsMessageOut) -> Result<Vec<u8>, ChatError> {
    m.tls_serialize_detached().map_err(mls)
}

fn decode(bytes: &[u8]) -> Result<MlsMessageIn, ChatError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ChatError::TooLarge);
    }
    let mut rest = bytes;
    // `tls_codec` has debug assertions on what it reads (a length prefix of an encoding MLS
    // does not allow, say); release builds return the error instead. Either way it is an
    // error here, never a panic.
    let m = std::panic::catch_unwind(move || {
        let m = MlsMessageIn::tls_deserialize(&mut rest);
        (m, rest.len())
    })
    .map_err(|_| ChatError::Malformed("undecodable MLS message".into()))?;
    let (m, left) = m;
    let m = m.map_err(|e| ChatError::Malformed(format!("{e:?}")))?;
    let rest = &bytes[bytes.len() - left..];
    if !rest.is_empty() {
        return Err(ChatError::Malformed(format!(
            "{} bytes after the message",
            rest.len()
        )));
    }
    Ok(m)
}

fn identity_of(c: &Credential) -> String {
    BasicCredential::try_from(c.clone())
        .map(|b| String::from_utf8_lossy(b.identity()).into_owned())
        .unwrap_or_default()
}

impl Device {
    /// A new device of `account` (its key as text) numbered `device`, with a fresh signing key.
    pub fn new(account: &str, device: u32) -> Result<Device, ChatError> {
        let identity = format!("{account}#{device}");
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).map_err(mls)?;
        signer.store(provider.storage()).map_err(mls)?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(identity.clone().into_bytes()).into(),
            signature_key: signer.public().into(),
        };
        Ok(Device {
            identity,
            provider,
            signer,
            credential,
            groups: HashMap::new(),
            outstanding: std::collections::VecDeque::new(),
        })
    }

    /// `<account>#<device>`.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Signs `message` with the device's signature key (Ed25519), as the key directory lists
    /// it: how a device proves a request is its own.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64], ChatError> {
        let sig = openmls_traits::signatures::Signer::sign(&self.signer, message).map_err(mls)?;
        sig.try_into()
            .map_err(|_| ChatError::Mls("an Ed25519 signature is 64 bytes".into()))
    }

    /// The device's public signature key (what the key directory publishes).
    pub fn signature_key(&self) -> Vec<u8> {
        self.signer.public().to_vec()
    }

    /// A fresh key package (used once, by whoever adds this device to a group).
    pub fn key_package(&mut self) -> Result<Vec<u8>, ChatError> {
        let bundle = KeyPackage::builder()
            .build(
                CIPHERSUITE,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .map_err(mls)?;
        let hash_ref = bundle
            .key_package()
            .hash_ref(self.provider.crypto())
            .map_err(mls)?;
        self.outstanding
            .push_back(hash_ref.tls_serialize_detached().map_err(mls)?);
        while self.outstanding.len() > MAX_KEY_PACKAGES_KEPT {
            if let Some(old) = self.outstanding.pop_front() {
                let old = KeyPackageRef::tls_deserialize_exact(&old).map_err(mls)?;
                openmls_traits::storage::StorageProvider::delete_key_package(
                    self.provider.storage(),
                    &old,
                )
                .map_err(mls)?;
            }
        }
        let out = MlsMessageOut::from(bundle.key_package().clone());
        encode(&out)
    }

    /// Key packages whose private halves this device keeps.
    pub fn key_packages_kept(&self) -> usize {
        self.outstanding.len()
    }

    /// Starts a group with this device as its only member; returns its id.
    pub fn create_group(&mut self) -> Result<Vec<u8>, ChatError> {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .padding_size(PADDING)
            .max_past_epochs(PAST_EPOCHS)
            .build();
        let group = MlsGroup::new(
            &self.provider,
            &self.signer,
            &config,
            self.credential.clone(),
        )
        .map_err(mls)?;
        let id = group.group_id().as_slice().to_vec();
        self.groups.insert(id.clone(), group);
        Ok(id)
    }

    fn group(&mut self, id: &[u8]) -> Result<&mut MlsGroup, ChatError> {
        self.groups
            .get_mut(id)
            .ok_or_else(|| ChatError::UnknownGroup(hex_id(id)))
    }

    /// The group's current epoch.
    pub fn epoch(&self, id: &[u8]) -> Result<u64, ChatError> {
        self.groups
            .get(id)
            .map(|g| g.epoch().as_u64())
            .ok_or_else(|| ChatError::UnknownGroup(hex_id(id)))
    }

    /// The members' identities, in leaf order.
    pub fn members(&self, id: &[u8]) -> Result<Vec<String>, ChatError> {
        let g = self
            .groups
            .get(id)
            .ok_or_else(|| ChatError::UnknownGroup(hex_id(id)))?;
        Ok(g.members().map(|m| identity_of(&m.credential)).collect())
    }

    /// Adds the devices whose key packages are given; the commit goes to the current
    /// members, the welcome to the new ones. Applied here at once.
    pub fn add(&mut self, id: &[u8], key_packages: &[Vec<u8>]) -> Result<CommitOut, ChatError> {
        let mut kps = Vec::with_capacity(key_packages.len());
        for bytes in key_packages {
            let kp = match decode(bytes)?.extract() {
                MlsMessageBodyIn::KeyPackage(kp) => kp,
                _ => return Err(ChatError::Malformed("not a key package".into())),
            };
            let kp = kp
                .validate(self.provider.crypto(), ProtocolVersion::Mls10)
                .map_err(|e| ChatError::Rejected(format!("key package: {e:?}")))?;
            kps.push(kp);
        }
        let provider = &self.provider;
        let signer = &self.signer;
        let group = self
            .groups
            .get_mut(id)
            .ok_or_else(|| ChatError::UnknownGroup(hex_id(id)))?;
        if group.members().count() + kps.len() > MAX_MEMBERS {
            return Err(ChatError::GroupFull);
        }
        let (commit, welcome, _info) = group.add_members(provider, signer, &kps).map_err(mls)?;
        Ok(CommitOut {
            commit: encode(&commit)?,
            welcome: Some(encode(&welcome)?),
            epoch: group.epoch().as_u64() + 1,
        })
    }

    /// Removes the members with these identities. Applied here at once.
    pub fn remove(&mut self, id: &[u8], identities: &[&str]) -> Result<CommitOut, ChatError> {
        let provider = &self.provider;
        let signer = &self.signer;
        let group = self
            .groups
            .get_mut(id)
            .ok_or_else(|| ChatError::UnknownGroup(hex_id(id)))?;
        let mut leaves = Vec::new();
        for who in identities {
            let m = group
                .members()
                .find(|m| identity_of(&m.credential) == *who)
                .ok_or_else(|| ChatError::NoSuchMember((*who).to_owned()))?;
            leaves.push(m.index);
        }
        let (commit, welcome, _info) = group
            .remove_members(provider, signer, &leaves)
            .map_err(mls)?;
        Ok(CommitOut {
            commit: encode(&commit)?,
            welcome: welcome.map(|w| encode(&w)).transpose()?,
            epoch: group.epoch().as_u64() + 1,
        })
    }

    /// Refreshes this device's keys in the group (post-compromise security). Applied here.
    pub fn update(&mut self, id: &[u8]) -> Result<CommitOut, ChatError> {
        let provider = &self.provider;
        let signer = &self.signer;
        let group = self
            .groups
            .get_mut(id)
            .ok_or_else(|| ChatError::UnknownGroup(hex_id(id)))?;
        let bundle = group
            .self_update(provider, signer, LeafNodeParameters::default())
            .map_err(mls)?;
        let (commit, _, _) = bundle.into_contents();
        Ok(CommitOut {
            commit: encode(&commit)?,
            welcome: None,
            epoch: group.epoch().as_u64() + 1,
        })
    }

    /// Applies this device's pending commit (from [`Device::add`], [`Device::remove`] or
    /// [`Device::update`]) once the group's delivery relay ordered it; returns the new epoch.
    pub fn confirm(&mut self, id: &[u8]) -> Result<u64, ChatError> {
        let provider = &self.provider;
        let group = self
            .groups
            .get_mut(id)
            .ok_or_else(|| ChatError::UnknownGroup(hex_id(id)))?;
        if group.pending_commit().is_none() {
            return Err(ChatError::Rejected("no pending commit".into()));
        }
        group.merge_pending_commit(provider).map_err(mls)?;
        Ok(group.epoch().as_u64())
    }

    /// Whether this device has a commit of its own waiting to be ordered in `id` (it stays
    /// in the state, so a device restored after a crash can still confirm or drop it).
    pub fn has_pending(&self, id: &[u8]) -> bool {
        self.groups
            .get(id)
            .is_some_and(|g| g.pending_commit().is_some())
    }

    /// Drops this device's pending commit: another member's commit won the epoch.
    pub fn discard(&mut self, id: &[u8]) -> Result<(), ChatError> {
        let provider = &self.provider;
        let group = self
            .groups
            .get_mut(id)
            .ok_or_else(|| ChatError::UnknownGroup(hex_id(id)))?;
        group.clear_pending_commit(provider.storage()).map_err(mls)
    }

    /// A secret every member of the group's current epoch derives and no one else can: the
    /// delivery relay orders commits under its hash without learning the group or its members.
    pub fn epoch_token(&self, id: &[u8]) -> Result<[u8; 32], ChatError> {
        let group = self
            .groups
            .get(id)
            .ok_or_else(|| ChatError::UnknownGroup(hex_id(id)))?;
        let secret = group
            .export_secret(self.provider.crypto(), "starling commit order", b"", 32)
            .map_err(mls)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&secret);
        Ok(out)
    }

    /// Encrypts `text` for the group.
    pub fn send(&mut self, id: &[u8], text: &[u8]) -> Result<Vec<u8>, ChatError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(ChatError::TextTooLarge);
        }
        let provider = &self.provider;
        let signer = &self.signer;
        let group = self
            .groups
            .get_mut(id)
            .ok_or_else(|| ChatError::UnknownGroup(hex_id(id)))?;
        let m = group.create_message(provider, signer, text).map_err(mls)?;
        encode(&m)
    }

    /// Takes an incoming message: a welcome, a commit, or an encrypted text, checking every
    /// member it names against `directory`.
    pub fn receive(
        &mut self,
        bytes: &[u8],
        directory: &dyn Directory,
    ) -> Result<Received, ChatError> {
        let msg = decode(bytes)?;
        let protocol = match msg.extract() {
            MlsMessageBodyIn::Welcome(welcome) => return self.join(welcome, directory),
            MlsMessageBodyIn::PrivateMessage(m) => ProtocolMessage::from(m),
            MlsMessageBodyIn::PublicMessage(m) => ProtocolMessage::from(m),
            _ => {
                return Err(ChatError::Malformed(
                    "neither a welcome, a commit nor a message".into(),
                ))
            }
        };
        let id = protocol.group_id().as_slice().to_vec();
        let provider = &self.provider;
        let group = self
            .groups
            .get_mut(&id)
            .ok_or_else(|| ChatError::UnknownGroup(hex_id(&id)))?;
        let (message, at) = (protocol.epoch().as_u64(), group.epoch().as_u64());
        if message > at {
            return Err(ChatError::FutureEpoch { message, group: at });
        }
        // (A commit of this device's waiting to be ordered stays until another member's
        // commit for its epoch has been checked and is merged below: a header that only says
        // "commit" proves nothing.)
        let processed = group
            .process_message(provider, protocol)
            .map_err(|e| ChatError::Rejected(format!("{e:?}")))?;
        let from = identity_of(processed.credential());
        // The sender as the group's tree has it (its leaf's credential and signature key).
        let sender = match processed.sender() {
            Sender::Member(leaf) => group.member_at(*leaf),
            _ => None,
        }
        .ok_or_else(|| ChatError::Rejected("the sender is not a member".into()))?;
        vouched(directory, &id, &sender.credential, &sender.signature_key)?;
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => Ok(Received::Text {
                group: id,
                from,
                text: app.into_bytes(),
            }),
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                // Whoever the commit brings in or renews must be who the directory says;
                // otherwise it is not applied.
                let leaves = staged
                    .add_proposals()
                    .map(|a| a.add_proposal().key_package().leaf_node().clone())
                    .chain(
                        staged
                            .update_proposals()
                            .map(|u| u.update_proposal().leaf_node().clone()),
                    )
                    .chain(staged.update_path_leaf_node().cloned());
                for leaf in leaves {
                    vouched(
                        directory,
                        &id,
                        leaf.credential(),
                        leaf.signature_key().as_slice(),
                    )?;
                }
                let removed = staged.self_removed();
                // Another member's commit for the epoch this device meant to commit in: it
                // won, and this device's own is dropped.
                if group.pending_commit().is_some() {
                    group
                        .clear_pending_commit(provider.storage())
                        .map_err(mls)?;
                }
                group.merge_staged_commit(provider, *staged).map_err(mls)?;
                if removed {
                    self.groups.remove(&id);
                    return Ok(Received::Removed { group: id });
                }
                Ok(Received::Commit {
                    epoch: group.epoch().as_u64(),
                    group: id,
                    from,
                })
            }
            ProcessedMessageContent::ProposalMessage(_)
            | ProcessedMessageContent::ExternalJoinProposalMessage(_) => Err(ChatError::Rejected(
                "standalone proposals are not used; members commit directly".into(),
            )),
        }
    }

    fn join(&mut self, welcome: Welcome, directory: &dyn Directory) -> Result<Received, ChatError> {
        let config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .padding_size(PADDING)
            .max_past_epochs(PAST_EPOCHS)
            .build();
        let staged = StagedWelcome::new_from_welcome(&self.provider, &config, welcome, None)
            .map_err(|e| ChatError::Rejected(format!("welcome: {e:?}")))?;
        let gid = staged.group_context().group_id().as_slice().to_vec();
        for m in staged.members() {
            vouched(directory, &gid, &m.credential, &m.signature_key)?;
        }
        let adder = staged
            .welcome_sender()
            .ok()
            .map(|leaf| identity_of(leaf.credential()));
        let group = staged.into_group(&self.provider).map_err(mls)?;
        let id = group.group_id().as_slice().to_vec();
        let epoch = group.epoch().as_u64();
        self.groups.insert(id.clone(), group);
        Ok(Received::Joined {
            group: id,
            epoch,
            adder,
        })
    }

    /// Whether this device is in the group.
    pub fn is_member(&self, id: &[u8]) -> bool {
        self.groups.contains_key(id)
    }

    /// Leaves the group: the device forgets it (the others remove it with a commit).
    pub fn forget(&mut self, id: &[u8]) -> Result<(), ChatError> {
        self.group(id)?;
        self.groups.remove(id);
        Ok(())
    }
}

/// Hash iterations behind each half of a safety number: finding another key whose half
/// matches costs an attacker this many hashes per try.
const SAFETY_ITERATIONS: usize = 5_200;

/// One party's half of a safety number: 30 digits from its identity and its devices'
/// signature keys (sorted, so the order they are listed in does not matter).
fn safety_half(identity: &str, keys: &[Vec<u8>]) -> String {
    let mut keys: Vec<&Vec<u8>> = keys.iter().collect();
    keys.sort();
    let mut h = blake3::Hasher::new_derive_key("starling chat safety number v1");
    h.update(&(identity.len() as u32).to_be_bytes());
    h.update(identity.as_bytes());
    for k in &keys {
        h.update(&(k.len() as u32).to_be_bytes());
        h.update(k);
    }
    let mut d = *h.finalize().as_bytes();
    for _ in 0..SAFETY_ITERATIONS {
        let mut h = blake3::Hasher::new_derive_key("starling chat safety number v1 iteration");
        h.update(&d);
        for k in &keys {
            h.update(k);
        }
        d = *h.finalize().as_bytes();
    }
    // Six groups of five digits, each from five bytes.
    (0..6)
        .map(|i| {
            let c = &d[i * 5..i * 5 + 5];
            let n = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", n % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The safety number two people compare (aloud, or side by side) to know that no one sits
/// between them: 60 digits from both accounts' identities and device keys, the same on both
/// sides. It changes when either side's devices change.
pub fn safety_number(a: (&str, &[Vec<u8>]), b: (&str, &[Vec<u8>])) -> String {
    let (x, y) = (safety_half(a.0, a.1), safety_half(b.0, b.1));
    // Both sides list the halves in the same order.
    if (a.0, &x) <= (b.0, &y) {
        format!("{x} {y}")
    } else {
        format!("{y} {x}")
    }
}

/// Version of [`Device::export_state`]'s format.
/// 2: the outstanding key packages follow the storage (1 had none).
const STATE_VERSION: u8 = 2;
/// Largest exported device state accepted.
pub const MAX_STATE_BYTES: usize = 64 * 1024 * 1024;

/// Reads a device state: bounded, every length checked against what is left.
struct StateReader<'a> {
    rest: &'a [u8],
}

impl<'a> StateReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ChatError> {
        if n > self.rest.len() {
            return Err(ChatError::Malformed("device state is truncated".into()));
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, ChatError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self) -> Result<&'a [u8], ChatError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

impl Device {
    /// The device's whole state (its signing key, groups and their secrets) as bytes, to be
    /// kept on disk. **These bytes are secret**: whoever holds them reads the device's chats;
    /// the node seals them (as it seals account keys) before writing them.
    pub fn export_state(&self) -> Vec<u8> {
        let mut out = vec![STATE_VERSION];
        put_bytes(&mut out, self.identity.as_bytes());
        put_bytes(&mut out, self.signer.public());
        let mut ids: Vec<&Vec<u8>> = self.groups.keys().collect();
        ids.sort();
        out.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            put_bytes(&mut out, id);
        }
        let values = self
            .provider
            .storage()
            .values
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let mut entries: Vec<(&Vec<u8>, &Vec<u8>)> = values.iter().collect();
        entries.sort();
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for (k, v) in entries {
            put_bytes(&mut out, k);
            put_bytes(&mut out, v);
        }
        out.extend_from_slice(&(self.outstanding.len() as u32).to_be_bytes());
        for r in &self.outstanding {
            put_bytes(&mut out, r);
        }
        out
    }

    /// A device from [`Device::export_state`]'s bytes.
    pub fn restore(bytes: &[u8]) -> Result<Device, ChatError> {
        if bytes.len() > MAX_STATE_BYTES {
            return Err(ChatError::TooLarge);
        }
        let mut r = StateReader { rest: bytes };
        let version = r.take(1)?[0];
        if !(1..=STATE_VERSION).contains(&version) {
            return Err(ChatError::Malformed(format!(
                "device state version {version} (this build reads {STATE_VERSION})"
            )));
        }
        let identity = String::from_utf8(r.bytes()?.to_vec())
            .map_err(|_| ChatError::Malformed("identity is not UTF-8".into()))?;
        let public = r.bytes()?.to_vec();
        let groups = r.u32()? as usize;
        let mut ids = Vec::new();
        for _ in 0..groups {
            ids.push(r.bytes()?.to_vec());
        }
        let entries = r.u32()? as usize;
        let mut values = HashMap::new();
        for _ in 0..entries {
            let k = r.bytes()?.to_vec();
            let v = r.bytes()?.to_vec();
            values.insert(k, v);
        }
        let mut outstanding = std::collections::VecDeque::new();
        if version >= 2 {
            let n = r.u32()? as usize;
            for _ in 0..n.min(MAX_KEY_PACKAGES_KEPT) {
                outstanding.push_back(r.bytes()?.to_vec());
            }
        }
        if !r.rest.is_empty() {
            return Err(ChatError::Malformed("bytes after the device state".into()));
        }
        let provider = OpenMlsRustCrypto::default();
        *provider
            .storage()
            .values
            .write()
            .unwrap_or_else(|p| p.into_inner()) = values;
        let signer = SignatureKeyPair::read(
            provider.storage(),
            &public,
            CIPHERSUITE.signature_algorithm(),
        )
        .ok_or_else(|| ChatError::Malformed("the signing key is missing".into()))?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(identity.clone().into_bytes()).into(),
            signature_key: signer.public().into(),
        };
        let mut loaded = HashMap::new();
        for id in ids {
            let group = MlsGroup::load(provider.storage(), &GroupId::from_slice(&id))
                .map_err(mls)?
                .ok_or_else(|| ChatError::Malformed(format!("group {} is missing", hex_id(&id))))?;
            loaded.insert(id, group);
        }
        Ok(Device {
            identity,
            provider,
            signer,
            credential,
            groups: loaded,
            outstanding,
        })
    }
}

fn hex_id(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
