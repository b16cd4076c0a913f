//! What a node keeps for chat on behalf of others: mailboxes of ciphertext, one-use key
//! packages, and the commit order of the groups it is the delivery relay of.
//!
//! - A **mailbox** is named by an opaque 32-byte id (the hash of a key only its device holds,
//!   unrelated to the account key). Anyone may deposit; only the holder of the mailbox key
//!   takes mail out (see `starling_net::chat`). Mail is ciphertext the node cannot read, kept until it is
//!   acknowledged or expires, within per-mailbox and per-node bounds. It is on disk, one
//!   append-only log per mailbox, synced before a deposit is acknowledged.
//! - **Key packages** are stored per device and handed out once each.
//! - **Commit order** ([`crate::order`]).

use crate::known::{Known, MAX_KNOWN};
use starling_types::{AccountId, Hash};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

// Largest envelope (an MLS message is at most 256 KiB), most messages waiting in one mailbox,
// largest key package: the protocol's limits.
pub use starling_protocol::chat::{
    now_ms, MAX_COMMIT_BYTES, MAX_ENVELOPE_BYTES, MAX_KEY_PACKAGE_BYTES, MAX_MAILBOX_MESSAGES,
};
/// Most bytes waiting in one mailbox.
pub const MAX_MAILBOX_BYTES: u64 = 64 * 1024 * 1024;
/// Most mailboxes a node keeps mail for.
pub const MAX_MAILBOXES: usize = 100_000;
/// Most bytes of mail a node keeps in all.
pub const MAX_TOTAL_BYTES: u64 = 512 * 1024 * 1024;
/// Mail not taken within this time is dropped.
pub const MAIL_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
/// Key packages kept per device.
pub const MAX_KEY_PACKAGES: usize = 100;
/// Devices a node keeps key packages for.
pub const MAX_KEY_PACKAGE_DEVICES: usize = 100_000;

/// Header of a mail record: length, sequence number, expiry, checksum.
const RECORD_HEADER: usize = 4 + 8 + 8 + 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    #[error("an envelope is over {MAX_ENVELOPE_BYTES} bytes")]
    TooLarge,
    #[error("the mailbox is full")]
    Full,
    #[error("this node keeps no more mail")]
    NodeFull,
    #[error("nothing to deposit")]
    Empty,
    #[error("no key package left for that device")]
    NoKeyPackage,
    #[error("this node orders no new group epochs until its oldest expire")]
    OrderFull,
    #[error("storage: {0}")]
    Io(String),
}

impl MailboxError {
    /// A short machine-readable code, the same on the wire and in the API.
    pub fn code(&self) -> &'static str {
        match self {
            MailboxError::TooLarge => "too_large",
            MailboxError::Full => "mailbox_full",
            MailboxError::NodeFull => "node_full",
            MailboxError::Empty => "empty",
            MailboxError::NoKeyPackage => "no_key_package",
            MailboxError::OrderFull => "order_full",
            MailboxError::Io(_) => "storage",
        }
    }
}

pub(crate) fn io(e: std::io::Error) -> MailboxError {
    MailboxError::Io(e.to_string())
}

fn checksum(seq: u64, expires: u64, bytes: &[u8]) -> [u8; 8] {
    let h = blake3::Hasher::new_derive_key("starling mailbox record v1")
        .update(&seq.to_be_bytes())
        .update(&expires.to_be_bytes())
        .update(bytes)
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.as_bytes()[..8]);
    out
}

fn record(seq: u64, expires: u64, bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&expires.to_be_bytes());
    out.extend_from_slice(&checksum(seq, expires, bytes));
    out.extend_from_slice(bytes);
}

/// One piece of mail.
#[derive(Debug, Clone)]
pub struct Mail {
    pub seq: u64,
    pub bytes: Vec<u8>,
    expires_ms: u64,
}

#[derive(Debug, Default)]
struct Mailbox {
    mail: VecDeque<Mail>,
    bytes: u64,
    /// Acknowledged records still in the log file (compacted away in batches).
    dead: usize,
    /// Everything up to here was acknowledged.
    acked: u64,
}

#[derive(Debug)]
struct Inner {
    /// Mailboxes holding mail; one that empties (taken or expired) is dropped, files and all.
    boxes: HashMap<Hash, Mailbox>,
    /// Bytes of mail in `boxes`, exactly.
    total: u64,
    /// The next sequence number, node-wide: numbers never repeat, even for a mailbox that
    /// was dropped and comes back, so a reader's position stays meaningful.
    next: u64,
    /// Sequence numbers below this may have been handed out (on disk in `next-seq`).
    reserved: u64,
    /// When every mailbox was last swept for expired mail.
    swept: Option<std::time::Instant>,
    /// Mailboxes whose holders took mail lately: deposits to them do not open a new
    /// mailbox, even while they are empty and forgotten (kept on disk across restarts).
    known: Known,
}

/// Sequence numbers reserved on disk at a time.
const SEQ_RESERVE: u64 = 1 << 20;
/// Shortest time between two sweeps of every mailbox (a sweep is made when the node is
/// full, so a full node is not made to sweep on every deposit).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Every mailbox a node keeps.
#[derive(Debug)]
pub struct Mailboxes {
    dir: PathBuf,
    inner: Mutex<Inner>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Mailboxes {
    /// Opens (or creates) the mailboxes under `dir`, dropping expired mail and a torn last
    /// record (a deposit cut short by a crash was never acknowledged).
    pub fn open(dir: &Path) -> Result<Mailboxes, MailboxError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        starling_config::fs::remove_stale_temporaries(dir);
        let mut inner = Inner {
            boxes: HashMap::new(),
            total: 0,
            next: 0,
            reserved: 0,
            swept: None,
            known: Known::open(dir, MAX_KNOWN, now_ms()),
        };
        let now = now_ms();
        let mut ids = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(hex_id) = name
                .strip_suffix(".log")
                .or_else(|| name.strip_suffix(".state"))
            else {
                continue;
            };
            if let Ok(id) = Hash::from_hex(hex_id) {
                ids.insert(id);
            }
        }
        let mut next = read_u64(&dir.join(SEQ_FILE)).unwrap_or(0);
        for id in ids {
            let path = dir.join(format!("{}.log", id.to_hex()));
            let state = dir.join(format!("{}.state", id.to_hex()));
            // What was acknowledged, and the next sequence number then.
            let (mut seen, mut acked) = (0, 0);
            if let Ok(b) = std::fs::read(&state) {
                if b.len() == 16 {
                    seen = u64::from_be_bytes(b[..8].try_into().unwrap_or_default());
                    acked = u64::from_be_bytes(b[8..].try_into().unwrap_or_default());
                }
            }
            let (mut mailbox, valid_len, file_len) = if path.exists() {
                let (m, valid, last) = Self::load(&path, now, acked)?;
                seen = seen.max(last + 1);
                (m, valid, std::fs::metadata(&path).map_err(io)?.len())
            } else {
                (Mailbox::default(), 0, 0)
            };
            next = next.max(seen);
            mailbox.acked = acked;
            if mailbox.mail.is_empty() {
                // Taken or expired: nothing to keep.
                remove_if_there(&path)?;
                remove_if_there(&state)?;
                continue;
            }
            if valid_len < file_len {
                tracing::warn!(mailbox = %id.to_hex(), "dropping a torn record at the end of a mailbox");
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(valid_len))
                    .map_err(io)?;
            }
            inner.total += mailbox.bytes;
            inner.boxes.insert(id, mailbox);
        }
        inner.next = next.max(1);
        inner.reserved = inner.next;
        Self::reserve(dir, &mut inner, 0)?;
        let (changed, _) = tokio::sync::watch::channel(0);
        Ok(Mailboxes {
            dir: dir.to_path_buf(),
            inner: Mutex::new(inner),
            changed,
        })
    }

    /// Reads a mailbox log: its live mail, how many leading bytes are whole records, and the
    /// highest sequence number in them.
    fn load(path: &Path, now: u64, acked: u64) -> Result<(Mailbox, u64, u64), MailboxError> {
        let mut data = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(io)?;
        let mut mailbox = Mailbox::default();
        let mut at = 0usize;
        let mut last = 0;
        while data.len() - at >= RECORD_HEADER {
            let h = &data[at..at + RECORD_HEADER];
            let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
            let seq = u64::from_be_bytes(h[4..12].try_into().unwrap_or_default());
            let expires = u64::from_be_bytes(h[12..20].try_into().unwrap_or_default());
            let sum = &h[20..28];
            if len > MAX_ENVELOPE_BYTES || data.len() - at - RECORD_HEADER < len {
                break;
            }
            let bytes = &data[at + RECORD_HEADER..at + RECORD_HEADER + len];
            if checksum(seq, expires, bytes) != sum {
                break;
            }
            at += RECORD_HEADER + len;
            last = last.max(seq);
            if expires > now && seq > acked {
                mailbox.bytes += len as u64;
                mailbox.mail.push_back(Mail {
                    seq,
                    bytes: bytes.to_vec(),
                    expires_ms: expires,
                });
            } else {
                mailbox.dead += 1;
            }
        }
        Ok((mailbox, at as u64, last))
    }

    /// Makes sure sequence numbers up to `inner.next + n` are reserved on disk, so none is
    /// handed out twice across a restart.
    fn reserve(dir: &Path, inner: &mut Inner, n: u64) -> Result<(), MailboxError> {
        if inner.next + n < inner.reserved {
            return Ok(());
        }
        let upto = inner.next + n + SEQ_RESERVE;
        write_atomic(&dir.join(SEQ_FILE), &upto.to_be_bytes())?;
        inner.reserved = upto;
        Ok(())
    }

    /// Drops expired mail in every mailbox, and the mailboxes left empty.
    fn sweep(&self, inner: &mut Inner, now: u64) -> Result<(), MailboxError> {
        inner.swept = Some(std::time::Instant::now());
        let Inner { boxes, total, .. } = inner;
        let mut empty = Vec::new();
        for (id, mailbox) in boxes.iter_mut() {
            *total -= Self::expire(mailbox, now);
            if mailbox.mail.is_empty() {
                empty.push(*id);
            }
        }
        for id in empty {
            self.drop_mailbox(boxes, &id)?;
        }
        Ok(())
    }

    /// Forgets an empty mailbox, and its files.
    fn drop_mailbox(
        &self,
        boxes: &mut HashMap<Hash, Mailbox>,
        id: &Hash,
    ) -> Result<(), MailboxError> {
        boxes.remove(id);
        remove_if_there(&self.log_path(id))?;
        remove_if_there(&self.dir.join(format!("{}.state", id.to_hex())))
    }

    /// Whether the node knows mailbox `id`: it keeps mail there now, or its holder took
    /// mail lately.
    pub fn is_known(&self, id: &Hash) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.boxes.contains_key(id) || inner.known.contains(id)
    }

    fn remember(inner: &mut Inner, id: &Hash, now: u64) {
        inner.known.remember(id, now);
    }

    /// Mailboxes holding mail.
    pub fn count(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .boxes
            .len()
    }

    fn log_path(&self, id: &Hash) -> PathBuf {
        self.dir.join(format!("{}.log", id.to_hex()))
    }

    /// Notified (the value changes) on every deposit.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Stores `envelopes` in mailbox `id`, in order, on disk before returning their first
    /// sequence number. All or nothing.
    pub fn deposit(&self, id: &Hash, envelopes: &[Vec<u8>]) -> Result<u64, MailboxError> {
        if envelopes.is_empty() {
            return Err(MailboxError::Empty);
        }
        if envelopes.iter().any(|e| e.len() > MAX_ENVELOPE_BYTES) {
            return Err(MailboxError::TooLarge);
        }
        let size: u64 = envelopes.iter().map(|e| e.len() as u64).sum();
        let now = now_ms();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let full = |i: &Inner| {
            (!i.boxes.contains_key(id) && i.boxes.len() >= MAX_MAILBOXES)
                || i.total + size > MAX_TOTAL_BYTES
        };
        if full(&inner) && inner.swept.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            self.sweep(&mut inner, now)?;
        }
        if full(&inner) {
            return Err(MailboxError::NodeFull);
        }
        Self::reserve(&self.dir, &mut inner, envelopes.len() as u64)?;
        let first = inner.next;
        let Inner { boxes, total, .. } = &mut *inner;
        let mailbox = boxes.entry(*id).or_default();
        let expired = Self::expire(mailbox, now);
        *total -= expired;
        if mailbox.mail.len() + envelopes.len() > MAX_MAILBOX_MESSAGES
            || mailbox.bytes + size > MAX_MAILBOX_BYTES
        {
            return Err(MailboxError::Full);
        }
        let expires = now + MAIL_TTL.as_millis() as u64;
        let mut buf = Vec::with_capacity(size as usize + envelopes.len() * RECORD_HEADER);
        for (i, e) in envelopes.iter().enumerate() {
            record(first + i as u64, expires, e, &mut buf);
        }
        // Whole or not at all: a failed write is cut back, so the next deposit does not
        // land after half a record (which a restart would cut off, with it).
        starling_config::fs::append_whole(&self.log_path(id), &buf).map_err(io)?;
        for (i, e) in envelopes.iter().enumerate() {
            mailbox.mail.push_back(Mail {
                seq: first + i as u64,
                bytes: e.clone(),
                expires_ms: expires,
            });
        }
        mailbox.bytes += size;
        *total += size;
        inner.next = first + envelopes.len() as u64;
        drop(inner);
        self.changed.send_modify(|n| *n += 1);
        Ok(first)
    }

    fn expire(mailbox: &mut Mailbox, now: u64) -> u64 {
        let mut freed = 0;
        while mailbox.mail.front().is_some_and(|m| m.expires_ms <= now) {
            if let Some(m) = mailbox.mail.pop_front() {
                freed += m.bytes.len() as u64;
                mailbox.dead += 1;
            }
        }
        mailbox.bytes -= freed;
        freed
    }

    /// Mail in `id` after sequence number `after`, oldest first, at most `max_bytes` (but
    /// always at least one piece if there is one); and whether more is waiting.
    pub fn fetch(&self, id: &Hash, after: u64, max_bytes: usize) -> (Vec<Mail>, bool) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mailbox) = inner.boxes.get(id) else {
            return (Vec::new(), false);
        };
        let now = now_ms();
        let mut out = Vec::new();
        let mut size = 0;
        for m in mailbox
            .mail
            .iter()
            .filter(|m| m.seq > after && m.expires_ms > now)
        {
            if !out.is_empty() && size + m.bytes.len() > max_bytes {
                return (out, true);
            }
            size += m.bytes.len();
            out.push(m.clone());
        }
        (out, false)
    }

    /// Drops the mail of `id` up to sequence number `upto`: its holder has it, and is known
    /// from now on if the mailbox held mail. (Anyone can sign a fetch for a mailbox of a
    /// key they just made: that alone must not make it known, or its deposits would skip
    /// the quota on new mailboxes.)
    pub fn ack(&self, id: &Hash, upto: u64) -> Result<(), MailboxError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.boxes.contains_key(id) {
            Self::remember(&mut inner, id, now_ms());
        }
        let next = inner.next;
        let Inner { boxes, total, .. } = &mut *inner;
        let Some(mailbox) = boxes.get_mut(id) else {
            return Ok(());
        };
        let mut freed = 0;
        while mailbox.mail.front().is_some_and(|m| m.seq <= upto) {
            if let Some(m) = mailbox.mail.pop_front() {
                freed += m.bytes.len() as u64;
                mailbox.dead += 1;
            }
        }
        mailbox.bytes -= freed;
        *total -= freed;
        if freed == 0 && upto <= mailbox.acked {
            return Ok(());
        }
        if mailbox.mail.is_empty() {
            // Everything taken: the mailbox goes (sequence numbers are node-wide).
            return self.drop_mailbox(boxes, id);
        }
        mailbox.acked = mailbox.acked.max(upto.min(next.saturating_sub(1)));
        let path = self.log_path(id);
        let mut state = next.to_be_bytes().to_vec();
        state.extend_from_slice(&mailbox.acked.to_be_bytes());
        write_atomic(&self.dir.join(format!("{}.state", id.to_hex())), &state)?;
        if mailbox.dead >= 256 {
            let mut buf = Vec::new();
            for m in &mailbox.mail {
                record(m.seq, m.expires_ms, &m.bytes, &mut buf);
            }
            write_atomic(&path, &buf)?;
            mailbox.dead = 0;
        }
        Ok(())
    }

    /// Pieces of mail waiting in `id`.
    pub fn waiting(&self, id: &Hash) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.boxes.get(id).map_or(0, |m| m.mail.len())
    }

    /// Bytes of mail kept in all.
    pub fn total_bytes(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

/// The file holding how far sequence numbers are reserved.
const SEQ_FILE: &str = "next-seq";

fn read_u64(path: &Path) -> Option<u64> {
    let b = std::fs::read(path).ok()?;
    Some(u64::from_be_bytes(b.as_slice().try_into().ok()?))
}

fn remove_if_there(path: &Path) -> Result<(), MailboxError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Writes a file whole or not at all (see [`starling_config::fs`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MailboxError> {
    starling_config::fs::write_private(path, bytes, starling_config::fs::Existing::Replace)
        .map_err(io)
}

/// A device: its account and number.
type DeviceKey = (AccountId, u32);

/// One-use key packages, per device, kept on disk.
#[derive(Debug)]
pub struct KeyPackages {
    dir: PathBuf,
    map: Mutex<BTreeMap<DeviceKey, VecDeque<Vec<u8>>>>,
    /// Hashes of packages handed out lately (newest last): put again, they are ignored, so
    /// a replayed package never pushes out a fresh one.
    taken: Mutex<(std::collections::HashSet<Hash>, VecDeque<Hash>)>,
}

/// Handed-out packages remembered against being put again.
const MAX_TAKEN_REMEMBERED: usize = 100_000;

impl KeyPackages {
    pub fn open(dir: &Path) -> Result<KeyPackages, MailboxError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut map = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some((account, device)) = name.strip_suffix(".kp").and_then(|n| n.rsplit_once('-'))
            else {
                continue;
            };
            let (Ok(account), Ok(device)) = (
                starling_types::PublicKey::from_text(account),
                device.parse::<u32>(),
            ) else {
                continue;
            };
            let data = std::fs::read(&path).map_err(io)?;
            let mut list = VecDeque::new();
            let mut r = starling_types::Reader::new(&data);
            while r.remaining() > 0 && list.len() < MAX_KEY_PACKAGES {
                match r.bytes32("key package", MAX_KEY_PACKAGE_BYTES) {
                    Ok(b) => list.push_back(b.to_vec()),
                    Err(_) => break,
                }
            }
            map.insert((account, device), list);
        }
        Ok(KeyPackages {
            dir: dir.to_path_buf(),
            map: Mutex::new(map),
            taken: Mutex::default(),
        })
    }

    fn save(&self, key: &(AccountId, u32), list: &VecDeque<Vec<u8>>) -> Result<(), MailboxError> {
        let mut buf = Vec::new();
        for kp in list {
            starling_types::codec::put::bytes32(&mut buf, kp);
        }
        let path = self.dir.join(format!("{}-{}.kp", key.0.to_text(), key.1));
        write_atomic(&path, &buf)
    }

    /// Adds checked key packages for a device (the oldest go past [`MAX_KEY_PACKAGES`]);
    /// returns how many the device now has here.
    pub fn put(
        &self,
        account: AccountId,
        device: u32,
        packages: Vec<Vec<u8>>,
    ) -> Result<usize, MailboxError> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let key = (account, device);
        if !map.contains_key(&key) && map.len() >= MAX_KEY_PACKAGE_DEVICES {
            return Err(MailboxError::NodeFull);
        }
        let mut list = map.get(&key).cloned().unwrap_or_default();
        let taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        // A package already here, or handed out before, is not taken again.
        let packages: Vec<Vec<u8>> = packages
            .into_iter()
            .filter(|p| !taken.0.contains(&Hash::of(&[p.as_slice()])) && !list.contains(p))
            .collect();
        drop(taken);
        for p in packages {
            if list.len() >= MAX_KEY_PACKAGES {
                list.pop_front();
            }
            list.push_back(p);
        }
        // Saved under the lock, and kept only once saved: the file never holds an older
        // list than the last one answered.
        self.save(&key, &list)?;
        let n = list.len();
        map.insert(key, list);
        Ok(n)
    }

    /// Hands out one key package of the device, which is then gone from here.
    pub fn take(&self, account: AccountId, device: u32) -> Result<Vec<u8>, MailboxError> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let key = (account, device);
        let list = map.get(&key).ok_or(MailboxError::NoKeyPackage)?;
        let mut rest = list.clone();
        let kp = rest.pop_front().ok_or(MailboxError::NoKeyPackage)?;
        {
            let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
            let h = Hash::of(&[kp.as_slice()]);
            if taken.0.insert(h) {
                taken.1.push_back(h);
            }
            while taken.1.len() > MAX_TAKEN_REMEMBERED {
                if let Some(old) = taken.1.pop_front() {
                    taken.0.remove(&old);
                }
            }
        }
        // Gone from the file before it is handed out (under the lock, so concurrent takes
        // are saved in order): a restart never hands it out again.
        self.save(&key, &rest)?;
        map.insert(key, rest);
        Ok(kp)
    }

    /// Key packages of the device kept here.
    pub fn count(&self, account: AccountId, device: u32) -> usize {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(account, device)).map_or(0, VecDeque::len)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn id(n: u8) -> Hash {
        Hash([n; 32])
    }

    #[test]
    fn mail_survives_a_restart_and_goes_once_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mailboxes::open(dir.path()).unwrap();
        assert_eq!(
            m.deposit(&id(1), &[b"a".to_vec(), b"b".to_vec()]).unwrap(),
            1
        );
        assert_eq!(m.deposit(&id(1), &[b"c".to_vec()]).unwrap(), 3);
        // Sequence numbers are node-wide.
        assert_eq!(m.deposit(&id(2), &[b"x".to_vec()]).unwrap(), 4);
        drop(m);
        let m = Mailboxes::open(dir.path()).unwrap();
        let (mail, more) = m.fetch(&id(1), 0, 1 << 20);
        assert!(!more);
        assert_eq!(
            mail.iter()
                .map(|x| (x.seq, x.bytes.clone()))
                .collect::<Vec<_>>(),
            vec![(1, b"a".to_vec()), (2, b"b".to_vec()), (3, b"c".to_vec())]
        );
        assert_eq!(m.fetch(&id(1), 2, 1 << 20).0.len(), 1);
        // Small pages still make progress.
        let (page, more) = m.fetch(&id(1), 0, 1);
        assert_eq!((page.len(), more), (1, true));
        m.ack(&id(1), 2).unwrap();
        assert_eq!(m.waiting(&id(1)), 1);
        m.ack(&id(1), 3).unwrap();
        assert_eq!(m.waiting(&id(1)), 0);
        drop(m);
        let m = Mailboxes::open(dir.path()).unwrap();
        assert_eq!(m.waiting(&id(1)), 0);
        assert_eq!(m.waiting(&id(2)), 1);
        // Sequence numbers never go back, so a reader's position stays meaningful.
        assert!(m.deposit(&id(1), &[b"d".to_vec()]).unwrap() > 4);
        assert_eq!(m.total_bytes(), 2);
    }

    /// The files a mailbox has on disk.
    fn files_of(dir: &Path, id: &Hash) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().into_string().ok())
            .filter(|n| n.starts_with(&id.to_hex()))
            .collect()
    }

    #[test]
    fn mailboxes_that_empty_are_forgotten_and_totals_stay_exact() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mailboxes::open(dir.path()).unwrap();
        m.deposit(&id(1), &[b"taken".to_vec()]).unwrap();
        m.deposit(&id(2), &[b"expires".to_vec()]).unwrap();
        m.deposit(&id(3), &[b"kept".to_vec()]).unwrap();
        assert_eq!((m.count(), m.total_bytes()), (3, 16));
        // A fetch for a mailbox that holds nothing makes nobody known.
        m.ack(&id(9), 5).unwrap();
        assert!(!m.is_known(&id(9)));
        // Taken: the mailbox and its files go (its holder is known now).
        m.ack(&id(1), 1).unwrap();
        assert_eq!((m.count(), m.total_bytes()), (2, 11));
        assert!(m.is_known(&id(1)));
        assert_eq!(files_of(dir.path(), &id(1)), Vec::<String>::new());
        // Expired, anywhere on the node: a sweep takes it, and the node-wide total drops.
        {
            let mut inner = m.inner.lock().unwrap();
            let e = &mut inner.boxes.get_mut(&id(2)).unwrap().mail[0];
            e.expires_ms = 1;
        }
        {
            let mut inner = m.inner.lock().unwrap();
            m.sweep(&mut inner, now_ms()).unwrap();
        }
        assert_eq!((m.count(), m.total_bytes()), (1, 4));
        assert_eq!(files_of(dir.path(), &id(2)), Vec::<String>::new());
        // A restart finds only what is kept; a dropped mailbox comes back with later numbers.
        drop(m);
        let m = Mailboxes::open(dir.path()).unwrap();
        assert_eq!((m.count(), m.total_bytes()), (1, 4));
        // Its holder is still known: a deposit there is not a stranger's new mailbox.
        assert!(m.is_known(&id(1)));
        assert!(!m.is_known(&id(9)));
        assert!(m.deposit(&id(1), &[b"again".to_vec()]).unwrap() > 3);
    }

    #[test]
    fn a_full_node_sweeps_out_expired_mail_before_refusing() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mailboxes::open(dir.path()).unwrap();
        // As many mailboxes as a node keeps, each with a byte of mail.
        let fill = |expires_ms| {
            let mut inner = m.inner.lock().unwrap();
            for n in 0..MAX_MAILBOXES as u64 {
                let mut b = [0u8; 32];
                b[..8].copy_from_slice(&n.to_be_bytes());
                let mail = Mail {
                    seq: n + 1,
                    bytes: vec![1],
                    expires_ms,
                };
                let mailbox = Mailbox {
                    mail: VecDeque::from([mail]),
                    bytes: 1,
                    dead: 0,
                    acked: 0,
                };
                inner.boxes.insert(Hash(b), mailbox);
            }
            inner.total = MAX_MAILBOXES as u64;
            inner.next = MAX_MAILBOXES as u64 + 1;
        };
        fill(u64::MAX);
        assert_eq!(
            m.deposit(&id(200), &[b"x".to_vec()]),
            Err(MailboxError::NodeFull)
        );
        // All of it expires; the next deposit finds room, without waiting for each
        // mailbox's own next deposit.
        fill(1);
        m.inner.lock().unwrap().swept = None;
        m.deposit(&id(200), &[b"x".to_vec()]).unwrap();
        assert_eq!((m.count(), m.total_bytes()), (1, 1));
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mailboxes::open(dir.path()).unwrap();
        m.deposit(&id(1), &[b"whole".to_vec()]).unwrap();
        m.deposit(&id(1), &[b"torn".to_vec()]).unwrap();
        drop(m);
        let path = dir.path().join(format!("{}.log", id(1).to_hex()));
        let len = std::fs::metadata(&path).unwrap().len();
        for cut in [1, 3, 10] {
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(len - cut).unwrap();
            let m = Mailboxes::open(dir.path()).unwrap();
            let (mail, _) = m.fetch(&id(1), 0, 1 << 20);
            assert_eq!(mail.len(), 1, "cut {cut}");
            assert_eq!(mail[0].bytes, b"whole");
        }
        // A flipped byte in a record's body ends the log there too.
        let mut data = std::fs::read(&path).unwrap();
        let n = data.len();
        data[n - 1] ^= 1;
        std::fs::write(&path, data).unwrap();
        let m = Mailboxes::open(dir.path()).unwrap();
        assert_eq!(m.waiting(&id(1)), 0);
    }

    #[test]
    fn bounds_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mailboxes::open(dir.path()).unwrap();
        assert_eq!(m.deposit(&id(1), &[]), Err(MailboxError::Empty));
        assert_eq!(
            m.deposit(&id(1), &[vec![0; MAX_ENVELOPE_BYTES + 1]]),
            Err(MailboxError::TooLarge)
        );
        let many = vec![vec![1u8]; MAX_MAILBOX_MESSAGES];
        m.deposit(&id(1), &many).unwrap();
        assert_eq!(
            m.deposit(&id(1), &[b"one more".to_vec()]),
            Err(MailboxError::Full)
        );
        // Another mailbox is unaffected.
        m.deposit(&id(2), &[b"fine".to_vec()]).unwrap();
        // Taking mail makes room.
        m.ack(&id(1), 10).unwrap();
        m.deposit(&id(1), &[b"room".to_vec()]).unwrap();
        assert_eq!(m.waiting(&id(1)), MAX_MAILBOX_MESSAGES - 10 + 1);
        drop(m);
        // Compaction kept what was not taken.
        let m = Mailboxes::open(dir.path()).unwrap();
        assert_eq!(m.waiting(&id(1)), MAX_MAILBOX_MESSAGES - 10 + 1);
    }

    #[test]
    fn concurrent_takes_never_bring_a_package_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let who = starling_types::PublicKey::ed25519([6; 32]);
        let k = std::sync::Arc::new(KeyPackages::open(dir.path()).unwrap());
        let all: Vec<Vec<u8>> = (0..MAX_KEY_PACKAGES as u32)
            .map(|i| i.to_be_bytes().to_vec())
            .collect();
        k.put(who, 0, all).unwrap();
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let takers: Vec<_> = (0..8)
            .map(|_| {
                let (k, start) = (k.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    (0..12).map(|_| k.take(who, 0).unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut taken: Vec<Vec<u8>> = takers.into_iter().flat_map(|t| t.join().unwrap()).collect();
        taken.sort();
        taken.dedup();
        assert_eq!(taken.len(), 96, "each handed out once");
        drop(k);
        let k = KeyPackages::open(dir.path()).unwrap();
        assert_eq!(k.count(who, 0), MAX_KEY_PACKAGES - 96);
        let next = k.take(who, 0).unwrap();
        assert!(!taken.contains(&next), "a handed-out package came back");
    }

    #[test]
    fn a_handed_out_package_put_again_pushes_out_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let who = starling_types::PublicKey::ed25519([7; 32]);
        let k = KeyPackages::open(dir.path()).unwrap();
        let fresh: Vec<Vec<u8>> = (0..MAX_KEY_PACKAGES as u32)
            .map(|i| i.to_be_bytes().to_vec())
            .collect();
        k.put(who, 0, fresh.clone()).unwrap();
        let used = k.take(who, 0).unwrap();
        // Someone puts the used one back, many times over, and the ones still there.
        assert_eq!(
            k.put(who, 0, vec![used.clone(); 50]).unwrap(),
            MAX_KEY_PACKAGES - 1
        );
        assert_eq!(
            k.put(who, 0, fresh[1..].to_vec()).unwrap(),
            MAX_KEY_PACKAGES - 1
        );
        // Every package handed out from now on is one of the fresh ones, each once.
        let mut out = Vec::new();
        while let Ok(p) = k.take(who, 0) {
            out.push(p);
        }
        assert_eq!(out, fresh[1..].to_vec());
    }

    #[test]
    fn key_packages_are_handed_out_once() {
        let dir = tempfile::tempdir().unwrap();
        let who = starling_types::PublicKey::ed25519([5; 32]);
        let k = KeyPackages::open(dir.path()).unwrap();
        assert_eq!(k.take(who, 0), Err(MailboxError::NoKeyPackage));
        k.put(who, 0, vec![b"p1".to_vec(), b"p2".to_vec()]).unwrap();
        assert_eq!(k.take(who, 0).unwrap(), b"p1");
        drop(k);
        let k = KeyPackages::open(dir.path()).unwrap();
        assert_eq!(k.count(who, 0), 1);
        assert_eq!(k.take(who, 0).unwrap(), b"p2");
        assert_eq!(k.take(who, 0), Err(MailboxError::NoKeyPackage));
        let n = k
            .put(
                who,
                1,
                (0..MAX_KEY_PACKAGES + 5).map(|i| vec![i as u8]).collect(),
            )
            .unwrap();
        assert_eq!(n, MAX_KEY_PACKAGES);
        // The oldest went.
        assert_eq!(k.take(who, 1).unwrap(), vec![5u8]);
    }
}
