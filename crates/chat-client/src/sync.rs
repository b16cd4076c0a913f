//! Several devices per account: a new device joins the account's chats, and their history
//! goes with it, end to end encrypted; the same history is the account's chat export.
//!
//! - **Joining**: every [`OWN_CHECK`], a device reads its account's devices from the key
//!   directory (with a proof). In each chat it is in, the account's device in the lowest leaf
//!   adds the account's devices that are not members yet (a commit, ordered like any other;
//!   should two try at once, the delivery relay keeps one and the other finds nothing to do).
//! - **History**: before the commit, the new device is sent the chat's history so far,
//!   sealed (XChaCha20-Poly1305) under a key derived from the account key, which every device
//!   of the account holds and nobody else does: relays and the other members cannot read it.
//!   It goes through the same ordered outbox as the welcome, so it lands first. A device takes
//!   history only for chats it has none of, so a replay adds nothing.
//! - **Export**: the history of every chat, sealed the same way, is the account's chat
//!   export; importing it fills in the chats a device has no history of (those it is not in
//!   show as past chats).

use super::*;
use crate::store::{open_with, seal_with};

/// What a sealed history envelope starts with (no MLS message does).
const HISTORY_MAGIC: &[u8; 8] = b"SLHIST01";
/// How often a device checks that the account's other devices are in its chats.
const OWN_CHECK: Duration = Duration::from_secs(10);
/// Most plaintext bytes in one history envelope (it must fit a mailbox envelope sealed).
const HISTORY_PART_BYTES: usize = 192 * 1024;
/// Most parts an export may have when imported.
pub const MAX_IMPORT_PARTS: usize = 4_096;

/// One chat's history, or part of it.
#[derive(Serialize, Deserialize)]
struct HistoryPart {
    chat: String,
    messages: Vec<Message>,
}

impl Chat {
    /// The key the account's devices seal history for each other with.
    fn history_key(h: &Held) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake3::derive_key("starling chat history v1", &h.seal[..]))
    }

    /// `chats`' histories as sealed envelopes, each within [`HISTORY_PART_BYTES`].
    pub(crate) fn seal_history(
        h: &Held,
        chats: &[(String, Vec<Message>)],
    ) -> Result<Vec<Vec<u8>>, ChatError> {
        let key = Self::history_key(h);
        let aad = Self::aad(&h.account, HISTORY_MAGIC);
        let mut out = Vec::new();
        let mut seal = |parts: &[HistoryPart]| -> Result<(), ChatError> {
            let plain = Zeroizing::new(serde_json::to_vec(parts).map_err(internal)?);
            let mut envelope = HISTORY_MAGIC.to_vec();
            envelope.extend(seal_with(&key, &aad, &plain)?);
            out.push(envelope);
            Ok(())
        };
        let mut parts: Vec<HistoryPart> = Vec::new();
        let mut size = 0;
        for (chat, messages) in chats {
            for m in messages {
                let n = serde_json::to_vec(m).map_err(internal)?.len() + 8;
                if n > HISTORY_PART_BYTES {
                    continue;
                }
                if size + n > HISTORY_PART_BYTES {
                    seal(&parts)?;
                    parts.clear();
                    size = 0;
                }
                match parts.last_mut() {
                    Some(p) if p.chat == *chat => p.messages.push(m.clone()),
                    _ => {
                        size += chat.len() + 32;
                        parts.push(HistoryPart {
                            chat: chat.clone(),
                            messages: vec![m.clone()],
                        });
                    }
                }
                size += n;
            }
        }
        if !parts.is_empty() {
            seal(&parts)?;
        }
        Ok(out)
    }

    /// Whether `bytes` is a sealed history envelope (not an MLS message).
    pub(crate) fn is_history(bytes: &[u8]) -> bool {
        bytes.starts_with(HISTORY_MAGIC)
    }

    /// Opens a history envelope (only the account's devices can) and takes the chats this
    /// device has no history of; returns how many it took.
    pub(crate) fn take_history(&self, h: &mut Held, bytes: &[u8]) -> Result<usize, ChatError> {
        let sealed = bytes
            .strip_prefix(HISTORY_MAGIC.as_slice())
            .ok_or_else(|| ChatError::BadRequest("not a chat history".into()))?;
        let aad = Self::aad(&h.account, HISTORY_MAGIC);
        let plain = open_with(&Self::history_key(h), &aad, sealed).map_err(|_| {
            ChatError::BadRequest("a chat history that this account did not seal".into())
        })?;
        let parts: Vec<HistoryPart> = serde_json::from_slice(&plain)
            .map_err(|e| ChatError::BadRequest(format!("a damaged chat history: {e}")))?;
        let mut by_chat: BTreeMap<String, Vec<Message>> = BTreeMap::new();
        for p in parts {
            if Self::group_id(&p.chat).is_ok() {
                by_chat.entry(p.chat).or_default().extend(p.messages);
            }
        }
        let mut took = 0;
        for (chat, messages) in by_chat {
            // Only into a chat this device has no history of, or whose history so far came
            // this way (the rest of it follows in order), and only what is past the position
            // taken so far: a replay or a second import adds nothing.
            let empty = h.history.get(&chat).is_none_or(Vec::is_empty);
            let (synced, upto) = h
                .meta
                .groups
                .get(&chat)
                .map_or((false, 0), |g| (g.synced, g.synced_upto));
            if !empty && !synced {
                continue;
            }
            let upto = if empty { 0 } else { upto };
            let fresh: Vec<Message> = messages
                .into_iter()
                .filter(|m| m.seq > upto)
                .filter(|m| m.envelope.is_empty() || !h.in_history.contains(&m.envelope))
                .collect();
            let Some(last) = fresh.iter().map(|m| m.seq).max() else {
                continue;
            };
            let group = Self::group_id(&chat)?;
            let member = h.device.is_member(&group);
            let meta = h.meta.groups.entry(chat.clone()).or_insert(GroupMeta {
                created_ms: fresh.first().map_or(now_ms(), |m| m.at_ms),
                left: !member,
                ..GroupMeta::default()
            });
            meta.synced = true;
            meta.synced_upto = last;
            let first = Self::next_seq(h, &chat);
            let msgs: Vec<Message> = fresh
                .into_iter()
                .enumerate()
                .map(|(i, mut m)| {
                    m.seq = first + i as u64;
                    m
                })
                .collect();
            let n = msgs.len() as u64;
            self.record(h, &chat, msgs)?;
            // What the account read elsewhere is not news here.
            if let Some(meta) = h.meta.groups.get_mut(&chat) {
                meta.read = meta.read.max(first + n - 1);
            }
            took += 1;
        }
        Ok(took)
    }

    /// Every chat's history, sealed: the account's chat export.
    pub async fn export(&self, account: &AccountId) -> Result<Vec<Vec<u8>>, ChatError> {
        let held = self.require(account)?;
        let h = held.lock().await;
        let chats: Vec<(String, Vec<Message>)> = h
            .history
            .iter()
            .map(|(c, m)| (c.clone(), m.clone()))
            .collect();
        Self::seal_history(&h, &chats)
    }

    /// Takes an export's chats this device has no history of; returns how many.
    pub async fn import(&self, account: &AccountId, parts: &[Vec<u8>]) -> Result<usize, ChatError> {
        if parts.len() > MAX_IMPORT_PARTS {
            return Err(ChatError::BadRequest(format!(
                "an export has at most {MAX_IMPORT_PARTS} parts"
            )));
        }
        let held = self.require(account)?;
        let mut h = held.lock().await;
        let mut took = 0;
        for p in parts {
            took += self.take_history(&mut h, p)?;
        }
        self.flush_history(&mut h)?;
        self.save(&h)?;
        drop(h);
        self.bump();
        Ok(took)
    }

    /// Adds the account's devices that are missing from the chats this device is the one to
    /// add them in, each after the chat's history; at most every [`OWN_CHECK`].
    pub(crate) async fn own_devices(self: &Arc<Self>, held: &HeldRef) {
        let plan = {
            let mut h = held.lock().await;
            if h.own_checked.is_some_and(|t| t.elapsed() < OWN_CHECK) || !h.meta.published {
                return;
            }
            h.own_checked = Some(std::time::Instant::now());
            match self.directory(&h.account) {
                Ok((rec, _)) if rec.devices.len() > 1 => Self::missing_own(&h, &rec.devices),
                _ => return,
            }
        };
        for (gid, devices) in plan {
            let ids: Vec<String> = devices.iter().map(|d| d.id.to_string()).collect();
            match self.add_own(held, &gid, devices).await {
                Ok(epoch) => {
                    tracing::info!(chat = %gid, devices = %ids.join(","), epoch, "added the account's other devices to a chat")
                }
                Err(e) => {
                    tracing::info!(chat = %gid, error = %e, "adding the account's other devices failed; tried again later")
                }
            }
        }
    }

    /// By chat, the account's devices (as the directory lists them) not in it, where this
    /// device is the account's member in the lowest leaf.
    fn missing_own(h: &Held, listed: &[ChatDevice]) -> Vec<(String, Vec<ChatDevice>)> {
        let me = h.device.identity();
        let mut out = Vec::new();
        for (gid, meta) in &h.meta.groups {
            let Ok(group) = hex::decode(gid) else {
                continue;
            };
            if meta.left || !h.device.is_member(&group) || h.meta.pending.contains_key(gid) {
                continue;
            }
            let members = h.device.members(&group).unwrap_or_default();
            let first_own = members
                .iter()
                .find(|m| account_of_identity(m).is_some_and(|(a, _)| a == h.account));
            if first_own.map(String::as_str) != Some(me) {
                continue;
            }
            let missing: Vec<ChatDevice> = listed
                .iter()
                .filter(|d| !members.contains(&format!("{}#{}", h.account.to_text(), d.id)))
                .cloned()
                .collect();
            if !missing.is_empty() {
                out.push((gid.clone(), missing));
            }
        }
        out
    }

    /// Sends `devices` the chat's history, then adds them to it.
    async fn add_own(
        self: &Arc<Self>,
        held: &HeldRef,
        gid: &str,
        devices: Vec<ChatDevice>,
    ) -> Result<u64, ChatError> {
        let group = Self::group_id(gid)?;
        let (me, account) = {
            let h = held.lock().await;
            (h.device.identity().to_string(), h.account)
        };
        let kps = self.key_packages_of(&me, &account, &devices).await?;
        let history = {
            let h = held.lock().await;
            let msgs = h.history.get(gid).cloned().unwrap_or_default();
            Self::seal_history(&h, &[(gid.to_string(), msgs)])?
        };
        // Queued before the commit, so the history lands before the welcome. Not waited
        // for: the outbox delivers it.
        let recipients: Vec<Recipient> = devices.iter().map(|d| (account, d.clone())).collect();
        drop(self.enqueue(&recipients, &history));
        let names: Vec<String> = devices.iter().map(|d| format!("device {}", d.id)).collect();
        let note = format!("added your {}", names.join(", "));
        let g = group.clone();
        self.commit(
            held,
            &group,
            &move |h: &mut Held| {
                // Another device of the account may have added them meanwhile.
                let members = h.device.members(&g)?;
                let fresh = devices
                    .iter()
                    .any(|d| !members.contains(&format!("{}#{}", h.account.to_text(), d.id)));
                if !fresh {
                    return Ok(None);
                }
                Ok(Some(h.device.add(&g, &kps)?))
            },
            &note,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn held(seed: u8) -> Held {
        let account = SecretKey::from_seed(KeyType::Ed25519, &[seed; 32]).unwrap();
        Held::new(
            account.public_key(),
            Chat::seal_key(&account),
            Device::new(&account.public_key().to_text(), 0).unwrap(),
            Meta::default(),
            SecretKey::from_seed(KeyType::Ed25519, &[seed + 1; 32]).unwrap(),
        )
    }

    fn msg(seq: u64, text: &str) -> Message {
        Message {
            seq,
            kind: "text".into(),
            from: "x".into(),
            text: text.into(),
            at_ms: seq,
            mine: false,
            epoch: 1,
            envelope: String::new(),
        }
    }

    #[test]
    fn history_is_sealed_for_the_account_alone_and_split_to_fit_an_envelope() {
        let h = held(1);
        let big = "x".repeat(1_000);
        let chats = vec![
            ("aa".to_string(), (1..=500).map(|i| msg(i, &big)).collect()),
            ("bb".to_string(), vec![msg(1, "short")]),
        ];
        let parts = Chat::seal_history(&h, &chats).unwrap();
        assert!(parts.len() >= 3, "{}", parts.len());
        for p in &parts {
            assert!(Chat::is_history(p));
            assert!(p.len() <= chatnet::MAX_ENVELOPE_BYTES);
            assert!(!p.windows(big.len()).any(|w| w == big.as_bytes()));
        }
        // Another account cannot open them; a flipped byte is refused.
        let other = held(9);
        let aad = Chat::aad(&other.account, HISTORY_MAGIC);
        assert!(open_with(&Chat::history_key(&other), &aad, &parts[0][8..]).is_err());
        let aad = Chat::aad(&h.account, HISTORY_MAGIC);
        let mut bad = parts[0].clone();
        bad[20] ^= 1;
        assert!(open_with(&Chat::history_key(&h), &aad, &bad[8..]).is_err());
        assert!(open_with(&Chat::history_key(&h), &aad, &parts[0][8..]).is_ok());
    }
}
