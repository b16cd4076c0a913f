//! Delivery of sealed envelopes to member devices: one outbox per device mailbox, deposited
//! in order and in batches at the device's home node, else at its relays, and tried again
//! with backoff until a node takes them or they expire.
//!
//! The outbox is durable: an envelope is in `chat/outbox.log` (appended and synced) before it
//! is queued, and is marked done there once deposited, so a crash or restart loses nothing
//! that was sent; what was queued is tried again when the node starts. It holds only sealed
//! envelopes and the recipients' devices as the key directory publishes them. Bounded per
//! device and in bytes for the node.

use super::{Chat, ChatError, Recipient};
use futures::channel::oneshot;
use rand_core::{OsRng, RngCore as _};
use starling_chat_relay::mailbox::now_ms;
use starling_net::chat::{self as chatnet, ChatRequest, NetError};
use starling_types::codec::put;
use starling_types::{AccountId, ChatDevice, Decode as _, Encode as _, Hash, Reader};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Most envelopes waiting to be deposited for one device; more are refused at once.
const MAX_OUTBOX: usize = 4_096;
/// An outbox with nothing to send for this long goes (another is made when there is).
const OUTBOX_IDLE: Duration = Duration::from_secs(300);
/// Most bytes of envelopes waiting in all of a node's outboxes, and for one device (so a
/// few unreachable devices cannot take all of it).
const MAX_OUTBOX_BYTES: u64 = 256 << 20;
const MAX_DEVICE_OUTBOX_BYTES: u64 = 8 << 20;
/// How long an envelope is tried before it is given up on.
const OUTBOX_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// The wait after a first failed try, doubled after each until [`RETRY_MOST`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MOST: Duration = Duration::from_secs(300);
/// How long a send waits for its deposits before it answers (they go on after).
const DELIVERY_WAIT: Duration = Duration::from_secs(10);
/// Largest record in the log: an envelope and its device.
const MAX_RECORD_BYTES: usize = chatnet::MAX_ENVELOPE_BYTES + 64 * 1024;

/// Resolves when an envelope is deposited (or given up on).
pub(crate) type Wait = oneshot::Receiver<Result<(), String>>;

/// An envelope waiting for its deposit.
pub(super) struct Queued {
    id: u64,
    envelope: Vec<u8>,
    expires_ms: u64,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// An envelope found queued in the log when the node starts.
pub(super) struct Resumed {
    id: u64,
    /// The recipient's account (not kept by the first version of the log).
    account: Option<starling_types::AccountId>,
    device: ChatDevice,
    envelope: Vec<u8>,
    expires_ms: u64,
}

/// The outbox's log on disk: a record per queued envelope, and one per deposit of a batch;
/// compacted (rewritten with what is still queued) when opened and when mostly done.
#[derive(Debug)]
pub(super) struct OutboxLog {
    path: PathBuf,
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    next: u64,
    /// Queued envelopes by id: their recipient device, and their record as written.
    live: BTreeMap<u64, (DeviceRef, Vec<u8>)>,
    live_bytes: u64,
    /// Bytes queued per recipient device (whichever of its mailboxes they go to: a member
    /// naming another's mailbox for a chat cannot fill that device's share).
    per_device: HashMap<DeviceRef, u64>,
    file_bytes: u64,
}

impl LogInner {
    fn add(&mut self, id: u64, device: DeviceRef, record: Vec<u8>) {
        let n = record.len() as u64;
        self.live_bytes += n;
        *self.per_device.entry(device).or_default() += n;
        if let Some((m, old)) = self.live.insert(id, (device, record)) {
            self.take_off(m, old.len() as u64);
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some((m, rec)) = self.live.remove(&id) {
            self.take_off(m, rec.len() as u64);
        }
    }

    fn take_off(&mut self, device: DeviceRef, n: u64) {
        self.live_bytes -= n;
        if let Some(b) = self.per_device.get_mut(&device) {
            *b -= n;
            if *b == 0 {
                self.per_device.remove(&device);
            }
        }
    }
}

/// A recipient device: its account (unknown for records written before they named it) and
/// the device's number there.
type DeviceRef = (Option<AccountId>, u32);

/// What an outbox is for: a device and the mailbox it is sent to. Keyed by both, so that a
/// member who names another device's mailbox as its own (for a chat) gets an outbox of its
/// own, sending to its own nodes, and cannot take over that device's.
pub(super) type OutboxKey = (Option<AccountId>, u32, Hash);

/// An envelope and its recipient device; `QUEUED_FOR` also names the device's account.
const QUEUED: u8 = 1;
const QUEUED_FOR: u8 = 3;
const DONE: u8 = 2;

/// Frames `body`: its length, the body, and a checksum, so a torn or damaged end is seen.
fn frame(body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&blake3::hash(body).as_bytes()[..8]);
}

fn io(e: impl std::fmt::Display) -> ChatError {
    ChatError::Internal(format!("the chat outbox: {e}"))
}

impl OutboxLog {
    /// Opens the log at `path`; returns it and the envelopes still queued, oldest first.
    pub(super) fn open(path: &Path) -> Result<(OutboxLog, Vec<Resumed>), ChatError> {
        let mut inner = LogInner::default();
        let mut resumed: BTreeMap<u64, Resumed> = BTreeMap::new();
        match std::fs::File::open(path) {
            Ok(f) => {
                let mut r = std::io::BufReader::new(f);
                while let Some(body) = Self::read_frame(&mut r) {
                    Self::replay(&body, &mut inner, &mut resumed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let log = OutboxLog {
            path: path.to_path_buf(),
            inner: Mutex::new(inner),
        };
        {
            let mut inner = log.inner.lock().unwrap_or_else(|p| p.into_inner());
            // Rewritten with what is still queued: done records go, and a torn end is cut.
            log.compact(&mut inner)?;
        }
        Ok((log, resumed.into_values().collect()))
    }

    /// The next whole, intact frame's body; `None` at the end or at damage.
    fn read_frame(r: &mut impl std::io::Read) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        r.read_exact(&mut len).ok()?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_RECORD_BYTES {
            return None;
        }
        let mut body = vec![0u8; n + 8];
        r.read_exact(&mut body).ok()?;
        let sum = body.split_off(n);
        (blake3::hash(&body).as_bytes()[..8] == sum[..]).then_some(body)
    }

    /// Applies one record read back from the log.
    fn replay(body: &[u8], inner: &mut LogInner, resumed: &mut BTreeMap<u64, Resumed>) {
        let mut r = Reader::new(body);
        match r.u8() {
            Ok(tag @ (QUEUED | QUEUED_FOR)) => {
                let Ok(q) = Self::decode_queued(&mut r, tag == QUEUED_FOR) else {
                    return;
                };
                inner.next = inner.next.max(q.id + 1);
                let mut record = Vec::with_capacity(body.len() + 12);
                frame(body, &mut record);
                inner.add(q.id, (q.account, q.device.id), record);
                resumed.insert(q.id, q);
            }
            Ok(DONE) => {
                let Ok(ids) = r.seq("ids", chatnet::MAX_DEPOSIT, |r| r.u64()) else {
                    return;
                };
                for id in ids {
                    inner.remove(id);
                    resumed.remove(&id);
                }
            }
            _ => {}
        }
    }

    fn decode_queued(
        r: &mut Reader<'_>,
        with_account: bool,
    ) -> Result<Resumed, starling_types::DecodeError> {
        Ok(Resumed {
            id: r.u64()?,
            expires_ms: r.u64()?,
            account: if with_account {
                Some(starling_types::AccountId::decode(r)?)
            } else {
                None
            },
            device: ChatDevice::decode(r)?,
            envelope: r.bytes32("envelope", chatnet::MAX_ENVELOPE_BYTES)?.to_vec(),
        })
    }

    fn compact(&self, inner: &mut LogInner) -> Result<(), ChatError> {
        let mut buf = Vec::with_capacity(inner.live_bytes as usize);
        for (_, rec) in inner.live.values() {
            buf.extend_from_slice(rec);
        }
        starling_chat_relay::mailbox::write_atomic(&self.path, &buf).map_err(io)?;
        inner.file_bytes = buf.len() as u64;
        Ok(())
    }

    /// Writes `envelopes` for `device` to the log (synced); returns their ids.
    fn queue(
        &self,
        (account, device): &Recipient,
        envelopes: &[Vec<u8>],
        expires_ms: u64,
    ) -> Result<Vec<u64>, ChatError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut records = Vec::with_capacity(envelopes.len());
        let mut ids = Vec::with_capacity(envelopes.len());
        let mut add = 0u64;
        for (i, e) in envelopes.iter().enumerate() {
            let id = inner.next + i as u64;
            let mut body = vec![QUEUED_FOR];
            put::u64(&mut body, id);
            put::u64(&mut body, expires_ms);
            account.encode(&mut body);
            device.encode(&mut body);
            put::bytes32(&mut body, e);
            let mut rec = Vec::with_capacity(body.len() + 12);
            frame(&body, &mut rec);
            add += rec.len() as u64;
            records.push(rec);
            ids.push(id);
        }
        if inner.live_bytes + add > MAX_OUTBOX_BYTES {
            return Err(ChatError::Unavailable(format!(
                "over {MAX_OUTBOX_BYTES} bytes wait to be delivered from this node; try again later"
            )));
        }
        let device_ref = (Some(*account), device.id);
        let device_bytes = inner.per_device.get(&device_ref).copied().unwrap_or(0);
        if device_bytes + add > MAX_DEVICE_OUTBOX_BYTES {
            return Err(ChatError::Unavailable(format!(
                "over {MAX_DEVICE_OUTBOX_BYTES} bytes wait for a device no node takes mail for; try again later"
            )));
        }
        starling_config::fs::append_whole(&self.path, &records.concat()).map_err(io)?;
        inner.next += envelopes.len() as u64;
        inner.file_bytes += add;
        for (id, rec) in ids.iter().zip(records) {
            inner.add(*id, device_ref, rec);
        }
        Ok(ids)
    }

    /// Marks `ids` deposited (or given up on).
    fn done(&self, ids: &[u64]) -> Result<(), ChatError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut body = vec![DONE];
        put::seq(&mut body, ids, |o, id| put::u64(o, *id));
        let mut rec = Vec::new();
        frame(&body, &mut rec);
        starling_config::fs::append_whole(&self.path, &rec).map_err(io)?;
        inner.file_bytes += rec.len() as u64;
        for id in ids {
            inner.remove(*id);
        }
        if inner.file_bytes > 2 * inner.live_bytes + (1 << 20) {
            self.compact(&mut inner)?;
        }
        Ok(())
    }

    /// Envelopes queued, and their bytes.
    pub(super) fn queued(&self) -> (usize, u64) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (inner.live.len(), inner.live_bytes)
    }
}

impl Chat {
    /// The sender of `device`'s outbox, started if need be.
    fn outbox_of(
        self: &Arc<Self>,
        outboxes: &mut HashMap<OutboxKey, mpsc::Sender<Queued>>,
        account: Option<AccountId>,
        device: &ChatDevice,
    ) -> mpsc::Sender<Queued> {
        outboxes
            .entry((account, device.id, device.mailbox))
            .or_insert_with(|| {
                let (tx, rx) = mpsc::channel(MAX_OUTBOX);
                let me = self.clone();
                let device = device.clone();
                tokio::spawn(async move { me.outbox(account, device, rx).await });
                tx
            })
            .clone()
    }

    /// Queues envelopes for the devices' mailboxes, in order per mailbox, on disk first;
    /// each wait resolves when its envelope is deposited (or could not be queued).
    pub(super) fn enqueue(
        self: &Arc<Self>,
        devices: &[Recipient],
        envelopes: &[Vec<u8>],
    ) -> Vec<Wait> {
        self.enqueue_each(devices, envelopes).0
    }

    /// As [`Chat::enqueue`], but an error (and nothing left queued for a device it failed
    /// for) if any envelope could not be queued.
    pub(super) fn enqueue_all(
        self: &Arc<Self>,
        devices: &[Recipient],
        envelopes: &[Vec<u8>],
    ) -> Result<Vec<Wait>, ChatError> {
        match self.enqueue_each(devices, envelopes) {
            (waits, None) => Ok(waits),
            (_, Some(e)) => Err(ChatError::Unavailable(format!(
                "not queued for delivery: {e}"
            ))),
        }
    }

    /// The waits, and why queueing failed for a device if it did.
    fn enqueue_each(
        self: &Arc<Self>,
        devices: &[Recipient],
        envelopes: &[Vec<u8>],
    ) -> (Vec<Wait>, Option<String>) {
        let mut waits = Vec::new();
        let mut failed = None;
        let expires_ms = now_ms() + OUTBOX_TTL_MS;
        let mut outboxes = self.outboxes.lock().unwrap_or_else(|p| p.into_inner());
        for d in devices {
            let tx = self.outbox_of(&mut outboxes, Some(d.0), &d.1);
            let mut refused = |why: String| {
                for _ in envelopes {
                    let (done, wait) = oneshot::channel();
                    let _ = done.send(Err(why.clone()));
                    waits.push(wait);
                }
                failed = Some(why);
            };
            // Each mailbox gets its own bytes (sealed for its device).
            let sealed = super::deposits::seal_for(&d.1, envelopes);
            let envelopes = sealed.as_slice();
            // Room in the queue first, then on disk: what is on disk is always queued.
            let Ok(permits) = tx.try_reserve_many(envelopes.len()) else {
                refused(format!(
                    "more than {MAX_OUTBOX} envelopes wait for a device; try again later"
                ));
                continue;
            };
            let ids = match self.outbox_log.queue(d, envelopes, expires_ms) {
                Ok(ids) => ids,
                Err(e) => {
                    refused(e.to_string());
                    continue;
                }
            };
            for ((id, e), permit) in ids.into_iter().zip(envelopes).zip(permits) {
                let (done, wait) = oneshot::channel();
                permit.send(Queued {
                    id,
                    envelope: e.clone(),
                    expires_ms,
                    done: Some(done),
                });
                waits.push(wait);
            }
        }
        (waits, failed)
    }

    /// Queues again what the log held when the node started (no one waits on it), in order,
    /// waiting for room where an outbox is full.
    pub(super) fn resume(self: &Arc<Self>, resumed: Vec<Resumed>) {
        if resumed.is_empty() {
            return;
        }
        tracing::info!(
            envelopes = resumed.len(),
            "chat envelopes queued before a restart go out again"
        );
        let me = self.clone();
        tokio::spawn(async move {
            for r in resumed {
                let mut q = Queued {
                    id: r.id,
                    envelope: r.envelope,
                    expires_ms: r.expires_ms,
                    done: None,
                };
                loop {
                    let tx = {
                        let mut outboxes = me.outboxes.lock().unwrap_or_else(|p| p.into_inner());
                        me.outbox_of(&mut outboxes, r.account, &r.device)
                    };
                    // An outbox that went idle meanwhile is made again.
                    match tx.send(q).await {
                        Ok(()) => break,
                        Err(back) => q = back.0,
                    }
                }
            }
        });
    }

    /// Deposits what is queued for one device, in order and in batches: at its home node,
    /// else at its relays; a batch no node takes is tried again with backoff until it
    /// expires.
    async fn outbox(
        self: Arc<Self>,
        account: Option<starling_types::AccountId>,
        mut device: ChatDevice,
        mut rx: mpsc::Receiver<Queued>,
    ) {
        let key = (account, device.id, device.mailbox);
        loop {
            let first = match tokio::time::timeout(OUTBOX_IDLE, rx.recv()).await {
                Ok(Some(q)) => q,
                Ok(None) => return,
                // Idle: it goes (there is one per device and mailbox sent to).
                Err(_) => {
                    self.retire_outbox(key, &device, &mut rx);
                    return;
                }
            };
            let mut batch = vec![first];
            let mut size = batch[0].envelope.len();
            while batch.len() < chatnet::MAX_DEPOSIT && size < chatnet::MAX_REQUEST_BYTES / 2 {
                match rx.try_recv() {
                    Ok(q) => {
                        size += q.envelope.len();
                        batch.push(q);
                    }
                    _ => break,
                }
            }
            let mut wait = RETRY_FIRST;
            let mut told = false;
            let result = loop {
                batch.retain_mut(|q| {
                    if q.expires_ms > now_ms() {
                        return true;
                    }
                    if let Some(done) = q.done.take() {
                        let _ = done.send(Err("not delivered before it expired".into()));
                    }
                    let _ = self.outbox_log.done(&[q.id]);
                    false
                });
                if batch.is_empty() {
                    break Ok(());
                }
                match self.deposit(&device, &batch).await {
                    Ok(()) => break Ok(()),
                    Err(Fatal(e)) => break Err(e),
                    Err(Retry(e)) => {
                        // The device may have moved (new relays, a new home) meanwhile.
                        if let Some(now) = account.and_then(|a| self.current(&a, &device)) {
                            device = now;
                        }
                        // Those waiting hear once that it goes on in the background.
                        if !told {
                            told = true;
                            tracing::info!(mailbox = %device.mailbox, error = %e, "deposit failed; trying again with backoff");
                        }
                        let jitter = OsRng.next_u32() % (wait.as_millis() as u32 / 4 + 1);
                        tokio::time::sleep(wait + Duration::from_millis(jitter.into())).await;
                        wait = (wait * 2).min(RETRY_MOST);
                    }
                }
            };
            let ids: Vec<u64> = batch.iter().map(|q| q.id).collect();
            if !ids.is_empty() {
                if let Err(e) = self.outbox_log.done(&ids) {
                    tracing::warn!(error = %e, "marking envelopes delivered (they may go twice; members skip them)");
                }
            }
            for q in batch {
                if let Some(done) = q.done {
                    let _ = done.send(result.clone());
                }
            }
        }
    }

    /// Takes an idle outbox out of use. Envelopes are queued under the outboxes' lock, but
    /// a restart's resumed ones are sent without it: any that got in before the channel
    /// closed go on to a new outbox for the same device.
    fn retire_outbox(
        self: &Arc<Self>,
        key: OutboxKey,
        device: &ChatDevice,
        rx: &mut mpsc::Receiver<Queued>,
    ) {
        let mut outboxes = self.outboxes.lock().unwrap_or_else(|p| p.into_inner());
        outboxes.remove(&key);
        rx.close();
        let mut late = Vec::new();
        while let Ok(q) = rx.try_recv() {
            late.push(q);
        }
        if late.is_empty() {
            return;
        }
        let tx = self.outbox_of(&mut outboxes, key.0, device);
        for q in late {
            // A new channel, as large as this one was: room for all of it.
            let _ = tx.try_send(q);
        }
    }

    /// `device` (same account and device keys) as the key directory lists it now.
    fn current(
        &self,
        account: &starling_types::AccountId,
        device: &ChatDevice,
    ) -> Option<ChatDevice> {
        let (rec, _) = self.directory(account).ok()?;
        // The same device (its signature key), still sent to the mailbox it was (its
        // directory mailbox, or the one it named for a chat).
        rec.devices
            .into_iter()
            .find(|d| d.id == device.id && d.signature_key == device.signature_key)
            .map(|d| ChatDevice {
                mailbox: device.mailbox,
                ..d
            })
    }

    /// One try at depositing `batch` at the device's home, else at its relays.
    async fn deposit(&self, device: &ChatDevice, batch: &[Queued]) -> Result<(), Failed> {
        let req = ChatRequest::Deposit {
            mailbox: device.mailbox,
            envelopes: batch.iter().map(|q| q.envelope.clone()).collect(),
        };
        let mut failed = Retry("the device names no node".to_string());
        for to in device.home.iter().chain(device.relays.iter()) {
            match self.request(to, &req).await {
                Ok(_) => return Ok(()),
                // What no node would take.
                Err(NetError::Refused(code, message))
                    if code == "too_large" || code == "malformed" || code == "empty" =>
                {
                    failed = Fatal(format!("{code}: {message}"));
                }
                Err(e) => {
                    tracing::debug!(to = %to.address, error = %e, "deposit failed; trying the next");
                    if !matches!(failed, Fatal(_)) {
                        failed = Retry(e.to_string());
                    }
                }
            }
        }
        Err(failed)
    }

    /// Waits for `waits` for at most [`DELIVERY_WAIT`]: an error if an envelope could not
    /// be queued or was given up on; what is still being tried goes on in the background.
    pub(super) async fn await_all(waits: Vec<Wait>) -> Result<(), ChatError> {
        let all = async {
            let mut failed = None;
            for w in waits {
                match w.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => failed = Some(e),
                    Err(_) => failed = Some("the outbox stopped".into()),
                }
            }
            failed
        };
        match tokio::time::timeout(DELIVERY_WAIT, all).await {
            Ok(Some(e)) => Err(ChatError::Unavailable(format!(
                "not delivered to every member: {e}"
            ))),
            Ok(None) | Err(_) => Ok(()),
        }
    }
}

/// Why a deposit failed: worth trying again, or not.
enum Failed {
    Retry(String),
    Fatal(String),
}
use Failed::{Fatal, Retry};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use starling_types::Hash;

    fn to(n: u8) -> Recipient {
        (starling_types::PublicKey::ed25519([n; 32]), device(n))
    }

    fn device(n: u8) -> ChatDevice {
        ChatDevice {
            id: n.into(),
            signature_key: [n; 32],
            mailbox: Hash([n; 32]),
            seal_key: None,
            home: None,
            relays: Vec::new(),
        }
    }

    fn resumed(path: &Path) -> Vec<(u64, u8, Vec<u8>)> {
        let (_, r) = OutboxLog::open(path).unwrap();
        r.into_iter()
            .map(|r| (r.id, r.device.signature_key[0], r.envelope))
            .collect()
    }

    #[test]
    fn what_is_queued_survives_a_restart_until_it_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.log");
        let (log, r) = OutboxLog::open(&path).unwrap();
        assert!(r.is_empty());
        let a = log
            .queue(&to(1), &[b"a1".to_vec(), b"a2".to_vec()], 9)
            .unwrap();
        let b = log.queue(&to(2), &[b"b1".to_vec()], 9).unwrap();
        assert_eq!((a.clone(), b.clone()), (vec![0, 1], vec![2]));
        log.done(&a[..1]).unwrap();
        drop(log);
        assert_eq!(
            resumed(&path),
            vec![(1, 1, b"a2".to_vec()), (2, 2, b"b1".to_vec())]
        );
        // Ids go on after a restart; the log was compacted to what is left.
        let (log, _) = OutboxLog::open(&path).unwrap();
        assert_eq!(log.queued().0, 2);
        assert_eq!(log.queue(&to(1), &[b"a3".to_vec()], 9).unwrap(), vec![3]);
        log.done(&[1, 2, 3]).unwrap();
        drop(log);
        assert!(resumed(&path).is_empty());
    }

    #[test]
    fn records_of_the_first_version_without_the_account_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.log");
        let mut body = vec![QUEUED];
        put::u64(&mut body, 7);
        put::u64(&mut body, 9);
        device(4).encode(&mut body);
        put::bytes32(&mut body, b"old");
        let mut rec = Vec::new();
        frame(&body, &mut rec);
        std::fs::write(&path, &rec).unwrap();
        let (log, r) = OutboxLog::open(&path).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].id, r[0].account, r[0].envelope.as_slice()),
            (7, None, &b"old"[..])
        );
        // New ones name the account, and ids go on.
        assert_eq!(log.queue(&to(4), &[b"new".to_vec()], 9).unwrap(), vec![8]);
        drop(log);
        let (_, r) = OutboxLog::open(&path).unwrap();
        assert_eq!(r[1].account, Some(to(4).0));
    }

    #[test]
    fn a_torn_or_damaged_end_is_cut_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.log");
        let (log, _) = OutboxLog::open(&path).unwrap();
        log.queue(&to(1), &[b"kept".to_vec()], 9).unwrap();
        let whole = std::fs::metadata(&path).unwrap().len();
        log.queue(&to(1), &[b"torn".to_vec()], 9).unwrap();
        drop(log);
        // A crash in the middle of the second append.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(whole + 10).unwrap();
        assert_eq!(resumed(&path), vec![(0, 1, b"kept".to_vec())]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "cut back");
        // A flipped byte: the record fails its checksum, and nothing after it is trusted.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[6] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(resumed(&path).is_empty());
        // A length far beyond any record is not allocated.
        std::fs::write(&path, u32::MAX.to_be_bytes()).unwrap();
        assert!(resumed(&path).is_empty());
    }

    #[test]
    fn the_outbox_is_bounded_per_device_and_its_log_stays_compact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.log");
        let (log, _) = OutboxLog::open(&path).unwrap();
        let big = vec![7u8; chatnet::MAX_ENVELOPE_BYTES];
        let mut n = 0;
        while log.queue(&to(1), std::slice::from_ref(&big), 9).is_ok() {
            n += 1;
        }
        assert!(n > 0 && n * (big.len() as u64) <= MAX_DEVICE_OUTBOX_BYTES);
        // The same device's mail for another of its mailboxes (a chat's) shares its share.
        let mut other_box = to(1);
        other_box.1.mailbox = Hash([99; 32]);
        assert!(log
            .queue(&other_box, std::slice::from_ref(&big), 9)
            .is_err());
        // One device no node takes mail for does not stop the others, not even one that
        // names the full device's mailbox as its own.
        let mut impostor = to(2);
        impostor.1.mailbox = to(1).1.mailbox;
        log.queue(&impostor, std::slice::from_ref(&big), 9).unwrap();
        assert!(log.queued().1 <= MAX_DEVICE_OUTBOX_BYTES + big.len() as u64 + 1_024);
        // Done, it goes from the file too, and makes room again.
        let ids: Vec<u64> = (0..=n).collect();
        for chunk in ids.chunks(chatnet::MAX_DEPOSIT) {
            log.done(chunk).unwrap();
        }
        assert_eq!(log.queued(), (0, 0));
        assert!(std::fs::metadata(&path).unwrap().len() < 2 << 20);
        log.queue(&to(1), &[big], 9).unwrap();
    }
}
