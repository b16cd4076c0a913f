//! End-to-end encrypted chat for the accounts a node holds.
//!
//! Each account that turns chat on gets one MLS device on this node ([`starling_chat::Device`])
//! and publishes it in the key directory on the ledger (`SetChatDevice`): its signature key,
//! the opaque id of its mailbox, this node as its home, and the mailbox relays it names.
//!
//! - **Sending**: a text is encrypted once for the group and deposited in the mailbox of every
//!   other member device: at the device's home node when that node answers (node to node over
//!   the open network), otherwise at the relays it names. Deposits carry no sender.
//! - **Receiving**: the device's mail arrives in this node's own mailboxes (direct delivery)
//!   or waits at its relays, which the node polls with fetches signed by the mailbox key.
//!   Mail is taken in order, deduplicated by hash, and acknowledged only after the device
//!   state that took it is on disk.
//! - **Keys**: a peer's devices come from the ledger with a Merkle proof checked against the
//!   finalized state root; a key package must name the identity and signature key the ledger
//!   lists. Each device's key packages sit at its home node and relays, each handed out once.
//! - **Commits** (adding, removing, key updates) are ordered by the group's delivery relay
//!   (the first relay of the member in the lowest leaf): one commit per epoch wins; a loser
//!   drops its commit, takes the winner's, and tries again.
//! - **At rest**: the device state (MLS secrets) and the message history are sealed with
//!   XChaCha20-Poly1305 under a key derived from the account key, so they open only while the
//!   account is logged in. The state is written (synced, atomically) before anything it
//!   encrypted leaves the node and before mail it took is acknowledged.

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use futures::channel::mpsc;
use rand_core::{OsRng, RngCore as _};
use serde::{Deserialize, Serialize};
use starling_chat::{Device, Received};
use starling_chat_relay::mailbox::{now_ms, write_atomic};
use starling_chat_relay::ChatServices;
use starling_crypto::SecretKey;
use starling_ledger::records::{ChatKeysRecord, StateKey};
use starling_net::chat::{self as chatnet, ChatNet, NetError};
use starling_node_api::Node;
use starling_protocol::chat::{mailbox_id, ChatRequest, ChatResponse};
use starling_types::{AccountId, ChatDevice, Decode as _, Endpoint, Hash, KeyType, PublicKey};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

mod outbox;

/// Key packages a device keeps at its home node and at each relay.
const KEY_PACKAGES: usize = 20;
/// Below this many at home, the device makes more.
const KEY_PACKAGES_LOW: usize = 5;
/// How often a relay's stock of a device's key packages is counted.
const KEY_PACKAGE_CHECK: Duration = Duration::from_secs(60);
/// How often relays are asked for mail.
const POLL: Duration = Duration::from_millis(500);
/// Envelope hashes remembered against duplicates.
const SEEN: usize = 4_096;
/// Envelopes kept for a commit or welcome still on the way, and for how long.
const MAX_DEFERRED: usize = 256;
const DEFER_FOR_MS: u64 = 10 * 60 * 1000;
/// Most texts in one send.
pub const MAX_BATCH: usize = 256;
/// Most members named when a chat is created or grows.
pub const MAX_NEW_MEMBERS: usize = 49;
/// Attempts at a commit that keeps losing its epoch.
const COMMIT_ATTEMPTS: usize = 4;

/// What went wrong, for the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("chat is not set up for this account on this node")]
    NotSetUp,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ChatError {
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::NotSetUp => "chat_not_set_up",
            ChatError::BadRequest(_) => "bad_request",
            ChatError::NotFound(_) => "not_found",
            ChatError::Conflict(_) => "conflict",
            ChatError::Unavailable(_) => "unavailable",
            ChatError::Internal(_) => "internal",
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ChatError {
    ChatError::Internal(e.to_string())
}

impl From<starling_chat::ChatError> for ChatError {
    fn from(e: starling_chat::ChatError) -> Self {
        match e {
            starling_chat::ChatError::UnknownGroup(g) => {
                ChatError::NotFound(format!("no chat {g}"))
            }
            starling_chat::ChatError::NoSuchMember(m) => {
                ChatError::NotFound(format!("{m} is not a member"))
            }
            starling_chat::ChatError::TextTooLarge
            | starling_chat::ChatError::GroupFull
            | starling_chat::ChatError::TooLarge => ChatError::BadRequest(e.to_string()),
            other => ChatError::Internal(other.to_string()),
        }
    }
}

/// One line of a conversation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Message {
    /// Position in the conversation, from 1.
    pub seq: u64,
    /// `text`, or `event` for membership changes.
    pub kind: String,
    /// The sender's account (empty for events this device saw by itself).
    pub from: String,
    pub text: String,
    pub at_ms: u64,
    pub mine: bool,
    /// The MLS epoch it was read in.
    pub epoch: u64,
    /// BLAKE3 of the envelope it came in (against duplicates).
    #[serde(default)]
    pub envelope: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct GroupMeta {
    /// Messages read (a count).
    read: u64,
    /// This device is no longer in the group.
    left: bool,
    created_ms: u64,
    /// When this device last put fresh keys in the group (its own commit).
    #[serde(default)]
    rekeyed_ms: u64,
}

/// What a device keeps besides its MLS state (sealed with it).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Meta {
    device_id: u32,
    /// Seed of the mailbox key (hex).
    mailbox_seed: String,
    /// The ledger lists this device.
    published: bool,
    /// Relays (node key text) that hold this device's key packages.
    packages_at: Vec<String>,
    /// Acknowledged position per mailbox holder (node key text).
    cursors: BTreeMap<String, u64>,
    /// Hashes of envelopes taken, newest last.
    seen: VecDeque<String>,
    groups: BTreeMap<String, GroupMeta>,
    /// Members who said they left, per chat, still to be removed.
    #[serde(default)]
    leavers: BTreeMap<String, Vec<String>>,
    /// Envelopes that arrived before the commit or welcome they need (when, hex bytes).
    #[serde(default)]
    deferred: VecDeque<(u64, String)>,
}

/// An account's chat, open while it is logged in.
struct Held {
    account: AccountId,
    seal: Zeroizing<[u8; 32]>,
    device: Device,
    meta: Meta,
    mailbox_key: SecretKey,
    history: BTreeMap<String, Vec<Message>>,
    in_history: HashSet<String>,
    /// Sealed history records not yet written.
    unwritten: Vec<u8>,
    /// When each relay's stock of this device's key packages was last counted.
    relay_checked: HashMap<String, std::time::Instant>,
    closed: bool,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

type HeldRef = Arc<tokio::sync::Mutex<Held>>;
type MailBatch = (Option<Endpoint>, Vec<(u64, Vec<u8>)>);

/// A summary of one conversation.
#[derive(Clone, Debug, Serialize)]
pub struct ChatSummary {
    pub id: String,
    pub members: Vec<String>,
    pub epoch: u64,
    pub unread: u64,
    pub left: bool,
    pub last: Option<Message>,
    pub encryption: &'static str,
}

/// One member account's devices as the ledger lists them, checked with a proof.
#[derive(Clone, Debug, Serialize)]
pub struct DirectoryEntry {
    pub account: String,
    pub shard: u16,
    pub height: u64,
    pub state_root: String,
    pub version: u64,
    pub devices: Vec<DeviceJson>,
    /// The proof, encoded (hex), for anyone to check again.
    pub proof: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct DeviceJson {
    pub id: u32,
    pub signature_key: String,
    pub mailbox: String,
    pub home: Option<String>,
    pub relays: Vec<String>,
}

/// The account part of an MLS identity `<account>#<device>`.
fn account_of_identity(identity: &str) -> Option<(AccountId, u32)> {
    let (a, d) = identity.rsplit_once('#')?;
    Some((PublicKey::from_text(a).ok()?, d.parse().ok()?))
}

fn seal_with(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, ChatError> {
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut nonce);
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad })
        .map_err(|_| internal("sealing failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_with(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, ChatError> {
    if sealed.len() < 24 + 16 {
        return Err(internal("sealed data is truncated"));
    }
    let (nonce, ct) = sealed.split_at(24);
    let nonce: [u8; 24] = nonce.try_into().map_err(internal)?;
    XChaCha20Poly1305::new(key.into())
        .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| internal("sealed chat data does not open (wrong key or damaged)"))
}

/// Payload kinds inside MLS application messages.
const PAYLOAD_TEXT: u8 = 0;
const PAYLOAD_LEAVE: u8 = 1;

/// The chat of every account this node holds.
pub struct Chat {
    node: Node,
    net: ChatNet,
    /// Where requests to other nodes go from: a swarm under a random key made at start, so
    /// the nodes it deposits with learn neither the sending account nor the sending node's
    /// key (they see the address it connects from).
    anon: ChatNet,
    services: Arc<ChatServices>,
    dir: PathBuf,
    home: Endpoint,
    relays: Vec<Endpoint>,
    /// Signs the device's publication in the key directory.
    accounts: Option<Arc<crate::accounts::Accounts>>,
    open: Mutex<HashMap<AccountId, HeldRef>>,
    outboxes: Mutex<HashMap<Hash, mpsc::Sender<outbox::Queued>>>,
    changed: tokio::sync::watch::Sender<u64>,
    /// How often a device refreshes its keys in each group (post-compromise security).
    key_update: Duration,
    /// Envelopes refused (damaged, replayed, undecryptable), for the metrics.
    pub rejected: std::sync::atomic::AtomicU64,
}

/// Where a node's chat devices are reached, and how often they refresh their keys.
#[derive(Clone, Debug)]
pub struct ChatPlace {
    /// This node, as its devices' home.
    pub home: Endpoint,
    /// The mailbox relays its devices name.
    pub relays: Vec<Endpoint>,
    /// How often a device refreshes its keys in each group (post-compromise security).
    pub key_update: Duration,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("home", &self.home)
            .field("relays", &self.relays)
            .finish_non_exhaustive()
    }
}

impl Chat {
    /// Chat for `node`'s accounts, kept under `<data_dir>/chat`, reached at `home`, naming
    /// `relays` as its devices' mailbox relays.
    pub fn new(
        node: Node,
        data_dir: &Path,
        net: ChatNet,
        services: Arc<ChatServices>,
        accounts: Option<Arc<crate::accounts::Accounts>>,
        place: ChatPlace,
    ) -> Result<Arc<Chat>, crate::SetupError> {
        let ChatPlace {
            home,
            relays,
            key_update,
        } = place;
        let (changed, _) = tokio::sync::watch::channel(0);
        let anon_key = SecretKey::generate(KeyType::Ed25519, &mut OsRng);
        let anon = chatnet::standalone(&anon_key, None, None)?;
        Ok(Arc::new(Chat {
            node,
            net,
            anon,
            services,
            dir: data_dir.join("chat"),
            home,
            relays,
            accounts,
            open: Mutex::new(HashMap::new()),
            outboxes: Mutex::new(HashMap::new()),
            changed,
            key_update,
            rejected: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Sends a chat request to `to`: answered here if `to` is this node, otherwise sent from
    /// the anonymous swarm.
    async fn request(&self, to: &Endpoint, req: &ChatRequest) -> Result<ChatResponse, NetError> {
        if to.node == self.net.me {
            self.net.request(to, req).await
        } else {
            self.anon.request(to, req).await
        }
    }

    /// Answers a chat protocol request (its encoded bytes) as this node's services do.
    pub fn serve(&self, request: &[u8]) -> Vec<u8> {
        starling_types::Encode::to_bytes(&self.services.serve(request))
    }

    /// Prometheus text for chat on this node.
    pub fn metrics(&self) -> String {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner()).len();
        format!(
            "{}# HELP starling_chat_open_devices Chat devices open (their accounts logged in).\n# TYPE starling_chat_open_devices gauge\nstarling_chat_open_devices {open}\n# HELP starling_chat_refused_envelopes_total Envelopes this node's devices refused (damaged, replayed, undecryptable).\n# TYPE starling_chat_refused_envelopes_total counter\nstarling_chat_refused_envelopes_total {}\n",
            self.services.metrics(),
            self.rejected.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Counts changes to any conversation (what live streams wait on).
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn account_dir(&self, account: &AccountId) -> PathBuf {
        self.dir.join(hex::encode(account.bytes))
    }

    fn seal_key(key: &SecretKey) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake3::derive_key(
            "starling chat state v1",
            key.to_seed().as_ref(),
        ))
    }

    /// An account's devices from the ledger, with the proof checked against the shard's
    /// finalized state root.
    pub fn directory(
        &self,
        account: &AccountId,
    ) -> Result<(ChatKeysRecord, DirectoryEntry), ChatError> {
        let shard = self.node.shard_map().shard_of(account);
        let app = self.node.shard(shard).ok_or_else(|| {
            ChatError::Unavailable(format!("this node does not keep shard {shard}"))
        })?;
        let key = StateKey::ChatKeys(account).hash();
        let (head, value, proof) = app.prove(&key).map_err(internal)?;
        let vh = value.as_deref().map(starling_state::value_hash);
        proof
            .verify(&head.state_root, &key, vh.as_ref())
            .map_err(|e| internal(format!("the key directory proof does not verify: {e}")))?;
        let Some(value) = value else {
            return Err(ChatError::NotFound(format!(
                "{} has not turned chat on",
                account.to_text()
            )));
        };
        let rec = ChatKeysRecord::from_bytes(&value).map_err(internal)?;
        let entry = DirectoryEntry {
            account: account.to_text(),
            shard: shard.0,
            height: head.height,
            state_root: head.state_root.to_hex(),
            version: rec.version,
            devices: rec
                .devices
                .iter()
                .map(|d| DeviceJson {
                    id: d.id,
                    signature_key: hex::encode(d.signature_key),
                    mailbox: d.mailbox.to_hex(),
                    home: d.home.as_ref().map(Endpoint::to_string),
                    relays: d.relays.iter().map(Endpoint::to_string).collect(),
                })
                .collect(),
            proof: hex::encode(starling_types::Encode::to_bytes(&proof)),
        };
        Ok((rec, entry))
    }

    fn held(&self, account: &AccountId) -> Option<HeldRef> {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(account)
            .cloned()
    }

    /// Opens the account's chat if it was set up on this node (called at log in).
    pub async fn activate(self: &Arc<Self>, key: &SecretKey) -> Result<bool, ChatError> {
        let account = key.public_key();
        if self.held(&account).is_some() {
            return Ok(true);
        }
        let dir = self.account_dir(&account);
        if !dir.join("device.sealed").exists() {
            return Ok(false);
        }
        let seal = Self::seal_key(key);
        let held = tokio::task::spawn_blocking(move || Self::load(&dir, account, seal))
            .await
            .map_err(internal)??;
        self.start(held);
        Ok(true)
    }

    fn start(self: &Arc<Self>, held: Held) {
        let account = held.account;
        let held = Arc::new(tokio::sync::Mutex::new(held));
        {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            if open.contains_key(&account) {
                return;
            }
            open.insert(account, held.clone());
        }
        let me = self.clone();
        tokio::spawn(async move { me.worker(held).await });
    }

    /// Closes the account's chat (at log out): its secrets leave memory.
    pub async fn deactivate(&self, account: &AccountId) {
        let held = self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(account);
        if let Some(h) = held {
            h.lock().await.closed = true;
        }
    }

    fn load(dir: &Path, account: AccountId, seal: Zeroizing<[u8; 32]>) -> Result<Held, ChatError> {
        let sealed = std::fs::read(dir.join("device.sealed")).map_err(internal)?;
        let plain = open_with(&seal, &Self::aad(&account, b"device"), &sealed)?;
        if plain.len() < 4 {
            return Err(internal("device state is truncated"));
        }
        let n = u32::from_be_bytes([plain[0], plain[1], plain[2], plain[3]]) as usize;
        if plain.len() < 4 + n {
            return Err(internal("device state is truncated"));
        }
        let meta: Meta = serde_json::from_slice(&plain[4..4 + n]).map_err(internal)?;
        let device = Device::restore(&plain[4 + n..])?;
        let seed: [u8; 32] = hex::decode(&meta.mailbox_seed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| internal("bad mailbox seed"))?;
        let mailbox_key = SecretKey::from_seed(KeyType::Ed25519, &seed).map_err(internal)?;
        let mut held = Held {
            account,
            seal,
            device,
            meta,
            mailbox_key,
            history: BTreeMap::new(),
            in_history: HashSet::new(),
            unwritten: Vec::new(),
            relay_checked: HashMap::new(),
            closed: false,
        };
        Self::load_history(dir, &mut held)?;
        Ok(held)
    }

    fn aad(account: &AccountId, what: &[u8]) -> Vec<u8> {
        let mut a = b"starling chat ".to_vec();
        a.extend_from_slice(what);
        a.extend_from_slice(&account.bytes);
        a
    }

    fn load_history(dir: &Path, held: &mut Held) -> Result<(), ChatError> {
        let path = dir.join("history.log");
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(internal(e)),
        };
        let aad = Self::aad(&held.account, b"history");
        let mut at = 0;
        while data.len() - at >= 4 {
            let n =
                u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
            if data.len() - at - 4 < n {
                break;
            }
            let Ok(plain) = open_with(&held.seal, &aad, &data[at + 4..at + 4 + n]) else {
                break;
            };
            at += 4 + n;
            let Ok((group, m)) = serde_json::from_slice::<(String, Message)>(&plain) else {
                continue;
            };
            if !m.envelope.is_empty() {
                held.in_history.insert(m.envelope.clone());
            }
            held.history.entry(group).or_default().push(m);
        }
        if at < data.len() {
            tracing::warn!("dropping a torn record at the end of a chat history");
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(at as u64))
                .map_err(internal)?;
        }
        Ok(())
    }

    /// Writes the device state (MLS secrets and meta), sealed, atomically and synced.
    fn save(&self, held: &Held) -> Result<(), ChatError> {
        let meta = serde_json::to_vec(&held.meta).map_err(internal)?;
        let state = Zeroizing::new(held.device.export_state());
        let mut plain = Zeroizing::new(Vec::with_capacity(4 + meta.len() + state.len()));
        plain.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        plain.extend_from_slice(&meta);
        plain.extend_from_slice(&state);
        let sealed = seal_with(&held.seal, &Self::aad(&held.account, b"device"), &plain)?;
        let dir = self.account_dir(&held.account);
        std::fs::create_dir_all(&dir).map_err(internal)?;
        write_atomic(&dir.join("device.sealed"), &sealed).map_err(internal)
    }

    /// Appends messages to a conversation, sealed, synced.
    fn append(&self, held: &mut Held, group: &str, msgs: Vec<Message>) -> Result<(), ChatError> {
        self.record(held, group, msgs)?;
        self.flush_history(held)
    }

    /// Adds messages to a conversation in memory and to the history's write buffer (sealed);
    /// [`Chat::flush_history`] writes them.
    fn record(&self, held: &mut Held, group: &str, msgs: Vec<Message>) -> Result<(), ChatError> {
        let aad = Self::aad(&held.account, b"history");
        for m in msgs {
            let plain = Zeroizing::new(serde_json::to_vec(&(group, &m)).map_err(internal)?);
            let sealed = seal_with(&held.seal, &aad, &plain)?;
            held.unwritten
                .extend_from_slice(&(sealed.len() as u32).to_be_bytes());
            held.unwritten.extend_from_slice(&sealed);
            if !m.envelope.is_empty() {
                held.in_history.insert(m.envelope.clone());
            }
            held.history.entry(group.to_string()).or_default().push(m);
        }
        Ok(())
    }

    /// Appends what [`Chat::record`] buffered to the history file, synced.
    fn flush_history(&self, held: &mut Held) -> Result<(), ChatError> {
        if held.unwritten.is_empty() {
            return Ok(());
        }
        let dir = self.account_dir(&held.account);
        std::fs::create_dir_all(&dir).map_err(internal)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("history.log"))
            .map_err(internal)?;
        f.write_all(&held.unwritten)
            .and_then(|()| f.sync_data())
            .map_err(internal)?;
        held.unwritten.clear();
        Ok(())
    }

    /// Writes an event of this device's own doing (a chat started, members changed, left)
    /// into the conversation.
    fn own_event(
        &self,
        held: &mut Held,
        group: &str,
        text: String,
        epoch: u64,
    ) -> Result<(), ChatError> {
        let msg = Message {
            seq: Self::next_seq(held, group),
            kind: "event".into(),
            from: held.account.to_text(),
            text,
            at_ms: now_ms(),
            mine: true,
            epoch,
            envelope: String::new(),
        };
        self.append(held, group, vec![msg])
    }

    fn next_seq(held: &Held, group: &str) -> u64 {
        held.history.get(group).map_or(0, |h| h.len() as u64) + 1
    }

    /// Turns chat on for the account: a new device on this node, published in the key
    /// directory (the transaction is sent; the device is usable once it is final).
    pub async fn setup(
        self: &Arc<Self>,
        key: Arc<SecretKey>,
    ) -> Result<serde_json::Value, ChatError> {
        let account = key.public_key();
        if !self.activate(&key).await? {
            let taken: HashSet<u32> = self
                .directory(&account)
                .map(|(r, _)| r.devices.iter().map(|d| d.id).collect())
                .unwrap_or_default();
            let device_id = (0..u32::MAX).find(|i| !taken.contains(i)).unwrap_or(0);
            let device = Device::new(&account.to_text(), device_id)?;
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            let mailbox_key = SecretKey::from_seed(KeyType::Ed25519, &seed).map_err(internal)?;
            let held = Held {
                account,
                seal: Self::seal_key(&key),
                device,
                meta: Meta {
                    device_id,
                    mailbox_seed: hex::encode(seed),
                    ..Meta::default()
                },
                mailbox_key,
                history: BTreeMap::new(),
                in_history: HashSet::new(),
                unwritten: Vec::new(),
                relay_checked: HashMap::new(),
                closed: false,
            };
            self.save(&held)?;
            self.start(held);
        }
        let held = self.held(&account).ok_or(ChatError::NotSetUp)?;
        let (device, published) = {
            let h = held.lock().await;
            (self.chat_device(&h), h.meta.published)
        };
        if !published && !self.listed(&account, &device) {
            let accounts = self
                .accounts
                .clone()
                .ok_or_else(|| ChatError::Unavailable("this node holds no accounts".into()))?;
            let node = self.node.clone();
            let action = starling_types::Action::SetChatDevice { device };
            tokio::task::spawn_blocking(move || accounts.sign_and_submit(&node, &key, action))
                .await
                .map_err(internal)?
                .map_err(|e| ChatError::Conflict(format!("publishing the device: {e}")))?;
        }
        self.status(&account).await
    }

    fn chat_device(&self, h: &Held) -> ChatDevice {
        let mut signature_key = [0u8; 32];
        let k = h.device.signature_key();
        let n = k.len().min(32);
        signature_key[..n].copy_from_slice(&k[..n]);
        ChatDevice {
            id: h.meta.device_id,
            signature_key,
            mailbox: mailbox_id(&h.mailbox_key.public_key()),
            home: Some(self.home.clone()),
            relays: self.relays.clone(),
        }
    }

    /// Whether the ledger lists exactly this device.
    fn listed(&self, account: &AccountId, device: &ChatDevice) -> bool {
        starling_chat_relay::chat_keys(&self.node, account)
            .is_some_and(|r| r.devices.iter().any(|d| d == device))
    }

    /// The account's chat status.
    pub async fn status(&self, account: &AccountId) -> Result<serde_json::Value, ChatError> {
        let Some(held) = self.held(account) else {
            return Ok(serde_json::json!({"enabled": false}));
        };
        let h = held.lock().await;
        let device = self.chat_device(&h);
        Ok(serde_json::json!({
            "enabled": true,
            "published": h.meta.published,
            "device": h.meta.device_id,
            "identity": h.device.identity(),
            "signature_key": hex::encode(device.signature_key),
            "mailbox": device.mailbox.to_hex(),
            "home": self.home.to_string(),
            "relays": self.relays.iter().map(Endpoint::to_string).collect::<Vec<_>>(),
            "key_packages_at_home": self.services.key_packages.count(*account, h.meta.device_id),
            "key_packages_at_relays": h.meta.packages_at,
            "refused_envelopes": self.rejected.load(std::sync::atomic::Ordering::Relaxed),
            "encryption": ENCRYPTION,
        }))
    }

    /// The background work of an open account: publishing key packages once the ledger
    /// lists the device, and taking mail as it arrives.
    async fn worker(self: Arc<Self>, held: HeldRef) {
        let mut local = self.services.mailboxes.watch();
        let mut last_poll = std::time::Instant::now() - POLL;
        loop {
            {
                let mut h = held.lock().await;
                if h.closed {
                    return;
                }
                if let Err(e) = self.housekeeping(&mut h).await {
                    tracing::warn!(error = %e, "chat key packages");
                }
                let remote = last_poll.elapsed() >= POLL;
                if remote {
                    last_poll = std::time::Instant::now();
                }
                match self.take_mail(&mut h, remote).await {
                    Ok(true) => self.bump(),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "taking chat mail"),
                }
                let leavers = Self::leavers_to_remove(&mut h);
                let stale = self.stale_keys(&h);
                let account = h.account;
                drop(h);
                for (gid, accounts) in leavers {
                    if let Err(e) = self.remove(&account, &gid, &accounts).await {
                        tracing::warn!(error = %e, "removing members who left");
                    }
                }
                for gid in stale {
                    match self.update(&account, &gid).await {
                        Ok(epoch) => {
                            tracing::debug!(chat = %gid, epoch, "keys refreshed on schedule")
                        }
                        Err(e) => {
                            tracing::info!(chat = %gid, error = %e, "scheduled key refresh failed; tried again later")
                        }
                    }
                }
            }
            tokio::select! {
                _ = local.changed() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn housekeeping(&self, h: &mut Held) -> Result<(), ChatError> {
        let device = self.chat_device(h);
        if !h.meta.published {
            if !self.listed(&h.account, &device) {
                return Ok(());
            }
            h.meta.published = true;
            self.save(h)?;
            self.bump();
        }
        let id = h.meta.device_id;
        if self.services.key_packages.count(h.account, id) < KEY_PACKAGES_LOW {
            let kps = (0..KEY_PACKAGES)
                .map(|_| h.device.key_package())
                .collect::<Result<Vec<_>, _>>()?;
            // The private halves are on disk before anyone can use the public ones.
            self.save(h)?;
            self.services
                .key_packages
                .put(h.account, id, kps)
                .map_err(internal)?;
        }
        for relay in &self.relays {
            let name = relay.node.to_text();
            if relay.node == self.net.me {
                continue;
            }
            let uploaded = h.meta.packages_at.contains(&name);
            if uploaded {
                // Every so often, ask how many are left there (an empty upload answers the
                // count), and top up below the low mark.
                if h.relay_checked
                    .get(&name)
                    .is_some_and(|t| t.elapsed() < KEY_PACKAGE_CHECK)
                {
                    continue;
                }
                h.relay_checked
                    .insert(name.clone(), std::time::Instant::now());
                let ask = ChatRequest::PutKeyPackages {
                    account: h.account,
                    device: id,
                    packages: Vec::new(),
                };
                match self.request(relay, &ask).await {
                    Ok(ChatResponse::KeyPackagesKept { count })
                        if count as usize >= KEY_PACKAGES_LOW =>
                    {
                        continue
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(relay = %relay.address, error = %e, "cannot count key packages at the relay");
                        continue;
                    }
                }
            }
            let kps = (0..KEY_PACKAGES)
                .map(|_| h.device.key_package())
                .collect::<Result<Vec<_>, _>>()?;
            self.save(h)?;
            let req = ChatRequest::PutKeyPackages {
                account: h.account,
                device: id,
                packages: kps,
            };
            match self.request(relay, &req).await {
                Ok(_) => {
                    if !uploaded {
                        h.meta.packages_at.push(name);
                    }
                    self.save(h)?;
                }
                Err(e) => {
                    tracing::debug!(relay = %relay.address, error = %e, "key packages not taken yet")
                }
            }
        }
        Ok(())
    }

    /// Takes the device's mail: what reached this node directly, and (when `remote`) what
    /// waits at its relays. Returns whether anything changed.
    async fn take_mail(&self, h: &mut Held, remote: bool) -> Result<bool, ChatError> {
        let mailbox = mailbox_id(&h.mailbox_key.public_key());
        // (the relay it came from, or this node; the mail in order)
        let mut batches: Vec<MailBatch> = Vec::new();
        let me = self.net.me.to_text();
        let after = h.meta.cursors.get(&me).copied().unwrap_or(0);
        let (mail, _) = self
            .services
            .mailboxes
            .fetch(&mailbox, after, chatnet::MAX_FETCH_BYTES);
        if !mail.is_empty() {
            batches.push((None, mail.into_iter().map(|m| (m.seq, m.bytes)).collect()));
        }
        if remote {
            for relay in self.relays.clone() {
                if relay.node == self.net.me {
                    continue;
                }
                let name = relay.node.to_text();
                let after = h.meta.cursors.get(&name).copied().unwrap_or(0);
                let req = ChatRequest::fetch(&relay.node, &h.mailbox_key, after);
                match self.request(&relay, &req).await {
                    Ok(ChatResponse::Mail { mail, .. }) if !mail.is_empty() => {
                        batches.push((Some(relay), mail));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(relay = %relay.address, error = %e, "no mail from relay")
                    }
                }
            }
        }
        if batches.is_empty() {
            return Ok(false);
        }
        let mut changed = false;
        for (from, mail) in &batches {
            let mut last = 0;
            for (seq, bytes) in mail {
                last = *seq;
                changed |= self.take_one(h, bytes)?;
            }
            let holder = from.as_ref().map_or(me.clone(), |r| r.node.to_text());
            h.meta.cursors.insert(holder, last);
        }
        if changed {
            changed |= self.retry_deferred(h)?;
        }
        // Everything taken is on disk before any of it is acknowledged: the history first
        // (a crash before the state is saved makes the mail come again, and its hash shows
        // it once), then the state.
        self.flush_history(h)?;
        self.save(h)?;
        for (from, mail) in &batches {
            if from.is_none() {
                if let Some((last, _)) = mail.last() {
                    self.services
                        .mailboxes
                        .ack(&mailbox, *last)
                        .map_err(internal)?;
                }
            }
        }
        // Relays learn the new positions with the next fetch.
        Ok(changed)
    }

    /// Tries the deferred envelopes again (a commit or welcome may have arrived), until no
    /// more open; drops those kept too long.
    fn retry_deferred(&self, h: &mut Held) -> Result<bool, ChatError> {
        let mut changed = false;
        for _ in 0..8 {
            let now = now_ms();
            let pending: Vec<(u64, String)> = std::mem::take(&mut h.meta.deferred).into();
            let before = pending.len();
            let mut progress = false;
            for (at, hexed) in pending {
                if now.saturating_sub(at) > DEFER_FOR_MS {
                    self.rejected
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                let Ok(bytes) = hex::decode(&hexed) else {
                    continue;
                };
                let took = self.take_one(h, &bytes)?;
                // Put back with its first arrival time if it is still waiting.
                if let Some(e) = h.meta.deferred.iter_mut().find(|(_, e)| *e == hexed) {
                    e.0 = at;
                }
                changed |= took;
                progress |= took;
            }
            if !progress || h.meta.deferred.len() >= before {
                break;
            }
        }
        Ok(changed)
    }

    /// Takes one envelope; returns whether a conversation changed.
    fn take_one(&self, h: &mut Held, bytes: &[u8]) -> Result<bool, ChatError> {
        let hash = blake3::hash(bytes).to_hex().to_string();
        if h.meta.seen.contains(&hash) {
            return Ok(false);
        }
        let received = h.device.receive(bytes);
        if let Err(
            starling_chat::ChatError::FutureEpoch { .. }
            | starling_chat::ChatError::UnknownGroup(_),
        ) = &received
        {
            // Its commit or welcome is still on the way (another sender, another path): kept,
            // and tried again once the group moves.
            let hexed = hex::encode(bytes);
            if !h.meta.deferred.iter().any(|(_, e)| *e == hexed) {
                if h.meta.deferred.len() >= MAX_DEFERRED {
                    h.meta.deferred.pop_front();
                    self.rejected
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                h.meta.deferred.push_back((now_ms(), hexed));
            }
            return Ok(false);
        }
        h.meta.seen.push_back(hash.clone());
        while h.meta.seen.len() > SEEN {
            h.meta.seen.pop_front();
        }
        let received = match received {
            Ok(r) => r,
            Err(e) => {
                self.rejected
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(error = %e, "refused a chat envelope");
                return Ok(false);
            }
        };
        // Taken before (the state was older than the history after a crash): not again.
        let duplicate = h.in_history.contains(&hash);
        let now = now_ms();
        let (group, msg) = match received {
            Received::Text { group, from, text } => {
                let gid = hex::encode(&group);
                let epoch = h.device.epoch(&group).unwrap_or(0);
                let from_account = account_of_identity(&from)
                    .map(|(a, _)| a.to_text())
                    .unwrap_or(from);
                match text.split_first() {
                    Some((&PAYLOAD_TEXT, body)) => (
                        gid.clone(),
                        Message {
                            seq: Self::next_seq(h, &gid),
                            kind: "text".into(),
                            from: from_account,
                            text: String::from_utf8_lossy(body).into_owned(),
                            at_ms: now,
                            mine: false,
                            epoch,
                            envelope: hash,
                        },
                    ),
                    Some((&PAYLOAD_LEAVE, _)) => {
                        let l = h.meta.leavers.entry(gid.clone()).or_default();
                        if !l.contains(&from_account) {
                            l.push(from_account.clone());
                        }
                        (
                            gid.clone(),
                            Message {
                                seq: Self::next_seq(h, &gid),
                                kind: "event".into(),
                                from: from_account.clone(),
                                text: format!("{from_account} left"),
                                at_ms: now,
                                mine: false,
                                epoch,
                                envelope: hash,
                            },
                        )
                    }
                    _ => {
                        self.rejected
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        return Ok(false);
                    }
                }
            }
            Received::Commit { group, epoch } => {
                let gid = hex::encode(&group);
                let members = self.member_accounts(h, &group).join(", ");
                (
                    gid.clone(),
                    Message {
                        seq: Self::next_seq(h, &gid),
                        kind: "event".into(),
                        from: String::new(),
                        text: format!("keys changed (epoch {epoch}); members: {members}"),
                        at_ms: now,
                        mine: false,
                        epoch,
                        envelope: hash,
                    },
                )
            }
            Received::Joined { group, epoch } => {
                let gid = hex::encode(&group);
                h.meta.groups.entry(gid.clone()).or_insert(GroupMeta {
                    created_ms: now,
                    ..GroupMeta::default()
                });
                (
                    gid.clone(),
                    Message {
                        seq: Self::next_seq(h, &gid),
                        kind: "event".into(),
                        from: String::new(),
                        text: "you were added".into(),
                        at_ms: now,
                        mine: false,
                        epoch,
                        envelope: hash,
                    },
                )
            }
            Received::Removed { group } => {
                let gid = hex::encode(&group);
                h.meta.groups.entry(gid.clone()).or_default().left = true;
                (
                    gid.clone(),
                    Message {
                        seq: Self::next_seq(h, &gid),
                        kind: "event".into(),
                        from: String::new(),
                        text: "you were removed".into(),
                        at_ms: now,
                        mine: false,
                        epoch: 0,
                        envelope: hash,
                    },
                )
            }
        };
        if duplicate {
            return Ok(false);
        }
        // Written with the rest of the batch, before the state that took it.
        self.record(h, &group, vec![msg])?;
        Ok(true)
    }

    fn member_accounts(&self, h: &Held, group: &[u8]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in h.device.members(group).unwrap_or_default() {
            let a = account_of_identity(&m).map_or(m, |(a, _)| a.to_text());
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    /// Every member device of `group` but this one, as the ledger lists them.
    fn member_devices(&self, h: &Held, group: &[u8]) -> Result<Vec<ChatDevice>, ChatError> {
        let mut by_account: BTreeMap<AccountId, Vec<u32>> = BTreeMap::new();
        for m in h.device.members(group)? {
            if m == h.device.identity() {
                continue;
            }
            if let Some((a, d)) = account_of_identity(&m) {
                by_account.entry(a).or_default().push(d);
            }
        }
        let mut out = Vec::new();
        for (account, ids) in by_account {
            let Ok((rec, _)) = self.directory(&account) else {
                tracing::warn!(account = %account, "a member's devices are not in the key directory");
                continue;
            };
            out.extend(rec.devices.into_iter().filter(|d| ids.contains(&d.id)));
        }
        Ok(out)
    }

    fn require(&self, account: &AccountId) -> Result<HeldRef, ChatError> {
        self.held(account).ok_or(ChatError::NotSetUp)
    }

    fn group_id(id: &str) -> Result<Vec<u8>, ChatError> {
        hex::decode(id)
            .ok()
            .filter(|b| !b.is_empty() && b.len() <= 64)
            .ok_or_else(|| ChatError::BadRequest(format!("`{id}` is not a chat id")))
    }

    /// Key packages for every device of `accounts` (but this one), each matching the
    /// identity and signature key the ledger lists for it.
    async fn key_packages(
        &self,
        h: &Held,
        accounts: &[AccountId],
    ) -> Result<Vec<Vec<u8>>, ChatError> {
        let mut kps = Vec::new();
        for account in accounts {
            let (rec, _) = self.directory(account)?;
            for d in &rec.devices {
                let identity = format!("{}#{}", account.to_text(), d.id);
                if identity == h.device.identity() {
                    continue;
                }
                let req = ChatRequest::TakeKeyPackage {
                    account: *account,
                    device: d.id,
                };
                let mut got = None;
                let mut why = String::from("no node to ask");
                for to in d.home.iter().chain(d.relays.iter()) {
                    match self.request(to, &req).await {
                        Ok(ChatResponse::KeyPackage(kp)) => {
                            match starling_chat::inspect_key_package(&kp) {
                                Ok((id, key)) if id == identity && key == d.signature_key => {
                                    got = Some(kp);
                                    break;
                                }
                                Ok(_) => {
                                    why = format!(
                                        "{} served a key package that is not the device's",
                                        to.address
                                    )
                                }
                                Err(e) => why = format!("{}: {e}", to.address),
                            }
                        }
                        Ok(_) => why = format!("{}: unexpected answer", to.address),
                        Err(e) => why = e.to_string(),
                    }
                }
                match got {
                    Some(kp) => kps.push(kp),
                    None => {
                        return Err(ChatError::Unavailable(format!(
                            "no key package for {identity}: {why}"
                        )))
                    }
                }
            }
        }
        Ok(kps)
    }

    /// Starts a chat with `members` (accounts); returns its id.
    pub async fn create(
        self: &Arc<Self>,
        account: &AccountId,
        members: &[AccountId],
    ) -> Result<String, ChatError> {
        let mut members: Vec<AccountId> =
            members.iter().filter(|m| *m != account).copied().collect();
        members.sort();
        members.dedup();
        if members.is_empty() || members.len() > MAX_NEW_MEMBERS {
            return Err(ChatError::BadRequest(format!(
                "a chat starts with 1 to {MAX_NEW_MEMBERS} other accounts"
            )));
        }
        let held = self.require(account)?;
        let mut h = held.lock().await;
        if !h.meta.published {
            return Err(ChatError::Conflict(
                "this device is not in the key directory yet; wait for the setup to be final"
                    .into(),
            ));
        }
        // Own other devices join too.
        let mut everyone = members.clone();
        everyone.push(*account);
        let kps = self.key_packages(&h, &everyone).await?;
        let group = h.device.create_group()?;
        let out = h.device.add(&group, &kps)?;
        // No one else can commit in a group only this device is in.
        h.device.confirm(&group)?;
        let gid = hex::encode(&group);
        h.meta.groups.insert(
            gid.clone(),
            GroupMeta {
                created_ms: now_ms(),
                ..GroupMeta::default()
            },
        );
        self.save(&h)?;
        let names: Vec<String> = members.iter().map(PublicKey::to_text).collect();
        let text = format!("chat started with {}", names.join(", "));
        self.own_event(&mut h, &gid, text, out.epoch)?;
        let devices = self.member_devices(&h, &group)?;
        drop(h);
        let waits = self.enqueue(&devices, &[out.welcome.unwrap_or_default()]);
        self.bump();
        Self::await_all(waits).await?;
        Ok(gid)
    }

    /// Sends texts to a chat, in order; returns them as the conversation shows them.
    pub async fn send(
        self: &Arc<Self>,
        account: &AccountId,
        id: &str,
        texts: &[String],
    ) -> Result<Vec<Message>, ChatError> {
        if texts.is_empty() || texts.len() > MAX_BATCH {
            return Err(ChatError::BadRequest(format!(
                "send 1 to {MAX_BATCH} texts"
            )));
        }
        if texts.iter().any(|t| t.trim().is_empty()) {
            return Err(ChatError::BadRequest("a text is empty".into()));
        }
        let group = Self::group_id(id)?;
        let held = self.require(account)?;
        let mut h = held.lock().await;
        if !h.device.is_member(&group) {
            return Err(ChatError::NotFound(format!("no chat {id} on this device")));
        }
        let mut envelopes = Vec::with_capacity(texts.len());
        for t in texts {
            let mut payload = Zeroizing::new(vec![PAYLOAD_TEXT]);
            payload.extend_from_slice(t.as_bytes());
            envelopes.push(h.device.send(&group, &payload)?);
        }
        // The ratchet moved: on disk before any of it leaves, so a restart never reuses a key.
        self.save(&h)?;
        let epoch = h.device.epoch(&group).unwrap_or(0);
        let now = now_ms();
        let first = Self::next_seq(&h, id);
        let msgs: Vec<Message> = texts
            .iter()
            .zip(&envelopes)
            .enumerate()
            .map(|(i, (t, e))| Message {
                seq: first + i as u64,
                kind: "text".into(),
                from: account.to_text(),
                text: t.clone(),
                at_ms: now,
                mine: true,
                epoch,
                envelope: blake3::hash(e).to_hex().to_string(),
            })
            .collect();
        self.append(&mut h, id, msgs.clone())?;
        let devices = self.member_devices(&h, &group)?;
        drop(h);
        let waits = self.enqueue(&devices, &envelopes);
        self.bump();
        Self::await_all(waits).await?;
        Ok(msgs)
    }

    /// The relay that orders the group's commits: the first relay (or the home) of the
    /// member in the lowest leaf.
    fn orderer(&self, h: &Held, group: &[u8]) -> Result<Endpoint, ChatError> {
        let first = h
            .device
            .members(group)?
            .into_iter()
            .next()
            .ok_or_else(|| internal("a group without members"))?;
        let (account, device) = account_of_identity(&first)
            .ok_or_else(|| internal("a member's identity is malformed"))?;
        let (rec, _) = self.directory(&account)?;
        let d = rec
            .devices
            .into_iter()
            .find(|d| d.id == device)
            .ok_or_else(|| {
                ChatError::Unavailable(
                    "the group's first member has no device in the directory".into(),
                )
            })?;
        d.relays
            .first()
            .or(d.home.as_ref())
            .cloned()
            .ok_or_else(|| ChatError::Unavailable("the group's delivery relay is unknown".into()))
    }

    /// Makes a commit (`make` stages it), has the delivery relay order it, and applies and
    /// delivers it; a commit that loses its epoch is dropped, the winner taken, and `make`
    /// tried again.
    async fn commit(
        self: &Arc<Self>,
        held: &HeldRef,
        group: &[u8],
        make: &(dyn Fn(&mut Held) -> Result<Option<starling_chat::CommitOut>, ChatError> + Sync),
        note: &str,
    ) -> Result<u64, ChatError> {
        for attempt in 0..COMMIT_ATTEMPTS {
            let mut h = held.lock().await;
            let before = h.device.members(group)?;
            let Some(out) = make(&mut h)? else {
                return Ok(h.device.epoch(group)?);
            };
            let token = h.device.epoch_token(group)?;
            let orderer = self.orderer(&h, group)?;
            let req = ChatRequest::OrderCommit {
                epoch: Hash(blake3::derive_key("starling commit order epoch", &token)),
                commit: Hash(*blake3::hash(&out.commit).as_bytes()),
            };
            match self.request(&orderer, &req).await {
                Ok(_) => {}
                Err(NetError::Refused(code, _)) if code == "epoch_taken" => {
                    h.device.discard(group)?;
                    drop(h);
                    tracing::info!(
                        attempt,
                        "a concurrent commit won the epoch; taking it and retrying"
                    );
                    // Take the winner (it comes with the mail) before trying again.
                    for _ in 0..40 {
                        let mut h = held.lock().await;
                        let _ = self.take_mail(&mut h, true).await;
                        let moved = h.device.epoch(group).map_or(true, |e| e + 1 != out.epoch);
                        drop(h);
                        if moved {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
                Err(e) => {
                    h.device.discard(group)?;
                    return Err(ChatError::Unavailable(format!("the delivery relay: {e}")));
                }
            }
            let epoch = h.device.confirm(group)?;
            h.meta
                .groups
                .entry(hex::encode(group))
                .or_default()
                .rekeyed_ms = now_ms();
            self.save(&h)?;
            let gid = hex::encode(group);
            self.own_event(&mut h, &gid, note.to_string(), epoch)?;
            // Everyone before the commit gets it (a removed member learns it was removed);
            // newcomers get the welcome.
            let mut old = Vec::new();
            let mut new = Vec::new();
            let after = h.device.members(group).unwrap_or_default();
            let all = {
                let mut ids: Vec<String> = before.clone();
                ids.extend(after.iter().cloned());
                ids
            };
            let mut by_account: BTreeMap<AccountId, ()> = BTreeMap::new();
            for m in &all {
                if let Some((a, _)) = account_of_identity(m) {
                    by_account.insert(a, ());
                }
            }
            for account in by_account.keys() {
                let Ok((rec, _)) = self.directory(account) else {
                    continue;
                };
                for d in rec.devices {
                    let identity = format!("{}#{}", account.to_text(), d.id);
                    if identity == h.device.identity() {
                        continue;
                    }
                    if before.contains(&identity) {
                        old.push(d);
                    } else if after.contains(&identity) {
                        new.push(d);
                    }
                }
            }
            drop(h);
            let mut waits = self.enqueue(&old, &[out.commit]);
            if let Some(w) = out.welcome {
                waits.extend(self.enqueue(&new, &[w]));
            }
            self.bump();
            Self::await_all(waits).await?;
            return Ok(epoch);
        }
        Err(ChatError::Conflict(
            "the group kept changing; try again".into(),
        ))
    }

    /// Adds accounts (all their devices) to a chat.
    pub async fn add(
        self: &Arc<Self>,
        account: &AccountId,
        id: &str,
        accounts: &[AccountId],
    ) -> Result<u64, ChatError> {
        if accounts.is_empty() || accounts.len() > MAX_NEW_MEMBERS {
            return Err(ChatError::BadRequest(format!(
                "add 1 to {MAX_NEW_MEMBERS} accounts"
            )));
        }
        let group = Self::group_id(id)?;
        let held = self.require(account)?;
        let kps = {
            let h = held.lock().await;
            if !h.device.is_member(&group) {
                return Err(ChatError::NotFound(format!("no chat {id} on this device")));
            }
            let present = self.member_accounts(&h, &group);
            let fresh: Vec<AccountId> = accounts
                .iter()
                .filter(|a| !present.contains(&a.to_text()))
                .copied()
                .collect();
            if fresh.is_empty() {
                return Err(ChatError::Conflict("already members".into()));
            }
            self.key_packages(&h, &fresh).await?
        };
        let names: Vec<String> = accounts.iter().map(PublicKey::to_text).collect();
        let note = format!("added {}", names.join(", "));
        let g = group.clone();
        self.commit(
            &held,
            &group,
            &move |h: &mut Held| Ok(Some(h.device.add(&g, &kps)?)),
            &note,
        )
        .await
    }

    /// Removes accounts (all their devices) from a chat.
    pub async fn remove(
        self: &Arc<Self>,
        account: &AccountId,
        id: &str,
        accounts: &[AccountId],
    ) -> Result<u64, ChatError> {
        let group = Self::group_id(id)?;
        let held = self.require(account)?;
        let names: Vec<String> = accounts.iter().map(PublicKey::to_text).collect();
        let note = format!("removed {}", names.join(", "));
        let g = group.clone();
        let targets: Vec<String> = names.clone();
        self.commit(
            &held,
            &group,
            &move |h: &mut Held| {
                let members = h.device.members(&g)?;
                let gone: Vec<&str> = members
                    .iter()
                    .filter(|m| {
                        account_of_identity(m).is_some_and(|(a, _)| targets.contains(&a.to_text()))
                    })
                    .map(String::as_str)
                    .collect();
                if gone.is_empty() {
                    return Ok(None);
                }
                Ok(Some(h.device.remove(&g, &gone)?))
            },
            &note,
        )
        .await
    }

    /// Refreshes this device's keys in a chat (post-compromise security).
    pub async fn update(self: &Arc<Self>, account: &AccountId, id: &str) -> Result<u64, ChatError> {
        let group = Self::group_id(id)?;
        let held = self.require(account)?;
        let g = group.clone();
        self.commit(
            &held,
            &group,
            &move |h: &mut Held| Ok(Some(h.device.update(&g)?)),
            "keys refreshed",
        )
        .await
    }

    /// Leaves a chat: the others are told, and the first of them removes this device.
    pub async fn leave(self: &Arc<Self>, account: &AccountId, id: &str) -> Result<(), ChatError> {
        let group = Self::group_id(id)?;
        let held = self.require(account)?;
        let mut h = held.lock().await;
        if !h.device.is_member(&group) {
            return Err(ChatError::NotFound(format!("no chat {id} on this device")));
        }
        let envelope = h.device.send(&group, &[PAYLOAD_LEAVE])?;
        let devices = self.member_devices(&h, &group)?;
        h.device.forget(&group)?;
        h.meta.groups.entry(id.to_string()).or_default().left = true;
        self.save(&h)?;
        self.own_event(&mut h, id, "you left".into(), 0)?;
        drop(h);
        let waits = self.enqueue(&devices, &[envelope]);
        self.bump();
        Self::await_all(waits).await
    }

    /// Chats where this device's keys are older than the refresh interval (it has been in
    /// them that long without a commit of its own).
    fn stale_keys(&self, h: &Held) -> Vec<String> {
        let now = now_ms();
        let every = self.key_update.as_millis() as u64;
        h.meta
            .groups
            .iter()
            .filter(|(gid, g)| {
                !g.left
                    && now.saturating_sub(g.rekeyed_ms.max(g.created_ms)) >= every
                    && hex::decode(gid).is_ok_and(|id| h.device.is_member(&id))
            })
            .map(|(gid, _)| gid.clone())
            .collect()
    }

    /// Members who said they left, by chat, that this device is the one to remove: the
    /// member in the lowest leaf among those who stay does it (should two try, the delivery
    /// relay keeps one commit per epoch and the other finds nothing left to do).
    fn leavers_to_remove(h: &mut Held) -> Vec<(String, Vec<AccountId>)> {
        let mut out = Vec::new();
        for (gid, leavers) in std::mem::take(&mut h.meta.leavers) {
            let Ok(group) = hex::decode(&gid) else {
                continue;
            };
            let first_staying = h
                .device
                .members(&group)
                .unwrap_or_default()
                .into_iter()
                .find(|m| {
                    account_of_identity(m).is_some_and(|(a, _)| !leavers.contains(&a.to_text()))
                });
            if first_staying.as_deref() == Some(h.device.identity()) {
                let accounts = leavers
                    .iter()
                    .filter_map(|l| PublicKey::from_text(l).ok())
                    .collect();
                out.push((gid, accounts));
            }
        }
        out
    }

    /// The account's conversations, most recent first.
    pub async fn chats(&self, account: &AccountId) -> Result<Vec<ChatSummary>, ChatError> {
        let held = self.require(account)?;
        let h = held.lock().await;
        let mut out = Vec::new();
        for (gid, meta) in &h.meta.groups {
            let group = hex::decode(gid).unwrap_or_default();
            let history = h.history.get(gid);
            let unread = history.map_or(0, |msgs| {
                msgs.iter()
                    .filter(|m| m.seq > meta.read && !m.mine && m.kind == "text")
                    .count() as u64
            });
            out.push(ChatSummary {
                id: gid.clone(),
                members: if meta.left {
                    Vec::new()
                } else {
                    self.member_accounts(&h, &group)
                },
                epoch: h.device.epoch(&group).unwrap_or(0),
                unread,
                left: meta.left || !h.device.is_member(&group),
                last: history.and_then(|m| m.last().cloned()),
                encryption: ENCRYPTION,
            });
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.last.as_ref().map_or(0, |m| m.at_ms)));
        Ok(out)
    }

    /// A conversation's messages after `after` (a position), at most `limit`.
    pub async fn messages(
        &self,
        account: &AccountId,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, ChatError> {
        let held = self.require(account)?;
        let h = held.lock().await;
        if !h.meta.groups.contains_key(id) {
            return Err(ChatError::NotFound(format!("no chat {id} on this device")));
        }
        Ok(h.history
            .get(id)
            .map(|m| {
                m.iter()
                    .filter(|m| m.seq > after)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Marks a conversation read up to `upto` (default: all).
    pub async fn mark_read(
        &self,
        account: &AccountId,
        id: &str,
        upto: Option<u64>,
    ) -> Result<(), ChatError> {
        let held = self.require(account)?;
        let mut h = held.lock().await;
        let len = h.history.get(id).map_or(0, |m| m.len() as u64);
        let meta = h
            .meta
            .groups
            .get_mut(id)
            .ok_or_else(|| ChatError::NotFound(format!("no chat {id} on this device")))?;
        meta.read = upto.unwrap_or(len).min(len);
        self.save(&h)?;
        self.bump();
        Ok(())
    }

    /// The safety number between this account and each other member of a chat, from the
    /// device keys the ledger lists (checked with proofs).
    pub async fn safety(
        &self,
        account: &AccountId,
        id: &str,
    ) -> Result<serde_json::Value, ChatError> {
        let group = Self::group_id(id)?;
        let held = self.require(account)?;
        let members = {
            let h = held.lock().await;
            self.member_accounts(&h, &group)
        };
        let (mine, _) = self.directory(account)?;
        let my_keys: Vec<Vec<u8>> = mine
            .devices
            .iter()
            .map(|d| d.signature_key.to_vec())
            .collect();
        let me = account.to_text();
        let mut out = Vec::new();
        for m in members {
            if m == me {
                continue;
            }
            let Ok(other) = PublicKey::from_text(&m) else {
                continue;
            };
            let (rec, entry) = self.directory(&other)?;
            let keys: Vec<Vec<u8>> = rec
                .devices
                .iter()
                .map(|d| d.signature_key.to_vec())
                .collect();
            out.push(serde_json::json!({
                "account": m,
                "safety_number": starling_chat::safety_number((&me, &my_keys), (&m, &keys)),
                "devices": rec.devices.len(),
                "directory_version": rec.version,
                "proof_checked_at": {"shard": entry.shard, "height": entry.height, "state_root": entry.state_root},
            }));
        }
        Ok(serde_json::json!({"chat": id, "encryption": ENCRYPTION, "members": out}))
    }
}

/// What the chat shows as its encryption.
pub const ENCRYPTION: &str = "MLS (RFC 9420), X25519 + AES-128-GCM + Ed25519, end to end";
