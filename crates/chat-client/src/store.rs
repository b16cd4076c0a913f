//! A device at rest: its state (MLS secrets) and message history, sealed with
//! XChaCha20-Poly1305 under a key derived from the account key, written atomically and synced.

use super::*;

pub(crate) fn seal_with(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, ChatError> {
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut nonce);
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad })
        .map_err(|_| internal("sealing failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

pub(crate) fn open_with(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ChatError> {
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

impl Chat {
    pub(crate) fn account_dir(&self, account: &AccountId) -> PathBuf {
        self.dir.join(hex::encode(account.bytes))
    }

    pub(crate) fn seal_key(key: &SecretKey) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake3::derive_key(
            "starling chat state v1",
            key.to_seed().as_ref(),
        ))
    }

    pub(crate) fn load(
        dir: &Path,
        account: AccountId,
        seal: Zeroizing<[u8; 32]>,
    ) -> Result<Held, ChatError> {
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
        let mut held = Held::new(account, seal, device, meta, mailbox_key);
        Self::load_history(dir, &mut held)?;
        match std::fs::read(dir.join("deferred.sealed")) {
            Ok(sealed) => {
                let plain = open_with(&held.seal, &Self::aad(&account, b"deferred"), &sealed)?;
                held.deferred = serde_json::from_slice(&plain).map_err(internal)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(internal(e)),
        }
        // Carried over from where older versions kept them (inside the device state).
        for (at, hexed) in std::mem::take(&mut held.meta.deferred) {
            held.deferred.keep(true, at, hexed);
        }
        Ok(held)
    }

    pub(crate) fn aad(account: &AccountId, what: &[u8]) -> Vec<u8> {
        let mut a = b"starling chat ".to_vec();
        a.extend_from_slice(what);
        a.extend_from_slice(&account.bytes);
        a
    }

    pub(crate) fn load_history(dir: &Path, held: &mut Held) -> Result<(), ChatError> {
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
    pub(crate) fn save(&self, held: &Held) -> Result<(), ChatError> {
        let meta = serde_json::to_vec(&held.meta).map_err(internal)?;
        let state = Zeroizing::new(held.device.export_state());
        let mut plain = Zeroizing::new(Vec::with_capacity(4 + meta.len() + state.len()));
        plain.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        plain.extend_from_slice(&meta);
        plain.extend_from_slice(&state);
        let sealed = seal_with(&held.seal, &Self::aad(&held.account, b"device"), &plain)?;
        let dir = self.account_dir(&held.account);
        std::fs::create_dir_all(&dir).map_err(internal)?;
        // The waiting envelopes first (only when they changed): a crash between the two
        // leaves some that are taken already, which their hashes then skip.
        if held
            .deferred
            .dirty
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let plain = Zeroizing::new(serde_json::to_vec(&held.deferred).map_err(internal)?);
            let aad = Self::aad(&held.account, b"deferred");
            let sealed = seal_with(&held.seal, &aad, &plain)?;
            write_atomic(&dir.join("deferred.sealed"), &sealed).map_err(internal)?;
            held.deferred
                .dirty
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        write_atomic(&dir.join("device.sealed"), &sealed).map_err(internal)
    }

    /// Appends messages to a conversation, sealed, synced.
    pub(crate) fn append(
        &self,
        held: &mut Held,
        group: &str,
        msgs: Vec<Message>,
    ) -> Result<(), ChatError> {
        self.record(held, group, msgs)?;
        self.flush_history(held)
    }

    /// Adds messages to a conversation in memory and to the history's write buffer (sealed);
    /// [`Chat::flush_history`] writes them.
    pub(crate) fn record(
        &self,
        held: &mut Held,
        group: &str,
        msgs: Vec<Message>,
    ) -> Result<(), ChatError> {
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
    pub(crate) fn flush_history(&self, held: &mut Held) -> Result<(), ChatError> {
        if held.unwritten.is_empty() {
            return Ok(());
        }
        let dir = self.account_dir(&held.account);
        std::fs::create_dir_all(&dir).map_err(internal)?;
        // Whole or not at all: after a failure the records stay buffered and go again whole.
        starling_config::fs::append_whole(&dir.join("history.log"), &held.unwritten)
            .map_err(internal)?;
        held.unwritten.clear();
        Ok(())
    }

    /// Writes an event of this device's own doing (a chat started, members changed, left)
    /// into the conversation.
    pub(crate) fn own_event(
        &self,
        held: &mut Held,
        group: &str,
        text: String,
        epoch: u64,
    ) -> Result<(), ChatError> {
        if let Some(meta) = held.meta.groups.get_mut(group) {
            meta.synced = false;
        }
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

    pub(crate) fn next_seq(held: &Held, group: &str) -> u64 {
        held.history.get(group).map_or(0, |h| h.len() as u64) + 1
    }
}
