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
//!   state that took it is on disk. Each device also keeps a mailbox per chat, named to its
//!   members inside the group, where they deposit that chat's mail (`chat_mail`).
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
use rand_core::{OsRng, RngCore as _};
use serde::{Deserialize, Serialize};
use starling_chat::{Device, Received};
use starling_chat_relay::mailbox::{now_ms, write_atomic};
use starling_chat_relay::ChatServices;
use starling_crypto::SecretKey;
use starling_ledger::records::{ChatKeysRecord, StateKey};
use starling_net::chat::{self as chatnet, ChatNet, NetError};
use starling_node_api::Node;
use starling_protocol::chat::{mailbox_id, ChatRequest, ChatResponse, MAX_ORDER_WORK_BITS};
use starling_types::{AccountId, ChatDevice, Decode as _, Endpoint, Hash, KeyType, PublicKey};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

mod chat_mail;
mod deposits;
mod devices;
mod groups;
mod inbox;
mod ordering;
mod outbox;
mod presence;
mod store;
mod sync;
mod work;
pub use sync::MAX_IMPORT_PARTS;

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
/// Envelopes kept for a commit still on the way (a group this device is in, an epoch ahead):
/// most of them, and most bytes.
const MAX_WAITING: (usize, usize) = (256, 8 << 20);
/// Envelopes kept for a welcome that may be on the way (a group this device is not in; or
/// junk, which is why there are few): most of them, and most bytes.
const MAX_UNKNOWN: (usize, usize) = (32, 1 << 20);
/// Epochs ahead of the group that an envelope may be and still wait (a commit or two may be
/// on the way; beyond that it is refused).
const MAX_EPOCHS_AHEAD: u64 = 4;
/// How long a member the key directory listed is taken as listed without asking again (a
/// device dropped from the directory is refused after at most this long).
const VOUCHED_FOR: Duration = Duration::from_secs(30);
/// Most members remembered as listed.
const MAX_VOUCHED: usize = 4_096;
/// How long an envelope waits for what it needs.
const DEFER_FOR_MS: u64 = 10 * 60 * 1000;
/// Most texts in one send.
pub const MAX_BATCH: usize = 256;
/// Most members named when a chat is created or grows.
pub const MAX_NEW_MEMBERS: usize = 49;
/// Received commits kept while their delivery relay is asked whether they won, and how long
/// one the relay knows nothing of is kept (an honest committer orders before it delivers).
const MAX_UNCONFIRMED: usize = 64;
const UNCONFIRMED_FOR_MS: u64 = 30_000;
/// Confirmed commits remembered.
const MAX_CONFIRMED: usize = 256;
/// How long after its publication a device not listed yet is published again.
const REPUBLISH: Duration = Duration::from_secs(20);
const REPUBLISH_MOST: Duration = Duration::from_secs(3_600);
/// How often a commit of this device's that got no answer is offered again.
const SETTLE_RETRY: Duration = Duration::from_secs(5);
/// How long mail waits for a commit before the delivery relay is asked for it.
const WINNER_AFTER: Duration = Duration::from_secs(5);
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
    /// Its history so far came from another device of the account, and more of it may: up
    /// to that device's position `synced_upto`.
    #[serde(default)]
    synced: bool,
    #[serde(default)]
    synced_upto: u64,
    /// Member accounts this device has heard from in this chat since it joined: a text or a
    /// commit of theirs it could open, or the welcome they signed. Only those hold this
    /// device's epoch secrets; a member named in the group but never heard from may not be
    /// in it at all (a forked or made-up group shows its members so). At most the members.
    #[serde(default)]
    heard: std::collections::BTreeSet<String>,
    /// This device joined and has not yet told the others (with a text they can open).
    #[serde(default)]
    announce: bool,
    /// The mailbox each other member device (identity) named for this chat (hex id; see
    /// `chat_mail`). At most the members.
    #[serde(default)]
    mailboxes: BTreeMap<String, String>,
    /// The members (identities) this device has told its own mailbox for this chat.
    #[serde(default)]
    told: std::collections::BTreeSet<String>,
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
    /// This device's commits not settled by their delivery relay yet, by chat.
    #[serde(default)]
    pending: BTreeMap<String, PendingCommit>,
    /// Where envelopes waiting for a commit or welcome were kept before they moved beside
    /// the device state (read once, to carry them over; never written).
    #[serde(default, skip_serializing)]
    deferred: VecDeque<(u64, String)>,
}

/// A commit of this device's that its group's delivery relay has not settled: kept with the
/// device state (which holds the staged commit itself) from before the relay hears of it
/// until it is confirmed and queued for delivery, or dropped, so that a crash at any step
/// recovers: on restart it is offered again, and the relay's answer (it won, or which commit
/// did) settles it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct PendingCommit {
    /// The commit, and the welcome for new members (hex).
    commit: String,
    welcome: Option<String>,
    /// What the conversation shows once it is confirmed.
    note: String,
    /// The members (identities) before it: they get the commit.
    before: Vec<String>,
    /// The delivery relay it is offered to (`<key>@<address>`), fixed when it was made: a
    /// member who moves relays meanwhile cannot make another relay order the epoch anew.
    #[serde(default)]
    orderer: String,
}

/// Stops the process at a named step when `STARLING_CHAT_CRASH_AT` names it: how the
/// multi-process tests kill a node at each step of ordering a commit.
fn crash_point(step: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT
        .get_or_init(|| std::env::var("STARLING_CHAT_CRASH_AT").ok())
        .as_deref()
        == Some(step)
    {
        tracing::error!(step, "stopping here, as STARLING_CHAT_CRASH_AT asks");
        std::process::abort();
    }
}

/// Whether `STARLING_CHAT_FAULT` names `what`: how the multi-process tests make a node
/// dishonest in one way (`commit-unordered`: it delivers its commits without having its
/// group's delivery relay order them).
fn faulty(what: &str) -> bool {
    static FAULT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    FAULT
        .get_or_init(|| std::env::var("STARLING_CHAT_FAULT").ok())
        .as_deref()
        == Some(what)
}

/// Envelopes that arrived before the commit or welcome they need (when, hex bytes), in two
/// bounded queues so junk for unknown groups cannot push out what waits for a commit. Kept
/// in their own sealed file beside the device state, written only when they change.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Deferred {
    /// For a group this device is in, at an epoch it has not reached.
    waiting: VecDeque<(u64, String)>,
    /// For a group this device is not in.
    unknown: VecDeque<(u64, String)>,
    /// Changed since written.
    #[serde(skip)]
    dirty: std::sync::atomic::AtomicBool,
}

impl Deferred {
    fn contains(&self, hexed: &str) -> bool {
        self.waiting
            .iter()
            .chain(&self.unknown)
            .any(|(_, e)| e == hexed)
    }

    /// Keeps `hexed` in the queue `waiting` says; returns how many older ones went to make
    /// room.
    fn keep(&mut self, waiting: bool, at: u64, hexed: String) -> u64 {
        let ((max, max_bytes), queue) = if waiting {
            (MAX_WAITING, &mut self.waiting)
        } else {
            (MAX_UNKNOWN, &mut self.unknown)
        };
        queue.push_back((at, hexed));
        let mut dropped = 0;
        while queue.len() > max || queue.iter().map(|(_, e)| e.len() / 2).sum::<usize>() > max_bytes
        {
            queue.pop_front();
            dropped += 1;
        }
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        dropped
    }

    fn len(&self) -> usize {
        self.waiting.len() + self.unknown.len()
    }
}

/// An account's chat, open while it is logged in.
struct Held {
    account: AccountId,
    seal: Zeroizing<[u8; 32]>,
    device: Device,
    meta: Meta,
    mailbox_key: SecretKey,
    /// The key deposits for this device are sealed to (from the mailbox seed), and the keys
    /// of the last few sealers whose deposits it opened.
    deposit_key: Option<starling_crypto::seal::SealSecret>,
    /// The key and id of this device's mailbox for each chat it is in (see `chat_mail`).
    chat_keys: BTreeMap<String, (SecretKey, Hash)>,
    /// Where the next round of fetching chat mailboxes from relays starts.
    chat_poll_next: usize,
    box_keys: starling_crypto::seal::BoxKeys,
    history: BTreeMap<String, Vec<Message>>,
    in_history: HashSet<String>,
    /// Sealed history records not yet written.
    unwritten: Vec<u8>,
    /// When each relay's stock of this device's key packages was last counted.
    relay_checked: HashMap<String, std::time::Instant>,
    /// Members (identity and signature key) the key directory listed lately, and when.
    vouched: HashMap<(String, Vec<u8>), std::time::Instant>,
    /// Envelopes waiting for a commit or a welcome.
    deferred: Deferred,
    /// When each pending commit was last offered again.
    retry_at: HashMap<String, std::time::Instant>,
    /// When the delivery relays were last asked for commits not received.
    winners_asked: Option<std::time::Instant>,
    /// When the account's other devices were last looked up.
    own_checked: Option<std::time::Instant>,
    /// Commits received that the group's delivery relay has not confirmed yet (when, bytes),
    /// and hashes of those it confirmed (newest last).
    unconfirmed: Vec<(u64, Vec<u8>)>,
    confirmed: VecDeque<String>,
    /// The account's key while it is logged in here (to publish the device again), and when
    /// the device's publication was last sent.
    publisher: Option<Arc<SecretKey>>,
    publish_sent: Option<std::time::Instant>,
    /// Publications sent again since the ledger last listed the device as it is.
    republished: u32,
    closed: bool,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Held {
    /// A device just opened: its state and meta, with nothing yet in memory beside them.
    fn new(
        account: AccountId,
        seal: Zeroizing<[u8; 32]>,
        device: Device,
        meta: Meta,
        mailbox_key: SecretKey,
    ) -> Held {
        let deposit_key = deposits::seal_secret(&meta.mailbox_seed);
        Held {
            account,
            seal,
            device,
            meta,
            mailbox_key,
            deposit_key,
            chat_keys: BTreeMap::new(),
            chat_poll_next: 0,
            box_keys: Default::default(),
            history: BTreeMap::new(),
            in_history: HashSet::new(),
            unwritten: Vec::new(),
            relay_checked: HashMap::new(),
            vouched: HashMap::new(),
            deferred: Deferred::default(),
            retry_at: HashMap::new(),
            winners_asked: None,
            own_checked: None,
            unconfirmed: Vec::new(),
            confirmed: VecDeque::new(),
            publisher: None,
            publish_sent: None,
            republished: 0,
            closed: false,
        }
    }
}

type HeldRef = Arc<tokio::sync::Mutex<Held>>;
/// Mail taken from a mailbox: where it waited (a relay, or this node), whose it is (a chat's
/// mailbox, or the directory one) and the mail in order.
type MailBatch = (Option<Endpoint>, Option<String>, Vec<(u64, Vec<u8>)>);
/// A device envelopes are sent to, and its account.
pub(crate) type Recipient = (AccountId, ChatDevice);

/// A request to one of the device's relays about its key packages: a count, or an upload.
struct RelayJob {
    relay: Endpoint,
    request: ChatRequest,
    upload: bool,
}

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
    /// Members this device has not heard from in this chat since it joined (see
    /// `GroupMeta::heard`): until they speak nothing shows they are in it.
    pub not_heard: Vec<String>,
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
    /// The X25519 key deposits for it are sealed to (hex), if it has one.
    pub seal_key: Option<String>,
    pub home: Option<String>,
    pub relays: Vec<String>,
}

/// The account part of an MLS identity `<account>#<device>`.
fn account_of_identity(identity: &str) -> Option<(AccountId, u32)> {
    let (a, d) = identity.rsplit_once('#')?;
    Some((PublicKey::from_text(a).ok()?, d.parse().ok()?))
}

/// How the delivery relay settled a commit of this device's.
pub(crate) enum Settled {
    /// There was none.
    Nothing,
    /// It won its epoch: applied, and queued for delivery.
    Won(u64, Vec<outbox::Wait>),
    /// Another won: this one is dropped, and the winner taken (if the relay still had it).
    Lost { applied: bool },
    /// The relay refused it (so nobody has it): dropped.
    Refused(String),
    /// No answer: it stays, and is offered again.
    Unanswered(String),
}

/// Payload kinds inside MLS application messages.
const PAYLOAD_TEXT: u8 = 0;
const PAYLOAD_LEAVE: u8 = 1;
/// A device that joined says so: its first message, which proves to the others that it
/// holds their epoch's secrets (its mailbox for the chat follows, as in [`PAYLOAD_MAILBOX`]).
const PAYLOAD_JOINED: u8 = 2;
/// A member names its mailbox for the chat (the 32-byte id follows; a join says it too).
const PAYLOAD_MAILBOX: u8 = 3;

/// The chat of every account this node holds.
pub struct Chat {
    node: Node,
    net: ChatNet,
    /// Where requests to other nodes go from: a swarm under a random key, replaced every
    /// `anon_key`, so the nodes it deposits with learn neither the sending account nor the
    /// sending node's key, and link its requests for that long at most (they see the
    /// address it connects from).
    anon: chatnet::AnonNet,
    services: Arc<ChatServices>,
    dir: PathBuf,
    home: Endpoint,
    relays: Vec<Endpoint>,
    /// Signs the device's publication in the key directory.
    accounts: Option<Arc<starling_accounts::Accounts>>,
    open: Mutex<HashMap<AccountId, HeldRef>>,
    outboxes: Mutex<HashMap<outbox::OutboxKey, tokio::sync::mpsc::Sender<outbox::Queued>>>,
    /// Envelopes waiting for their deposit, on disk.
    outbox_log: outbox::OutboxLog,
    changed: tokio::sync::watch::Sender<u64>,
    /// How often a device refreshes its keys in each group (post-compromise security).
    key_update: Duration,
    /// Envelopes refused (damaged, replayed, undecryptable), for the metrics.
    pub rejected: std::sync::atomic::AtomicU64,
    /// Proof of work found for commit offers, and what relays asked.
    work: Mutex<work::WorkMemo>,
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
    /// How often the key this node sends requests to other nodes under is replaced.
    pub anon_key: Duration,
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
        accounts: Option<Arc<starling_accounts::Accounts>>,
        place: ChatPlace,
    ) -> Result<Arc<Chat>, starling_config::SetupError> {
        let ChatPlace {
            home,
            relays,
            key_update,
            anon_key,
        } = place;
        let (changed, _) = tokio::sync::watch::channel(0);
        let anon = chatnet::AnonNet::new(anon_key)?;
        let dir = data_dir.join("chat");
        std::fs::create_dir_all(&dir).map_err(|e| starling_config::SetupError::io(&dir, e))?;
        let outbox_path = dir.join("outbox.log");
        let (outbox_log, resumed) = outbox::OutboxLog::open(&outbox_path).map_err(|e| {
            starling_config::SetupError::io(&outbox_path, std::io::Error::other(e.to_string()))
        })?;
        let chat = Arc::new(Chat {
            node,
            net,
            anon,
            services,
            dir,
            home,
            relays,
            accounts,
            open: Mutex::new(HashMap::new()),
            outboxes: Mutex::new(HashMap::new()),
            outbox_log,
            changed,
            key_update,
            rejected: std::sync::atomic::AtomicU64::new(0),
            work: Mutex::default(),
        });
        chat.resume(resumed);
        Ok(chat)
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

    /// Offers `commit` for the epoch whose token is `token` at `orderer`, with the proof of
    /// work relays ask of a new epoch to begin with (or what this relay asked last), then
    /// (once more) what this one asks, if that is within [`MAX_ORDER_WORK_BITS`]. Work runs
    /// off the async threads and is remembered per relay and epoch, so an offer made again
    /// does not do it again.
    async fn offer(
        &self,
        orderer: &Endpoint,
        token: [u8; 32],
        commit: Vec<u8>,
    ) -> Result<Result<ChatResponse, NetError>, ChatError> {
        let relay = orderer.node;
        let epoch = starling_protocol::chat::order_epoch(&token).map_err(internal)?;
        let memo = || self.work.lock().unwrap_or_else(|p| p.into_inner());
        let mut bits = memo().start_bits(&relay);
        loop {
            let found = memo().found(&relay, &epoch, bits);
            let work = match found {
                Some(nonce) => nonce,
                None => {
                    let nonce = tokio::task::spawn_blocking(move || {
                        starling_protocol::chat::find_order_work(&relay, &epoch, bits, 0)
                    })
                    .await
                    .map_err(internal)?;
                    memo().keep(relay, epoch, bits, nonce);
                    nonce
                }
            };
            let req = ChatRequest::order_worked(&relay, &token, commit.clone(), work)
                .map_err(internal)?;
            match self.request(orderer, &req).await {
                Ok(ChatResponse::WorkNeeded { bits: more })
                    if more > bits && more <= MAX_ORDER_WORK_BITS =>
                {
                    memo().asked(relay, more);
                    bits = more
                }
                Ok(ChatResponse::WorkNeeded { bits: more }) => {
                    return Ok(Err(NetError::Refused(
                        "work_needed".into(),
                        format!("the relay asks {more} bits of work for a new epoch"),
                    )))
                }
                other => return Ok(other),
            }
        }
    }

    /// Answers a chat protocol request (its encoded bytes) from `from` as this node's
    /// services do.
    pub fn serve(&self, from: starling_protocol::chat::Requester, request: &[u8]) -> Vec<u8> {
        starling_types::Encode::to_bytes(&self.services.serve(from, request))
    }

    /// Prometheus text for chat on this node.
    pub fn metrics(&self) -> String {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner()).len();
        let (queued, queued_bytes) = self.outbox_log.queued();
        format!(
            "{}# HELP starling_chat_open_devices Chat devices open (their accounts logged in).\n# TYPE starling_chat_open_devices gauge\nstarling_chat_open_devices {open}\n# HELP starling_chat_refused_envelopes_total Envelopes this node's devices refused (damaged, replayed, undecryptable).\n# TYPE starling_chat_refused_envelopes_total counter\nstarling_chat_refused_envelopes_total {}\n# HELP starling_chat_outbox_envelopes Envelopes this node's devices sent that wait for a node to take them.\n# TYPE starling_chat_outbox_envelopes gauge\nstarling_chat_outbox_envelopes {queued}\n# HELP starling_chat_outbox_bytes Bytes of those envelopes (on disk).\n# TYPE starling_chat_outbox_bytes gauge\nstarling_chat_outbox_bytes {queued_bytes}\n",
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
}

/// What the chat shows as its encryption.
pub const ENCRYPTION: &str = "MLS (RFC 9420), X25519 + AES-128-GCM + Ed25519, end to end";
