//! Devices: turning chat on for an account (a device published in the key directory), opening
//! and closing it as the account logs in and out, and what the directory lists.

use super::*;

impl Chat {
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
                    seal_key: d.seal_key.map(hex::encode),
                    home: d.home.as_ref().map(Endpoint::to_string),
                    relays: d.relays.iter().map(Endpoint::to_string).collect(),
                })
                .collect(),
            proof: hex::encode(starling_types::Encode::to_bytes(&proof)),
        };
        Ok((rec, entry))
    }

    pub(crate) fn held(&self, account: &AccountId) -> Option<HeldRef> {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(account)
            .cloned()
    }

    /// Opens the account's chat if it was set up on this node (called at log in).
    pub async fn activate(self: &Arc<Self>, key: &Arc<SecretKey>) -> Result<bool, ChatError> {
        let account = key.public_key();
        if self.held(&account).is_some() {
            return Ok(true);
        }
        let dir = self.account_dir(&account);
        if !dir.join("device.sealed").exists() {
            return Ok(false);
        }
        let seal = Self::seal_key(key);
        let mut held = tokio::task::spawn_blocking(move || Self::load(&dir, account, seal))
            .await
            .map_err(internal)??;
        held.publisher = Some(key.clone());
        self.start(held);
        Ok(true)
    }

    pub(crate) fn start(self: &Arc<Self>, held: Held) {
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
            // Drawn at random, not the lowest free one: a node still catching up with the
            // ledger sees too few devices, and the lowest "free" one would replace another
            // device of the account.
            let device_id = loop {
                let id = OsRng.next_u32() & 0x7fff_ffff;
                if !taken.contains(&id) {
                    break id;
                }
            };
            let device = Device::new(&account.to_text(), device_id)?;
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            let mailbox_key = SecretKey::from_seed(KeyType::Ed25519, &seed).map_err(internal)?;
            let meta = Meta {
                device_id,
                mailbox_seed: hex::encode(seed),
                ..Meta::default()
            };
            let held = Held::new(account, Self::seal_key(&key), device, meta, mailbox_key);
            self.save(&held)?;
            self.start(held);
        }
        let held = self.held(&account).ok_or(ChatError::NotSetUp)?;
        let (device, published) = {
            let mut h = held.lock().await;
            h.publisher = Some(key.clone());
            h.publish_sent = Some(std::time::Instant::now());
            (self.chat_device(&h), h.meta.published)
        };
        if !published && !self.listed(&account, &device) {
            self.publish(key, device)
                .await
                .map_err(|e| ChatError::Conflict(format!("publishing the device: {e}")))?;
        }
        self.status(&account).await
    }

    /// Sends the device's `SetChatDevice`, signed by the account.
    async fn publish(&self, key: Arc<SecretKey>, device: ChatDevice) -> Result<(), ChatError> {
        let accounts = self
            .accounts
            .clone()
            .ok_or_else(|| ChatError::Unavailable("this node holds no accounts".into()))?;
        let node = self.node.clone();
        let action = starling_types::Action::SetChatDevice { device };
        tokio::task::spawn_blocking(move || accounts.sign_and_submit(&node, &key, action))
            .await
            .map_err(internal)?
            .map_err(|e| ChatError::Unavailable(e.to_string()))?;
        Ok(())
    }

    /// Sends the device's publication again if the ledger does not list it as it is a while
    /// after the last one: a node catching up signs with what it knows, which the ledger may
    /// refuse; or the node moved (a new address, other relays), and senders must learn where
    /// to reach the device now. Checked every [`REPUBLISH`]; each publication sent again
    /// doubles the wait before the next (up to an hour), so one the ledger keeps refusing
    /// (a ninth device, say) does not cost a fee every 20 s.
    pub(crate) async fn republish(&self, held: &HeldRef) {
        let (key, device) = {
            let mut h = held.lock().await;
            let wait = REPUBLISH * (1u32 << h.republished.min(8));
            if h.publish_sent
                .is_some_and(|t| t.elapsed() < wait.min(REPUBLISH_MOST))
            {
                return;
            }
            h.publish_sent = Some(std::time::Instant::now());
            let Some(key) = h.publisher.clone() else {
                return;
            };
            let device = self.chat_device(&h);
            if self.listed(&h.account, &device) {
                h.republished = 0;
                return;
            }
            h.republished += 1;
            (key, device)
        };
        match self.publish(key, device).await {
            Ok(()) => {
                tracing::info!("the chat device was not listed yet; its publication was sent again")
            }
            Err(e) => {
                tracing::info!(error = %e, "publishing the chat device again failed; tried again later")
            }
        }
    }

    pub(crate) fn chat_device(&self, h: &Held) -> ChatDevice {
        let mut signature_key = [0u8; 32];
        let k = h.device.signature_key();
        let n = k.len().min(32);
        signature_key[..n].copy_from_slice(&k[..n]);
        ChatDevice {
            id: h.meta.device_id,
            signature_key,
            mailbox: mailbox_id(&h.mailbox_key.public_key()),
            seal_key: h.deposit_key.as_ref().map(|s| s.public()),
            home: Some(self.home.clone()),
            relays: self.relays.clone(),
        }
    }

    /// Whether the ledger lists exactly this device.
    pub(crate) fn listed(&self, account: &AccountId, device: &ChatDevice) -> bool {
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
            "seal_key": device.seal_key.map(hex::encode),
            "home": self.home.to_string(),
            "relays": self.relays.iter().map(Endpoint::to_string).collect::<Vec<_>>(),
            "key_packages_at_home": self.services.key_packages.count(*account, h.meta.device_id),
            "key_packages_at_relays": h.meta.packages_at,
            "refused_envelopes": self.rejected.load(std::sync::atomic::Ordering::Relaxed),
            "unconfirmed_commits": h.unconfirmed.len(),
            "encryption": ENCRYPTION,
        }))
    }
}
